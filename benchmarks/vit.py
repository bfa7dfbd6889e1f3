"""dl4keras.vit.VisionTransformer vs KerasHub's ViT: training throughput (images/s).

Default mode (CPU or GPU): the same small ViT twice, ours
(`dl4keras.vit.VisionTransformer`) and KerasHub's
(`keras_hub.models.ViTImageClassifier` around a `ViTBackbone`: class-token
features → Dense, the same head as ours), with the same config (32×32×3
images, patch 4, hidden 64, depth 4, 4 heads, MLP 128, 10 classes, no
dropout). Our model gets the backbone's weights
(`dl4keras.vit.load_keras_hub_weights`) and the head's, so both compute the
same function: the script prints both parameter counts (they must match)
and the largest difference of the logits. Both are compiled with the same
optimizer (AdamW) and loss (sparse cross-entropy on logits) and trained with
`train_on_batch` on the same fixed batches. After a warm-up (tracing and a
few untimed steps), the two are timed interleaved, `--repeats` times
`--steps` steps each (alternating which goes first); the script prints the
median images/s of each and the ratio ours / KerasHub (the median of the
per-repeat throughput ratios; 1.0 or more: ours is no slower, the goal).

`--gpu-mixed-precision` (needs a GPU; exits at once with a message without
one): our `vit_small` (224×224, patch 16, hidden 384, depth 12, 6 heads,
MLP 1536; 1000 classes) trained under the dtype policies `float32`,
`mixed_bfloat16` and `mixed_float16` (loss scaling added by `compile()`),
interleaved the same way, with each policy's images/s and its ratio to
float32 (above 1.0: faster than float32). Default batch 64 there.

`--quick` checks the default mode (batch 8, one step; its speeds mean
nothing); `--output PATH` also writes the results as JSON (the format of
`benchmarks/_results.py`; `benchmarks/run_all.py` collects them).

`--jit` sets `compile(jit_compile=...)`: Keras's `"auto"` (the default)
means no XLA on a CPU-only machine and XLA on a GPU if the model supports it.

    python benchmarks/vit.py                              # ours vs KerasHub, CPU or GPU
    python benchmarks/vit.py --repeats 7 --steps 10 --batch-size 128
    python benchmarks/vit.py --gpu-mixed-precision        # float32 vs mixed, GPU only
    python benchmarks/vit.py --gpu-mixed-precision --dry-run  # check that mode anywhere

On a shared machine the absolute images/s move with the load from other
processes; the interleaved ratio is the figure to read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from dl4keras.vit import VisionTransformer, load_keras_hub_weights  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the folder is no package
import _results  # noqa: E402

SMALL = dict(image_size=32, patch_size=4, hidden_dim=64, depth=4, num_heads=4, mlp_dim=128)
NUM_CLASSES = 10
POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


def _jit(value):
    return {"auto": "auto", "true": True, "false": False}[value]


def _compile(model, jit):
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit,
    )
    return model


def make_batches(n, batch, size, channels, classes):
    """`n` fixed batches (images, labels), NumPy, shared by every contender."""
    rng = np.random.default_rng(0)
    return [
        (
            rng.uniform(size=(batch, size, size, channels)).astype("float32"),
            rng.integers(0, classes, size=(batch,)).astype("int32"),
        )
        for _ in range(n)
    ]


def make_pair(jit, info=None):
    """Ours and KerasHub's ViT classifiers with the same config and weights.

    `info`, a dict, receives the parameter counts and the logit difference."""
    import keras_hub

    keras.utils.set_random_seed(0)
    size = SMALL["image_size"]
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(size, size, 3),
        patch_size=SMALL["patch_size"],
        num_layers=SMALL["depth"],
        num_heads=SMALL["num_heads"],
        hidden_dim=SMALL["hidden_dim"],
        mlp_dim=SMALL["mlp_dim"],
    )
    theirs = keras_hub.models.ViTImageClassifier(backbone, num_classes=NUM_CLASSES)
    ours = VisionTransformer(**SMALL, num_classes=NUM_CLASSES)
    load_keras_hub_weights(ours, backbone)
    ours.get_layer("head").set_weights(theirs.output_dense.get_weights())
    x = np.random.default_rng(1).uniform(size=(4, size, size, 3)).astype("float32")
    diff = float(np.abs(np.asarray(ours(x)) - np.asarray(theirs(x))).max())
    counts = {"dl4keras": ours.count_params(), "keras_hub": theirs.count_params()}
    print(
        f"parameters: dl4keras {counts['dl4keras']:,}, keras_hub {counts['keras_hub']:,}; "
        f"largest logit difference after copying the weights: {diff:.2e}"
    )
    if info is not None:
        info.update(parameters=counts, largest_logit_difference=diff)
    if counts["dl4keras"] != counts["keras_hub"] or diff > 1e-4:
        sys.exit("The two models differ: parameter counts or outputs do not match.")
    return {"dl4keras": _compile(ours, jit), "keras_hub": _compile(theirs, jit)}


def make_policies(jit, classes, **overrides):
    """Our vit_small under each dtype policy (same initial weights).

    `overrides` change the config (the `--dry-run` shrinks it)."""
    models = {}
    weights = None
    for policy in POLICIES:
        keras.utils.set_random_seed(0)
        model = VisionTransformer.from_config_name(
            "vit_small", num_classes=classes, dtype_policy=policy, **overrides
        )
        if weights is None:
            weights = model.get_weights()
        else:
            model.set_weights(weights)
        models[policy] = _compile(model, jit)
    print(f"vit_small parameters: {models['float32'].count_params():,}")
    return models


def time_steps(model, batches, steps):
    """Seconds for `steps` `train_on_batch` calls (cycling through `batches`)."""
    start = time.perf_counter()
    for i in range(steps):  # train_on_batch returns NumPy: each step has finished
        model.train_on_batch(*batches[i % len(batches)])
    return time.perf_counter() - start


def bench(models, batches, args, baseline, title, timings=None):
    """Interleaved images/s of `models`; returns the ratios to `baseline` by name.

    `timings`, a dict, receives each model's images/s runs (the results format's timings)."""
    names = list(models)
    for name in names:  # warm-up: trace, then a few untimed steps
        time_steps(models[name], batches, args.warmup)
    images = args.steps * args.batch_size
    rates = {name: [] for name in names}
    for repeat in range(args.repeats):  # interleaved, alternating who goes first
        for name in names[:: 1 if repeat % 2 == 0 else -1]:
            rates[name].append(images / time_steps(models[name], batches, args.steps))
    median = {name: float(np.median(r)) for name, r in rates.items()}
    print(
        f"\n{title}; batch {args.batch_size}, train_on_batch, median of "
        f"{args.repeats} x {args.steps} steps (after {args.warmup} warm-up steps)"
    )
    for name in names:
        runs = ", ".join(f"{r:.0f}" for r in rates[name])
        jit = "XLA" if models[name].jit_compile else "no XLA"
        print(f"  {name:<15} {median[name]:9.1f} images/s ({jit})   runs: {runs}")
    if timings is not None:
        timings.update({name: _results.timing(rates[name], "images/s") for name in names})
    ratios = {}
    for name in names:
        if name == baseline:
            continue
        # Median of the per-repeat ratios: each pair ran back to back, under the same load.
        ratios[name] = float(np.median(np.divide(rates[name], rates[baseline])))
        print(
            f"  ratio {name} / {baseline} (images/s): {ratios[name]:.3f} (median of paired "
            f"repeats; ratio of medians {median[name] / median[baseline]:.3f})"
        )
    return ratios


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per contender")
    parser.add_argument("--steps", type=int, default=10, help="train steps per timed repeat")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default 128, 64 with --gpu-mixed-precision"
    )
    parser.add_argument("--jit", choices=("auto", "true", "false"), default="auto")
    parser.add_argument(
        "--gpu-mixed-precision",
        action="store_true",
        help="float32 vs mixed_bfloat16 vs mixed_float16 for vit_small at 224x224 (GPU only)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the default mode with batch 8 and one step, to check the script; "
        "its speeds mean nothing",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="with --gpu-mixed-precision: a tiny vit_small (32x32, depth 1) on any device, "
        "1 step, to check the script before a GPU run; its speeds mean nothing",
    )
    _results.add_arguments(parser)
    args = parser.parse_args(argv)
    import tensorflow as tf  # here: benchmarks/backends.py uses this module on JAX and torch

    gpus = tf.config.list_physical_devices("GPU")
    if args.dry_run and not args.gpu_mixed_precision:
        parser.error("--dry-run checks the --gpu-mixed-precision mode; pass both.")
    if args.quick and args.gpu_mixed_precision:
        parser.error("--quick checks the default mode; --dry-run checks --gpu-mixed-precision")
    args.quick = args.quick or args.dry_run  # the results say: numbers mean nothing
    if args.quick:
        args.repeats, args.steps, args.warmup = 1, 1, 1
        args.batch_size = args.batch_size or (4 if args.dry_run else 8)
    elif args.gpu_mixed_precision and not gpus:
        sys.exit(
            "--gpu-mixed-precision needs a GPU, and TensorFlow sees none "
            "(tf.config.list_physical_devices('GPU') is empty). Mixed precision on a "
            "CPU is emulated and says nothing about GPU speed; run it on a GPU machine."
        )
    if args.batch_size is None:
        args.batch_size = 64 if args.gpu_mixed_precision else 128
    print(f"keras {keras.__version__}, tensorflow {tf.__version__}, {'GPU' if gpus else 'CPU'}")
    jit = _jit(args.jit)
    timings = {}
    if args.gpu_mixed_precision:
        size, tiny = (32, dict(image_size=32, depth=1)) if args.dry_run else (224, {})
        models = make_policies(jit, 1000, **tiny)
        batches = make_batches(4, args.batch_size, size, 3, 1000)
        title = f"vit_small, {size}x{size}, patch 16, 1000 classes, float32 vs mixed precision"
        if args.dry_run:
            title = f"DRY RUN (depth 1; the speeds mean nothing): {title}"
        ratios = bench(models, batches, args, "float32", title, timings)
        _results.save(
            args,
            "vit_gpu_mixed_precision",
            "Mixed precision on a GPU: vit_small",
            f"training throughput (images/s, train_on_batch) of dl4keras's vit_small "
            f"({size}x{size}, patch 16, 1000 classes) under the dtype policies float32, "
            f"mixed_bfloat16 and mixed_float16, batch {args.batch_size}, interleaved",
            "the same model in float32",
            {
                f"{policy} / float32": _results.ratio(
                    value, f"images/s in {policy} / images/s in float32", "higher"
                )
                for policy, value in ratios.items()
            },
            timings,
            extra={"jit_compile": bool(models["float32"].jit_compile)},
        )
        return ratios
    import keras_hub

    print(f"keras_hub {keras_hub.__version__}")
    info = {}
    models = make_pair(jit, info)
    batches = make_batches(4, args.batch_size, SMALL["image_size"], 3, NUM_CLASSES)
    title = (
        "ViT 32x32x3, patch 4, hidden 64, depth 4, 4 heads, MLP 128, 10 classes, ours vs KerasHub"
    )
    if args.quick:
        title = f"QUICK (batch {args.batch_size}, one step; the speeds mean nothing): {title}"
    ratios = bench(models, batches, args, "keras_hub", title, timings)
    _results.save(
        args,
        "vit",
        "dl4keras's ViT vs KerasHub's ViT",
        "training throughput (images/s, train_on_batch) of dl4keras.vit.VisionTransformer "
        f"(32x32x3, patch 4, hidden 64, depth 4, 4 heads, MLP 128, 10 classes), batch "
        f"{args.batch_size}, interleaved with KerasHub's with the same weights",
        "keras_hub.models.ViTImageClassifier (ViTBackbone + class-token Dense head), "
        "same config and weights",
        {
            "dl4keras / KerasHub": _results.ratio(
                ratios["dl4keras"], "images/s of ours / images/s of KerasHub's", "higher"
            )
        },
        timings,
        extra={**info, "jit_compile": bool(models["dl4keras"].jit_compile)},
    )
    return ratios


if __name__ == "__main__":
    main()
