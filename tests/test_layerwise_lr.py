"""Tests for dl4keras.layerwise_lr: per-group learning rates, exact against Keras references."""

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


def random_grads(variables, step):
    rng = np.random.default_rng(step)
    return [rng.normal(size=v.shape).astype("float32") for v in variables]


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
            opt.apply([grads[i] for i in groups[m]], [copies[i] for i in groups[m]])
    return values(copies)


# ------------------------------------------------------------- semantics


@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_each_group_is_a_separate_optimizer_with_lr_times_m(kind):
    model = mlp()
    init = values(model.trainable_variables)
    opt = LayerwiseLR(OPTIMIZERS[kind](LR), {"body": 0.3}, model=model)
    for step in range(4):
        opt.apply(random_grads(model.trainable_variables, step), model.trainable_variables)
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
    opt.apply(grads, model.trainable_variables)
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
                grads, model.trainable_variables
            )
        else:
            grads = [g * m if i < 2 else g for i, g in enumerate(grads)]
            keras.optimizers.Adam(LR).apply(grads, model.trainable_variables)
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
        opt.apply(random_grads(model.trainable_variables, step), model.trainable_variables)
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
        opt.apply(grads, model.trainable_variables)
        for v, w0, g, m in zip(model.trainable_variables, before, grads, [0.5, 0.5, 1, 1]):
            np.testing.assert_allclose(w0 - v.numpy(), lr * m * g, atol=1e-6, rtol=0)
    assert "0.005" in opt.describe()  # body: 0.5 * 0.01 now


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
        after_batch = []

        def record_weights(batch, logs, model=model, after_batch=after_batch):
            after_batch.append(values(model.weights))

        record = keras.callbacks.LambdaCallback(on_train_batch_end=record_weights)
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[record])
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
    opt.apply(grads, variables)
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
    with pytest.raises(ValueError, match=r"'bdy\*' .* model 'sequential.*'body'"):
        LayerwiseLR("adam", {"bdy*": 0.1}, model=model)
    opt = LayerwiseLR("adam", {"haed": 0.1})  # no model: checked when built
    with pytest.raises(ValueError, match=r"'haed' .* trainable variables.*'head'"):
        opt.build(model.trainable_variables)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(multipliers={"body": -0.1}), r"'body' must be >= 0, got -0.1"),
        (dict(multipliers={"body": "fast"}), r"'body' must be a finite number, got 'fast'"),
        (dict(multipliers={}), r"non-empty \{pattern: multiplier\} dict, got \{\}"),
        (dict(decay=0.0), r"`decay` must be a number in \(0, 1\], got 0.0"),
        (dict(decay=1.5), r"`decay` must be a number in \(0, 1\], got 1.5"),
        (dict(), r"exactly one of `multipliers`.*multipliers=None, decay=None"),
        (dict(multipliers={"body": 0.1}, decay=0.5), r"exactly one of .*decay=0.5"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LayerwiseLR("adam", model=mlp(), **kwargs)


def test_decay_needs_the_model_and_optimizers_are_not_nested():
    with pytest.raises(ValueError, match="`decay` needs the `model`"):
        LayerwiseLR("adam", decay=0.5)
    inner = keras.optimizers.Adam()
    LayerwiseLR(inner, {"body": 0.1})
    with pytest.raises(ValueError, match="already in a LayerwiseLR"):
        LayerwiseLR(inner, {"body": 0.1})


def test_saved_multipliers_must_fit_the_model():
    opt = LayerwiseLR("sgd", variable_multipliers=[["body/kernel", 0.5, "body"]])
    with pytest.raises(ValueError, match="saved for 1 trainable variables, but is built for 4"):
        opt.build(mlp().trainable_variables)
