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
# # Training techniques: schedules, mixed precision, accumulation, ensembles, several devices
#
# **Description:** The techniques that make modern training work, each one
# isolated and measured on the same small model, then combined: learning-rate
# schedules and the LR range test, mixed precision and loss scaling,
# gradient accumulation, ensembles and calibration, and data-parallel
# training on several devices. Keras has most of the machinery; the trouble
# is in using the pieces *together*, and that is where this tutorial spends
# its time.
#
# **Exercise:** "make it fit" (an effective batch of 256 from micro-batches of
# 32, in bfloat16, with a warmup-cosine schedule that stays right under
# accumulation), checked by `dl4keras.check.training_setup`.
#
# **Backends:** TensorFlow
# (the custom training step and `MirroredStrategy` are TensorFlow's; the
# rest is backend-agnostic Keras).
#
# **You will learn:**
#
# - how the common learning-rate schedules look and what each buys, with
#   the schedule the only change between runs; how the LR range test picks
#   a peak learning rate;
# - what a dtype policy is, why float16 gradients underflow, how loss scaling
#   rescues them, and why the output layer stays float32;
# - that gradient accumulation equals a bigger batch, measured, and the three
#   places where it does not (BatchNorm, schedules, EMA) with their fixes;
# - why an ensemble of five is more accurate and better calibrated than its
#   members (accuracy, NLL, ECE, a reliability diagram), and two cheaper
#   cousins: snapshot ensembles and EMA weights;
# - how `tf.distribute.MirroredStrategy` splits a batch over devices with
#   the same result as one device.
#
# Run it with `python tutorials/06_training_techniques.py` (add
# `--profile smoke` for a seconds-long run). Everything runs offline, on a CPU.

# %%
import importlib.util
import math
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from keras import ops
from sklearn.model_selection import train_test_split

from dl4keras import calibration, check, data, ensemble, profiles, results, training

PROFILE = profiles.current()
EPOCHS = profiles.choose(smoke=2, docs=30, full=60)
SEEDS = profiles.choose(smoke=(0,), docs=(0, 1, 2), full=(0, 1, 2, 3, 4))
MEMBERS = profiles.choose(smoke=2, docs=5, full=10)
BATCH = 32
print(f"profile={PROFILE}  keras {keras.__version__}  backend {keras.backend.backend()}")

# %% [markdown]
# ## The task and the model
#
# scikit-learn's 8×8 handwritten digits, flattened to 64 pixels, and a
# small MLP. Small on purpose: every technique below is about *how* a model
# is trained, and a model that trains in seconds lets us repeat each
# comparison over several seeds. The training set is kept small (a few
# hundred digits), so that the differences between recipes are visible.
# The output layer returns logits in float32 (why float32 matters comes
# with mixed precision).

# %%
images, labels = data.load_digits()
x_all = (images.reshape(len(images), -1) / 16.0).astype("float32")
train_size = profiles.choose(smoke=200, docs=500, full=500)
x_train, x_rest, y_train, y_rest = train_test_split(
    x_all, labels, train_size=train_size, stratify=labels, random_state=0
)
x_val, x_test, y_val, y_test = train_test_split(
    x_rest, y_rest, train_size=300, stratify=y_rest, random_state=0
)
STEPS = EPOCHS * math.ceil(len(x_train) / BATCH)  # optimizer updates of one training
print(f"train {len(x_train)}, validation {len(x_val)}, test {len(x_test)}; {STEPS} updates")


def make_model(seed=0, batch_norm=False, model_class=keras.Sequential):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((64,)), keras.layers.Dense(128, activation="relu")]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization())
    layers += [keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10, dtype="float32")]
    return model_class(layers)


LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def train(model, learning_rate, epochs=EPOCHS, callbacks=(), validation_data=None, **optimizer):
    """SGD with momentum 0.9 and `optimizer`'s other arguments, batches of BATCH."""
    model.compile(keras.optimizers.SGD(learning_rate, momentum=0.9, **optimizer), LOSS)
    fit = dict(batch_size=BATCH, epochs=epochs, verbose=0, validation_data=validation_data)
    model.fit(x_train, y_train, callbacks=list(callbacks), **fit)
    return model


