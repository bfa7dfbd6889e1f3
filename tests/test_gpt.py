"""Tests for dl4keras.gpt: the GPT model, generation with KerasHub samplers, GPT-2 weights."""

import keras
import keras_hub
import numpy as np
import pytest
from backend_utils import dtype_name, to_numpy

from dl4keras.gpt import GPT, generate, load_keras_hub_weights
from dl4keras.transformer import TransformerDecoderBlock, gelu_approximate

VOCAB, LENGTH = 50, 16


def tiny(**overrides):
    config = dict(
        vocabulary_size=VOCAB,
        sequence_length=LENGTH,
        hidden_dim=16,
        num_layers=2,
        num_heads=2,
        mlp_dim=32,
    )
    config.update(overrides)
    return GPT(**config)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return tiny()


def ids(batch, length, seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, size=(batch, length)).astype("int32")


def max_diff(a, b):
    return float(np.max(np.abs(to_numpy(a) - to_numpy(b))))


# ------------------------------------------------------------------- the model


def test_logits_shape_and_dtype(model):
    logits = model(ids(3, 7))
    assert logits.shape == (3, 7, VOCAB) and dtype_name(logits) == "float32"
    assert model(ids(1, LENGTH)).shape == (1, LENGTH, VOCAB)  # up to sequence_length
    assert model.predict(ids(2, 5), verbose=0).shape == (2, 5, VOCAB)
    assert len(model.decoder_blocks) == 2
    assert all(isinstance(b, TransformerDecoderBlock) for b in model.decoder_blocks)
    assert not any(b.cross_attention for b in model.decoder_blocks)


def test_mixed_precision_logits_are_float32():
    model = tiny(num_layers=1, dtype="mixed_float16")
    assert model.decoder_blocks[0].compute_dtype == "float16"
    assert dtype_name(model(ids(2, 4))) == "float32"
    assert all(w.dtype == "float32" for w in model.weights)


def test_the_whole_model_is_causal(model):
    x = ids(2, 10)
    logits = model(x)
    for t in range(9):
        changed = x.copy()
        changed[:, t + 1 :] = (changed[:, t + 1 :] + 1 + t) % VOCAB
        new = model(changed)
        assert max_diff(new[:, : t + 1], logits[:, : t + 1]) <= 1e-6
        assert max_diff(new[:, t + 1 :], logits[:, t + 1 :]) > 1e-4  # later positions do change


def test_output_is_tied_to_the_token_embedding(model):
    embeddings = model.token_embedding.embeddings
    assert [w.path for w in model.weights if w.shape[0] == VOCAB] == [embeddings.path]
    final = keras.Model(model.inputs, model.get_layer("final_norm").output)
    x = ids(2, 6)
    states = final({"token_ids": x, "padding_mask": np.ones_like(x)})
    expected = to_numpy(states) @ to_numpy(embeddings).T
    assert max_diff(model(x), expected) <= 1e-5
    # Changing the embedding matrix changes the output projection too.
    clone = tiny()
    clone.set_weights(model.get_weights())
    clone.token_embedding.embeddings.assign(to_numpy(embeddings) * 2.0)
    assert max_diff(clone(x), model(x)) > 1e-3


def test_padding_mask(model):
    x = ids(2, 8)
    # A dict without padding mask, or with an all-ones mask (bool or int) is the plain call.
    ones = np.ones_like(x, bool)
    assert max_diff(model({"token_ids": x}), model(x)) == 0.0
    assert max_diff(model({"token_ids": x, "padding_mask": ones}), model(x)) <= 1e-6
    # Left padding: with the mask, the padded tokens change nothing.
    mask = np.ones_like(x)
    mask[:, :3] = 0
    a = model({"token_ids": x, "padding_mask": mask})
    changed = x.copy()
    changed[:, :3] = (changed[:, :3] + 7) % VOCAB
    b = model({"token_ids": changed, "padding_mask": mask})
    assert max_diff(a[:, 3:], b[:, 3:]) <= 1e-6
    assert max_diff(model(x)[:, 3:], model(changed)[:, 3:]) > 1e-4  # without it, they do


