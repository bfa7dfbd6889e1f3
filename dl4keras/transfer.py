"""Transfer-learning experiments: a target task, fine-tuning strategies and their comparison.

The harness of tutorials 01 and 02, built once there and used from here:

- `FineTuningTask` holds a labelled target task, a pretrained backbone and
  one **linear probe** per seed (scikit-learn's `LogisticRegression` on the
  frozen features, copied into the Keras head), and fine-tunes a model on the
  task; `with_budget` draws a smaller labelled set from it;
- a **strategy** is a function `strategy(task, seed) -> (test accuracy,
  seconds)`: `full_fine_tuning`, `top_block`, `layerwise_rates`,
  `gradual_unfreezing` start from the seed's probe (LP-FT, Kumar et al.
  2022), `from_scratch` from random weights;
- `compare_strategies` runs strategies over the seeds of one task;
  across label budgets, `label_budget.compare_label_budgets` runs them
  (`budget_methods` turns strategies into its methods, and
  `FineTuningTask.with_budget` is its `sample`), and its
  `BudgetComparison` says at which budget fine-tuning first beats the probe;
- `train_end_to_end` trains a backbone and a fresh head on arrays, from
  scratch or naively from the pretrained weights (tutorial 01's networks);
- `SourceProbe` measures forgetting: the source task's accuracy of a
  fine-tuned backbone; `learning_rate_sweep` fine-tunes at several rates
  and measures both the target and the source;
- `compare_domain_adaptation` compares source only, DANN and "source + a few
  target labels" on precomputed features (`dl4keras.dann`);
- `print_table` prints any of these rows as mean ± std per seed, and
  `headline` makes their headline numbers.

Every comparison returns plain rows (dicts) that `results.save` can store.

Examples:
    ```python
    from dl4keras import data, transfer

    x, y = data.cluttered_digits((5, 6, 7, 8, 9), 8, split="train", seed=1)
    x_test, y_test = data.cluttered_digits((5, 6, 7, 8, 9), 4, split="test", seed=2)
    task = transfer.FineTuningTask("tiny_resnet", x, y, x_test, y_test, epochs=1)
    rows = transfer.compare_strategies(task, {"top-block fine-tuning": transfer.top_block})
    print(rows[0]["strategy"], rows[1]["strategy"])  # linear probe top-block fine-tuning
    ```
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np

from dl4keras import _validation, backbones, dann, finetune, layerwise_lr

__all__ = [
    "DA_METHODS",
    "SourceProbe",
    "STRATEGIES",
    "FineTuningTask",
    "budget_methods",
    "compare_domain_adaptation",
    "compare_strategies",
    "from_scratch",
    "full_fine_tuning",
    "gradual_unfreezing",
    "headline",
    "layerwise_rates",
    "learning_rate_sweep",
    "linear_probe_weights",
    "print_table",
    "top_block",
    "train_end_to_end",
]

PROBE = "linear probe"
"""The name of the probe's row in every comparison."""


def linear_probe_weights(features, labels, num_classes, regularization=1.0):
    """Fits a linear probe (multinomial logistic regression) on frozen features.

    scikit-learn's `LogisticRegression` (L-BFGS, deterministic) does what a
    Keras `Dense(softmax)` head trained to convergence does, in milliseconds.

    Args:
        features: `(n, d)` features of the labelled images.
        labels: `(n,)` integer labels in `[0, num_classes)`.
        num_classes: the number of classes (a class absent from `labels`
            gets a bias that makes it unlikely).
        regularization: `C` of `LogisticRegression` (larger: weaker L2).

    Returns:
        `[kernel (d, num_classes), bias (num_classes,)]`, float32, for
        `head.set_weights` on a `Dense(num_classes, activation="softmax")`.

    Examples:
        >>> from dl4keras import transfer
        >>> features = np.eye(3).repeat(4, axis=0) + 0.1  # 12 images, 3 classes
        >>> kernel, bias = transfer.linear_probe_weights(features, np.arange(12) // 4, 3)
        >>> kernel.shape, bias.shape, (features @ kernel + bias).argmax(1)[::4].tolist()
        ((3, 3), (3,), [0, 1, 2])
    """
    from sklearn.linear_model import LogisticRegression

    num_classes = _validation.positive_int("num_classes", num_classes)
    labels = np.asarray(labels)
    present = np.unique(labels)
    probe = LogisticRegression(C=regularization, max_iter=2000)
    probe.fit(np.asarray(features, dtype="float64"), labels)
    kernel = np.zeros((np.shape(features)[1], num_classes), "float32")
    bias = np.full((num_classes,), -1e3 if len(present) < num_classes else 0.0, "float32")
    if len(present) == 2:  # scikit-learn keeps one logit for two classes
        coef, intercept = np.concatenate([-probe.coef_, probe.coef_]) / 2, np.r_[-1, 1] / 2
        intercept = intercept * probe.intercept_[0]
    else:
        coef, intercept = probe.coef_, probe.intercept_
    kernel[:, present] = coef.T
    bias[present] = intercept
    return [kernel, bias]


