"""Pretrained backbones: a registry over `keras.applications` plus the offline TinyResNet.

Every backbone built here takes **raw 0-255 RGB images** and applies its own
preprocessing *inside* the model, so the pairing "this backbone needs that
`preprocess_input`" cannot go wrong:

```
image (raw RGB, 0-255)
  -> Preprocess(mode)          layer "preprocess"  (no weights)
  -> backbone                  layer named after the backbone, e.g. "resnet50"
  -> GlobalAveragePooling2D    layer "avg_pool"    (or "max_pool", or nothing)
```

The backbone is a nested `keras.Model`: `model.get_layer("resnet50")` returns
it, and its own `.layers` are the blocks to freeze or unfreeze when
fine-tuning.

| name | pretrained on | preprocessing |
|---|---|---|
| resnet50, vgg16 | ImageNet | "caffe": RGB->BGR, minus the ImageNet mean |
| resnet50v2 | ImageNet | "tf": scale to [-1, 1] |
| efficientnetb0, mobilenetv3small, convnexttiny | ImageNet | "none": built into the model |
| tiny_resnet | digits 0-4 and letters on clutter (shipped, offline) | "none": in the model |

ImageNet weights are downloaded once and cached by Keras (`$KERAS_HOME/models`,
by default `~/.keras/models`). With no network and no cached file,
`build(..., weights="imagenet")` fails at once with a
`dl4keras.downloads.WeightsUnavailableError`
that says how to get the file, or what to use instead.

Around the extractors: `linear_probe` trains a linear softmax head on
extracted features (multinomial logistic regression); `measure_costs` and
`format_costs` tabulate each backbone's parameters, feature size,
preprocessing and `extract_features` throughput, offline (random weights);
`probe_backbones` compares the linear-probe accuracy of several backbones on
one labelled image task.

Examples:
    ```python
    from dl4keras import backbones
    from dl4keras.data import cluttered_digits

    print(backbones.describe())
    images, labels = cluttered_digits(n_per_class=4)  # 20 raw 0-255 RGB images, 5 classes
    extractor = backbones.build("tiny_resnet", input_shape=(32, 32, 3))  # shipped weights
    features = backbones.extract_features(extractor, images, verbose=0)  # (20, 192)
    head = backbones.classifier_head(5, features.shape[1], dropout=0.2)
    head.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    head.fit(features, labels, epochs=1, verbose=0)  # train the head on the features
    ```
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import textwrap
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
from keras import ops

from dl4keras import _validation, tiny_resnet
from dl4keras.downloads import (
    DOWNLOAD_TIMEOUT,
    WeightsUnavailableError,
    first_line,
    network_timeout,
    weights_cache_dir,
)

__all__ = [
    "BACKBONES",
    "BackboneSpec",
    "Preprocess",
    "attach_head",
    "available",
    "build",
    "classifier_head",
    "describe",
    "download_weights",
    "extract_features",
    "format_costs",
    "get_spec",
    "linear_probe",
    "measure_costs",
    "preprocessing_for",
    "probe_backbones",
]

POOLINGS = ("avg", "max", None)
WEIGHT_SOURCES = ("imagenet", "cluttered_glyphs")

_IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
_IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
_IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="dl4keras")
class Preprocess(keras.layers.Layer):
    """Maps raw 0-255 RGB images to what a pretrained backbone expects.

    The same arithmetic as `keras.applications.<module>.preprocess_input`,
    as a layer, so that it is saved with the model and never forgotten.

    Args:
        mode: one of:

            - `"caffe"`: RGB -> BGR, then subtract the ImageNet mean pixel
              (ResNet50, VGG16);
            - `"tf"`: scale to [-1, 1] (ResNet50V2, MobileNetV2, Xception);
            - `"torch"`: scale to [0, 1], then normalise each channel with the
              ImageNet mean and standard deviation (DenseNet);
            - `"none"`: identity, for models that preprocess inside themselves
              (EfficientNet, ConvNeXt, MobileNetV3, TinyResNet).
        **kwargs: base layer keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        - `inputs`: images `(..., height, width, 3)`, channels last, values 0-255.

    Returns:
        A float tensor of the same shape.

    Examples:
        >>> from dl4keras.backbones import Preprocess
        >>> x = np.full((1, 2, 2, 3), 255.0)
        >>> keras.ops.convert_to_numpy(Preprocess("tf")(x)[0, 0, 0]).tolist()
        [1.0, 1.0, 1.0]
        >>> red = np.array([[[[255.0, 0.0, 0.0]]]])  # one red pixel
        >>> # "caffe": to BGR (red last), minus the ImageNet mean pixel.
        >>> out = keras.ops.convert_to_numpy(Preprocess("caffe")(red))
        >>> [round(float(v), 1) for v in out[0, 0, 0]]
        [-103.9, -116.8, 131.3]
    """

    MODES = ("caffe", "tf", "torch", "none")

    def __init__(self, mode, **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(
                f"Unknown preprocessing `mode`: {mode!r}. Expected one of {self.MODES}."
            )
        self.mode = mode

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "caffe":
            x = ops.flip(x, axis=-1) - ops.convert_to_tensor(_IMAGENET_MEAN_BGR, x.dtype)
        elif self.mode == "tf":
            x = x / 127.5 - 1.0
        elif self.mode == "torch":
            mean = ops.convert_to_tensor(_IMAGENET_MEAN_RGB, x.dtype)
            std = ops.convert_to_tensor(_IMAGENET_STD_RGB, x.dtype)
            x = (x / 255.0 - mean) / std
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """What dl4keras knows about one backbone.

    Attributes:
        name: registry name, also the name of the backbone layer in `build()`.
        constructor: called as `constructor(input_shape=..., name=...)`, returns
            the randomly initialised feature extractor (no top, no pooling).
        pretrained: source of its pretrained weights, `"imagenet"` or
            `"cluttered_glyphs"`.
        preprocessing: the `Preprocess` mode it needs.
        min_size: smallest input height/width.
        default_input_shape: input shape used when `build()` gets none.
        params: parameter count of the feature extractor (`include_top=False`).
        weights_file: ImageNet weights file name in the Keras cache.
        weights_url: where Keras downloads it from.
        weights_hash: its md5 or sha256 hash.
    """

    name: str
    constructor: Callable[..., keras.Model] = dataclasses.field(repr=False)
    pretrained: str
    preprocessing: str
    min_size: int
    default_input_shape: tuple[int, int, int]
    params: int
    weights_file: str | None = None
    weights_url: str | None = None
    weights_hash: str | None = None


def _keras_app(constructor_name, **kwargs):
    """A constructor for `keras.applications.<constructor_name>` without top."""

    def constructor(input_shape, name):
        app = getattr(keras.applications, constructor_name)
        return app(include_top=False, weights=None, input_shape=input_shape, name=name, **kwargs)

    return constructor


def _imagenet(name, constructor, preprocessing, params, url, weights_hash):
    return BackboneSpec(
        name=name,
        constructor=constructor,
        pretrained="imagenet",
        preprocessing=preprocessing,
        min_size=32,
        default_input_shape=(224, 224, 3),
        params=params,
        weights_file=url.rsplit("/", 1)[1],
        weights_url=url,
        weights_hash=weights_hash,
    )


_APPS = "https://storage.googleapis.com/tensorflow/keras-applications"
BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in [
        _imagenet(
            "resnet50",
            _keras_app("ResNet50"),
            preprocessing="caffe",
            params=23_587_712,
            url=f"{_APPS}/resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
            weights_hash="4d473c1dd8becc155b73f8504c6f6626",
        ),
        _imagenet(
            "resnet50v2",
            _keras_app("ResNet50V2"),
            preprocessing="tf",
            params=23_564_800,
            url=f"{_APPS}/resnet/resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
            weights_hash="fac2f116257151a9d068a22e544a4917",
        ),
        _imagenet(
            "vgg16",
            _keras_app("VGG16"),
            preprocessing="caffe",
            params=14_714_688,
            url=f"{_APPS}/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
            weights_hash="6d6bbae143d832006294945121d1f1fc",
        ),
        _imagenet(
            "efficientnetb0",
            _keras_app("EfficientNetB0"),
            preprocessing="none",
            params=4_049_571,
            url="https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
            weights_hash="50bc09e76180e00e4465e1a485ddc09d",
        ),
        _imagenet(
            "mobilenetv3small",
            _keras_app("MobileNetV3Small", include_preprocessing=True),
            preprocessing="none",
            params=939_120,
            url=f"{_APPS}/mobilenet_v3/weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
            weights_hash="d3e8ec802a04aa4fc771ee12a9a9b836",
        ),
        _imagenet(
            "convnexttiny",
            _keras_app("ConvNeXtTiny", include_preprocessing=True),
            preprocessing="none",
            params=27_820_128,
            url=f"{_APPS}/convnext/convnext_tiny_notop.h5",
            weights_hash="d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1",
        ),
        BackboneSpec(
            name="tiny_resnet",
            constructor=tiny_resnet.build_tiny_resnet,
            pretrained=tiny_resnet.PRETRAINED_ON,
            preprocessing="none",
            min_size=tiny_resnet.MIN_SIZE,
            default_input_shape=(32, 32, 3),
            params=686_240,
        ),
    ]
}
"""All backbones by name: a [`BackboneSpec`][dl4keras.backbones.BackboneSpec] for each.