def test_fit_next_token_prediction():
    keras.utils.set_random_seed(1)
    model = tiny(num_layers=1, dropout=0.1)
    data = np.tile(np.arange(9, dtype="int32"), (16, 1))  # always "next = this + 1"
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(1e-2), loss)
    history = model.fit(data[:, :-1], data[:, 1:], epochs=5, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_save_and_load_keras_safe_mode(tmp_path):
    model = tiny(dropout=0.1, layer_norm_epsilon=1e-6, activation="gelu_approximate")
    x = ids(2, 9)
    path = tmp_path / "gpt.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is GPT
    assert loaded.get_config() == model.get_config()
    assert loaded.decoder_blocks[0].activation is gelu_approximate
    assert max_diff(loaded(x), model(x)) == 0.0
    assert GPT.from_config(model.get_config()).get_config() == model.get_config()


def test_bad_arguments():
    with pytest.raises(ValueError, match="vocabulary_size=0"):
        tiny(vocabulary_size=0)
    with pytest.raises(ValueError, match="sequence_length=-1"):
        tiny(sequence_length=-1)
    with pytest.raises(ValueError, match="num_layers=0"):
        tiny(num_layers=0)
    with pytest.raises(ValueError, match=r"hidden_dim=16, num_heads=3"):
        tiny(num_heads=3)
    with pytest.raises(ValueError, match="dropout=1.0"):
        tiny(dropout=1.0)
    with pytest.raises(ValueError, match="layer_norm_epsilon=0"):
        tiny(layer_norm_epsilon=0)


def test_bad_inputs(model):
    with pytest.raises(ValueError, match=r"up to sequence_length=16 tokens.*\(1, 17\)"):
        model(ids(1, 17))
    with pytest.raises(ValueError, match=r"integer token ids of shape \(batch, T\).*\(2, 3, 4\)"):
        model(np.zeros((2, 3, 4), "int32"))
    with pytest.raises(ValueError, match="integer token ids.*float32"):
        model(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match=r"in \[0, 50\).*from 0 to 50"):
        model(np.array([[0, 50]]))
    with pytest.raises(ValueError, match=r"keys \['ids'\]"):
        model({"ids": ids(1, 3)})
    with pytest.raises(ValueError, match="padding_mask.shape=\\(1, 4\\)"):
        model({"token_ids": ids(1, 3), "padding_mask": np.ones((1, 4))})


# ------------------------------------------------------------------ KerasHub


@pytest.fixture(scope="module")
def backbone():
    keras.utils.set_random_seed(2)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=LENGTH,
    )
    # GPT-2's initialisation (std 0.02) makes every logit tiny; larger random
    # weights make the parity check meaningful.
    rng = np.random.default_rng(3)
    for weight in backbone.weights:
        scale = 0.5 if "embedding" in weight.path else 0.3
        value = rng.normal(scale=scale, size=weight.shape)
        if weight.path.endswith("gamma"):
            value = 1.0 + value
        weight.assign(value.astype("float32"))
    return backbone


def test_gpt2_backbone_parity(backbone):
    model = load_keras_hub_weights(tiny(activation="gelu_approximate"), backbone)
    token_ids = ids(3, 12, seed=4)
    padding_mask = np.ones_like(token_ids)
    padding_mask[1, 8:] = 0  # right padding
    inputs = {"token_ids": token_ids, "padding_mask": padding_mask}
    states = to_numpy(backbone(inputs))
    expected = states @ to_numpy(backbone.token_embedding.embeddings).T
    assert np.abs(expected).max() > 5.0  # logits of a real size
    assert max_diff(model(inputs), expected) <= 1e-4
    # A shorter model takes the first position embeddings.
    short = load_keras_hub_weights(tiny(sequence_length=8, activation="gelu_approximate"), backbone)
    assert max_diff(short(token_ids[:, :8]), model(token_ids[:, :8])) <= 1e-5


def test_gpt2_mismatch_lists_every_difference(backbone):
    wrong = tiny(vocabulary_size=60, num_heads=4, sequence_length=20)
    with pytest.raises(ValueError) as info:
        load_keras_hub_weights(wrong, backbone)
    message = str(info.value)
    for part in (
        "vocabulary_size=60 (backbone: 50)",
        "num_heads=4 (backbone: 2)",
        "activation='gelu' (backbone: 'gelu_approximate')",
        "sequence_length=20 (backbone: at most max_sequence_length=16)",
    ):
        assert part in message
    assert "hidden_dim" not in message and "mlp_dim" not in message
    with pytest.raises(ValueError, match="must be a dl4keras GPT"):
        load_keras_hub_weights(backbone, backbone)
    with pytest.raises(ValueError, match="must be a keras_hub.models.GPT2Backbone"):
        load_keras_hub_weights(tiny(), tiny())


# ----------------------------------------------------------------- generation


def test_greedy_equals_argmax_decoding_by_hand(model):
    prompt = np.array([[3, 1, 4], [1, 5, 9]], "int32")
    out = generate(model, prompt, max_length=8)
    assert out.shape == (2, 8) and dtype_name(out) == "int32"
    by_hand = prompt.copy()
    for _ in range(5):
        logits = to_numpy(model(by_hand))
        by_hand = np.concatenate([by_hand, logits[:, -1].argmax(-1)[:, None]], axis=1)
    np.testing.assert_array_equal(out, by_hand)
    np.testing.assert_array_equal(generate(model, prompt, max_length=8), out)  # deterministic