class FineTuningTask:
    """A target task, a pretrained backbone, and one linear probe per seed.

    The features of the frozen backbone are extracted once; each seed's
    probe is `linear_probe_weights` on them (the same for every seed unless
    `with_budget` drew other images). Every fine-tuning strategy starts from
    `probe_model(seed)`: training the head first keeps its random gradients
    out of the pretrained layers.

    Args:
        backbone: a `backbones` name (`"tiny_resnet"`, `"resnet50"`, ...).
        x_train: the labelled target images (raw 0-255), `(n, h, w, 3)`.
        y_train: their integer labels.
        x_test: held-out images, for the accuracy.
        y_test: their labels.
        seeds: the seeds of the comparisons.
        epochs: fine-tuning epochs of `fine_tune`.
        batch_size: batch size of `fine_tune`.
        min_steps: `fine_tune` trains at least this many updates, adding
            epochs when the labelled set is small (0: exactly `epochs`).
        features: `(train features, test features)` of the backbone, if
            already computed (`with_budget` passes them on).

    Examples:
        >>> from dl4keras import data, finetune, transfer
        >>> x, y = data.cluttered_digits((5, 6, 7), 10, split="train", seed=1)
        >>> x_test, y_test = data.cluttered_digits((5, 6, 7), 5, split="test", seed=2)
        >>> task = transfer.FineTuningTask("tiny_resnet", x, y, x_test, y_test, seeds=(0, 1))
        >>> task.blocks, task.num_classes
        (['stem', 'block1', 'block2', 'block3'], 3)
        >>> small = task.with_budget(2, seed=0)  # 2 labelled images per class
        >>> small.x_train.shape, small.epochs_needed()  # one batch: 10 epochs
        ((6, 32, 32, 3), 10)
        >>> model = task.probe_model(seed=0)  # pretrained, frozen, with the probe's head
        >>> _ = finetune.unfreeze(model, "block3")
        >>> accuracy, seconds = task.fine_tune(model, keras.optimizers.Adam(1e-3), epochs=1)
        >>> 0.0 <= accuracy <= 1.0
        True
    """

    def __init__(
        self,
        backbone,
        x_train,
        y_train,
        x_test,
        y_test,
        seeds=(0,),
        epochs=10,
        batch_size=32,
        min_steps=0,
        features=None,
    ):
        self.backbone, self.seeds = backbone, tuple(seeds)
        if not self.seeds:
            raise _validation.invalid("seeds", "at least one seed", seeds)
        self.x_train, self.y_train = np.asarray(x_train), np.asarray(y_train)
        self.x_test, self.y_test = np.asarray(x_test), np.asarray(y_test)
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise ValueError(
                f"{len(self.x_train)} training images but {len(self.y_train)} labels, "
                f"{len(self.x_test)} test images but {len(self.y_test)} labels."
            )
        self.epochs = _validation.positive_int("epochs", epochs)
        self.batch_size = _validation.positive_int("batch_size", batch_size)
        if isinstance(min_steps, bool) or not isinstance(min_steps, int) or min_steps < 0:
            raise _validation.invalid("min_steps", "a non-negative integer", min_steps)
        self.min_steps = min_steps
        self.num_classes = int(max(self.y_train.max(), self.y_test.max())) + 1
        self._blocks = None
        if features is None:
            extractor = backbones.build(backbone, input_shape=self.x_train.shape[1:])
            self._blocks = [name for name, _ in finetune.layer_blocks(extractor)]
            features = [
                backbones.extract_features(extractor, x, verbose=0)
                for x in (self.x_train, self.x_test)
            ]
        self.features_train, self.features_test = (np.asarray(f) for f in features)
        t0 = time.perf_counter()
        weights = linear_probe_weights(self.features_train, self.y_train, self.num_classes)
        kernel, bias = weights
        logits = self.features_test @ kernel + bias
        accuracy = float(np.mean(logits.argmax(1) == self.y_test))
        self.probes = {seed: (weights, accuracy) for seed in self.seeds}
        """`{seed: (head weights, test accuracy)}`."""
        self.probe_seconds = time.perf_counter() - t0

    @classmethod
    def from_image_folder(
        cls, directory, backbone, image_size, labels_per_class, split_seed=0, **kwargs
    ):
        """A task from a class-folder image dataset (`image_folder.load_image_folder`).

        `labels_per_class` images per class, drawn at random, are the
        labelled set; every other image is the test set.

        Args:
            directory: the folder, one subfolder per class.
            backbone: a `backbones` name.
            image_size: side of the square images the backbone takes.
            labels_per_class: labelled images per class.
            split_seed: draws the labelled images.
            **kwargs: the other arguments of `FineTuningTask` (`seeds`, `epochs`, ...).

        Returns:
            A `FineTuningTask`.

        Examples:
            >>> from dl4keras import image_folder, transfer
            >>> folder = image_folder.make_demo_folder("digits", n_per_class=4)
            >>> task = transfer.FineTuningTask.from_image_folder(folder, "tiny_resnet", 32, 2)
            >>> task.x_train.shape, task.x_test.shape
            ((10, 32, 32, 3), (10, 32, 32, 3))
        """
        from dl4keras import image_folder

        dataset = image_folder.load_image_folder(
            directory,
            image_size=_validation.pair("image_size", image_size),
            batch_size=None,
            validation_split=None,
            subset=None,
            shuffle=False,
            cache=False,
        )
        images, labels = zip(*dataset.as_numpy_iterator())
        images = np.clip(np.round(np.stack(images)), 0, 255).astype("uint8")
        labels = np.array(labels)
        rng = np.random.default_rng(split_seed)
        train = np.concatenate(
            [
                rng.permutation(np.flatnonzero(labels == c))[:labels_per_class]
                for c in range(len(dataset.class_names))
            ]
        )
        test = np.setdiff1d(np.arange(len(labels)), train)
        return cls(backbone, images[train], labels[train], images[test], labels[test], **kwargs)

    def with_budget(self, labels_per_class, seed=0):
        """The same task with `labels_per_class` labelled images per class, drawn at random.

        The test set and the cached features are shared (nothing is
        extracted again); the new task has the one seed `seed`, which also
        draws the images, so every seed sees another labelled set.

        Args:
            labels_per_class: labelled images per class, at most what each
                class of this task has.
            seed: draws the images; the new task's only seed.

        Returns:
            A new `FineTuningTask`.
        """
        labels_per_class = _validation.positive_int("labels_per_class", labels_per_class)
        rng = np.random.default_rng(seed)
        pick = []
        for c in range(self.num_classes):
            members = np.flatnonzero(self.y_train == c)
            if len(members) < labels_per_class:
                raise ValueError(
                    f"class {c} has {len(members)} labelled images, fewer than "
                    f"labels_per_class={labels_per_class}."
                )
            pick.append(rng.permutation(members)[:labels_per_class])
        pick = rng.permutation(np.concatenate(pick))
        task = FineTuningTask(
            self.backbone,
            self.x_train[pick],
            self.y_train[pick],
            self.x_test,
            self.y_test,
            seeds=(seed,),
            epochs=self.epochs,
            batch_size=self.batch_size,
            min_steps=self.min_steps,
            features=(self.features_train[pick], self.features_test),
        )
        task._blocks = self._blocks
        return task

    @property
    def blocks(self):
        """The block names of the backbone, input to output (`finetune.layer_blocks`)."""
        if self._blocks is None:
            self._blocks = [name for name, _ in finetune.layer_blocks(self.build_model())][:-1]
        return self._blocks

    def epochs_needed(self, epochs=None):
        """`epochs` (default: the task's), raised to reach `min_steps` updates."""
        steps_per_epoch = math.ceil(len(self.x_train) / self.batch_size)
        epochs = self.epochs if epochs is None else epochs
        return max(epochs, math.ceil(self.min_steps / steps_per_epoch))

    def build_model(self, weights="pretrained"):
        """A fresh backbone (frozen) with a new softmax head."""
        extractor = backbones.build(
            self.backbone, input_shape=self.x_train.shape[1:], weights=weights
        )
        return finetune.freeze(backbones.attach_head(extractor, self.num_classes))

    def probe_model(self, seed):
        """A fresh pretrained model with the seed's probe as its head, all frozen."""
        model = self.build_model()
        model.get_layer("predictions").set_weights(self.probes[seed][0])
        return model

    def fine_tune(self, model, optimizer, epochs=None, batch_size=None, callbacks=()):
        """Compiles and fits `model` on the labelled images.

        Args:
            model: e.g. `probe_model(seed)` after `finetune.unfreeze`.
            optimizer: a Keras optimizer (e.g. `LayerwiseLR`).
            epochs: default `epochs_needed()`.
            batch_size: default the task's.
            callbacks: Keras callbacks for `fit`.

        Returns:
            `(test accuracy, seconds of the fit)`.
        """
        model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
        t0 = time.perf_counter()
        model.fit(
            self.x_train,
            self.y_train,
            batch_size=batch_size or self.batch_size,
            epochs=self.epochs_needed(epochs),
            callbacks=list(callbacks),
            verbose=0,
        )
        seconds = time.perf_counter() - t0
        return float(model.evaluate(self.x_test, self.y_test, verbose=0)[1]), seconds


