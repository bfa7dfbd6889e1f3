"""Self-check of Exercise 4.4: predicted token and parameter counts of ViT variants."""

from __future__ import annotations

from dl4keras.check import _common

__all__ = ["vit_variants"]

_COUNTS = ("tokens", "parameters")


def _parts(model):
    """The model's parameters by part: {part: count} (they add up to count_params())."""
    parts = {}
    names = {
        "stem": lambda n: n.startswith("stem_conv_"),
        "patch projection": lambda n: n == "patch_embedding",
        "class token": lambda n: n == "class_token",
        "position embedding": lambda n: n == "position_embedding",
        "blocks": lambda n: n.startswith("encoder_block_"),
        "final LayerNorm": lambda n: n == "encoder_norm",
        "head": lambda n: n == "head",
    }
    for layer in model.layers:
        for part, matches in names.items():
            if matches(layer.name):
                parts[part] = parts.get(part, 0) + layer.count_params()
    rest = model.count_params() - sum(parts.values())
    if rest:
        parts["other"] = rest
    return parts


def _tokens(model):
    rows, cols = model.grid_size
    return rows * cols + model.num_prefix_tokens


def _token_mistakes(model):
    """(name, fix, the count that this mistake gives)."""
    rows, cols = model.grid_size
    ph, pw = model.patch_size
    extra = model.num_prefix_tokens
    out = [
        (
            "forgot the class token",
            "pooling='token' prepends one learned [CLS] token: tokens = patches + 1.",
            rows * cols,
        ),
        (
            "counted the patches per side, not in total",
            f"an {model.image_size[0]}×{model.image_size[1]} image in {ph}×{pw} patches is a "
            f"{rows}×{cols} grid: {rows * cols} patches (+ the class token).",
            rows + extra,
        ),
        (
            "counted the pixels of one patch, not the patches",
            f"a token is one patch: (image size / patch size)² patches, here {rows}×{cols}.",
            ph * pw + extra,
        ),
    ]
    if not extra:
        out.append(
            (
                "counted a class token that mean pooling does not have",
                "pooling='gap' averages the patch tokens: no class token is added.",
                rows * cols + 1,
            )
        )
    return out


def _parameter_mistakes(model, parts, baseline, base_parts):
    """(name, fix, the count that this mistake gives) for the usual counting slips."""
    total = model.count_params()
    d = model.hidden_dim
    per_block = parts.get("blocks", 0) // model.depth
    out = [
        (
            "ignored the position embedding's parameters",
            f"one learned vector of {d} per token: {_tokens(model)} × {d} = "
            f"{parts.get('position embedding', 0):,}.",
            total - parts.get("position embedding", 0),
        ),
        (
            "kept the baseline's position embedding",
            "the position embedding has one row per token, and the token count changes "
            "with the patch size.",
            total - parts.get("position embedding", 0) + base_parts.get("position embedding", 0),
        ),
        (
            "kept the baseline's patch projection",
            "the patch projection maps P×P×channels pixels to d features: "
            "(P·P·channels)·d weights + d biases, so it changes with P.",
            total - parts.get("patch projection", 0) + base_parts.get("patch projection", 0),
        ),
        (
            "assumed the parameter count does not change",
            "the patch size changes the patch projection and the position embedding; "
            f"each encoder block adds {per_block:,}.",
            baseline,
        ),
        (
            "scaled the whole model by the depth",
            "only the encoder blocks repeat: the stem, patch projection, tokens, final "
            "LayerNorm and head are there once.",
            round(baseline * model.depth / max(1, base_parts.get("_depth", 1))),
        ),
        (
            "forgot the convolutional stem",
            "each 3×3 stem convolution has 3·3·c_in·c_out weights + c_out biases.",
            total - parts.get("stem", 0),
        ),
        (
            "forgot the head",
            f"the Dense head has d·classes + classes = {parts.get('head', 0):,} parameters.",
            total - parts.get("head", 0),
        ),
        (
            "forgot the class token (or its position slot)",
            f"the class token is a learned vector of {d}, and it has its own row of "
            f"{d} in the position embedding.",
            total - d,
        ),
        (
            "forgot the final LayerNorm",
            f"LayerNormalization has a scale and an offset per feature: 2·{d}.",
            total - parts.get("final LayerNorm", 0),
        ),
    ]
    if model.depth == base_parts.get("_depth"):
        out = [entry for entry in out if entry[0] != "scaled the whole model by the depth"]
    return [(name, fix, value) for name, fix, value in out if value != total]


def _breakdown(model, parts):
    depth = model.depth
    text = []
    for part, count in parts.items():
        if part == "blocks":
            text.append(f"{depth} blocks × {count // depth:,}")
        else:
            text.append(f"{part} {count:,}")
    return " + ".join(text) + f" = {model.count_params():,}"


