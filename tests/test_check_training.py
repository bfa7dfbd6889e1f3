"""Tests for dl4keras.check.training_setup: the right set-up passes, each usual mistake is named."""

import keras
import pytest

from dl4keras import check
from dl4keras.training import schedules
from dl4keras.training.precision import mixed_precision

BATCH, EFFECTIVE, STEPS = 32, 256, 8


@pytest.fixture(autouse=True)
def _restore_policy():
    before = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(before)
    keras.backend.clear_session()


def _model(policy="mixed_bfloat16", output="float32", hidden=None):
    with mixed_precision(policy):
        return keras.Sequential(
            [
                keras.Input((8,)),
                keras.layers.Dense(16, activation="relu", dtype=hidden),
                keras.layers.Dense(16, activation="relu", dtype=hidden),
                keras.layers.Dense(3, activation="softmax", dtype=output),
            ]
        )


def _warm():
    return schedules.warmup_cosine(1e-3, total_steps=100, warmup_steps=10)


def _compile(model, learning_rate=None, steps=STEPS, wrap=None):
    if learning_rate is None:
        learning_rate = schedules.per_update(_warm(), steps)
    optimizer = keras.optimizers.AdamW(
        learning_rate, gradient_accumulation_steps=steps if steps > 1 else None
    )
    if wrap:
        optimizer = wrap(optimizer)
    model.compile(optimizer, "sparse_categorical_crossentropy")
    return model


def _run(capsys, model, **kwargs):
    kwargs = {"batch_size": BATCH, "effective_batch_size": EFFECTIVE, **kwargs}
    ok = check.training_setup(model, **kwargs)
    out = capsys.readouterr().out
    too_long = [line for line in out.splitlines() if len(line) > 80]
    assert not too_long, too_long
    return ok, out


