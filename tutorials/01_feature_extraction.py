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
# # Transfer learning I: pretrained backbones as feature extractors
#
# **Description:** Reuse a network pretrained on one task as a frozen feature
# extractor for a new task with few labelled images, measure how much that
# buys over learning from pixels or from scratch, and at which label budget
# fine-tuning takes over.
#
# **Exercise:** 4.1
#
# **Backends:** TensorFlow
#
# **You will learn:**
#
# - what transfer learning is, and when it helps;
# - how to load a pretrained backbone and inspect it: layers, parameters,
#   feature-map shapes, receptive field;
# - the *preprocessing contract* between a backbone and its inputs, and what
#   breaking it costs;
# - how to extract features for a dataset and train a linear head on them;
# - how to measure *when* transfer pays: a linear probe, training from
#   scratch and fine-tuning across label budgets.
#
# Going further: a target that the pretrained features do not suit, what
# the registry's backbones (ResNet, VGG, EfficientNet, MobileNet, ConvNeXt)
# cost, what the first layer and the features show, and ImageNet backbones
# on real photos.
#
# Run it with `python tutorials/01_feature_extraction.py` (add
# `--profile smoke` for a seconds-long run, `--profile full` on a GPU with
# internet).

# %% [markdown]
# ## What transfer learning is, and when to use it
#
# A network trained on a large *source* task learns a hierarchy of features:
# edges and colour blobs in the first layers, strokes and textures in the
# middle, object parts near the top. Much of that hierarchy is useful for other
# images too. **Transfer learning** reuses it for a *target* task:
#
# - **Feature extraction** (this tutorial): freeze the pretrained network, run
#   every image through it once, and train only a small classifier (a *linear
#   head*, or *linear probe*) on the resulting feature vectors. Cheap, hard to
#   overfit, works with very few labels.
# - **Fine-tuning** (Tutorial 02): also update some or all pretrained weights.
#
# Use it when labelled target data is scarce and the target needs the kind of
# features the source task taught: natural photos → other photos, handwriting
# → other handwriting. Even targets that look unlike the source often gain
# from ImageNet weights, e.g. audio spectrograms (Palanisamy et al. 2020,
# arXiv:2007.11154) and medical images (Raghu et al. 2019, arXiv:1902.07208;
# there the gain is mostly faster convergence). It helps less when you have
# plenty of target labels, and when the target depends on what the source
# task taught the network to *ignore*. Below we measure the first on a curve
# over label budgets; "Going further" measures a target of the second kind.
#
# The usual source is ImageNet (1.3 M photos, 1000 classes). Its weights are a
# download away, which an offline machine, like the one that built this page,
# cannot make. So dl4keras ships a small backbone of its own, **TinyResNet**,
# pretrained on a source task that needs no internet. Everything below works
# the same with an ImageNet backbone.

# %%
import logging
import tempfile
import time
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np

from dl4keras import (
    backbones,
    check,
    data,
    downloads,
    image_folder,
    label_budget,
    profiles,
    results,
    transfer,
    viz,
)

PROFILE = profiles.current()
LABELS_PER_CLASS = 10  # the small labelled budget of the first experiments
BUDGETS = profiles.choose(smoke=(2, 5), docs=(5, 20, 100, 300), full=(5, 20, 100, 300))
SEEDS = profiles.choose(smoke=(0,), docs=(0, 1, 2), full=(0, 1, 2, 3, 4))
TEST_PER_CLASS = profiles.choose(smoke=40, docs=200, full=1000)
HEAD_STEPS = profiles.choose(smoke=20, docs=300, full=300)
# Networks trained end to end: about NET_EPOCHS passes over the labelled
# set, at least NET_STEPS[0] and at most NET_STEPS[1] gradient steps.
NET_EPOCHS = profiles.choose(smoke=1, docs=5, full=30)
NET_STEPS = profiles.choose(smoke=(2, 3), docs=(60, 200), full=(200, 3000))
FAR_LABELS = profiles.choose(smoke=5, docs=20, full=20)  # far target, per class
COST_IMAGES = profiles.choose(smoke=(4, 1), docs=(8, 2), full=(32, 4))  # batch, batches
COST_TIMED = profiles.choose(
    smoke=("tiny_resnet", "mobilenetv3small"),
    docs=("tiny_resnet", "mobilenetv3small", "efficientnetb0", "resnet50", "vgg16"),
    full=None,  # all
)
TSNE_POINTS = profiles.choose(smoke=100, docs=600, full=1500)
SOURCE_CLASSES, TARGET_CLASSES = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
CHANCE = 1 / len(TARGET_CLASSES)
keras.utils.set_random_seed(0)
logging.getLogger("tensorflow").setLevel(logging.ERROR)  # no notes on retracing
print(f"profile={PROFILE}  keras {keras.__version__}  backend {keras.backend.backend()}")

