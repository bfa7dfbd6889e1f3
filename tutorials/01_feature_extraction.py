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
# extractor for a new task with only 10 labelled images per class, and measure
# how much that buys over learning from pixels or from scratch.
#
# **Exercise:** 4.1
#
# **You will learn:**
#
# - what transfer learning is, and when it helps;
# - how to load a pretrained backbone and inspect it: layers, parameters,
#   feature-map shapes, receptive field;
# - the *preprocessing contract* between a backbone and its inputs, and what
#   breaking it costs;
# - how to extract features for a dataset and train a linear head on them;
# - how to compare, at the same small label budget, a linear model on raw
#   pixels, the same network trained from scratch, and a linear head on
#   pretrained features.
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
#   head*) on the resulting feature vectors. Cheap, hard to overfit, works with
#   very few labels.
# - **Fine-tuning** (Tutorial 02): also update some or all pretrained weights,
#   with a small learning rate.
#
# Use it when labelled target data is scarce and the source task shares
# low-level structure with the target (natural photos → other photos,
# handwriting → other handwriting). It helps less when the target is very
# different (photos → spectrograms) or when you have plenty of target labels.
#
# The usual source is ImageNet (1.3 M photos, 1000 classes). Its weights are a
# download away, which an offline machine, like the one that built this page,
# cannot make. So dl4keras ships a small backbone of its own, **TinyResNet**,
# pretrained on a source task that needs no internet. Everything below works
# the same with an ImageNet backbone.

# %%
import logging
import time

import keras
import matplotlib.pyplot as plt
import numpy as np

from dl4keras import backbones, data, downloads, profiles, results, viz

PROFILE = profiles.current()
LABELS_PER_CLASS = 10  # the small labelled budget of the target task
TEST_PER_CLASS = profiles.choose(smoke=40, docs=300, full=1000)
SEEDS = profiles.choose(smoke=(0,), docs=(0, 1, 2), full=(0, 1, 2, 3, 4))
HEAD_STEPS = profiles.choose(smoke=20, docs=300, full=300)
SCRATCH_EPOCHS = profiles.choose(smoke=2, docs=60, full=150)
BUDGETS = profiles.choose(smoke=(1, 10), docs=(1, 3, 10, 30), full=(1, 3, 10, 30, 100))
TSNE_POINTS = profiles.choose(smoke=100, docs=750, full=1500)
SOURCE_CLASSES, TARGET_CLASSES = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
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
# the backbone has never seen, with only 10 labelled images per class. The
# test images are drawn from a different half of the handwritten digits than
# the training images.

# %%
x_test, y_test = data.cluttered_digits(TARGET_CLASSES, TEST_PER_CLASS, split="test", seed=100)
x_demo, y_demo = data.cluttered_digits(TARGET_CLASSES, 4, split="train", seed=7)
print(
    "test images:",
    x_test.shape,
    x_test.dtype,
    "values",
    x_test.min(),
    "to",
    x_test.max(),
)
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
print("preprocessing used by each backbone:")
for info in backbones.available():
    print(f"  {info['name']:<18} {info['preprocessing']}")


def extract(images):
    return backbones.extract_features(extractor, images, batch_size=256, verbose=0)