def test_ragged_prompts_are_kept(model):
    prompts = [[3, 1, 4, 1], [5], [9, 2]]
    out = generate(model, prompts, max_length=7)
    assert out.shape == (3, 7)
    for row, prompt in zip(out, prompts):
        assert row[: len(prompt)].tolist() == prompt
        alone = generate(model, [prompt], max_length=7)  # batching changes nothing
        np.testing.assert_array_equal(alone[0], row)
    assert generate(model, [7, 8, 9], max_length=5).shape == (1, 5)  # one prompt
    np.testing.assert_array_equal(generate(model, [[7, 8, 9]], max_length=3), [[7, 8, 9]])


@pytest.mark.parametrize("name", ["top_k", "top_p", "random"])
def test_random_samplers_are_reproducible_with_a_seed(model, name):
    prompt = [[3, 1, 4]]
    a = generate(model, prompt, max_length=12, sampler=name, seed=5)
    b = generate(model, prompt, max_length=12, sampler=name, seed=5)
    np.testing.assert_array_equal(a, b)
    assert a[0, :3].tolist() == [3, 1, 4]
    others = [generate(model, prompt, max_length=12, sampler=name, seed=s) for s in (6, 7)]
    assert any((o != a).any() for o in others)


def test_sampler_objects_and_temperature(model):
    prompt = [[3, 1, 4]]
    sampler = keras_hub.samplers.TopKSampler(k=1)  # k=1 is greedy
    np.testing.assert_array_equal(
        generate(model, prompt, 10, sampler=sampler), generate(model, prompt, 10)
    )
    hot = keras_hub.samplers.TopPSampler(p=0.9, temperature=2.0, seed=0)
    a = generate(model, prompt, 10, sampler=hot, seed=3)
    b = generate(model, prompt, 10, sampler=hot, seed=3)
    np.testing.assert_array_equal(a, b)  # a seeded copy each time: the object is not consumed
    assert generate(model, prompt, 10, sampler="beam").shape == (1, 10)


def test_stop_tokens(model):
    prompt = [[3, 1, 4], [1, 5, 9]]
    greedy = generate(model, prompt, max_length=10)
    stop = int(greedy[0, 4])  # the second generated token of the first sequence
    out = generate(model, prompt, max_length=10, stop_token_ids=[stop])
    first = 3 + int(np.flatnonzero(greedy[0, 3:] == stop)[0])
    np.testing.assert_array_equal(out[0, : first + 1], greedy[0, : first + 1])
    assert np.all(out[0, first:] == stop)  # filled with the stop token after it
    for row, full in zip(out, greedy):
        hits = np.flatnonzero(full[3:] == stop)
        end = 3 + int(hits[0]) if hits.size else 10
        np.testing.assert_array_equal(row[: end + 1], full[: end + 1])
    # A stop token that is also the placeholder id 0 does not end generation early.
    out = generate(model, prompt, max_length=10, stop_token_ids=0)
    for row, full in zip(out, greedy):
        hits = np.flatnonzero(full[3:] == 0)
        end = 3 + int(hits[0]) if hits.size else 10
        np.testing.assert_array_equal(row[:end], full[:end])


def test_generate_bad_inputs(model):
    with pytest.raises(ValueError, match="sampler='nucleus'"):
        generate(model, [[1, 2]], 5, sampler="nucleus")
    with pytest.raises(ValueError, match="sampler=3"):
        generate(model, [[1, 2]], 5, sampler=3)
    with pytest.raises(ValueError, match="ContrastiveSampler needs them"):
        generate(model, [[1, 2]], 5, sampler=keras_hub.samplers.ContrastiveSampler())
    with pytest.raises(ValueError, match="at least the longest prompt's length, 3"):
        generate(model, [[1, 2, 3], [4]], 2)
    with pytest.raises(ValueError, match="sequence_length=16 tokens. Received: max_length=17"):
        generate(model, [[1, 2]], 17)
    with pytest.raises(ValueError, match="max_length=0"):
        generate(model, [[1, 2]], 0)
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, [[1, 2], []], 5)
    with pytest.raises(ValueError, match="integer token ids"):
        generate(model, np.array([[1.0, 2.0]]), 5)
    with pytest.raises(ValueError, match="prompt_ids"):
        generate(model, [], 5)
    with pytest.raises(ValueError, match="stop_token_ids='end'"):
        generate(model, [[1, 2]], 5, stop_token_ids="end")
    with pytest.raises(ValueError, match="seed='a'"):
        generate(model, [[1, 2]], 5, sampler="top_k", seed="a")
