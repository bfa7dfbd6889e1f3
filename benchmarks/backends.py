"""One ViT on TensorFlow, JAX and PyTorch: training-step throughput, as ratios to TensorFlow.

The model is the small ViT of `benchmarks/vit.py` (`dl4keras.vit.VisionTransformer`,
32×32×3 images, patch 4, hidden 64, depth 4, 4 heads, MLP 128, 10 classes,
no dropout), compiled with AdamW and sparse cross-entropy on logits and
trained with `train_on_batch` on the same fixed random batches (batch 128).
Keras picks its backend once per process, so each contender is its own
worker process with `KERAS_BACKEND` set: one per backend and per
`compile(jit_compile=...)` setting:

- TensorFlow: `jit_compile=False` (a `tf.function`; what `"auto"`, the
  default, resolves to on a CPU-only machine) and `True` (XLA).
- JAX: `jit_compile=True` (`jax.jit`, XLA; the default) and `False` (the
  train step runs op by op, without `jax.jit`).
- PyTorch: `jit_compile=False` (eager; the default) and `True`, which Keras
  maps to `torch.compile` (inductor backend), a path Keras supports less
  well than XLA: its compilation, in the first step (minutes on a small
  CPU), is not timed (the script reports it), and if it fails the script
  says so and goes on; `--no-torch-compile` leaves it out.

Each worker builds and compiles the model, runs one step (tracing or
compilation, reported as "first step") and `--warmup` untimed steps, then
waits. The parent then has the workers run `--steps` steps in turn,
`--repeats` rounds (alternating the order), so that load from other
processes hits all alike, and prints each contender's median images/s and
its ratio to TensorFlow with the default `compile()` (the median of the
per-round ratios; above 1.0: faster than TensorFlow). A backend that is not
installed is reported in one line and left out.

    python benchmarks/backends.py
    python benchmarks/backends.py --backends tensorflow jax --repeats 7
    python benchmarks/backends.py --quick      # check the script (tiny batch)

On a shared machine the absolute images/s move with the load from other
processes; the interleaved ratio is the figure to read.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

BACKENDS = ("tensorflow", "jax", "torch")
INSTALL = {
    "tensorflow": "pip install tensorflow",
    "jax": "pip install jax",
    "torch": "pip install torch --index-url https://download.pytorch.org/whl/cpu",
}
TAG = "BACKENDS_WORKER "
HERE = Path(__file__).resolve()


sys.path.insert(0, str(Path(__file__).resolve().parent))  # the folder is no package
import _results  # noqa: E402


def _send(payload):
    print(TAG + json.dumps(payload), flush=True)


def worker(backend, jit, batch_size, warmup):
    """A contender: builds and warms up the ViT, then times steps on request (stdin)."""
    import keras

    if keras.backend.backend() != backend:
        sys.exit(f"worker for {backend} got the {keras.backend.backend()} backend")
    vit = _results.load_sibling("vit")  # the ViT config, the fixed batches, the step timer
    from dl4keras.vit import VisionTransformer

    keras.utils.set_random_seed(0)
    model = VisionTransformer(**vit.SMALL, num_classes=vit.NUM_CLASSES)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=loss)
    default = bool(model.jit_compile)  # what compile()'s "auto" resolved to
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=loss, jit_compile=jit)
    batches = vit.make_batches(4, batch_size, vit.SMALL["image_size"], 3, vit.NUM_CLASSES)
    first = vit.time_steps(model, batches, 1)  # tracing / compilation
    vit.time_steps(model, batches, warmup)
    _send(
        {
            "ready": True,
            "default_jit_compile": default,
            "jit_compile": bool(model.jit_compile),
            "parameters": model.count_params(),
            "first_step_s": first,
            "version": importlib.metadata.version(backend),
        }
    )
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        _send({"seconds": vit.time_steps(model, batches, int(line))})


class Contender:
    """A worker process for one backend and one `jit_compile` setting."""

    def __init__(self, backend, jit, args):
        self.backend, self.jit, self.info, self.error = backend, jit, {}, None
        self.log = tempfile.TemporaryFile("w+")  # stderr: TensorFlow's logs, a traceback
        command = [sys.executable, str(HERE), "--_worker", backend, "--_jit", str(jit)]
        command += ["--batch-size", str(args.batch_size), "--warmup", str(args.warmup)]
        env = {**os.environ, "KERAS_BACKEND": backend}
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            text=True, env=env, cwd=HERE.parents[1],
        )  # fmt: skip
        self.info = self._receive()

    @property
    def name(self):
        return f"{self.backend}, jit_compile={self.jit}"

    def _receive(self):
        for line in self.process.stdout:
            if line.startswith(TAG):
                return json.loads(line[len(TAG) :])
        self.process.wait()
        self.log.seek(0)
        lines = [line for line in self.log.read().splitlines() if line.strip()]
        self.error = lines[-1] if lines else f"exit status {self.process.returncode}"
        return None

    def seconds(self, steps):
        self.process.stdin.write(f"{steps}\n")
        self.process.stdin.flush()
        reply = self._receive()
        return None if reply is None else reply["seconds"]

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.write("quit\n")
            self.process.stdin.close()
            self.process.wait()
        self.log.close()


def installed(backend):
    """Whether the backend's package can be imported (without importing it)."""
    return importlib.util.find_spec(backend) is not None


def missing_backends(backends):
    """{backend: reason} for each backend whose package is not installed."""
    return {
        b: f"not installed (no module {b!r}); install it with `{INSTALL[b]}`"
        for b in backends
        if not installed(b)
    }


