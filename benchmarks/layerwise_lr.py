"""The cost of layer-wise learning rates: `LayerwiseLR` and `MultiOptimizer` vs plain Adam.

Three optimizers train copies of the same MLP (same initial weights, same
batches): plain `keras.optimizers.Adam` (the baseline), Adam wrapped in
`dl4keras.layerwise_lr.LayerwiseLR` with one multiplier per layer group, and
the public-API equivalent, `keras.optimizers.MultiOptimizer` with one
`Adam(lr * m)` per group. It times `train_on_batch` steps, interleaving the
three over rounds so that machine load hits all alike, and prints the step
time of each as a ratio to plain Adam measured in the same run, the number
of optimizer variables and their elements (memory), and the largest weight
difference between the two layer-wise versions after the same steps.

    python benchmarks/layerwise_lr.py --groups 3 --width 256 --steps 50 --rounds 5
    python benchmarks/layerwise_lr.py --quick   # check the script (numbers mean nothing)

`--output PATH` also writes the results as JSON (the format of
`benchmarks/_results.py`; `benchmarks/run_all.py` collects them).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import keras
import numpy as np

from dl4keras.layerwise_lr import LayerwiseLR

LEARNING_RATE = 1e-3


sys.path.insert(0, str(Path(__file__).resolve().parent))  # the folder is no package
import _results  # noqa: E402


def build_model(groups, layers_per_group, width, inputs, classes):
    layers = [keras.Input((inputs,))]
    for g in range(groups):
        for i in range(layers_per_group):
            layers.append(keras.layers.Dense(width, activation="relu", name=f"g{g}_dense{i}"))
    layers.append(keras.layers.Dense(classes, name="head"))
    return keras.Sequential(layers)


def multipliers(groups):
    """`{"g0_*": decay**(groups), ..., "g{groups-1}_*": decay}`; the head keeps 1."""
    return {f"g{g}_*": 0.5 ** (groups - g) for g in range(groups)}


def make_optimizer(kind, model, groups):
    if kind == "adam":
        return keras.optimizers.Adam(LEARNING_RATE)
    if kind == "layerwise_lr":
        return LayerwiseLR(keras.optimizers.Adam(LEARNING_RATE), multipliers(groups), model=model)
    optimizer_map = keras.optimizers.OptimizerMap(keras.optimizers.Adam(LEARNING_RATE))
    for pattern, m in multipliers(groups).items():  # variable paths: "sequential/g0_dense0/kernel"
        optimizer_map[f".*/{pattern[:-1]}.*"] = keras.optimizers.Adam(LEARNING_RATE * m)
    return keras.optimizers.MultiOptimizer(optimizer_map)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=3, help="layer groups below the head")
    parser.add_argument("--layers-per-group", type=int, default=2)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50, help="train steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jit-compile", action="store_true", help="compile with XLA")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes to check the script; numbers mean nothing"
    )
    _results.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.width, args.steps, args.rounds = 8, 2, 1

    inputs, classes = 64, 10
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, inputs)).astype("float32")
    y = rng.integers(0, classes, size=args.batch)
    kinds = ("adam", "layerwise_lr", "multi_optimizer")
    models = {}
    for kind in kinds:
        keras.utils.set_random_seed(0)  # the same initial weights for all three
        model = build_model(args.groups, args.layers_per_group, args.width, inputs, classes)
        model.compile(
            make_optimizer(kind, model, args.groups),
            "sparse_categorical_crossentropy",
            jit_compile=args.jit_compile,
        )
        for _ in range(5):  # warm-up: build, trace and settle
            model.train_on_batch(x, y)
        models[kind] = model

    times = {kind: [] for kind in kinds}
    for _ in range(args.rounds):  # interleaved rounds
        for kind in kinds:
            start = time.perf_counter()
            for _ in range(args.steps):
                models[kind].train_on_batch(x, y)
            times[kind].append((time.perf_counter() - start) / args.steps)
    median = {kind: float(np.median(t)) for kind, t in times.items()}
    ratios = {kind: median[kind] / median["adam"] for kind in kinds[1:]}

    steps = 5 + args.rounds * args.steps
    weights = {kind: models[kind].trainable_variables for kind in kinds[1:]}
    difference = max(
        float(np.abs(a.numpy() - b.numpy()).max())
        for a, b in zip(weights["layerwise_lr"], weights["multi_optimizer"])
    )
    parameters = sum(int(np.prod(v.shape)) for v in models["adam"].trainable_variables)
    print(
        f"MLP: {args.groups} groups x {args.layers_per_group} Dense({args.width}) + head, "
        f"{parameters:,} parameters, batch {args.batch}, jit_compile={args.jit_compile}; "
        f"{args.rounds} interleaved rounds of {args.steps} steps (median)"
    )
    print(
        f"  {'optimizer':<16} {'ms/step':>8} {'vs Adam':>8} {'opt. variables':>15} {'elements':>10}"
    )
    state = {}
    for kind in kinds:
        variables = models[kind].optimizer.variables
        elements = sum(int(np.prod(v.shape)) for v in variables)
        state[kind] = {"variables": len(variables), "elements": elements}
        ratio = median[kind] / median["adam"]
        print(
            f"  {kind:<16} {1e3 * median[kind]:8.3f} {ratio:7.2f}x {len(variables):15d} "
            f"{elements:10,}   runs (ms): {', '.join(f'{1e3 * t:.2f}' for t in times[kind])}"
        )
    print(f"max |LayerwiseLR - MultiOptimizer| weight difference, {steps} steps: {difference:.3g}")
    names = {"layerwise_lr": "LayerwiseLR", "multi_optimizer": "MultiOptimizer"}
    _results.save(
        args,
        "layerwise_lr",
        "The cost of layer-wise learning rates",
        f"train_on_batch step time of an MLP ({args.groups} groups x {args.layers_per_group} "
        f"Dense({args.width}) + head, {parameters:,} parameters, batch {args.batch}, "
        f"jit_compile={args.jit_compile}) with dl4keras.layerwise_lr.LayerwiseLR and with "
        "keras.optimizers.MultiOptimizer (one Adam(lr * m) per group), interleaved rounds",
        "plain keras.optimizers.Adam on a copy of the same model",
        {
            f"{names[kind]} / Adam": _results.ratio(
                ratios[kind], f"step time with {names[kind]} / with plain Adam", "lower"
            )
            for kind in kinds[1:]
        },
        {kind: _results.timing([1e3 * t for t in times[kind]], "ms/step") for kind in kinds},
        extra={"optimizer_state": state, "max_abs_weight_difference": difference},
    )
    return {"ratios": ratios, "max_abs_difference": difference}


if __name__ == "__main__":
    main()