t0 = time.perf_counter()
f_test = extract(x_test)
extract_seconds = time.perf_counter() - t0
f_test_wrong = extract(x_test / 255.0)
print(
    f"\nfeatures: {f_test.shape} in {extract_seconds:.1f} s "
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
# pixels as our first baseline: only the representation changes.


# %%
def fit_linear(x_train, y_train, x_eval, y_eval, steps=HEAD_STEPS, seed=0):
    """Trains Normalization + linear softmax head; returns test accuracy.

    The head starts from the same random weights (`seed`) every time, so two
    calls on the same features give the same accuracy.
    """
    keras.utils.set_random_seed(seed)
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
    return model.evaluate(x_eval, y_eval, verbose=0)[1]


x_few, y_few = data.cluttered_digits(TARGET_CLASSES, LABELS_PER_CLASS, split="train", seed=200)
acc = fit_linear(extract(x_few), y_few, f_test, y_test)
acc_wrong = fit_linear(extract(x_few / 255.0), y_few, f_test_wrong, y_test)
print(f"linear head on pretrained features, {LABELS_PER_CLASS} labels/class: {acc:.1%}")
print(f"...with the preprocessing contract broken ([0, 1] inputs):   {acc_wrong:.1%}")

# %% [markdown]
# ## The comparison: pixels vs scratch vs pretrained features
#
# Same target task, same 10 labels per class, repeated over several random
# draws of the labelled images (seeds), three ways:
#
# - **(a) pixels**: the linear model on the 3,072 raw pixel values;
# - **(b) scratch**: the *same* TinyResNet architecture, randomly initialised
#   and trained end to end on the 50 images (with a fresh head);
# - **(c) pretrained features**: the linear head on the frozen pretrained
#   features.


# %%
def train_from_scratch(x_train, y_train, x_eval, y_eval, seed):
    keras.utils.set_random_seed(seed)
    net = backbones.build("tiny_resnet", input_shape=(32, 32, 3), weights=None, trainable=True)
    model = keras.Sequential(
        [
            net,
            backbones.classifier_head(len(TARGET_CLASSES), input_shape=net.output_shape[-1]),
        ]
    )
    model.compile(
        keras.optimizers.AdamW(1e-3, weight_decay=0.05),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(x_train, y_train, batch_size=16, epochs=SCRATCH_EPOCHS, verbose=0)
    scratch_train_accuracy.append(history.history["accuracy"][-1])
    return model.evaluate(x_eval, y_eval, verbose=0)[1]


scratch_train_accuracy = []
scores = {"pixels": [], "scratch": [], "pretrained": []}
seconds = {"pixels": 0.0, "scratch": 0.0, "pretrained": 0.0}
for seed in SEEDS:
    x_few, y_few = data.cluttered_digits(
        TARGET_CLASSES, LABELS_PER_CLASS, split="train", seed=200 + seed
    )
    for method in scores:
        t0 = time.perf_counter()
        if method == "pixels":
            scores[method].append(fit_linear(x_few, y_few, x_test, y_test))
        elif method == "scratch":
            scores[method].append(train_from_scratch(x_few, y_few, x_test, y_test, seed))
        else:
            scores[method].append(fit_linear(extract(x_few), y_few, f_test, y_test))
        seconds[method] += time.perf_counter() - t0
    print(f"seed {seed}: " + "  ".join(f"{m} {s[-1]:.1%}" for m, s in scores.items()))

summary = {m: (float(np.mean(s)), float(np.std(s))) for m, s in scores.items()}
print(f"\n{'method':<26}{'accuracy (mean ± std)':>24}{'train time':>12}")
for method, label in [
    ("pixels", "(a) logistic reg. pixels"),
    ("scratch", "(b) same CNN, scratch"),
    ("pretrained", "(c) pretrained features"),
]:
    mean, std = summary[method]
    print(f"{label:<26}{mean:>17.1%} ± {std:.1%}{seconds[method] / len(SEEDS):>10.1f} s")
print(f"{'chance':<26}{1 / len(TARGET_CLASSES):>17.1%}")
margin_pixels = summary["pretrained"][0] - summary["pixels"][0]
margin_scratch = summary["pretrained"][0] - summary["scratch"][0]
scratch_fit = np.mean(scratch_train_accuracy)
print(
    f"\n(b) reached {scratch_fit:.0%} accuracy on its own "
    f"{LABELS_PER_CLASS * len(TARGET_CLASSES)} training images"
    + (
        ":\nit memorises them, but learns little that generalises."
        if scratch_fit > 0.9
        else f" in {SCRATCH_EPOCHS} epochs:\ntoo short a run to fit them."
    )
)
print(
    f"pretrained features beat pixels by {margin_pixels * 100:+.1f} points "
    f"and scratch by {margin_scratch * 100:+.1f} points"
)

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
names = ["(a) pixels", "(b) scratch", "(c) pretrained"]
means = [summary[m][0] * 100 for m in scores]
ax.bar(
    names,
    means,
    yerr=[summary[m][1] * 100 for m in scores],
    capsize=6,
    color=["#999999", "#e39c4e", "#3c7fc1"],
)
ax.axhline(100 / len(TARGET_CLASSES), color="k", ls="--", lw=1, label="chance")
for i, m in enumerate(means):
    ax.text(i, m + 2, f"{m:.0f}%", ha="center")
ax.set_ylabel("test accuracy (%)")
ax.set_ylim(0, 100)
ax.set_title(f"Digits 5-9 with {LABELS_PER_CLASS} labels per class ({len(SEEDS)} seeds)")
ax.legend()
plt.show()

# %% [markdown]
# ### How many labels is a pretrained backbone worth?
#
# The cheap methods (a) and (c) are easy to rerun at other label budgets
# (a new draw of labelled images for each budget). Before you run it:
# which method gains more from each extra label?

# %%
curve = {"labels_per_class": list(BUDGETS), "pixels": [], "pretrained": []}
for budget in BUDGETS:
    x_b, y_b = data.cluttered_digits(TARGET_CLASSES, budget, split="train", seed=300 + budget)
    curve["pixels"].append(fit_linear(x_b, y_b, x_test, y_test))
    curve["pretrained"].append(fit_linear(extract(x_b), y_b, f_test, y_test))
    gap = curve["pretrained"][-1] - curve["pixels"][-1]
    print(
        f"{budget:>4} labels/class: pixels {curve['pixels'][-1]:.1%}  "
        f"pretrained {curve['pretrained'][-1]:.1%}  gap {gap * 100:+.1f} points"
    )
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(BUDGETS, np.array(curve["pixels"]) * 100, "o-", color="#999999", label="(a) pixels")
ax.plot(
    BUDGETS,
    np.array(curve["pretrained"]) * 100,
    "o-",
    color="#3c7fc1",
    label="(c) pretrained features",
)
ax.set_xscale("log")
ax.set_xticks(BUDGETS, [str(b) for b in BUDGETS])
ax.set_xticks([], minor=True)
ax.set_xlabel("labelled images per class")
ax.set_ylabel("test accuracy (%)")
ax.set_title("Label efficiency")
ax.legend()
plt.show()

# %% [markdown]
# In our runs the pixel baseline stayed near chance at every budget: a
# linear model on raw pixels cannot find a small digit on clutter, so more
# labels barely help it. The pretrained features turn each extra label into
# accuracy, so the gap *grows* over this range. The familiar rule "with
# enough labels, training on the target data catches up" is about a model
# that can learn its own features, such as (b), the CNN from scratch, and it
# needs far more labels than a few dozen per class.
#
# ## Seeing why: a 2-D map of the representations
#
# t-SNE places points so that neighbours in the high-dimensional space stay
# neighbours in 2-D. In pixel space the classes are mixed: the background
# dominates the distance between two images. In the pretrained feature space
# the digits gather in regions, some clearly, others overlapping (that
# overlap is where the linear head's errors come from), although the
# backbone never saw digits 5-9: it learned to look at strokes and ignore
# clutter, and that transfers.

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
# ## With internet: ImageNet predictions on real photos
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
    "accuracy": {m: {"mean": s[0], "std": s[1], "runs": scores[m]} for m, s in summary.items()},
    "margin_points": {
        "vs_pixels": margin_pixels * 100,
        "vs_scratch": margin_scratch * 100,
    },
    "train_seconds_per_run": {m: seconds[m] / len(SEEDS) for m in seconds},
    "feature_extraction_images_per_second": len(x_test) / extract_seconds,
    "broken_preprocessing_accuracy": acc_wrong,
    "scratch_train_accuracy": float(np.mean(scratch_train_accuracy)),
    "label_efficiency": curve,
}
labels = f"{LABELS_PER_CLASS} labels/class, {len(SEEDS)} seeds"
headline = {
    f"(a) logistic regression on pixels ({labels})": "{:.1%} ± {:.1%}".format(*summary["pixels"]),
    f"(b) same CNN from scratch ({labels})": "{:.1%} ± {:.1%}".format(*summary["scratch"]),
    f"(c) linear head on pretrained features ({labels})": "{:.1%} ± {:.1%}".format(
        *summary["pretrained"]
    ),
    "(c) minus the better of (a), (b)": f"{min(margin_pixels, margin_scratch) * 100:+.1f} points",
}
path = results.save("01_feature_extraction", metrics, headline=headline)
print(f"wrote {path}")

# %% [markdown]
# ## Exercise 4.1: which layer transfers best?
#
# So far we took features from the *last* block. Early layers hold generic
# features (edges, colours), late layers more source-specific ones (parts of
# the digits 0-4).
#
# **Task.** Before running anything, predict which of `stem_relu`,
# `block1_out`, `block2_out` and `block3_out` gives the best linear-probe
# accuracy on digits 5-9 with 10 labels per class. Then measure it: build a
# feature extractor that global-average-pools the output of each of those
# layers, and train the same linear head on each.
#
# **Hints.**
#
# - `extractor.get_layer("tiny_resnet")` is the backbone; it takes raw 0-255
#   images (its first layer rescales).
# - `keras.Model(backbone.input, keras.layers.GlobalAveragePooling2D()(
#   backbone.get_layer(name).output))` is a pooled extractor for any layer.
# - Reuse `fit_linear` and `backbones.extract_features`.
#
# A reference solution follows (collapsed on the site). Compare its numbers
# with your prediction: were the deepest features the best here? Would you
# expect the same for photos of flowers with an ImageNet backbone?


# %% tags=["solution"]
def layer_probe(layer_name, x_train, y_train):
    pooled = keras.layers.GlobalAveragePooling2D()(tiny.get_layer(layer_name).output)
    probe = keras.Model(tiny.input, pooled)
    f_train = backbones.extract_features(probe, x_train, verbose=0)
    f_eval = backbones.extract_features(probe, x_test, batch_size=256, verbose=0)
    return fit_linear(f_train, y_train, f_eval, y_test)


x_few, y_few = data.cluttered_digits(TARGET_CLASSES, LABELS_PER_CLASS, split="train", seed=200)
for name in ("stem_relu", "block1_out", "block2_out", "block3_out"):
    print(f"{name:<11} linear probe: {layer_probe(name, x_few, y_few):.1%}")
