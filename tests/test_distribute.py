"""Tests for dl4keras.training.distribute, and data parallelism on JAX.

Logical CPU devices can only be configured before TensorFlow's first
operation, so everything that needs 2 replicas runs in one fresh Python
process (the script below), which prints its measurements as JSON; the
tests read them. The script compares each technique under
`MirroredStrategy` on 2 logical CPUs with the same training on one device.
Those tests check TensorFlow-only code (`tf.distribute`) and are marked
`tensorflow_only`; on JAX and PyTorch, the test of that code is the clear
error it raises there.

`keras.distribution.DataParallel` on JAX, the equivalent the error points
at, gets the same check in a fresh JAX process with 2 CPU devices (from any
session: it sets its own backend).
"""

import json
import math
import os
import subprocess
import sys
import textwrap

import keras
import pytest

from dl4keras.training import distribute

SCRIPT = textwrap.dedent(
    '''
    import json
    import os
    import sys

    from dl4keras.training import distribute

    strategy = distribute.mirrored_strategy(num_devices=2, device_type="CPU")  # before any TF op

    import keras
    import numpy as np
    import tensorflow as tf

    out = {"replicas": strategy.num_replicas_in_sync,
           "devices": list(strategy.extended.worker_devices)}
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 1)) + 0.1 * rng.normal(size=(64, 1))).astype("float32")
    keras.utils.set_random_seed(1)
    template = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    )
    initial = template.get_weights()


    def build(optimizer, policy=None):
        if policy:
            keras.config.set_dtype_policy(policy)
        model = keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(8, activation="tanh"),
                keras.layers.Dense(1, dtype="float32"),
            ]
        )
        keras.config.set_dtype_policy("float32")
        model.set_weights(initial)
        model.compile(optimizer=optimizer(), loss="mse")
        return model


    def pair(optimizer, policy=None, callbacks=list, **fit):
        """The same training on one device and under the strategy, global batch 16.

        `optimizer` and `callbacks` make new ones: a callback keeps state between fits.
        """
        results = []
        for scope in (None, strategy):
            if scope is None:
                model = build(optimizer, policy)
            else:
                with scope.scope():
                    model = build(optimizer, policy)
            fit = {"epochs": 2, **fit, "callbacks": callbacks()}
            history = model.fit(x, y, batch_size=16, shuffle=False, verbose=0, **fit)
            results.append((model, history))
        (one, h1), (two, h2) = results
        diff = max(
            float(np.max(np.abs(a - b))) for a, b in zip(one.get_weights(), two.get_weights())
        )
        return one, two, h1, h2, diff


    def error_of(fn):
        try:
            fn()
        except Exception as error:
            return [type(error).__name__, str(error)[:2000]]
        return None


    # 1. same model, weights and data: 2 replicas x 8 = one device x 16
    for name, optimizer in {
        "sgd": lambda: keras.optimizers.SGD(0.1),
        "adam": lambda: keras.optimizers.Adam(0.01),
    }.items():
        one, two, _, _, diff = pair(optimizer)
        moved = max(
            float(np.max(np.abs(a - b))) for a, b in zip(initial, one.get_weights())
        )
        out[f"equal_{name}"] = {"max_diff": diff, "moved": moved,
                                "steps": int(two.optimizer.iterations.numpy())}

    # 2. learning-rate schedules
    schedule = lambda: keras.optimizers.SGD(  # noqa: E731
        keras.optimizers.schedules.CosineDecay(0.0, 10, warmup_target=0.2, warmup_steps=2)
    )
    one, two, _, _, diff = pair(schedule)
    out["schedules"] = {
        "max_diff": diff,
        "iterations": int(two.optimizer.iterations.numpy()),
        "lr": float(np.asarray(two.optimizer.learning_rate)),
    }

    # 3. mixed precision. A fixed, small loss scale for the comparison: the default
    # dynamic scale (2**15) first overflows and skips steps until it has halved
    # enough, and each replica's loss is 1/2 of the one-device loss, so the two runs
    # skip different steps.
    for policy in ("mixed_float16", "mixed_bfloat16"):
        optimizer = lambda: keras.optimizers.SGD(0.1)  # noqa: E731
        if policy == "mixed_float16":
            optimizer = lambda: keras.optimizers.LossScaleOptimizer(  # noqa: E731
                keras.optimizers.SGD(0.1), initial_scale=2.0**8, dynamic_growth_steps=1000
            )
        one, two, h1, h2, diff = pair(optimizer, policy)
        with strategy.scope():
            automatic = build(lambda: keras.optimizers.SGD(0.1), policy)
        out[policy] = {
            "max_diff": diff,
            "optimizer": type(automatic.optimizer).__name__,
            "compute_dtype": two.layers[0].compute_dtype,
            "finite": bool(np.all(np.isfinite(h2.history["loss"]))),
        }
    one, two, h1, h2, _ = pair(lambda: keras.optimizers.SGD(0.1), "mixed_float16")
    out["default_scale"] = {
        "scales": [float(np.asarray(m.optimizer.dynamic_scale)) for m in (one, two)],
        "loss_one": h1.history["loss"], "loss_two": h2.history["loss"],
    }

    # 4. EMA with SwapEMAWeights
    ema = lambda: keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.9)  # noqa: E731
    one, two, h1, h2, diff = pair(
        ema, callbacks=lambda: [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)],
        validation_data=(x[:16], y[:16]),
    )
    plain = build(lambda: keras.optimizers.SGD(0.1))
    plain.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    out["ema"] = {
        "max_diff": diff,
        "val_diff": float(np.max(np.abs(np.subtract(h1.history["val_loss"],
                                                     h2.history["val_loss"])))),
        "differs_from_plain": max(
            float(np.max(np.abs(a - b))) for a, b in zip(plain.get_weights(), two.get_weights())
        ),
    }

    # 5. callbacks
    path = os.path.join(sys.argv[1], "checkpoint.keras")
    def callbacks():
        return [
            keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0),
            keras.callbacks.ModelCheckpoint(path),
            keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=0, min_delta=10.0,
                                              factor=0.5),
        ]
    one, two, h1, h2, diff = pair(lambda: keras.optimizers.SGD(0.1), epochs=10,
                                  callbacks=callbacks)
    restored = keras.models.load_model(path)
    out["callbacks"] = {
        "max_diff": diff,
        "epochs_one": len(h1.history["loss"]), "epochs_two": len(h2.history["loss"]),
        "lr_two": float(np.asarray(two.optimizer.learning_rate)),
        "checkpoint_diff": max(
            float(np.max(np.abs(a - b)))
            for a, b in zip(restored.get_weights(), two.get_weights())
        ),
    }

    # 6. gradient accumulation: Keras fails, the guard says why first
    accumulate = lambda: keras.optimizers.SGD(0.1, gradient_accumulation_steps=2)  # noqa: E731
    with strategy.scope():
        model = build(accumulate)
    out["guard"] = error_of(lambda: distribute.check_data_parallel(model))
    out["accumulation_fit"] = error_of(
        lambda: model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    )
    keras.config.set_dtype_policy("mixed_float16")
    with strategy.scope():
        wrapped = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, dtype="float32")])
        wrapped.compile(accumulate(), "mse")
    keras.config.set_dtype_policy("float32")
    out["guard_loss_scale"] = [type(wrapped.optimizer).__name__,
                               error_of(lambda: distribute.check_data_parallel(wrapped))]
    with strategy.scope():
        fine = build(lambda: keras.optimizers.SGD(0.1))
    out["guard_no_accumulation"] = error_of(lambda: distribute.check_data_parallel(fine))
    alone = build(accumulate)
    out["guard_no_strategy"] = error_of(lambda: distribute.check_data_parallel(alone))
    alone.fit(x, y, batch_size=16, epochs=1, verbose=0)  # accumulation alone works

    # 7. mirrored_strategy again in the same process
    again = distribute.mirrored_strategy(num_devices=2, device_type="CPU")
    out["again"] = again.num_replicas_in_sync
    out["too_many"] = error_of(lambda: distribute.mirrored_strategy(3, device_type="CPU"))
    print("RESULT" + json.dumps(out))
    '''
)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distribute")
    script = folder / "data_parallel.py"
    script.write_text(SCRIPT)
    env = dict(
        os.environ,
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES="",
    )
    done = subprocess.run(
        [sys.executable, str(script), str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-5000:]
    return json.loads(lines[-1][len("RESULT") :])


# ---------------------------------------------------------------- 2 logical CPUs


@pytest.mark.tensorflow_only
def test_mirrored_strategy_runs_on_two_logical_cpus(measured):
    assert measured["replicas"] == 2
    assert len(measured["devices"]) == 2
    assert all("CPU" in device for device in measured["devices"])


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_two_replicas_equal_one_device_on_the_global_batch(measured, optimizer):
    result = measured[f"equal_{optimizer}"]
    assert result["steps"] == 8  # 2 epochs x 64 / 16: one update per global batch
    assert result["moved"] > 1e-2  # the weights really trained
    assert result["max_diff"] <= 1e-5, result


@pytest.mark.tensorflow_only
def test_learning_rate_schedules_combine(measured):
    works, _ = distribute.compatibility()["learning-rate schedules"]
    result = measured["schedules"]
    assert works and result["max_diff"] <= 1e-5
    assert result["iterations"] == 8
    # after 8 updates: 2 of warm-up to 0.2, then 6 of the 10-step cosine
    assert result["lr"] == pytest.approx(0.2 * 0.5 * (1 + math.cos(math.pi * 6 / 10)), rel=1e-5)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_combines(measured, policy):
    works, _ = distribute.compatibility()["mixed precision"]
    result = measured[policy]
    assert works and result["finite"]
    assert result["compute_dtype"] == policy.removeprefix("mixed_")
    expected = "LossScaleOptimizer" if policy == "mixed_float16" else "SGD"
    assert result["optimizer"] == expected
    # 16-bit rounding differs between one batch of 16 and two slices of 8
    assert result["max_diff"] <= 5e-3, result


@pytest.mark.tensorflow_only
def test_dynamic_loss_scaling_skips_different_steps_on_replicas(measured):
    # Each replica's loss is 1/2 of the one-device loss (Keras scales it for the
    # all-reduce sum), so the scaled float16 gradients overflow on one device and
    # not on the replicas: the one-device run skipped a step and halved its scale.
    one, two = measured["default_scale"]["scales"]
    assert two == 2.0**15 and one < two
    assert measured["default_scale"]["loss_one"][0] > measured["default_scale"]["loss_two"][0]


@pytest.mark.tensorflow_only
def test_ema_combines(measured):
    works, _ = distribute.compatibility()["EMA"]
    result = measured["ema"]
    assert works and result["max_diff"] <= 1e-5 and result["val_diff"] <= 1e-5
    assert result["differs_from_plain"] > 1e-3  # the EMA weights are not the raw ones


@pytest.mark.tensorflow_only
def test_callbacks_combine(measured):
    works, _ = distribute.compatibility()["callbacks"]
    result = measured["callbacks"]
    assert works and result["max_diff"] <= 1e-5
    assert result["epochs_one"] == result["epochs_two"] < 10  # EarlyStopping stopped both
    assert result["lr_two"] < 0.1  # ReduceLROnPlateau lowered it
    assert result["checkpoint_diff"] == 0.0  # ModelCheckpoint saved the final weights


@pytest.mark.tensorflow_only
def test_gradient_accumulation_in_fit_fails_under_mirrored_strategy(measured):
    works, note = distribute.compatibility()["gradient accumulation in fit"]
    assert not works and "keras#20582" in note
    kind, message = measured["accumulation_fit"]
    assert kind == "RuntimeError" and "merge_call" in message


@pytest.mark.tensorflow_only
def test_the_guard_raises_a_clear_error_first(measured):
    kind, message = measured["guard"]
    assert kind == "ValueError"
    assert "keras#20582" in message and distribute.ACCUMULATION_ISSUE in message
    assert "gradient_accumulation_steps=2" in message and "2 replica(s)" in message
    name, (kind, message) = measured["guard_loss_scale"]
    assert name == "LossScaleOptimizer" and kind == "ValueError"
    assert "SGD has gradient_accumulation_steps=2" in message  # the inner optimizer's
    assert measured["guard_no_accumulation"] is None
    assert measured["guard_no_strategy"] is None


@pytest.mark.tensorflow_only
def test_mirrored_strategy_again_and_too_many_devices(measured):
    assert measured["again"] == 2
    kind, message = measured["too_many"]
    assert kind == "RuntimeError"
    assert "already initialised with 2" in message and "fresh Python process" in message


# ---------------------------------------------------------------- JAX: keras.distribution

JAX_SCRIPT = textwrap.dedent(
    '''
    import json
    import os

    os.environ["KERAS_BACKEND"] = "jax"
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"  # before JAX starts
    import contextlib

    import jax
    import keras
    import numpy as np

    from dl4keras.training import distribute

    # Tutorial 06's scaling-out demo: the same data, model and training.
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(256, 16)).astype("float32"), rng.integers(0, 4, 256)


    LAYOUTS = []
    """[devices, shape of one device's slice of a batch of 64], each time JAX compiles."""


    class Probe(keras.layers.Layer):
        """No weights, output = input; records how the batch is laid out over devices."""

        def call(self, inputs):
            jax.debug.inspect_array_sharding(inputs, callback=lambda sharding: LAYOUTS.append(
                [len(sharding.device_set), list(sharding.shard_shape((64, 16)))]))
            return inputs


    def trained(distribution=None):
        keras.utils.set_random_seed(0)
        LAYOUTS.clear()
        with distribution.scope() if distribution else contextlib.nullcontext():
            model = keras.Sequential([keras.Input((16,)), Probe(),
                                      keras.layers.Dense(32, activation="relu"),
                                      keras.layers.Dense(4)])
            initial = model.get_weights()
            model.compile(keras.optimizers.SGD(0.1),
                          keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            history = model.fit(x, y, batch_size=64, epochs=3, shuffle=False, verbose=0)
        weights = model.get_weights()
        return {
            "weights": weights,
            "moved": max(float(np.abs(a - b).max()) for a, b in zip(initial, weights)),
            "iterations": int(model.optimizer.iterations),
            "loss": history.history["loss"],
            "weight_devices": len(model.layers[1].kernel.value.sharding.device_set),
            "batch_layouts": list(LAYOUTS),
        }


    devices = keras.distribution.list_devices("cpu")
    data_parallel = keras.distribution.DataParallel(devices=devices)
    one, two = trained(), trained(data_parallel)
    out = {
        "backend": keras.backend.backend(),
        "devices": devices,
        "per_device": distribute.per_replica_batch_size(64, len(devices)),
        "max_diff": max(
            float(np.abs(a - b).max()) for a, b in zip(one.pop("weights"), two.pop("weights"))
        ),
        "one": one,
        "two": two,
    }
    print("RESULT" + json.dumps(out))
    '''
)


@pytest.mark.run_once
def test_data_parallel_on_jax_equals_one_device(tmp_path):
    """keras.distribution.DataParallel on 2 CPU devices trains as one device does.

    Tutorial 06's scaling-out training (global batch 64, SGD, 3 epochs) in a fresh
    JAX process, once on one device and once split over 2; a probe layer records
    the layout of the batch inside the compiled train step.
    """
    script = tmp_path / "jax_data_parallel.py"
    script.write_text(JAX_SCRIPT)
    env = dict(os.environ, JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("XLA_FLAGS", None)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, env=env
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-5000:]
    result = json.loads(lines[-1][len("RESULT") :])
    one, two = result["one"], result["two"]
    assert result["backend"] == "jax"
    assert result["devices"] == ["cpu:0", "cpu:1"]
    assert result["per_device"] == 32
    # One device: the whole batch of 64 on it. DataParallel: the weights on both
    # devices (replicated), each device computes 32 of the 64 examples.
    assert one["weight_devices"] == 1 and one["batch_layouts"] == [[1, [64, 16]]]
    assert two["weight_devices"] == 2 and two["batch_layouts"] == [[2, [32, 16]]]
    assert one["iterations"] == two["iterations"] == 12  # 3 epochs x 256 / 64
    assert one["moved"] > 1e-2  # the weights really trained
    assert two["loss"] == pytest.approx(one["loss"], abs=1e-5)
    assert result["max_diff"] <= 1e-5, result  # measured: 6e-8 (jax 0.10.2, Keras 3.15.1)


# ---------------------------------------------------------------- in this process


def _assert_clear_backend_errors(backend, model):
    """`mirrored_strategy` and `check_data_parallel` raise naming `backend` and its equivalent."""
    for call in (
        lambda: distribute.mirrored_strategy(),
        lambda: distribute.mirrored_strategy(2, device_type="CPU"),
        lambda: distribute.check_data_parallel(model),
    ):
        with pytest.raises(RuntimeError) as info:
            call()
        message = str(info.value)
        assert "needs the TensorFlow backend" in message
        assert f"the Keras backend is {backend!r}" in message
        assert "keras.distribution.DataParallel" in message
        assert 'KERAS_BACKEND="tensorflow"' in message
        if backend == "jax":
            assert "xla_force_host_platform_device_count" in message
        else:
            assert "torch.nn.parallel.DistributedDataParallel" in message
    # the arithmetic and the table need no TensorFlow
    assert distribute.global_batch_size(8, 2) == 16
    assert distribute.per_replica_batch_size(16, 2) == 8
    assert not distribute.compatibility()["gradient accumulation in fit"][0]


def _accumulating_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(gradient_accumulation_steps=4), "mse")
    return model