class SourceProbe:
    """Measures forgetting: a linear probe of the source task, put back on a changed backbone.

    Fitted once on the pretrained backbone's features of source images;
    called on a fine-tuned model, it reads the same layer of the changed
    backbone and classifies the held-out source images with the same probe.
    If the accuracy collapses, fine-tuning overwrote what the backbone knew
    (*catastrophic forgetting*).

    Args:
        extractor: the pretrained feature extractor (`backbones.build`).
        source: `(images, labels)` of the source task, to fit the probe.
        source_test: `(images, labels)` held out, for the accuracy.
        layer: the name of the features layer inside the fine-tuned models.

    Examples:
        >>> from dl4keras import backbones, data, transfer
        >>> extractor = backbones.build("tiny_resnet")
        >>> source = data.cluttered_digits((0, 1), 6, split="train", seed=0)
        >>> probe = transfer.SourceProbe(extractor, source, source)
        >>> model = backbones.attach_head(extractor, 3)  # shares the pretrained layers
        >>> 0.0 <= probe(model) <= 1.0
        True
    """

    def __init__(self, extractor, source, source_test, layer="avg_pool"):
        (x, y), (self.x_test, self.y_test) = source, source_test
        features = backbones.extract_features(extractor, x, verbose=0)
        self.kernel, self.bias = linear_probe_weights(features, y, int(np.max(y)) + 1)
        self.layer = layer

    def __call__(self, model):
        """The probe's accuracy on the held-out source images, read from `model`'s backbone."""
        features = keras.Model(model.inputs, model.get_layer(self.layer).output)
        x = backbones.extract_features(features, self.x_test, verbose=0)
        return float(np.mean((x @ self.kernel + self.bias).argmax(1) == self.y_test))


