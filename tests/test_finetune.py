"""Tests for dl4keras.finetune: blocks, freeze/unfreeze, the BatchNorm trap, GradualUnfreezing."""

import keras
import numpy as np
import pytest

from dl4keras import backbones, finetune, tiny_resnet
from dl4keras.finetune import (
    GradualUnfreezing,
    block_name,
    freeze,
    layer_blocks,
    trainable_summary,
    unfreeze,
)

BLOCK3 = ["block3_1_conv", "block3_proj_conv", "block3_2_conv"]


@pytest.fixture(scope="module")
def shared():
    """The documented model: TinyResNet (random weights, 32x32) + a 5-class head."""
    keras.utils.set_random_seed(0)
    extractor = backbones.build("tiny_resnet", weights=None, input_shape=(32, 32, 3))
    return backbones.attach_head(extractor, 5)


@pytest.fixture
def clf(shared):
    """`shared`, frozen (tests set their own trainable state; building is the slow part)."""
    return freeze(shared)


def small_classifier():
    """Same structure (nested backbone, stem/block1/block2 + head), narrow and 16x16: fast fits."""
    keras.utils.set_random_seed(0)
    backbone = tiny_resnet.build_tiny_resnet((16, 16, 3), widths=(8, 16), name="tiny")
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(backbone(inputs))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(x))


def data(n, size, classes):
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (n, size, size, 3)).astype("float32"), np.arange(n) % classes


def leaf(model, name):
    return next(layer for layer, _ in finetune._leaves(model) if layer.name == name)


def trainable_names(model):
    ids = {id(v) for v in model.trainable_weights}
    return [x.name for x, _ in finetune._leaves(model) if any(id(v) in ids for v in x.weights)]


class WeightRecorder(keras.callbacks.Callback):
    """Weights at the start of training (key -1) and at the end of each epoch."""

    def __init__(self):
        super().__init__()
        self.weights = {}

    def _record(self, key):
        self.weights[key] = {v.path: np.array(v.numpy()) for v in self.model.weights}

    def on_train_begin(self, logs=None):
        self._record(-1)

    def on_epoch_end(self, epoch, logs=None):
        self._record(epoch)

    def changed(self, path, epoch):
        """Whether weight `path` changed during `epoch`."""
        return not np.array_equal(self.weights[epoch - 1][path], self.weights[epoch][path])


# --------------------------------------------------------------------- blocks


def test_layer_blocks_flattens_nested_models_and_skips_weightless_layers(clf):
    model = clf
    blocks = layer_blocks(model)
    assert [name for name, _ in blocks] == ["stem", "block1", "block2", "block3", "predictions"]
    names = {name: [layer.name for layer in layers] for name, layers in blocks}
    assert names["stem"] == ["stem_conv", "stem_bn"]
    assert set(names["block3"]) == {*BLOCK3, "block3_1_bn", "block3_proj_bn", "block3_2_bn"}
    assert all(layer.weights for _, layers in blocks for layer in layers)
    assert block_name("conv3_block1_1_conv") == "conv3" and block_name("head") == "head"


def test_layer_blocks_groups_only_consecutive_layers():
    model = keras.Sequential(
        [keras.Input((4,)), *(keras.layers.Dense(2, name=n) for n in ("a_1", "a_2", "b_1", "a_3"))]
    )
    assert [(n, len(ls)) for n, ls in layer_blocks(model)] == [("a", 2), ("b", 1), ("a", 1)]
    freeze(model)
    with pytest.raises(ValueError, match="'a' is ambiguous: blocks \\[0, 2\\]"):
        unfreeze(model, "a")
    assert unfreeze(model, "a_3") == ["a_3"]


# ------------------------------------------------------------ freeze/unfreeze


def test_freeze_reaches_nested_layers(clf):
    model = clf
    unfreeze(model, keep_batchnorm_frozen=False)
    assert model.trainable_weights
    assert freeze(model) is model
    assert model.trainable_weights == [] and not model.get_layer("tiny_resnet").trainable
    assert not any(layer.trainable for layer, _ in finetune._leaves(model))


