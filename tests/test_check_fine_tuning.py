"""Tests for check.fine_tuning_setup: the right set-up passes, each usual mistake is named."""

import keras
import numpy as np
import pytest

from dl4keras import backbones, check, finetune

IMAGES = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("uint8")
LABELS = np.arange(8) % 5


@pytest.fixture(autouse=True)
def _clear():
    yield
    keras.backend.clear_session()


def _stage_one(rate=3e-3):
    """The exercise's first stage: a frozen backbone, the head trained (one quick fit)."""
    model = backbones.attach_head(backbones.build("tiny_resnet", input_shape=(32, 32, 3)), 5)
    finetune.freeze(model)
    finetune.unfreeze(model, "predictions")
    model.compile(keras.optimizers.Adam(rate), "sparse_categorical_crossentropy")
    model.fit(IMAGES, LABELS, epochs=1, verbose=0)
    return model


def _stage_two(model, rate=3e-4, recompile=True, fit=True, **unfreeze):
    finetune.unfreeze(model, unfreeze.pop("from_layer", "block3"), **unfreeze)
    if recompile:
        model.compile(keras.optimizers.Adam(rate), "sparse_categorical_crossentropy")
    if fit:
        model.fit(IMAGES, LABELS, epochs=1, verbose=0)
    return model


def _run(capsys, model, **kwargs):
    ok = check.fine_tuning_setup(model, **kwargs)
    out = capsys.readouterr().out
    too_long = [line for line in out.splitlines() if len(line) > 80]
    assert not too_long, too_long
    return ok, out


def _verdict(out, topic):
    """The line of `topic` (PASS or FAIL), joined with its continuation and FIX lines."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if f"] {topic}:" in line)
    end = start + 1
    while end < len(lines) and lines[end].startswith(" "):
        end += 1
    return " ".join(line.strip() for line in lines[start:end])


def test_the_reference_solution_passes(capsys):
    model = _stage_two(_stage_one())
    ok, out = _run(capsys, model, unfrozen_from="block3", head_learning_rate=3e-3)
    assert ok, out
    assert out.count("[PASS]") == 4 and "[FAIL]" not in out
    assert "All 4 checks pass" in out


def test_the_check_leaves_the_model_as_it_was(capsys):
    model = _stage_two(_stage_one(), keep_batchnorm_frozen=False)
    bn = model.get_layer("tiny_resnet").get_layer("stem_bn")
    before = keras.ops.convert_to_numpy(bn.moving_mean).copy()
    weights = [w.copy() for w in model.get_weights()]
    _run(capsys, model)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(bn.moving_mean), before)
    for a, b in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_trainable_batchnorm_is_named_with_the_fix(capsys):
    model = _stage_two(_stage_one(), keep_batchnorm_frozen=False)
    ok, out = _run(capsys, model)
    assert not ok
    line = _verdict(out, "BatchNorm")
    assert line.startswith("[FAIL]") and "moving statistics" in line
    assert "keep_batchnorm_frozen=True" in out
    assert "fix: BatchNorm, trainable parameters" in out  # BN weights also train: count is off


def test_training_false_at_construction_is_not_inference_mode_in_keras_3(capsys):
    # Keras 3.15: the `training` of the outer call (True in `fit`) reaches a layer
    # called with training=False when the model was built; only trainable=False
    # keeps BatchNorm in inference mode. The check measures it, so it fails here.
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, name="block1_conv")(inputs)
    x = keras.layers.BatchNormalization(name="block1_bn")(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(5, name="predictions")(x))
    model.compile(keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy")
    ok, out = _run(capsys, model, unfrozen_from=None)
    assert not ok
    assert _verdict(out, "BatchNorm").startswith("[FAIL] BatchNorm: 1 of 1")
    assert "partly trainable: block1" in _verdict(out, "trainable parameters")


def test_training_false_on_a_nested_backbone_does_not_reach_its_batchnorm(capsys):
    # The Keras guide's `base(inputs, training=False)` with `base.trainable = True`:
    # the backbone of `backbones.build` nests a model, and the flag does not reach
    # the BatchNorm layers inside it (Keras 3.15), so their statistics move in `fit`.
    base = backbones.build("tiny_resnet", input_shape=(32, 32, 3))
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(5, activation="softmax", name="predictions")(
        base(inputs, training=False)
    )
    model = keras.Model(inputs, outputs)
    for layer in base._flatten_layers():  # what `base.trainable = True` means
        layer.trainable = True
    model.compile(keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy")
    ok, out = _run(capsys, model, unfrozen_from=None)
    assert not ok
    assert _verdict(out, "BatchNorm").startswith("[FAIL] BatchNorm: 10 of 10")


def test_forgetting_to_recompile_is_caught(capsys, backend):
    model = _stage_two(_stage_one(), recompile=False, fit=False)
    if backend == "tensorflow":  # fits, with a stale train step: block3 does not train
        model.fit(IMAGES, LABELS, epochs=1, verbose=0)
    ok, out = _run(capsys, model)
    assert not ok
    line = _verdict(out, "recompiled")
    assert line.startswith("[FAIL]") and "not compiled again" in line
    assert "model.compile(...) after finetune.unfreeze" in out
    if backend != "tensorflow":
        # JAX and PyTorch refuse to fit: the optimizer does not know the unfrozen weights.
        # (Last: Keras 3.15's JAX trainer leaves the model's variables without values
        # when a train step raises, so the model is unusable afterwards.)
        with pytest.raises(ValueError):
            model.fit(IMAGES, LABELS, epochs=1, verbose=0)


def test_compiled_but_not_yet_fitted_passes(capsys):
    model = _stage_two(_stage_one(), fit=False)
    ok, out = _run(capsys, model)
    assert ok, out
    assert "not yet fitted" in _verdict(out, "recompiled")


def test_too_many_blocks_unfrozen(capsys):
    model = _stage_two(_stage_one(), from_layer="block2")
    ok, out = _run(capsys, model, unfrozen_from="block3")
    assert not ok
    line = _verdict(out, "trainable parameters")
    assert line.startswith("[FAIL]") and "train but should be frozen: block2" in line
    assert 'finetune.unfreeze(model, "block3")' in out


def test_head_frozen_by_mistake(capsys):
    model = _stage_two(_stage_one(), fit=False)
    model.get_layer("predictions").trainable = False
    model.compile(keras.optimizers.Adam(3e-4), "sparse_categorical_crossentropy")
    ok, out = _run(capsys, model)
    assert not ok
    assert "frozen but should train: predictions" in _verdict(out, "trainable parameters")


def test_learning_rate_not_smaller_than_the_heads(capsys):
    model = _stage_two(_stage_one(), rate=3e-3)
    ok, out = _run(capsys, model, head_learning_rate=3e-3)
    assert not ok
    line = _verdict(out, "learning rate")
    assert line.startswith("[FAIL]") and "not smaller" in line
    assert "Adam(0.0003)" in out


def test_not_compiled_and_bad_arguments(capsys):
    model = backbones.attach_head(backbones.build("tiny_resnet"), 5)
    finetune.freeze(model)
    finetune.unfreeze(model, "block3")
    ok, out = _run(capsys, model)
    assert not ok and "not compiled" in out
    with pytest.raises(ValueError, match="not a block"):
        check.fine_tuning_setup(model, unfrozen_from="block9")
    with pytest.raises(ValueError, match="keras.Model"):
        check.fine_tuning_setup("model")


def test_verbose_false_prints_nothing(capsys):
    model = _stage_two(_stage_one())
    assert check.fine_tuning_setup(model, verbose=False) is True
    assert capsys.readouterr().out == ""
