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
# # Transfer learning II: fine-tuning, and adapting to a new domain
#
# **Description:** Go beyond the frozen feature extractor of Tutorial 01:
# update the pretrained weights themselves, carefully. Freeze and unfreeze
# blocks, avoid the BatchNorm trap, choose learning rates that do not erase
# what the backbone knew, monitor validation, and bring your own folder of
# images. Going further: when fine-tuning pays across label budgets,
# layer-wise rates and gradual unfreezing compared, real photos, and
# adapting a model to a new domain without a single label from it.
#
# **Exercise:** 4.2
#
# **Backends:** TensorFlow
#
# **You will learn:**
#
# - how to freeze and unfreeze blocks of a Keras model, and why
#   BatchNormalization layers stay frozen when you fine-tune (the
#   *BatchNorm trap*);
# - what the learning rate trades: adapting to the target against keeping
#   the source (*catastrophic forgetting*), measured;
# - layer-wise (discriminative) learning rates and gradual unfreezing;
# - how to load your own image folder with validation, caching,
#   prefetching and augmentation;
# - how to monitor validation while fine-tuning and keep the best epoch.
#
# Going further: load the saved model back and predict a new image file;
# when fine-tuning beats feature extraction (four strategies across label
# budgets, over seeds); layer-wise rates and gradual unfreezing compared;
# real photos; unsupervised domain adaptation with a gradient reversal
# layer (DANN).
#
# Run it with `python tutorials/02_fine_tuning.py` (add `--profile smoke`
# for a seconds-long run). Everything runs offline, on a CPU.

# %%
import functools
import logging
import tempfile
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from dl4keras import (
    backbones,
    check,
    data,
    finetune,
    image_folder,
    label_budget,
    layerwise_lr,
    profiles,
    results,
    transfer,
    viz,
)

PROFILE = profiles.current()
LABELS_PER_CLASS = profiles.choose(smoke=4, docs=50, full=50)
TEST_PER_CLASS = profiles.choose(smoke=20, docs=200, full=1000)
SOURCE_PER_CLASS = profiles.choose(smoke=10, docs=100, full=300)
SEEDS = profiles.choose(smoke=(0,), docs=(0, 1, 2), full=(0, 1, 2, 3, 4))
EPOCHS = profiles.choose(smoke=1, docs=10, full=20)
BUDGETS = profiles.choose(smoke=(2, 4), docs=(5, 20, 100), full=(5, 20, 100, 300))
GRID_EPOCHS = profiles.choose(smoke=1, docs=6, full=20)  # per run of the label-budget grid
MIN_STEPS = profiles.choose(smoke=2, docs=30, full=100)  # updates, at the smallest budgets
BATCH_SIZE = 32
TARGET_CLASSES = (5, 6, 7, 8, 9)
SOURCE_CLASSES = (0, 1, 2, 3, 4)
workdir = Path(tempfile.mkdtemp(prefix="dl4keras_02_"))
keras.utils.set_random_seed(0)
logging.getLogger("tensorflow").setLevel(logging.ERROR)  # many small models: no retracing notes
print(f"profile={PROFILE}  keras {keras.__version__}  backend {keras.backend.backend()}")

# %% [markdown]
# ## Feature extraction or fine-tuning?
#
# Tutorial 01 froze a pretrained backbone and trained a linear head on its
# features (a **linear probe**). **Fine-tuning** goes one step further: after
# the head has learned, unfreeze some or all of the backbone and keep
# training, with a small learning rate, so the features themselves adapt to
# the target task. The usual advice: with very few labels, feature
# extraction wins, because fine-tuning many weights on a handful of images
# overfits; with more labels, fine-tuning wins. Tutorial 01 measured that
# advice on a curve; this tutorial turns the knobs of fine-tuning one at a
# time, and "Going further" adds its careful strategies to the curve.
#
# The backbone is TinyResNet (see Tutorial 01), pretrained offline on
# handwritten digits 0-4 and printed letters pasted on cluttered photos. The
# target task: the handwritten digits **5-9** it never saw, on the same kind
# of clutter, with `LABELS_PER_CLASS` labels per class. Test images are
# drawn from other writers' digits (the held-out half of the handwriting).

# %%
x_train, y_train = data.cluttered_digits(TARGET_CLASSES, LABELS_PER_CLASS, split="train", seed=1)
x_test, y_test = data.cluttered_digits(TARGET_CLASSES, TEST_PER_CLASS, split="test", seed=2)
print(f"target task: train {x_train.shape}, test {x_test.shape}")
viz.image_grid(
    x_train[:16],
    [str(TARGET_CLASSES[label]) for label in y_train[:16]],
    title="Target task: digits 5-9 on clutter",
)
plt.show()