@pytest.mark.parametrize("from_layer", ["block3", "block3_1_conv", 14, -7, 0.4])
def test_unfreeze_from_block_layer_index_or_fraction(clf, from_layer):
    model = clf
    made = unfreeze(model, from_layer)
    assert made == [*BLOCK3, "predictions"]
    # The nested backbone's own flag is back on, the layers below stay frozen,
    # BatchNorm stays frozen: exactly these weights train.
    assert model.get_layer("tiny_resnet").trainable
    assert trainable_names(model) == made
    assert not leaf(model, "block3_1_bn").trainable and not leaf(model, "block2_2_conv").trainable


def test_unfreeze_everything_or_a_nested_model_by_name(clf):
    model = clf
    assert unfreeze(model, "tiny_resnet", keep_batchnorm_frozen=False)[:2] == [
        "stem_conv",
        "stem_bn",
    ]
    assert trainable_names(model) == [x.name for _, xs in layer_blocks(model) for x in xs]
    freeze(model)
    made = unfreeze(model)
    assert len(made) == 11 and "stem_bn" not in made  # 10 convolutions and the head
    assert len(unfreeze(model, keep_batchnorm_frozen=False)) == 10  # now the 10 BN layers


def test_unfreeze_warns_when_nothing_is_frozen(clf):
    model = clf
    unfreeze(model, keep_batchnorm_frozen=False)
    with pytest.warns(UserWarning, match="changed nothing"):
        assert unfreeze(model, "block2") == []


@pytest.mark.parametrize(
    "from_layer, match",
    [
        ("blok3", "neither a layer nor a block.*Did you mean one of \\['block3'"),
        (21, "index 21 is out of range.*must be in \\[-21, 20\\]"),
        (-22, "must be in \\[-21, 20\\]"),
        (0.0, "must be in \\(0, 1\\]. Received: from_layer=0.0"),
        (1.5, "must be in \\(0, 1\\]"),
        (True, "Received: from_layer=True"),
        (["block3"], "must be None, a layer or block name"),
    ],
)
def test_unfreeze_rejects_bad_from_layer(clf, from_layer, match):
    with pytest.raises(ValueError, match=match):
        unfreeze(clf, from_layer)


def test_unfreeze_rejects_a_layer_that_is_not_a_model():
    with pytest.raises(TypeError, match="keras.Model"):
        unfreeze(keras.layers.Dense(2))


@pytest.mark.parametrize("keep", [True, False])
def test_the_batchnorm_trap(keep):
    """Frozen BatchNorm keeps its moving statistics during fit; unfrozen BN overwrites them."""
    model = freeze(small_classifier())
    unfreeze(model, keep_batchnorm_frozen=keep)
    model.compile(keras.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    recorder = WeightRecorder()
    model.fit(*data(8, 16, 3), batch_size=4, epochs=1, verbose=0, callbacks=[recorder])
    assert recorder.changed("block2_2_conv/kernel", 0)  # the convolutions train either way
    for path in ("stem_bn/moving_mean", "block2_2_bn/moving_variance", "block1_1_bn/gamma"):
        assert recorder.changed(path, 0) is not keep


def test_trainable_summary_table_and_rows(clf):
    model = clf
    unfreeze(model, "block3")
    lines = []
    rows = trainable_summary(model, print_fn=lines.append)
    assert [(r["block"], r["status"]) for r in rows] == [
        ("stem", "frozen"),
        ("block1", "frozen"),
        ("block2", "frozen"),
        ("block3", "trainable (BN frozen)"),
        ("predictions", "trainable"),
    ]
    assert rows[3]["trainable_layers"] == 3 and rows[3]["layers"] == 6
    count = lambda ws: sum(int(np.prod(w.shape)) for w in ws)  # noqa: E731
    assert sum(r["trainable_params"] for r in rows) == count(model.trainable_weights)
    assert sum(r["frozen_params"] for r in rows) == count(model.non_trainable_weights)
    assert lines[0].split() == ["block", "layers", "trainable", "frozen", "status"]
    assert lines[-1].split()[0] == "total" and f"{count(model.trainable_weights):,}" in lines[-1]
    unfreeze(model, "block2", keep_batchnorm_frozen=False)
    assert trainable_summary(model, print_fn=None)[2]["status"] == "trainable"


# ---------------------------------------------------------- GradualUnfreezing


STALE_OPTIMIZER_ERROR = {
    "jax": "corresponding 1:1 to the trainable variables list that the optimizer was built with",
    "torch": "Unknown variable: <Variable path=block2_1_conv/kernel",
}
"""What JAX's and PyTorch's train steps raise for weights unfrozen after the optimizer was built."""


def test_why_gradual_unfreezing_rebuilds_the_train_function(backend):
    """The Keras behaviour the callback works around: unfreezing after a fit needs a recompile.

    TensorFlow silently keeps the stale train step (the unfrozen weights do not
    train); JAX and PyTorch check the optimizer's variables and raise.
    """
    model = freeze(small_classifier())
    unfreeze(model, "predictions")
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    x, y = data(4, 16, 3)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    unfreeze(model, "block2")
    recorder = WeightRecorder()
    if backend != "tensorflow":
        with pytest.raises(ValueError, match=STALE_OPTIMIZER_ERROR[backend]):
            model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[recorder])
        return
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[recorder])
    assert recorder.changed("predictions/kernel", 0)
    assert not recorder.changed("block2_1_conv/kernel", 0)  # stale train step: no update