def accuracy(model, x=x_test, y=y_test):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=-1) == y))


# %% [markdown]
# ## Learning-rate schedules
#
# ### Finding the peak: the LR range test
#
# Smith's **LR range test** (Smith 2017, "Cyclical Learning Rates for
# Training Neural Networks") trains for one short sweep while the learning
# rate grows exponentially, batch after batch, from tiny to huge, and
# records the loss of each batch. The loss first stays flat (too small to
# learn), then falls, then explodes. A good peak learning rate sits where
# the loss falls fastest. `training.LRFinder` runs the sweep as a Keras
# callback, stops at divergence, and puts the weights and the optimizer back
# as they were.

# %%
probe = make_model(0)
probe.compile(keras.optimizers.SGD(momentum=0.9), LOSS)
finder = training.find_learning_rate(
    probe,
    x_train,
    y_train,
    batch_size=BATCH,
    num_steps=profiles.choose(smoke=10, docs=100, full=100),
)
PEAK = float(finder.suggestion())
print(f"swept {len(finder.learning_rates)} batches; suggested peak learning rate {PEAK:.3g}")
finder.plot()
plt.show()

# %% [markdown]
# ### Four schedules on one axis
#
# Keras has the schedules; `dl4keras.training` adds only the one-cycle
# policy (Smith & Topin 2018) and `warmup_cosine`, Keras's `CosineDecay`
# built so that its warm-up cannot be silently ignored (without
# `warmup_target`, `CosineDecay` ignores `warmup_steps`). All four peak at
# the learning rate the range test chose:

# %%
SCHEDULES = {
    "constant": lambda: PEAK,
    "step (÷10 at 50% and 75%)": lambda: keras.optimizers.schedules.PiecewiseConstantDecay(
        [STEPS // 2, 3 * STEPS // 4], [PEAK, PEAK / 10, PEAK / 100]
    ),
    "warmup + cosine": lambda: training.warmup_cosine(PEAK, STEPS, warmup_steps=STEPS // 10),
    "one-cycle": lambda: training.OneCycle(PEAK, STEPS),
}
steps = np.arange(STEPS)
for name, make in SCHEDULES.items():
    schedule = make()
    lr = [schedule(s) if callable(schedule) else schedule for s in steps]
    plt.plot(steps, np.asarray(lr, dtype=float), label=name)
plt.xlabel("optimizer update")
plt.ylabel("learning rate")
plt.legend()
plt.show()

# %% [markdown]
# Now the same model trained with each schedule, everything else fixed
# (SGD with momentum 0.9, batch 32, the same epochs), over several seeds.
# This also isolates one ingredient that tutorial 04 added to its ViT
# recipe together with AdamW and label smoothing.

# %%
schedule_accuracy = {
    name: [accuracy(train(make_model(seed), make())) for seed in SEEDS]
    for name, make in SCHEDULES.items()
}
for name, values in schedule_accuracy.items():
    print(f"{name:<28} test accuracy {np.mean(values):.1%} ± {np.std(values):.1%}")
best_schedule = max(schedule_accuracy, key=lambda n: np.mean(schedule_accuracy[n]))
print(f"best here: {best_schedule}")

# %% [markdown]
# ## Mixed precision
#
# A **dtype policy** says in which type a layer computes and in which it
# keeps its weights. `mixed_float16` and `mixed_bfloat16` compute in 16 bits
# (half the memory traffic, and on GPUs with tensor cores several times the
# speed) while the *variables* stay float32, so that small updates are not
# lost when they are added to the weights. The two 16-bit types trade range
# against precision differently, computed here from their definitions:

# %%
for row in training.float_formats():
    print(
        f"{row['name']:<9} max {row['max']:<10.4g} smallest normal {row['smallest_normal']:<10.4g}"
        f" smallest subnormal {row['smallest_subnormal']:<10.4g} eps {row['eps']:<9.3g}"
        f" ~{row['decimal_digits']} digits"
    )

# %% [markdown]
# float16 has a small range: anything below its smallest subnormal becomes
# 0. Gradients are often that small. **Loss scaling** multiplies the loss by
# a large factor before the backward pass, so that the gradients are scaled
# too and stay representable, then divides the gradients by it before the
# update. Keras's `LossScaleOptimizer` does it, and `compile` adds one by
# itself when the policy is `mixed_float16`. A gradient of 1e-8 computed in
# float16, without and with scaling:

# %%
with training.mixed_precision("mixed_float16"):
    tiny = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
scaler = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD())
scaler.build(tiny.trainable_variables)
x_one = np.ones((1, 1), "float32")
for scaled in (False, True):
    with tf.GradientTape() as tape:
        # the output is float16: the gradient flowing back into it is cast to float16
        loss = 1e-8 * ops.sum(ops.cast(tiny(x_one), "float32"))
        if scaled:
            loss = scaler.scale_loss(loss)  # loss x dynamic scale
    gradient = tape.gradient(loss, tiny.trainable_variables)[0]
    if scaled:
        gradient = gradient / scaler.dynamic_scale  # what the optimizer applies
    print(f"loss scaling {'on ' if scaled else 'off'}: gradient {float(gradient[0, 0]):.3g}")
print(f"dynamic scale {float(scaler.dynamic_scale):.0f} (Keras starts at 2**15)")

# %% [markdown]
# **Keep the output in float32.** A softmax or a loss computed in float16
# loses precision and overflows easily; the last layer above is
# `Dense(10, dtype="float32")`. `training.check_mixed_precision(model)`
# flags a float16 output and float16 without loss scaling:

# %%
with training.mixed_precision("mixed_float16"):
    wrong = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)])