# %% [markdown]
# ## Blocks, freezing and the trainable summary
#
# `backbones.build` returns a feature extractor that takes raw 0-255
# images; `backbones.attach_head` puts a softmax classifier on it. A network
# is fine-tuned in **blocks**, runs of layers that belong together.
# `finetune.layer_blocks` groups the layers by name prefix (`stem`,
# `block1`, ...), input to output, looking inside the nested backbone;
# `finetune.trainable_summary` shows what would train.

# %%
extractor = backbones.build("tiny_resnet", input_shape=(32, 32, 3))
model = backbones.attach_head(extractor, len(TARGET_CLASSES))
print([name for name, _ in finetune.layer_blocks(model)])
finetune.freeze(model)
finetune.unfreeze(model, "predictions")  # the head only: a linear probe
_ = finetune.trainable_summary(model)

# %% [markdown]
# `finetune.unfreeze(model, from_layer)` makes everything from a layer or
# block up to the top trainable; `from_layer` can also be an index or a
# fraction of the depth (`0.25`: the top quarter of the blocks). It prints
# nothing and returns the names of the layers it unfroze:

# %%
print("unfrozen:", finetune.unfreeze(model, "block3"))
_ = finetune.trainable_summary(model)

# %% [markdown]
# Note "BN frozen" in the status column: the BatchNormalization layers of
# `block3` stayed frozen. That is deliberate, and a section below shows why.

# %% [markdown]
# ## Step 1 for every strategy: train the head first
#
# A new head starts random. Fine-tuning the whole network with a random
# head sends large, random gradients into the pretrained layers during the
# first steps and damages the features before the head has learned
# anything. The standard recipe (the Keras transfer-learning guide; Kumar et
# al., 2022, call it LP-FT) is to **train the head on frozen features
# first**, then fine-tune. The head-only stage never backpropagates
# through the backbone: extract the features once and fit a linear
# classifier on them. scikit-learn's `LogisticRegression` does that in
# milliseconds; `transfer.linear_probe_weights` fits it and returns the
# weights for the Keras `Dense` head.
#
# `transfer.FineTuningTask` keeps together what one comparison needs: the
# labelled images, the backbone, its cached features, the probe, and
# `fine_tune` (compile, fit, test accuracy and seconds). `probe_model(seed)`
# gives a fresh pretrained model with the probe's head, all frozen: every
# fine-tuning run below starts from it.

# %%
digits = transfer.FineTuningTask(
    "tiny_resnet", x_train, y_train, x_test, y_test, SEEDS, epochs=EPOCHS, batch_size=BATCH_SIZE
)
print("blocks of the backbone, input to output:", digits.blocks)
probe_accuracy = digits.probes[SEEDS[0]][1]
print(f"linear probe test accuracy: {probe_accuracy:.1%}")

# %% [markdown]
# ## The BatchNorm trap
#
# A BatchNormalization layer normalises its input with a mean and variance.
# During training it uses the statistics of the current batch and updates
# running averages of them (`moving_mean`, `moving_variance`); at inference
# it uses the running averages, which after pretraining describe the
# *source* data.
#
# In Keras 3, a BatchNormalization layer with `trainable=False` runs in
# **inference mode**, even inside `fit`: it keeps its pretrained statistics.
# Unfrozen, it switches to batch statistics: with small batches (noisy) and
# a new task or domain (different statistics), it shifts the inputs of
# every pretrained layer after it, and overwrites the running averages, so
# the model is evaluated with statistics it was never trained with. That is
# why `finetune.unfreeze` keeps BatchNorm frozen unless you ask otherwise
# (`keep_batchnorm_frozen=False`). Let us measure both on the same run:
# all layers unfrozen, small batches of 8.

# %%
trap = {}
for keep_frozen in (True, False):
    keras.utils.set_random_seed(SEEDS[0])  # same shuffling for both runs
    model = digits.probe_model(SEEDS[0])
    bn = model.get_layer("tiny_resnet").get_layer("stem_bn")
    before = keras.ops.convert_to_numpy(bn.moving_mean).copy()
    finetune.unfreeze(model, keep_batchnorm_frozen=keep_frozen)
    accuracy, seconds = digits.fine_tune(model, keras.optimizers.Adam(1e-4), batch_size=8)
    drift = np.abs(keras.ops.convert_to_numpy(bn.moving_mean) - before).max()
    label = "BatchNorm frozen (inference mode)" if keep_frozen else "BatchNorm trainable"
    trap[label] = dict(test_accuracy=accuracy, stem_moving_mean_drift=float(drift))
    print(f"{label:<34} test accuracy {accuracy:.1%}, stem BN mean drift {drift:.3f}")
frozen, trainable = (row["test_accuracy"] for row in trap.values())
print(
    f"Keeping BatchNorm frozen changed the test accuracy by {100 * (frozen - trainable):+.1f} "
    "points on this run (one seed: compare it with the seed-to-seed spreads further down)."
)