def check_gradual_unfreezing(model, optimizer, blocks, epochs, **compile_kwargs):
    """Fits with `blocks` unfrozen at epochs 1, 2, ...; checks each trains from then on only."""
    freeze(model)
    unfreeze(model, "predictions")
    model.compile(optimizer, "sparse_categorical_crossentropy", **compile_kwargs)
    recorder = WeightRecorder()
    unfreezing = GradualUnfreezing(blocks, verbose=0)
    size = model.input_shape[1]
    x, y = data(8, size, model.output_shape[-1])
    model.fit(x, y, batch_size=4, epochs=epochs, verbose=0, callbacks=[unfreezing, recorder])
    for k, block in enumerate(blocks, start=1):
        kernel = f"{block}_1_conv/kernel"
        assert [recorder.changed(kernel, e) for e in range(epochs)] == [
            e >= k for e in range(epochs)
        ]
        assert not any(recorder.changed(f"{block}_1_bn/moving_mean", e) for e in range(epochs))
        assert unfreezing.unfrozen[k][0] == f"{block}_1_conv"
    assert all(recorder.changed("predictions/kernel", e) for e in range(epochs))
    assert not any(recorder.changed("stem_conv/kernel", e) for e in range(epochs))


def test_gradual_unfreezing_trains_each_block_from_its_epoch_sgd(clf):
    check_gradual_unfreezing(clf, keras.optimizers.SGD(0.1), ["block3", "block2"], 3)


def test_gradual_unfreezing_with_adam_and_steps_per_execution(backend):
    check_gradual_unfreezing(
        small_classifier(),
        keras.optimizers.Adam(1e-2),
        ["block2", "block1"],
        3,
        # Keras's PyTorch trainer takes only steps_per_execution=1 (it raises otherwise).
        steps_per_execution=1 if backend == "torch" else 2,
    )


def test_rebuilt_optimizer_carries_the_state_over():
    """JAX and PyTorch: the optimizer copy built at each step keeps the state so far."""
    a = keras.Variable(np.ones((2, 3)), name="a")
    b = keras.Variable(np.ones((3,)), name="b")
    adam = keras.optimizers.Adam(1e-2)
    adam.build([a])
    adam.apply([keras.ops.full((2, 3), 0.5)], [a])
    adam.learning_rate.assign(3e-3)  # e.g. set by a callback
    copy = finetune._rebuilt_optimizer(adam, [a, b])
    assert type(copy) is type(adam) and copy is not adam
    assert copy._trainable_variables == [a, b]
    assert int(copy.iterations.numpy()) == 1
    assert float(copy.learning_rate.numpy()) == pytest.approx(3e-3)
    for slots, old in ((copy._momentums, adam._momentums), (copy._velocities, adam._velocities)):
        np.testing.assert_allclose(slots[0].numpy(), old[0].numpy())
        assert np.any(slots[0].numpy() != 0)
        np.testing.assert_array_equal(slots[1].numpy(), np.zeros(3))
    # The copy's next step is the one the original optimizer takes.
    before = a.numpy()
    adam.apply([keras.ops.full((2, 3), 0.5)], [a])
    expected = a.numpy()
    a.assign(before)
    copy.apply([keras.ops.full((2, 3), 0.5), keras.ops.zeros(3)], [a, b])
    np.testing.assert_allclose(a.numpy(), expected, rtol=1e-6)
    assert np.any(expected != before)


