"""Tests for dl4keras.vit: the model, its configs, mixed precision, rollout, KerasHub weights."""

import keras
import numpy as np
import pytest

from dl4keras import vit
from dl4keras.vit import (
    CONFIGS,
    ClassToken,
    PatchEmbedding,
    VisionTransformer,
    attention_rollout,
    load_keras_hub_weights,
    rollout_matrix,
)

# A tiny model: 8×8 grey images, 2×2 patches → 16 tokens (+1 class token).
TINY = dict(depth=2, hidden_dim=16, num_heads=2, mlp_dim=32)


def to_numpy(x):
    """A backend tensor (or array) as NumPy; on PyTorch `np.asarray` refuses tensors with grad."""
    return keras.ops.convert_to_numpy(x)


def dtype_of(x):
    """A tensor's dtype as a Keras dtype name ("float32"), on every backend."""
    return keras.backend.standardize_dtype(x.dtype)


def images(n=2, size=8, channels=1, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, size, size, channels)).astype("float32")


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    return vit.build("vit_digits", **TINY)


# --------------------------------------------------------------------- layers


def test_patch_embedding_is_a_linear_map_of_each_patch():
    layer = PatchEmbedding(patch_size=2, hidden_dim=3)
    x = images(1, size=4)
    tokens = to_numpy(layer(x))
    assert tokens.shape == (1, 4, 3)
    kernel, bias = (w.numpy() for w in layer.projection.weights)
    # Token 1 is the patch at row 0, columns 2–3 (row-major order).
    patch = x[0, 0:2, 2:4, :]
    np.testing.assert_allclose(
        tokens[0, 1], np.einsum("hwc,hwcd->d", patch, kernel) + bias, atol=1e-5
    )
    with pytest.raises(ValueError, match="width must be divisible.*6 is not divisible by 4"):
        PatchEmbedding(4, 8)(np.zeros((1, 8, 6, 1), "float32"))
    with pytest.raises(ValueError, match="built for images with 1 channel.*have 3"):
        layer(np.zeros((1, 4, 4, 3), "float32"))


def test_class_token_prepends():
    layer = ClassToken()
    out = to_numpy(layer(np.ones((2, 3, 4), "float32")))
    assert out.shape == (2, 4, 4)
    np.testing.assert_allclose(out[:, 0], np.broadcast_to(layer.token.numpy()[0], (2, 4)))
    np.testing.assert_allclose(out[:, 1:], 1.0)


# ---------------------------------------------------------------------- model


def test_named_configs():
    assert {k: CONFIGS[k]["hidden_dim"] for k in ("vit_tiny", "vit_small", "vit_base")} == {
        "vit_tiny": 192,
        "vit_small": 384,
        "vit_base": 768,
    }
    for name, heads, mlp in (("vit_tiny", 3, 768), ("vit_small", 6, 1536), ("vit_base", 12, 3072)):
        c = CONFIGS[name]
        assert (c["patch_size"], c["depth"], c["num_heads"], c["mlp_dim"]) == (16, 12, heads, mlp)
    assert {"vit_digits", "vit_cifar"} <= set(vit.list_configs())
    model = VisionTransformer.from_config_name("vit_cifar", depth=1, num_classes=5)
    assert model.name == "vit_cifar" and model.output_shape == (None, 5)
    assert model.grid_size == (8, 8) and model.input_shape == (None, 32, 32, 3)
    with pytest.raises(ValueError, match="Unknown ViT configuration 'vit_huge'"):
        vit.build("vit_huge")


def test_vit_tiny_parameter_count():
    # DeiT-Ti: 5,717,416 parameters with a 1000-class head.
    assert vit.build("vit_tiny", num_classes=1000).count_params() == 5_717_416


def test_forward_shapes_and_pooling(tiny):
    x = images(3)
    assert tiny(x).shape == (3, 10)
    assert dtype_of(tiny(x)) == "float32"
    features = vit.build("vit_digits", include_top=False, **TINY)
    assert features(x).shape == (3, 16)
    gap = vit.build("vit_digits", pooling="gap", **TINY)
    assert gap(x).shape == (3, 10)
    assert gap.encode(x).shape == (3, 16, 16)  # no class token
    assert tiny.encode(x).shape == (3, 17, 16)


