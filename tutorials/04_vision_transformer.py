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
# # The Vision Transformer: positional encoding, encoder blocks and ViT from scratch
#
# **Description:** Take the attention layer of Tutorial 03 to a whole
# Transformer: the encoder block, positional encodings, and images cut into
# sequences of patches. Build a Vision Transformer (ViT), train it from
# scratch on a CPU, offline, on scikit-learn's 8×8 handwritten digits, find
# out which parts of the training *recipe* matter, set it beside a small CNN,
# and look at where it attends.
#
# **Exercise:** 4.4
#
# **Backends:** TensorFlow, JAX
#
# **You will learn:**
#
# - what a Transformer encoder block is, in words and in code;
# - why attention needs positional information, the sinusoidal encoding
#   formula, and what it looks like;
# - how an image becomes a sequence of patch tokens, and how to count them
#   and the model's parameters;
# - how to build and train a ViT with `dl4keras.vit`, and why a training
#   *recipe* matters as much as the architecture for a small-data
#   Transformer;
# - what a CNN's built-in assumptions are worth on the same data and budget;
# - how to read attention rollout maps over the image.
#
# Going further: the recipe ablation and the longer search behind the
# choice, what a patch token sees through the stem, what the position
# embeddings learned, loading a KerasHub `ViTBackbone`'s weights, and
# CIFAR-100 from scratch (full profile).
#
# Run it with `python tutorials/04_vision_transformer.py` (add
# `--profile smoke` for a seconds-long run). Everything runs offline, on a CPU.

# %%
import keras
import matplotlib.pyplot as plt
import numpy as np
from keras import ops
from sklearn.model_selection import train_test_split

from dl4keras import check, data, profiles, results, vit, viz
from dl4keras.transformer import TransformerEncoderBlock, sinusoidal_encoding

PROFILE = profiles.current()
EPOCHS = profiles.choose(smoke=1, docs=20, full=100)
ABLATION_EPOCHS = profiles.choose(smoke=1, docs=20, full=100)
EXERCISE_EPOCHS = profiles.choose(smoke=1, docs=8, full=50)
TRAINED_VARIANTS = profiles.choose(smoke=2, docs=5, full=5)  # of the exercise's five
COMPARED_RECIPES = profiles.choose(smoke=2, docs=None, full=None)  # None: every recipe
CIFAR_EPOCHS = 100  # CIFAR-100 runs in the full profile only (GPU, internet)
# The goal of the final run (docs profile): test accuracy and training time.
GOAL_ACCURACY, GOAL_SECONDS = 0.98, 120
keras.utils.set_random_seed(0)
print(f"profile={PROFILE}  keras {keras.__version__}  backend {keras.backend.backend()}")

# %% [markdown]
# ## The Transformer encoder block
#
# A Transformer encoder is a stack of identical **blocks**. Each block
# takes a sequence of $T$ token vectors (size $d$) and returns a sequence of
# the same shape, in two steps, each wrapped in a *residual connection*:
#
# 1. **multi-head self-attention**: every token looks at every other token
#    and pulls in information from the relevant ones (Tutorial 03);
# 2. a small **MLP** (two `Dense` layers, GELU in between), applied to every
#    token on its own: it processes what attention gathered.
#
# ViT, like most modern Transformers, normalises *before* each step
# (**pre-LayerNorm**), which leaves a clean residual path from input to
# output and trains stably:
#
# ```
# x = x + MHA(LayerNorm(x))      # tokens talk to each other
# x = x + MLP(LayerNorm(x))      # each token thinks on its own
# ```
#
# Here it is in a few lines of Keras, checked against the package's
# `dl4keras.transformer.TransformerEncoderBlock` (which adds dropout,
# stochastic depth, masks and serialisation) with the same weights.