[`describe`][dl4keras.backbones.describe] prints them as a table.
"""


def get_spec(name) -> BackboneSpec:
    """Returns the `BackboneSpec` of a backbone.

    Raises:
        ValueError: if `name` is not in the registry (the message lists the
            valid names and suggests the closest one).
    """
    if name in BACKBONES:
        return BACKBONES[name]
    close = difflib.get_close_matches(str(name).lower(), BACKBONES, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"Unknown backbone: {name!r}.{hint} Available backbones: {', '.join(BACKBONES)}."
    )


def preprocessing_for(name) -> str:
    """The `Preprocess` mode backbone `name` needs (`build()` applies it for you).

    Examples:
        >>> from dl4keras.backbones import preprocessing_for
        >>> preprocessing_for("resnet50")
        'caffe'
        >>> preprocessing_for("tiny_resnet")  # it preprocesses inside itself
        'none'
    """
    return get_spec(name).preprocessing


def _local_weights(spec) -> Path | None:
    """The local pretrained weights file of `spec`, or None if there is none yet."""
    if spec.pretrained == tiny_resnet.PRETRAINED_ON:
        try:
            return tiny_resnet.weights_path()
        except FileNotFoundError:
            return None
    path = weights_cache_dir() / spec.weights_file
    return path if path.exists() else None


# What each `Preprocess` mode does, for the legends under the printed tables.
_DESCRIPTIONS = {
    "caffe": "RGB to BGR, minus the ImageNet mean",
    "tf": "scaled to [-1, 1]",
    "torch": "scaled to [0, 1], ImageNet mean and std",
    "none": "nothing: the model preprocesses inside itself",
}


def _table(rows, right=()):
    """`rows` (the header first) as aligned text; columns whose index is in `right` align right."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]


