"""Domain-adversarial training: `GradientReversal`, `DANN` and the lambda schedule.

Unsupervised domain adaptation (Ganin & Lempitsky, 2015, "Unsupervised
Domain Adaptation by Backpropagation"): labelled images of a *source* domain,
unlabelled images of a *target* domain, and one network with two heads on
shared features:

```
x_source, x_target -> feature_extractor -> features
    features[source] -> label head  -> class logits     (cross-entropy with y_source)
    features[all]    -> GradientReversal(lambda) -> domain head -> source or target?
```

The domain head learns to tell the domains apart. The gradient reversal layer
is the identity going forward and multiplies the gradient by `-lambda` going
backward, so the feature extractor learns features the domain head *cannot*
separate, while the label head keeps them useful for the labels. `lambda`
rises from 0 to 1 during training (`dann_lambda`, updated by `DANNSchedule`).

Examples:
    ```python
    import keras

    from dl4keras import dann, data

    # Tiny sets (2 images per digit) so that the example runs in seconds.
    x_src, y_src = data.domain_shift_digits("plain", n_per_class=2, split="train", seed=0)
    x_tgt, _ = data.domain_shift_digits("clutter", n_per_class=2, split="train", seed=1)
    x_test, y_test = data.domain_shift_digits("clutter", n_per_class=2, split="test", seed=2)

    feature_extractor = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    model = dann.DANN(feature_extractor, num_classes=10)
    model.compile(optimizer="adam")
    x, y = dann.dann_inputs(x_src, y_src, x_tgt, seed=0)  # target labels are not used
    model.fit(x, y, epochs=1, callbacks=[dann.DANNSchedule()], verbose=0)
    model.evaluate(x_test, y_test, verbose=0)  # one input: the classifier alone
    ```
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

__all__ = ["DANN", "DANNSchedule", "GradientReversal", "dann_inputs", "dann_lambda"]


def dann_lambda(progress, gamma=10.0):
    """The paper's schedule for the gradient-reversal weight: `2 / (1 + exp(-gamma p)) - 1`.

    It rises from 0 at the start of training (when the domain head's
    gradient is mostly noise) towards 1, reaching 0.987 at `p = 0.5` with
    `gamma = 10`.

    Args:
        progress: training progress `p` in `[0, 1]` (a float or an array).
        gamma: steepness, 10 in the paper; positive.

    Returns:
        lambda, a float (or an array of the shape of `progress`).

    Raises:
        ValueError: if `progress` is outside `[0, 1]` or `gamma` is not positive.

    Examples:
        >>> from dl4keras.dann import dann_lambda
        >>> round(dann_lambda(0.0), 3), round(dann_lambda(0.1), 3), round(dann_lambda(1.0), 3)
        (0.0, 0.462, 1.0)
    """
    p = np.asarray(progress, dtype="float64")
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError(f"`progress` must be in [0, 1], got {progress!r}.")
    if not gamma > 0:
        raise ValueError(f"`gamma` must be positive, got {gamma!r}.")
    value = 2.0 / (1.0 + np.exp(-gamma * p)) - 1.0
    return float(value) if value.ndim == 0 else value


@keras.saving.register_keras_serializable(package="dl4keras")
class GradientReversal(keras.layers.Layer):
    """Identity in the forward pass; multiplies the gradient by `-lambda_` backward.

    `lambda_` lives in a non-trainable variable, `layer.lambda_`, so a
    callback (`DANNSchedule`) can change it during `fit`, also in compiled
    (`jit_compile`) training steps. Written with `keras.ops.custom_gradient`.

    Args:
        lambda_: initial weight of the reversed gradient; a finite float.
            0 blocks the gradient entirely.
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        - `inputs`: a tensor of any shape.

    Returns:
        `inputs`, unchanged.

    Examples:
        >>> from dl4keras.dann import GradientReversal
        >>> layer = GradientReversal(lambda_=0.5)
        >>> keras.ops.convert_to_numpy(layer(np.ones((1, 2)))).tolist()  # forward: the identity
        [[1.0, 1.0]]
        >>> # Backward, the gradient is multiplied by -0.5: one SGD step (rate 0.1) on
        >>> # mse(w * 1, 1) from w = 0, gradient -2, moves w to -0.1 instead of +0.2.
        >>> dense = keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")
        >>> model = keras.Sequential([keras.Input((1,)), dense, layer])
        >>> model.compile(keras.optimizers.SGD(0.1), "mse")
        >>> _ = model.fit(np.ones((1, 1)), np.ones((1, 1)), verbose=0)
        >>> round(float(keras.ops.convert_to_numpy(dense.kernel)[0, 0]), 4)
        -0.1
        >>> _ = layer.lambda_.assign(1.0)  # what DANNSchedule does at each step
    """

    def __init__(self, lambda_=1.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(lambda_, bool) or not isinstance(lambda_, (int, float)):
            raise ValueError(f"`lambda_` must be a float, got {lambda_!r}.")
        if not math.isfinite(lambda_):
            raise ValueError(f"`lambda_` must be finite, got {lambda_!r}.")
        self.initial_lambda = float(lambda_)
        self.supports_masking = True
        self.lambda_ = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.initial_lambda),
            trainable=False,
            name="lambda",
        )

    def call(self, inputs):
        return _reverse_gradient(inputs, ops.cast(self.lambda_, inputs.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "lambda_": self.initial_lambda}


@ops.custom_gradient
def _reverse_gradient(x, lambda_):
    def grad(*args, upstream=None):
        if upstream is None:  # TensorFlow and JAX pass it positionally.
            (upstream,) = args
        return ops.negative(lambda_) * upstream, ops.zeros_like(lambda_)

    return x, grad


class DANNSchedule(keras.callbacks.Callback):
    """Sets the gradient-reversal weight (and optionally the learning rate) at each step.

    Before each training batch, with `p` the progress from 0 to 1 over
    `total_steps`, sets every `GradientReversal` layer of the model to
    `dann_lambda(p, gamma)` and, with `anneal_lr=True`, the learning rate to
    the paper's `lr0 / (1 + alpha p) ** beta` (lr0: the optimizer's rate when
    training begins). Adds the last `dann_lambda` (and `lr`) to the epoch logs.

    Args:
        total_steps: steps over which `p` goes from 0 to 1; by default the
            `epochs * steps` of the `fit` call.
        gamma: steepness of the lambda schedule (10 in the paper).
        anneal_lr: also anneal the learning rate (needs a float learning
            rate, not a `LearningRateSchedule`).
        alpha: learning-rate annealing factor (10 in the paper).
        beta: learning-rate annealing power (0.75 in the paper).

    Raises:
        ValueError: at the start of training, if the model has no
            `GradientReversal` layer, the number of steps is unknown, or
            `anneal_lr=True` with a learning-rate schedule.
    """

    def __init__(self, total_steps=None, gamma=10.0, anneal_lr=False, alpha=10.0, beta=0.75):
        super().__init__()
        if total_steps is not None and int(total_steps) < 1:
            raise ValueError(f"`total_steps` must be a positive integer, got {total_steps!r}.")
        dann_lambda(0.0, gamma)  # validates gamma
        self.total_steps, self.gamma = total_steps, float(gamma)
        self.anneal_lr, self.alpha, self.beta = bool(anneal_lr), float(alpha), float(beta)
        self.lambda_ = 0.0

    def on_train_begin(self, logs=None):
        self._layers = [
            layer for layer in self.model._flatten_layers() if isinstance(layer, GradientReversal)
        ]
        if not self._layers:
            raise ValueError("DANNSchedule needs a model with a `GradientReversal` layer.")
        steps = self.params.get("steps")
        self._total = self.total_steps or (steps and steps * self.params.get("epochs", 1))
        if not self._total:
            raise ValueError("The number of training steps is unknown: pass `total_steps`.")
        self._step = 0
        if self.anneal_lr:
            rate = self.model.optimizer.learning_rate
            if not isinstance(rate, keras.Variable):
                raise ValueError(
                    "`anneal_lr=True` needs a float learning rate, got a "
                    f"{type(self.model.optimizer._learning_rate).__name__}."
                )
            self._lr0 = float(ops.convert_to_numpy(rate))

    def on_train_batch_begin(self, batch, logs=None):
        # On JAX, `fit` keeps the variables' values outside the model during an
        # epoch; reading `self.model` puts them back first (`jax_state_sync`), so
        # the assignments below reach the next step instead of being overwritten.
        model = self.model
        progress = min(self._step / self._total, 1.0)
        self.lambda_ = dann_lambda(progress, self.gamma)
        for layer in self._layers:
            layer.lambda_.assign(self.lambda_)
        if self.anneal_lr:
            lr = self._lr0 / (1.0 + self.alpha * progress) ** self.beta
            model.optimizer.learning_rate.assign(lr)
        self._step += 1

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["dann_lambda"] = self.lambda_
            if self.anneal_lr:
                logs["lr"] = float(ops.convert_to_numpy(self.model.optimizer.learning_rate))


def dann_inputs(x_source, y_source, x_target, seed=None):
    """Pairs each source image with a random target image, in the format `DANN.fit` takes.

    Target images are drawn without replacement while they last (so every
    target image is used when there are at least as many source images).

    Args:
        x_source: labelled source images, `(n, ...)`.
        y_source: their integer labels, `(n,)`.
        x_target: unlabelled target images, `(m, ...)` with the same image shape.
        seed: random seed of the pairing.

    Returns:
        `((x_source, x_target_paired), y_source)` with `x_target_paired` of
        length `n`: pass them as `model.fit(x, y, ...)`.

    Examples:
        >>> import numpy as np
        >>> from dl4keras import dann
        >>> x_source, y_source = np.zeros((5, 8, 8, 3)), np.arange(5)
        >>> x_target = np.ones((3, 8, 8, 3))  # fewer target images: some are used twice
        >>> (source, target), labels = dann.dann_inputs(x_source, y_source, x_target, seed=0)
        >>> source.shape, target.shape, labels.tolist()
        ((5, 8, 8, 3), (5, 8, 8, 3), [0, 1, 2, 3, 4])
    """
    x_source, x_target = np.asarray(x_source), np.asarray(x_target)
    if x_source.shape[1:] != x_target.shape[1:] or not len(x_target):
        raise ValueError(
            f"Source and target images must have the same shape; got {x_source.shape[1:]} "
            f"and {x_target.shape[1:]} ({len(x_target)} target "
            f"image{'' if len(x_target) == 1 else 's'})."
        )
    if len(y_source) != len(x_source):
        raise ValueError(
            f"{len(x_source)} source image{'' if len(x_source) == 1 else 's'} but "
            f"{len(y_source)} label{'' if len(y_source) == 1 else 's'}."
        )
    rng = np.random.default_rng(seed)
    repeats = -(-len(x_source) // len(x_target))
    order = np.concatenate([rng.permutation(len(x_target)) for _ in range(repeats)])
    return (x_source, x_target[order[: len(x_source)]]), np.asarray(y_source)


@keras.saving.register_keras_serializable(package="dl4keras")
class DANN(keras.Model):
    """Domain-adversarial neural network: a classifier trained to ignore the domain.

    Training data: `x = (x_source, x_target)`, two batches of images of the
    same size (labelled source, unlabelled target), and `y = y_source`,
    integer labels. `dann_inputs` makes them from arrays. The loss is
    `label_loss + domain_weight * domain_loss`: sparse categorical
    cross-entropy on the source images, and binary cross-entropy of the
    domain head on all images (source 0, target 1), whose gradient reaches
    the feature extractor reversed by `gradient_reversal` (use `DANNSchedule`).
    Logged: `loss`, `label_loss`, `domain_loss`, `accuracy` (source labels)
    and `domain_accuracy` (near 0.5 once the features are domain-invariant).

    Called on *one* batch of images, the model is the classifier alone
    (`model.classifier`: features -> label head, logits), so
    `model.predict(x)` and `model.evaluate(x, y)` (`loss`, `label_loss`,
    `accuracy`) work on target images.

    Args:
        feature_extractor: a Keras model or layer mapping images to features
            (any shape; flattened before the heads).
        num_classes: number of classes, at least 2.
        label_units: hidden layer sizes of the label head (ReLU).
        domain_units: hidden layer sizes of the domain head (ReLU);
            `(100,)` as in the paper's digit experiments.
        domain_weight: weight of the domain loss, non-negative.
        lambda_: initial gradient-reversal weight (`DANNSchedule` overrides it).
        **kwargs: base model keyword arguments (`name`, ...).

    Examples:
        >>> import keras
        >>> import numpy as np
        >>> from dl4keras import dann
        >>> features = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3)])
        >>> model = dann.DANN(features, num_classes=3)
        >>> model.compile(optimizer="adam")
        >>> x, y = dann.dann_inputs(np.zeros((6, 8, 8, 3)), np.arange(6) % 3, np.ones((6, 8, 8, 3)))
        >>> history = model.fit(x, y, epochs=1, callbacks=[dann.DANNSchedule()], verbose=0)
        >>> sorted(history.history)
        ['accuracy', 'dann_lambda', 'domain_accuracy', 'domain_loss', 'label_loss', 'loss']
        >>> model.predict(np.zeros((2, 8, 8, 3)), verbose=0).shape  # the classifier alone
        (2, 3)
    """

    def __init__(
        self,
        feature_extractor,
        num_classes,
        label_units=(),
        domain_units=(100,),
        domain_weight=1.0,
        lambda_=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"`num_classes` must be an integer >= 2, got {num_classes!r}.")
        for arg, units in (("label_units", label_units), ("domain_units", domain_units)):
            if any(not isinstance(u, int) or u < 1 for u in units):
                raise ValueError(f"`{arg}` must be positive integers, got {units!r}.")
        if not domain_weight >= 0:
            raise ValueError(f"`domain_weight` must be >= 0, got {domain_weight!r}.")
        self.feature_extractor = feature_extractor
        self.num_classes, self.domain_weight = num_classes, float(domain_weight)
        self.label_units, self.domain_units = tuple(label_units), tuple(domain_units)
        self.flatten = layers.Flatten(name="flatten")
        self.label_head = _mlp(self.label_units, num_classes, "label_head")
        self.gradient_reversal = GradientReversal(lambda_, name="gradient_reversal")
        self.domain_head = _mlp(self.domain_units, 1, "domain_head")
        self.classifier = keras.Sequential(
            [feature_extractor, self.flatten, self.label_head], name="classifier"
        )
        self.label_loss_tracker = keras.metrics.Mean(name="label_loss")
        self.domain_loss_tracker = keras.metrics.Mean(name="domain_loss")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.domain_accuracy_tracker = keras.metrics.BinaryAccuracy(
            name="domain_accuracy", threshold=0.0
        )

    def build(self, input_shape):
        if isinstance(input_shape[0], (list, tuple)):  # (source shape, target shape)
            input_shape = input_shape[0]
        if not self.classifier.built:
            self.classifier.build(tuple(input_shape))
        shape = self.feature_extractor.compute_output_shape(tuple(input_shape))
        self.domain_head.build((None, math.prod(shape[1:])))

    def call(self, inputs, training=None):
        if not isinstance(inputs, (tuple, list)):
            return self.classifier(inputs, training=training)
        if len(inputs) != 2:
            raise ValueError(
                f"DANN takes (x_source, x_target); got {len(inputs)} "
                f"input{'' if len(inputs) == 1 else 's'}."
            )
        x_source, x_target = inputs
        n_source = ops.shape(x_source)[0]
        features = self.feature_extractor(
            ops.concatenate([x_source, x_target], axis=0), training=training
        )
        features = self.flatten(features)
        return {
            "label": self.label_head(features[:n_source], training=training),
            "domain": self.domain_head(self.gradient_reversal(features), training=training),
        }

    def compile(self, optimizer="adam", **kwargs):
        for key in ("loss", "metrics", "loss_weights", "weighted_metrics"):
            if kwargs.get(key) is not None:
                raise ValueError(f"DANN defines its own losses and metrics; do not pass `{key}`.")
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if sample_weight is not None:
            raise ValueError("DANN does not support `sample_weight`.")
        logits = y_pred["label"] if isinstance(y_pred, dict) else y_pred
        label_loss = ops.mean(
            keras.losses.sparse_categorical_crossentropy(y, ops.cast(logits, "float32"), True)
        )
        self.label_loss_tracker.update_state(label_loss)
        self.accuracy_tracker.update_state(y, logits)
        if not isinstance(y_pred, dict):
            return label_loss
        domain_logits = ops.cast(ops.squeeze(y_pred["domain"], -1), "float32")
        n_source = ops.shape(logits)[0]
        is_target = ops.cast(ops.arange(ops.shape(domain_logits)[0]) >= n_source, "float32")
        domain_loss = ops.mean(ops.binary_crossentropy(is_target, domain_logits, from_logits=True))
        self.domain_loss_tracker.update_state(domain_loss)
        self.domain_accuracy_tracker.update_state(is_target, domain_logits)
        return label_loss + self.domain_weight * domain_loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        results = self.get_metrics_result()
        if not isinstance(y_pred, dict):  # the classifier alone: no domain metrics
            results = {k: v for k, v in results.items() if not k.startswith("domain")}
        return results

    def get_config(self):
        return {
            **super().get_config(),
            "feature_extractor": keras.saving.serialize_keras_object(self.feature_extractor),
            "num_classes": self.num_classes,
            "label_units": list(self.label_units),
            "domain_units": list(self.domain_units),
            "domain_weight": self.domain_weight,
            "lambda_": self.gradient_reversal.initial_lambda,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["feature_extractor"] = keras.saving.deserialize_keras_object(
            config["feature_extractor"]
        )
        return cls(**config)


def _mlp(hidden, outputs, name):
    stack = [layers.Dense(units, activation="relu") for units in hidden]
    return keras.Sequential([*stack, layers.Dense(outputs)], name=name)
