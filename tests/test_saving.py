"""A `.keras` file saved with any dl4keras class loads in a fresh process after `import dl4keras`.

One subprocess builds and saves one small model per serializable class (and a
model compiled with `LayerwiseLR`), with its outputs on fixed inputs; a second,
fresh subprocess imports nothing but `keras`, `numpy` and `dl4keras`, loads each
file with `safe_mode=True` and compares the outputs.
"""

import json
import subprocess
import sys
import textwrap

SAVE = textwrap.dedent(
    r"""
    import json, sys
    import numpy as np
    import keras
    import dl4keras
    from dl4keras import backbones, dann, ensemble, gpt, layerwise_lr, training, transformer, vit

    keras.utils.set_random_seed(0)
    out = sys.argv[1]
    rng = np.random.default_rng(0)

    def wrap(layer, shape, **call):
        inputs = keras.Input(shape)
        return keras.Model(inputs, layer(inputs, **call))

    def mha():
        q = keras.Input((5, 8))
        return keras.Model(q, dl4keras.MultiHeadAttention(2, 4)(q, q))

    def with_kernel(layer, shape):
        # Layers with no weights of their own get a Dense after them, so the
        # saved file holds weights and the outputs depend on them.
        inputs = keras.Input(shape)
        return keras.Model(inputs, keras.layers.Dense(3)(layer(inputs)))

    builders = {
        "MultiHeadAttention": lambda: (mha(), (2, 5, 8)),
        "TransformerEncoderBlock": lambda: (
            wrap(transformer.TransformerEncoderBlock(8, 2, 16), (5, 8)), (2, 5, 8)),
        "TransformerDecoderBlock": lambda: (
            wrap(transformer.TransformerDecoderBlock(8, 2, 16), (5, 8)), (2, 5, 8)),
        "gelu_approximate": lambda: (
            wrap(keras.layers.Dense(3, activation=transformer.gelu_approximate), (6,)), (2, 6)),
        # Token ids, not normal floats: a builder may return the inputs themselves.
        "GPT": lambda: (
            gpt.GPT(20, 8, 8, 1, 2, 16, activation="gelu_approximate"),
            rng.integers(0, 20, size=(2, 8)).astype("int32")),
        "SinusoidalPositionEncoding": lambda: (
            with_kernel(transformer.SinusoidalPositionEncoding(), (5, 8)), (2, 5, 8)),
        "PositionEmbedding": lambda: (
            wrap(transformer.PositionEmbedding(5), (5, 8)), (2, 5, 8)),
        "PatchPositionEmbedding": lambda: (
            wrap(transformer.PatchPositionEmbedding((2, 2), use_class_token=True), (5, 8)),
            (2, 5, 8)),
        "StochasticDepth": lambda: (
            with_kernel(transformer.StochasticDepth(0.2), (5, 8)), (2, 5, 8)),
        "PatchEmbedding": lambda: (wrap(vit.PatchEmbedding(2, 8), (4, 4, 3)), (2, 4, 4, 3)),
        "ClassToken": lambda: (wrap(vit.ClassToken(), (4, 8)), (2, 4, 8)),
        "ClassTokenPooling": lambda: (with_kernel(vit.ClassTokenPooling(), (4, 8)), (2, 4, 8)),
        "VisionTransformer": lambda: (
            vit.build("vit_digits", depth=1, rescaling=(1 / 16, 0.0)), (2, 8, 8, 1)),
        "GradientReversal": lambda: (
            with_kernel(dann.GradientReversal(0.5), (6,)), (2, 6)),
        "DANN": lambda: (
            dann.DANN(keras.Sequential([keras.Input((6,)), keras.layers.Dense(4)]), 3),
            (2, 6)),
        "Ensemble": lambda: (
            ensemble.Ensemble(
                [keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)]) for _ in range(2)],
                method="weighted", weights=[1.0, 2.0], from_logits=True),
            (2, 6)),
        "Preprocess": lambda: (
            with_kernel(backbones.Preprocess("caffe"), (4, 4, 3)), (2, 4, 4, 3)),
    }

    def layerwise():
        model = keras.Sequential(
            [keras.Input((6,)), keras.layers.Dense(4, name="body"),
             keras.layers.Dense(3, name="head")]
        )
        optimizer = layerwise_lr.LayerwiseLR(
            keras.optimizers.Adam(1e-2), multipliers={"body": 0.1, "head": 1.0}
        )
        model.compile(optimizer, "mse")
        model.fit(rng.normal(size=(8, 6)), rng.normal(size=(8, 3)), epochs=1, verbose=0)
        return model, (2, 6)

    def compiled_with(schedule):
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
        model.compile(keras.optimizers.Adam(schedule), "mse")
        model.fit(rng.normal(size=(8, 6)), rng.normal(size=(8, 3)), epochs=1, verbose=0)
        return model, (2, 6)

    builders["OneCycle"] = lambda: compiled_with(training.OneCycle(1e-2, total_steps=10))
    builders["PerUpdateSchedule"] = lambda: compiled_with(
        training.PerUpdateSchedule(training.OneCycle(1e-2, total_steps=10), 2))

    registered = {name.split(">", 1)[1] for name in dl4keras.serializable_classes()}
    missing = registered - set(builders) - {"LayerwiseLR"}
    assert not missing, f"no saving test builds {sorted(missing)}: add a builder"
    builders["LayerwiseLR"] = layerwise

    manifest = {}
    for name, build in sorted(builders.items()):
        model, shape = build()
        x = shape if isinstance(shape, np.ndarray) else rng.normal(size=shape).astype("float32")
        y = keras.ops.convert_to_numpy(model(x, training=False))  # torch: no np.asarray
        np.save(f"{out}/{name}.x.npy", x)
        np.save(f"{out}/{name}.y.npy", y)
        model.save(f"{out}/{name}.keras")
        manifest[name] = type(model).__name__
    print(json.dumps(manifest))
    """
)

LOAD = textwrap.dedent(
    r"""
    import json, sys
    import numpy as np
    import keras
    import dl4keras

    out = sys.argv[1]
    report = {}
    for name in json.loads(sys.argv[2]):
        model = keras.models.load_model(f"{out}/{name}.keras", safe_mode=True)
        x, y = np.load(f"{out}/{name}.x.npy"), np.load(f"{out}/{name}.y.npy")
        got = keras.ops.convert_to_numpy(model(x, training=False))
        optimizer = getattr(model, "optimizer", None)
        optimizer = type(optimizer).__name__ if optimizer is not None else None
        report[name] = [type(model).__name__, float(np.max(np.abs(got - y))), optimizer]
    print(json.dumps(report))
    """
)


def _run(code, *args):
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_serializable_class_loads_in_a_fresh_process(tmp_path):
    saved = _run(SAVE, str(tmp_path))
    assert {"VisionTransformer", "MultiHeadAttention", "LayerwiseLR", "DANN"} <= set(saved)
    loaded = _run(LOAD, str(tmp_path), json.dumps(sorted(saved)))
    assert set(loaded) == set(saved)
    for name, (model_class, difference, _) in loaded.items():
        assert model_class == saved[name], name
        assert difference == 0.0, f"{name}: outputs differ by {difference}"
    assert loaded["LayerwiseLR"][2] == "LayerwiseLR"