def test_save_load_roundtrip(tiny, tmp_path):
    path = tmp_path / "vit.keras"
    tiny.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, VisionTransformer)
    assert loaded.get_config() == tiny.get_config()
    x = images(2)
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(tiny(x)), atol=1e-6)


def test_conv_stem_sees_neighbouring_pixels_and_saves(tmp_path):
    keras.utils.set_random_seed(0)
    stem = vit.build("vit_digits", conv_stem=(4, 6), **TINY)
    assert [layer.filters for layer in stem.stem_layers] == [4, 6]
    assert stem.get_layer("patch_embedding").projection.kernel.shape == (2, 2, 6, 16)
    assert stem.encode(images(1)).shape == (1, 17, 16)  # the same token grid
    # One pixel changed, (2, 2), in the 2×2 patch (1, 1), token 5 of the 4×4
    # grid: a plain ViT changes that token only; two 3×3 convolutions spread
    # the pixel over a 5×5 window, so the 3×3 patches around it change.
    x = images(1)
    y = x.copy()
    y[0, 2, 2, 0] += 1.0
    plain = vit.build("vit_digits", **TINY)
    assert _changed_tokens(plain, x, y) == [5]
    assert _changed_tokens(stem, x, y) == [0, 1, 2, 4, 5, 6, 8, 9, 10]
    path = tmp_path / "stem.keras"
    stem.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.conv_stem == (4, 6)
    np.testing.assert_allclose(to_numpy(loaded(x)), to_numpy(stem(x)), atol=1e-6)


def _changed_tokens(model, x, y):
    """The patch tokens (after the patch embedding) that differ between x and y."""
    tokens = []
    for images_ in (x, y):
        for layer in model.stem_layers:
            images_ = layer(images_)
        tokens.append(to_numpy(model.get_layer("patch_embedding")(images_))[0])
    return np.flatnonzero(np.abs(tokens[1] - tokens[0]).max(-1) > 1e-6).tolist()


def test_stochastic_depth_rule():
    model = vit.build(
        "vit_digits", depth=3, hidden_dim=8, num_heads=2, mlp_dim=8, stochastic_depth=0.2
    )
    assert [b.stochastic_depth for b in model.encoder_blocks] == pytest.approx([0.0, 0.1, 0.2])


def test_bad_arguments_and_inputs(tiny):
    with pytest.raises(ValueError, match=r"30 is not divisible by 4 \(30 / 4 = 7.5\)"):
        VisionTransformer(image_size=30, patch_size=4, **TINY)
    with pytest.raises(ValueError, match=r"hidden_dim=20, num_heads=3 \(20 / 3 = 6.66667\)"):
        VisionTransformer(
            image_size=8, patch_size=2, depth=1, hidden_dim=20, num_heads=3, mlp_dim=8
        )
    with pytest.raises(ValueError, match=r"conv_stem=32\b"):
        vit.build("vit_digits", conv_stem=32, **TINY)
    with pytest.raises(ValueError, match=r"conv_stem=\(32, 0\)"):
        vit.build("vit_digits", conv_stem=(32, 0), **TINY)
    with pytest.raises(ValueError, match="pooling='mean'"):
        vit.build("vit_digits", pooling="mean", **TINY)
    with pytest.raises(ValueError, match="dtype_policy='float64'"):
        vit.build("vit_digits", dtype_policy="float64", **TINY)
    with pytest.raises(ValueError, match=r"\(batch, 8, 8, 1\).*images.shape=\(2, 8, 8, 3\)"):
        tiny(images(2, channels=3))
    with pytest.raises(ValueError, match=r"images.shape=\(2, 16, 16, 1\)"):
        tiny.encode(images(2, size=16))