# %%
class MiniEncoderBlock(keras.layers.Layer):
    """Pre-LayerNorm encoder block, the bare essentials."""

    def __init__(self, hidden_dim, num_heads, mlp_dim, **kwargs):
        super().__init__(**kwargs)
        self.ln_1 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.mha = keras.layers.MultiHeadAttention(num_heads, hidden_dim // num_heads)
        self.ln_2 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.dense_1 = keras.layers.Dense(mlp_dim, activation="gelu")
        self.dense_2 = keras.layers.Dense(hidden_dim)

    def call(self, x):
        h = self.ln_1(x)
        x = x + self.mha(h, h)
        return x + self.dense_2(self.dense_1(self.ln_2(x)))


# batch 2, T = 5 tokens, d = 16
tokens = keras.random.normal((2, 5, 16), seed=0)
mine = MiniEncoderBlock(hidden_dim=16, num_heads=4, mlp_dim=32)
package = TransformerEncoderBlock(hidden_dim=16, num_heads=4, mlp_dim=32)
mine(tokens), package(tokens)  # build both
for name in ("ln_1", "mha", "ln_2", "dense_1", "dense_2"):
    getattr(package, name).set_weights(getattr(mine, name).get_weights())
difference = np.abs(ops.convert_to_numpy(mine(tokens) - package(tokens))).max()
print("input", tuple(tokens.shape), "-> output", tuple(mine(tokens).shape))
print(f"largest difference, mini block vs package block: {difference:.1e}")
print(f"parameters per block: {package.count_params():,}")

# %% [markdown]
# ## Positional encoding
#
# Self-attention treats its input as a **set**: permute the tokens and the
# outputs are permuted the same way, nothing else changes. Let us check it on
# the block above.

# %%
order = np.array([3, 0, 4, 1, 2])
permuted_then_block = package(ops.take(tokens, order, axis=1))
block_then_permuted = ops.take(package(tokens), order, axis=1)
print(
    "block(permute(x)) == permute(block(x)):",
    np.allclose(permuted_then_block, block_then_permuted, atol=1e-5),
)

# %% [markdown]
# So "the dog bit the man" and "the man bit the dog" look alike, and so
# would an image whose patches were shuffled. The fix is to **add a position
# signal** to each token before the first block. The original Transformer
# (Vaswani et al., 2017) uses fixed sinusoids: for position $p$ and feature
# pairs $i = 0, \dots, d/2 - 1$,
#
# $$PE_{p,\,2i} = \sin\left(\frac{p}{10000^{2i/d}}\right), \qquad
#   PE_{p,\,2i+1} = \cos\left(\frac{p}{10000^{2i/d}}\right).$$
#
# Each pair of features is a clock turning at its own speed: the first pairs
# turn fast (wavelength $2\pi$), the last very slowly (wavelength
# $2\pi \cdot 10000^{(d-2)/d}$, *nearly* $2\pi \cdot 10000$; the cell below
# prints it), so every position gets a unique code, a bit like a
# binary counter made smooth. Because $\sin(a+b)$ and $\cos(a+b)$ are linear
# combinations of $\sin a$ and $\cos a$, $PE_{p+k}$ is a *linear* function of
# $PE_p$: relative offsets are easy for attention to use.
# `dl4keras.transformer.sinusoidal_encoding(length, dim)` computes the matrix
# (and `SinusoidalPositionEncoding` is the layer that adds it).

# %%
pe = ops.convert_to_numpy(sinusoidal_encoding(64, 128))  # 64 positions, d = 128
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
image = axes[0].imshow(pe, cmap="RdBu", aspect="auto", vmin=-1, vmax=1)
axes[0].set_xlabel("feature")
axes[0].set_ylabel("position")
axes[0].set_title("Sinusoidal encoding: one row per position")
fig.colorbar(image, ax=axes[0])
# Every row has squared length d/2 (one sin² + cos² = 1 per pair of features),
# so dividing the dot products by d/2 gives cosine similarities: 1 on the
# diagonal, and always in [-1, 1].
similarity = pe @ pe.T / (pe.shape[1] / 2)
image = axes[1].imshow(similarity, cmap="viridis")
axes[1].set_xlabel("position")
axes[1].set_ylabel("position")
axes[1].set_title("Cosine similarity between positions")
fig.colorbar(image, ax=axes[1])
plt.show()
last = 10000 ** ((pe.shape[1] - 2) / pe.shape[1])  # 1 / the last pair's frequency
print(f"wavelengths: first pair 2π = {2 * np.pi:.2f}, last pair 2π·{last:,.0f}", end=" ")
print(f"= {2 * np.pi * last:,.0f} (2π·10000 = {2 * np.pi * 10000:,.0f})")
print("similarity of position 20 to its neighbours at offsets 0..5:")
print(similarity[20, 20:26].round(2))
print(
    "offset 3 from positions 5, 20, 40:",
    similarity[[5, 20, 40], [8, 23, 43]].round(3),
)

# %% [markdown]
# Left: fast stripes on the left (high frequencies), slow ones on the right.
# Right: the similarity is largest (1) on the diagonal and falls off with the
# distance $|p - q|$, and it depends *only* on that distance (the
# band structure; the last line prints the same number for the same offset
# at different positions): the encoding says "how far apart" as well as
# "where".
#
# ViT uses the other common choice, **learned** position embeddings: one
# trainable vector per position (`dl4keras.transformer.PatchPositionEmbedding`),
# which for a fixed image size works as well and can learn the 2-D layout of
# the patch grid. We will look at what it learned after training.

# %% [markdown]
# ## Images as sequences of patches
#
# ViT (Dosovitskiy et al., 2021) turns an image into tokens by cutting it into
# non-overlapping $P \times P$ patches, flattening each and projecting it
# linearly to $d$ features: "an image is worth 16×16 words". Our images are
# scikit-learn's handwritten digits: 1,797 grey images of 8×8 pixels. With
# $P = 2$ an image is a sequence of 16 patch tokens of 4 pixels each.

# %%
images, labels = data.load_digits()
images = (images / 16.0)[..., None].astype("float32")  # 0-16 -> [0, 1], (N, 8, 8, 1)
x_train, x_test, y_train, y_test = train_test_split(
    images, labels, test_size=0.25, stratify=labels, random_state=0
)
print(f"train {x_train.shape}, test {x_test.shape}")
print(f"training images per class: {np.bincount(y_train)}")

PATCH = 2
digit = x_train[0, ..., 0]
grid = 8 // PATCH
patches = digit.reshape(grid, PATCH, grid, PATCH).transpose(0, 2, 1, 3)
patches = patches.reshape(grid * grid, PATCH, PATCH)  # row by row, like PatchEmbedding
fig, ax = plt.subplots(figsize=(2.5, 2.5))
ax.imshow(digit, cmap="gray_r")
for k in range(1, grid):
    ax.axhline(k * PATCH - 0.5, color="tab:red")
    ax.axvline(k * PATCH - 0.5, color="tab:red")
ax.set_title(f"digit {y_train[0]}, {grid}×{grid} patches")
ax.axis("off")
plt.show()
titles = [f"token {i}" for i in range(len(patches))]
viz.image_grid(patches, titles, title="... the sequence of patch tokens the Transformer reads")
plt.show()

# %% [markdown]
# ## Building the ViT
#
# `dl4keras.vit.VisionTransformer` assembles the pieces: `PatchEmbedding` (a
# `Conv2D` with kernel = stride = $P$, exactly "flatten each patch and apply
# one linear map"), an optional class token, learned position embeddings,
# `depth` encoder blocks, a final LayerNorm, pooling and a linear head.
# Pooling is either `"token"` (a learned `[CLS]` token is prepended and
# classified, as in BERT and the original ViT) or `"gap"` (the final tokens
# are averaged). The `vit_digits` configuration is made for 8×8 digits:
# patch 2, width 64, depth 4, 4 heads, with a class token. Read the summary
# with Exercise 4.4 in mind: which rows would change with another patch size
# or depth?

# %%
print(vit.list_configs())
model = vit.build("vit_digits", pooling="token")
model.summary(line_length=80)

# %% [markdown]
# ## Training from scratch: the recipe matters
#
# Transformers have few built-in assumptions about images (no locality, no
# translation invariance, unlike a CNN), so with little data they overfit
# easily; 1,347 training images is very little. Our goal: **at least
# `GOAL_ACCURACY` test accuracy with at most `GOAL_SECONDS` seconds of
# training on 2 CPU cores** (the cell above set them). The standard remedy
# for a data-hungry Transformer (DeiT, Touvron et al., 2021) is a training
# **recipe**:
#
# - **warmup + cosine decay** of the learning rate: a short warmup avoids
#   wild first steps of Adam on random weights, the cosine decay lands
#   softly (Tutorial 06 isolates the schedules);
# - **AdamW**: weight decay decoupled from the gradient, a regulariser;
# - **label smoothing**: targets of 0.91 / 0.01 instead of 1 / 0 keep the
#   model from becoming over-confident on the training set;
# - **the pooling choice**: classify a learned class token (`"token"`) or
#   the average of the patch tokens (`"gap"`);
# - **data augmentation suited to the data**: small random shifts; no
#   flips, since a mirrored 2 or 7 is not a digit;
# - **a convolutional stem**: two 3×3 convolutions on the pixels before
#   they are cut into patches (`conv_stem=(32, 32)`), so each patch token
#   also sees its neighbourhood: a little of the CNN's prior, locality,
#   which 1,347 images cannot teach (Xiao et al., 2021, "Early convolutions
#   help transformers see better"; Hassani et al., 2021, compact
#   convolutional transformers). The token grid and the encoder stay the
#   same.

# %% [markdown]
# `dl4keras.vit.train_vit(recipe, epochs, x, y)` builds a ViT and trains it
# with a recipe; the recipe is a dict of ingredients (`vit.recipe(...)`) and
# `vit.RECIPES` is the ladder we compare, one ingredient added at a time
# (each line shows what that step changes):

# %%
previous = vit.PLAIN
for name, ingredients in vit.RECIPES.items():  # what each step changes
    print(f"{name:<36}", {k: v for k, v in ingredients.items() if v != previous[k]} or "")
    previous = ingredients

# %% [markdown]
# ### Choosing the recipe on a validation split
#
# The test set must stay untouched until the very end: if we picked the
# recipe by its test accuracy, that accuracy would no longer be an honest
# estimate (with 450 test images, one error is worth a fifth of a
# percentage point, and the best of several tries is partly luck). So we
# carve a **validation split** (`20%` of the training images) out of the
# training set, compare recipes there, and measure the chosen recipe on the
# test set once. We chose `vit.BEST`, the last step of the ladder, that way:
# "Going further" runs the ablation (one run per recipe) and shows the
# longer search behind the choice (more seeds, splits and epochs). The
# exercise uses the same split.

# %%
x_fit, x_val, y_fit, y_val = train_test_split(
    x_train, y_train, test_size=0.2, stratify=y_train, random_state=1
)
print(f"{len(x_fit)} training and {len(x_val)} validation images")

# %% [markdown]
# Now the `BEST` recipe, on the whole training set, with the full budget
# (`EPOCHS` epochs), measured once on the test set. We time the training
# and the inference throughput.

# %%
model, train_seconds = vit.train_vit(vit.RECIPES[vit.BEST], EPOCHS, x_train, y_train)
test_accuracy = vit.accuracy(model, x_test, y_test)
throughput = vit.images_per_second(model, x_test)
goal_met = test_accuracy >= GOAL_ACCURACY and train_seconds <= GOAL_SECONDS
errors = round((1 - test_accuracy) * len(x_test))
allowed = int((1 - GOAL_ACCURACY) * len(x_test) + 1e-9)
print(f"ViT ({model.count_params():,} parameters), recipe {vit.BEST!r}")
print(f"trained for {EPOCHS} epochs in {train_seconds:.0f} s")
print(f"test accuracy {test_accuracy:.1%} ({errors} errors on {len(x_test)} held-out digits)")
print(f"inference: {throughput:,.0f} images/s")
print(
    f"goal (≥ {GOAL_ACCURACY:.0%} in ≤ {GOAL_SECONDS} s of training):",
    "met" if goal_met else "not met",
    f"({errors} errors of the {allowed} allowed, {train_seconds:.0f} of {GOAL_SECONDS} s)",
)

# %% [markdown]
# The training time depends on how busy the machine is, the accuracy on the
# seed: other seeds land a little above or below (the longer search in
# "Going further" shows the spread on validation). That is why we report
# one run, chosen before we looked at the test set, rather than the best of
# several test runs.

# %% [markdown]
# ## Inductive bias, measured: a small CNN on the same digits
#
# The stem adds one of a CNN's assumptions, locality. What is it worth, and
# how far does a plain CNN get, with all of it built in? Same training images, same
# recipe (schedule, AdamW, label smoothing; `vit.fit_recipe` trains any
# classifier with a recipe), same epochs, same test set, beside the ViT
# without a stem (the `"+ class-token pooling"` recipe) and the one above.


# %%
conv = dict(kernel_size=3, padding="same", activation="gelu")
keras.utils.set_random_seed(0)
cnn = keras.Sequential(
    [keras.Input((8, 8, 1)), keras.layers.Conv2D(32, **conv), keras.layers.Conv2D(32, **conv)]
    + [keras.layers.MaxPooling2D(), keras.layers.Conv2D(64, **conv)]
    + [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)]
)
cnn_seconds = vit.fit_recipe(cnn, vit.RECIPES[vit.BEST], EPOCHS, x_train, y_train)
no_stem, no_stem_seconds = vit.train_vit(
    vit.RECIPES["+ class-token pooling"], EPOCHS, x_train, y_train
)
rivals = {
    "ViT, no stem": (no_stem, no_stem_seconds),
    "ViT + convolutional stem": (model, train_seconds),
    "small CNN": (cnn, cnn_seconds),
}
bias = {}
print(f"{EPOCHS} epochs on {len(x_train)} digits, the same recipe")
print(f"{'model':<26}{'parameters':>11}{'test acc':>10}{'train':>8}")
for name, (net, seconds) in rivals.items():
    acc = vit.accuracy(net, x_test, y_test)
    bias[name] = dict(parameters=net.count_params(), test_accuracy=acc, train_seconds=seconds)
    print(f"{name:<26}{net.count_params():>11,}{acc:>10.1%}{seconds:>7.0f}s")
