"""Training recipes for a small-data ViT: `recipe`, `fit_recipe`, `train_vit`, the comparisons.

A Vision Transformer trained from scratch on little data depends on its
training *recipe* as much as on its architecture (DeiT, Touvron et al.,
2021). A recipe here is a plain dict of ingredients:

- `schedule`: a linear warm-up to the peak learning rate, then a cosine
  decay (`dl4keras.training.warmup_cosine`, Keras's `CosineDecay`);
  without it, a constant learning rate;
- `weight_decay`: AdamW's decoupled weight decay (0: plain Adam);
- `smoothing`: label smoothing of the cross-entropy targets;
- `pooling`: `"gap"` (average the final tokens) or `"token"` (a class token);
- `shift`, `rotation`, `flip`: data augmentation in front of the model,
  active only during `fit` (random shifts as a fraction of the image size,
  rotations as a fraction of a full turn, horizontal flips);
- `conv_stem`: the channels of the 3×3 convolutions before the patches
  (`VisionTransformer(conv_stem=...)`), `()` for none.

`recipe(**changes)` completes a partial dict (the defaults are the *plain*
recipe: Adam, constant learning rate, mean pooling, nothing else);
`RECIPES` is the ablation ladder of tutorial 04, one ingredient at a time.
`fit_recipe` trains any Keras classifier with a recipe (so a CNN gets the
same treatment as the ViT), `train_vit` builds a `VisionTransformer` and
trains it, and `compare_recipes` runs several recipes and seeds on a
validation split and returns one row per run (`recipe_table` prints them);
`compare_variants` trains architecture variants (patch size, depth) with
one recipe and measures each (Exercise 4.4). `recipe_search_results` and
`search_table` read the longer search that `tools/vit_recipe_search.py`
recorded.

Example:

```python
import numpy as np
from dl4keras import vit

x = np.random.default_rng(0).uniform(size=(64, 8, 8, 1)).astype("float32")
y = np.arange(64) % 10
model, seconds = vit.train_vit(vit.RECIPES[vit.BEST], epochs=1, x=x, y=y, depth=1)
print(f"{vit.accuracy(model, x, y):.0%} after one epoch in {seconds:.1f} s")
```
"""

from __future__ import annotations

import time

import keras
import numpy as np

from dl4keras import _validation
from dl4keras.training.schedules import warmup_cosine
from dl4keras.vit.model import build

__all__ = [
    "BEST",
    "PLAIN",
    "RECIPES",
    "accuracy",
    "compare_recipes",
    "compare_variants",
    "fit_recipe",
    "images_per_second",
    "recipe",
    "recipe_search_results",
    "recipe_table",
    "search_table",
    "train_vit",
]

PLAIN = dict(
    schedule=False,
    weight_decay=0.0,
    smoothing=0.0,
    pooling="gap",
    shift=0.0,
    rotation=0.0,
    flip=False,
    conv_stem=(),
)
"""The plain recipe: Adam at a constant learning rate, mean pooling, no extras."""


