"""Tests for dl4keras.layerwise_lr: per-group learning rates, exact against Keras references.

`LayerwiseLR` wraps two private Keras optimizer methods. The tests in "Keras
internals" fail loudly when a Keras release changes them: their signatures,
updates computed by hand in NumPy for each group, and a step that bypasses them.

Files saved by an earlier version: run this file as a script in a checkout of
that version (`python tests/test_layerwise_lr.py DIR`, with this file copied
there) to write `.keras` files and what they must restore into DIR, then run
`DL4KERAS_LAYERWISE_LR_FILES=DIR pytest tests/test_layerwise_lr.py -k earlier`
here. Without the variable the test writes and checks them with this version.
"""

import importlib.util
import inspect
import json
import os
import sys
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

from dl4keras import backbones
from dl4keras.finetune import layer_blocks
from dl4keras.layerwise_lr import LayerwiseLR

LR = 0.01
OPTIMIZERS = {
    "sgd": lambda lr: keras.optimizers.SGD(lr, momentum=0.9),
    "adam": lambda lr: keras.optimizers.Adam(lr),
    "adamw": lambda lr: keras.optimizers.AdamW(lr, weight_decay=0.1),
}


def mlp(seed=0):
    """A tiny Sequential model: Dense "body" (4 -> 8) then Dense "head" (8 -> 3)."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, name="body"), keras.layers.Dense(3, name="head")]
    )


MULTIPLIERS3 = [0.1, 0.1, 0.5, 0.5, 1.0, 1.0]  # stem, body, head: kernel and bias each
M3 = {"stem": 0.1, "body": 0.5}  # the head keeps 1.0


def mlp3(seed=0):
    """Three Dense layers, three groups: "stem" (4 -> 8), "body" (8 -> 8), "head" (8 -> 3)."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, name="stem"),
            keras.layers.Dense(8, name="body"),
            keras.layers.Dense(3, name="head"),
        ]
    )


def random_grads(variables, step):
    rng = np.random.default_rng(step)
    return [rng.normal(size=v.shape).astype("float32") for v in variables]


def tensors(arrays):
    """NumPy gradients as backend tensors: PyTorch's optimizers take no NumPy arrays."""
    return [keras.ops.convert_to_tensor(a) for a in arrays]


def values(variables):
    return [np.array(v.numpy()) for v in variables]


def reference_run(make_opt, lr, multipliers, init, steps):
    """Each group trained by its own plain Keras optimizer with lr * m, on copies."""
    copies = [keras.Variable(w) for w in init]
    groups = {}
    for i, m in enumerate(multipliers):
        groups.setdefault(m, []).append(i)
    opts = {m: make_opt(lr * m) for m in groups if m != 0}
    for step in range(steps):
        grads = random_grads(copies, step)
        for m, opt in opts.items():
            opt.apply(tensors([grads[i] for i in groups[m]]), [copies[i] for i in groups[m]])
    return values(copies)


# ------------------------------------------------------------- semantics


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_each_group_is_a_separate_optimizer_with_lr_times_m(kind):
    model = mlp()
    init = values(model.trainable_variables)
    opt = LayerwiseLR(OPTIMIZERS[kind](LR), {"body": 0.3}, model=model)
    for step in range(4):
        opt.apply(tensors(random_grads(model.trainable_variables, step)), model.trainable_variables)
    multipliers = [0.3, 0.3, 1.0, 1.0]  # body kernel, body bias, head kernel, head bias
    expected = reference_run(OPTIMIZERS[kind], LR, multipliers, init, steps=4)
    for got, want in zip(values(model.trainable_variables), expected):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    assert int(opt.iterations) == 4


def test_sgd_group_moves_m_times_as_far():
    model = mlp()
    before = values(model.trainable_variables)
    grads = random_grads(model.trainable_variables, 0)
    opt = LayerwiseLR(keras.optimizers.SGD(0.1), {"body": 0.25})
    opt.apply(tensors(grads), model.trainable_variables)
    for v, w0, g, m in zip(model.trainable_variables, before, grads, [0.25, 0.25, 1, 1]):
        np.testing.assert_allclose(w0 - v.numpy(), 0.1 * m * g, atol=1e-6, rtol=0)