for problem in training.mixed_precision_problems(wrong):
    print("-", problem)

# %% [markdown]
# Do not expect a speed-up on a CPU: at best a CPU with bfloat16
# instructions matches float32 (`benchmarks/training.py` measures it on a
# ViT), and without them, or in convolutions, 16-bit compute is several times
# slower. The speed-ups belong to GPUs and TPUs, whose tensor cores compute
# in 16 bits (`benchmarks/vit.py --gpu-mixed-precision` measures them
# there). What a CPU can show is that accuracy survives; the time ratio
# printed below is this machine's, for this small MLP:

# %%
precision_runs = {}
for policy in ("float32", "mixed_bfloat16"):
    with training.mixed_precision(policy):
        model = make_model(0)
    start = time.perf_counter()
    train(model, PEAK)
    precision_runs[policy] = {"accuracy": accuracy(model), "seconds": time.perf_counter() - start}
for policy, run in precision_runs.items():
    print(f"{policy:<15} test accuracy {run['accuracy']:.1%}, training {run['seconds']:.1f} s")
slowdown = precision_runs["mixed_bfloat16"]["seconds"] / precision_runs["float32"]["seconds"]
print(f"mixed_bfloat16 / float32 training time on this CPU: {slowdown:.2f}x")

# %% [markdown]
# ## Going further: the loss scale at work, and masks in float16
#
# The scale is **dynamic**: when a scaled gradient overflows to `inf` the
# optimizer skips that update and halves the scale; after a run of good
# steps it doubles it. Started far too high, on the digits MLP, with a
# doubling every 20 good steps:

# %%
with training.mixed_precision("mixed_float16"):
    half = make_model(0)
half.compile(
    keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(0.05, momentum=0.9), initial_scale=2.0**30, dynamic_growth_steps=20
    ),
    LOSS,
)
scales = []
record = keras.callbacks.LambdaCallback(
    on_train_batch_end=lambda batch, logs: scales.append(float(half.optimizer.dynamic_scale))
)
half.fit(x_train, y_train, batch_size=BATCH, epochs=6, verbose=0, callbacks=[record])
changes = [(i + 1, v) for i, v in enumerate(scales) if i == 0 or v != scales[i - 1]]
print("step: scale  " + "  ".join(f"{step}: 2^{math.log2(v):.0f}" for step, v in changes))
print(f"{len(scales)} steps; problems found: {training.mixed_precision_problems(half) or 'none'}")