def recipe(**changes):
    """A complete recipe: `PLAIN` with `changes` applied.

    Args:
        **changes: Ingredients to change: `schedule` (bool), `weight_decay`
            (float ≥ 0), `smoothing` (float in [0, 1)), `pooling` (`"gap"`
            or `"token"`), `shift` (float in [0, 0.5]), `rotation` (float
            in [0, 0.5]), `flip` (bool), `conv_stem` (tuple of channels).

    Returns:
        A new dict with every ingredient.

    Raises:
        ValueError: For an unknown ingredient or a value out of range.

    Examples:
        >>> from dl4keras.vit import recipe
        >>> r = recipe(schedule=True, pooling="token")
        >>> r["schedule"], r["pooling"], r["weight_decay"]
        (True, 'token', 0.0)
    """
    unknown = sorted(set(changes) - set(PLAIN))
    if unknown:
        raise ValueError(
            f"Unknown recipe ingredient(s) {unknown}. Expected some of {sorted(PLAIN)}. "
            f"Received: {changes}"
        )
    result = dict(PLAIN, **changes)
    _validation.one_of("pooling", result["pooling"], ("gap", "token"))
    for name, low, high in (
        ("weight_decay", 0.0, float("inf")),
        ("smoothing", 0.0, 0.999),
        ("shift", 0.0, 0.5),
        ("rotation", 0.0, 0.5),
    ):
        value = result[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _validation.invalid(name, f"a number in [{low}, {high}]", value)
        if not low <= value <= high:
            raise _validation.invalid(name, f"a number in [{low}, {high}]", value)
        result[name] = float(value)
    result["conv_stem"] = tuple(result["conv_stem"] or ())
    result["schedule"] = bool(result["schedule"])
    result["flip"] = bool(result["flip"])
    return result


def _complete(ingredients):
    """`recipe(**ingredients)`: a partial or complete recipe, validated and completed."""
    return recipe(**ingredients)


_TUNED = dict(schedule=True, weight_decay=0.05, smoothing=0.1)

RECIPES = {
    "plain (Adam, constant LR, gap)": recipe(),
    "+ warmup/cosine schedule": recipe(schedule=True),
    "+ AdamW, label smoothing": recipe(**_TUNED),
    "+ class-token pooling": recipe(**_TUNED, pooling="token"),
    "+ random shifts (up to ½ pixel)": recipe(**_TUNED, pooling="token", shift=0.0625),
    "+ convolutional stem (no shifts)": recipe(**_TUNED, pooling="token", conv_stem=(32, 32)),
}
"""The ablation ladder: each recipe adds one ingredient to the one before
(AdamW's weight decay and label smoothing, the two regularisers, together;
the shifts are swapped for the stem in the last)."""

BEST = "+ convolutional stem (no shifts)"
"""The recipe tutorial 04 chose on a validation split."""


def _augmentation(recipe, inputs):
    x = inputs
    if recipe["flip"]:  # photos only: a mirrored 7 is not a digit
        x = keras.layers.RandomFlip("horizontal")(x)
    if recipe["rotation"]:
        x = keras.layers.RandomRotation(recipe["rotation"], fill_mode="constant")(x)
    if recipe["shift"]:
        s = recipe["shift"]
        x = keras.layers.RandomTranslation(s, s, fill_mode="constant")(x)
    return x


def fit_recipe(
    model,
    recipe,
    epochs,
    x,
    y,
    batch_size=64,
    learning_rate=2e-3,
    plain_learning_rate=1e-3,
    warmup_fraction=0.1,
    verbose=0,
):
    """Trains a classifier (logits out) on `(x, y)` with a recipe.

    The recipe's augmentation layers go in front of `model` in a wrapper
    that is trained (they are active only during `fit`); `model` itself is
    what you evaluate afterwards. The optimizer is `keras.optimizers.AdamW`
    with the recipe's `weight_decay` (0: the same as Adam); the loss is the
    categorical cross-entropy on logits with the recipe's `smoothing`. The
    recipe's `pooling` and `conv_stem` are the model's business: they are
    ignored here (`train_vit` builds them in).

    Args:
        model: A `keras.Model` that maps images to class logits.
        recipe: A recipe dict (`recipe(...)`), complete or partial.
        epochs: Number of epochs.
        x: Images, shape `(n, height, width, channels)`.
        y: Integer labels, shape `(n,)`.
        batch_size: Batch size.
        learning_rate: The peak learning rate of the warm-up + cosine
            schedule (`schedule=True`).
        plain_learning_rate: The constant learning rate without a schedule.
        warmup_fraction: The share of the steps spent warming up.
        verbose: Passed to `model.fit`.

    Returns:
        The training time in seconds (the `fit` call only).
    """
    recipe = _complete(recipe)
    epochs = _validation.positive_int("epochs", epochs)
    num_classes = int(model.output_shape[-1])
    inputs = keras.Input(x.shape[1:])
    trainer = keras.Model(inputs, model(_augmentation(recipe, inputs)))
    steps = epochs * int(np.ceil(len(x) / batch_size))
    lr = plain_learning_rate
    if recipe["schedule"]:
        warmup = max(1, int(steps * warmup_fraction))
        lr = warmup_cosine(learning_rate, total_steps=steps, warmup_steps=min(warmup, steps - 1))
    trainer.compile(
        keras.optimizers.AdamW(lr, weight_decay=recipe["weight_decay"]),
        keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=recipe["smoothing"]),
        # On a CPU, XLA compiling costs TensorFlow more than it saves here; JAX
        # without jit would run op by op, so it keeps its default (jitted).
        jit_compile=False if keras.backend.backend() == "tensorflow" else "auto",
    )
    start = time.perf_counter()
    trainer.fit(
        x,
        keras.utils.to_categorical(y, num_classes),
        batch_size=batch_size,
        epochs=epochs,
        verbose=verbose,
    )
    return time.perf_counter() - start