def _validate(predictions):
    import inspect

    from dl4keras.vit import VisionTransformer

    allowed = set(inspect.signature(VisionTransformer.__init__).parameters) - {"self", "kwargs"}
    if not isinstance(predictions, dict) or not predictions:
        raise ValueError(
            "`predictions` must be a non-empty dict {variant name: {'patch_size': ..., "
            f"'tokens': ..., 'parameters': ...}}}}. Received: predictions={predictions!r}"
        )
    for name, entry in predictions.items():
        if not isinstance(entry, dict):
            raise ValueError(
                f"Each prediction must be a dict, e.g. {{'patch_size': 1, 'tokens': 65}}. "
                f"Received: predictions[{name!r}]={entry!r}"
            )
        if not any(key in entry for key in _COUNTS):
            raise ValueError(
                f"Predict 'tokens' and/or 'parameters' for each variant. "
                f"Received: predictions[{name!r}]={entry!r}"
            )
        unknown = sorted(set(entry) - allowed - set(_COUNTS))
        if unknown:
            raise ValueError(
                f"Unknown key(s) {unknown} in predictions[{name!r}]: use 'tokens', "
                f"'parameters' and VisionTransformer arguments (patch_size, depth, ...). "
                f"Received: {entry!r}"
            )
        for key in _COUNTS:
            value = entry.get(key)
            if key in entry and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(
                    f"predictions[{name!r}][{key!r}] must be an integer (your prediction). "
                    f"Received: {value!r}"
                )


def vit_variants(predictions, config_name="vit_digits", verbose=True, **base):
    """Checks your predicted token and parameter counts of ViT variants.

    The self-check of Exercise 4.4 (patch size and depth): before training
    the variants, predict how many tokens each one's encoder reads and how
    many parameters it has. The check builds every variant
    (`dl4keras.vit.build(config_name, **base, **variant)`), compares, and
    names the usual slips: forgetting the class token, counting the patches
    per side instead of in total, ignoring the position embedding's
    parameters (or keeping the baseline's when the patch size changes),
    keeping the patch projection's size, scaling the whole model by depth,
    forgetting the stem or the head. A failing count comes with the
    model's parameter breakdown by part.

    Args:
        predictions: A dict `{variant name: {arguments and predictions}}`:
            `VisionTransformer` arguments that define the variant (e.g.
            `patch_size=1` or `depth=8`; none for the baseline) and your
            predicted `tokens` and/or `parameters` (integers).
        config_name: The configuration the variants start from.
        verbose: Print the feedback.
        **base: Arguments shared by all variants (the baseline), e.g.
            `conv_stem=(32, 32), pooling="token"` as in the tutorial's
            `BEST` recipe.

    Returns:
        `True` if every prediction is right, `False` otherwise.

    Raises:
        ValueError: If `predictions` is not such a dict.

    Examples:
        >>> from dl4keras import check
        >>> check.vit_variants(
        ...     {"patch 4": {"patch_size": 4, "tokens": 4}}, pooling="token"
        ... )  # doctest: +NORMALIZE_WHITESPACE
        Checking your predictions for 1 ViT variant of 'vit_digits' (pooling='token').
        [FAIL] patch 4: tokens: you predicted 4, the model reads 5
          FIX: forgot the class token: pooling='token' prepends one learned [CLS]
               token: tokens = patches + 1.
        0/1 predictions right; fix: patch 4 tokens.
        False
    """
    from dl4keras.vit import build

    _validate(predictions)
    baseline_model = build(config_name, **base)
    base_parts = dict(_parts(baseline_model), _depth=baseline_model.depth)
    baseline = baseline_model.count_params()
    settings = ", ".join(f"{k}={v!r}" for k, v in base.items())
    n = len(predictions)
    lines = _common.wrapped(
        "",
        f"Checking your predictions for {n} ViT variant{'s' * (n > 1)} of {config_name!r}"
        + (f" ({settings})." if settings else "."),
    )
    passed, failed = 0, []
    for name, entry in predictions.items():
        config = {k: v for k, v in entry.items() if k not in _COUNTS}
        model = build(config_name, **{**base, **config})
        parts = _parts(model)
        actual = {"tokens": _tokens(model), "parameters": model.count_params()}
        for key in _COUNTS:
            if key not in entry:
                continue
            guess, true = entry[key], actual[key]
            if guess == true:
                passed += 1
                lines += _common.wrapped("[PASS] ", f"{name}: {key}: {true:,}")
                continue
            failed.append(f"{name} {key}")
            what = "reads" if key == "tokens" else "has"
            lines += _common.wrapped(
                "[FAIL] ", f"{name}: {key}: you predicted {guess:,}, the model {what} {true:,}"
            )
            if key == "tokens":
                mistakes = _token_mistakes(model)
            else:
                mistakes = _parameter_mistakes(model, parts, baseline, base_parts)
            found = [(m, fix) for m, fix, value in mistakes if value == guess]
            for mistake, fix in found[:2]:
                lines += _common.wrapped("  FIX: ", f"{mistake}: {fix}")
            if not found and key == "tokens":
                rows, cols = model.grid_size
                lines += _common.wrapped(
                    "  FIX: ",
                    f"tokens = (height / patch) × (width / patch) patches = {rows}×{cols}"
                    + (", + 1 class token." if model.num_prefix_tokens else " (no class token)."),
                )
            if key == "parameters":
                lines += _common.wrapped("  PARTS: ", _breakdown(model, parts))
    total = passed + len(failed)
    if failed:
        lines += _common.wrapped(
            "", f"{passed}/{total} predictions right; fix: {', '.join(failed)}."
        )
    else:
        lines += _common.wrapped("", f"All {total} predictions right: you can count a ViT.")
    if verbose:
        print("\n".join(lines))
    return not failed