small, big = bias["small CNN"], bias["ViT + convolutional stem"]
print(
    f"The CNN {'matched or beat' if small['test_accuracy'] >= big['test_accuracy'] else 'trailed'}"
    f" the stem ViT with {big['parameters'] / small['parameters']:.1f}× fewer parameters,"
    f" in {small['train_seconds'] / big['train_seconds']:.2f}× its training time."
)

# %% [markdown]
# If the CNN matches the ViT with a fraction of its parameters and time
# (the last line above says whether it did), then on 1,347 small images the
# architecture's assumptions are worth more than its flexibility. ViT's
# lack of image priors becomes an advantage only with data:
# trained on ImageNet-21k or JFT (14 M-300 M images), ViTs beat CNNs
# (Dosovitskiy et al., 2021), and **fine-tuning a pretrained ViT** is how
# they are used in practice ("Going further" shows how to load KerasHub's
# weights).

# %% [markdown]
# ## Where does the ViT look? Attention rollout
#
# A single attention map shows one layer and one head. **Attention rollout**
# (Abnar & Zuidema, 2020) follows the information through all layers: average
# the heads, add the identity for the residual path, renormalise and multiply
# the layers. For a class-token model we read the class token's row: how
# much each patch flows into the token the head classifies (for a `"gap"`
# model the rows are averaged, since the head classifies the mean token).
# `vit.attention_rollout` computes it from
# `model.attention_scores(images)`; `viz.attention_overlay` draws it.