def train_vit(recipe, epochs, x, y, seed=0, config_name="vit_digits", fit_options=None, **config):
    """Builds a ViT and trains it with a recipe: `fit_recipe(build(...), ...)`.

    Args:
        recipe: A recipe dict (`recipe(...)`, e.g. `RECIPES[BEST]`).
        epochs: Number of epochs.
        x: Images, shape `(n, height, width, channels)`.
        y: Integer labels, shape `(n,)`.
        seed: Seeds the weights, the shuffling and the augmentation
            (`keras.utils.set_random_seed`).
        config_name: The `VisionTransformer` configuration (`CONFIGS`).
        fit_options: Other `fit_recipe` arguments (`batch_size`,
            `learning_rate`, ...), a dict.
        **config: `VisionTransformer` arguments that override the
            configuration, e.g. `patch_size=1` or `depth=8`.

    Returns:
        `(model, seconds)`: the trained `VisionTransformer` and the
        training time in seconds.

    Examples:
        >>> import numpy as np
        >>> from dl4keras import vit
        >>> x = np.zeros((20, 8, 8, 1), "float32")
        >>> y = np.arange(20) % 10
        >>> model, seconds = vit.train_vit(vit.RECIPES[vit.BEST], 1, x, y, depth=1)
        >>> model.conv_stem, model.pooling, model.depth
        ((32, 32), 'token', 1)
    """
    full = _complete(recipe)
    keras.utils.set_random_seed(seed)
    model = build(config_name, pooling=full["pooling"], conv_stem=full["conv_stem"], **config)
    seconds = fit_recipe(model, full, epochs, x, y, **(fit_options or {}))
    return model, seconds


def accuracy(model, x, y, batch_size=256):
    """The share of `x` that `model` classifies as `y` (argmax of the outputs).

    Examples:
        >>> import keras, numpy as np
        >>> from dl4keras.vit import accuracy
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Identity()])
        >>> accuracy(model, np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 0]))
        0.5
    """
    predicted = np.argmax(model.predict(x, batch_size=batch_size, verbose=0), axis=-1)
    return float(np.mean(predicted == np.asarray(y)))


def images_per_second(model, x, repeats=5, batch_size=256):
    """Inference throughput: `len(x)` / the median time of `repeats` `predict` calls.

    One untimed call first traces the function; the median of several
    timed calls resists a busy machine better than one call.
    """
    repeats = _validation.positive_int("repeats", repeats)
    model.predict(x, batch_size=batch_size, verbose=0)  # warm-up, not timed
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(x, batch_size=batch_size, verbose=0)
        seconds.append(time.perf_counter() - start)
    return len(x) / float(np.median(seconds))


def compare_recipes(recipes, epochs, x_fit, y_fit, x_val, y_val, seeds=(0,), **train_options):
    """Trains every recipe with every seed and measures it on a validation split.

    Args:
        recipes: A dict `{name: recipe}`.
        epochs: Epochs of every run.
        x_fit: The training images.
        y_fit: The training labels.
        x_val: The validation images (never the test set).
        y_val: The validation labels.
        seeds: The model seeds to run each recipe with.
        **train_options: Other `train_vit` arguments (`config_name`,
            `fit_options`, `VisionTransformer` overrides).

    Returns:
        A list with one dict per run: `recipe`, `seed`, `epochs`,
        `train_accuracy` (on the clean training images), `val_accuracy`,
        `val_errors` and `train_seconds`.

    Examples:
        >>> import numpy as np
        >>> from dl4keras import vit
        >>> x = np.zeros((20, 8, 8, 1), "float32")
        >>> y = np.arange(20) % 10
        >>> rows = vit.compare_recipes(
        ...     {"plain": vit.recipe()}, 1, x, y, x[:10], y[:10], depth=1
        ... )
        >>> [(row["recipe"], row["seed"], row["epochs"]) for row in rows]
        [('plain', 0, 1)]
    """
    rows = []
    for name, one in recipes.items():
        for seed in seeds:
            model, seconds = train_vit(one, epochs, x_fit, y_fit, seed=seed, **train_options)
            val = accuracy(model, x_val, y_val)
            rows.append(
                dict(
                    recipe=name,
                    seed=int(seed),
                    epochs=int(epochs),
                    train_accuracy=accuracy(model, x_fit, y_fit),
                    val_accuracy=val,
                    val_errors=int(round((1 - val) * len(x_val))),
                    train_seconds=seconds,
                )
            )
    return rows