def test_multiplier_is_on_the_learning_rate_not_the_gradient():
    """Adam ignores a gradient scale: multiplying gradients by m would change nothing."""
    m = 0.1
    steps = {}
    for how in ("layerwise", "scaled_gradients"):
        model = mlp()
        before = values(model.trainable_variables)
        grads = random_grads(model.trainable_variables, 0)
        if how == "layerwise":
            LayerwiseLR(keras.optimizers.Adam(LR), {"body": m}).apply(
                tensors(grads), model.trainable_variables
            )
        else:
            grads = [g * m if i < 2 else g for i, g in enumerate(grads)]
            keras.optimizers.Adam(LR).apply(tensors(grads), model.trainable_variables)
        steps[how] = before[0] - model.trainable_variables[0].numpy()
    # The first Adam step is about lr * sign(g): scaled gradients still move by ~lr ...
    np.testing.assert_allclose(np.abs(steps["scaled_gradients"]), LR, rtol=1e-3)
    # ... the layer-wise learning rate moves by lr * m, as Adam(lr * m) does.
    np.testing.assert_allclose(np.abs(steps["layerwise"]), LR * m, rtol=1e-3)
    assert np.abs(steps["layerwise"] - steps["scaled_gradients"]).min() > 0.5 * LR
    model = mlp()
    init = values(model.trainable_variables)
    ref = reference_run(lambda lr: keras.optimizers.Adam(lr), LR, [m, m, 1, 1], init, 1)
    np.testing.assert_allclose(init[0] - ref[0], steps["layerwise"], atol=1e-6, rtol=0)


def test_multiplier_zero_leaves_the_group_unchanged_even_with_adamw_decay():
    model = mlp()
    init = values(model.trainable_variables)
    opt = LayerwiseLR(keras.optimizers.AdamW(LR, weight_decay=0.5), {"body": 0.0, "head": 0.5})
    for step in range(3):
        opt.apply(tensors(random_grads(model.trainable_variables, step)), model.trainable_variables)
    now = values(model.trainable_variables)
    np.testing.assert_array_equal(now[0], init[0])
    np.testing.assert_array_equal(now[1], init[1])
    ref = reference_run(
        lambda lr: keras.optimizers.AdamW(lr, weight_decay=0.5), LR, [0, 0, 0.5, 0.5], init, 3
    )
    np.testing.assert_allclose(now[2], ref[2], atol=1e-6, rtol=0)
    assert opt.inner_optimizer.weight_decay == 0.5  # restored after each grouped decay


def test_learning_rate_schedule():
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([0], [0.1, 0.01])
    model = mlp()
    opt = LayerwiseLR(keras.optimizers.SGD(schedule), {"body": 0.5}, model=model)
    assert "0.05" in opt.describe()  # body: 0.5 * 0.1 at step 0
    for step, lr in enumerate([0.1, 0.01, 0.01]):
        before = values(model.trainable_variables)
        grads = random_grads(model.trainable_variables, step)
        opt.apply(tensors(grads), model.trainable_variables)
        for v, w0, g, m in zip(model.trainable_variables, before, grads, [0.5, 0.5, 1, 1]):
            np.testing.assert_allclose(w0 - v.numpy(), lr * m * g, atol=1e-6, rtol=0)
    assert "0.005" in opt.describe()  # body: 0.5 * 0.01 now