# %% [markdown]
# ## The tasks: glyphs on clutter
#
# Source and target share one kind of image: a glyph pasted at a random
# position, size and colour onto a random crop of a photo (scikit-image's
# bundled photos). TinyResNet was pretrained (`tools/pretrain_tiny_resnet.py`)
# on 47 classes: the handwritten digits **0-4** (scikit-learn's digits) and 42
# printed letters in 21 typefaces, the way ImageNet backbones learn from many
# varied classes. Our target task is the handwritten digits **5-9**, which
# the backbone has never seen, with few labelled images per class. The
# test images are drawn from a different half of the handwritten digits than
# the training images.

# %%
x_test, y_test = data.cluttered_digits(TARGET_CLASSES, TEST_PER_CLASS, split="test", seed=100)
x_demo, y_demo = data.cluttered_digits(TARGET_CLASSES, 4, split="train", seed=7)
print(f"test images: {x_test.shape} {x_test.dtype}, values {x_test.min()} to {x_test.max()}")
x_source, y_source = data.cluttered_letters(n_per_class=1, seed=7)
fig = viz.image_grid(
    x_source[:8],
    [f"letter {data.LETTERS[i]}" for i in y_source[:8]],
    title="Part of the source task: printed letters on clutter",
)
plt.show()
fig = viz.image_grid(
    x_demo[:16],
    [f"digit {TARGET_CLASSES[i]}" for i in y_demo[:16]],
    title="Target task: handwritten digits 5-9 on clutter",
)
plt.show()

# %% [markdown]
# ## Load a pretrained backbone
#
# `dl4keras.backbones` is a registry over `keras.applications` plus the
# offline TinyResNet. `describe()` lists what is available: which pretrained
# weights each has, its size, and what input it expects.

# %%
print(backbones.describe())

# %% [markdown]
# First we ask for a real ImageNet ResNet50. With internet, Keras downloads
# the weights once into its cache; without it, dl4keras fails *at once* with a
# message that says what is missing and what to do instead, rather than
# hanging or printing a page of stack trace.

# %%
try:
    imagenet_model = backbones.build("resnet50", input_shape=(224, 224, 3), weights="imagenet")
    print("ImageNet ResNet50 loaded:", imagenet_model.count_params(), "parameters")
except downloads.WeightsUnavailableError as error:
    imagenet_model = None
    print(f"ImageNet weights are not available here:\n\n{error}\n")
    print("=> Using dl4keras's offline pretrained TinyResNet instead.")

# %% [markdown]
# Now the backbone we use for the experiment. `build` returns a model that
# takes **raw 0-255 RGB images**: the preprocessing that matches the
# pretrained weights is inside the model, and `pooling="avg"` averages the last
# feature map into one vector per image. `trainable=False` freezes it.

# %%
extractor = backbones.build(
    "tiny_resnet",
    input_shape=(32, 32, 3),
    weights="pretrained",
    pooling="avg",
    trainable=False,
)
extractor.summary(line_length=80)

# %% [markdown]
# ### Inspect it: blocks, feature maps and the receptive field
#
# The backbone is a stack of blocks; each halves the spatial resolution and
# widens the channels. The **receptive field** of a unit is the patch of input
# pixels that can influence it. It grows with every 3×3 convolution by
# `2 × jump`, where `jump` is the product of the strides so far. Units of the
# last block must see most of a digit to recognise it.

# %%
tiny = extractor.get_layer("tiny_resnet")
receptive, jump, rows = 1, 1, []
for layer in tiny.layers:
    if isinstance(layer, keras.layers.Conv2D) and "proj" not in layer.name:
        receptive += (layer.kernel_size[0] - 1) * jump
        jump *= layer.strides[0]
    if layer.name.endswith(("stem_relu", "_out")):
        rows.append((layer.name, tuple(layer.output.shape[1:]), receptive))