# %%
show = x_test[:8]
rollout = vit.attention_rollout(
    model.attention_scores(show),
    grid_size=model.grid_size,
    has_class_token=model.use_class_token,
)
fig, axes = plt.subplots(2, 8, figsize=(14, 4))
for i in range(8):
    axes[0, i].imshow(show[i, ..., 0], cmap="gray_r")
    axes[0, i].set_title(f"digit {y_test[i]}")
    viz.attention_overlay(show[i, ..., 0], rollout[i], ax=axes[1, i], colorbar=False)
    for ax in axes[:, i]:
        ax.axis("off")
plt.show()

# %% [markdown]
# Read the maps with care: rollout is a picture of where information *flows*,
# not a proof of what the model uses. On 8×8 images with 16 patches the maps
# are coarse, and with the convolutional stem each token already mixes a
# window of pixels around its patch before any attention ("Going further"
# measures it), so a patch's weight also speaks for its neighbours. The ViT
# paper shows such maps of a pretrained model on photos (Dosovitskiy et al.,
# 2021, figure 6); whether they follow the objects is a property of that
# model, which this page does not show.

# %% [markdown]
# ## Exercise 4.4: patch size and depth
#
# **Task.** Predict first, then measure. How do the number of tokens, the
# number of parameters, the validation accuracy and the training speed
# change if you
#
# 1. use patches of 1×1 or 4×4 instead of 2×2?
# 2. use 2 or 8 encoder blocks instead of 4?
#
# Write your predictions down, and check the counts before you train:
#
# ```python
# my_predictions = {
#     "patch 1, depth 4": dict(patch_size=1, tokens=..., parameters=...),
#     "patch 2, depth 8": dict(depth=8, tokens=..., parameters=...),
# }
# check.vit_variants(my_predictions, conv_stem=(32, 32), pooling="token")
# ```
#
# Then measure: the cell after the solution trains each variant (the
# first cell below names them) with the `BEST` recipe and the same small
# budget on the training part of the split (`compare_variants`, a loop
# over `vit.train_vit(..., patch_size=1)` and the like), and reports
# validation accuracy (the test set stays for the final model), training
# time and inference throughput.
#
# **Hints.**
#
# - The model summary above lists the parameters by layer. A token count
#   is patches + the class token. The patch projection has
#   $P \cdot P \cdot C_\text{in} \cdot d + d$ parameters ($C_\text{in}$ = the
#   stem's last channels), the position embedding one $d$-vector per token,
#   an encoder block $4(d^2 + d)$ for attention, $4d$ for its two
#   LayerNorms and $2 d m + m + d$ for the MLP ($m$ = `mlp_dim`).
# - Attention costs grow with the *square* of the number of tokens $T$; the
#   MLPs and projections grow linearly with $T$ and with depth.
# - A 4×4 patch of an 8×8 digit is a quarter of the digit: how much can one
#   token of it say? (The stem lets each token see past its patch's border.)
# - A budget of a few epochs favours models that learn fast, not the ones
#   that end best: compare at two budgets if you have the time.
#
# A reference solution follows (collapsed on the site), then the check and
# the measurements. Was the model with the most tokens the most accurate per
# second of training?