# %% [markdown]
# With frozen BatchNorm the running statistics do not move at all (a drift
# of zero); trainable, they drift towards the statistics of the few target
# images, and the line above gives the price on this run. How large the
# price is depends on the batch size and on how far the target's statistics
# are from the source's; this page measures one setting only.

# %% [markdown]
# ## The learning rate: adapting against keeping
#
# Pretrained weights are a good starting point that a large learning rate
# throws away. To *see* what is lost, we measure the backbone on its
# **source** task as well: before fine-tuning, we fit a linear probe for the
# source digits 0-4 on the frozen features; after fine-tuning on the target
# task, we put the same source probe back on the changed backbone. If the
# source accuracy collapses, the fine-tuning has overwritten what the
# backbone knew: **catastrophic forgetting**. Three rates for Adam, each
# for the same `EPOCHS` epochs, all layers unfrozen
# (`transfer.learning_rate_sweep` runs them).

# %%
x_source, y_source = data.cluttered_digits(SOURCE_CLASSES, SOURCE_PER_CLASS, split="train", seed=3)
x_source_test, y_source_test = data.cluttered_digits(
    SOURCE_CLASSES, SOURCE_PER_CLASS, split="test", seed=4
)
source_probe = transfer.SourceProbe(extractor, (x_source, y_source), (x_source_test, y_source_test))
sweep = transfer.learning_rate_sweep(digits, source_probe, (1e-2, 1e-3, 1e-4), SEEDS[0])
forgetting = sweep["runs"]
best_target = max(forgetting, key=lambda row: row["target_accuracy"])
best_kept = max(forgetting, key=lambda row: (row["source"], -row["learning_rate"]))
print(
    f"Best on the target in {EPOCHS} epochs: lr={best_target['learning_rate']:g}. "
    f"Kept the most of the source: lr={best_kept['learning_rate']:g} "
    f"({best_kept['source']:.1%} of the source test digits right)."
)

# %% [markdown]
# Read the two lines together. Fine-tuning guides recommend a learning rate
# well below the one used for training from scratch (the Keras
# transfer-learning guide, https://keras.io/guides/transfer_learning/,
# fine-tunes with Adam at 1e-5 after training the head at Adam's default
# 1e-3). This run shows why, and where the advice bends: the smallest rate
# keeps the most of the source, while the rate that does best on the target
# in a short budget of `EPOCHS` epochs can be the larger, from-scratch-like
# one (1e-3 is Adam's default). A rate large enough can wreck both: see
# the first line. The
# learning rate trades adapting against keeping; which side matters is your
# call (keeping the source matters when the model must still serve it, or
# when the target labels are few and noisy). The comparisons below use Adam
# at 1e-3 at the top of the network, the default, not tuned per strategy.

# %% [markdown]
# ## Layer-wise learning rates and gradual unfreezing
#
# The layers of a pretrained network are not equally specific: the first
# ones detect edges and colours that serve any image task, the last ones
# combine them into features for the source classes. **Discriminative
# learning rates** (Howard & Ruder, 2018) give each block its own learning
# rate, small at the bottom and large at the top:
# $\text{lr}_k = \text{lr} \cdot \text{decay}^{\,\text{depth from top}}$.
#
# `layerwise_lr.LayerwiseLR` wraps any Keras optimizer. It multiplies the
# *learning rate* of each group, never the gradients: Adam divides by the
# gradient's running scale, so scaled gradients would change nothing. Its
# summary shows what you configured:

# %%
model = digits.probe_model(SEEDS[0])
finetune.unfreeze(model)
layerwise = layerwise_lr.LayerwiseLR(keras.optimizers.Adam(1e-3), decay=0.3, model=model)
layerwise.summary()

# %% [markdown]
# ULMFiT (Howard & Ruder, 2018) also unfreezes **gradually**: first the top
# block, a few epochs later the one below (`every` epochs), and so on, so
# that the lower layers start moving only once the layers above have
# adapted. `finetune.GradualUnfreezing` is a callback that does it inside one
# `fit` (it rebuilds the train step when the set of trainable weights
# changes, or the newly unfrozen weights would silently not train). A
# Going-further section below compares both with full fine-tuning.

# %%
model = digits.probe_model(SEEDS[0])
finetune.unfreeze(model, "predictions")  # only the head trains at first
model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
unfreezing = finetune.GradualUnfreezing(
    ["block3", "block2", "block1", "stem"], every=2, start_epoch=0, verbose=1
)
model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=7, callbacks=[unfreezing], verbose=0)

