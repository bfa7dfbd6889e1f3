"""The recipe search behind tutorial 04, recorded: writes dl4keras/assets/vit_recipe_search.json.

Tutorial 04 trains a ViT from scratch on scikit-learn's 8×8 digits and
chooses its recipe on a validation split. Its docs run can afford one run
per recipe; the choice rests on this longer search, which the page reads
back and prints (`dl4keras.vit.recipe_search_results`). Every run trains on
80% of the tutorial's training split (1,347 images, the tutorial's
`train_test_split(..., random_state=0)`) and is measured on the other 20%
(270 images, split seed 1 unless a row says otherwise); a few rows also
train on the whole training split and are measured on the test set.

Groups of runs (one row per recipe and seed):

- `anchors`: KerasHub's `ViTBackbone` of the same size (4 layers, width 64,
  4 heads, MLP 128) with the plain recipe: digits upsampled to 32×32 with
  patch 4 and class-token pooling, and 8×8 with patch 1 and mean pooling;
  test accuracy (a scale for "how hard is this without a recipe").
- `no stem, 40 epochs`: the schedule + AdamW + label smoothing with mean or
  class-token pooling, several seeds; test accuracy of the latter.
- `augmentation, no stem`: shifts and rotations, 40 epochs.
- `stem`: the convolutional stem against none at 20 epochs, on more
  validation splits, and wider.

    python tools/vit_recipe_search.py             # the full search, ~10-20 min on 2 CPU cores
    python tools/vit_recipe_search.py --quick --out search.json   # 1 epoch, a few runs
    python tools/vit_recipe_search.py --resume    # go on after an interruption

The file is rewritten after every run (`"complete": false` until the last),
with the date, the git commit, the machine and the versions.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from dl4keras import data, results, vit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "dl4keras" / "assets" / "vit_recipe_search.json"

TUNED = dict(schedule=True, weight_decay=0.05, smoothing=0.1)
TOKEN = dict(TUNED, pooling="token")
STEM = dict(TOKEN, conv_stem=(32, 32))

# (group, description, recipe, VisionTransformer overrides, epochs, model seeds, split seed)
SEARCH = [
    ("no stem, 40 epochs", "schedule, AdamW, smoothing; gap", TUNED, {}, 40, (0,), 1),
    ("no stem, 40 epochs", "schedule, AdamW, smoothing; class token", TOKEN, {}, 40, (0, 1, 2), 1),
    ("augmentation, no stem", "shifts ≤ ½ pixel; gap", dict(TUNED, shift=0.0625), {}, 40, (0,), 1),
    (
        "augmentation, no stem",
        "shifts ≤ ½ pixel; class token",
        dict(TOKEN, shift=0.0625),
        {},
        40,
        (0,),
        1,
    ),
    (
        "augmentation, no stem",
        "shifts ≤ 1 pixel; class token",
        dict(TOKEN, shift=0.125),
        {},
        40,
        (0,),
        1,
    ),
    (
        "augmentation, no stem",
        "shifts ≤ ½ pixel + rotations ≤ 7°; class token",
        dict(TOKEN, shift=0.0625, rotation=7 / 360),
        {},
        40,
        (0,),
        1,
    ),
    ("stem", "no stem, 20 epochs", TOKEN, {}, 20, (0, 1), 1),
    ("stem", "stem (32, 32), 20 epochs", STEM, {}, 20, (0, 1, 2), 1),
    *[
        ("stem", f"no stem, 20 epochs, split {s}", TOKEN, {}, 20, (seed,), s)
        for s, seed in ((2, 10), (3, 11), (4, 12))
    ],
    *[
        ("stem", f"stem (32, 32), 20 epochs, split {s}", STEM, {}, 20, (seed,), s)
        for s, seed in ((2, 10), (3, 11), (4, 12))
    ],
    ("stem", "stem (64, 64), 20 epochs", dict(STEM, conv_stem=(64, 64)), {}, 20, (0, 1), 1),
]
TEST_RUNS = [  # trained on the whole training split, measured on the test set
    ("no stem, 40 epochs", "schedule, AdamW, smoothing; class token", TOKEN, {}, 40, (0, 1)),
]
ANCHOR_EPOCHS = 20


def commit():
    """The git commit of the repository, with `+dirty` for uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return (head or "unknown") + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def keras_hub_anchor(image_size, patch_size, pooling):
    """KerasHub's ViTBackbone (4 layers, width 64) with a Dense head, for 8×8 digits."""
    import keras_hub

    backbone = keras_hub.models.ViTBackbone(
        image_shape=(image_size, image_size, 1),
        patch_size=patch_size,
        num_layers=4,
        num_heads=4,
        hidden_dim=64,
        mlp_dim=128,
    )
    inputs = keras.Input((8, 8, 1))
    x = inputs if image_size == 8 else keras.layers.Resizing(image_size, image_size)(inputs)
    tokens = backbone(x)
    features = tokens[:, 0] if pooling == "token" else keras.ops.mean(tokens, axis=1)
    return keras.Model(inputs, keras.layers.Dense(10)(features))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the JSON")
    parser.add_argument("--quick", action="store_true", help="1 epoch, one run per group")
    parser.add_argument(
        "--resume", action="store_true", help="keep the runs already in --out, run the others"
    )
    args = parser.parse_args(argv)

    images, labels = data.load_digits()
    images = (images / 16.0)[..., None].astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.25, stratify=labels, random_state=0
    )
    search, test_runs = SEARCH, TEST_RUNS
    anchors = [("32×32 (upsampled), patch 4, class token", 32, 4, "token")]
    anchors.append(("8×8, patch 1, mean pooling", 8, 1, "gap"))
    if args.quick:
        search = [(*row[:5], row[5][:1], row[6]) for i, row in enumerate(SEARCH) if i in (0, 7)]
        anchors = anchors[:1]

    def epochs_of(epochs):
        return 1 if args.quick else epochs

    old = {}
    if args.resume and args.out.exists():
        old = json.loads(args.out.read_text(encoding="utf-8"))
    rows, tests, anchor_rows = old.get("runs", []), old.get("test_runs", []), old.get("anchors", [])
    done = {(r["group"], r["run"], r.get("split"), r["seed"], r["epochs"]) for r in rows + tests}
    done |= {(r["run"],) for r in anchor_rows}
    start = time.perf_counter() - old.get("wall_seconds", 0.0)

    def save(complete):
        payload = dict(
            script="tools/vit_recipe_search.py",
            quick=bool(args.quick),
            complete=complete,
            date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            commit=commit(),
            machine=dict(platform=platform.platform(), cpus=os.cpu_count()),
            versions=results.versions(),
            wall_seconds=time.perf_counter() - start,
            data=dict(
                train_images=len(x_train),
                test_images=len(x_test),
                fit_images=len(x_train) - math.ceil(0.2 * len(x_train)),
                val_images=math.ceil(0.2 * len(x_train)),
                batch_size=64,
                peak_learning_rate=2e-3,
            ),
            runs=rows,
            test_runs=tests,
            anchors=anchor_rows,
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(payload, indent=1, ensure_ascii=False, default=list) + "\n"
        args.out.write_text(text, encoding="utf-8")

    for group, text, ingredients, config, epochs, seeds, split in search:
        x_fit, x_val, y_fit, y_val = train_test_split(
            x_train, y_train, test_size=0.2, stratify=y_train, random_state=split
        )
        for seed in seeds:
            if (group, text, split, seed, epochs_of(epochs)) in done:
                continue
            model, seconds = vit.train_vit(
                ingredients, epochs_of(epochs), x_fit, y_fit, seed=seed, **config
            )
            val = vit.accuracy(model, x_val, y_val)
            rows.append(
                dict(
                    group=group,
                    run=text,
                    split=split,
                    seed=seed,
                    epochs=epochs_of(epochs),
                    val_accuracy=val,
                    val_errors=int(round((1 - val) * len(x_val))),
                    val_images=len(x_val),
                    train_seconds=seconds,
                    recipe=vit.recipe(**ingredients),
                    config=config,
                )
            )
            save(complete=False)
            print(f"{group:<20} {text:<48} seed {seed:>2}: {rows[-1]['val_errors']:>3} errors")
    for group, text, ingredients, config, epochs, seeds in test_runs[: 1 if args.quick else None]:
        for seed in seeds[: 1 if args.quick else None]:
            if (group, text, None, seed, epochs_of(epochs)) in done:
                continue
            model, seconds = vit.train_vit(
                ingredients, epochs_of(epochs), x_train, y_train, seed=seed, **config
            )
            tests.append(
                dict(
                    group=group,
                    run=text,
                    split=None,
                    seed=seed,
                    epochs=epochs_of(epochs),
                    test_accuracy=vit.accuracy(model, x_test, y_test),
                    test_images=len(x_test),
                    train_seconds=seconds,
                )
            )
            save(complete=False)
            print(f"test: {text} seed {seed}: {tests[-1]['test_accuracy']:.1%}")
    for text, size, patch, pooling in anchors:
        run = f"KerasHub ViTBackbone, 4 layers, width 64, {text}"
        if (run,) in done:
            continue
        keras.utils.set_random_seed(0)
        model = keras_hub_anchor(size, patch, pooling)
        seconds = vit.fit_recipe(model, vit.PLAIN, epochs_of(ANCHOR_EPOCHS), x_train, y_train)
        anchor_rows.append(
            dict(
                run=run,
                epochs=epochs_of(ANCHOR_EPOCHS),
                recipe="plain (Adam 1e-3, constant)",
                test_accuracy=vit.accuracy(model, x_test, y_test),
                train_seconds=seconds,
            )
        )
        save(complete=False)
        print(f"anchor: {run}: {anchor_rows[-1]['test_accuracy']:.1%}")
    save(complete=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