def learning_rate_sweep(task, source_probe, learning_rates, seed=None, print_fn=print):
    """Full fine-tuning at several learning rates: what each gains, what each forgets.

    Each run starts from `task.probe_model(seed)`, unfreezes every layer
    (BatchNorm stays frozen), fine-tunes with Adam at the rate
    (`task.fine_tune`, Keras seeded with the seed before each run, so every
    rate sees the same shuffling) and then measures the source task on the
    changed backbone with `source_probe` (a `SourceProbe`).

    Args:
        task: a `FineTuningTask`.
        source_probe: a `SourceProbe` of the backbone's source task.
        learning_rates: Adam's learning rates, e.g. `(1e-2, 1e-3, 1e-4)`.
        seed: the probe and the Keras seed (default the task's first seed).
        print_fn: prints one line per rate; `None`: silent.

    Returns:
        A dict: `pretrained_source_accuracy` (the source probe on the
        unchanged backbone) and `runs`, one dict per rate:
        `learning_rate`, `target_accuracy` and `source` (the source
        accuracy after fine-tuning).

    Raises:
        ValueError: if `learning_rates` is empty or holds a rate that is not
            a positive number.
    """
    rates = [_validation.positive_float("learning_rates", rate) for rate in learning_rates]
    if not rates:
        raise _validation.invalid("learning_rates", "at least one rate", learning_rates)
    seed = task.seeds[0] if seed is None else seed
    before = source_probe(task.probe_model(seed))
    runs = []
    for rate in rates:
        keras.utils.set_random_seed(seed)  # the same shuffling for every rate
        model = task.probe_model(seed)
        finetune.unfreeze(model)
        accuracy, _ = task.fine_tune(model, keras.optimizers.Adam(rate))
        runs.append(dict(learning_rate=rate, target_accuracy=accuracy, source=source_probe(model)))
        if print_fn is not None:
            print_fn(
                f"Adam lr={rate:g}: target accuracy {accuracy:.1%}, "
                f"source accuracy {before:.1%} -> {runs[-1]['source']:.1%}"
            )
    return dict(pretrained_source_accuracy=before, runs=runs)