print(f"{'layer':<16}{'feature map':>16}{'receptive field':>18}")
for name, shape, rf in rows:
    print(f"{name:<16}{str(shape):>16}{rf:>15} px")
print(
    f"\n{tiny.count_params():,} parameters, of which trainable now: "
    f"{sum(int(np.prod(w.shape)) for w in extractor.trainable_weights):,}"
)

# %% [markdown]
# ## The preprocessing contract
#
# A pretrained network only works on inputs prepared **exactly** as during
# its pretraining. Every `keras.applications` model comes with its own
# `preprocess_input` (ResNet50 subtracts ImageNet channel means in BGR order,
# ResNet50V2 scales to [-1, 1], EfficientNet does its own scaling inside the
# model...), and forgetting it, or applying it twice, silently degrades the
# features. `dl4keras.backbones.build` puts the right preprocessing inside
# the model, so you feed raw 0-255 images. Let us measure what happens if
# you break the contract anyway by feeding images scaled to [0, 1]:


# %%
def extract(images):
    return backbones.extract_features(extractor, images, batch_size=256, verbose=0)


t0 = time.perf_counter()
f_test = extract(x_test)
extract_seconds = time.perf_counter() - t0
f_test_wrong = extract(x_test / 255.0)
print(
    f"features: {f_test.shape} in {extract_seconds:.1f} s "
    f"({len(x_test) / extract_seconds:.0f} images/s)"
)
cosine = np.sum(f_test * f_test_wrong, 1) / (
    np.linalg.norm(f_test, axis=1) * np.linalg.norm(f_test_wrong, axis=1) + 1e-9
)
print(f"cosine similarity, right vs wrong preprocessing: {cosine.mean():.2f}")

# %% [markdown]
# ## Train a linear head on the features
#
# With the backbone frozen, the features of every image are computed once.
# The only thing we train is a **linear head**: one `Dense` softmax layer
# (`backbones.classifier_head`), preceded by a `Normalization` layer that
# standardises each feature. A softmax layer trained with cross-entropy *is*
# multinomial logistic regression, so we use the very same function on raw
# pixels as our first baseline: only the representation changes. We write
# it once here; `backbones.linear_probe` is the package's version of the
# same steps, which we use from then on.