class WeightsAfterEachBatch(keras.callbacks.Callback):
    """The model's weights after each batch, read through `self.model`: on JAX, that
    puts the values of the epoch in progress back into the variables first."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_train_batch_end(self, batch, logs=None):
        self.weights.append(values(self.model.weights))


def test_fit_with_gradient_accumulation():
    """Under fit(), one accumulated Adam update moves the body m times as far."""
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    y = np.arange(8) % 3
    deltas = {}
    for m in (1.0, 0.25):
        model = mlp()
        init = values(model.trainable_variables)
        inner = keras.optimizers.Adam(LR, gradient_accumulation_steps=2)
        opt = LayerwiseLR(inner, {"body": m})
        model.compile(opt, "sparse_categorical_crossentropy", jit_compile=False)
        record = WeightsAfterEachBatch()
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[record])
        after_batch = record.weights
        for w, w0 in zip(after_batch[0], init):
            np.testing.assert_array_equal(w, w0)  # 1 batch of 2: accumulated, not applied
        deltas[m] = [w0 - w for w, w0 in zip(after_batch[1], init)]
        assert int(opt.iterations) == 1
    assert np.abs(deltas[1.0][0]).max() > 1e-3
    for i, m in enumerate([0.25, 0.25, 1, 1]):
        np.testing.assert_allclose(deltas[0.25][i], m * deltas[1.0][i], atol=1e-6, rtol=0)


def test_save_and_load_restores_the_optimizer(tmp_path):
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    y = np.arange(8) % 3
    model = mlp()
    schedule = keras.optimizers.schedules.ExponentialDecay(LR, decay_steps=2, decay_rate=0.5)
    inner = keras.optimizers.AdamW(schedule, weight_decay=0.1)
    opt = LayerwiseLR(inner, {"body": 0.2})
    model.compile(opt, "sparse_categorical_crossentropy", jit_compile=False)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    opt = loaded.optimizer
    assert isinstance(opt, LayerwiseLR)
    assert keras.saving.get_registered_name(LayerwiseLR) == "dl4keras>LayerwiseLR"
    assert isinstance(opt.inner_optimizer, keras.optimizers.AdamW)
    assert int(opt.iterations) == 2
    assert opt.describe() == model.optimizer.describe()
    for a, b in zip(model.optimizer.variables, opt.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Both continue identically: the multipliers, the schedule and the state came back.
    for m in (model, loaded):
        m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.trainable_variables, loaded.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, rtol=0)


def test_decay_on_tiny_resnet_and_nested_model_patterns():
    extractor = backbones.build(
        "tiny_resnet", weights=None, input_shape=(32, 32, 3), trainable=True
    )
    model = backbones.attach_head(extractor, 5)
    blocks = layer_blocks(model)
    assert [b for b, _ in blocks] == ["stem", "block1", "block2", "block3", "predictions"]
    expected = {}
    for depth, (_, layers) in enumerate(reversed(blocks)):
        for w in (w for layer in layers for w in layer.trainable_weights):
            expected[id(w)] = 0.5**depth
    opt = LayerwiseLR(keras.optimizers.SGD(0.1), decay=0.5, model=model)
    table = opt.describe()
    assert table.splitlines()[1].split()[:3] == ["stem", "0.0625", "0.00625"]
    assert table.splitlines()[-1].split()[:3] == ["predictions", "1", "0.1"]
    variables = model.trainable_variables
    before = values(variables)
    grads = random_grads(variables, 0)
    opt.apply(tensors(grads), variables)
    for v, w0, g in zip(variables, before, grads):
        np.testing.assert_allclose(w0 - v.numpy(), 0.1 * expected[id(v)] * g, atol=1e-6, rtol=0)
    # The nested model's name covers the whole backbone.
    nested = LayerwiseLR(keras.optimizers.SGD(0.1), {"tiny_resnet": 0.1}, model=model)
    rows = [line.split() for line in nested.describe().splitlines()[1:]]
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("tiny_resnet", "0.1", "30"),
        ("(default)", "1", "2"),
    ]


def test_first_matching_pattern_wins_and_paths_match():
    model = mlp()
    opt = LayerwiseLR("sgd", {"*/bias": 0.0, "b*": 0.5}, model=model)
    rows = [line.split() for line in opt.describe().splitlines()[1:]]
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("b*", "0.5", "1"),
        ("*/bias", "0", "2"),
        ("(default)", "1", "1"),
    ]


def test_three_groups_twenty_adamw_steps_with_a_schedule():
    """20 AdamW steps on 3 groups equal separate AdamW(lr * m), schedule and decay included."""
    model = mlp3()
    init = values(model.trainable_variables)

    def schedule(m):
        return keras.optimizers.schedules.ExponentialDecay(LR * m, decay_steps=3, decay_rate=0.5)

    opt = LayerwiseLR(keras.optimizers.AdamW(schedule(1), weight_decay=0.3), M3, model=model)
    for step in range(20):
        opt.apply(tensors(random_grads(model.trainable_variables, step)), model.trainable_variables)
    expected = reference_run(
        lambda m: keras.optimizers.AdamW(schedule(m), weight_decay=0.3), 1, MULTIPLIERS3, init, 20
    )
    for got, want in zip(values(model.trainable_variables), expected):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


# ------------------------------------------------------- Keras internals
# LayerwiseLR wraps `_backend_update_step` and `_apply_weight_decay`, private
# methods of Keras optimizers. If one of these tests fails after a Keras upgrade,
# Keras changed them: read `_backend_apply_gradients` in
# keras/src/optimizers/base_optimizer.py (and the backend's optimizer) and fix
# `LayerwiseLR._wrap` and `layerwise_lr.HOOKS`, or build LayerwiseLR on
# `keras.optimizers.MultiOptimizer` (see benchmarks/layerwise_lr.py).


@pytest.mark.parametrize("kind", ["SGD", "Adam", "AdamW", "RMSprop", "Lion"])
def test_private_hooks_exist_with_the_expected_signatures(kind):
    from dl4keras.layerwise_lr import HOOKS

    optimizer = getattr(keras.optimizers, kind)()
    for name, arguments in HOOKS.items():
        method = getattr(optimizer, name, None)
        assert callable(method), f"Keras {keras.__version__}: {kind} has no `{name}`"
        assert tuple(inspect.signature(method).parameters) == arguments, (
            f"Keras {keras.__version__} changed `{kind}.{name}`{inspect.signature(method)}"
        )
    # ... and the method that calls them, whose order LayerwiseLR relies on.
    source = inspect.getsource(type(optimizer)._backend_apply_gradients)
    assert "self._apply_weight_decay(" in source and "self._backend_update_step(" in source


def hand_adamw(init, steps, lrs, weight_decay, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """AdamW in float64 NumPy, one learning rate per variable, as Keras 3.15 computes it."""
    w = [x.astype("float64") for x in init]
    m = [np.zeros_like(x) for x in w]
    v = [np.zeros_like(x) for x in w]
    for step in range(steps):
        grads = random_grads(init, step)
        t = step + 1
        for i, (g, lr) in enumerate(zip(grads, lrs)):
            w[i] = w[i] - w[i] * weight_decay * lr  # decoupled weight decay, before the step
            m[i] += (g - m[i]) * (1 - beta_1)
            v[i] += (g * g - v[i]) * (1 - beta_2)
            alpha = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
            w[i] -= alpha * m[i] / (np.sqrt(v[i]) + epsilon)
    return w


@pytest.mark.parametrize("weight_decay", [0.0, 0.3])
def test_each_group_gets_the_hand_computed_update(weight_decay):
    """Catches a Keras change that bypasses the hooks: every group would then move at `lr`."""
    model = mlp3()
    init = values(model.trainable_variables)
    inner = keras.optimizers.AdamW(LR, weight_decay=weight_decay)
    opt = LayerwiseLR(inner, M3, model=model)
    steps = 20
    for step in range(steps):
        opt.apply(tensors(random_grads(model.trainable_variables, step)), model.trainable_variables)
    lrs = [LR * m for m in MULTIPLIERS3]
    expected = hand_adamw(init, steps, lrs, weight_decay)
    for got, want, m in zip(values(model.trainable_variables), expected, MULTIPLIERS3):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0, err_msg=f"group with m={m}")
    # The groups do differ: one rate for all would be far from the hand computation.
    one_rate = hand_adamw(init, steps, [LR] * len(lrs), weight_decay)
    assert np.abs(values(model.trainable_variables)[0] - one_rate[0]).max() > 1e-2


def test_missing_or_changed_hooks_fail_at_construction():
    class NoHook(keras.optimizers.SGD):
        _backend_update_step = None

    class OtherSignature(keras.optimizers.SGD):
        def _backend_update_step(self, grads, trainable_variables):
            super()._backend_update_step(grads, trainable_variables, self.learning_rate)

    class NoDecayHook(keras.optimizers.SGD):
        def __getattribute__(self, name):
            if name == "_apply_weight_decay":
                raise AttributeError(name)
            return super().__getattribute__(name)

    version = keras.__version__.replace(".", r"\.")
    for optimizer, detail in [
        (NoHook(), r"the optimizer NoHook has no `_backend_update_step`"),
        (OtherSignature(), r"`OtherSignature._backend_update_step` takes \(grads, trainable_v"),
        (NoDecayHook(), r"the optimizer NoDecayHook has no `_apply_weight_decay`"),
    ]:
        with pytest.raises(RuntimeError, match=rf"with Keras {version}: {detail}.*pip install"):
            LayerwiseLR(optimizer, {"body": 0.5})


class BypassingSGD(keras.optimizers.SGD):
    """A stand-in for a Keras release whose optimizers no longer call the update hook."""

    def _backend_apply_gradients(self, grads, trainable_variables):
        for g, v in zip(grads, trainable_variables):
            self.update_step(g, v, self.learning_rate)


class DecayInsideAdamW(keras.optimizers.AdamW):
    """A stand-in for a Keras release that applies weight decay without the decay hook."""

    def _backend_apply_gradients(self, grads, trainable_variables):
        for v in trainable_variables:
            v.assign(v * (1 - self.weight_decay * self.learning_rate))
        self._backend_update_step(grads, trainable_variables, self.learning_rate)


@pytest.mark.parametrize("how", ["apply", "fit"])
@pytest.mark.parametrize(
    "make, missed",
    [
        (lambda: BypassingSGD(0.1), "`_backend_update_step`"),
        (lambda: DecayInsideAdamW(0.1, weight_decay=0.1), "`_apply_weight_decay`"),
    ],
)
def test_a_step_that_bypasses_the_hooks_fails_loudly(how, make, missed):
    model = mlp()
    opt = LayerwiseLR(make(), {"body": 0.5})
    with pytest.raises(RuntimeError, match=rf"updated the variables without calling {missed}"):
        if how == "apply":
            opt.apply(
                tensors(random_grads(model.trainable_variables, 0)), model.trainable_variables
            )
        else:
            model.compile(opt, "sparse_categorical_crossentropy", jit_compile=False)
            model.fit(np.ones((4, 4)), np.zeros(4), epochs=1, verbose=0)


def test_eager_gradient_accumulation_is_no_false_alarm():
    """Eagerly, Keras calls the hook on every k-th step only; the check allows for that."""
    model = mlp()
    init = values(model.trainable_variables)
    opt = LayerwiseLR(keras.optimizers.SGD(LR, gradient_accumulation_steps=3), {"body": 0.5})
    grads = random_grads(model.trainable_variables, 0)
    for _ in range(6):
        opt.apply(tensors(grads), model.trainable_variables)
    assert int(opt.iterations) == 2
    for v, w0, g, m in zip(model.trainable_variables, init, grads, [0.5, 0.5, 1, 1]):
        np.testing.assert_allclose(w0 - v.numpy(), 2 * LR * m * g, atol=1e-6, rtol=0)


# ----------------------------------------------------- training features


def test_global_clipnorm_clips_all_groups_together():
    model = mlp()
    init = values(model.trainable_variables)
    grads = random_grads(model.trainable_variables, 0)
    opt = LayerwiseLR(keras.optimizers.SGD(0.1, global_clipnorm=1.0), {"body": 0.5})
    opt.apply(tensors(grads), model.trainable_variables)
    scale = 1.0 / np.sqrt(sum(float(np.sum(g.astype("float64") ** 2)) for g in grads))
    for v, w0, g, m in zip(model.trainable_variables, init, grads, [0.5, 0.5, 1, 1]):
        np.testing.assert_allclose(w0 - v.numpy(), 0.1 * m * scale * g, atol=1e-6, rtol=0)


def test_exclude_from_weight_decay_on_the_wrapped_optimizer_is_honoured():
    model = mlp()
    init = values(model.trainable_variables)
    inner = keras.optimizers.AdamW(LR, weight_decay=0.5)
    inner.exclude_from_weight_decay(var_names=["bias"])
    opt = LayerwiseLR(inner, {"body": 0.25})
    for step in range(3):
        opt.apply(tensors(random_grads(model.trainable_variables, step)), model.trainable_variables)
    lrs = [LR * m for m in [0.25, 0.25, 1, 1]]
    decayed = hand_adamw(init, 3, lrs, 0.5)
    not_decayed = hand_adamw(init, 3, lrs, 0.0)
    for i, v in enumerate(model.trainable_variables):
        want = (not_decayed if v.path.endswith("bias") else decayed)[i]
        np.testing.assert_allclose(v.numpy(), want, atol=1e-6, rtol=0)


def first_batch_deltas(opt_for_m, multipliers=(1.0, 0.25), callbacks=()):
    """`{m: [weight change after fit's first batch]}`, a model per m from the same start."""
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    deltas = {}
    for m in multipliers:
        model = mlp()
        init = values(model.trainable_variables)
        model.compile(opt_for_m(m, model), "sparse_categorical_crossentropy", jit_compile=False)
        model.fit(x, np.arange(8) % 3, batch_size=8, epochs=1, verbose=0, callbacks=callbacks)
        deltas[m] = [w0 - w for w, w0 in zip(values(model.trainable_variables), init)]
    return deltas, model


def test_mixed_precision_wraps_layerwise_lr_in_a_loss_scale_optimizer():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        deltas, model = first_batch_deltas(
            lambda m, model: LayerwiseLR(keras.optimizers.SGD(0.1), {"body": m}, model=model)
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(model.optimizer.inner_optimizer, LayerwiseLR)
    assert int(model.optimizer.iterations) == 1
    assert np.abs(deltas[1.0][0]).max() > 1e-4
    for i, m in enumerate([0.25, 0.25, 1, 1]):
        np.testing.assert_allclose(deltas[0.25][i], m * deltas[1.0][i], atol=1e-6, rtol=1e-3)


@pytest.mark.parametrize(
    "callback",
    [
        keras.callbacks.LearningRateScheduler(lambda epoch: 0.05),
        keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=0, min_delta=1e9, factor=0.5),
    ],
    ids=["LearningRateScheduler", "ReduceLROnPlateau"],
)
def test_callbacks_that_set_the_learning_rate_keep_the_multipliers(callback):
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    model = mlp()
    opt = LayerwiseLR(keras.optimizers.SGD(0.1), {"body": 0.25}, model=model)
    model.compile(opt, "sparse_categorical_crossentropy", jit_compile=False)
    history = model.fit(x, np.arange(8) % 3, epochs=2, verbose=0, callbacks=[callback])
    assert float(opt.learning_rate) == pytest.approx(0.05)
    assert "learning_rate" in history.history  # one rate, the base one, as for any optimizer
    # One more SGD step: the body moves at 0.25 x the new rate, the head at the new rate.
    before = values(model.trainable_variables)
    grads = random_grads(model.trainable_variables, 0)
    opt.apply(tensors(grads), model.trainable_variables)
    for v, w0, g, m in zip(model.trainable_variables, before, grads, [0.25, 0.25, 1, 1]):
        np.testing.assert_allclose(w0 - v.numpy(), 0.05 * m * g, atol=1e-6, rtol=0)


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_ema_and_swap_ema_weights(policy):
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = mlp()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    inner = keras.optimizers.Adam(LR, use_ema=True, ema_momentum=0.5)
    opt = LayerwiseLR(inner, {"body": 0.25}, model=model)
    model.compile(opt, "sparse_categorical_crossentropy", jit_compile=False)
    wrapper = keras.optimizers.LossScaleOptimizer if policy == "mixed_float16" else LayerwiseLR
    assert isinstance(model.optimizer, wrapper)
    swap = keras.callbacks.SwapEMAWeights(swap_on_epoch=True)
    model.fit(
        x,
        np.arange(8) % 3,
        batch_size=4,
        epochs=2,
        verbose=0,
        callbacks=[swap],
        validation_data=(x, np.arange(8) % 3),
    )
    # At the end of training SwapEMAWeights writes the moving averages into the model.
    for v, average in zip(model.trainable_variables, inner._model_variables_moving_average):
        np.testing.assert_array_equal(v.numpy(), average.numpy())


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_compiled_and_with_xla(jit_compile):
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    deltas = {}
    for m in (1.0, 0.25):
        model = mlp()
        init = values(model.trainable_variables)
        opt = LayerwiseLR(keras.optimizers.SGD(0.1), {"body": m}, model=model)
        model.compile(opt, "sparse_categorical_crossentropy", jit_compile=jit_compile)
        model.fit(x, np.arange(8) % 3, batch_size=8, epochs=1, verbose=0)
        deltas[m] = [w0 - w for w, w0 in zip(values(model.trainable_variables), init)]
    for i, m in enumerate([0.25, 0.25, 1, 1]):
        np.testing.assert_allclose(deltas[0.25][i], m * deltas[1.0][i], atol=1e-6, rtol=0)


# ------------------------------------------------------------- reporting


def test_describe_table_and_summary(capsys):
    model = mlp()
    opt = LayerwiseLR(keras.optimizers.Adam(1e-3), {"body": 0.1}, model=model)
    assert opt.describe() == (
        "group      multiplier  learning rate  variables  parameters\n"
        "body              0.1         0.0001          2          40\n"
        "(default)           1          0.001          2          27"
    )
    opt.summary()
    assert capsys.readouterr().out.splitlines()[1].split() == ["body", "0.1", "0.0001", "2", "40"]
    opt.learning_rate = 0.002  # as ReduceLROnPlateau does: sets the wrapped optimizer's
    assert float(opt.inner_optimizer.learning_rate) == pytest.approx(0.002)
    assert opt.describe().splitlines()[1].split()[2] == "0.0002"
    with pytest.raises(ValueError, match="pass `model=`, or build first"):
        LayerwiseLR("adam", {"body": 0.1}).describe()


# ------------------------------------------------------------- bad input


def test_pattern_matching_nothing_lists_close_layer_names():
    model = mlp()
    with pytest.raises(ValueError, match=r"`multipliers`: the pattern 'bdy\*' .* 'seq.*'body'"):
        LayerwiseLR("adam", {"bdy*": 0.1}, model=model)
    opt = LayerwiseLR("adam", {"haed": 0.1})  # no model: checked when built
    with pytest.raises(ValueError, match=r"'haed' .* trainable variables.*'head'.*haed"):
        opt.build(model.trainable_variables)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(multipliers={"body": -0.1}),
            r"argument `multipliers`, expected finite multipliers >= 0, but pattern 'body' has "
            r"-0.1. Received: multipliers=\{'body': -0.1\}",
        ),
        (
            dict(multipliers={"body": "fast"}),
            r"`multipliers`.*'body' has 'fast'. Received: multipliers=\{'body': 'fast'\}",
        ),
        (dict(multipliers={"body": float("nan")}), r"`multipliers`.*'body' has nan"),
        (
            dict(multipliers={}),
            r"argument `multipliers`, expected a non-empty \{pattern: multiplier\} dict. "
            r"Received: multipliers=\{\}",
        ),
        (
            dict(multipliers=[("body", 0.1)]),
            r"`multipliers`, .* dict. Received: multipliers=\[\('body', 0.1\)\]",
        ),
        (dict(decay=0.0), r"argument `decay`, expected a number in \(0, 1\]. Received: decay=0.0"),
        (dict(decay=1.5), r"`decay`, expected a number in \(0, 1\]. Received: decay=1.5"),
        (dict(decay=True), r"`decay`, expected a number in \(0, 1\]. Received: decay=True"),
        (
            dict(),
            r"arguments `multipliers` and `decay`, expected exactly one of them.*"
            r"Received: multipliers=None, decay=None",
        ),
        (
            dict(multipliers={"body": 0.1}, decay=0.5),
            r"exactly one of them.*Received: multipliers=\{'body': 0.1\}, decay=0.5",
        ),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LayerwiseLR("adam", model=mlp(), **kwargs)


def test_bad_model_and_optimizer_arguments():
    with pytest.raises(ValueError, match=r"argument `model`, .*\(required with `decay`\)"):
        LayerwiseLR("adam", decay=0.5)
    with pytest.raises(ValueError, match=r"argument `model`, expected a built keras.Model"):
        LayerwiseLR("adam", decay=0.5, model=keras.layers.Dense(3))
    unbuilt = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match=r"a built keras.Model or None. Received: model=<Seq"):
        LayerwiseLR("adam", {"dense": 0.5}, model=unbuilt)
    scaled = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam())
    with pytest.raises(ValueError, match=r"`optimizer`, expected a plain Keras .*optimizer=<Loss"):
        LayerwiseLR(scaled, {"body": 0.1})
    with pytest.raises(ValueError, match=r"`optimizer`, expected a plain Keras optimizer"):
        LayerwiseLR(LayerwiseLR("adam", {"body": 0.1}), {"body": 0.1})
    inner = keras.optimizers.Adam(name="inner")
    LayerwiseLR(inner, {"body": 0.1})
    with pytest.raises(ValueError, match=r"in a LayerwiseLR, but 'inner' is. .*=<Adam name=inner>"):
        LayerwiseLR(inner, {"body": 0.1})
    with pytest.raises(ValueError, match=r"`variable_multipliers`.*\[\['b/kernel', -1, 'b'\]\]"):
        LayerwiseLR("sgd", variable_multipliers=[["b/kernel", -1, "b"]])


def test_saved_multipliers_must_fit_the_model():
    opt = LayerwiseLR("sgd", variable_multipliers=[["body/kernel", 0.5, "body"]])
    with pytest.raises(ValueError, match="saved for 1 trainable variables, but is built for 4"):
        opt.build(mlp().trainable_variables)


# ---------------------------------------------- files of earlier versions

COMPAT_ENV = "DL4KERAS_LAYERWISE_LR_FILES"


def compat_cases():
    """Three compiled models, one per way of making a LayerwiseLR (uses only its public API)."""
    schedule = keras.optimizers.schedules.ExponentialDecay(LR, decay_steps=2, decay_rate=0.5)
    return {
        "patterns_adamw_schedule": lambda model: LayerwiseLR(
            keras.optimizers.AdamW(schedule, weight_decay=0.1), M3, model=model
        ),
        "decay_adam_accumulation": lambda model: LayerwiseLR(
            keras.optimizers.Adam(LR, gradient_accumulation_steps=2), decay=0.3, model=model
        ),
        "no_model_sgd_zero": lambda model: LayerwiseLR(
            keras.optimizers.SGD(0.1, momentum=0.9), {"stem": 0.0, "*/bias": 0.5}
        ),
    }


def compat_data():
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    return x, np.arange(16) % 3


def write_compat_files(directory):
    """Saves each case after one epoch, with its state and the weights after one more."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    x, y = compat_data()
    summary = {}
    for name, make in compat_cases().items():
        model = mlp3()
        model.compile(make(model), "sparse_categorical_crossentropy", jit_compile=False)
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        model.save(directory / f"{name}.keras")
        arrays = {f"optimizer_{i}": v.numpy() for i, v in enumerate(model.optimizer.variables)}
        summary[name] = {"describe": model.optimizer.describe(), "optimizer_variables": len(arrays)}
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        arrays.update({f"next_{i}": v.numpy() for i, v in enumerate(model.trainable_variables)})
        np.savez(directory / f"{name}.npz", **arrays)
    (directory / "summary.json").write_text(json.dumps(summary, indent=1))


