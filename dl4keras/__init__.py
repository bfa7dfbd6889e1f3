"""dl4keras: companion package for "Practical 4: Advanced Topics in Deep Learning".

Helpers for transfer learning, fine-tuning, attention, Transformers and modern
training techniques with Keras 3, used by the tutorials in ``tutorials/``.

`import dl4keras` registers every serializable class of the package with
Keras, so a `.keras` file saved with any of them (a `VisionTransformer`, a
model compiled with `LayerwiseLR`, ...) loads with
`keras.models.load_model(path, safe_mode=True)` in a fresh process after a
plain `import dl4keras`. That import therefore imports Keras and its backend
(about 3 s with TensorFlow); every submodule is an attribute of the package
afterwards.

Examples:
    ```python
    import keras
    import dl4keras

    model = dl4keras.vit.build("vit_digits", depth=1)
    model.save("vit.keras")
    # Later, in a new Python process:
    restored = keras.models.load_model("vit.keras", safe_mode=True)
    print(type(restored).__name__)   # VisionTransformer
    ```
"""

# Every module that defines a `register_keras_serializable` class is imported
# here, so that registration never depends on the user importing the right
# submodule. Plain imports are the package's one re-export mechanism.
from dl4keras import (
    attention,
    backbones,
    calibration,
    check,
    cli,
    dann,
    data,
    downloads,
    ensemble,
    finetune,
    gpt,
    hub,
    image_folder,
    label_budget,
    layerwise_lr,
    lm,
    notebooks,
    profiles,
    results,
    text_experiments,
    tiny_resnet,
    training,
    transfer,
    transformer,
    vit,
    viz,
)
from dl4keras._version import __version__
from dl4keras.attention import MultiHeadAttention
from dl4keras.transformer import TransformerDecoderBlock, TransformerEncoderBlock
from dl4keras.vit import VisionTransformer

__all__ = [
    "__version__",
    "MultiHeadAttention",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
    "VisionTransformer",
    "attention",
    "backbones",
    "calibration",
    "check",
    "cli",
    "dann",
    "data",
    "downloads",
    "ensemble",
    "finetune",
    "gpt",
    "hub",
    "image_folder",
    "label_budget",
    "layerwise_lr",
    "lm",
    "notebooks",
    "profiles",
    "results",
    "serializable_classes",
    "text_experiments",
    "tiny_resnet",
    "training",
    "transfer",
    "transformer",
    "vit",
    "viz",
]


def serializable_classes():
    """The Keras-serializable objects of dl4keras (classes and functions), by registered name.

    Returns:
        A dict mapping each registered name (e.g. `"dl4keras>VisionTransformer"`,
        `"dl4keras>gelu_approximate"`) to its class or function: what
        `keras.models.load_model` finds after `import dl4keras`.

    Examples:
        ```python
        import dl4keras

        print("dl4keras>VisionTransformer" in dl4keras.serializable_classes())   # True
        ```
    """
    import keras

    return {
        name: obj
        for name, obj in keras.saving.get_custom_objects().items()
        if name.startswith("dl4keras>")
    }
