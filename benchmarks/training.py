"""Training techniques on this machine: mixed-precision throughput, gradient-accumulation memory.

Both measurements use the small ViT of `benchmarks/vit.py`
(`dl4keras.vit.VisionTransformer`, 32×32×3 images, patch 4, hidden 64,
depth 4, 4 heads, MLP 128, 10 classes, no dropout), compiled with AdamW and
sparse cross-entropy on logits, trained with `train_on_batch` on fixed
random batches.

1. Throughput, float32 vs `mixed_bfloat16`: the same model (same initial
   weights) under the two dtype policies; in the mixed model the variables
   and the head (the logits) stay float32, the rest computes in bfloat16.
   After a warm-up (tracing and a few untimed steps) the two are timed
   interleaved, `--repeats` times `--steps` steps each (alternating which
   goes first), as in `benchmarks/vit.py`; the script prints each run's
   images/s and the ratio mixed_bfloat16 / float32 (the median of the
   per-repeat ratios). Never read a CPU ratio as a speed-up to expect: on a
   CPU bfloat16 is at best about as fast as float32 (with bfloat16 units,
   such as the `avx512_bf16` or `amx_bf16` flags the script prints), and far
   slower without them or in Conv2D-heavy models; the gains of mixed
   precision (tensor cores, half the activation memory) are a GPU's. The
   GPU comparison (`vit_small` at 224×224, float32 vs mixed_bfloat16 vs
   mixed_float16) is `python benchmarks/vit.py --gpu-mixed-precision`.

2. Peak memory, batch B vs batch B/k with `gradient_accumulation_steps=k`
   (the same effective batch of B images per weight update; default B 512,
   k 4): each contender runs in its own fresh Python process (this script
   with a hidden flag) that builds the model, makes the data, trains
   `--memory-steps` weight updates and reports its peak resident memory
   (`VmHWM` on Linux; `resource.getrusage(RUSAGE_SELF).ru_maxrss` elsewhere,
   which Linux carries over from the parent process). A third process only builds
   and compiles the model and makes the data: its peak is the floor (Python,
   TensorFlow, the weights, the data). The script prints the three peaks and
   the ratio (peak − floor) accumulated / (peak − floor) full; below 1 means
   accumulation saves memory (activations scale with the micro-batch, the
   weights and the traced step do not).

`--quick` runs both with tiny sizes (a few images, one step) to check the
script on any machine; its numbers mean nothing. `tests/test_benchmarks.py`
runs it. `--output PATH` also writes the results as JSON (the format of
`benchmarks/_results.py`; `benchmarks/run_all.py` collects them).

    python benchmarks/training.py                       # both measurements
    python benchmarks/training.py --repeats 7 --steps 10
    python benchmarks/training.py --skip-memory         # throughput only
    python benchmarks/training.py --memory-batch-size 1024 --accumulation-steps 8
    python benchmarks/training.py --quick               # check the script (seconds)

On a shared machine the absolute images/s move with the load from other
processes; the interleaved ratio is the figure to read. Peak memory does not
depend on the load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from dl4keras.vit import VisionTransformer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the folder is no package
import _results  # noqa: E402

# The ViT benchmark's model config, fixed batches and interleaved timing.
_vit = _results.load_sibling("vit")
SMALL, NUM_CLASSES = _vit.SMALL, _vit.NUM_CLASSES
make_batches, bench = _vit.make_batches, _vit.bench

POLICIES = ("float32", "mixed_bfloat16")
WORKER_TAG = "TRAINING_BENCHMARK_WORKER"
MEMORY_CONTENDERS = ("floor", "full", "accumulated")


def build_model(policy="float32", accumulation_steps=None, jit="auto"):
    """The small ViT under dtype policy `policy`, compiled (seed 0: same initial weights)."""
    keras.utils.set_random_seed(0)
    model = VisionTransformer(**SMALL, num_classes=NUM_CLASSES, dtype_policy=policy)
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-3, gradient_accumulation_steps=accumulation_steps),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=jit,
    )
    return model


def cpu_bfloat16_flags():
    """The CPU's bfloat16 instruction flags ("avx512_bf16", "amx_bf16"), on Linux; else None."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line.split() for line in cpuinfo if line.startswith("flags")), [])
    except OSError:
        return None
    return [flag for flag in ("avx512_bf16", "amx_bf16") if flag in flags]


