"""Discriminative (layer-wise) learning rates for any Keras 3 optimizer.

When fine-tuning a pretrained network, the early layers (edges, textures)
should move little and the new head a lot. `LayerwiseLR` wraps any Keras
optimizer and gives each group of variables the learning rate `lr * m`.

**Why not just multiply the gradients by m?** For plain SGD that is the
same thing (`lr * (m * g) == (lr * m) * g`). For Adam it does *nothing*:
Adam's step is `lr * m_hat / (sqrt(v_hat) + eps)`; scaling every gradient by
`m` scales `m_hat` by `m` and `sqrt(v_hat)` by `m`, and the ratio is
unchanged. Adam is invariant to the scale of the gradient, so the multiplier
has to act on the learning rate. (AdamW's decoupled weight decay,
`w -= lr * wd * w`, does not see the gradient at all either.)

**How.** Every Keras 3 optimizer ends a step in
`_backend_update_step(grads, variables, learning_rate)`, which hands one
learning rate to `update_step` for a list of variables, after gradient
accumulation, clipping and weight decay. `LayerwiseLR` wraps your optimizer,
as `keras.optimizers.LossScaleOptimizer` does, and has it run that step once
per group with `learning_rate * m`, and its decoupled weight decay once per
group with `weight_decay * m` (so `lr * m * wd`: each group is exactly a
separate optimizer with learning rate `lr * m`). A group with `m = 0` is
skipped: it does not move. Everything else is your optimizer's own code:
learning-rate schedules, `gradient_accumulation_steps`, clipping (one
`global_clipnorm` over all groups), `exclude_from_weight_decay`, EMA
(`use_ema`, `keras.callbacks.SwapEMAWeights`), state. Callbacks that set
`optimizer.learning_rate` (`ReduceLROnPlateau`, `LearningRateScheduler`) set
the base rate and every group follows with its multiplier.

**Keras internals.** `_backend_update_step` and `_apply_weight_decay` are
private Keras methods (the same on the TensorFlow, JAX and PyTorch backends
of Keras 3.15). `LayerwiseLR` checks at construction that the optimizer has
them with the expected arguments, and at each `apply` (eager, or when a
train step is traced) that Keras really called them; if a Keras release
changes them it raises an error naming the Keras version, rather than
training every layer at one rate.

**Why not `keras.optimizers.MultiOptimizer`?** The public alternative, one
`Adam(lr * m)` per group, gives the same updates at the same speed
(`benchmarks/layerwise_lr.py` measures both), but its groups are separate
optimizers to Keras: `LearningRateScheduler` sets every group to the *same*
rate, `ReduceLROnPlateau` logs and floors (`min_lr`) each group on its own,
`global_clipnorm` clips each group on its own, settings made on the optimizer
object (`exclude_from_weight_decay`) do not reach copies of it, and a
schedule must be rescaled per group.

**Matching.** Patterns are `fnmatch` globs, case-sensitive (`"block1*"`,
`"predictions"`, `"*/bias"`). With `model=`, a variable is matched through
the names of the layers that hold it (its layer and every enclosing nested
model, so `{"tiny_resnet": 0.1}` covers a whole backbone) and its path
(`variable.path`, e.g. `"block1_1_conv/kernel"`); without `model`, through its
path and the layer names in it. The first matching pattern wins (order the
dict from specific to general); unmatched variables keep the multiplier 1.0.

**Saving.** `model.save("m.keras")` stores the wrapped optimizer, its state
and the multiplier of every trainable variable, by position in
`model.trainable_variables` as Keras stores optimizer state (variable paths
can change when a model is reloaded). `keras.models.load_model(path)`, with
`safe_mode=True` too, restores it all after `import dl4keras` (which
registers the name `"dl4keras>LayerwiseLR"`). No `custom_objects` are needed.

Examples:
    ```python
    import keras
    import numpy as np

    from dl4keras.layerwise_lr import LayerwiseLR

    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu", name="stem"),
            keras.layers.Dense(8, activation="relu", name="body"),
            keras.layers.Dense(3, name="head"),
        ]
    )
    # explicit multipliers, matched against layer names ...
    opt = LayerwiseLR(keras.optimizers.AdamW(1e-3), {"stem": 0.1, "body": 0.5}, model=model)
    # ... or a depth decay: the top block x1, the one below x0.3, then x0.09, ...
    opt = LayerwiseLR(keras.optimizers.Adam(1e-3), decay=0.3, model=model)
    opt.summary()  # groups, multipliers, learning rates
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    model.fit(x, np.arange(8) % 3, batch_size=4, epochs=1, verbose=0)
    ```
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import math
import numbers
import weakref

import keras
import numpy as np

from dl4keras import _validation

__all__ = ["LayerwiseLR"]

DEFAULT_LABEL = "(default)"

TESTED_KERAS = "3.15.1"
"""The Keras version whose private optimizer methods `LayerwiseLR` was checked against."""

HOOKS = {
    "_backend_update_step": ("grads", "trainable_variables", "learning_rate"),
    "_apply_weight_decay": ("variables",),
}
"""The private optimizer methods `LayerwiseLR` wraps, and their arguments (Keras 3.15)."""

_WRAPPER_TYPES = (keras.optimizers.LossScaleOptimizer,) + (
    (keras.optimizers.MultiOptimizer,) if hasattr(keras.optimizers, "MultiOptimizer") else ()
)


def _keras_changed(detail):
    hooks = ", ".join(f"`{name}({', '.join(args)})`" for name, args in HOOKS.items())
    return RuntimeError(
        f"LayerwiseLR cannot give layer groups their own learning rates with Keras "
        f"{keras.__version__}: {detail} LayerwiseLR wraps the private optimizer methods "
        f"{hooks} as Keras {TESTED_KERAS} defines them, and stops here rather than train "
        f"every layer at one rate. Install a Keras version with those methods (e.g. "
        f"`pip install keras=={TESTED_KERAS}`), or give each group its own optimizer with "
        f"`keras.optimizers.MultiOptimizer`."
    )


def _check_hooks(optimizer):
    """Raises `RuntimeError` unless `optimizer` has the private methods in `HOOKS`."""
    for name, expected in HOOKS.items():
        method = getattr(optimizer, name, None)
        if not callable(method):
            raise _keras_changed(f"the optimizer {type(optimizer).__name__} has no `{name}`.")
        try:
            parameters = list(inspect.signature(method).parameters.values())
        except (TypeError, ValueError):  # no signature to read: trust it, the step check remains
            continue
        positional = [
            p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        required_keywords = [
            p for p in parameters if p.kind == p.KEYWORD_ONLY and p.default is p.empty
        ]
        variadic = any(p.kind == p.VAR_POSITIONAL for p in parameters)
        if required_keywords or not (
            len(positional) == len(expected) or (variadic and len(positional) <= len(expected))
        ):
            raise _keras_changed(
                f"`{type(optimizer).__name__}.{name}` takes ({', '.join(map(str, parameters))}), "
                f"not ({', '.join(expected)})."
            )


class _Shown:
    """Shows an optimizer in an error message as Keras shows a model: `<Adam name=adam>`."""

    def __init__(self, optimizer):
        self.text = (
            f"<{type(optimizer).__name__} name={optimizer.name}>"
            if isinstance(optimizer, keras.optimizers.Optimizer)
            else repr(optimizer)
        )

    def __repr__(self):
        return self.text


def _check_multiplier(pattern, value, multipliers):
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < 0
    ):
        raise _validation.invalid(
            "multipliers",
            f"finite multipliers >= 0, but pattern {pattern!r} has {value!r}",
            multipliers,
        )
    return float(value)


def _matches(pattern, names):
    return any(name == pattern or fnmatch.fnmatchcase(name, pattern) for name in names)


def _path_names(path):
    """The names a variable path is matched through: the path and its layer names."""
    return [path, *path.split("/")[:-1]]


def _weight_owners(model):
    """`{id(weight): [names of the layers holding it]}`, nested models included."""
    owners = {}

    def walk(container):
        for layer in container.layers:
            for weight in layer.weights:
                owners.setdefault(id(weight), []).append(layer.name)
            if isinstance(layer, keras.Model):
                walk(layer)

    walk(model)
    return owners


def _no_match_error(pattern, names, where, multipliers):
    names = sorted(set(names))
    close = difflib.get_close_matches(pattern.strip("*?"), names, n=5, cutoff=0.4)
    hint = f"Close layer names: {close}." if close else f"Some layer names: {names[:8]}."
    return ValueError(
        f"Received an invalid value for argument `multipliers`: the pattern {pattern!r} "
        f"matches no layer or variable of {where}. {hint} Patterns are fnmatch globs on "
        f"layer names or variable paths, e.g. 'block1*'. Received: multipliers={multipliers!r}"
    )


@keras.saving.register_keras_serializable(package="dl4keras")
class LayerwiseLR(keras.optimizers.Optimizer):
    """Wraps a Keras optimizer to give groups of layers their own learning rate.

    Each variable gets a multiplier `m` and is updated as if by a separate copy
    of `optimizer` with learning rate `lr * m` (`lr` the optimizer's current
    learning rate or schedule value) and the same `weight_decay`, so its
    decoupled weight decay is `lr * m * weight_decay`. See the module
    documentation for why the learning rate, not the gradient, is scaled.

    Args:
        optimizer: the Keras optimizer to wrap (e.g. `keras.optimizers.Adam(1e-3)`),
            or its name. It belongs to this wrapper from now on; keep its
            settings (schedule, `weight_decay`, `gradient_accumulation_steps`,
            clipping, `use_ema`) on it.
        multipliers: `{pattern: multiplier}`, multipliers >= 0, matched as
            described in the module documentation; unmatched variables get 1.0.
        decay: instead of `multipliers`, a depth decay in (0, 1]: the blocks of
            `dl4keras.finetune.layer_blocks(model)`, from the top one down, get
            `1, decay, decay**2, ...`.
        model: the model to train (a built `keras.Model`). Required with
            `decay`; with `multipliers` it lets patterns use nested-model names,
            checks them at once and makes `describe()` work before training.
            Without it the patterns are checked when the optimizer is built.
        name: name of the wrapper.
        variable_multipliers: what `get_config()` saves instead of `multipliers`
            or `decay`: `[[path, multiplier, group], ...]`, one per trainable
            variable in order. Used by `keras.models.load_model`.

    Raises:
        ValueError: both or neither of `multipliers` and `decay`; a multiplier
            < 0; `decay` outside (0, 1]; `decay` without `model`; a `model`
            that is not a built `keras.Model`; an `optimizer` that is itself a
            wrapper or already in a `LayerwiseLR`; a pattern that matches
            nothing (with close layer names in the message).
        RuntimeError: the installed Keras lacks the private optimizer methods
            `LayerwiseLR` relies on, or, at a training step, did not call them
            (see the module documentation).

    Examples:
        ```python
        import keras
        import numpy as np

        from dl4keras.layerwise_lr import LayerwiseLR

        body, head = keras.layers.Dense(8, name="body"), keras.layers.Dense(2, name="head")
        model = keras.Sequential([keras.Input((4,)), body, head])
        opt = LayerwiseLR(keras.optimizers.SGD(0.1), {"body": 0.1}, model=model)
        model.compile(optimizer=opt, loss="mse")
        x = np.random.default_rng(0).normal(size=(4, 4)).astype("float32")
        model.fit(x, np.zeros((4, 2)), epochs=1, verbose=0)
        print(opt.describe())  # body: 0.1 x 0.1 = 0.01, head: 0.1
        ```
    """

    def __init__(
        self,
        optimizer,
        multipliers=None,
        decay=None,
        model=None,
        name=None,
        variable_multipliers=None,
    ):
        super().__init__(learning_rate=0.0, name=name)
        given = _Shown(optimizer)
        optimizer = keras.optimizers.get(optimizer)
        if isinstance(optimizer, (LayerwiseLR, *_WRAPPER_TYPES)):
            raise _validation.invalid(
                "optimizer",
                "a plain Keras optimizer (wrap it in LossScaleOptimizer or MultiOptimizer "
                "from outside, not inside)",
                given,
            )
        if getattr(optimizer, "_dl4keras_layerwise", False):
            raise _validation.invalid(
                "optimizer",
                f"an optimizer that is not already in a LayerwiseLR, but {optimizer.name!r} is",
                given,
            )
        _check_hooks(optimizer)
        if model is not None and not (isinstance(model, keras.Model) and model.built):
            raise _validation.invalid("model", "a built keras.Model or None", model)
        self.inner_optimizer = optimizer
        self._patterns, self._decay = None, None
        self._saved = None  # [(path, multiplier, group)] when restored from a config
        if variable_multipliers is not None:
            self._saved = self._check_saved(variable_multipliers)
        # A weak reference: the optimizer must not own (and save) the model.
        self._model = weakref.ref(model) if model is not None else lambda: None
        self._assignment = []  # (multiplier, group) per built variable
        self._by_key = {}  # variable key -> multiplier, used at every step
        self._hook_calls = {name: 0 for name in HOOKS}  # Python calls, at trace time in graphs
        self._steps_without_update = 0
        if variable_multipliers is None:
            if (multipliers is None) == (decay is None):
                raise ValueError(
                    "Received invalid values for arguments `multipliers` and `decay`, expected "
                    "exactly one of them: `multipliers` (a {pattern: multiplier} dict) or "
                    f"`decay` (a float in (0, 1]). Received: multipliers={multipliers!r}, "
                    f"decay={decay!r}"
                )
            if decay is not None:
                self._set_decay(decay, model)
            else:
                self._set_patterns(multipliers, model)
        self._wrap(optimizer)

    # ----------------------------------------------------------- resolution

    @staticmethod
    def _check_saved(variable_multipliers):
        try:
            saved = [(str(p), float(m), str(g)) for p, m, g in variable_multipliers]
        except (TypeError, ValueError):
            saved = None
        if saved is None or any(not math.isfinite(m) or m < 0 for _, m, _ in saved):
            raise _validation.invalid(
                "variable_multipliers",
                "a list of [path, multiplier >= 0, group] entries",
                variable_multipliers,
            )
        return saved

    def _set_decay(self, decay, model):
        if isinstance(decay, bool) or not isinstance(decay, numbers.Real) or not 0 < decay <= 1:
            raise _validation.invalid("decay", "a number in (0, 1]", decay)
        if model is None:
            raise _validation.invalid(
                "model", "the model whose blocks `decay` scales (required with `decay`)", model
            )
        self._decay = float(decay)

    def _set_patterns(self, multipliers, model):
        if not isinstance(multipliers, dict) or not multipliers:
            raise _validation.invalid(
                "multipliers", "a non-empty {pattern: multiplier} dict", multipliers
            )
        self._patterns = {
            str(k): _check_multiplier(k, v, multipliers) for k, v in multipliers.items()
        }
        if model is not None:
            owners = _weight_owners(model)
            names = [n for w in model.weights for n in owners.get(id(w), []) + _path_names(w.path)]
            self._check_patterns(names, f"model {model.name!r}")

    def _check_patterns(self, names, where):
        for pattern in self._patterns:
            if not _matches(pattern, names):
                layer_names = [n for n in names if "/" not in n]
                raise _no_match_error(pattern, layer_names, where, self._patterns)

    def _assign(self, variables):
        """`[(multiplier, group)]` for `variables`."""
        if self._saved is not None:
            if len(self._saved) != len(variables):
                raise ValueError(
                    f"This LayerwiseLR was saved for {len(self._saved)} trainable variables, "
                    f"but is built for {len(variables)}. Make a new LayerwiseLR for this model."
                )
            return [(m, group) for _, m, group in self._saved]
        model = self._model()
        if model is None and self._decay is not None:
            raise ValueError("The model of this `decay` LayerwiseLR no longer exists.")
        if self._decay is not None:
            from dl4keras.finetune import layer_blocks

            table = {}
            for depth, (block, layers) in enumerate(reversed(layer_blocks(model))):
                for weight in (w for layer in layers for w in layer.weights):
                    table.setdefault(id(weight), (self._decay**depth, block))
            return [table.get(id(v), (1.0, DEFAULT_LABEL)) for v in variables]
        owners = _weight_owners(model) if model is not None else {}
        assignment = []
        for v in variables:
            names = owners.get(id(v), []) + _path_names(v.path)
            pattern = next((p for p in self._patterns if _matches(p, names)), None)
            if pattern is None:
                assignment.append((1.0, DEFAULT_LABEL))
            else:
                assignment.append((self._patterns[pattern], pattern))
        return assignment

    # ------------------------------------------------------ optimizer logic

    def build(self, var_list):
        if self.built:
            return
        if self._patterns is not None and self._model() is None:
            names = [n for v in var_list for n in _path_names(v.path)]
            self._check_patterns(names, "the trainable variables")
        self._assignment = self._assign(var_list)
        self._by_key = {self._var_key(v): m for v, (m, _) in zip(var_list, self._assignment)}
        self.inner_optimizer.build(var_list)
        super().build(var_list)

    def _groups(self, grads, variables):
        """`{multiplier: (grads, variables)}`, in first-seen order."""
        groups = {}
        for g, v in zip(grads, variables):
            gs, vs = groups.setdefault(self._by_key.get(self._var_key(v), 1.0), ([], []))
            gs.append(g)
            vs.append(v)
        return groups

    def _wrap(self, inner):
        """Makes `inner` apply its update and weight decay once per group."""
        update_step, weight_decay = inner._backend_update_step, inner._apply_weight_decay

        def grouped_update_step(grads, variables, learning_rate):
            self._hook_calls["_backend_update_step"] += 1
            for m, (gs, vs) in self._groups(grads, variables).items():
                if m != 0:
                    update_step(gs, vs, learning_rate if m == 1 else learning_rate * m)

        def grouped_weight_decay(variables):
            self._hook_calls["_apply_weight_decay"] += 1
            wd = inner.weight_decay
            if wd is None:
                return
            try:
                for m, (_, vs) in self._groups(variables, variables).items():
                    if m != 0:
                        inner.weight_decay = wd * m
                        weight_decay(vs)
            finally:
                inner.weight_decay = wd

        inner._backend_update_step = grouped_update_step
        inner._apply_weight_decay = grouped_weight_decay
        inner._dl4keras_layerwise = True

    def apply(self, grads, trainable_variables=None):
        grads = list(grads)
        if trainable_variables is not None:
            trainable_variables = list(trainable_variables)
            if not self.built:
                self.build(trainable_variables)
        before = dict(self._hook_calls)
        self.inner_optimizer.apply(grads, trainable_variables)
        self._check_hooks_ran(grads, trainable_variables, before)

    def _check_hooks_ran(self, grads, trainable_variables, before):
        """Raises if `inner.apply` updated variables without going through the hooks.

        Under `gradient_accumulation_steps=k` an eager step calls them only every
        k-th time (a traced step calls them once, in the graph), so this allows
        up to k - 1 steps in a row without them.
        """
        variables = trainable_variables or self._trainable_variables
        if not any(
            g is not None and not getattr(v, "overwrite_with_gradient", False)
            for g, v in zip(grads, variables)
        ):
            return  # nothing for Keras to update
        expected = ["_backend_update_step"]
        if self.inner_optimizer.weight_decay is not None:
            expected.append("_apply_weight_decay")
        missed = [name for name in expected if self._hook_calls[name] == before[name]]
        if not missed:
            self._steps_without_update = 0
            return
        self._steps_without_update += 1
        if self._steps_without_update >= (self.inner_optimizer.gradient_accumulation_steps or 1):
            raise _keras_changed(
                f"`{type(self.inner_optimizer).__name__}.apply()` updated the variables "
                f"without calling {', '.join(f'`{name}`' for name in missed)}."
            )

    @property
    def variables(self):
        return self._variables + self.inner_optimizer.variables

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @property
    def loss_scale_factor(self):
        return self.inner_optimizer.loss_scale_factor if hasattr(self, "inner_optimizer") else None

    @loss_scale_factor.setter
    def loss_scale_factor(self, value):
        if hasattr(self, "inner_optimizer"):
            self.inner_optimizer.loss_scale_factor = value

    @property
    def _model_variables_moving_average(self):
        # What `keras.callbacks.SwapEMAWeights` swaps in when this wrapper is itself
        # wrapped (in a LossScaleOptimizer, under mixed_float16): the EMA is the
        # inner optimizer's. No EMA there: AttributeError, as for any optimizer.
        inner = self.__dict__.get("inner_optimizer")
        if inner is None:
            raise AttributeError("_model_variables_moving_average")
        return inner._model_variables_moving_average

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    # ------------------------------------------------------------ reporting

    def _current_assignment(self):
        """`(variables, [(multiplier, group)])` now, or None when unknown."""
        if self.built:
            return self._trainable_variables, self._assignment
        model = self._model()
        if model is not None:
            return model.trainable_variables, self._assign(model.trainable_variables)
        return None

    def describe(self):
        """The groups as a table: multiplier, current learning rate, variables, parameters.

        Returns:
            A printable string, one row per group (pattern, or block with `decay`).

        Raises:
            ValueError: before the optimizer is built when no `model` was given.

        Examples:
            >>> import keras
            >>> from dl4keras.layerwise_lr import LayerwiseLR
            >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, name="body"),
            ...                           keras.layers.Dense(2, name="head")])
            >>> opt = LayerwiseLR(keras.optimizers.Adam(1e-3), {"body": 0.1}, model=model)
            >>> print(opt.describe())
            group      multiplier  learning rate  variables  parameters
            body              0.1         0.0001          2          40
            (default)           1          0.001          2          18
        """
        current = self._current_assignment()
        if current is None:
            raise ValueError("describe() needs the variables: pass `model=`, or build first.")
        lr = float(keras.ops.convert_to_numpy(self.learning_rate))
        rows = {}
        for v, (m, group) in zip(*current):
            row = rows.setdefault((group, m), [0, 0])
            row[0] += 1
            row[1] += int(np.prod(v.shape))
        table = [("group", "multiplier", "learning rate", "variables", "parameters")]
        for (group, m), (n, p) in rows.items():
            table.append((group, f"{m:.4g}", f"{lr * m:.4g}", str(n), f"{p:,}"))
        widths = [max(len(r[i]) for r in table) for i in range(5)]
        lines = [
            "  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])])
            for r in table
        ]
        return "\n".join(line.rstrip() for line in lines)

    def summary(self):
        """Prints `describe()`."""
        print(self.describe())

    # --------------------------------------------------------- serialisation

    def get_config(self):
        config = {
            "name": self.name,
            "optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            "multipliers": self._patterns,
            "decay": self._decay,
            "variable_multipliers": None,
        }
        current = self._current_assignment()
        if current is not None:  # resolved: saved per variable, no model needed to load
            saved = [[v.path, m, g] for v, (m, g) in zip(*current)]
            config.update(multipliers=None, decay=None, variable_multipliers=saved)
        elif self._saved is not None:
            config.update(variable_multipliers=[list(entry) for entry in self._saved])
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        optimizer = keras.saving.deserialize_keras_object(
            config.pop("optimizer"), custom_objects=custom_objects
        )
        return cls(optimizer, **config)