# ---------------------------------------------------------------- strategies


def full_fine_tuning(task, seed, learning_rate=1e-3):
    """Every layer trains (BatchNorm frozen), from the seed's probe, with Adam."""
    model = task.probe_model(seed)
    finetune.unfreeze(model)
    return task.fine_tune(model, keras.optimizers.Adam(learning_rate))


def top_block(task, seed, learning_rate=1e-3):
    """The top block of the backbone and the head train, from the seed's probe."""
    model = task.probe_model(seed)
    finetune.unfreeze(model, task.blocks[-1])
    return task.fine_tune(model, keras.optimizers.Adam(learning_rate))


def layerwise_rates(task, seed, learning_rate=1e-3, decay=0.3):
    """Every layer trains, the learning rate × `decay` per block down (`LayerwiseLR`)."""
    model = task.probe_model(seed)
    finetune.unfreeze(model)
    optimizer = layerwise_lr.LayerwiseLR(
        keras.optimizers.Adam(learning_rate), decay=decay, model=model
    )
    return task.fine_tune(model, optimizer)


def gradual_unfreezing(task, seed, learning_rate=1e-3, every=2):
    """One more block every `every` epochs, from the top (`GradualUnfreezing`)."""
    model = task.probe_model(seed)
    finetune.unfreeze(model, "predictions")
    callback = finetune.GradualUnfreezing(task.blocks[::-1], every=every, start_epoch=0, verbose=0)
    return task.fine_tune(model, keras.optimizers.Adam(learning_rate), callbacks=[callback])


def from_scratch(task, seed, learning_rate=1e-3):
    """The same network from random weights, every layer (BatchNorm too) training.

    Its BatchNorm layers use a momentum of 0.9 instead of 0.99: with the
    default, the running statistics used at test time still mostly hold
    their initial values after the few hundred steps of a short run.
    """
    del seed  # `compare_strategies` has already seeded Keras
    model = task.build_model(weights=None)
    finetune.unfreeze(model, keep_batchnorm_frozen=False)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9  # running statistics that catch up within a short run
    return task.fine_tune(model, keras.optimizers.Adam(learning_rate))


STRATEGIES = {
    "full fine-tuning": full_fine_tuning,
    "top-block fine-tuning": top_block,
    "layer-wise learning rates": layerwise_rates,
    "gradual unfreezing": gradual_unfreezing,
}
"""The fine-tuning strategies of tutorial 02, by name (`from_scratch` is not one)."""


def _row(name, accuracies, seconds, **extra):
    accuracies = np.asarray(accuracies, dtype="float64")
    return dict(
        **extra,
        strategy=name,
        accuracy_mean=float(accuracies.mean()),
        accuracy_std=float(accuracies.std()),
        accuracies=accuracies.tolist(),
        seconds_mean=float(np.mean(seconds)),
    )


