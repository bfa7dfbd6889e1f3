"""TinyResNet: the small offline-pretrained backbone.

ImageNet weights need the internet. So that transfer learning is *real* in the
tests, the CI and the documentation build (all offline), dl4keras ships a
small residual CNN pretrained by this project on an offline source task of
47 classes: handwritten digits 0-4 and printed letters in 21 typefaces, pasted
at random positions, sizes and colours onto cluttered crops of photos (see
`dl4keras.data.cluttered_digits` and `dl4keras.data.cluttered_letters`). Its
features transfer to the *unseen* handwritten digits 5-9 (the target task of
Tutorial 01).

The weights are produced by ``tools/pretrain_tiny_resnet.py`` (seeded,
reproducible) and shipped in ``dl4keras/assets/``.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

WEIGHTS_FILE = "tiny_resnet_cluttered_glyphs.weights.h5"
PRETRAINED_ON = "cluttered_glyphs"
"""Name of the source task of the shipped weights."""

STEM_WIDTH = 32
DEFAULT_WIDTHS = (48, 96, 192)
MIN_SIZE = 16
BN_MOMENTUM = 0.9
"""Faster-moving BatchNorm statistics than Keras's 0.99 suit short trainings."""


def weights_path() -> Path:
    """Path of the shipped pretrained weights file.

    Raises:
        FileNotFoundError: if the file is missing (a broken install or a
            checkout where ``tools/pretrain_tiny_resnet.py`` was not run).

    Examples:
        >>> from dl4keras import tiny_resnet
        >>> tiny_resnet.weights_path().name
        'tiny_resnet_cluttered_glyphs.weights.h5'
    """
    path = Path(__file__).parent / "assets" / WEIGHTS_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"The TinyResNet pretrained weights are missing: {path}. Reinstall dl4keras, "
            "or recreate them with `python tools/pretrain_tiny_resnet.py`."
        )
    return path


def _conv_bn_relu(x, filters, strides, name):
    x = layers.Conv2D(
        filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _residual_block(x, filters, strides, name):
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(
            filters, 1, strides=strides, use_bias=False, name=f"{name}_proj_conv"
        )(x)
        shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_proj_bn")(shortcut)
    y = _conv_bn_relu(x, filters, strides, name=f"{name}_1")
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_2_bn")(y)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.ReLU(name=f"{name}_out")(y)


def build_tiny_resnet(input_shape=(32, 32, 3), widths=DEFAULT_WIDTHS, name="tiny_resnet"):
    """Builds the TinyResNet feature extractor (no pooling, no head).

    The model takes **raw 0-255 RGB images**: the rescaling to [0, 1] is its
    first layer, so there is no separate `preprocess_input` to forget.
    Layers are grouped in named blocks: a strided ``stem`` convolution that
    halves the resolution, then residual blocks ``block1`` ... ``blockN``,
    each after the first halving the resolution again.

    Args:
        input_shape: `(height, width, 3)`, both sides at least 16.
        widths: channels of each residual block.
        name: model name.

    Returns:
        A functional `keras.Model` mapping `(batch, H, W, 3)` images to a
        `(batch, H / 2**len(widths), W / 2**len(widths), widths[-1])` feature
        map: `(batch, 4, 4, 192)` for the default 32x32 input.

    Examples:
        >>> from dl4keras import tiny_resnet
        >>> model = tiny_resnet.build_tiny_resnet((32, 32, 3))
        >>> model.output_shape
        (None, 4, 4, 192)
        >>> model.load_weights(tiny_resnet.weights_path())  # the shipped pretrained weights
        >>> tiny_resnet.build_tiny_resnet((64, 48, 3), widths=(8, 16)).output_shape
        (None, 16, 12, 16)
    """
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"`input_shape` must be (height, width, 3), got {input_shape}.")
    if min((s for s in input_shape[:2] if s is not None), default=MIN_SIZE) < MIN_SIZE:
        raise ValueError(
            f"`input_shape` {input_shape} is too small for tiny_resnet: the minimum is "
            f"{MIN_SIZE}x{MIN_SIZE}."
        )
    inputs = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    x = _conv_bn_relu(x, STEM_WIDTH, 2, name="stem")
    for i, filters in enumerate(widths):
        x = _residual_block(x, filters, 1 if i == 0 else 2, name=f"block{i + 1}")
    return keras.Model(inputs, x, name=name)
