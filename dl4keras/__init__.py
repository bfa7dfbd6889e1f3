"""dl4keras: companion package for "Practical 4: Advanced Topics in Deep Learning".

Helpers for transfer learning, fine-tuning, attention, Transformers and modern
training techniques with Keras 3, used by the tutorials in ``tutorials/``.

Submodules load on first use (`dl4keras.backbones`, `dl4keras.data`, ...), so
`import dl4keras` and the `dl4keras` command start without TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "attention", "backbones", "check", "cli", "dann", "data", "finetune", "hub",
    "image_folder", "layerwise_lr", "profiles", "results", "tiny_resnet", "transformer",
    "viz", "vit",
)
_REEXPORTS = {
    "MultiHeadAttention": "attention",
    "TransformerEncoderBlock": "transformer",
    "VisionTransformer": "vit",
}
"""Public names re-exported at the top level, and the submodule that defines each."""


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"dl4keras.{name}")
    if name in _REEXPORTS:
        return getattr(importlib.import_module(f"dl4keras.{_REEXPORTS[name]}"), name)
    raise AttributeError(f"module 'dl4keras' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_SUBMODULES, *_REEXPORTS])