def check_compat_files(directory):
    directory = Path(directory)
    x, y = compat_data()
    summary = json.loads((directory / "summary.json").read_text())
    assert set(summary) == set(compat_cases())
    for name, saved in summary.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. Keras's "Skipping variable loading"
            model = keras.models.load_model(directory / f"{name}.keras", safe_mode=True)
        arrays = np.load(directory / f"{name}.npz")
        assert isinstance(model.optimizer, LayerwiseLR), name
        assert model.optimizer.describe() == saved["describe"], name
        assert len(model.optimizer.variables) == saved["optimizer_variables"], name
        for i, v in enumerate(model.optimizer.variables):
            np.testing.assert_array_equal(v.numpy(), arrays[f"optimizer_{i}"], err_msg=name)
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        for i, v in enumerate(model.trainable_variables):
            np.testing.assert_allclose(v.numpy(), arrays[f"next_{i}"], atol=1e-6, rtol=0)


def test_files_saved_by_an_earlier_version_load(tmp_path):
    """See the module docstring: DL4KERAS_LAYERWISE_LR_FILES names files of another version."""
    directory = os.environ.get(COMPAT_ENV)
    if directory is None:
        directory = tmp_path
        write_compat_files(directory)
    check_compat_files(directory)


# ------------------------------------------------------------ benchmark


def test_benchmark_reports_ratios_and_multi_optimizer_equality(capsys):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "layerwise_lr.py"
    spec = importlib.util.spec_from_file_location("benchmark_layerwise_lr", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--width", "8", "--steps", "2", "--rounds", "1"])
    assert set(result["ratios"]) == {"layerwise_lr", "multi_optimizer"}
    assert all(np.isfinite(r) and r > 0 for r in result["ratios"].values())
    assert result["max_abs_difference"] < 1e-6  # the public-API version computes the same
    assert "vs Adam" in capsys.readouterr().out


if __name__ == "__main__":
    write_compat_files(sys.argv[1])
    print(f"wrote {sorted(p.name for p in Path(sys.argv[1]).iterdir())}")
