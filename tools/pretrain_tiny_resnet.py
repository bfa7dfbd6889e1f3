"""Pretrains TinyResNet, the offline backbone shipped in dl4keras/assets/.

Source task, 47 classes: handwritten digits 0-4 and 42 printed letters in 21
typefaces, pasted onto cluttered photo crops (`dl4keras.data.cluttered_digits`,
`dl4keras.data.cluttered_letters`). Many varied classes make the features
general, as ImageNet's 1000 classes do. The target task of Tutorial 01, the
handwritten digits 5-9 on the same kind of clutter, is never seen here, and
letters that look like them (S, b, G, g, q...) are left out.

The run is seeded and deterministic on a given machine and library versions:

    python tools/pretrain_tiny_resnet.py            # writes the shipped weights
    python tools/pretrain_tiny_resnet.py --out x.weights.h5 --epochs 1

At the end it reports a quick transfer check: a linear probe on the frozen
features of digits 5-9 with 10 labels per class, against logistic regression
on raw pixels.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np

from dl4keras import data, tiny_resnet

SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)


def source_task(digits_per_class, letters_per_class, seed):
    """Digits 0-4 (labels 0-4) and letters (labels 5-46) on clutter, shuffled."""
    x_d, y_d = data.cluttered_digits(SOURCE_CLASSES, digits_per_class, split="all", seed=seed)
    x_l, y_l = data.cluttered_letters(letters_per_class, seed=seed + 1000)
    x = np.concatenate([x_d, x_l])
    y = np.concatenate([y_d, y_l + len(SOURCE_CLASSES)])
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order], y[order]


def pretrain(n_per_class, letters_per_class, epochs, batch_size, seed, out, log=print):
    keras.utils.set_random_seed(seed)
    t0 = time.perf_counter()
    x, y = source_task(n_per_class, letters_per_class, seed)
    x_val, y_val = source_task(100, 10, seed + 1)
    num_classes = len(SOURCE_CLASSES) + len(data.LETTERS)
    log(
        f"generated {len(x)} source images of {num_classes} classes in "
        f"{time.perf_counter() - t0:.0f} s"
    )

    backbone = tiny_resnet.build_tiny_resnet()
    model = keras.Sequential(
        [
            backbone,
            keras.layers.GlobalAveragePooling2D(name="pool"),
            keras.layers.Dense(num_classes, activation="softmax", name="source_head"),
        ]
    )
    steps = epochs * int(np.ceil(len(x) / batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, steps, alpha=0.01, warmup_target=3e-3, warmup_steps=max(1, steps // 20)
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=5e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    t0 = time.perf_counter()
    history = model.fit(
        x, y, batch_size=batch_size, epochs=epochs, validation_data=(x_val, y_val), verbose=2
    )
    train_seconds = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    backbone.save_weights(out)
    log(f"saved {out} ({out.stat().st_size / 1e6:.1f} MB) after {train_seconds:.0f} s of training")
    return backbone, {
        "source_val_accuracy": float(history.history["val_accuracy"][-1]),
        "train_seconds": train_seconds,
        "source_images": len(x),
        "epochs": epochs,
    }


def transfer_check(backbone, labels_per_class=10, seeds=(0, 1, 2), log=print):
    """Linear probe on frozen features vs logistic regression on pixels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    extractor = keras.Sequential([backbone, keras.layers.GlobalAveragePooling2D()])
    x_test, y_test = data.cluttered_digits(TARGET_CLASSES, 200, split="test", seed=100)
    f_test = extractor.predict(x_test, verbose=0)
    probe, pixels = [], []
    for seed in seeds:
        x, y = data.cluttered_digits(
            TARGET_CLASSES, labels_per_class, split="train", seed=200 + seed
        )
        f = extractor.predict(x, verbose=0)
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        probe.append(clf.fit(f, y).score(f_test, y_test))
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        pixels.append(
            clf.fit(x.reshape(len(x), -1), y).score(x_test.reshape(len(x_test), -1), y_test)
        )
    report = {"linear_probe": float(np.mean(probe)), "pixel_logreg": float(np.mean(pixels))}
    log(f"transfer to digits 5-9, {labels_per_class} labels/class: {json.dumps(report)}")
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-per-class", type=int, default=3000, help="images per digit 0-4")
    parser.add_argument("--letters-per-class", type=int, default=600, help="images per letter")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(tiny_resnet.__file__).parent / "assets" / tiny_resnet.WEIGHTS_FILE,
    )
    args = parser.parse_args(argv)
    backbone, info = pretrain(
        args.n_per_class, args.letters_per_class, args.epochs, args.batch_size, args.seed, args.out
    )
    info.update(transfer_check(backbone))
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