def _preprocessing_legend(modes):
    """One line per `Preprocess` mode in `modes` (in the order of `Preprocess.MODES`)."""
    modes = set(modes)
    used = [m for m in Preprocess.MODES if m in modes]
    width = max(map(len, used), default=0)
    return [f"  {m.ljust(width)}  {_DESCRIPTIONS[m]}" for m in used]


def available() -> list[dict]:
    """The registry as a list of dicts, one per backbone.

    Keys: `name`, `pretrained` (weights source), `parameters` (feature
    extractor), `default_input`, `min_input`, `preprocessing` (the
    `Preprocess` mode) and `cached` (whether the pretrained weights are on
    this machine, so that `build(name)` works offline).
    """
    return [
        {
            "name": spec.name,
            "pretrained": spec.pretrained,
            "parameters": spec.params,
            "default_input": spec.default_input_shape,
            "min_input": (spec.min_size, spec.min_size),
            "preprocessing": spec.preprocessing,
            "cached": _local_weights(spec) is not None,
        }
        for spec in BACKBONES.values()
    ]


def describe() -> str:
    """The registry as a printable table, at most 80 characters wide.

    One row per backbone: the dataset of its pretrained weights, its
    parameters (the feature extractor), its default and smallest input, the
    `Preprocess` mode that `build()` puts in front of it (explained under the
    table), and whether its pretrained weights are on this machine
    (`build(name)` then works offline).

    Examples:
        ```python
        from dl4keras import backbones

        print(backbones.describe())  # one row per backbone, then the legend
        ```
    """
    header = ("name", "pretrained on", "parameters", "input", "min", "prep.", "cached")
    registry = available()
    rows = [header] + [
        (
            row["name"],
            row["pretrained"],
            f"{row['parameters']:,}",
            "x".join(map(str, row["default_input"])),
            "x".join(map(str, row["min_input"])),
            row["preprocessing"],
            "yes" if row["cached"] else "no",
        )
        for row in registry
    ]
    legend = [
        "",
        "input: the default input shape; min: the smallest height x width.",
        "cached: the pretrained weights are here, so build(name) works offline.",
        "prep.: the preprocessing build() puts in front of the backbone:",
        *_preprocessing_legend(row["preprocessing"] for row in registry),
    ]
    return "\n".join(_table(rows, right={2}) + legend)


# --------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------


def download_weights(name) -> Path:
    """Returns the local path of the ImageNet weights of `name`, downloading them once.

    Run it once with internet access to fill the Keras cache; afterwards
    `build(name)` works offline. Each network operation waits at most
    `dl4keras.downloads.DOWNLOAD_TIMEOUT` seconds.

    Args:
        name: a backbone pretrained on ImageNet, e.g. `"resnet50"`.

    Returns:
        The `Path` of the cached weights file.

    Raises:
        ValueError: if `name` is unknown or has no ImageNet weights.
        WeightsUnavailableError: if the file is not cached and cannot be
            downloaded now; the message names the file, its URL, the cache
            folder, and the alternatives.

    Examples:
        ```
        python -c "from dl4keras import backbones; backbones.download_weights('resnet50')"
        ```
    """
    spec = get_spec(name)
    if spec.weights_url is None:
        raise ValueError(
            f"Backbone {spec.name!r} has no ImageNet weights to download: its pretrained "
            f"weights ({spec.pretrained!r}) ship with dl4keras."
        )
    cache = weights_cache_dir()
    target = cache / spec.weights_file
    was_cached = target.exists()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with network_timeout(DOWNLOAD_TIMEOUT):
            path = keras.utils.get_file(
                spec.weights_file,
                spec.weights_url,
                cache_dir=str(cache.parent),
                cache_subdir=cache.name,
                file_hash=spec.weights_hash,
            )
    except Exception as exc:
        raise WeightsUnavailableError(_unavailable_message(spec, target, was_cached, exc)) from exc
    return Path(path)


def _unavailable_message(spec, target, was_cached, exc):
    """What is missing and what to do, in lines of at most 80 characters (bar URLs and paths)."""
    where = (
        "The cached file failed its checksum (an interrupted download?) and downloading "
        "it again failed:"
        if was_cached
        else "They are not in the Keras cache and downloading them failed:"
    )

    def fill(text, indent=""):  # URLs and paths stay whole
        return textwrap.fill(
            text,
            80,
            initial_indent=indent,
            subsequent_indent=indent + "  ",
            break_long_words=False,
            break_on_hyphens=False,
        )

    def item(text):
        return fill(f"- {text}", "  ")

    build = f"backbones.build('{spec.name}'"
    return "\n".join(
        [
            f"ImageNet weights for backbone {spec.name!r} are not available.",
            fill(where),
            fill(first_line(exc), "  "),
            f"  weights file: {spec.weights_file}",
            f"  URL:          {spec.weights_url}",
            f"  Keras cache:  {target.parent}",
            "                (set KERAS_HOME to use another folder)",
            "To get them:",
            item("run once with internet access (Keras keeps the file; later runs are offline):"),
            '    python -c "from dl4keras import backbones; '
            f"backbones.download_weights('{spec.name}')\"",
            item("or download the URL yourself and save it as"),
            f"    {target}",
            "Or do without them:",
            item(f"{build}, weights=None): random initialisation, no download;"),
            item(f"{build}, weights='path/to/file.h5'): weights you have locally;"),
            item(
                "backbones.build('tiny_resnet'): a small backbone whose pretrained weights "
                "ship with dl4keras (works offline)."
            ),
        ]
    )


