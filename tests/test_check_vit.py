"""check.vit_variants (Exercise 4.4): right predictions pass, the usual slips are named."""

import pytest

from dl4keras import check, vit

BASE = dict(conv_stem=(32, 32), pooling="token")
VARIANTS = {
    "baseline": {},
    "patch 1": dict(patch_size=1),
    "patch 4": dict(patch_size=4),
    "depth 2": dict(depth=2),
    "depth 8": dict(depth=8),
}


def truth(config, **base):
    model = vit.build("vit_digits", **{**BASE, **base, **config})
    rows, cols = model.grid_size
    return model, rows * cols + model.num_prefix_tokens, model.count_params()


def right(**base):
    out = {}
    for name, config in VARIANTS.items():
        _, tokens, parameters = truth(config, **base)
        out[name] = dict(config, tokens=tokens, parameters=parameters)
    return out


def run(capsys, predictions, **base):
    ok = check.vit_variants(predictions, **{**BASE, **base})
    text = capsys.readouterr().out
    assert all(len(line) <= 80 for line in text.splitlines()), text
    return ok, text


def test_right_predictions_pass(capsys):
    ok, text = run(capsys, right())
    assert ok is True
    assert text.count("[PASS]") == 10 and "[FAIL]" not in text
    assert "All 10 predictions right" in text


def test_right_predictions_pass_for_mean_pooling(capsys):
    ok, _ = run(capsys, right(pooling="gap"), pooling="gap")
    assert ok is True


def test_hand_formula_of_the_reference_solution_matches():
    # The tutorial's formula: stem + patch projection + class token + position
    # embedding + blocks + final LayerNorm + head.
    d, mlp = 64, 128
    for config in VARIANTS.values():
        p, depth = config.get("patch_size", 2), config.get("depth", 4)
        tokens = (8 // p) ** 2 + 1
        stem = (9 * 1 * 32 + 32) + (9 * 32 * 32 + 32)
        block = 4 * (d * d + d) + 4 * d + 2 * d * mlp + mlp + d
        count = stem + (p * p * 32 * d + d) + d + tokens * d + depth * block + 2 * d + 10 * d + 10
        assert (tokens, count) == truth(config)[1:]


def one_wrong(name, key, value):
    predictions = right()
    predictions[name] = dict(predictions[name], **{key: value})
    return predictions


@pytest.mark.parametrize(
    "name, wrong, mistake",
    [
        ("patch 1", lambda m, t, p: t - 1, "forgot the class token"),
        ("patch 1", lambda m, t, p: m.grid_size[0] + 1, "counted the patches per side"),
        ("patch 4", lambda m, t, p: 16 + 1, "counted the pixels of one patch"),
    ],
)
def test_token_slips_are_named(capsys, name, wrong, mistake):
    model, tokens, parameters = truth(VARIANTS[name])
    ok, text = run(capsys, one_wrong(name, "tokens", wrong(model, tokens, parameters)))
    assert ok is False
    assert f"[FAIL] {name}: tokens" in text
    assert mistake in text
    assert f"fix: {name} tokens." in text


def test_class_token_counted_without_one(capsys):
    predictions = right(pooling="gap")
    _, tokens, _ = truth({}, pooling="gap")
    predictions["baseline"]["tokens"] = tokens + 1
    ok, text = run(capsys, predictions, pooling="gap")
    assert ok is False and "counted a class token that mean pooling does not have" in text


def _position(model):
    return model.get_layer("position_embedding").count_params()


def _projection(model):
    return model.get_layer("patch_embedding").count_params()


@pytest.mark.parametrize(
    "name, wrong, mistake",
    [
        ("patch 1", lambda m, b: m.count_params() - _position(m), "ignored the position embedding"),
        (
            "patch 1",
            lambda m, b: m.count_params() - _position(m) + _position(b),
            "kept the baseline's position embedding",
        ),
        (
            "patch 4",
            lambda m, b: m.count_params() - _projection(m) + _projection(b),
            "kept the baseline's patch projection",
        ),
        ("patch 4", lambda m, b: b.count_params(), "assumed the parameter count does not change"),
        ("depth 8", lambda m, b: 2 * b.count_params(), "scaled the whole model by the depth"),
        (
            "depth 2",
            lambda m, b: m.count_params() - sum(c.count_params() for c in m.stem_layers),
            "forgot the convolutional stem",
        ),
        (
            "depth 2",
            lambda m, b: m.count_params() - m.get_layer("head").count_params(),
            "forgot the head",
        ),
    ],
)
def test_parameter_slips_are_named(capsys, name, wrong, mistake):
    model = truth(VARIANTS[name])[0]
    baseline = truth({})[0]
    ok, text = run(capsys, one_wrong(name, "parameters", wrong(model, baseline)))
    assert ok is False
    assert f"[FAIL] {name}: parameters" in text
    assert mistake in text
    assert "PARTS:" in text and f"= {model.count_params():,}" in text.replace("\n       ", " ")


def test_unrecognised_wrong_count_still_explains(capsys):
    ok, text = run(capsys, one_wrong("depth 8", "tokens", 3))
    assert ok is False
    assert "FIX: tokens = (height / patch) × (width / patch)" in text


def test_only_tokens_or_only_parameters(capsys):
    _, tokens, parameters = truth({"depth": 2})
    ok, text = run(capsys, {"a": dict(depth=2, tokens=tokens), "b": dict(parameters=truth({})[2])})
    assert ok is True and text.count("[PASS]") == 2


def test_verbose_false_prints_nothing(capsys):
    assert check.vit_variants(one_wrong("patch 1", "tokens", 64), verbose=False, **BASE) is False
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "predictions, message",
    [
        ({}, "non-empty dict"),
        ([1], "non-empty dict"),
        ({"a": 3}, "must be a dict"),
        ({"a": dict(patch_size=1)}, "Predict 'tokens' and/or 'parameters'"),
        ({"a": dict(patches=1, tokens=5)}, "Unknown key(s) ['patches']"),
        ({"a": dict(tokens=5.0)}, "must be an integer"),
        ({"a": dict(tokens=True)}, "must be an integer"),
    ],
)
def test_bad_predictions_raise(predictions, message):
    with pytest.raises(ValueError) as error:
        check.vit_variants(predictions, verbose=False)
    assert message in str(error.value)