def test_mixed_float16_fit_uses_loss_scaling():
    keras.utils.set_random_seed(0)
    model = vit.build(
        "vit_digits",
        dtype_policy="mixed_float16",
        depth=2,
        hidden_dim=8,
        num_heads=2,
        mlp_dim=8,
        dropout=0.1,
        attention_dropout=0.1,
        stochastic_depth=0.1,
    )
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.get_layer("encoder_block_0").compute_dtype == "float16"
    y = np.arange(8) % 10
    history = model.fit(images(8), y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    assert dtype_of(model(images(2))) == "float32"
    assert model.get_config()["dtype_policy"] == "mixed_float16"


def test_global_policy_is_the_default():
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_bfloat16")
        model = vit.build("vit_digits", depth=1, hidden_dim=8, num_heads=2, mlp_dim=8)
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("encoder_block_0").compute_dtype == "bfloat16"


def test_mixed_bfloat16_outputs_float32():
    model = vit.build(
        "vit_digits", dtype_policy="mixed_bfloat16", depth=1, hidden_dim=8, num_heads=2, mlp_dim=8
    )
    assert dtype_of(model(images(2))) == "float32"
    assert all(v.dtype == "float32" for v in model.weights)


def test_with_image_size(tiny):
    same = tiny.with_image_size(8)
    x = images(2)
    np.testing.assert_allclose(to_numpy(same(x)), to_numpy(tiny(x)), atol=1e-6)
    bigger = tiny.with_image_size(12)
    assert bigger.grid_size == (6, 6)
    assert bigger(images(2, size=12)).shape == (2, 10)
    old_cls = tiny.get_layer("position_embedding").embeddings.numpy()[0]
    np.testing.assert_allclose(
        bigger.get_layer("position_embedding").embeddings.numpy()[0], old_cls
    )


# ------------------------------------------------------------------ attention


def test_attention_scores(tiny):
    scores = tiny.attention_scores(images(3), batch_size=2)
    assert len(scores) == 2
    assert all(s.shape == (3, 2, 17, 17) for s in scores)
    np.testing.assert_allclose(scores[0].sum(-1), 1.0, atol=1e-5)
    maps = attention_rollout(scores, grid_size=tiny.grid_size)
    assert maps.shape == (3, 4, 4)


def test_rollout_identity_attention():
    eye = np.broadcast_to(np.eye(5), (2, 3, 5, 5))  # batch 2, 3 heads, 5 tokens
    np.testing.assert_allclose(rollout_matrix([eye, eye]), np.broadcast_to(np.eye(5), (2, 5, 5)))
    # GAP: the mean of the identity's rows is uniform.
    gap = attention_rollout([eye, eye], grid_size=(1, 5), has_class_token=False)
    np.testing.assert_allclose(gap, np.full((2, 1, 5), 0.2))
    # Class token attending only to itself: nothing flows in from the patches.
    cls = attention_rollout([eye], grid_size=(2, 2))
    np.testing.assert_allclose(cls, 0.0)


def test_rollout_uniform_attention_is_uniform_over_patches():
    uniform = np.full((1, 2, 5, 5), 0.2)
    maps = attention_rollout([uniform, uniform, uniform])
    assert maps.shape == (1, 2, 2)
    np.testing.assert_allclose(maps, maps.mean())


def test_rollout_known_two_layer_example():
    eye = np.eye(3)
    # Layer 1: head a sends the class token to itself, head b to patch 1:
    # mean row 0 = [.5, .5, 0]. Layer 2 (one head): class token → patch 2.
    h_a, h_b = eye.copy(), eye.copy()
    h_b[0] = [0, 1, 0]
    layer1 = np.stack([h_a, h_b])[None]
    layer2 = eye.copy()
    layer2[0] = [0, 0, 1]
    layer2 = layer2[None, None]
    # Â1 row 0 = ([.5,.5,0] + [1,0,0]) / 2 = [.75, .25, 0]; Â2 row 0 = [.5, 0, .5];
    # R = Â2·Â1, row 0 = .5·[.75,.25,0] + .5·[0,0,1] = [.375, .125, .5].
    r = rollout_matrix([layer1, layer2])
    np.testing.assert_allclose(r[0, 0], [0.375, 0.125, 0.5])
    np.testing.assert_allclose(r.sum(-1), 1.0)
    maps = attention_rollout([layer1[0], layer2[0]], grid_size=(1, 2))  # single example
    np.testing.assert_allclose(maps, [[0.125, 0.5]])


def test_rollout_bad_inputs():
    with pytest.raises(ValueError, match="do not form a square grid"):
        attention_rollout([np.full((1, 1, 4, 4), 0.25)])
    with pytest.raises(ValueError, match="head_fusion='median'"):
        rollout_matrix([np.eye(3)[None]], head_fusion="median")


# ------------------------------------------------------------------- KerasHub


def test_keras_hub_weight_parity():
    keras_hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(1)
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3),
        patch_size=8,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        mlp_dim=64,
    )
    model = VisionTransformer(
        image_size=32,
        patch_size=8,
        hidden_dim=32,
        depth=2,
        num_heads=2,
        mlp_dim=64,
        include_top=False,
    )
    x = images(2, size=32, channels=3)
    expected = to_numpy(backbone(x))  # (2, 17, 32) after the final LayerNorm
    assert np.abs(to_numpy(model.encode(x)) - expected).max() > 1e-2  # different before
    load_keras_hub_weights(model, backbone)
    assert np.abs(to_numpy(model.encode(x)) - expected).max() <= 1e-4
    assert np.abs(to_numpy(model(x)) - expected[:, 0]).max() <= 1e-4  # pooled features
    # Another resolution: the position embeddings are interpolated.
    bigger = VisionTransformer(
        image_size=48,
        patch_size=8,
        hidden_dim=32,
        depth=2,
        num_heads=2,
        mlp_dim=64,
        num_classes=3,
    )
    load_keras_hub_weights(bigger, backbone)
    assert bigger(images(1, size=48, channels=3)).shape == (1, 3)
    with pytest.raises(ValueError, match=r"conv_stem=\(8,\) \(backbone: \(\)\)"):
        load_keras_hub_weights(
            VisionTransformer(
                image_size=32,
                patch_size=8,
                hidden_dim=32,
                depth=2,
                num_heads=2,
                mlp_dim=64,
                conv_stem=(8,),
            ),
            backbone,
        )
    with pytest.raises(ValueError, match=r"mlp_dim=128 \(backbone: 64\)"):
        load_keras_hub_weights(
            VisionTransformer(
                image_size=32, patch_size=8, hidden_dim=32, depth=2, num_heads=2, mlp_dim=128
            ),
            backbone,
        )


