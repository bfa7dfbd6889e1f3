"""Tests for dl4keras.check.feature_extractor (Exercise 4.1): the right probe passes,
each typical mistake is named with its fix."""

import keras
import numpy as np
import pytest

from dl4keras import backbones, check

LAYERS = ("stem_relu", "block1_out", "block2_out", "block3_out")


@pytest.fixture(scope="module")
def tiny():
    return backbones.build("tiny_resnet", weights="pretrained").get_layer("tiny_resnet")


def _pooled(backbone, name, pooling=keras.layers.GlobalAveragePooling2D):
    return keras.Model(backbone.input, pooling()(backbone.get_layer(name).output))


def _run(make_probe, backbone, layers, capsys):
    ok = check.feature_extractor(make_probe, backbone, layers)
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines()), out
    return ok, " ".join(out.split())  # wrapped lines joined


def test_the_reference_solution_passes(tiny, capsys):
    ok, out = _run(lambda name: _pooled(tiny, name), tiny, LAYERS, capsys)
    assert ok, out
    assert out.count("[PASS]") == 4 and out.endswith("All 4 probes are right.")
    assert "average-pooled to 32 features" in out
    # one model and one name works too, and verbose=False prints nothing
    assert check.feature_extractor(_pooled(tiny, "block2_out"), tiny, "block2_out")
    capsys.readouterr()
    assert check.feature_extractor(_pooled(tiny, "block2_out"), tiny, "block2_out", verbose=False)
    assert capsys.readouterr().out == ""


def test_wrong_layer(tiny, capsys):
    ok, out = _run(lambda name: _pooled(tiny, "block3_out"), tiny, LAYERS, capsys)
    assert not ok
    assert out.count("[PASS]") == 1  # block3_out itself is right
    assert "wrong layer: the probe reads 'block3_out', not 'stem_relu'" in out
    assert "FIX:" in out and "3/4" not in out and "1/4 probes are right" in out


def test_no_pooling_feature_map_and_flatten(tiny, capsys):
    ok, out = _run(
        lambda name: keras.Model(tiny.input, tiny.get_layer(name).output),
        tiny,
        "block2_out",
        capsys,
    )
    assert not ok and "no pooling" in out and "feature map (8, 8, 96)" in out
    ok, out = _run(
        lambda name: _pooled(tiny, name, keras.layers.Flatten), tiny, "block2_out", capsys
    )
    assert not ok and "no pooling" in out and "flattened" in out


def test_max_pooling(tiny, capsys):
    ok, out = _run(
        lambda name: _pooled(tiny, name, keras.layers.GlobalMaxPooling2D),
        tiny,
        "block1_out",
        capsys,
    )
    assert not ok and "max pooling instead of average pooling" in out


def test_backbone_trainable(capsys):
    trainable = backbones.build("tiny_resnet", trainable=True).get_layer("tiny_resnet")
    ok, out = _run(lambda name: _pooled(trainable, name), trainable, "block3_out", capsys)
    assert not ok and "the backbone is trainable" in out and ".trainable = False" in out
    assert trainable.trainable  # the check changes nothing


def test_random_backbone_instead_of_the_pretrained_one(tiny, capsys):
    fresh = backbones.build("tiny_resnet", weights=None).get_layer("tiny_resnet")
    ok, out = _run(lambda name: _pooled(fresh, name), tiny, "block3_out", capsys)
    assert not ok and "matches no layer of 'tiny_resnet'" in out and "largest difference" in out


def test_not_a_model_and_errors(tiny, capsys):
    ok, out = _run(lambda name: np.zeros(3), tiny, "stem_relu", capsys)
    assert not ok and "returned a ndarray, not a keras.Model" in out

    def broken(name):
        raise KeyError(name)

    ok, out = _run(broken, tiny, "stem_relu", capsys)
    assert not ok and "make_probe raised KeyError" in out
    with pytest.raises(ValueError, match="'block9_out' is not a layer"):
        check.feature_extractor(broken, tiny, "block9_out")
    with pytest.raises(ValueError, match="`backbone`"):
        check.feature_extractor(broken, "tiny", "stem_relu")
    with pytest.raises(ValueError, match="one layer name with one model"):
        check.feature_extractor(_pooled(tiny, "stem_relu"), tiny, LAYERS)
