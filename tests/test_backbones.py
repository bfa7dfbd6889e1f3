"""Tests for dl4keras.backbones (offline: sockets are blocked by pytest-socket)."""

import dataclasses
import hashlib
import socket
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from dl4keras import backbones, tiny_resnet
from dl4keras.backbones import Preprocess, WeightsUnavailableError

APPS = keras.applications
# The keras.applications module whose preprocess_input each backbone pairs with.
PREPROCESS_MODULES = {
    "resnet50": APPS.resnet50,
    "resnet50v2": APPS.resnet_v2,
    "vgg16": APPS.vgg16,
    "efficientnetb0": APPS.efficientnet,
    "mobilenetv3small": APPS.mobilenet_v3,
    "convnexttiny": APPS.convnext,
}
SMALL = (32, 32, 3)
TINY_DIM = tiny_resnet.DEFAULT_WIDTHS[-1]  # tiny_resnet feature size


def images(n, shape=SMALL, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny():
    """A randomly initialised tiny_resnet extractor, shared by the read-only tests."""
    return backbones.build("tiny_resnet", weights=None)


# ---------------------------------------------------------------- registry


def test_registry_lists_every_backbone():
    names = [row["name"] for row in backbones.available()]
    assert names == [
        "resnet50",
        "resnet50v2",
        "vgg16",
        "efficientnetb0",
        "mobilenetv3small",
        "convnexttiny",
        "tiny_resnet",
    ]
    for row in backbones.available():
        assert set(row) == {
            "name",
            "pretrained",
            "parameters",
            "default_input",
            "min_input",
            "preprocessing",
            "cached",
        }
        assert row["pretrained"] in ("imagenet", "cluttered_glyphs")
        assert row["preprocessing"] in Preprocess.MODES
    table = backbones.describe()
    assert table.splitlines()[0].startswith("name")
    assert all(name in table for name in names)
    assert "23,587,712" in table and "cluttered_glyphs" in table
    assert backbones.preprocessing_for("resnet50") == "caffe"
    assert backbones.preprocessing_for("resnet50v2") == "tf"
    assert backbones.preprocessing_for("tiny_resnet") == "none"


def test_describe_fits_80_columns_and_explains_its_short_columns():
    lines = backbones.describe().splitlines()
    too_wide = [line for line in lines if len(line) > 80]
    assert not too_wide, too_wide
    rows = {line.split()[0]: line.split() for line in lines[1:] if line and line[0] != " "}
    assert rows["resnet50"][1:6] == ["imagenet", "23,587,712", "224x224x3", "32x32", "caffe"]
    assert rows["tiny_resnet"][-2:] == ["none", "yes"]  # its weights ship with dl4keras
    legend = lines[lines.index("") + 1 :]
    # the legend explains each preprocessing mode in the table, and only those
    assert any(line.split()[:1] == ["caffe"] and "BGR" in line for line in legend)
    assert any(line.split()[:1] == ["tf"] and "[-1, 1]" in line for line in legend)
    assert not any(line.split()[:1] == ["torch"] for line in legend)


def test_imagenet_files_match_keras_applications():
    """Guards against drift from the URLs and hashes keras.applications uses."""
    from keras.src.applications import convnext, efficientnet, mobilenet_v3, resnet, vgg16

    expected = {
        "resnet50": (resnet.BASE_WEIGHTS_PATH, resnet.WEIGHTS_HASHES["resnet50"][1]),
        "resnet50v2": (resnet.BASE_WEIGHTS_PATH, resnet.WEIGHTS_HASHES["resnet50v2"][1]),
        "vgg16": (
            vgg16.WEIGHTS_PATH_NO_TOP.rsplit("/", 1)[0] + "/",
            "6d6bbae143d832006294945121d1f1fc",
        ),
        "efficientnetb0": (efficientnet.BASE_WEIGHTS_PATH, efficientnet.WEIGHTS_HASHES["b0"][1]),
        "mobilenetv3small": (
            mobilenet_v3.BASE_WEIGHT_PATH,
            mobilenet_v3.WEIGHTS_HASHES["small_224_1.0_float"][1],
        ),
        "convnexttiny": (convnext.BASE_WEIGHTS_PATH, convnext.WEIGHTS_HASHES["convnext_tiny"][1]),
    }
    for name, (base, file_hash) in expected.items():
        spec = backbones.get_spec(name)
        assert spec.weights_url == base + spec.weights_file, name
        assert spec.weights_hash == file_hash, name
    assert vgg16.WEIGHTS_PATH_NO_TOP == backbones.get_spec("vgg16").weights_url


# ---------------------------------------------------------------- building


@pytest.mark.parametrize("name", list(backbones.BACKBONES))
def test_build_shapes_and_parameter_counts(name):
    spec = backbones.get_spec(name)
    model = backbones.build(name, input_shape=SMALL, weights=None)
    backbone = model.get_layer(name)
    assert [layer.name for layer in model.layers] == ["image", "preprocess", name, "avg_pool"]
    assert isinstance(backbone, keras.Model)
    assert backbone.count_params() == spec.params == model.count_params()
    assert not backbone.trainable and not model.trainable_weights
    features = model(images(2))
    assert features.shape == (2, backbone.output_shape[-1])
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(features)))