# %% [markdown]
# ## Bringing your own images: an image folder
#
# Real projects start from a folder of images, one subfolder per class.
# `dl4keras.image_folder.make_demo_folder` writes such a folder offline
# (digits 5-9 on clutter, PNG and JPEG files, named `five` ... `nine`);
# with your own data you would point at your folder instead.
# `validate_image_folder` checks it before training: empty class folders,
# unreadable files and mixed image sizes give a clear message naming the
# files, rather than an error deep inside TensorFlow.

# %%
folder = image_folder.make_demo_folder(workdir / "digits", n_per_class=LABELS_PER_CLASS)
print(image_folder.validate_image_folder(folder))

broken = workdir / "broken"
image_folder.make_demo_folder(broken, n_per_class=4)
(broken / "ten").mkdir()  # an empty class folder
(broken / "five" / "notes.png").write_text("not an image")  # an unreadable file
try:
    image_folder.validate_image_folder(broken)
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# `load_image_folder` validates the folder, then wraps
# `keras.utils.image_dataset_from_directory`: a seeded train/validation
# split, images resized to `image_size` and kept in raw 0-255 (what
# `backbones` models take), decoded once and **cached** in memory, shuffled
# each epoch and **prefetched** so the next batch is ready while the model
# trains on this one. Keras sorts class folders alphabetically; pass
# `class_names` to choose the order. Augmentation layers go in the model,
# where they are active only in `fit`: no flips for digits.

# %%
train_ds, val_ds = image_folder.load_image_folder(
    folder,
    image_size=(32, 32),
    batch_size=BATCH_SIZE,
    validation_split=0.2,
    class_names=list(image_folder.DEMO_CLASS_NAMES),
)
images, labels = next(iter(train_ds))
print("classes:", train_ds.class_names)
print("a batch:", tuple(images.shape), images.dtype.name, "labels", labels.numpy()[:8])
augment = image_folder.augmentation_layers(flip=None, seed=0)
augmented = keras.ops.convert_to_numpy(augment(images[:8], training=True))
viz.image_grid(
    np.clip(np.concatenate([images[:8].numpy(), augmented]), 0, 255).astype("uint8"),
    [train_ds.class_names[label] for label in labels.numpy()[:8]] + ["augmented"] * 8,
    title="Training images from the folder (top) and one random augmentation (below)",
)
plt.show()

# %% [markdown]
# ## Monitor validation: keep the best epoch
#
# The practical's tip: *monitor validation metrics carefully during
# fine-tuning*. A few hundred labelled images overfit fast once the
# backbone trains, and the test set is not there to choose the epoch. So
# fine-tune with `validation_data`, and let two Keras callbacks act on the
# validation accuracy: `ModelCheckpoint(save_best_only=True)` writes the
# best model so far to a `.keras` file, `EarlyStopping` stops after
# `patience` epochs without improvement and, with
# `restore_best_weights=True`, puts the best epoch's weights back. Here
# the top block of the digit model trains for up to `MONITOR_EPOCHS`
# epochs, with a validation set of images from other writers.

# %%
MONITOR_EPOCHS = profiles.choose(smoke=2, docs=20, full=30)
x_val, y_val = data.cluttered_digits(TARGET_CLASSES, LABELS_PER_CLASS, split="test", seed=9)
best_path = workdir / "fine_tuned.keras"
keras.utils.set_random_seed(SEEDS[0])
model = digits.probe_model(SEEDS[0])
finetune.unfreeze(model, "block3")
model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
callbacks = [
    keras.callbacks.ModelCheckpoint(best_path, monitor="val_accuracy", save_best_only=True),
    keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=4, restore_best_weights=True),
]
history = model.fit(
    x_train,
    y_train,
    validation_data=(x_val, y_val),
    batch_size=BATCH_SIZE,
    epochs=MONITOR_EPOCHS,
    callbacks=callbacks,
    verbose=0,
).history
best_epoch = int(np.argmax(history["val_accuracy"])) + 1
print(
    f"trained {len(history['loss'])} epochs; best validation accuracy "
    f"{max(history['val_accuracy']):.1%} at epoch {best_epoch}, whose weights the model has now"
)
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
for ax, metric in zip(axes, ("loss", "accuracy")):
    epochs = np.arange(1, len(history[metric]) + 1)
    ax.plot(epochs, history[metric], label="training")
    ax.plot(epochs, history[f"val_{metric}"], label="validation")
    ax.axvline(best_epoch, color="grey", linestyle=":", label="best epoch")
    ax.set_xlabel("epoch")
    ax.set_title(metric)
axes[0].legend()
plt.show()

# %% [markdown]
# The training curves keep improving while the validation curves flatten
# or turn: the gap between them is the overfitting that the checkpoint
# guards against. "Going further" loads the saved `.keras` file back and
# predicts a new image file with it.