@pytest.mark.parametrize("other", ["jax", "torch"])
def test_other_backends_get_a_clear_message(monkeypatch, other):
    """The message of each other backend, checked from any session."""
    model = _accumulating_model()
    monkeypatch.setattr(keras.backend, "backend", lambda: other)
    _assert_clear_backend_errors(other, model)


def test_the_tensorflow_only_functions_on_this_backend(backend):
    """On TensorFlow the guard runs (no strategy: nothing to refuse); elsewhere, a clear error."""
    model = _accumulating_model()
    if backend == "tensorflow":
        assert distribute.check_data_parallel(model) is None
    else:
        _assert_clear_backend_errors(backend, model)


def test_batch_size_rules():
    class Strategy:
        num_replicas_in_sync = 4

    assert distribute.global_batch_size(32, Strategy()) == 128
    assert distribute.per_replica_batch_size(128, Strategy()) == 32
    assert distribute.per_replica_batch_size(6, 3) == 2
    assert distribute.scaled_learning_rate(0.1, 1024, 256) == pytest.approx(0.4)
    assert distribute.scaled_learning_rate(3e-4, 32, 256) == pytest.approx(3.75e-5)


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda: distribute.global_batch_size(0, 2), "per_replica_batch_size"),
        (lambda: distribute.global_batch_size(8, "two"), "strategy"),
        (lambda: distribute.per_replica_batch_size(10, 4), "global_batch_size"),
        (lambda: distribute.scaled_learning_rate(-1.0, 8, 8), "base_learning_rate"),
        (lambda: distribute.scaled_learning_rate(0.1, 8, 0), "base_batch_size"),
        (lambda: distribute.mirrored_strategy(num_devices=0), "num_devices"),
        (lambda: distribute.mirrored_strategy(device_type="TPU"), "device_type"),
        (lambda: distribute.check_data_parallel("model"), "model"),
    ],
)
def test_bad_arguments_name_the_argument(call, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        call()