def test_pooling_and_trainable(tiny):
    assert tiny.output_shape == (None, TINY_DIM)
    fmap = backbones.build("tiny_resnet", weights=None, pooling=None, trainable=True)
    assert fmap.output_shape == (None, 4, 4, TINY_DIM)
    assert fmap.get_layer("tiny_resnet").trainable and fmap.trainable_weights
    pooled = backbones.build("tiny_resnet", weights=None, pooling="max", input_shape=(48, 48, 3))
    assert pooled.layers[-1].name == "max_pool" and pooled.output_shape == (None, TINY_DIM)


def test_any_image_size_with_none_dims():
    model = backbones.build("vgg16", input_shape=(None, None, 3), weights=None)
    assert model(images(1, (40, 56, 3))).shape == (1, 512)
    assert model(images(1, (64, 32, 3))).shape == (1, 512)


def test_default_input_shape():
    model = backbones.build("tiny_resnet", weights=None)
    assert model.input_shape == (None, 32, 32, 3)
    assert backbones.get_spec("vgg16").default_input_shape == (224, 224, 3)


# ---------------------------------------------------------------- preprocessing


@pytest.mark.parametrize("name", list(PREPROCESS_MODULES))
def test_preprocessing_matches_keras_applications(name):
    x = np.random.default_rng(1).uniform(0, 255, size=(2, 5, 4, 3)).astype("float32")
    expected = PREPROCESS_MODULES[name].preprocess_input(x.copy())
    got = Preprocess(backbones.preprocessing_for(name))(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "mode, module", [("caffe", APPS.vgg16), ("tf", APPS.mobilenet_v2), ("torch", APPS.densenet)]
)
def test_every_mode_matches_keras(mode, module):
    x = np.random.default_rng(2).uniform(0, 255, size=(3, 4, 4, 3)).astype("float32")
    got = keras.ops.convert_to_numpy(Preprocess(mode)(x))
    np.testing.assert_allclose(got, module.preprocess_input(x.copy()), rtol=1e-5, atol=1e-4)
    # uint8 images are cast, not wrapped around
    got_uint8 = keras.ops.convert_to_numpy(Preprocess(mode)(x.astype("uint8")))
    expected = module.preprocess_input(x.astype("uint8").astype("float32"))
    np.testing.assert_allclose(got_uint8, expected, rtol=1e-5, atol=1e-4)


def test_preprocess_honours_the_dtype_policy():
    layer = Preprocess("caffe", dtype="mixed_float16")
    assert keras.backend.standardize_dtype(layer(images(1, (2, 2, 3))).dtype) == "float16"
    assert layer.get_config()["mode"] == "caffe"


def test_preprocess_validates_mode():
    with pytest.raises(ValueError, match=r"'bgr'.*caffe"):
        Preprocess("bgr")


@pytest.mark.parametrize("mode", Preprocess.MODES)
def test_preprocess_round_trips_through_keras_file(mode, tmp_path):
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, Preprocess(mode, name="pre")(inputs))
    path = tmp_path / "pre.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.get_layer("pre"), Preprocess)
    assert loaded.get_layer("pre").get_config() == model.get_layer("pre").get_config()
    x = images(2, (4, 4, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_built_model_round_trips(tiny, tmp_path):
    path = tmp_path / "extractor.keras"
    tiny.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = images(3)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), tiny.predict(x, verbose=0), rtol=1e-5, atol=1e-5
    )
    assert loaded.get_layer("tiny_resnet").name == "tiny_resnet"


# ---------------------------------------------------------------- weights