# %% [markdown]
# ## Exercise 4.2: fine-tune on your image folder
#
# **Task.** Train a classifier for the image folder loaded above
# (`train_ds`, `val_ds`) in two stages, and measure what the second stage
# buys on the validation split:
#
# 1. the pretrained TinyResNet, frozen, with the augmentation layers in
#    front and a new head: train the head only;
# 2. then fine-tune: unfreeze the top block, with a learning rate about
#    ten times smaller, for a few epochs.
#
# Then run the self-check on your model:
# `check.fine_tuning_setup(model, unfrozen_from="block3",
# head_learning_rate=...)`. It checks that the BatchNorm layers stayed in
# inference mode, that the model was compiled again after unfreezing (the
# optimizer updates every trainable weight) and that the number of trainable
# parameters is the top block's and the head's, and names each mistake.
#
# Predict first: will stage 2 help with `LABELS_PER_CLASS` images per
# class, minus the validation fifth? Keep the two validation accuracies in
# `head_only` and `fine_tuned`, and your model in `exercise_model`, for the
# cell after the solution.
#
# **Hints.**
#
# - `keras.Sequential([augment, extractor, head])` or the functional API:
#   `backbones.attach_head(extractor, 5)` builds the head; put `augment`
#   before it with `keras.Input((32, 32, 3))`.
# - `model.fit(train_ds, validation_data=val_ds, epochs=...)` takes the
#   datasets as they are: batched, cached, prefetched.
# - Recompile after `finetune.unfreeze`; check with
#   `finetune.trainable_summary(model)` what trains.
# - Your own photos? `image_folder.load_image_folder("path/to/folder",
#   image_size=(32, 32))`, and with internet `image_folder.download_tf_flowers()`
#   (the full profile) gives 3,670 real flower photos in 5 folders.
#
# A reference solution follows (collapsed on the site), then the self-check.

# %% tags=["solution"]
keras.utils.set_random_seed(0)
backbone = backbones.build("tiny_resnet", input_shape=(32, 32, 3))  # a fresh pretrained copy
head = backbones.attach_head(backbone, len(train_ds.class_names))
exercise_model = keras.Sequential([keras.Input((32, 32, 3)), augment, head])
finetune.freeze(exercise_model)
finetune.unfreeze(exercise_model, "predictions")
head_rate, loss = 3e-3, "sparse_categorical_crossentropy"
exercise_model.compile(keras.optimizers.Adam(head_rate), loss, metrics=["accuracy"])
# shuffle=False: the dataset itself reshuffles every epoch
exercise_model.fit(train_ds, epochs=EPOCHS * 3, shuffle=False, verbose=0)
head_only = exercise_model.evaluate(val_ds, verbose=0)[1]

finetune.unfreeze(exercise_model, "block3")  # BatchNorm stays frozen
# compile again: the new trainable weights need a new train step
exercise_model.compile(keras.optimizers.Adam(head_rate / 10), loss, metrics=["accuracy"])
exercise_model.fit(train_ds, validation_data=val_ds, epochs=EPOCHS, shuffle=False, verbose=0)
fine_tuned = exercise_model.evaluate(val_ds, verbose=0)[1]

# %%
print(f"validation accuracy: head only {head_only:.1%}, + top block {fine_tuned:.1%}")
exercise_ok = check.fine_tuning_setup(
    exercise_model, unfrozen_from="block3", head_learning_rate=head_rate
)

# %% [markdown]
# ## Going further: load the saved model back, predict a new image file
#
# The `.keras` file that `ModelCheckpoint` wrote above holds the whole model, its
# preprocessing included, so it loads anywhere `dl4keras` is installed
# (`import dl4keras` registers its layers) and takes a raw image file. We
# write one new image as a PNG, load the model back and predict.

# %%
images, labels = data.cluttered_digits(TARGET_CLASSES, 1, split="test", seed=10)
image, label = images[0], labels[0]  # one new image of the five drawn
png = workdir / "new_digit.png"
Image.fromarray(image).save(png)
restored = keras.models.load_model(best_path)
pixels = keras.utils.img_to_array(keras.utils.load_img(png))[None]  # raw 0-255, (1, 32, 32, 3)
p = restored.predict(pixels, verbose=0)[0]
predicted = TARGET_CLASSES[int(p.argmax())]
print(f"{png.name}: predicted {predicted} (p = {p.max():.2f}), true {TARGET_CLASSES[label]}")
print(f"reloaded model: test accuracy {restored.evaluate(x_test, y_test, verbose=0)[1]:.1%}")