def throughput(args, jit, timings=None):
    """Interleaved images/s of float32 and mixed_bfloat16; returns the ratio mixed / float32.

    `timings`, a dict, receives each policy's images/s runs."""
    models = {policy: build_model(policy, jit=jit) for policy in POLICIES}
    models["mixed_bfloat16"].set_weights(models["float32"].get_weights())  # same start
    head = models["mixed_bfloat16"].get_layer("head")
    print(
        f"parameters: {models['float32'].count_params():,}; mixed model: compute dtype "
        f"{models['mixed_bfloat16'].dtype_policy.compute_dtype}, head {head.compute_dtype}, "
        f"variables {models['mixed_bfloat16'].weights[0].dtype}"
    )
    flags = cpu_bfloat16_flags()
    if flags is not None:
        print(f"CPU bfloat16 instruction flags: {', '.join(flags) or 'none'}")
    batches = make_batches(4, args.batch_size, SMALL["image_size"], 3, NUM_CLASSES)
    title = "ViT 32x32x3, patch 4, hidden 64, depth 4, 4 heads, MLP 128: float32 vs mixed_bfloat16"
    if args.quick:
        title = f"QUICK (tiny sizes; the numbers mean nothing): {title}"
    runs = {}
    ratio = bench(models, batches, args, "float32", title, runs)["mixed_bfloat16"]
    if timings is not None:
        timings.update({f"throughput {policy}": runs[policy] for policy in POLICIES})
    return ratio


def memory_worker(kind, batch_size, accumulation_steps, steps, jit):
    """Run one memory contender in this process; returns its peak RSS in MiB."""
    k = accumulation_steps if kind == "accumulated" else None
    model = build_model(accumulation_steps=k, jit=jit)
    ((x, y),) = make_batches(1, batch_size, SMALL["image_size"], 3, NUM_CLASSES)
    if kind != "floor":
        micro = batch_size // (k or 1)
        for _ in range(steps):  # `steps` weight updates of `batch_size` images each
            for i in range(0, batch_size, micro):
                model.train_on_batch(x[i : i + micro], y[i : i + micro])
    return peak_rss_mib()


def peak_rss_mib():
    """Peak resident memory of this process since it started its program, in MiB.

    On Linux, `VmHWM` of `/proc/self/status`: `ru_maxrss` would do, but Linux
    keeps it across `fork` + `exec`, so a child of a large process (this
    script after the throughput test, or pytest) reports at least its
    parent's memory. Elsewhere `ru_maxrss` (KiB; bytes on macOS).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def run_worker(kind, args):
    """Peak RSS (MiB) of contender `kind`, measured in a fresh subprocess."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--memory-worker",
        kind,
        "--memory-batch-size",
        str(args.memory_batch_size),
        "--accumulation-steps",
        str(args.accumulation_steps),
        "--memory-steps",
        str(args.memory_steps),
        "--jit",
        args.jit,
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith(WORKER_TAG)]
    if done.returncode != 0 or not lines:
        sys.exit(
            f"The memory contender {kind!r} failed (exit status {done.returncode}):\n"
            f"{done.stderr[-3000:]}"
        )
    return json.loads(lines[-1][len(WORKER_TAG) :])["peak_mib"]


def memory(args, timings=None):
    """Peak RSS of full batch vs accumulated micro-batches; returns the ratio above the floor.

    `timings`, a dict, receives each contender's peaks (MiB)."""
    b, k = args.memory_batch_size, args.accumulation_steps
    peaks = {kind: [] for kind in MEMORY_CONTENDERS}
    for _ in range(args.memory_repeats):
        for kind in MEMORY_CONTENDERS:
            peaks[kind].append(run_worker(kind, args))
    peak = {kind: float(np.median(values)) for kind, values in peaks.items()}
    if timings is not None:
        for kind in MEMORY_CONTENDERS:
            timings[f"memory {kind}"] = _results.timing(peaks[kind], "MiB peak RSS")
    above = {kind: peak[kind] - peak["floor"] for kind in ("full", "accumulated")}
    labels = {
        "floor": "floor: model, compiled, and data; no training",
        "full": f"batch {b}",
        "accumulated": f"batch {b // k} x gradient_accumulation_steps={k}",
    }
    title = (
        f"Peak process memory (peak RSS, a fresh process each), effective batch {b}, "
        f"{args.memory_steps} weight update(s), median of {args.memory_repeats} process(es)"
    )
    if args.quick:
        title = f"QUICK (tiny sizes; the numbers mean nothing): {title}"
    print(f"\n{title}")
    for kind in MEMORY_CONTENDERS:
        runs = ", ".join(f"{p:.0f}" for p in peaks[kind])
        extra = "" if kind == "floor" else f"   above floor {above[kind]:7.1f} MiB"
        print(f"  {labels[kind]:<48} {peak[kind]:8.1f} MiB{extra}   runs: {runs}")
    if above["full"] <= 0:
        print("  the full batch's peak is not above the floor: no ratio (raise the batch size)")
        return float("nan")
    ratio = above["accumulated"] / above["full"]
    print(f"  ratio accumulated / full (peak - floor): {ratio:.3f}")
    return ratio