# %%
def fit_linear(x_train, y_train, x_eval, y_eval, steps=HEAD_STEPS, seed=0):
    """Trains Normalization + linear softmax head; returns test accuracy."""
    keras.utils.set_random_seed(seed)  # the same initial head for the same seed
    x_train = x_train.reshape(len(x_train), -1).astype("float32")
    x_eval = x_eval.reshape(len(x_eval), -1).astype("float32")
    norm = keras.layers.Normalization()
    norm.adapt(x_train)
    head = backbones.classifier_head(len(TARGET_CLASSES), input_shape=x_train.shape[1])
    model = keras.Sequential([keras.Input((x_train.shape[1],)), norm, head])
    model.compile(
        keras.optimizers.AdamW(1e-2, weight_decay=0.05),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    for _ in range(steps):  # full-batch gradient steps: the labelled set is tiny
        model.train_on_batch(x_train, y_train)
    return model.evaluate(x_eval, y_eval, verbose=0, batch_size=1024)[1]


x_few, y_few = data.cluttered_digits(TARGET_CLASSES, LABELS_PER_CLASS, split="train", seed=200)
f_few = extract(x_few)
acc = fit_linear(f_few, y_few, f_test, y_test)
acc_wrong = fit_linear(extract(x_few / 255.0), y_few, f_test_wrong, y_test)
acc_pixels = fit_linear(x_few, y_few, x_test, y_test)
acc_package = backbones.linear_probe(f_few, y_few, f_test, y_test, steps=HEAD_STEPS)
print(f"{LABELS_PER_CLASS} labels/class, linear head on pretrained features: {acc:.1%}")
print(f"...with the preprocessing contract broken ([0, 1] inputs):      {acc_wrong:.1%}")
print(f"...on raw pixels instead of features:                           {acc_pixels:.1%}")
print(f"backbones.linear_probe, the same steps: {acc_package:.1%} (chance {CHANCE:.0%})")

# %% [markdown]
# ## When does transfer pay? Four methods across label budgets
#
# One accuracy at one budget says little about *when* to use transfer
# learning. So we measure a curve: for each budget (labelled images per
# class) and seed, one random draw of labelled images, on which four
# methods train:
#
# - **pixels**: the linear model on the 3,072 raw pixel values;
# - **scratch**: the *same* TinyResNet architecture, randomly initialised
#   and trained end to end (with a fresh head);
# - **probe**: the linear head on the frozen pretrained features;
# - **fine-tune**: TinyResNet from its pretrained weights, every layer
#   trained end to end with a smaller learning rate (the plain version;
#   Tutorial 02 does it with care).
#
# The networks get the same number of gradient steps (about `NET_EPOCHS`
# passes over the labelled set, within `NET_STEPS`). That is enough for
# fine-tuning, which starts from useful features, and short for training
# from scratch, which must learn them all; the full profile trains longer.
# Predict before you run it: which method wins with 5 labels per class,
# which with 300?


# %%
def sample(labels_per_class, seed):
    return data.cluttered_digits(
        TARGET_CLASSES, labels_per_class, split="train", seed=1000 * labels_per_class + seed
    )


def methods_on(x_eval, y_eval):
    """The four methods, each returning its accuracy on (x_eval, y_eval)."""
    f_eval = extract(x_eval)
    net = dict(x_eval=x_eval, y_eval=y_eval, epochs=NET_EPOCHS, steps=NET_STEPS)
    return {
        "pixels": lambda x, y, seed: backbones.linear_probe(x, y, x_eval, y_eval, HEAD_STEPS),
        "scratch": lambda x, y, seed: transfer.train_end_to_end(
            x, y, weights=None, learning_rate=1e-3, seed=seed, **net
        ),
        "probe": lambda x, y, s: backbones.linear_probe(extract(x), y, f_eval, y_eval, HEAD_STEPS),
        "fine-tune": lambda x, y, seed: transfer.train_end_to_end(
            x, y, weights="pretrained", learning_rate=3e-4, seed=seed, **net
        ),
    }


curve = label_budget.compare_label_budgets(methods_on(x_test, y_test), sample, BUDGETS, SEEDS)
print("\n" + curve.table(chance=CHANCE))

# %%
colors = {"pixels": "#999999", "scratch": "#e39c4e", "probe": "#3c7fc1", "fine-tune": "#4a9b5f"}
curve.plot(colors=colors, chance=CHANCE)
plt.show()

# %% [markdown]
# What the run shows, in numbers it measured:

# %%
pixels = curve.mean("pixels")
print(
    f"pixels: {pixels.min():.1%} to {pixels.max():.1%} (chance {CHANCE:.0%})"
    + (", near chance at every budget." if pixels.max() < 2 * CHANCE else ".")
)
print(curve.summary("probe"))  # the best per budget; where each method beats the probe
print(curve.compare("probe", "fine-tune"))
turn = curve.crossover("probe", "fine-tune")

# %% [markdown]
# Read the lines above against the rule of thumb "few labels: feature
# extraction; more labels: fine-tuning". A linear model on raw pixels
# cannot find a small digit on clutter, whatever the labels. A linear head
# has few parameters to fit, and the frozen features already separate the
# classes, so it needs few labels; fine-tuning adapts the features
# themselves, which pays once there are enough labels to do so without
# overfitting; training from scratch must learn every feature from the
# target labels alone, so it needs the most labels (and steps) of all.
# Whether, and at which budget, this run shows the crossover is what the
# "probe minus fine-tune" line says: a lead within the spread across seeds
# counts as a tie. Tutorial 02 adds the careful fine-tuning strategies to
# this curve.

# %% [markdown]
# ## Exercise 4.1: which layer transfers best?
#
# So far we took features from the *last* block. Early layers hold generic
# features (edges, colours), late layers more source-specific ones (parts of
# the digits 0-4 and of letters).
#
# **Task.** Before running anything, predict which of `stem_relu`,
# `block1_out`, `block2_out` and `block3_out` gives the best linear-probe
# accuracy on digits 5-9 with 10 labels per class. Then measure it: write
# `make_probe(layer_name)`, which returns a feature extractor that
# global-average-pools the output of that layer of the frozen backbone, and
# train the same linear head on the features of each.
#
# **Hints.**
#
# - `extractor.get_layer("tiny_resnet")` is the backbone; it takes raw 0-255
#   images (its first layer rescales).
# - `keras.Model(backbone.input, keras.layers.GlobalAveragePooling2D()(
#   backbone.get_layer(name).output))` is a pooled extractor for any layer.
# - Reuse `backbones.linear_probe` and `backbones.extract_features`.
# - Check your `make_probe` with
#   `check.feature_extractor(make_probe, tiny, LAYERS)`: it says whether each
#   probe reads the named layer, pooled, with the backbone frozen, and names
#   the mistake if not.
#
# Reference solutions follow (collapsed on the site), with the self-check
# between them. Compare the numbers with your prediction: were the deepest
# features the best here? Would you expect the same for photos of flowers
# with an ImageNet backbone?

# %%
LAYERS = ("stem_relu", "block1_out", "block2_out", "block3_out")


# %% tags=["solution"]
def make_probe(layer_name):
    pooled = keras.layers.GlobalAveragePooling2D()(tiny.get_layer(layer_name).output)
    return keras.Model(tiny.input, pooled)


# %%
check.feature_extractor(make_probe, tiny, LAYERS)

# %% tags=["solution"]
layer_accuracy = {}
for name in LAYERS:
    probe = make_probe(name)
    f_train = backbones.extract_features(probe, x_few, verbose=0)
    f_eval = backbones.extract_features(probe, x_test, batch_size=256, verbose=0)
    layer_accuracy[name] = backbones.linear_probe(f_train, y_few, f_eval, y_test, HEAD_STEPS)
    print(f"{name:<11} {f_train.shape[1]:>4} features, linear probe: {layer_accuracy[name]:.1%}")
print(f"best layer here: {max(layer_accuracy, key=layer_accuracy.get)}")

# %% [markdown]
# ## Going further: a far target, which surface is this?
#
# Transfer also depends on *what* the target needs. The source task taught
# TinyResNet to recognise a glyph and to ignore the photo behind it. A target
# that is all background, such as telling brick, grass, gravel, coffee and
# cat fur apart from small crops of scikit-image's photos, needs exactly
# what the source taught the network to ignore. Predict: does the probe
# still beat pixels and scratch?

# %%
SURFACES = ("brick", "grass", "gravel", "coffee", "chelsea")


def surface_crops(n_per_class, seed):
    """Random square crops (any scale) of each photo, resized to 32x32."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, photo in enumerate(data.photos(SURFACES).values()):
        photo = photo if photo.ndim == 3 else np.repeat(photo[..., None], 3, axis=-1)
        for _ in range(n_per_class):
            side = int(rng.integers(48, min(photo.shape[:2])))
            top, left = (rng.integers(n - side + 1) for n in photo.shape[:2])
            crop = photo[top : top + side, left : left + side].astype("float32")
            images.append(keras.ops.convert_to_numpy(keras.ops.image.resize(crop, (32, 32))))
            labels.append(label)
    order = rng.permutation(len(labels))
    return np.stack(images)[order].round().astype("uint8"), np.array(labels)[order]


x_far_test, y_far_test = surface_crops(TEST_PER_CLASS // 2, seed=100)
far_methods = methods_on(x_far_test, y_far_test)
del far_methods["fine-tune"]  # the three cheap ones are enough to tell
far = label_budget.compare_label_budgets(far_methods, surface_crops, (FAR_LABELS,), SEEDS, False)
print(far.table(chance=CHANCE))
fig = viz.image_grid(
    x_far_test[:10], [SURFACES[i] for i in y_far_test[:10]], title="The far target: surfaces"
)
plt.show()
far_mean = {m: float(far.mean(m)[0]) for m in far.methods}
for task, mean_of in [
    ("digits (from the curve)", lambda m: np.interp(FAR_LABELS, curve.budgets, curve.mean(m))),
    ("surfaces", far_mean.get),
]:
    lead = mean_of("probe") - max(mean_of("pixels"), mean_of("scratch"))
    print(f"{task:<24} probe minus the better of pixels and scratch: {lead * 100:+.1f} points")
print(f"best on the surfaces: {far.best()[FAR_LABELS]}")

# %% [markdown]
# Compare the two lines above (the table says which method won on the
# surfaces). What to expect on a task the features were trained to be blind
# to: the probe's lead shrinks or turns negative, while pixels (colour and
# brightness statistics) and a small CNN learning its own texture filters
# have what they need. An ImageNet backbone sees textures as part of its
# source task, so for it this target would be near, not far: "far" is about
# what the source taught, not about how the images look.

# %% [markdown]
# ## Going further: what the registry's backbones cost
#
# `describe()` listed VGG, EfficientNet and the others; here is what using
# one as a feature extractor costs. Parameters and feature size come from
# building each model with random weights (no download: the cost does not
# depend on the weights), and the throughput is `extract_features` at
# 224×224 on this page's CPU, over a few batches of random images. Building
# is quick; timing the large models on a CPU is not, so the docs profile
# times a subset and the full profile all of them.

# %%
costs = backbones.measure_costs(
    image_size=224, batch_size=COST_IMAGES[0], batches=COST_IMAGES[1], speed_of=COST_TIMED
)
print(backbones.format_costs(costs))
vgg, resnet = (next(row for row in costs if row["name"] == n) for n in ("vgg16", "resnet50"))
if vgg["images_per_second"] and resnet["images_per_second"]:
    print(
        f"vgg16 has {vgg['parameters'] / resnet['parameters']:.2f}x the parameters of "
        f"resnet50 and extracts {vgg['images_per_second'] / resnet['images_per_second']:.2f}x "
        "as many images per second."
    )

# %% [markdown]
# Parameters are not cost: compare the VGG16 and ResNet50 lines above.
# VGG16 runs all its 3×3 convolutions with many channels on large feature
# maps, while ResNet50 shrinks the maps early and uses cheap 1×1
# bottlenecks; MobileNet and EfficientNet are built from cheaper still
# depthwise convolutions. Compute per image, not parameter count, sets the
# speed. Feature sizes differ too, and they are what the linear head sees.
# Which one transfers best to *your* photos is an empirical question: the full
# profile answers it for TF Flowers in "Going further" below.

# %% [markdown]
# ## Going further: what the first layer responds to
#
# What do the first filters respond to? Here are a few feature maps of the
# stem for one image: edges and colour contrasts, the raw material of strokes.

# %%
stem = keras.Model(tiny.input, tiny.get_layer("stem_relu").output)
maps = keras.ops.convert_to_numpy(stem(x_demo[:1].astype("float32")))[0]  # (16, 16, 32)
maps = maps[..., :7] / (maps[..., :7].max(axis=(0, 1)) + 1e-6)  # each channel to [0, 1]
# 7 maps, upsampled to 32x32 to sit beside the input
maps = maps.transpose(2, 0, 1).repeat(2, axis=1).repeat(2, axis=2)
fig = viz.image_grid(
    [x_demo[0] / 255.0] + [np.repeat(m[..., None], 3, -1) for m in maps],
    ["input"] + [f"stem channel {i}" for i in range(7)],
    title="What the first layer responds to",
)
plt.show()

# %% [markdown]
# ## Going further: a 2-D map of the representations
#
# t-SNE places points so that neighbours in the high-dimensional space stay
# neighbours in 2-D. In pixel space the classes are mixed: the background
# dominates the distance between two images. Look for how far the
# pretrained features gather each digit into a region of its own, although
# the backbone never saw digits 5-9: it learned to look at strokes and
# ignore clutter. Where the regions overlap, the linear head makes its
# errors.

# %%
from sklearn.manifold import TSNE  # noqa: E402

n = min(TSNE_POINTS, len(x_test))
fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
for ax, (title, points) in zip(
    axes,
    [
        ("raw pixels", x_test[:n].reshape(n, -1) / 255.0),
        ("pretrained TinyResNet features", f_test[:n]),
    ],
):
    xy = TSNE(perplexity=min(30, n // 4), init="pca", random_state=0).fit_transform(points)
    scatter = ax.scatter(xy[:, 0], xy[:, 1], c=y_test[:n] + 5, cmap="tab10", vmin=0, vmax=9, s=8)
    ax.set_title(f"t-SNE of {title}")
    ax.set_xticks([])
    ax.set_yticks([])
axes[1].legend(
    *scatter.legend_elements(), title="digit", loc="center left", bbox_to_anchor=(1, 0.5)
)
plt.show()

# %% [markdown]
# ## Going further: with internet, ImageNet backbones on real photos
#
# When ImageNet weights are available (the `full` profile on a machine with
# internet), this cell shows what the *original* task of a pretrained
# backbone looks like: the top-5 ImageNet classes for photos from
# scikit-image. Offline it explains itself and moves on.

# %%
if imagenet_model is None:
    print("Skipped: ImageNet weights are not available offline (see the message above).")
else:
    # The full ImageNet classifier, 1000-class top included, straight from
    # keras.applications: here we apply its preprocess_input ourselves.
    classifier = keras.applications.ResNet50(weights="imagenet")
    photos = data.photos(("chelsea", "coffee", "rocket", "astronaut"))
    batch = np.stack(
        [keras.ops.convert_to_numpy(keras.ops.image.resize(p, (224, 224))) for p in photos.values()]
    )
    batch = keras.applications.resnet50.preprocess_input(batch)
    predictions = keras.applications.imagenet_utils.decode_predictions(
        classifier.predict(batch, verbose=0), top=5
    )
    for name, top5 in zip(photos, predictions):
        print(name + ": " + ", ".join(f"{label} {p:.0%}" for _, label, p in top5))

# %% [markdown]
# With internet, the full profile also answers "which backbone for my
# photos?" for TF Flowers (3,670 photos of five kinds of flowers): every
# registry backbone, ImageNet weights, features at 224×224, the same linear
# probe. The smoke and docs profiles run the same code as a dry run on the
# offline demo folder with random weights and two small backbones, so the
# code is tested offline; their accuracies mean nothing.

# %%
dry_run = dict(backbones=("tiny_resnet", "mobilenetv3small"), image_size=32, weights=None)
FLOWERS = profiles.choose(
    smoke=dry_run,
    docs=dry_run,
    full=dict(backbones=tuple(backbones.BACKBONES), image_size=224, weights="pretrained"),
)
if PROFILE == "full":
    flowers_folder = image_folder.download_tf_flowers()
else:  # the dry run
    flowers_folder = image_folder.make_demo_folder(
        Path(tempfile.mkdtemp()) / "demo", n_per_class=12, overwrite=True
    )
size = (FLOWERS["image_size"],) * 2
flowers_train, flowers_val = image_folder.load_image_folder(flowers_folder, image_size=size)
flowers_rows = backbones.probe_backbones(
    FLOWERS["backbones"], flowers_train, flowers_val, weights=FLOWERS["weights"]
)
print("TF Flowers:" if PROFILE == "full" else "Dry run: demo folder, random weights:")
print(backbones.format_costs(flowers_rows))

# %% [markdown]
# ## Results
#
# The headline numbers are saved to `results/01_feature_extraction.json`
# (with the profile and library versions), which the tests and this site read.

# %%
metrics = {
    "backbone": "tiny_resnet",
    "pretrained_on": "cluttered handwritten digits 0-4 and printed letters",
    "labels_per_class": LABELS_PER_CLASS,
    "test_images": len(x_test),
    "seeds": len(SEEDS),
    "linear_probe_accuracy": acc,
    "pixels_accuracy": acc_pixels,
    "broken_preprocessing_accuracy": acc_wrong,
    "feature_extraction_images_per_second": len(x_test) / extract_seconds,
    "label_budget": curve.to_dict(),
    "probe_fine_tune_crossover": turn,
    "far_target": {"task": list(SURFACES), **far.to_dict()},
    "backbone_costs": costs,
    "flowers_probe": {"profile_data": "TF Flowers" if PROFILE == "full" else "dry run"}
    | {row["name"]: row["accuracy"] for row in flowers_rows},
    "layer_probe_accuracy": layer_accuracy,
}
headline = curve.headline()
headline["fine-tuning beats the probe (beyond the seed spread) from"] = (
    f"{turn} labels/class" if turn is not None else "no budget measured"
)
headline[f"far target (surfaces, {FAR_LABELS} labels/class): probe vs pixels vs scratch"] = (
    " vs ".join(f"{far_mean[m]:.1%}" for m in ("probe", "pixels", "scratch"))
)
path = results.save("01_feature_extraction", metrics, headline=headline)
print(f"wrote {path}")