# %% [markdown]
# ## Going further: when does fine-tuning pay? Four strategies across label budgets
#
# The question of the first section, measured. Four strategies, each at
# several label budgets (`BUDGETS` labelled images per class), each over
# the seeds; every seed draws its own labelled images from a pool, so the
# spread covers *which* images were labelled as well as the training noise.
#
# | strategy | what trains |
# |---|---|
# | linear probe | the head only, on the frozen features |
# | top-block fine-tuning | `block3` and the head, from the probe |
# | full fine-tuning | everything (BatchNorm frozen), from the probe |
# | from scratch | the same network from random weights |
#
# A **strategy** is a function `strategy(task, seed) -> (test accuracy,
# seconds)`. Here is the top-block one written out; `transfer` holds it and
# the others (`transfer.full_fine_tuning`, `transfer.from_scratch`, ...).
# Each run trains for `GRID_EPOCHS` epochs, or longer at the smallest budgets
# so that it makes at least `MIN_STEPS` updates (a handful of images is one
# batch, one update per epoch). Tutorial 01's
# `label_budget.compare_label_budgets` runs the grid: its `sample` is
# `pool.with_budget` (a smaller task per budget and seed, sharing the cached
# features) and `transfer.budget_methods` turns the strategies into its
# methods. A strategy *beats* another at a budget only by more than their
# spreads across seeds added.


# %%
def top_block(task, seed):
    model = task.probe_model(seed)  # pretrained, frozen, the probe's head
    finetune.unfreeze(model, task.blocks[-1])  # "block3" and the head
    return task.fine_tune(model, keras.optimizers.Adam(1e-3))


# a pool twice the largest budget, so that every seed draws other images
x_pool, y_pool = data.cluttered_digits(TARGET_CLASSES, 2 * max(BUDGETS), split="train", seed=8)
pool = transfer.FineTuningTask(
    "tiny_resnet", x_pool, y_pool, x_test, y_test, SEEDS, epochs=GRID_EPOCHS, min_steps=MIN_STEPS
)
strategies = {"top-block": top_block, "full fine-tuning": transfer.full_fine_tuning}
strategies["from scratch"] = transfer.from_scratch
grid = label_budget.compare_label_budgets(
    transfer.budget_methods(strategies), pool.with_budget, BUDGETS, SEEDS, verbose=False
)
print(grid.table())
print("epochs per run:", {b: pool.with_budget(b).epochs_needed() for b in grid.budgets})
budget_verdict = grid.summary("linear probe")
print("\n" + budget_verdict)

# %% [markdown]
# The table and the sentence under it are the evidence for "when to use
# transfer learning" on this task; the sentence calls a difference inside
# the seed-to-seed spread a tie, and with a few seeds the spread is wide.
# Three things to read off them:
#
# - whether the linear probe really wins at the smallest budget, or ties
#   with fine-tuning the top block (the features come from a related
#   source, digits 0-4 on the same clutter, so there is little for
#   fine-tuning to fix);
# - whether full fine-tuning, with every layer free to overfit a handful of
#   images, falls behind the probe at the smallest budget, and from which
#   budget it catches up;
# - how far from scratch stays behind: pretrained weights are worth most
#   when labels are few, and a network from random weights gets far fewer
#   updates here than it would need.
#
# The full profile runs more budgets and seeds, with longer training: run it
# and compare.

# %% [markdown]
# ## Going further: layer-wise learning rates and gradual unfreezing, compared
#
# Back to the digit task with `LABELS_PER_CLASS` labels per class: full
# fine-tuning against its two refinements from above, each from the seed's
# probe, same epochs, Adam at 1e-3 at the top (not tuned per strategy: a
# fair tuning would pick each strategy's rate on a validation split).
# `transfer.compare_strategies` runs them over the seeds; the time column
# is the fine-tuning `fit` plus the probe.

# %%
names = ("full fine-tuning", "layer-wise learning rates", "gradual unfreezing")
table = transfer.compare_strategies(digits, {name: transfer.STRATEGIES[name] for name in names})
gradual = next(row for row in table if row["strategy"] == "gradual unfreezing")
print(
    f"gradual unfreezing, worst seed {min(gradual['accuracies']):.1%}; probe {probe_accuracy:.1%}"
)

# %% [markdown]
# Read the table with its spread in view: with few seeds and
# `TEST_PER_CLASS` test images per class, small differences are within the
# noise. Gradual unfreezing with one learning rate for every block hits each
# newly unfrozen block with full-size Adam steps at its first epoch; its
# per-seed column shows whether that cost a seed dearly on this run. ULMFiT
# pairs gradual unfreezing with small, decaying learning rates for the
# lower layers: combine it with `LayerwiseLR` and see. A strategy is a
# recipe, not a guarantee: measure it on your task, over seeds.