def perturb(model, seed=0):
    """Moves every weight (moving variances stay positive) so loads are observable."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        variable.assign(variable.numpy() + rng.uniform(0, 0.1, shape))


def test_weights_from_a_path(tmp_path):
    source = backbones.build("tiny_resnet", weights=None)
    perturb(source.get_layer("tiny_resnet"))
    x = images(4)
    expected = source.predict(x, verbose=0)

    backbone_file = tmp_path / "backbone.weights.h5"
    source.get_layer("tiny_resnet").save_weights(backbone_file)
    loaded = backbones.build("tiny_resnet", weights=backbone_file)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)

    # weights saved from the whole extractor work too, given as a str
    model_file = tmp_path / "extractor.weights.h5"
    source.save_weights(model_file)
    loaded = backbones.build("tiny_resnet", weights=str(model_file), pooling="max")
    reference = backbones.build("tiny_resnet", weights=None, pooling="max")
    reference.get_layer("tiny_resnet").set_weights(source.get_layer("tiny_resnet").get_weights())
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), reference.predict(x, verbose=0), rtol=1e-6, atol=1e-6
    )

    fresh = backbones.build("tiny_resnet", weights=None)
    assert not np.allclose(fresh.predict(x, verbose=0), expected)


def test_mismatched_weights_file(tmp_path):
    path = tmp_path / "tiny.weights.h5"
    backbones.build("tiny_resnet", weights=None).get_layer("tiny_resnet").save_weights(path)
    with pytest.raises(ValueError, match=r"does not match backbone 'mobilenetv3small'") as info:
        backbones.build("mobilenetv3small", input_shape=SMALL, weights=path)
    assert "save_weights" in str(info.value)

    garbage = tmp_path / "garbage.h5"
    garbage.write_text("not an hdf5 file")
    with pytest.raises(ValueError, match=r"garbage\.h5.*does not match"):
        backbones.build("tiny_resnet", weights=garbage)


def test_missing_or_misnamed_weights_file(tmp_path):
    missing = tmp_path / "nowhere" / "backbone.weights.h5"
    with pytest.raises(FileNotFoundError, match=r"nowhere.*backbone\.weights\.h5"):
        backbones.build("tiny_resnet", weights=missing)
    wrong_suffix = tmp_path / "model.keras"
    wrong_suffix.write_text("x")
    with pytest.raises(ValueError, match=r"not a \.weights\.h5 or \.h5 file"):
        backbones.build("tiny_resnet", weights=wrong_suffix)


def test_shipped_tiny_resnet_weights():
    """Needs dl4keras/assets/tiny_resnet_cluttered_glyphs.weights.h5.

    `tools/pretrain_tiny_resnet.py` writes it.
    """
    assert tiny_resnet.weights_path().exists()
    x = images(4)
    pretrained = backbones.build("tiny_resnet")
    by_name = backbones.build("tiny_resnet", weights="cluttered_glyphs")
    random_init = backbones.build("tiny_resnet", weights=None)
    features = pretrained.predict(x, verbose=0)
    np.testing.assert_allclose(by_name.predict(x, verbose=0), features, rtol=1e-6, atol=1e-6)
    assert not np.allclose(random_init.predict(x, verbose=0), features, atol=1e-3)
    assert {row["name"]: row["cached"] for row in backbones.available()}["tiny_resnet"]


def test_weights_source_the_backbone_does_not_have():
    with pytest.raises(ValueError, match=r"'tiny_resnet' has no 'imagenet'.*'cluttered_glyphs'"):
        backbones.build("tiny_resnet", weights="imagenet")
    with pytest.raises(ValueError, match=r"'vgg16' has no 'cluttered_glyphs'.*'imagenet'"):
        backbones.build("vgg16", weights="cluttered_glyphs")
    with pytest.raises(ValueError, match=r"Unknown `weights`: 'imagnet'"):
        backbones.build("vgg16", weights="imagnet")
    with pytest.raises(ValueError, match=r"weights=True"):
        backbones.build("vgg16", weights=True)


@pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")  # pytest-socket
def test_offline_imagenet_fails_fast_and_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert backbones.weights_cache_dir() == tmp_path / "models"
    timeout_before = socket.getdefaulttimeout()
    spec = backbones.get_spec("resnet50")

    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as info:
        backbones.build("resnet50", input_shape=SMALL)
    assert time.monotonic() - start < 10

    error = info.value
    assert isinstance(error, OSError)
    assert error.__cause__ is not None
    message = str(error)
    for needed in (
        "'resnet50'",
        spec.weights_file,
        spec.weights_url,
        str(tmp_path / "models"),
        "KERAS_HOME",
        "download_weights('resnet50')",
        "weights=None",
        "tiny_resnet",
    ):
        assert needed in message, needed
    assert "Traceback" not in message
    assert socket.getdefaulttimeout() == timeout_before
    assert not (tmp_path / "models" / spec.weights_file).exists()
    with pytest.raises(WeightsUnavailableError, match="'vgg16'"):
        backbones.download_weights("vgg16")
    with pytest.raises(ValueError, match="ship with dl4keras"):
        backbones.download_weights("tiny_resnet")


@pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")  # pytest-socket
def test_imagenet_weights_come_from_the_keras_cache(tmp_path, monkeypatch):
    """A file already in $KERAS_HOME/models is used without any network access."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    name = "mobilenetv3small"
    source = backbones.build(name, input_shape=SMALL, weights=None)
    perturb(source.get_layer(name))
    spec = backbones.get_spec(name)
    cached = tmp_path / "models" / spec.weights_file
    cached.parent.mkdir()
    source.get_layer(name).save(cached)  # legacy .h5, like the Keras ImageNet files
    md5 = hashlib.md5(cached.read_bytes()).hexdigest()
    monkeypatch.setitem(backbones.BACKBONES, name, dataclasses.replace(spec, weights_hash=md5))

    assert {row["name"]: row["cached"] for row in backbones.available()}[name]
    assert backbones.download_weights(name) == cached
    loaded = backbones.build(name, input_shape=SMALL, weights="imagenet")
    x = images(2)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), source.predict(x, verbose=0), rtol=1e-5, atol=1e-5
    )

    cached.write_bytes(b"truncated download")
    with pytest.raises(WeightsUnavailableError, match="failed its checksum"):
        backbones.build(name, input_shape=SMALL)