def compare_strategies(task, strategies=None, probe=True, print_fn=print):
    """Runs each strategy for each seed of `task`.

    Keras is seeded with the seed before each run. Each fine-tuning row's
    time includes the probe's (`task.probe_seconds`), which it starts from.

    Args:
        task: a `FineTuningTask`.
        strategies: `{name: strategy}`; default `STRATEGIES`.
        probe: put the linear probe's row first.
        print_fn: prints the table (`print_table`); `None` prints nothing.

    Returns:
        One row per strategy: `strategy`, `accuracy_mean`, `accuracy_std`,
        `accuracies` (per seed) and `seconds_mean`.
    """
    strategies = STRATEGIES if strategies is None else strategies
    rows = []
    if probe:
        accuracies = [task.probes[seed][1] for seed in task.seeds]
        rows.append(_row(PROBE, accuracies, [task.probe_seconds]))
    for name, strategy in strategies.items():
        runs = []
        for seed in task.seeds:
            keras.utils.set_random_seed(seed)
            accuracy, seconds = strategy(task, seed)
            runs.append((accuracy, seconds + task.probe_seconds))
        rows.append(_row(name, *zip(*runs)))
    if print_fn is not None:
        print_table(rows, print_fn=print_fn)
    return rows


def budget_methods(strategies, probe=True):
    """Strategies as the methods of `label_budget.compare_label_budgets`.

    The label-budget grid draws one smaller task per budget and seed with
    `FineTuningTask.with_budget` (pass it as the `sample`), and runs every
    method on it: each method seeds Keras with the seed and returns the
    strategy's test accuracy. The linear probe's method returns the drawn
    task's probe accuracy (the probe is fitted when the task is drawn, so
    its run time counts there, not in the grid's timing).

    Args:
        strategies: `{name: strategy}`, e.g. `{"top-block": transfer.top_block}`.
        probe: put the linear probe first (named `"linear probe"`).

    Returns:
        `{name: fn(task, seed) -> test accuracy}`.

    Raises:
        ValueError: if `strategies` is not a dict of callables.

    Examples:
        >>> from dl4keras import data, label_budget, transfer
        >>> x, y = data.cluttered_digits((5, 6, 7), 4, split="train", seed=1)
        >>> x_test, y_test = data.cluttered_digits((5, 6, 7), 4, split="test", seed=2)
        >>> pool = transfer.FineTuningTask("tiny_resnet", x, y, x_test, y_test, epochs=1)
        >>> grid = label_budget.compare_label_budgets(
        ...     transfer.budget_methods({"top block": transfer.top_block}),
        ...     pool.with_budget,
        ...     budgets=(2, 4),
        ...     seeds=(0,),
        ...     verbose=False,
        ... )
        >>> grid.methods
        ('linear probe', 'top block')
    """
    if not isinstance(strategies, dict) or not all(callable(s) for s in strategies.values()):
        raise _validation.invalid("strategies", "a dict {name: strategy(task, seed)}", strategies)

    def method(strategy):
        def run(task, seed):
            keras.utils.set_random_seed(seed)
            return strategy(task, seed)[0]

        return run

    methods = {PROBE: lambda task, seed: task.probes[seed][1]} if probe else {}
    methods.update({name: method(strategy) for name, strategy in strategies.items()})
    return methods