def recipe_table(rows):
    """The rows of `compare_recipes` as a printable table, one line per run.

    Examples:
        >>> from dl4keras.vit import recipes
        >>> row = dict(recipe="plain", train_accuracy=1.0, val_accuracy=0.9, val_errors=27,
        ...            train_seconds=12.0)
        >>> print(recipes.recipe_table([row]))
        recipe                               train acc  val acc val errors   time
        plain                                   100.0%    90.0%         27    12s
    """
    lines = [f"{'recipe':<36}{'train acc':>10}{'val acc':>9}{'val errors':>11}{'time':>7}"]
    for row in rows:
        lines.append(
            f"{row['recipe']:<36}{row['train_accuracy']:>10.1%}"
            f"{row['val_accuracy']:>9.1%}{row['val_errors']:>11}{row['train_seconds']:>6.0f}s"
        )
    return "\n".join(lines)


def compare_variants(
    variants, recipe, epochs, x_fit, y_fit, x_val, y_val, seed=0, print_fn=print, **train_options
):
    """Trains ViT variants with one recipe and budget; measures each on a validation split.

    The measuring half of Exercise 4.4 (patch size and depth): every
    variant is `train_vit(recipe, epochs, x_fit, y_fit, seed=seed,
    **variant)`, then measured the same way: its token count, parameters,
    validation accuracy, training time and inference throughput
    (`images_per_second` on `x_val`).

    Args:
        variants: A dict `{name: VisionTransformer overrides}`, e.g.
            `{"patch 1": dict(patch_size=1), "depth 8": dict(depth=8)}`
            (`{}`: the configuration as it is).
        recipe: A recipe dict (`RECIPES[BEST]`).
        epochs: Epochs of every run.
        x_fit: The training images.
        y_fit: The training labels.
        x_val: The validation images (never the test set).
        y_val: The validation labels.
        seed: The model seed of every run.
        print_fn: Prints a table, one line per variant as it finishes;
            `None`: silent.
        **train_options: Other `train_vit` arguments (`config_name`,
            `fit_options`).

    Returns:
        A list with one dict per variant: `variant`, `tokens` (the patches,
        plus the class token if there is one), `parameters`,
        `val_accuracy`, `train_seconds` and `images_per_second`.

    Raises:
        ValueError: If `variants` is not a non-empty dict of dicts.

    Examples:
        >>> import numpy as np
        >>> from dl4keras import vit
        >>> x = np.zeros((20, 8, 8, 1), "float32")
        >>> y = np.arange(20) % 10
        >>> rows = vit.recipes.compare_variants(
        ...     {"patch 4": dict(patch_size=4, depth=1)}, vit.PLAIN, 1, x, y, x, y, print_fn=None
        ... )
        >>> rows[0]["variant"], rows[0]["tokens"]
        ('patch 4', 4)
    """
    if (
        not isinstance(variants, dict)
        or not variants
        or not all(isinstance(v, dict) for v in variants.values())
    ):
        raise _validation.invalid(
            "variants", "a non-empty dict {name: dict of VisionTransformer arguments}", variants
        )
    if print_fn is not None:
        print_fn(f"{'variant':<30}{'tokens':>7}{'val acc':>9}{'train':>8}{'images/s':>10}")
    rows = []
    for name, overrides in variants.items():
        model, seconds = train_vit(
            recipe, epochs, x_fit, y_fit, seed=seed, **train_options, **overrides
        )
        rows.append(
            dict(
                variant=name,
                tokens=int(np.prod(model.grid_size)) + int(model.use_class_token),
                parameters=model.count_params(),
                val_accuracy=accuracy(model, x_val, y_val),
                train_seconds=seconds,
                images_per_second=images_per_second(model, x_val),
            )
        )
        if print_fn is not None:
            r = rows[-1]
            print_fn(
                f"{name:<30}{r['tokens']:>7}{r['val_accuracy']:>9.1%}"
                f"{seconds:>7.0f}s{r['images_per_second']:>10,.0f}"
            )
    return rows