def _resolve_weights(spec, weights):
    """Maps the `weights` argument to None, a source name, or an existing Path."""
    if weights is None:
        return None
    if weights == "pretrained":
        return spec.pretrained
    if weights in WEIGHT_SOURCES:
        if weights != spec.pretrained:
            raise ValueError(
                f"Backbone {spec.name!r} has no {weights!r} weights. Available: "
                f"weights='pretrained' (= {spec.pretrained!r}), weights={spec.pretrained!r}, "
                "weights=None (random initialisation) or a path to a .weights.h5/.h5 file."
            )
        return weights
    if not isinstance(weights, str | os.PathLike):
        raise ValueError(
            "`weights` must be 'pretrained', 'imagenet', 'cluttered_glyphs', None or a path "
            f"to a .weights.h5/.h5 file. Received: weights={weights!r}"
        )
    path = Path(weights)
    if path.suffix != ".h5":
        if path.exists():
            raise ValueError(
                f"`weights` file {str(path)!r} is not a .weights.h5 or .h5 file. Save backbone "
                "weights with `model.get_layer(name).save_weights('file.weights.h5')`."
            )
        if isinstance(weights, str) and "/" not in weights and os.sep not in weights:
            raise ValueError(
                f"Unknown `weights`: {weights!r}. Expected 'pretrained', {spec.pretrained!r}, "
                "None, or a path to a .weights.h5/.h5 file."
            )
    if not path.exists():
        raise FileNotFoundError(f"`weights` file not found: {str(path)!r}.")
    return path


def _load_weights(model, path, fallback=None):
    """Loads `path` into `model` (or else into `fallback`), turning a mismatch into ValueError.

    Keras reports some mismatches only as "Skipping ..." warnings and leaves
    those layers randomly initialised; they count as errors here.
    """
    errors = []
    for target in (model, fallback):
        if target is None:
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                target.load_weights(str(path))
            except Exception as exc:  # h5py, keras and OS errors alike
                errors.append(exc)
                continue
        skipped = [w for w in caught if "Skipping" in str(w.message)]
        if not skipped:
            for w in caught:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            return
        errors.append(ValueError(str(skipped[0].message)))
    error = errors[0]
    raise ValueError(
        f"The weights file {str(path)!r} does not match backbone {model.name!r} "
        f"({len(model.weights)} weight tensors): {first_line(error)}\n"
        "It must hold weights of the same architecture, saved with "
        f"`model.get_layer({model.name!r}).save_weights('file.weights.h5')` or "
        "`model.save_weights(...)` on a model made by `build()`, or be the Keras "
        "ImageNet .h5 file of this backbone."
    ) from error


# --------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------


def _check_input_shape(spec, input_shape):
    if input_shape is None:
        return spec.default_input_shape
    shape = tuple(input_shape) if isinstance(input_shape, list | tuple) else None
    if (
        shape is None
        or len(shape) != 3
        or any(
            s is not None and (isinstance(s, bool) or not isinstance(s, int) or s < 1)
            for s in shape
        )
    ):
        raise ValueError(
            f"`input_shape` must be (height, width, 3), channels last. Received: "
            f"input_shape={input_shape!r}"
        )
    if shape[-1] != 3:
        raise ValueError(
            f"Backbone {spec.name!r} takes RGB images with 3 channels (its pretrained weights "
            f"and preprocessing are for RGB), but input_shape={input_shape!r} has "
            f"{shape[-1]}. For grayscale images repeat the channel: "
            "`np.repeat(images, 3, axis=-1)`."
        )
    if any(s is not None and s < spec.min_size for s in shape[:2]):
        raise ValueError(
            f"input_shape={input_shape!r} is too small for backbone {spec.name!r}: the minimum "
            f"is {spec.min_size}x{spec.min_size}. Resize the images, e.g. with "
            f"`keras.layers.Resizing({spec.min_size}, {spec.min_size})`."
        )
    return shape