def train_end_to_end(
    x_train,
    y_train,
    x_eval,
    y_eval,
    weights="pretrained",
    learning_rate=3e-4,
    epochs=5,
    steps=(60, 200),
    seed=0,
    backbone="tiny_resnet",
):
    """A backbone and a fresh head, every layer trained on arrays; returns the eval accuracy.

    Tutorial 01's networks: `weights=None` trains from scratch, `"pretrained"`
    fine-tunes naively (every layer, BatchNorm included, one learning rate,
    no probe first; `FineTuningTask` does it with care). The optimizer is
    AdamW (weight decay 0.05), the batch 32 (16 below 64 images), and the
    network makes about `epochs` passes over the labelled set, at least
    `steps[0]` and at most `steps[1]` updates (in whole epochs).

    Args:
        x_train: labelled images, raw 0-255, `(n, h, w, 3)`.
        y_train: their integer labels.
        x_eval: held-out images, for the accuracy.
        y_eval: their labels.
        weights: the backbone's weights: `"pretrained"` or None (random).
        learning_rate: AdamW's learning rate.
        epochs: passes over the labelled set, before the clipping to `steps`.
        steps: `(fewest, most)` gradient updates.
        seed: seeds the initial weights and the shuffling.
        backbone: a `backbones` name.

    Returns:
        The accuracy on `(x_eval, y_eval)`, a float.

    Raises:
        ValueError: if `epochs` is not a positive integer or `steps` is not
            a pair of positive integers `(fewest, most)`, fewest ≤ most.

    Examples:
        >>> from dl4keras import data, transfer
        >>> x, y = data.cluttered_digits((5, 6), 4, split="train", seed=1)
        >>> accuracy = transfer.train_end_to_end(x, y, x, y, weights=None, steps=(1, 1))
        >>> 0.0 <= accuracy <= 1.0
        True
    """
    epochs = _validation.positive_int("epochs", epochs)
    if (
        not isinstance(steps, (tuple, list))
        or len(steps) != 2
        or not all(_validation.is_positive_int(s) for s in steps)
        or steps[0] > steps[1]
    ):
        raise _validation.invalid("steps", "a pair of positive integers (fewest, most)", steps)
    keras.utils.set_random_seed(seed)
    x_train, y_train = np.asarray(x_train), np.asarray(y_train)
    net = backbones.build(backbone, input_shape=x_train.shape[1:], weights=weights, trainable=True)
    model = backbones.attach_head(net, int(max(y_train.max(), np.max(y_eval))) + 1)
    model.compile(
        keras.optimizers.AdamW(learning_rate, weight_decay=0.05),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    batch = 32 if len(x_train) >= 64 else 16
    per_epoch = math.ceil(len(x_train) / batch)
    total = int(np.clip(epochs * per_epoch, *steps))
    model.fit(x_train, y_train, batch_size=batch, epochs=math.ceil(total / per_epoch), verbose=0)
    return float(model.evaluate(x_eval, y_eval, verbose=0, batch_size=256)[1])


def headline(rows, prefix=""):
    """`{"<prefix><strategy>": "mean ± std"}` from comparison rows, for `results.save`.

    Examples:
        >>> from dl4keras import transfer
        >>> rows = [dict(strategy="linear probe", accuracy_mean=0.5, accuracy_std=0.1)]
        >>> transfer.headline(rows, prefix="digits, ")
        {'digits, linear probe': '50.0% ± 10.0%'}
    """
    return {
        f"{prefix}{row['strategy']}": f"{row['accuracy_mean']:.1%} ± {row['accuracy_std']:.1%}"
        for row in rows
    }


def print_table(rows, print_fn=print):
    """Prints rows of `compare_strategies`: mean ± std, mean seconds and the per-seed values.

    Examples:
        >>> from dl4keras import transfer
        >>> transfer.print_table(
        ...     [dict(strategy="linear probe", accuracy_mean=0.5, accuracy_std=0.1,
        ...           accuracies=[0.4, 0.6], seconds_mean=0.25)]
        ... )
        strategy                           test accuracy     time   per seed
        linear probe                        50.0% ± 10.0%     0.2s   40.0% 60.0%
    """
    width = max(28, *(len(r["strategy"]) + 2 for r in rows))
    print_fn(f"{'strategy':<{width}}{'test accuracy':>20}{'time':>9}   per seed")
    for r in rows:
        spread = f"{r['accuracy_mean']:.1%} ± {r['accuracy_std']:.1%}"
        print_fn(
            f"{r['strategy']:<{width}}{spread:>20}{r['seconds_mean']:>8.1f}s   "
            + " ".join(f"{a:.1%}" for a in r["accuracies"])
        )


# ---------------------------------------------------------------- domain adaptation

DA_METHODS = ("source only", "DANN", "source + a few target labels")
"""The methods of `compare_domain_adaptation`, in its order."""


def compare_domain_adaptation(
    source,
    target,
    target_test,
    trained_layers,
    domain_weight=1.0,
    seeds=(0,),
    epochs=30,
    batch_size=32,
    learning_rate=1e-3,
    few_target_labels=5,
    print_fn=print,
    setting="",
    frozen=None,
):
    """Source only, DANN and source + a few target labels, on precomputed features.

    Each method trains `trained_layers()` and a linear label head (logits)
    with Adam; DANN adds the domain head and the gradient reversal
    (`dann.DANN`, `dann.DANNSchedule(anneal_lr=True)`).

    Args:
        source: `(features, labels)` of the labelled source domain.
        target: `(features, labels)` of the target domain: the labels are
            used only by "source + a few target labels" (the first
            `few_target_labels` per class).
        target_test: `(features, labels)` held out, for the accuracy.
        trained_layers: a function returning new layers (a `keras.Model` or
            layer) from the features to a feature vector.
        domain_weight: the weight of DANN's domain loss.
        seeds: one run of every method per seed.
        epochs: training epochs of every method.
        batch_size: batch size.
        learning_rate: Adam's learning rate (DANN anneals it).
        few_target_labels: labelled target images per class of the third method.
        print_fn: prints the table (`print_table`) headed by `setting`; `None`: silent.
        setting: a name for the rows, e.g. `"whole backbone frozen"`.
        frozen: a frozen model that maps the images to the features: the
            three sets are then images, run through it once here.

    Returns:
        `(rows, summary)`: one row per method (as `compare_strategies`, plus
        `setting`), and a dict: `domain_accuracy` (the domain head's accuracy
        at the end of the last DANN run; 0.5: the domains look alike to it),
        `dann_gain_points` (DANN minus source only, mean over the seeds),
        `dann_gain_points_per_seed` and `few_labels_beat_dann`.

    Examples:
        >>> from dl4keras import transfer
        >>> rng = np.random.default_rng(0)
        >>> def layers():
        ...     return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, "relu")])
        >>> features = [(rng.normal(size=(20, 4)), np.arange(20) % 2) for _ in range(3)]
        >>> rows, summary = transfer.compare_domain_adaptation(
        ...     *features, layers, epochs=1, print_fn=None
        ... )
        >>> [row["strategy"] for row in rows]
        ['source only', 'DANN', 'source + a few target labels']
        >>> sorted(summary)
        ['dann_gain_points', 'dann_gain_points_per_seed', 'domain_accuracy', 'few_labels_beat_dann']
    """
    (f_source, y_source), (f_target, y_target), (f_test, y_test) = source, target, target_test
    if frozen is not None:
        f_source, f_target, f_test = (
            backbones.extract_features(frozen, x, verbose=0) for x in (f_source, f_target, f_test)
        )
    y_source, y_target = np.asarray(y_source), np.asarray(y_target)
    num_classes = int(max(y_source.max(), np.max(y_test))) + 1
    few = np.concatenate(
        [np.flatnonzero(y_target == c)[:few_target_labels] for c in range(num_classes)]
    )
    runs = {method: [] for method in DA_METHODS}
    domain_accuracy = None
    for seed in seeds:
        for method in DA_METHODS:
            keras.utils.set_random_seed(seed)
            t0 = time.perf_counter()
            if method == "DANN":
                model = dann.DANN(trained_layers(), num_classes, domain_weight=domain_weight)
                model.compile(keras.optimizers.Adam(learning_rate))
                history = model.fit(
                    *dann.dann_inputs(f_source, y_source, f_target, seed=seed),
                    batch_size=batch_size,
                    epochs=epochs,
                    callbacks=[dann.DANNSchedule(anneal_lr=True)],
                    verbose=0,
                )
                domain_accuracy = float(history.history["domain_accuracy"][-1])
            else:
                x, y = f_source, y_source
                if method == "source + a few target labels":
                    x = np.concatenate([f_source, f_target[few]])
                    y = np.concatenate([y_source, y_target[few]])
                model = keras.Sequential([trained_layers(), keras.layers.Dense(num_classes)])
                model.compile(
                    keras.optimizers.Adam(learning_rate),
                    keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"],
                )
                model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
            seconds = time.perf_counter() - t0
            result = model.evaluate(f_test, y_test, verbose=0, return_dict=True)
            runs[method].append((result["accuracy"], seconds))
    rows = [_row(method, *zip(*values), setting=setting) for method, values in runs.items()]
    by = {row["strategy"]: row for row in rows}
    gains = 100 * np.subtract(by["DANN"]["accuracies"], by["source only"]["accuracies"])
    summary = dict(
        domain_accuracy=domain_accuracy,
        dann_gain_points=float(gains.mean()),
        dann_gain_points_per_seed=gains.tolist(),
        few_labels_beat_dann=bool(
            by["source + a few target labels"]["accuracy_mean"] > by["DANN"]["accuracy_mean"]
        ),
    )
    if print_fn is not None:
        print_fn(f"{setting}: target-domain test accuracy" if setting else "target-domain accuracy")
        print_table(rows, print_fn=print_fn)
        print_fn(
            f"DANN - source only: {gains.mean():+.1f} points (per seed "
            + ", ".join(f"{g:+.1f}" for g in gains)
            + f"); domain-head accuracy at the end {domain_accuracy:.2f}; a few target labels "
            + ("beat" if summary["few_labels_beat_dann"] else "did not beat")
            + " DANN"
        )
    return rows, summary