def label(contender):
    text = contender.name
    if contender.info.get("default_jit_compile") == contender.jit:
        text += " (default)"
    if contender.backend == "torch" and contender.jit:
        text += " (torch.compile)"
    return text


def main(argv=None):
    """Runs the benchmark; returns the ratios to TensorFlow by contender label."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), metavar="NAME")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds")
    parser.add_argument("--steps", type=int, default=10, help="train steps per contender and round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after the first")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--no-torch-compile",
        action="store_true",
        help="leave out torch with jit_compile=True (torch.compile takes minutes on a CPU)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="batch 8, one round of one step, no torch.compile: checks the script",
    )
    parser.add_argument("--_worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--_jit", choices=("True", "False"), help=argparse.SUPPRESS)
    _results.add_arguments(parser)
    args = parser.parse_args(argv)
    unknown = [b for b in args.backends if b not in BACKENDS]
    if unknown:
        parser.error(f"--backends: unknown {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    for name in ("repeats", "steps", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive; got {getattr(args, name)}")
    if args.warmup < 0:
        parser.error(f"--warmup must be 0 or more; got {args.warmup}")
    if args.quick:
        args.repeats, args.steps, args.warmup, args.batch_size = 1, 1, 1, 8
        args.no_torch_compile = True
    if args._worker:
        return worker(args._worker, args._jit == "True", args.batch_size, args.warmup)

    skipped = missing_backends(args.backends)
    for backend, reason in skipped.items():
        print(f"{backend}: {reason}; left out")
    contenders = []
    try:
        for backend in (b for b in args.backends if b not in skipped):
            for jit in (False, True):
                if backend == "torch" and jit and args.no_torch_compile:
                    name = "torch, jit_compile=True"
                    skipped[name] = "left out (--no-torch-compile, or --quick)"
                    print(f"{name}: {skipped[name]}")
                    continue
                print(f"starting {backend}, jit_compile={jit} ...", flush=True)
                contender = Contender(backend, jit, args)
                if contender.info is None:
                    skipped[contender.name] = f"failed to start: {contender.error}"
                    print(f"{contender.name}: {skipped[contender.name]}; left out")
                    contender.close()
                    continue
                info = contender.info
                print(
                    f"  {label(contender)}: {backend} {info['version']}, {info['parameters']:,} "
                    f"parameters, first step (tracing/compiling) {info['first_step_s']:.1f} s"
                )
                contenders.append(contender)
        rates = {c.name: [] for c in contenders}
        images = args.steps * args.batch_size
        for repeat in range(args.repeats):  # interleaved, alternating who goes first
            for contender in contenders[:: 1 if repeat % 2 == 0 else -1]:
                if contender.name in skipped:
                    continue
                seconds = contender.seconds(args.steps)
                if seconds is None:
                    skipped[contender.name] = f"failed while timed: {contender.error}"
                    print(f"{contender.name}: {skipped[contender.name]}; left out")
                else:
                    rates[contender.name].append(images / seconds)
    finally:
        for contender in contenders:
            contender.close()
    timed = [c for c in contenders if c.name not in skipped]
    return report(args, timed, rates, skipped)


def report(args, timed, rates, skipped):
    title = (
        "ViT 32x32x3, patch 4, hidden 64, depth 4, 4 heads, MLP 128, batch "
        f"{args.batch_size}: train_on_batch on each backend, CPU"
    )
    if args.quick:
        title = f"QUICK (tiny batch; the numbers mean nothing): {title}"
    print(
        f"\n{title}\nmedian of {args.repeats} interleaved rounds x {args.steps} steps "
        f"(after 1 + {args.warmup} untimed steps)"
    )
    for c in timed:
        runs = ", ".join(f"{r:.0f}" for r in rates[c.name])
        print(f"  {label(c):<48} {np.median(rates[c.name]):8.1f} images/s   runs: {runs}")
    baseline = next(
        (c for c in timed if c.backend == "tensorflow" and c.jit == c.info["default_jit_compile"]),
        None,
    )
    ratios = {}
    if baseline is None:
        print("  no TensorFlow run with the default compile(): no ratios (it is the baseline)")
    else:
        for c in timed:
            if c is baseline:
                continue
            # Median of the per-round ratios: each round ran the contenders back to back.
            value = float(np.median(np.divide(rates[c.name], rates[baseline.name])))
            ratios[f"{label(c)} / TensorFlow (default)"] = value
            print(f"  ratio {label(c)} / {label(baseline)}: {value:.3f}")
    for name, reason in skipped.items():
        print(f"  {name}: {reason}")
    _results.save(
        args,
        "backends",
        "One ViT on TensorFlow, JAX and PyTorch",
        "training throughput (images/s, train_on_batch) of dl4keras.vit.VisionTransformer "
        "(32x32x3, patch 4, hidden 64, depth 4, 4 heads, MLP 128, 10 classes) on each "
        "Keras backend, with and without compile(jit_compile=True); torch's "
        "jit_compile=True is torch.compile (inductor); one process per contender, "
        "interleaved rounds",
        "TensorFlow with the default compile() (jit_compile='auto': no XLA on a CPU)",
        {
            name: _results.ratio(
                value, "images/s of this contender / images/s of TensorFlow (default)", "higher"
            )
            for name, value in ratios.items()
        },
        {label(c): _results.timing(rates[c.name], "images/s") for c in timed},
        extra={
            "first_step_s": {label(c): c.info["first_step_s"] for c in timed},
            "backend_versions": {c.backend: c.info["version"] for c in timed},
            "parameters": {label(c): c.info["parameters"] for c in timed},
            "left_out": skipped,
        },
        backend="tensorflow, jax, torch (one process each)",
    )
    return ratios


if __name__ == "__main__":
    main()