def _fail_line(out, topic):
    """The FAIL line(s) of `topic` and their FIX, as one string."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"[FAIL] {topic}:"))
    end = start + 1
    while end < len(lines) and lines[end].startswith(" "):
        end += 1
    return " ".join(line.strip() for line in lines[start:end])


def test_the_right_set_up_passes(capsys):
    ok, out = _run(capsys, _compile(_model()))
    assert ok is True
    assert "[FAIL]" not in out and "[WARN]" not in out
    assert "All 5 checks pass: the set-up is right." in out
    assert "8 micro-batches of 32 = 256 examples per update" in out
    assert "PerUpdateSchedule(accumulation_steps=8)" in out


def test_the_right_mixed_float16_set_up_passes(capsys):
    with mixed_precision("mixed_float16"):
        model = _compile(_model("mixed_float16"))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    ok, out = _run(capsys, model, policy="mixed_float16")
    assert ok, out
    assert "LossScaleOptimizer scales the loss" in out


def test_wrong_accumulation_steps(capsys):
    model = _compile(_model(), steps=4)
    ok, out = _run(capsys, model)
    assert ok is False
    line = _fail_line(out, "accumulation")
    assert "gradient_accumulation_steps=4: 4 x 32 = 128 examples per update, not 256" in line
    assert "FIX: give the optimizer gradient_accumulation_steps=8" in line
    assert "fix: accumulation." in out


def test_no_accumulation(capsys):
    model = _compile(_model(), learning_rate=_warm(), steps=1)
    ok, out = _run(capsys, model)
    assert ok is False
    assert "gradient_accumulation_steps=None: 1 x 32 = 32 examples" in _fail_line(
        out, "accumulation"
    )


def test_an_effective_batch_that_is_no_multiple_of_the_micro_batch(capsys):
    ok, out = _run(capsys, _compile(_model()), batch_size=48)
    assert ok is False
    line = _fail_line(out, "accumulation")
    assert "256 is not a multiple of the micro-batch 48" in line and "(e.g. 32)" in line


def test_the_policy_not_set_before_building(capsys):
    model = _model("float32")
    keras.config.set_dtype_policy("mixed_bfloat16")  # too late: the layers exist
    ok, out = _run(capsys, _compile(model))
    assert ok is False
    line = _fail_line(out, "dtype policy")
    assert "2 of 2 layers (the output layer aside) use 'float32', not 'mixed_bfloat16'" in line
    assert "setting it after building changes nothing" in line


def test_an_output_that_is_not_float32(capsys):
    ok, out = _run(capsys, _compile(_model(output=None)))
    assert ok is False
    line = _fail_line(out, "output")
    assert "the output is bfloat16, not float32" in line and 'dtype="float32"' in line
    assert "[PASS] dtype policy" in out  # the hidden layers are right


def test_float16_without_loss_scaling(capsys):
    # mixed_float16 on the layers of a float32 model: compile adds no loss scaling
    model = _compile(_model("float32", hidden="mixed_float16"))
    assert not isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    ok, out = _run(capsys, model, policy="mixed_float16")
    assert ok is False
    line = _fail_line(out, "loss scaling")
    assert "compute in float16 but the optimizer does not scale the loss" in line
    assert "LossScaleOptimizer" in line
    assert "[PASS] dtype policy" in out


def test_an_explicit_loss_scale_optimizer_passes(capsys):
    model = _compile(
        _model("float32", hidden="mixed_float16"), wrap=keras.optimizers.LossScaleOptimizer
    )
    ok, out = _run(capsys, model, policy="mixed_float16")
    assert ok, out


def test_a_schedule_not_wrapped_for_accumulation(capsys):
    ok, out = _run(capsys, _compile(_model(), learning_rate=_warm()))
    assert ok is False
    line = _fail_line(out, "learning rate")
    assert "not wrapped for accumulation" in line and "run 8x too fast" in line
    assert "training.per_update(schedule, 8)" in line


def test_a_wrapper_with_other_steps_than_the_optimizer(capsys):
    model = _compile(_model(), learning_rate=schedules.PerUpdateSchedule(_warm(), 4))
    ok, out = _run(capsys, model)
    assert ok is False
    line = _fail_line(out, "learning rate")
    assert "PerUpdateSchedule(accumulation_steps=4)" in line and "2x too fast" in line


def test_a_constant_learning_rate_is_a_warning(capsys):
    ok, out = _run(capsys, _compile(_model(), learning_rate=1e-3))
    assert ok is True  # a warning, not a failure
    assert "[WARN] learning rate: a constant learning rate (0.001)" in out
    assert "warm-up + cosine" in out and "1 warning above" in out


def test_a_cosine_decay_without_warmup_target_is_a_warning(capsys):
    no_warmup = keras.optimizers.schedules.CosineDecay(1e-3, 100, warmup_steps=10)
    model = _compile(_model(), learning_rate=schedules.per_update(no_warmup, STEPS))
    ok, out = _run(capsys, model)
    assert ok is True
    assert "[WARN] warm-up: CosineDecay has no warm-up" in out
    assert "warmup_target" in out


def test_a_model_that_is_not_compiled(capsys):
    ok, out = _run(capsys, _model())
    assert ok is False
    assert "the model is not compiled" in _fail_line(out, "compile")


def test_several_mistakes_are_all_named(capsys):
    model = _compile(_model("float32"), learning_rate=_warm(), steps=4)
    ok, out = _run(capsys, model)
    assert ok is False
    assert "fix: accumulation, dtype policy, learning rate." in out


def test_verbose_false_prints_nothing(capsys):
    assert check.training_setup(_compile(_model()), BATCH, verbose=False) is True
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"model": "model"}, "model"),
        ({"batch_size": 0}, "batch_size"),
        ({"effective_batch_size": 2.5}, "effective_batch_size"),
        ({"policy": "mixed_float32"}, "policy"),
    ],
)
def test_bad_arguments(kwargs, argument):
    kwargs = {
        "model": keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]),
        "batch_size": BATCH,
        **kwargs,
    }
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        check.training_setup(**kwargs)