def test_keras_hub_input_scaling_is_carried_over():
    """With the preset's image converter, the model takes the raw images the pipeline takes."""
    keras_hub = pytest.importorskip("keras_hub")
    from dl4keras.vit import keras_hub_rescaling

    keras.utils.set_random_seed(2)
    config = dict(patch_size=8, hidden_dim=32, num_heads=2, mlp_dim=64)
    backbone = keras_hub.models.ViTBackbone(image_shape=(16, 16, 3), num_layers=1, **config)
    converter = keras_hub.layers.ViTImageConverter(scale=1 / 127.5, offset=-1.0)
    assert keras_hub_rescaling(converter) == pytest.approx((1 / 127.5, -1.0))
    per_channel = keras_hub.layers.ViTImageConverter(scale=[0.1, 0.2, 0.3], offset=[1, 2, 3])
    scale, offset = keras_hub_rescaling(per_channel)
    assert scale == pytest.approx((0.1, 0.2, 0.3)) and offset == pytest.approx((1, 2, 3))
    with pytest.raises(ValueError, match=r"rescaling=None \(backbone: \(0\.0078"):
        load_keras_hub_weights(
            VisionTransformer(image_size=16, depth=1, include_top=False, **config),
            backbone,
            image_converter=converter,
        )
    model = VisionTransformer(
        image_size=16,
        depth=1,
        include_top=False,
        rescaling=keras_hub_rescaling(converter),
        **config,
    )
    load_keras_hub_weights(model, backbone, image_converter=converter)
    raw = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    expected = to_numpy(backbone(to_numpy(converter(raw))))[:, 0]
    assert np.abs(to_numpy(model(raw)) - expected).max() <= 1e-4
    with pytest.raises(ValueError, match="must be a KerasHub ImageConverter"):
        keras_hub_rescaling("scale by 255")