# ---------------------------------------------------------------- bad input


def test_unknown_name_suggests_a_close_match():
    with pytest.raises(ValueError, match=r"'resnet5'.*Did you mean 'resnet50'\?") as info:
        backbones.build("resnet5")
    assert all(name in str(info.value) for name in backbones.BACKBONES)
    with pytest.raises(ValueError, match="Available backbones"):
        backbones.preprocessing_for("inception")


@pytest.mark.parametrize(
    "name, shape, pattern",
    [
        ("vgg16", (16, 16, 3), r"too small.*minimum is 32x32"),
        ("tiny_resnet", (8, 32, 3), r"too small.*minimum is 16x16"),
        ("resnet50", (64, 64, 1), r"3 channels.*np\.repeat"),
        ("tiny_resnet", (32, 32, 4), r"3 channels"),
        ("tiny_resnet", (32, 32), r"\(height, width, 3\).*\(32, 32\)"),
        ("tiny_resnet", (32.0, 32, 3), r"\(height, width, 3\)"),
        ("tiny_resnet", "32x32", r"\(height, width, 3\)"),
    ],
)
def test_bad_input_shapes(name, shape, pattern):
    with pytest.raises(ValueError, match=pattern):
        backbones.build(name, input_shape=shape, weights=None)


def test_channels_are_checked_before_any_download(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="3 channels"):
        backbones.build("resnet50", input_shape=(64, 64, 1))  # pretrained: not a download error


def test_bad_pooling():
    with pytest.raises(ValueError, match=r"'avg', 'max', None.*pooling='mean'"):
        backbones.build("tiny_resnet", weights=None, pooling="mean")


# ---------------------------------------------------------------- features