# %% [markdown]
# ## Going further: the same comparison on real photos (full profile)
#
# Digits on clutter are a stand-in that runs anywhere. With internet and a
# GPU, the full profile runs the very same comparison, `FineTuningTask` and
# `compare_strategies` unchanged, on real photos: **TF Flowers** (3,670
# photos of daisies, dandelions, roses, sunflowers and tulips) at the same
# label budget, `LABELS_PER_CLASS` photos per class, every other photo held
# out for testing, with **ResNet50 and its ImageNet weights** at 224×224.
# Its blocks are `conv1` ... `conv5` (`finetune.layer_blocks` finds them by
# name), so the top block is `conv5` and gradual unfreezing goes `conv5`,
# `conv4`, ... down to `conv1`.
#
# Predict before you run it: ImageNet already holds many flowers, so its
# features fit this target far better than glyph features fit digits 5-9.
# Will the linear probe be closer to fine-tuning than on the digits? Will a
# large pretrained network with a few hundred labels overfit when every
# layer trains? `FineTuningTask.from_image_folder` turns any image folder
# into a task. The smoke profile runs this section as a dry run on the
# small demo folder with TinyResNet, so the tests keep it working; the docs
# profile skips it.

# %%
REAL_PHOTOS = profiles.choose(
    smoke=dict(dataset="demo folder (dry run)", backbone="tiny_resnet", image_size=32),
    docs=None,
    full=dict(dataset="TF Flowers", backbone="resnet50", image_size=224),
)
real_photos = None
if REAL_PHOTOS is None:
    print("Skipped in the docs profile: python tutorials/02_fine_tuning.py --profile full")
else:  # the smoke profile's dry run: the demo folder written above, half of it labelled
    full_run = PROFILE == "full"
    photos = transfer.FineTuningTask.from_image_folder(
        image_folder.download_tf_flowers() if full_run else folder,
        REAL_PHOTOS["backbone"],
        REAL_PHOTOS["image_size"],
        LABELS_PER_CLASS if full_run else LABELS_PER_CLASS // 2,
        seeds=SEEDS,
        epochs=EPOCHS,
    )
    print(f"{REAL_PHOTOS['dataset']}: train {photos.x_train.shape}, blocks {photos.blocks}")
    real_photos = dict(REAL_PHOTOS, strategies=transfer.compare_strategies(photos))
    real_photos["labels_per_class"] = len(photos.y_train) // photos.num_classes

# %% [markdown]
# ## Going further: domain adaptation, a new domain without labels
#
# Fine-tuning needs labels from the target. Often the target *domain* has
# plenty of images but no labels: a classifier trained on studio photos
# must work on phone snapshots, one trained on synthetic renders on real
# images. The task is the same, the pictures look different: a **domain
# shift**. Here the source domain is white handwritten digits on black
# (labelled), the target domain the same kind of digits in colour on
# coloured backgrounds (unlabelled): `data.domain_shift_digits`, the offline
# analogue of the classic MNIST → MNIST-M benchmark.

# %%
DA_PER_CLASS = profiles.choose(smoke=6, docs=100, full=300)
DA_EPOCHS = profiles.choose(smoke=1, docs=30, full=40)
DA_SEEDS = profiles.choose(smoke=(0,), docs=(0, 1), full=(0, 1, 2, 3, 4))
domains = {  # the target labels are used only by "source + a few target labels"
    role: data.domain_shift_digits(domain, TARGET_CLASSES, DA_PER_CLASS, split=split, seed=seed)
    for role, domain, split, seed in [
        ("source", "plain", "train", 5),
        ("target", "colour", "train", 6),
        ("target_test", "colour", "test", 7),
    ]
}
viz.image_grid(
    np.concatenate([domains["source"][0][:8], domains["target"][0][:8]]),
    [f"source {TARGET_CLASSES[y]}" for y in domains["source"][1][:8]] + ["target (no label)"] * 8,
    title="Source domain (labelled) and target domain (unlabelled)",
)
plt.show()

# %% [markdown]
# **DANN** (Ganin & Lempitsky, 2015) trains one network with two heads on
# shared features: a *label head* that classifies source images, and a
# *domain head* that tries to tell source from target features. Between the
# features and the domain head sits a **gradient reversal layer**: the
# identity going forward, $-\lambda \times$ the gradient going backward. The
# domain head learns to separate the domains; the layers below it receive
# the *reversed* gradient and learn features the domain head cannot
# separate, while the label head keeps them useful for the labels. $\lambda$
# grows from 0 to 1 during training,
# $\lambda_p = \frac{2}{1 + e^{-10p}} - 1$ with $p$ the training progress,
# so the adversary speaks up only once the features carry information; the
# learning rate is annealed as in the paper,
# $\text{lr}_p = \text{lr}_0 / (1 + 10p)^{0.75}$.
#
# `dl4keras.dann` holds `GradientReversal`, the `DANN` model (trained with
# the standard `fit` on pairs of source and target batches, made by
# `dann_inputs`) and the `DANNSchedule` callback that sets $\lambda$ (and
# the rate) at every step (`dann.dann_lambda` is the schedule).
# `transfer.compare_domain_adaptation` runs three
# methods over the seeds: *source only*, *DANN* (plus the unlabelled target
# images) and, for perspective, *source + a few target labels* (five
# labelled target images per class, no adversary). The frozen part of the
# network runs once: every method trains on its precomputed outputs. Two
# settings, which differ in what is frozen.