def test_rescaling_argument():
    model = VisionTransformer.from_config_name("vit_digits", depth=1, rescaling=(1 / 16, 0))
    x = images(2)
    plain = VisionTransformer.from_config_name("vit_digits", depth=1)
    plain.set_weights(model.get_weights())
    np.testing.assert_allclose(to_numpy(model(x * 16.0)), to_numpy(plain(x)), atol=1e-5)
    np.testing.assert_allclose(
        to_numpy(model.encode(x * 16.0)), to_numpy(plain.encode(x)), atol=1e-5
    )
    assert model.get_config()["rescaling"] == [0.0625, 0.0]
    assert VisionTransformer.from_config(model.get_config()).rescaling == (0.0625, 0.0)
    for bad in ((1.0,), (1.0, [1, 2]), "0-255", (True, 0.0)):
        with pytest.raises(ValueError, match="argument `rescaling`"):
            VisionTransformer.from_config_name("vit_digits", rescaling=bad)


# ------------------------------------------------------------ receptive field


@pytest.mark.parametrize("stem, patch", [((), 2), ((4,), 2), ((4, 4), 2), ((4, 4, 4), 1)])
def test_patch_receptive_field_matches_a_perturbation_measurement(stem, patch):
    keras.utils.set_random_seed(0)
    model = vit.build("vit_digits", conv_stem=stem, patch_size=patch, **TINY)
    x = images(1)
    token = model.grid_size[1] + 1  # the patch at row 1, column 1
    seen = np.zeros((8, 8), bool)
    for r in range(8):
        for c in range(8):
            y = x.copy()
            y[0, r, c, 0] += 1.0
            seen[r, c] = token in _changed_tokens(model, x, y)
    rows, cols = np.nonzero(seen)
    field = model.patch_receptive_field
    assert field == (patch + 2 * len(stem),) * 2
    # Clipped by the image border at the top left: the window starts at
    # max(0, patch - len(stem)) and ends at 2 * patch - 1 + len(stem).
    assert rows.max() == min(7, 2 * patch - 1 + len(stem))
    assert rows.max() - rows.min() + 1 == min(field[0], rows.max() + 1)
    assert cols.max() - cols.min() + 1 == min(field[1], cols.max() + 1)


# ---------------------------------------------------------------- recipes