def build(name, input_shape=None, weights="pretrained", pooling="avg", trainable=False):
    """Builds a feature extractor that takes raw 0-255 RGB images.

    The model is `image -> Preprocess -> backbone -> pooling`: the preprocessing
    the backbone's weights expect is a layer of the model, so images go in as
    they are (`uint8` or float, 0-255). The backbone is the nested model
    `model.get_layer(name)`; freeze or unfreeze its layers for fine-tuning.

    Note on BatchNormalization: in Keras 3 a BatchNormalization layer whose
    `trainable` is False runs in inference mode. When you unfreeze the
    backbone to fine-tune it, keep its BatchNormalization layers frozen (see
    `dl4keras.finetune`), or their statistics drift on small batches.

    Args:
        name: a registry name, see `describe()`: `"resnet50"`, `"resnet50v2"`,
            `"vgg16"`, `"efficientnetb0"`, `"mobilenetv3small"`,
            `"convnexttiny"` or `"tiny_resnet"`.
        input_shape: `(height, width, 3)`; `None` for the backbone's default
            (224x224 for ImageNet backbones, 32x32 for tiny_resnet). Height
            and width may be None (any size) for the keras.applications ones.
        weights: `"pretrained"` (the backbone's own pretrained weights:
            ImageNet, or the shipped cluttered-glyphs weights for
            tiny_resnet), the source by name (`"imagenet"`,
            `"cluttered_glyphs"`), `None` (random initialisation), or the path
            of a `.weights.h5` / `.h5` file holding weights of this backbone.
        pooling: `"avg"` or `"max"` global pooling to a `(batch, channels)`
            vector, or `None` to keep the `(batch, h, w, channels)` feature map.
        trainable: sets `backbone.trainable`; False (frozen) for feature
            extraction.

    Returns:
        A functional `keras.Model` named `f"{name}_features"` with layers
        `"image"` (input), `"preprocess"`, `name` (the backbone) and
        `"avg_pool"`/`"max_pool"`.

    Raises:
        ValueError: unknown name (listing the valid ones), bad input shape
            (wrong rank, not 3 channels, below the backbone's minimum size),
            bad pooling, weights the backbone does not have, or a weights file
            that does not match the backbone.
        FileNotFoundError: `weights` is a path that does not exist (or the
            shipped tiny_resnet weights are missing from the install).
        WeightsUnavailableError: ImageNet weights neither cached nor
            downloadable now (offline).

    Examples:
        >>> from dl4keras.backbones import build
        >>> extractor = build("tiny_resnet", input_shape=(32, 32, 3))
        >>> extractor.output_shape
        (None, 192)
        >>> [layer.name for layer in extractor.layers]
        ['image', 'preprocess', 'tiny_resnet', 'avg_pool']
        >>> backbone = extractor.get_layer("tiny_resnet")  # to fine-tune
        >>> backbone.trainable  # frozen for feature extraction
        False
    """
    spec = get_spec(name)
    input_shape = _check_input_shape(spec, input_shape)
    if pooling not in POOLINGS:
        raise ValueError(f"`pooling` must be one of {POOLINGS}. Received: pooling={pooling!r}")
    source = _resolve_weights(spec, weights)
    if source == "imagenet":
        source = download_weights(spec.name)  # before building: fail fast when offline
    elif source == "cluttered_glyphs":
        source = tiny_resnet.weights_path()

    backbone = spec.constructor(input_shape=input_shape, name=spec.name)
    inputs = keras.Input(input_shape, name="image")
    x = Preprocess(spec.preprocessing, name="preprocess")(inputs)
    x = backbone(x)
    if pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    model = keras.Model(inputs, x, name=f"{spec.name}_features")
    if source is not None:
        _load_weights(backbone, source, fallback=model)
    backbone.trainable = trainable
    return model


# --------------------------------------------------------------------------
# Features and heads
# --------------------------------------------------------------------------


def _is_tf_dataset(data):
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover - tensorflow is a dependency
        return False
    return isinstance(data, tf.data.Dataset)


def _check_images(model, images, what):
    expected = tuple(model.inputs[0].shape)
    shape = tuple(images.shape)
    if len(shape) != len(expected):
        hint = " For a single image use `images[None]`." if len(shape) == len(expected) - 1 else ""
        raise ValueError(
            f"{what} must have shape {('batch',) + expected[1:]} for model {model.name!r}, "
            f"got shape {shape}.{hint}"
        )
    if any(
        e is not None and s is not None and s != e
        for s, e in zip(shape[1:], expected[1:], strict=True)
    ):
        raise ValueError(
            f"{what} have shape {shape} but model {model.name!r} takes {expected[1:]} images. "
            "Build the extractor with a matching `input_shape`, or resize the images."
        )