# %%
adaptation = functools.partial(
    transfer.compare_domain_adaptation, **domains, seeds=DA_SEEDS, epochs=DA_EPOCHS
)

# %% [markdown]
# ### Setting 1: the whole pretrained backbone, frozen
#
# The recipe of the rest of this tutorial: the pretrained TinyResNet,
# frozen, and a small trained adapter (one Dense layer) on its pooled
# features, with the heads on top. DANN uses the paper's domain weight of 1.


# %%
def adapter():
    return keras.Sequential(
        [keras.Input(extractor.output_shape[1:]), keras.layers.Dense(128, activation="relu")]
    )


frozen_rows, frozen_summary = adaptation(
    frozen=extractor, trained_layers=adapter, domain_weight=1.0, setting="whole backbone frozen"
)

# %% [markdown]
# ### Setting 2: new upper layers, learned on the source
#
# DANN was made for features that are *learned* on the labelled source,
# which then fit the source's look. Keep only the pretrained low-level
# layers (`stem` and `block1`: edges and strokes), frozen, and train new
# upper layers from scratch on their output. Trained on white-on-black
# digits alone, those layers can learn cues that the coloured digits do not
# share, and DANN's domain head sees exactly those cues. The domain weight
# matters here: an adversary must be weak enough for the label head to keep
# up. We chose 0.05 on a separate validation draw of target images (not
# shown, and not the test images below); the paper's weight of 1 let the
# domain head win outright in our trials.

# %%
tiny = extractor.get_layer("tiny_resnet")
low_level = keras.Model(tiny.inputs, tiny.get_layer("block1_out").output)


def upper_layers():
    """New convolutional layers on the frozen low-level features."""
    return keras.Sequential(
        [
            keras.Input(low_level.output_shape[1:]),
            keras.layers.Conv2D(96, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2D(192, 3, strides=2, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(128, activation="relu"),
        ]
    )


upper_rows, upper_summary = adaptation(
    frozen=low_level, trained_layers=upper_layers, domain_weight=0.05, setting="new upper layers"
)

# %% [markdown]
# The lessons, to check against the lines above:
#
# - **DANN is meant for features learned on the source.** The new upper
#   layers, trained on white-on-black digits only, transfer badly to the
#   coloured ones; the adversary's gain (or loss) is printed per seed under
#   each table, with the domain-head accuracy, which says how far the
#   alignment got (about 0.5: the domains look alike to it).
# - **Robust features leave little to align.** The whole pretrained
#   backbone was trained on coloured glyphs over clutter, so its features
#   should barely notice the shift: compare the source-only rows of the two
#   settings. Pretraining on varied data is the stronger cure for a domain
#   shift, when you can get it.
# - **A few target labels are worth a lot**: the last method needs only
#   five labelled images per class. If you can label a handful of target
#   images, try that first, and keep them to check any adaptation.
# - **The adversarial game is fragile**: the domain weight, the $\lambda$
#   schedule and the learning rate decide between a gain and a collapse to
#   chance, and a recipe tuned on one draw of target images need not carry
#   over to another. Always measure source only first, on data you did not
#   tune on.

# %% [markdown]
# ## Results
#
# The headline numbers go to `results/02_fine_tuning.json`.

# %%
metrics = {
    "target_task": f"digits 5-9 on clutter, {LABELS_PER_CLASS} labels per class",
    "test_images": len(x_test),
    "epochs": EPOCHS,
    "seeds": list(SEEDS),
    "batchnorm_trap": trap,
    "forgetting": sweep,
    "label_budgets": dict(min_steps=MIN_STEPS, grid=grid.to_dict(), verdict=budget_verdict),
    "monitoring": dict(epochs_trained=len(history["loss"]), best_epoch=best_epoch),
    "exercise": dict(head_only=head_only, fine_tuned=fine_tuned, check_passed=exercise_ok),
    "strategies": table,
    "domain_adaptation": dict(
        methods=frozen_rows + upper_rows,
        summary={"whole backbone frozen": frozen_summary, "new upper layers": upper_summary},
    ),
    "real_photos": real_photos,  # None in the docs profile
}
headline = {"label-budget verdict": budget_verdict, **grid.headline()}
headline.update(transfer.headline(table, "digits, "))
if real_photos:
    headline.update(transfer.headline(real_photos["strategies"], "photos, "))
for setting, summary in metrics["domain_adaptation"]["summary"].items():
    headline[f"DANN gain over source only, {setting}"] = (
        f"{summary['dann_gain_points']:+.1f} points"
    )
print(f"wrote {results.save('02_fine_tuning', metrics, headline=headline)}")
