"""dl4keras.MultiHeadAttention vs keras.layers.MultiHeadAttention: forward+backward time and memory.

Both layers get the same weights and the same input (self-attention on a
batch of 32 sequences of model dimension 256, 8 heads of 32). Each is wrapped
in a compiled train-step-like function (a `tf.function`, XLA with `--jit`):
forward pass, a scalar loss, and the gradients with respect to the weights
and the input. After a warm-up (tracing), the two are timed interleaved,
`--repeats` times `--steps` steps each (alternating which goes first), and
the script prints the medians, the ratio ours / built-in (the median of the
per-repeat ratios; below 1.0: ours is faster), and the peak memory.

Memory: the peak of TensorFlow's own allocator during the steps
(`tf.config.experimental.get_memory_info`, which reports the CPU allocator
as well as a GPU's) minus what it held before them (after building and
tracing): the working memory of one train step (activations, attention
weights, gradients). It needs no sampling and moves by a few percent from
run to run. Each layer runs in a fresh subprocess of its own, so that
neither sees the other's allocations.

    python benchmarks/attention.py                    # sequences of 128 and 512
    python benchmarks/attention.py --seq 128 --jit    # XLA-compiled steps
    python benchmarks/attention.py --quick            # check the script (seconds)

`--quick` uses tiny sizes (its numbers mean nothing); `--output PATH` also
writes the results as JSON (the format of `benchmarks/_results.py`;
`benchmarks/run_all.py` collects them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from dl4keras.attention import MultiHeadAttention  # noqa: E402

CONTENDERS = ("dl4keras", "keras")


sys.path.insert(0, str(Path(__file__).resolve().parent))  # the folder is no package
import _results  # noqa: E402


def make_step(name, batch, seq, dim, heads, jit, causal=False):
    """A compiled forward+backward step for one layer, and its input."""
    keras.utils.set_random_seed(0)
    x = tf.constant(np.random.default_rng(0).normal(size=(batch, seq, dim)), "float32")
    builtin = keras.layers.MultiHeadAttention(heads, dim // heads)
    builtin(x[:1], x[:1])
    layer = builtin
    if name == "dl4keras":
        layer = MultiHeadAttention(heads, dim // heads)
        layer(x[:1], x[:1])
        layer.set_weights(builtin.get_weights())

    @tf.function(jit_compile=jit)
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, x, use_causal_mask=causal, training=True)
            loss = tf.reduce_mean(tf.square(y))
        grads = tape.gradient(loss, [x, *layer.trainable_variables])
        return loss, grads

    return step, x


def time_steps(step, x, steps):
    start = time.perf_counter()
    for _ in range(steps):
        loss, _ = step(x)
    float(loss)  # wait for the last step
    return (time.perf_counter() - start) / steps


def measure_memory(name, args, seq):
    """Peak memory of `steps` train steps of one layer, in MiB (see the module doc)."""
    cmd = [sys.executable, __file__, "--_memory-child", name, "--seq", str(seq)]
    cmd += ["--batch", str(args.batch), "--dim", str(args.dim), "--heads", str(args.heads)]
    cmd += ["--steps", str(args.steps)] + (["--jit"] if args.jit else [])
    cmd += ["--causal"] if args.causal else []
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["mib"], "allocator peak"


def memory_child(args):
    device = "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"
    step, x = make_step(
        args._memory_child, args.batch, args.seq[0], args.dim, args.heads, args.jit, args.causal
    )
    time_steps(step, x, 2)  # trace and run: building and tracing are not counted
    tf.config.experimental.reset_memory_stats(device)
    before = tf.config.experimental.get_memory_info(device)["current"]
    time_steps(step, x, args.steps)
    peak = tf.config.experimental.get_memory_info(device)["peak"]
    print(json.dumps({"mib": (peak - before) / 2**20}))


def bench(args, seq):
    """One sequence length; returns the time ratio, the step times (s) and the memory (MiB)."""
    steps = {
        name: make_step(name, args.batch, seq, args.dim, args.heads, args.jit, args.causal)
        for name in CONTENDERS
    }
    for step, x in steps.values():  # warm-up: trace, then a few untimed steps
        time_steps(step, x, 3)
    times = {name: [] for name in CONTENDERS}
    for repeat in range(args.repeats):  # interleaved, alternating who goes first
        for name in CONTENDERS[:: 1 if repeat % 2 == 0 else -1]:
            times[name].append(time_steps(*steps[name], args.steps))
    median = {name: float(np.median(t)) for name, t in times.items()}
    # Median of the per-repeat ratios: each pair ran back to back, under the same load.
    ratio = float(np.median(np.divide(times["dl4keras"], times["keras"])))
    print(
        f"\nbatch {args.batch}, sequence {seq}, model dim {args.dim}, {args.heads} heads, "
        f"{'XLA' if args.jit else 'tf.function'}{', causal' if args.causal else ''}: "
        f"forward+backward, median of {args.repeats} x {args.steps} steps"
    )
    for name in CONTENDERS:
        runs = ", ".join(f"{1e3 * t:.1f}" for t in times[name])
        print(f"  {name:<9} {1e3 * median[name]:8.2f} ms/step   runs: {runs}")
    print(
        f"  ratio dl4keras / keras: {ratio:.3f} (median of paired repeats; "
        f"ratio of medians {median['dl4keras'] / median['keras']:.3f})"
    )
    memory = {}
    if not args.no_memory:
        for name in CONTENDERS:
            memory[name], what = measure_memory(name, args, seq)
            print(f"  {name:<9} {memory[name]:8.1f} MiB {what}")
    return ratio, times, memory


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jit", action="store_true", help="XLA-compile the steps")
    parser.add_argument("--causal", action="store_true", help="use_causal_mask=True")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes to check the script; numbers mean nothing"
    )
    parser.add_argument("--_memory-child", choices=CONTENDERS, help=argparse.SUPPRESS)
    _results.add_arguments(parser)
    args = parser.parse_args(argv)
    if args._memory_child:
        return memory_child(args)
    if args.quick:
        args.seq, args.batch, args.dim, args.heads, args.steps, args.repeats = [16], 2, 32, 2, 1, 1
    print(
        f"keras {keras.__version__}, tensorflow {tf.__version__}, "
        f"{'GPU' if tf.config.list_physical_devices('GPU') else 'CPU'}"
    )
    ratios, timings = {}, {}
    for seq in args.seq:
        ratio, times, memory = bench(args, seq)
        ratios[f"time, sequence {seq}"] = _results.ratio(
            ratio, "forward+backward time of ours / of keras.layers.MultiHeadAttention", "lower"
        )
        for name in CONTENDERS:
            timings[f"{name}, sequence {seq}"] = _results.timing(
                [1e3 * t for t in times[name]], "ms/step"
            )
        if memory:
            ratios[f"memory, sequence {seq}"] = _results.ratio(
                memory["dl4keras"] / memory["keras"] if memory["keras"] > 0 else None,
                "peak step memory of ours / of keras.layers.MultiHeadAttention",
                "lower",
            )
            for name in CONTENDERS:
                timings[f"{name} memory, sequence {seq}"] = _results.timing([memory[name]], "MiB")
    _results.save(
        args,
        "attention",
        "dl4keras.MultiHeadAttention vs keras.layers.MultiHeadAttention",
        f"forward+backward time and peak step memory of self-attention, batch {args.batch}, "
        f"model dim {args.dim}, {args.heads} heads, sequences of "
        f"{', '.join(map(str, args.seq))}, {'XLA' if args.jit else 'tf.function'}, interleaved",
        "keras.layers.MultiHeadAttention with the same weights",
        ratios,
        timings,
    )
    return {name: entry["value"] for name, entry in ratios.items()}


if __name__ == "__main__":
    main()