def test_gradual_unfreezing_default_plan_and_schedule(clf, backend):
    model = clf
    unfreeze(model, "predictions")
    model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy")
    unfreezing = GradualUnfreezing(every=2, start_epoch=1, verbose=0)
    unfreezing.set_model(model)
    unfreezing.on_train_begin()
    assert [(e, label) for e, _, label in unfreezing._plan] == [
        (1, "block3"),
        (3, "block2"),
        (5, "block1"),
        (7, "stem"),
    ]
    # TensorFlow: built over the weights it will unfreeze, before the first step; JAX and
    # PyTorch: left to `fit` (which builds it first), rebuilt at each step.
    assert model.optimizer.built is (backend == "tensorflow")
    unfreezing.on_epoch_begin(4)  # e.g. fit(initial_epoch=4): both due steps at once
    assert unfreezing.unfrozen == {
        4: [*BLOCK3, "block2_1_conv", "block2_proj_conv", "block2_2_conv"]
    }

    freeze(model)
    unfreezing = GradualUnfreezing(schedule={2: "block3", 0: "predictions"}, verbose=0)
    model.compile(keras.optimizers.SGD(), "sparse_categorical_crossentropy")
    unfreezing.set_model(model)
    unfreezing.on_train_begin()
    assert [(e, label) for e, _, label in unfreezing._plan] == [(0, "predictions"), (2, "block3")]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(every=0), "`every` must be an integer >= 1. Received: 0"),
        (dict(start_epoch=-1), "`start_epoch` must be an integer >= 0"),
        (dict(blocks="block3"), "`blocks` must be a list"),
        (dict(schedule={1.5: "block3"}), "`schedule` must be a non-empty dict"),
        (dict(schedule={1: "block3"}, blocks=["block2"]), "either `blocks` or `schedule`"),
        (dict(verbose=2), "`verbose` must be 0 or 1"),
    ],
)
def test_gradual_unfreezing_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GradualUnfreezing(**kwargs)


def test_gradual_unfreezing_errors_at_the_start_of_fit(backend):
    model = freeze(small_classifier())
    unfreezing = GradualUnfreezing(["blok2"])
    unfreezing.set_model(model)
    with pytest.raises(ValueError, match="compiled model"):
        unfreezing.on_train_begin()
    model.compile(keras.optimizers.SGD(), "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="Did you mean one of \\['block2'"):
        unfreezing.on_train_begin()
    unfreeze(model, "predictions")
    model.optimizer.build(model.trainable_variables)  # as an earlier fit would have
    unfreezing = GradualUnfreezing(["block2"])
    unfreezing.set_model(model)
    if backend == "tensorflow":
        with pytest.raises(ValueError, match="already built.*Compile the model again"):
            unfreezing.on_train_begin()
    else:  # JAX and PyTorch rebuild the optimizer at each step: nothing to refuse
        unfreezing.on_train_begin()
        assert [label for *_, label in unfreezing._plan] == ["block2"]


def test_gradual_unfreezing_message_counts_layers_in_singular_and_plural(capsys):
    model = freeze(small_classifier())
    model.compile(keras.optimizers.SGD(), "sparse_categorical_crossentropy")
    unfreezing = GradualUnfreezing(schedule={0: "predictions", 1: "block2"})
    model.fit(np.zeros((2, 16, 16, 3)), np.zeros(2), epochs=2, verbose=0, callbacks=[unfreezing])
    out = capsys.readouterr().out
    assert "unfroze ['predictions'] (1 layer);" in out
    assert f"unfroze ['block2'] ({len(unfreezing.unfrozen[1])} layers);" in out


def test_index_error_counts_layers_in_the_singular():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="head")])
    with pytest.raises(
        ValueError, match=r"has 1 layer with weights, so the index must be in \[-1, 0\]"
    ):
        unfreeze(freeze(model), 1)


def test_no_reexports_of_sibling_modules():
    """LayerwiseLR, GradientReversal, DANN and dann_lambda live in their own modules only."""
    for name in ("LayerwiseLR", "GradientReversal", "DANN", "dann_lambda"):
        assert not hasattr(finetune, name)
        assert name not in dir(finetune)
    with pytest.raises(AttributeError, match="has no attribute 'LayerwiseLR'"):
        finetune.LayerwiseLR  # noqa: B018