# %% [markdown]
# The float16 range bites masks too: tutorial 03 adds `-1e9` to the scores
# of masked positions, and `-1e9` does not exist in float16:

# %%
attention_scores = np.array([[2.0, 1.0, 0.0], [2.0, 1.0, 0.0]], "float16")
mask = np.array([[0, 1, 1], [1, 1, 1]], "float16")  # 1 = masked; row 2: a padding query
for constant in (-1e9, float(np.finfo("float16").min)):
    with np.errstate(over="ignore", invalid="ignore"):  # the overflow is the point
        half_constant = np.float16(constant)
        masked = attention_scores + mask * half_constant
    probabilities = ops.convert_to_numpy(ops.softmax(masked)).round(3).tolist()
    print(f"{constant:g} is {half_constant} in float16; softmax rows {probabilities}")

# %% [markdown]
# `-1e9` becomes `-inf`, and `0 × -inf` is NaN: the unmasked positions
# break too. The most negative float16 number, `np.finfo("float16").min`,
# masks correctly (and a query with every key masked gets uniform weights
# rather than NaN). Choose mask constants by dtype and apply them with
# `ops.where(mask, scores, constant)`, as Keras's `Softmax` layer does (its
# `_large_negative_number` is `-3e4` in float16, `-1e9` otherwise).

# %% [markdown]
# ## Gradient accumulation
#
# When a batch does not fit in memory, compute the gradients of `k` smaller
# **micro-batches**, average them, and update once: `k` micro-batches of
# `b` give the update of one batch of `k·b`. Keras does it with one
# argument, `gradient_accumulation_steps=k`. Measured: 4 micro-batches of 8
# against batches of 32, one epoch, the same data order:


# %%
def one_epoch(batch_size, accumulation_steps=None, batch_norm=False, learning_rate=0.05):
    model = make_model(0, batch_norm=batch_norm)
    model.compile(
        keras.optimizers.SGD(learning_rate, gradient_accumulation_steps=accumulation_steps), LOSS
    )
    n = 32 * (len(x_train) // 32)  # whole batches of 32: no short last batch
    model.fit(x_train[:n], y_train[:n], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    return model


def max_difference(a, b):
    return max(float(np.abs(u - v).max()) for u, v in zip(a.get_weights(), b.get_weights()))


equivalence = max_difference(one_epoch(32), one_epoch(8, accumulation_steps=4))
with_batch_norm = max_difference(
    one_epoch(32, batch_norm=True), one_epoch(8, accumulation_steps=4, batch_norm=True)
)
print(f"batch 32 vs 4 x 8: max weight difference {equivalence:.1e}")
print(f"the same with BatchNormalization: {with_batch_norm:.1e}")

# %% [markdown]
# Where it breaks, and the fixes:
#
# - **BatchNormalization** normalises each *micro-batch* with its own
#   statistics (8 examples, not 32) and updates its moving averages every
#   micro-batch: the difference above. Fix: a normalisation that does not
#   depend on the batch (LayerNormalization, GroupNormalization), or
#   micro-batches big enough for stable statistics.
# - **Schedules** read the optimizer's micro-batch counter, so a schedule
#   written in updates runs `k` times too fast. Fix: `training.PerUpdateSchedule`
#   (or `training.per_update(schedule, k)`), which divides the counter by `k`.
# - **EMA** (`use_ema=True`) averages per micro-batch in the same way: with
#   `ema_momentum=m` the average forgets `k` times faster per update; use
#   `m ** (1 / k)` to keep the horizon you meant.

# %%
k = 4
updates = STEPS // k
warm = training.warmup_cosine(PEAK, updates, warmup_steps=max(1, updates // 10))
fixed = training.per_update(warm, k)
# Keras reads the schedule during the n-th update (from 0) at micro-batch n*k + k - 1.
print("update  asked for  raw schedule gives  per_update gives")
for n in (0, 1, updates // 20, updates // 10, updates // 2):
    step = n * k + k - 1
    print(
        f"{n:>6}  {float(warm(n)):>9.4f}  {float(warm(step)):>18.4f}  {float(fixed(step)):>16.4f}"
    )
print(f"EMA momentum 0.99 per update = {0.99 ** (1 / k):.4f} per micro-batch")

# %% [markdown]
# ## Going further: accumulation and mixed precision in a custom step
#
# The two combine without extra code in `fit`. In a custom `train_step`, the
# loss must be scaled by hand (`optimizer.scale_loss`: a no-op without loss
# scaling), and `optimizer.apply` does the rest: it unscales, accumulates and
# updates every `k`-th call. Ten lines, TensorFlow's `GradientTape`:


# %%
class CustomStep(keras.Sequential):
    def train_step(self, batch):
        x, y = batch
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred)
            scaled = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self.compute_metrics(x, y, y_pred)


combined = {}
for name, cls in (("fit", keras.Sequential), ("custom train_step", CustomStep)):
    with training.mixed_precision("mixed_float16"):
        model = make_model(0, model_class=cls)
    model.compile(
        keras.optimizers.SGD(
            training.per_update(training.warmup_cosine(PEAK, updates, max(1, updates // 10)), k),
            momentum=0.9,
            gradient_accumulation_steps=k,
        ),
        LOSS,
    )
    model.fit(x_train, y_train, batch_size=BATCH // k, epochs=EPOCHS, verbose=0)
    combined[name] = accuracy(model)
    print(
        f"mixed_float16 + {k} accumulation steps, {name} ({type(model.optimizer).__name__}):"
        f" test accuracy {combined[name]:.1%}"
    )

# %% [markdown]
# ## Ensembles and calibration
#
# Train the same network `M` times from different random initialisations
# and average the predicted probabilities: a **deep ensemble**
# (Lakshminarayanan et al. 2017). The members make different mistakes, so
# the mean is more often right, and less overconfident. Besides accuracy,
# two measures of the probabilities themselves: the **negative
# log-likelihood** (NLL, the test loss), and the **expected calibration
# error** (ECE, Guo et al. 2017): predictions grouped by confidence, the gap
# between confidence and accuracy averaged over the groups.

# %%
best = SCHEDULES[best_schedule]
members = [train(make_model(100 + seed), best()) for seed in range(MEMBERS)]


def scores(probabilities):
    return {
        "accuracy": float(np.mean(np.argmax(probabilities, -1) == y_test)),
        "nll": calibration.negative_log_likelihood(y_test, probabilities),
        "ece": calibration.expected_calibration_error(y_test, probabilities),
    }


single = [scores(ops.convert_to_numpy(ops.softmax(m.predict(x_test, verbose=0)))) for m in members]
deep = ensemble.Ensemble(members, from_logits=True)
ensembles = {
    method: scores(
        ensemble.Ensemble(members, method=method, from_logits=True).predict(x_test, verbose=0)
    )
    for method in ("mean_probabilities", "mean_logits", "vote")
}
mean_single = {key: float(np.mean([s[key] for s in single])) for key in single[0]}


def show(rows):
    print(f"{'':<38}{'accuracy':>9}{'NLL':>8}{'ECE':>8}")
    for name, row in rows.items():
        print(f"{name:<38}{row['accuracy']:>9.1%}{row['nll']:>8.3f}{row['ece']:>8.3f}")


show(
    {
        "single model (mean of members)": mean_single,
        **{f"ensemble of {MEMBERS}, {method}": row for method, row in ensembles.items()},
    }
)

# %%
figure, axes = plt.subplots(1, 2, figsize=(9, 4))
calibration.reliability_diagram(
    y_test,
    ops.convert_to_numpy(ops.softmax(members[0].predict(x_test, verbose=0))),
    ax=axes[0],
    label="one member",
)
calibration.reliability_diagram(
    y_test, deep.predict(x_test, verbose=0), ax=axes[1], label=f"ensemble of {MEMBERS}"
)
plt.show()

# %% [markdown]
# ## Going further: cheaper cousins of an ensemble
#
# A *snapshot ensemble* (Huang et al. 2017) trains once
# with a cyclic schedule, `CosineDecayRestarts`, and keeps the weights at
# the end of every cycle; **EMA** keeps an exponential moving average of the
# weights during training (`use_ema=True`; `fit` swaps the averaged weights
# in at the end). And **temperature scaling** fixes calibration after the
# fact: one number fitted on the validation split.

# %%
cycles = MEMBERS
restarts = keras.optimizers.schedules.CosineDecayRestarts(PEAK, STEPS // cycles, t_mul=1.0)
snapshots = ensemble.SnapshotEnsemble(restarts)
train(make_model(100), restarts, callbacks=[snapshots])
snapshot_scores = scores(snapshots.ensemble(from_logits=True).predict(x_test, verbose=0))
ema_model = train(make_model(100), best(), use_ema=True, ema_momentum=0.99)
ema_scores = scores(ops.convert_to_numpy(ops.softmax(ema_model.predict(x_test, verbose=0))))
temperature = calibration.fit_temperature(members[0].predict(x_val, verbose=0), y_val)
scaled_scores = scores(
    calibration.apply_temperature(members[0].predict(x_test, verbose=0), temperature)
)
show(
    {
        f"snapshot ensemble ({len(snapshots.snapshots)} cycles)": snapshot_scores,
        "EMA weights (same seed as member 1)": ema_scores,
        "member 1": single[0],
        f"member 1, temperature {temperature:.2f}": scaled_scores,
    }
)

# %% [markdown]
# ## Scaling out: several devices
#
# **Data parallelism**: every device holds a copy of the model, each gets a
# slice of the batch, the gradients are averaged over devices (an
# all-reduce), and every copy applies the same update. The *global* batch
# is what the optimizer sees; each of `N` devices computes `global / N`
# examples. With the same global batch the result equals one device's;
# with `N` times the batch (to keep every device busy), the usual starting
# point is to scale the learning rate by `N` too (Goyal et al. 2017) with a
# warm-up.
#
# TensorFlow's `tf.distribute.MirroredStrategy` does it on one machine;
# here on two *logical* CPU devices, which must be configured before
# TensorFlow starts: the demo runs in a fresh Python process. The code:

# %%
TRAIN = """
import contextlib

import keras
import numpy as np

rng = np.random.default_rng(0)
x, y = rng.normal(size=(256, 16)).astype("float32"), rng.integers(0, 4, 256)


def trained(scope=None):  # the same training, on one device or under `scope`
    keras.utils.set_random_seed(0)
    with scope or contextlib.nullcontext():
        model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu"),
                                  keras.layers.Dense(4)])
        model.compile(keras.optimizers.SGD(0.1),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=64, epochs=3, shuffle=False, verbose=0)
    return model.get_weights()


def difference(one, two):
    return max(float(np.abs(a - b).max()) for a, b in zip(one, two))
"""
DEMO = f"""
from dl4keras.training import distribute

strategy = distribute.mirrored_strategy(num_devices=2, device_type="CPU")  # before any TF op
{TRAIN}
one, two = trained(), trained(strategy.scope())
print(strategy.num_replicas_in_sync, "replicas; global batch 64 =",
      distribute.per_replica_batch_size(64, strategy), "per replica")
print("max weight difference", difference(one, two))
"""


def run_demo(code):
    """Runs `code` in a fresh Python process; returns its output and the difference it printed."""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return run.stdout, float(run.stdout.split("max weight difference")[-1])


output, parity = run_demo(DEMO)
print(output)
print(
    "linear scaling rule (Goyal et al. 2017): 0.1 at a global batch of 64 becomes "
    f"{training.scaled_learning_rate(0.1, batch_size=128, base_batch_size=64):g} at 128"
)

# %% [markdown]
# The same model code scales further: `tf.distribute.MultiWorkerMirroredStrategy`
# runs it on several machines (each told the cluster through `TF_CONFIG`),
# and on JAX `keras.distribution.set_distribution(...)` makes a distribution
# global instead of scoped. What combines with
# `MirroredStrategy` in Keras 3.15:

# %%
for technique, (works, note) in training.compatibility().items():
    print(
        textwrap.fill(
            f"{technique}: {note}",
            78,
            initial_indent="yes " if works else "NO  ",
            subsequent_indent="    ",
        )
    )

# %% [markdown]
# ## Going further: the same on JAX
#
# On JAX there is no strategy scope: `keras.distribution.DataParallel` copies
# the weights to every device and shards each batch, for the same training
# code. The two CPU devices, again, are set before JAX starts (it needs the
# `backends` extra: `pip install "dl4keras[backends]"`):

# %%
DEMO_JAX = f"""
import os

os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"  # before JAX starts
{TRAIN}
devices = keras.distribution.list_devices("cpu")
one, two = trained(), trained(keras.distribution.DataParallel(devices=devices).scope())
print(len(devices), "devices; max weight difference", difference(one, two))
"""
if importlib.util.find_spec("jax") is None:
    jax_parity = None
    print("JAX is not installed: pip install 'dl4keras[backends]' to run this demo")
else:
    output, jax_parity = run_demo(DEMO_JAX)
    print(output)

# %% [markdown]
# ## Exercise: make it fit
#
# **Task.** Your GPU holds micro-batches of 32, and the recipe you are
# reproducing says: effective batch 256, bfloat16 mixed precision, a
# warm-up + cosine schedule with a tenth of the updates as warm-up, over the training, in optimizer
# updates. Build and compile the digits model so, check it with
# `check.training_setup(model, batch_size=32, effective_batch_size=256,
# policy="mixed_bfloat16")`, train it for `EPOCHS` epochs and report its test
# accuracy.
#
# **Hints.**
#
# - The number of updates is the number of *effective* batches:
#   `EPOCHS * ceil(len(x_train) / 256)`.
# - A policy applies to the layers built while it is set.
# - The optimizer counts micro-batches.


# %% tags=["solution"]
accumulation = 256 // 32
total_updates = EPOCHS * math.ceil(len(x_train) / 256)
with training.mixed_precision("mixed_bfloat16"):
    fitted = make_model(0)
schedule = training.per_update(
    training.warmup_cosine(PEAK, total_updates, warmup_steps=max(1, total_updates // 10)),
    accumulation,
)
fitted.compile(
    keras.optimizers.SGD(schedule, momentum=0.9, gradient_accumulation_steps=accumulation), LOSS
)
setup_ok = check.training_setup(
    fitted, batch_size=32, effective_batch_size=256, policy="mixed_bfloat16"
)
fitted.fit(x_train, y_train, batch_size=32, epochs=EPOCHS, verbose=0)
print(f"test accuracy {accuracy(fitted):.1%}")

# %% [markdown]
# ## Going further: the best epoch, kept
#
# Watch the validation loss, stop when it stops improving
# (`EarlyStopping`, with `restore_best_weights=True`), and keep the best
# model on disk as you go (`ModelCheckpoint(save_best_only=True)`): the
# practical's "monitor validation performance", in two callbacks. A
# constant, rather high learning rate makes the validation loss turn:

# %%
checkpoint_path = str(Path(tempfile.mkdtemp()) / "best.keras")  # not in your folder
watched = train(
    make_model(7),
    PEAK,
    epochs=3 * EPOCHS,
    callbacks=[
        keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(checkpoint_path, save_best_only=True),
    ],
    validation_data=(x_val, y_val),
)
val_losses = watched.history.history["val_loss"]
best_epoch = int(np.argmin(val_losses))
reloaded = keras.models.load_model(checkpoint_path)
early_stopping = {
    "epochs_run": len(val_losses),
    "best_epoch": best_epoch + 1,
    "test_accuracy_restored": accuracy(watched),
    "test_accuracy_checkpoint": accuracy(reloaded),
}
print(
    f"ran {len(val_losses)} of {3 * EPOCHS} epochs; best validation loss at epoch "
    f"{best_epoch + 1}; test accuracy restored {accuracy(watched):.1%}, "
    f"from the checkpoint {accuracy(reloaded):.1%}"
)
plt.plot(watched.history.history["loss"], label="training loss")
plt.plot(val_losses, label="validation loss")
plt.axvline(best_epoch, color="grey", linestyle=":", label="best epoch")
plt.xlabel("epoch")
plt.legend()
plt.show()

# %% [markdown]
# ## Going further: averaging weights instead of predictions
#
# An ensemble costs `M` forward passes at prediction time. Averaging the
# *weights* costs one, and works when the models lie in one basin of the
# loss: **stochastic weight averaging** (SWA, Izmailov et al. 2018) averages
# the weights of one run over its last epochs; a **model soup** (Wortsman et
# al. 2022) averages models fine-tuned from the *same* starting point.
# Averaging independently initialised members (the ensemble above) does not
# work: their hidden units are not in the same order. Keras has no SWA, so a
# callback of a few lines:


# %%
class WeightAveraging(keras.callbacks.Callback):
    """Replaces the weights by their mean over the epochs from `start_epoch` on."""

    def __init__(self, start_epoch):
        super().__init__()
        self.start_epoch, self.total, self.count = start_epoch, None, 0

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.start_epoch:
            weights = self.model.get_weights()
            self.total = (
                weights if self.total is None else [t + w for t, w in zip(self.total, weights)]
            )
            self.count += 1

    def on_train_end(self, logs=None):
        self.model.set_weights([t / self.count for t in self.total])


def average_weights(models):
    averaged = make_model(0)
    averaged.set_weights([np.mean(ws, axis=0) for ws in zip(*(m.get_weights() for m in models))])
    return averaged


swa = train(make_model(100), PEAK / 2, callbacks=[WeightAveraging(EPOCHS // 2)])
plain = train(make_model(100), PEAK / 2)
base = train(make_model(200), best(), epochs=EPOCHS // 2)
ingredients = []
for seed in range(1, MEMBERS + 1):
    keras.utils.set_random_seed(seed)  # another data order
    ingredient = make_model(200)
    ingredient.set_weights(base.get_weights())
    ingredients.append(train(ingredient, PEAK / 10, epochs=EPOCHS // 2))
soup = average_weights(ingredients)
averaging = {
    "constant learning rate, last weights": accuracy(plain),
    "the same run, SWA over its second half": accuracy(swa),
    "best soup ingredient": max(accuracy(m) for m in ingredients),
    f"uniform soup of {MEMBERS} fine-tuned copies": accuracy(soup),
    f"average of the {MEMBERS} independent members": accuracy(average_weights(members)),
}
for name, value in averaging.items():
    print(f"{name:<45} test accuracy {value:.1%}")

# %% [markdown]
# ## Results

# %%
metrics = {
    "lr_finder_peak": PEAK,
    "schedule_accuracy": schedule_accuracy,
    "mixed_precision": precision_runs,
    "accumulation_max_abs_diff": equivalence,
    "accumulation_batch_norm_max_abs_diff": with_batch_norm,
    "combined_accuracy": combined,
    "single_members": single,
    "ensembles": ensembles,
    "snapshot_ensemble": snapshot_scores,
    "ema": ema_scores,
    "temperature_scaling": {"temperature": temperature, **scaled_scores},
    "mirrored_strategy_max_abs_diff": parity,
    "jax_data_parallel_max_abs_diff": jax_parity,
    "check_training_setup_solution": bool(setup_ok),
    "early_stopping": early_stopping,
    "weight_averaging_accuracy": averaging,
}
gain = ensembles["mean_probabilities"]["accuracy"] - mean_single["accuracy"]
headline = {
    "best schedule (test accuracy)": (
        f"{best_schedule} ({np.mean(schedule_accuracy[best_schedule]):.1%})"
    ),
    f"ensemble of {MEMBERS} minus mean member, accuracy": f"{gain * 100:+.1f} points",
    "ECE, mean member vs ensemble": (
        f"{mean_single['ece']:.3f} vs {ensembles['mean_probabilities']['ece']:.3f}"
    ),
    "accumulation / MirroredStrategy max abs difference": f"{equivalence:.1e} / {parity:.1e}",
}
print(f"wrote {results.save('06_training_techniques', metrics, headline=headline)}")