def digits_like(n=40, seed=0):
    """Two easy classes: bright left half vs bright right half (+ noise)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.uniform(0, 0.3, size=(n, 8, 8, 1)).astype("float32")
    x[y == 0, :, :4] += 0.7
    x[y == 1, :, 4:] += 0.7
    return x, y


def test_recipe_completes_and_validates():
    assert vit.recipe() == vit.PLAIN and vit.recipe() is not vit.PLAIN
    r = vit.recipe(schedule=True, conv_stem=[8], weight_decay=1)
    assert r["conv_stem"] == (8,) and r["weight_decay"] == 1.0 and r["pooling"] == "gap"
    for bad, text in [
        (dict(sched=True), "Unknown recipe ingredient"),
        (dict(pooling="max"), "pooling"),
        (dict(smoothing=1.5), "smoothing"),
        (dict(shift=-0.1), "shift"),
        (dict(weight_decay="0.1"), "weight_decay"),
    ]:
        with pytest.raises(ValueError, match=text):
            vit.recipe(**bad)


def test_recipe_ladder_adds_one_ingredient_at_a_time():
    names = list(vit.RECIPES)
    assert names[0].startswith("plain") and vit.BEST == names[-1]
    assert vit.RECIPES[names[0]] == vit.PLAIN
    for before, after in zip(names, names[1:]):
        changed = {k for k in vit.PLAIN if vit.RECIPES[before][k] != vit.RECIPES[after][k]}
        # one ingredient, AdamW + smoothing (two regularisers), or shifts swapped for the stem
        assert changed in (
            {"schedule"},
            {"weight_decay", "smoothing"},
            {"pooling"},
            {"shift"},
            {"shift", "conv_stem"},
        ), (after, changed)
    assert vit.RECIPES[vit.BEST]["conv_stem"] == (32, 32)


def test_fit_recipe_trains_any_classifier_and_uses_the_schedule(monkeypatch):
    from dl4keras.vit import recipes

    calls = []
    real = recipes.warmup_cosine
    monkeypatch.setattr(
        recipes, "warmup_cosine", lambda *a, **k: calls.append((a, k)) or real(*a, **k)
    )
    x, y = digits_like()
    keras.utils.set_random_seed(0)
    cnn = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    seconds = vit.fit_recipe(
        cnn, dict(schedule=True, smoothing=0.1, shift=0.125), 10, x, y, batch_size=8
    )
    assert seconds > 0
    assert vit.accuracy(cnn, x, y) == 1.0
    # 10 epochs of 5 steps; a tenth of them warm up to the peak.
    assert calls == [((2e-3,), dict(total_steps=50, warmup_steps=5))]
    # The augmentation sits in the training wrapper, not in the model.
    assert [type(layer).__name__ for layer in cnn.layers] == ["Flatten", "Dense"]


def test_train_vit_builds_the_recipe_and_is_seeded():
    x, y = digits_like(16)
    best = vit.RECIPES[vit.BEST]
    a, _ = vit.train_vit(best, 1, x, y, seed=3, config_name="vit_digits", **TINY)
    b, _ = vit.train_vit(best, 1, x, y, seed=3, **TINY)
    assert a.conv_stem == (32, 32) and a.pooling == "token" and a.depth == TINY["depth"]
    np.testing.assert_allclose(to_numpy(a(x[:2])), to_numpy(b(x[:2])), atol=1e-5)
    gap, _ = vit.train_vit(vit.PLAIN, 1, x, y, fit_options=dict(batch_size=4), **TINY)
    assert gap.pooling == "gap" and gap.conv_stem == ()


def test_compare_recipes_rows():
    x, y = digits_like(20)
    rows = vit.compare_recipes({"plain": vit.PLAIN}, 1, x, y, x[:10], y[:10], seeds=(0, 1), **TINY)
    assert [(r["recipe"], r["seed"]) for r in rows] == [("plain", 0), ("plain", 1)]
    for r in rows:
        assert r["val_errors"] == round((1 - r["val_accuracy"]) * 10)
        assert 0 <= r["train_accuracy"] <= 1 and r["train_seconds"] > 0


def test_accuracy_and_images_per_second():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Identity()])
    x = np.eye(3, dtype="float32")
    assert vit.accuracy(model, x, [0, 1, 1]) == pytest.approx(2 / 3)
    assert vit.images_per_second(model, x, repeats=2) > 0
    with pytest.raises(ValueError, match="repeats"):
        vit.images_per_second(model, x, repeats=0)


def test_recipe_search_results_and_table(tmp_path):
    search = dict(
        script="tools/vit_recipe_search.py",
        date="2026-01-01T00:00:00+00:00",
        commit="abc1234",
        data=dict(fit_images=1077, val_images=270, batch_size=64, peak_learning_rate=2e-3),
        runs=[
            dict(
                group="stem",
                run="stem (32, 32), 20 epochs",
                seed=s,
                val_errors=e,
                val_images=270,
                epochs=20,
            )
            for s, e in ((0, 4), (1, 5))
        ],
        test_runs=[dict(run="class token", seed=0, test_accuracy=0.97, test_images=450)],
        anchors=[
            dict(
                run="KerasHub ViTBackbone",
                recipe="plain",
                epochs=20,
                test_accuracy=0.9,
                train_seconds=30.0,
            )
        ],
    )
    path = tmp_path / "search.json"
    path.write_text(__import__("json").dumps(search))
    loaded = vit.recipe_search_results(path)
    assert loaded == search
    lines = vit.search_table(loaded)
    assert lines[0].startswith("Recipe search (tools/vit_recipe_search.py), 2026-01-01")
    assert any(
        line.strip().startswith("stem (32, 32), 20 epochs") and "4, 5" in line for line in lines
    )
    assert any("class token" in line and "97.0%" in line for line in lines)
    assert all(len(line) <= 80 for line in lines)
    with pytest.raises(FileNotFoundError):
        vit.recipe_search_results(tmp_path / "missing.json")


def test_shipped_recipe_search_is_complete():
    search = vit.recipe_search_results()
    assert search["script"] == "tools/vit_recipe_search.py"
    assert search["complete"] is True and search["quick"] is False
    groups = {r["group"] for r in search["runs"]}
    assert {"no stem, 40 epochs", "augmentation, no stem", "stem"} <= groups
    assert len(search["anchors"]) == 2 and search["test_runs"]
    assert all(len(line) <= 80 for line in vit.search_table(search))