def extract_features(model, data, batch_size=64, verbose="auto"):
    """Runs a feature extractor over a dataset, batch by batch.

    Args:
        model: a feature extractor, e.g. from `build()`.
        data: a NumPy array of images `(n, height, width, 3)`, or a
            `tf.data.Dataset` of images or of `(images, labels)` pairs,
            batched or not (unbatched ones are batched by `batch_size`). The
            dataset is iterated once, so labels stay aligned with features
            even if it shuffles. A dataset needs TensorFlow installed but
            works on every Keras backend: its batches are read as NumPy.
        batch_size: images per forward pass (arrays and unbatched datasets).
        verbose: `"auto"`, 0 (silent), 1 (progress bar) or 2 (one line).

    Returns:
        `features` as a NumPy array, or `(features, labels)` for a dataset of
        pairs.

    Raises:
        ValueError: empty data, images of the wrong rank or size, a dataset
            whose elements are neither images nor (images, labels), an
            infinite dataset, or a bad `batch_size`/`verbose`.
        TypeError: `data` is neither an array nor a `tf.data.Dataset`.

    Examples:
        >>> from dl4keras.backbones import build, extract_features
        >>> extractor = build("tiny_resnet", weights=None)
        >>> extract_features(extractor, np.zeros((10, 32, 32, 3)), verbose=0).shape
        (10, 192)
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: {batch_size!r}")
    if verbose not in ("auto", 0, 1, 2):
        raise ValueError(f"`verbose` must be 'auto', 0, 1 or 2. Received: {verbose!r}")
    if _is_tf_dataset(data):
        return _extract_from_dataset(model, data, batch_size, 1 if verbose == "auto" else verbose)
    if isinstance(data, list | tuple):
        data = np.asarray(data)
    if not isinstance(data, np.ndarray):
        raise TypeError(
            "`data` must be a NumPy array of images or a tf.data.Dataset. "
            f"Received an object of type {type(data).__name__}."
        )
    if data.size == 0 or len(data) == 0:
        raise ValueError(f"`data` is empty (shape {data.shape}): there are no images.")
    _check_images(model, data, "`data` images")
    return np.asarray(model.predict(data, batch_size=batch_size, verbose=verbose))


def _extract_from_dataset(model, dataset, batch_size, verbose):
    import tensorflow as tf

    spec = dataset.element_spec
    if isinstance(spec, tuple) and len(spec) == 2:
        image_spec, with_labels = spec[0], True
    elif isinstance(spec, tf.TensorSpec):
        image_spec, with_labels = spec, False
    else:
        raise ValueError(
            "The dataset must yield images or (images, labels) pairs. Received elements "
            f"with spec {spec}."
        )
    rank = len(model.inputs[0].shape)
    if image_spec.shape.rank == rank - 1:
        dataset = dataset.batch(batch_size)
    cardinality = int(dataset.cardinality())
    if cardinality == int(tf.data.INFINITE_CARDINALITY):
        raise ValueError("The dataset is infinite (a `.repeat()` without count?).")
    progbar = None
    if verbose:
        progbar = keras.utils.Progbar(cardinality if cardinality >= 0 else None, verbose=verbose)
    features, labels = [], []
    # As NumPy, the batches feed a model of any Keras backend (JAX and PyTorch
    # take no TensorFlow tensors).
    for step, element in enumerate(dataset.as_numpy_iterator(), start=1):
        images = element[0] if with_labels else element
        if step == 1:
            _check_images(model, images, "The dataset's images")
        features.append(np.asarray(model.predict_on_batch(images)))
        if with_labels:
            labels.append(np.asarray(element[1]))
        if progbar is not None:
            progbar.update(step)
    if not features:
        raise ValueError("The dataset is empty: it yielded no images.")
    if progbar is not None and progbar.target is None:
        progbar.update(step, finalize=True)
    features = np.concatenate(features)
    return (features, np.concatenate(labels)) if with_labels else features


def _head(x, num_classes, dropout):
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"`num_classes` must be an integer >= 2. Received: num_classes={num_classes!r}"
        )
    if not isinstance(dropout, int | float) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"`dropout` must be a float in [0, 1). Received: dropout={dropout!r}")
    if len(x.shape) > 2:
        x = keras.layers.Flatten(name="flatten")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)


def classifier_head(num_classes, input_shape, dropout=0.0, name="classifier_head"):
    """A linear softmax classifier to train on extracted features.

    Args:
        num_classes: number of classes (>= 2).
        input_shape: feature size (an int, e.g. `features.shape[1]`) or
            shape tuple (feature maps are flattened).
        dropout: dropout rate on the features before the Dense layer.
        name: model name.

    Returns:
        An uncompiled functional `keras.Model`:
        `features -> [Flatten] -> [Dropout] -> Dense(num_classes, softmax)`.

    Raises:
        ValueError: bad `num_classes`, `input_shape` or `dropout`.

    Examples:
        >>> from dl4keras.backbones import classifier_head
        >>> head = classifier_head(5, 192, dropout=0.2)
        >>> head.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        >>> head.output_shape
        (None, 5)
        >>> features, labels = np.random.rand(10, 192), np.arange(10) % 5
        >>> history = head.fit(features, labels, epochs=1, verbose=0)
        >>> sorted(history.history)
        ['accuracy', 'loss']
    """
    shape = (input_shape,) if isinstance(input_shape, int) else input_shape
    if (
        not isinstance(shape, list | tuple)
        or not shape
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape)
    ):
        raise ValueError(
            "`input_shape` must be a positive int (the feature size) or a tuple of them. "
            f"Received: input_shape={input_shape!r}"
        )
    inputs = keras.Input(tuple(shape), name="features")
    return keras.Model(inputs, _head(inputs, num_classes, dropout), name=name)


def attach_head(model, num_classes, dropout=0.0, name=None):
    """Puts a softmax classifier on top of a feature extractor: an end-to-end model.

    The new model shares the extractor's layers, so
    `classifier.get_layer(backbone_name)` is the same backbone.

    Args:
        model: a feature extractor, e.g. from `build()`.
        num_classes: number of classes (>= 2).
        dropout: dropout rate before the Dense layer.
        name: model name; default `"<backbone>_classifier"`.

    Returns:
        An uncompiled functional `keras.Model` from raw images to class
        probabilities.

    Examples:
        >>> from dl4keras.backbones import attach_head, build
        >>> clf = attach_head(build("tiny_resnet", weights=None), 5)
        >>> clf.name, clf.input_shape, clf.output_shape  # raw images in, probabilities out
        ('tiny_resnet_classifier', (None, 32, 32, 3), (None, 5))
    """
    if name is None:
        name = f"{model.name.removesuffix('_features')}_classifier"
    return keras.Model(model.inputs, _head(model.outputs[0], num_classes, dropout), name=name)


# --------------------------------------------------------------------------
# Linear probes and costs
# --------------------------------------------------------------------------


def linear_probe(
    x_train,
    y_train,
    x_eval,
    y_eval,
    steps=300,
    learning_rate=1e-2,
    weight_decay=0.05,
    num_classes=None,
    seed=0,
):
    """Trains a linear softmax classifier on features; returns its eval accuracy.

    The model is `Normalization` (adapted to `x_train`, so each feature is
    standardised) followed by `classifier_head` (one `Dense` softmax layer):
    multinomial logistic regression. It is trained with AdamW for `steps`
    full-batch gradient steps (`train_on_batch` on the whole training set,
    which suits the small labelled sets of transfer learning). The same
    `seed` gives the same initial weights, so two calls on the same data give
    the same accuracy. Inputs of any shape are flattened: raw pixels work
    too (the usual baseline).

    Args:
        x_train: training features `(n, ...)`, e.g. from `extract_features`.
        y_train: int labels `(n,)`, `0 .. num_classes - 1`.
        x_eval: evaluation features, same feature shape.
        y_eval: their int labels.
        steps: full-batch gradient steps.
        learning_rate: AdamW learning rate.
        weight_decay: AdamW weight decay.
        num_classes: number of classes; default `max(labels) + 1`.
        seed: seed of the initial weights.

    Returns:
        The accuracy on `(x_eval, y_eval)` as a float.

    Raises:
        ValueError: mismatched lengths or feature sizes, or bad `steps`,
            `learning_rate`, `num_classes`.

    Examples:
        >>> from dl4keras.backbones import linear_probe
        >>> rng = np.random.default_rng(0)
        >>> labels = np.arange(40) % 2
        >>> features = rng.normal(size=(40, 8)) + labels[:, None]  # separable-ish
        >>> train, test = slice(0, 20), slice(20, 40)
        >>> accuracy = linear_probe(features[train], labels[train], features[test], labels[test])
        >>> 0.5 < accuracy <= 1.0
        True
    """
    steps = _validation.positive_int("steps", steps)
    learning_rate = _validation.positive_float("learning_rate", learning_rate)
    x_train = np.asarray(x_train)
    x_train = x_train.reshape(len(x_train), -1).astype("float32")
    x_eval = np.asarray(x_eval)
    x_eval = x_eval.reshape(len(x_eval), -1).astype("float32")
    y_train, y_eval = np.asarray(y_train).astype("int64"), np.asarray(y_eval).astype("int64")
    if len(x_train) != len(y_train) or len(x_eval) != len(y_eval):
        raise ValueError(
            f"Features and labels differ in length: x_train {len(x_train)}, y_train "
            f"{len(y_train)}, x_eval {len(x_eval)}, y_eval {len(y_eval)}."
        )
    if x_train.shape[1] != x_eval.shape[1]:
        raise ValueError(
            f"x_train has {x_train.shape[1]} features per example but x_eval has "
            f"{x_eval.shape[1]}: extract both with the same model."
        )
    if num_classes is None:
        num_classes = int(max(y_train.max(), y_eval.max())) + 1
    keras.utils.set_random_seed(seed)
    norm = keras.layers.Normalization()
    norm.adapt(x_train)
    head = classifier_head(num_classes, input_shape=x_train.shape[1])
    model = keras.Sequential([keras.Input((x_train.shape[1],)), norm, head])
    model.compile(
        keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    for _ in range(steps):
        model.train_on_batch(x_train, y_train)
    return float(model.evaluate(x_eval, y_eval, verbose=0, batch_size=1024)[1])


def measure_costs(names=None, image_size=224, batch_size=8, batches=2, speed_of=None, seed=0):
    """Builds backbones with random weights (offline) and measures what each costs.

    For each backbone: its parameters, the size of the pooled feature vector,
    its preprocessing, and the throughput of `extract_features` on this
    machine at `image_size` x `image_size`: one warm-up batch (it traces the
    graph), then `batches` timed batches of `batch_size` random images. The
    weights do not change the cost, so `weights=None` measures the
    pretrained models' cost without a download.

    Args:
        names: backbones to build; default every one of `BACKBONES`.
        image_size: side of the square input images.
        batch_size: images per forward pass.
        batches: timed batches per backbone (after the warm-up batch).
        speed_of: the names among `names` whose throughput is timed (the
            others get `None`); default all. Timing the large ones takes a
            while on a CPU.
        seed: seed of the random images.

    Returns:
        A list of dicts, one per backbone, with keys `name`, `parameters`,
        `feature_size`, `preprocessing`, `images_per_second` (None when not
        timed), `batch_size` and `image_size`. `format_costs` prints them.

    Examples:
        >>> from dl4keras.backbones import format_costs, measure_costs
        >>> rows = measure_costs(["tiny_resnet"], image_size=32, batch_size=4, batches=1)
        >>> rows[0]["parameters"], rows[0]["feature_size"], rows[0]["preprocessing"]
        (686240, 192, 'none')
        >>> print(format_costs(rows).splitlines()[0])  # doctest: +NORMALIZE_WHITESPACE
        backbone  parameters  features  preprocessing  images/s
    """
    names = list(BACKBONES) if names is None else [get_spec(n).name for n in names]
    speed_of = set(names if speed_of is None else [get_spec(n).name for n in speed_of])
    image_size = _validation.positive_int("image_size", image_size)
    batch_size = _validation.positive_int("batch_size", batch_size)
    batches = _validation.positive_int("batches", batches)
    rng = np.random.default_rng(seed)
    rows = []
    for name in names:
        spec = get_spec(name)
        side = max(image_size, spec.min_size)
        model = build(name, input_shape=(side, side, 3), weights=None)
        speed = None
        if name in speed_of:
            images = rng.integers(0, 256, (batch_size * (batches + 1), side, side, 3), "uint8")
            extract_features(model, images[:batch_size], batch_size=batch_size, verbose=0)
            start = time.perf_counter()
            extract_features(model, images[batch_size:], batch_size=batch_size, verbose=0)
            speed = batch_size * batches / (time.perf_counter() - start)
        rows.append(
            {
                "name": name,
                "parameters": int(model.get_layer(name).count_params()),
                "feature_size": int(model.output_shape[-1]),
                "preprocessing": spec.preprocessing,
                "images_per_second": speed,
                "batch_size": batch_size,
                "image_size": side,
            }
        )
        del model
    return rows


def format_costs(rows):
    """The rows of `measure_costs` (or `probe_backbones`) as a printable table.

    Columns: backbone, parameters, feature size, preprocessing (the
    `Preprocess` mode, explained under the table), images/s ("not timed"
    where `images_per_second` is None) and, when the rows have it,
    `accuracy`. At most 80 characters wide.
    """
    header = ["backbone", "parameters", "features", "preprocessing", "images/s"]
    with_accuracy = any("accuracy" in row for row in rows)
    if with_accuracy:
        header.append("probe accuracy")
    table = [header]
    for row in rows:
        speed = row.get("images_per_second")
        cells = [
            row["name"],
            f"{row['parameters']:,}",
            str(row["feature_size"]),
            row["preprocessing"],
            "not timed" if speed is None else f"{speed:.1f}",
        ]
        if with_accuracy:
            cells.append(f"{row['accuracy']:.1%}" if "accuracy" in row else "")
        table.append(cells)
    legend = _preprocessing_legend(row["preprocessing"] for row in rows)
    return "\n".join(_table(table, right={1, 2, 4, 5}) + ["", "preprocessing:", *legend])


def _split(data):
    """`(images or dataset, labels or None, input shape)` of arrays or a tf.data dataset."""
    if _is_tf_dataset(data):
        shape = tuple(data.element_spec[0].shape)
        return data, None, shape[-3:]
    if not isinstance(data, list | tuple) or len(data) != 2:
        raise ValueError(
            "Each dataset must be a tf.data.Dataset of (images, labels) or a tuple "
            f"(images, labels) of arrays. Received an object of type {type(data).__name__}."
        )
    images = np.asarray(data[0])
    return images, np.asarray(data[1]), images.shape[1:]


def probe_backbones(names, train_data, eval_data, weights="pretrained", steps=300, batch_size=64):
    """Linear-probe accuracy of several backbones on one labelled image task.

    For each backbone: `build` it at the images' size with `weights`, run
    `extract_features` over both sets, train `linear_probe` on the training
    features and evaluate it on the evaluation features.

    Args:
        names: backbone names, see `describe()`.
        train_data: `(images, labels)` arrays of raw 0-255 RGB images, or a
            `tf.data.Dataset` of `(images, labels)` batches (e.g. from
            `dl4keras.image_folder.load_image_folder`).
        eval_data: the same for evaluation.
        weights: passed to `build` (`"pretrained"` needs the ImageNet files:
            internet once, or the Keras cache).
        steps: gradient steps of each linear probe.
        batch_size: images per forward pass of the extraction.

    Returns:
        A list of dicts, one per backbone, with the keys of `measure_costs`
        (`images_per_second`: the extraction throughput of the training set)
        and `accuracy`; `format_costs` prints them.

    Examples:
        >>> from dl4keras.backbones import probe_backbones
        >>> rng = np.random.default_rng(0)
        >>> x, y = rng.integers(0, 256, (12, 32, 32, 3)), np.arange(12) % 3
        >>> rows = probe_backbones(["tiny_resnet"], (x, y), (x, y), weights=None, steps=5)
        >>> sorted(rows[0])  # doctest: +NORMALIZE_WHITESPACE
        ['accuracy', 'batch_size', 'feature_size', 'image_size', 'images_per_second', 'name',
         'parameters', 'preprocessing']
    """
    train, y_train, shape = _split(train_data)
    evaluation, y_eval, _ = _split(eval_data)
    rows = []
    for name in names:
        model = build(name, input_shape=shape, weights=weights)
        start = time.perf_counter()
        f_train = extract_features(model, train, batch_size=batch_size, verbose=0)
        seconds = time.perf_counter() - start
        f_train, labels_train = f_train if y_train is None else (f_train, y_train)
        f_eval = extract_features(model, evaluation, batch_size=batch_size, verbose=0)
        f_eval, labels_eval = f_eval if y_eval is None else (f_eval, y_eval)
        rows.append(
            {
                "name": name,
                "parameters": int(model.get_layer(name).count_params()),
                "feature_size": int(f_train.shape[-1]),
                "preprocessing": get_spec(name).preprocessing,
                "images_per_second": len(f_train) / seconds,
                "batch_size": batch_size,
                "image_size": shape[0],
                "accuracy": linear_probe(f_train, labels_train, f_eval, labels_eval, steps=steps),
            }
        )
        del model
    return rows