SEARCH_FILE = "vit_recipe_search.json"
"""The file in `dl4keras/assets/` that `tools/vit_recipe_search.py` writes."""


def recipe_search_results(path=None):
    """The recorded recipe search of tutorial 04 (`tools/vit_recipe_search.py`).

    The search trains many more recipes, seeds, validation splits and
    epochs than a docs run can afford; the tool writes its results with the
    date, the git commit, the machine and the versions, and the package
    ships them, so the tutorial prints them instead of typing them in.

    Args:
        path: A JSON file written by the tool; default the shipped one.

    Returns:
        A dict: `date`, `commit`, `machine`, `versions`, `data` (the
        splits), `runs` (one dict per validation run: `group`, `run`,
        `split`, `seed`, `epochs`, `val_errors`, `val_images`, ...),
        `test_runs` and `anchors` (KerasHub's `ViTBackbone` with the plain
        recipe), each with `test_accuracy`.

    Raises:
        FileNotFoundError: If there is no such file (run the tool).

    Examples:
        >>> from dl4keras import vit
        >>> search = vit.recipe_search_results()
        >>> search["script"], sorted(search["runs"][0])[:3]
        ('tools/vit_recipe_search.py', ['config', 'epochs', 'group'])
    """
    import json
    from importlib import resources
    from pathlib import Path

    if path is None:
        file = resources.files("dl4keras.assets") / SEARCH_FILE
        if not file.is_file():
            raise FileNotFoundError(
                f"dl4keras/assets/{SEARCH_FILE} is missing: run `python tools/vit_recipe_search.py`"
            )
        return json.loads(file.read_text(encoding="utf-8"))
    return json.loads(Path(path).read_text(encoding="utf-8"))


def search_table(search=None):
    """The recipe search as printable lines: one per run, errors per seed.

    Args:
        search: The dict of `recipe_search_results()` (default: the shipped one).

    Returns:
        A list of strings, at most 80 characters each.

    Examples:
        >>> from dl4keras import vit
        >>> print(vit.search_table()[0])  # doctest: +ELLIPSIS
        Recipe search (tools/vit_recipe_search.py), ...
    """
    search = recipe_search_results() if search is None else search
    d = search["data"]
    lines = [
        f"Recipe search ({search['script']}), {search['date'][:10]}, commit {search['commit']}",
        f"{d['fit_images']} training / {d['val_images']} validation images, "
        f"batch {d['batch_size']}, peak LR {d['peak_learning_rate']:g}",
    ]
    groups = {}
    for row in search["runs"]:
        groups.setdefault(row["group"], {}).setdefault(row["run"], []).append(row)
    for group, runs in groups.items():
        lines.append(f"-- {group} (validation errors of {runs[next(iter(runs))][0]['val_images']})")
        for text, seeds in runs.items():
            errors = ", ".join(str(r["val_errors"]) for r in seeds)
            label = "seed" + ("s" if len(seeds) > 1 else "")
            seed_list = ", ".join(str(r["seed"]) for r in seeds)
            lines.append(f"  {text[:50]:<50} {errors:>10}  ({label} {seed_list})")
    for i, row in enumerate(search["test_runs"]):
        if i == 0:
            lines.append(f"-- test set ({row['test_images']} images), whole training split:")
        lines.append(f"  {row['run'][:50]:<50} {row['test_accuracy']:>10.1%}  (seed {row['seed']})")
    for row in search["anchors"]:
        lines.append(f"-- {row['run']}")
        lines.append(
            f"   {row['recipe']}, {row['epochs']} epochs: test {row['test_accuracy']:.1%} "
            f"in {row['train_seconds']:.0f} s"
        )
    if search.get("quick") or search.get("complete") is False:
        lines.append("(an incomplete or --quick search: run the tool for the full one)")
    import textwrap

    return [part for line in lines for part in textwrap.wrap(line, 80, subsequent_indent="     ")]