def main(argv=None):
    """Run the measurements; returns their ratios by name (`--skip-*` leaves one out)."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per policy")
    parser.add_argument("--steps", type=int, default=10, help="train steps per timed repeat")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    parser.add_argument("--batch-size", type=int, default=128, help="throughput batch size")
    parser.add_argument(
        "--memory-batch-size", type=int, default=512, help="effective batch B of the memory test"
    )
    parser.add_argument(
        "--accumulation-steps", type=int, default=4, help="k: micro-batches of B/k per update"
    )
    parser.add_argument(
        "--memory-steps", type=int, default=3, help="weight updates in each memory process"
    )
    parser.add_argument(
        "--memory-repeats", type=int, default=1, help="processes per memory contender (median)"
    )
    parser.add_argument(
        "--jit",
        choices=("auto", "true", "false"),
        default="auto",
        help="compile(jit_compile=...); auto: no XLA on a CPU",
    )
    parser.add_argument("--skip-throughput", action="store_true", help="memory only")
    parser.add_argument("--skip-memory", action="store_true", help="throughput only")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and one step, to check the script; its numbers mean nothing",
    )
    parser.add_argument("--memory-worker", choices=MEMORY_CONTENDERS, help=argparse.SUPPRESS)
    _results.add_arguments(parser)
    args = parser.parse_args(argv)
    for name, value in vars(args).items():
        if isinstance(value, int) and not isinstance(value, bool):
            if value < (0 if name == "warmup" else 1):
                least = "0 or more" if name == "warmup" else "positive"
                parser.error(f"--{name.replace('_', '-')} must be {least}; got {value}")
    if args.quick:
        args.repeats, args.steps, args.warmup, args.batch_size = 1, 1, 1, 8
        args.memory_batch_size, args.memory_steps, args.memory_repeats = 32, 1, 1
    if args.memory_batch_size % args.accumulation_steps:
        parser.error(
            f"--memory-batch-size ({args.memory_batch_size}) must be a multiple of "
            f"--accumulation-steps ({args.accumulation_steps})"
        )
    jit = {"auto": "auto", "true": True, "false": False}[args.jit]
    if args.memory_worker:
        peak = memory_worker(
            args.memory_worker,
            args.memory_batch_size,
            args.accumulation_steps,
            args.memory_steps,
            jit,
        )
        print(WORKER_TAG + json.dumps({"peak_mib": peak}))
        return {"peak_mib": peak}

    gpus = tf.config.list_physical_devices("GPU")
    print(f"keras {keras.__version__}, tensorflow {tf.__version__}, {'GPU' if gpus else 'CPU'}")
    ratios, timings = {}, {}
    if not args.skip_throughput:
        ratios["throughput mixed_bfloat16 / float32"] = throughput(args, jit, timings)
    if not args.skip_memory:
        ratios["peak memory accumulated / full"] = memory(args, timings)
    print("\nSummary (ratios measured in this run)")
    print(f"  {'measurement':<40} {'ratio':>7}")
    for name, value in ratios.items():
        print(f"  {name:<40} {value:7.3f}")
    if "throughput mixed_bfloat16 / float32" in ratios and not gpus:
        print(
            "  (measured on a CPU, where mixed precision is no speed-up to expect; for the "
            "GPU comparison run benchmarks/vit.py --gpu-mixed-precision)"
        )
    b, k = args.memory_batch_size, args.accumulation_steps
    means = {
        "throughput mixed_bfloat16 / float32": _results.ratio(
            ratios.get("throughput mixed_bfloat16 / float32"),
            "images/s under mixed_bfloat16 / images/s in float32 (on a CPU no speed-up to expect)",
            "higher",
        ),
        "peak memory accumulated / full": _results.ratio(
            ratios.get("peak memory accumulated / full"),
            f"peak memory above the floor of batch {b // k} x gradient_accumulation_steps={k} "
            f"/ that of batch {b}",
            "lower",
        ),
    }
    _results.save(
        args,
        "training",
        "Training techniques: mixed precision and gradient accumulation",
        "(1) training throughput of the vit.py ViT (32x32x3, patch 4, hidden 64, depth 4, "
        f"4 heads, MLP 128, batch {args.batch_size}) under mixed_bfloat16 vs float32, "
        f"interleaved; (2) peak process memory (VmHWM, a fresh process each) of batch {b} "
        f"vs batch {b // k} with gradient_accumulation_steps={k}, above the floor of a "
        "process that only builds the model and the data",
        "float32 with the same initial weights; for memory, the full batch without accumulation",
        {name: entry for name, entry in means.items() if name in ratios},
        timings,
        extra={"cpu_bfloat16_flags": cpu_bfloat16_flags(), "gpu": bool(gpus)},
    )
    return ratios


if __name__ == "__main__":
    main()
