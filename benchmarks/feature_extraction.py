"""Why extract features once: head training on cached features vs through the backbone.

With a frozen backbone, a learner can either put the backbone inside the
model and call `fit` on images (every epoch runs the backbone again), or run
the backbone once (`dl4keras.backbones.extract_features`) and fit the head on
the stored features. This script times both for the same number of epochs,
interleaved over repeats, and prints the speed-up of extracting once
(including the one-off extraction time).

    python benchmarks/feature_extraction.py --images 2000 --epochs 10 --repeats 3
    python benchmarks/feature_extraction.py --quick   # check the script

`--quick` uses tiny sizes (its numbers mean nothing); `--output PATH` also
writes the results as JSON (the format of `benchmarks/_results.py`;
`benchmarks/run_all.py` collects them).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import keras
import numpy as np

from dl4keras import backbones, data

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the folder is no package
import _results  # noqa: E402


def through_backbone(extractor, x, y, epochs):
    model = keras.Sequential([extractor, backbones.classifier_head(5, extractor.output_shape[-1])])
    model.compile("adam", "sparse_categorical_crossentropy")
    start = time.perf_counter()
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0)
    return time.perf_counter() - start


def extract_once(extractor, x, y, epochs):
    start = time.perf_counter()
    features = backbones.extract_features(extractor, x, batch_size=64, verbose=0)
    head = backbones.classifier_head(5, features.shape[-1])
    head.compile("adam", "sparse_categorical_crossentropy")
    head.fit(features, y, batch_size=64, epochs=epochs, verbose=0)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes to check the script; numbers mean nothing"
    )
    _results.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.epochs, args.repeats = 50, 1, 1

    x, y = data.cluttered_digits((5, 6, 7, 8, 9), max(1, args.images // 5), seed=0)
    extractor = backbones.build("tiny_resnet", trainable=False)
    through_backbone(extractor, x[:128], y[:128], 1)  # warm-up: build and trace once
    extract_once(extractor, x[:128], y[:128], 1)
    times = {"through_backbone": [], "extract_once": []}
    for _ in range(args.repeats):  # interleaved: both see the same machine load
        times["through_backbone"].append(through_backbone(extractor, x, y, args.epochs))
        times["extract_once"].append(extract_once(extractor, x, y, args.epochs))
    median = {k: float(np.median(v)) for k, v in times.items()}
    print(f"{len(x)} images, {args.epochs} epochs, {args.repeats} interleaved repeats (median)")
    for name, seconds in median.items():
        print(f"  {name:<17} {seconds:7.2f} s   runs: {', '.join(f'{t:.2f}' for t in times[name])}")
    speed_up = median["through_backbone"] / median["extract_once"]
    print(f"speed-up of extracting once: {speed_up:.1f}x")
    _results.save(
        args,
        "feature_extraction",
        "Extract features once, or run the frozen backbone every epoch",
        f"time to train a linear head for {args.epochs} epochs on {len(x)} images with the "
        "frozen tiny_resnet backbone inside model.fit vs on features extracted once "
        "(extraction included), interleaved repeats",
        "the frozen backbone inside model.fit",
        {
            "speed-up of extracting once": _results.ratio(
                speed_up, "time through the backbone / time with features extracted once", "higher"
            )
        },
        {name: _results.timing(t, "s") for name, t in times.items()},
    )
    return speed_up


if __name__ == "__main__":
    main()