def test_extract_features_from_an_array(tiny):
    x = images(10)
    features = backbones.extract_features(tiny, x, batch_size=4, verbose=0)
    assert isinstance(features, np.ndarray) and features.shape == (10, TINY_DIM)
    np.testing.assert_allclose(features, tiny.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_extract_features_from_datasets(tiny, capsys):
    x = images(10)
    labels = np.arange(10)
    expected = tiny.predict(x, verbose=0)

    unbatched = tf.data.Dataset.from_tensor_slices(x)
    np.testing.assert_allclose(
        backbones.extract_features(tiny, unbatched, batch_size=4, verbose=0),
        expected,
        rtol=1e-5,
        atol=1e-5,
    )

    # (images, labels), batched and shuffled on every pass: labels stay aligned
    pairs = tf.data.Dataset.from_tensor_slices((x, labels)).shuffle(10, seed=1).batch(3)
    features, got_labels = backbones.extract_features(tiny, pairs, verbose=1)
    assert sorted(got_labels.tolist()) == labels.tolist()
    np.testing.assert_allclose(features, expected[got_labels], rtol=1e-5, atol=1e-5)
    assert "4/4" in capsys.readouterr().out  # the progress bar

    # unknown cardinality
    filtered = tf.data.Dataset.from_tensor_slices((x, labels)).filter(lambda i, y: y < 5)
    features, got_labels = backbones.extract_features(tiny, filtered, batch_size=2, verbose=1)
    assert features.shape == (5, TINY_DIM) and got_labels.tolist() == [0, 1, 2, 3, 4]


def test_extract_features_rejects_bad_data(tiny):
    with pytest.raises(ValueError, match="empty"):
        backbones.extract_features(tiny, np.zeros((0, 32, 32, 3)))
    with pytest.raises(ValueError, match=r"shape \(32, 32, 3\).*images\[None\]"):
        backbones.extract_features(tiny, images(1)[0])
    with pytest.raises(ValueError, match=r"\(2, 16, 16, 3\).*\(32, 32, 3\)"):
        backbones.extract_features(tiny, images(2, (16, 16, 3)))
    with pytest.raises(TypeError, match="str"):
        backbones.extract_features(tiny, "images/")
    with pytest.raises(ValueError, match="batch_size"):
        backbones.extract_features(tiny, images(2), batch_size=0)
    with pytest.raises(ValueError, match="verbose"):
        backbones.extract_features(tiny, images(2), verbose=3)
    empty = tf.data.Dataset.from_tensor_slices(images(1)).take(0)
    with pytest.raises(ValueError, match="empty"):
        backbones.extract_features(tiny, empty, verbose=0)
    with pytest.raises(ValueError, match="infinite"):
        backbones.extract_features(tiny, tf.data.Dataset.from_tensor_slices(images(2)).repeat())
    triples = tf.data.Dataset.from_tensor_slices((images(2), np.zeros(2), np.ones(2)))
    with pytest.raises(ValueError, match=r"images or \(images, labels\)"):
        backbones.extract_features(tiny, triples)
    wrong_size = tf.data.Dataset.from_tensor_slices(images(2, (16, 16, 3))).batch(2)
    with pytest.raises(ValueError, match=r"\(32, 32, 3\)"):
        backbones.extract_features(tiny, wrong_size, verbose=0)


# ---------------------------------------------------------------- heads


def test_classifier_head_learns_separable_features():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, size=(3, 16))
    labels = rng.integers(0, 3, size=300)
    features = (centers[labels] + rng.normal(0, 0.5, size=(300, 16))).astype("float32")

    head = backbones.classifier_head(3, 16, dropout=0.2)
    assert head.output_shape == (None, 3)
    assert [layer.name for layer in head.layers] == ["features", "dropout", "predictions"]
    head.compile(
        keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    head.fit(features, labels, epochs=10, batch_size=32, verbose=0)
    assert head.evaluate(features, labels, verbose=0)[1] > 0.95

    fmap_head = backbones.classifier_head(4, (4, 4, TINY_DIM))
    assert [layer.name for layer in fmap_head.layers] == ["features", "flatten", "predictions"]


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"num_classes": 1, "input_shape": 8}, r"num_classes=1"),
        ({"num_classes": 3.0, "input_shape": 8}, r"num_classes=3\.0"),
        ({"num_classes": 3, "input_shape": 0}, r"input_shape=0"),
        ({"num_classes": 3, "input_shape": None}, r"input_shape=None"),
        ({"num_classes": 3, "input_shape": 8, "dropout": 1.0}, r"dropout=1\.0"),
    ],
)
def test_classifier_head_validates(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        backbones.classifier_head(**kwargs)


def test_attach_head_gives_an_end_to_end_classifier(tiny):
    classifier = backbones.attach_head(tiny, 5, dropout=0.1)
    assert classifier.name == "tiny_resnet_classifier"
    assert classifier.output_shape == (None, 5)
    assert classifier.get_layer("tiny_resnet") is tiny.get_layer("tiny_resnet")
    classifier.compile("adam", "sparse_categorical_crossentropy")
    history = classifier.fit(images(8), np.arange(8) % 5, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    probabilities = classifier.predict(images(2), verbose=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


# ---------------------------------------------------------------- linear probes and costs


def test_linear_probe_learns_separable_features_and_is_reproducible():
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 3
    features = rng.normal(size=(60, 5)) + 4 * np.eye(3, 5)[labels]
    args = (features[:30], labels[:30], features[30:], labels[30:])
    accuracy = backbones.linear_probe(*args, steps=100)
    assert accuracy > 0.9
    assert backbones.linear_probe(*args, steps=100) == accuracy  # same seed, same result
    # images are flattened: raw pixels are a valid input (the usual baseline)
    pixels = images(6)
    assert 0.0 <= backbones.linear_probe(pixels, np.arange(6) % 2, pixels, np.arange(6) % 2, 5)


def test_linear_probe_matches_the_hand_written_head():
    """The tutorial builds the head by hand once; the package's version is the same steps."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(20, 6)).astype("float32"), np.arange(20) % 4
    keras.utils.set_random_seed(3)
    norm = keras.layers.Normalization()
    norm.adapt(x)
    model = keras.Sequential([keras.Input((6,)), norm, backbones.classifier_head(4, 6)])
    model.compile(
        keras.optimizers.AdamW(1e-2, weight_decay=0.05),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    for _ in range(10):
        model.train_on_batch(x, y)
    expected = model.evaluate(x, y, verbose=0)[1]
    assert backbones.linear_probe(x, y, x, y, steps=10, seed=3) == pytest.approx(expected)


def test_linear_probe_validation():
    x, y = np.zeros((4, 3)), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="differ in length"):
        backbones.linear_probe(x, y[:3], x, y)
    with pytest.raises(ValueError, match="4 features per example"):
        backbones.linear_probe(np.zeros((4, 4)), y, x, y)
    with pytest.raises(ValueError, match="`steps`"):
        backbones.linear_probe(x, y, x, y, steps=0)


def test_measure_costs_rows_and_table():
    rows = backbones.measure_costs(
        ["tiny_resnet", "mobilenetv3small"],
        image_size=32,
        batch_size=2,
        batches=1,
        speed_of=["tiny_resnet"],
    )
    tiny, mobile = rows
    assert tiny["parameters"] == backbones.get_spec("tiny_resnet").params
    assert mobile["parameters"] == backbones.get_spec("mobilenetv3small").params
    assert (tiny["feature_size"], mobile["feature_size"]) == (TINY_DIM, 576)
    assert tiny["images_per_second"] > 0 and mobile["images_per_second"] is None
    assert mobile["preprocessing"] == "none" and tiny["image_size"] == 32
    table = backbones.format_costs(rows).splitlines()
    assert table[0].split()[:3] == ["backbone", "parameters", "features"]
    assert "686,240" in table[1] and "not timed" in table[2]
    assert table[1].split()[3] == "none" and table[-1].split()[0] == "none"  # and its legend
    assert max(map(len, table)) <= 80
    with pytest.raises(ValueError, match="Unknown backbone"):
        backbones.measure_costs(["resnet5"])
    # below a backbone's minimum size, the minimum is used
    assert (
        backbones.measure_costs(["tiny_resnet"], image_size=8, speed_of=[])[0]["image_size"] >= 16
    )


def test_probe_backbones_on_arrays_and_datasets():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (12, 32, 32, 3)).astype("uint8"), np.arange(12) % 3
    rows = backbones.probe_backbones(["tiny_resnet"], (x, y), (x, y), weights=None, steps=5)
    assert 0.0 <= rows[0]["accuracy"] <= 1.0 and rows[0]["feature_size"] == TINY_DIM
    dataset = tf.data.Dataset.from_tensor_slices((x.astype("float32"), y)).batch(5)
    rows_ds = backbones.probe_backbones(
        ["tiny_resnet", "tiny_resnet"], dataset, dataset, weights=None, steps=5
    )
    # every backbone reads the labels from the dataset (not only the first one)
    assert len(rows_ds) == 2 and all(0.0 <= row["accuracy"] <= 1.0 for row in rows_ds)
    assert rows_ds[1]["images_per_second"] > 0
    with_accuracy = backbones.format_costs(rows_ds).splitlines()
    assert "probe accuracy" in with_accuracy[0]
    assert max(map(len, with_accuracy)) <= 80
    with pytest.raises(ValueError, match="tuple"):
        backbones.probe_backbones(["tiny_resnet"], x, (x, y))