# %%
variants = {
    "patch 2, depth 4 (baseline)": dict(),
    "patch 1, depth 4": dict(patch_size=1),
    "patch 4, depth 4": dict(patch_size=4),
    "patch 2, depth 2": dict(depth=2),
    "patch 2, depth 8": dict(depth=8),
}


# %% tags=["solution"]


def predict(patch_size=2, depth=4, d=64, mlp=128, stem=(32, 32)):
    """Token and parameter counts of a vit_digits variant, by hand."""
    tokens = (8 // patch_size) ** 2 + 1  # patches + the class token
    convs = sum(9 * c_in * c_out + c_out for c_in, c_out in zip((1, *stem), stem))
    patches = patch_size**2 * stem[-1] * d + d  # the patch projection
    block = 4 * (d * d + d) + 4 * d + 2 * d * mlp + mlp + d
    head = d * 10 + 10
    parameters = convs + patches + d + tokens * d + depth * block + 2 * d + head
    return dict(tokens=tokens, parameters=parameters)


predictions = {name: dict(config, **predict(**config)) for name, config in variants.items()}

# %%
counts_ok = check.vit_variants(predictions, conv_stem=(32, 32), pooling="token")
trained = dict(list(variants.items())[:TRAINED_VARIANTS])
variant_rows = vit.compare_variants(
    trained, vit.RECIPES[vit.BEST], EXERCISE_EPOCHS, x_fit, y_fit, x_val, y_val
)

# %% [markdown] tags=["solution"]
# **Reading the results.** Compare your predictions with the table. The
# counts are exact: the check says which slip a wrong one was. For the
# accuracy, look for three effects: the convolutional stem already lets
# each token see past its patch, so even 4 tokens can describe the whole
# digit; `EXERCISE_EPOCHS` epochs favour the model that learns fastest, and
# few tokens make a tiny attention problem; and an 8×8 digit has little
# detail for 64 tokens of 1×1 patches to add, while they cost the most
# (16 times the attention of the baseline). Depth costs training time
# roughly in proportion to the number of blocks. Patch size is a trade-off
# that depends on the image and the budget: at 224×224, ViT-B/16 uses 196
# tokens, and 4 would lose most of the picture.

# %% [markdown]
# ## Going further: the digits it gets wrong
#
# The test digits that the ViT above misclassifies (at most 16): are they
# hard for a human too?

# %%
predicted = np.argmax(model.predict(x_test, verbose=0), -1)
wrong = np.flatnonzero(predicted != y_test)[:16]
if len(wrong):
    fig = viz.image_grid(
        x_test[wrong, ..., 0],
        [f"{y_test[i]} → {predicted[i]}" for i in wrong],
        title="Misclassified test digits (true → predicted)",
    )
    plt.show()
else:
    print("no test digit misclassified")

# %% [markdown]
# ## Going further: the recipe ablation, one ingredient at a time
#
# The same model and budget (`ABLATION_EPOCHS` epochs), one run per recipe
# of the ladder, trained on the training part of the validation split
# (`vit.compare_recipes` runs them) and measured on its validation part.
# Training accuracy is measured on the clean training images.

# %%
ladder = dict(list(vit.RECIPES.items())[:COMPARED_RECIPES])
ablation = vit.compare_recipes(ladder, ABLATION_EPOCHS, x_fit, y_fit, x_val, y_val)
print(vit.recipe_table(ablation))
print(f"{ABLATION_EPOCHS} epochs; one validation error = {1 / len(x_val):.1%}")

# %% [markdown]
# Read the table with the training accuracy in view: the gap between
# training and validation accuracy is overfitting, which the recipe is meant
# to shrink; a recipe that makes training harder (augmentation) lowers the
# training accuracy too and needs more epochs to pay off. The schedule also
# raises the peak learning rate (a constant `1e-3` in the plain recipe, a
# warmup to `2e-3` with it), so its row measures "schedule and peak
# together"; Tutorial 06 separates the two. With 270 validation images a
# difference of one or two errors is noise: one run per recipe cannot
# choose between close rows. We chose `vit.BEST`, the last row, on the
# longer search of the next section; the table lets you see whether this
# run agrees.

# %% [markdown]
# ## Going further: the longer recipe search
#
# One run per recipe cannot separate recipes a few errors apart. The choice
# of `vit.BEST` rests on a longer search: `tools/vit_recipe_search.py`
# trains more seeds, more validation splits and more epochs (and, as a
# scale, KerasHub's own `ViTBackbone` of the same size with the plain
# recipe), and records the results with their date and commit in the
# package; `vit.search_table()` prints them.

# %%
search = vit.recipe_search_results()
print("\n".join(vit.search_table(search)))
twenty = [r for r in search["runs"] if r["group"] == "stem" and r["epochs"] == 20]
stem_errors = [r["val_errors"] for r in twenty if r["run"].startswith("stem (32")]
plain_errors = [r["val_errors"] for r in twenty if r["run"].startswith("no stem")]
if stem_errors and plain_errors:
    print("\n20 epochs, mean validation errors: with the (32, 32) stem", end=" ")
    print(f"{np.mean(stem_errors):.1f} ({len(stem_errors)} runs), without", end=" ")
    print(f"{np.mean(plain_errors):.1f} ({len(plain_errors)} runs)")
    print(f"worst run with the stem: {max(stem_errors)}, best without: {min(plain_errors)}")

# %% [markdown]
# Read the groups in turn. *No stem, 40 epochs*: how close the tuned recipe
# gets without a convolutional prior, and how much the seed moves it.
# *Augmentation*: compare each row with the unaugmented rows above it. On
# 8×8 digits, shifts and rotations interpolate and blur the training
# images, which the clean test images are not, and the harder task needs
# more epochs, so do not expect them to help as they do on photos. *Stem*: the stem against
# none at the same budget, on more splits and seeds, and wider. The last line
# above averages the 20-epoch runs. It is a lesson in what "from scratch"
# means: a Transformer has to learn from the data what a CNN is told by its
# architecture, and with little data a small dose of that prior (or
# pretraining) is what closes the gap.

# %% [markdown]
# ## Going further: how much does a token see with the stem?
#
# Each 3×3 convolution of the stem widens a patch token's view by one pixel
# on every side. Rather than trust the arithmetic, we measure it: nudge one
# pixel at a time and see which pixels change one patch token (token 5, the
# patch at row 1, column 1 of the 4×4 grid).

# %%
stem_vit = vit.build("vit_digits", conv_stem=(32, 32))
to_tokens = keras.Model(stem_vit.input, stem_vit.get_layer("patch_embedding").output)
nudged = np.repeat(x_train[:1], 64, axis=0)  # 64 copies of one digit
nudged.reshape(64, 64)[np.arange(64), np.arange(64)] += 1.0  # copy k: pixel k + 1
change = np.abs(to_tokens.predict(nudged, verbose=0) - to_tokens.predict(x_train[:1], verbose=0))
seen = change[:, 5].max(axis=-1).reshape(8, 8) > 1e-6  # pixels that move token 5
rows, cols = np.nonzero(seen)
print(f"token 5 sees {np.ptp(rows) + 1}×{np.ptp(cols) + 1} pixels (#):")
print("\n".join(" ".join("#" if s else "." for s in row) for row in seen))
print(f"VisionTransformer.patch_receptive_field: {stem_vit.patch_receptive_field}")

# %% [markdown]
# ## Going further: what did the position embeddings learn?
#
# The model started with random position embeddings, one vector of 64
# numbers per patch, which know nothing of the 4×4 layout. If training
# taught them the layout, a patch's embedding should now be more similar to
# those of its grid neighbours than to those of patches further away. We
# measure it with the cosine similarity of every pair of patches, averaged
# by their distance on the grid (steps up, down, left or right; 1 step =
# neighbours), before and after training
# (`VisionTransformer.position_similarity`). The figure shows four patches
# against all 16.

# %%
cosine, steps = model.position_similarity()
cosine_before, _ = stem_vit.position_similarity()  # the same architecture, untrained
groups = {"1 step": steps == 1, "2 steps": steps == 2, "3 or more": steps >= 3}
print("mean cosine similarity of two patches' position embeddings")
print(f"{'grid distance:':<18}" + "".join(f"{g:>11}" for g in groups))
for name, table in (("before training", cosine_before), ("after", cosine)):
    means = [table[pairs].mean() for pairs in groups.values()]
    print(f"{name:<18}" + "".join(f"{m:>11.2f}" for m in means))
neighbours, further = cosine[steps == 1].mean(), cosine[steps >= 2].mean()
print(f"after training: neighbours {neighbours:.2f}, further {further:.2f}")
position_cosine = dict(neighbours=float(neighbours), further=float(further))
position_cosine["neighbours_before_training"] = float(cosine_before[steps == 1].mean())

# Symmetric colour scale around 0, set by the largest off-diagonal value;
# each patch's similarity to itself (1, marked ×) is off the scale.
limit = np.abs(cosine[steps > 0]).max()
rows, cols = model.grid_size
fig, axes = plt.subplots(1, 4, figsize=(8, 2.6), layout="constrained")
for ax, patch in zip(axes, (0, 5, 10, 15)):
    image = ax.imshow(cosine[patch].reshape(rows, cols), cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.plot(patch % cols, patch // cols, "kx", markersize=10)
    ax.set_title(f"patch {patch} (×) vs all", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(image, ax=axes, shrink=0.9, label="cosine similarity")
fig.suptitle("Cosine similarity of the learned position embeddings")
plt.show()

# %% [markdown]
# Compare the rows. Random vectors of 64 numbers are nearly orthogonal, so
# before training every column is close to 0. If training taught the
# embeddings the 2-D layout, the "1 step" column stands clearly above the
# others after training, and in the figure the cells next to each × are
# red; if the columns stay close together, this model did not need to write
# the layout into its position embeddings. That is plausible here: the
# convolutional stem already gives every token a view of its neighbourhood,
# and the patches of a digit differ enough in content for attention to tell
# them apart. Try it: run `no_stem.position_similarity()` on the ViT
# without a stem trained above. ViTs trained on ImageNet show the grid clearly
# (Dosovitskiy et al., 2021, figure 7).

# %% [markdown]
# ## Going further: pretrained weights from KerasHub
#
# KerasHub ships pretrained ViT checkpoints as `keras_hub.models.ViTBackbone`
# presets, the same architecture as ours, so
# `vit.load_keras_hub_weights(model, backbone)` copies every weight (patch
# projection, class token, position embeddings interpolated to our grid if
# needed, each block, the final LayerNorm) into a `VisionTransformer`,
# after which they compute the same function.
#
# Offline we cannot download a preset, so we show it on a randomly
# initialised small `ViTBackbone` built in place: same outputs after loading.

# %%
import keras_hub  # noqa: E402

HUB = dict(patch_size=2, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128)
hub_backbone = keras_hub.models.ViTBackbone(image_shape=(8, 8, 1), **HUB)
ours = vit.build("vit_digits", depth=2, include_top=False)  # the same sizes
expected = ops.convert_to_numpy(hub_backbone(x_test[:4]))  # (4, 17, 64) tokens
before = np.abs(ops.convert_to_numpy(ours.encode(x_test[:4])) - expected).max()
vit.load_keras_hub_weights(ours, hub_backbone)
after = np.abs(ops.convert_to_numpy(ours.encode(x_test[:4])) - expected).max()
print(f"largest difference to the KerasHub backbone: before {before:.2f}, after {after:.1e}")

# %% [markdown]
# With internet (the `full` profile on a GPU) the same two calls load a real
# checkpoint:
#
# ```python
# backbone = keras_hub.models.ViTBackbone.from_preset(
#     "vit_base_patch16_224_imagenet"
# )
# model = vit.build("vit_base", num_classes=10)  # our head, their encoder
# vit.load_keras_hub_weights(model, backbone)
# ```
#
# Fine-tuned, pretrained ViTs reach accuracies that training from scratch
# does not: the ViT paper reports CIFAR-10 test accuracies above 98% for
# fine-tuned ViTs pretrained on ImageNet-21k or JFT-300M, up to 99.5% for
# ViT-H/14 pretrained on JFT-300M (Dosovitskiy et al., 2021, Table 2 and
# appendix Table 5).
#
# Trained from scratch on CIFAR-10 alone, small ViTs end lower: ViT-Lite-7/4
# reaches 91.38% after 200 epochs, and its compact convolutional variant
# CCT-6/3x1 95.29% after 500 (Hassani et al., 2021, arXiv:2104.05704, the
# results table of https://github.com/SHI-Labs/Compact-Transformers). On
# 8×8 digits a pretrained ImageNet ViT is the wrong tool: the images are too
# small and too unlike photos.

# %% [markdown]
# ## Going further: CIFAR-100 from scratch (full profile)
#
# The same recipe on a real benchmark: CIFAR-100, 50,000 colour training
# images of 32×32 pixels in 100 classes and 10,000 test images. For scale,
# keras.io's ViT example reports about 55% top-1 accuracy after 100 epochs
# (https://keras.io/examples/vision/image_classification_with_vision_transformer/).
# Our run: `vit_cifar` (4×4 patches, 64 tokens, width 192, depth 6,
# stochastic depth 0.1) with the convolutional stem, class token, warmup +
# cosine, AdamW and label smoothing, plus the augmentation that suits
# photos: horizontal flips and shifts of up to 4 pixels (a mirrored cat is
# still a cat, unlike a mirrored 7). It needs the 170 MB download and a GPU,
# so it runs in the `full` profile only; in the others the cell says so,
# and the page shows no CIFAR-100 result unless it was built in the full
# profile.

# %%
cifar_metrics = None
if PROFILE != "full":
    print("CIFAR-100 runs in the full profile only (GPU and internet):")
    print("    python tutorials/04_vision_transformer.py --profile full")
else:
    # Downloads once (kept under ~/.keras/datasets); a clear error offline.
    (cx_train, cy_train), (cx_test, cy_test), _ = data.load_cifar100()
    cifar_recipe = vit.recipe(**dict(vit.RECIPES[vit.BEST], shift=0.125, flip=True))
    cx_train, cx_test = cx_train.astype("float32") / 255, cx_test.astype("float32") / 255
    cifar_model, cifar_seconds = vit.train_vit(
        cifar_recipe, CIFAR_EPOCHS, cx_train, cy_train, config_name="vit_cifar", num_classes=100
    )
    cifar_accuracy = vit.accuracy(cifar_model, cx_test, cy_test)
    cifar_metrics = dict(epochs=CIFAR_EPOCHS, test_accuracy=cifar_accuracy)
    cifar_metrics.update(parameters=cifar_model.count_params(), train_seconds=cifar_seconds)
    print(f"CIFAR-100, vit_cifar, {CIFAR_EPOCHS} epochs in {cifar_seconds / 60:.0f} min:")
    print(f"top-1 test accuracy {cifar_accuracy:.1%} (keras.io's example: about 55%)")

# %% [markdown]
# ## Results
#
# The headline numbers go to `results/04_vision_transformer.json`.

# %%
metrics = dict(
    recipe=vit.BEST,
    recipe_settings=vit.RECIPES[vit.BEST],
    parameters=model.count_params(),
    epochs=EPOCHS,
    test_accuracy=test_accuracy,
    test_errors=errors,
    train_seconds=train_seconds,
    inference_images_per_second=throughput,
    goal=dict(test_accuracy=GOAL_ACCURACY, train_seconds=GOAL_SECONDS),
    goal_met=goal_met,
    patch_receptive_field=list(stem_vit.patch_receptive_field),
    ablation=ablation,
    inductive_bias=bias,  # ViT without / with the stem and the small CNN, same budget
    exercise_counts_ok=counts_ok,
    exercise_variants=variant_rows,
    recipe_search={k: search[k] for k in ("script", "date", "commit", "complete")},
    position_embedding_cosine=position_cosine,
    keras_hub_max_abs_difference=float(after),
    cifar100=cifar_metrics,  # None unless the full profile ran it
)
headline = {
    f"ViT from scratch on 8×8 digits, test accuracy ({EPOCHS} epochs)": (
        f"{test_accuracy:.1%} ({errors} errors of {len(x_test)})"
    ),
    "training time (2 CPU cores in the docs build)": f"{train_seconds:.0f} s",
    "parameters": f"{model.count_params():,}",
    "inference throughput": f"{throughput:,.0f} images/s",
    f"goal: ≥ {GOAL_ACCURACY:.0%} in ≤ {GOAL_SECONDS} s": "met" if goal_met else "not met",
}
for name, row in bias.items():
    headline[f"{name}, same budget"] = f"{row['test_accuracy']:.1%}, {row['parameters']:,} params"
for row in ablation:
    headline[f"ablation, {row['recipe']}, val accuracy"] = f"{row['val_accuracy']:.1%}"
if cifar_metrics:
    headline["CIFAR-100 from scratch, top-1"] = f"{cifar_metrics['test_accuracy']:.1%}"
path = results.save("04_vision_transformer", metrics, headline=headline)
print(f"wrote {path}")
