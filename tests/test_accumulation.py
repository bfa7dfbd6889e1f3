"""Keras's own `gradient_accumulation_steps`: what it equals, and where BatchNorm breaks it.

Micro-batches of `b` examples accumulated over `k` steps give the same
updates as batches of `k * b` (the accumulated gradient is the mean of the
`k` micro-batch gradients, and each micro-batch loss is a mean over `b`
examples), as long as nothing in the model depends on the batch itself.
BatchNormalization does: it normalises each micro-batch with that
micro-batch's statistics and updates its moving statistics every
micro-batch.
"""

import keras
import numpy as np
import pytest

MICRO, STEPS = 4, 4
"""Micro-batch size and accumulation steps: effective batch 16."""

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 5)).astype("float32")
Y = (X @ RNG.normal(size=(5, 1)) + 0.1 * RNG.normal(size=(64, 1))).astype("float32")
EPOCHS = 3  # 64 / 16 = 4 updates per epoch, 12 in all


def _model(batch_norm=False):
    keras.utils.set_random_seed(3)
    layers = [keras.Input((5,))]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization(momentum=0.9, name="bn"))
    layers += [keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    return keras.Sequential(layers)


OPTIMIZERS = {
    "sgd": lambda **kw: keras.optimizers.SGD(0.05, momentum=0.9, **kw),
    "adam": lambda **kw: keras.optimizers.Adam(0.01, **kw),
}


def _train(optimizer, batch_size, steps=None, batch_norm=False):
    model = _model(batch_norm)
    kwargs = {"gradient_accumulation_steps": steps} if steps else {}
    model.compile(optimizer=OPTIMIZERS[optimizer](**kwargs), loss="mse")
    model.fit(X, Y, batch_size=batch_size, epochs=EPOCHS, shuffle=False, verbose=0)
    return model


def _max_diff(a, b):
    return max(float(np.max(np.abs(u - v))) for u, v in zip(a.get_weights(), b.get_weights()))


@pytest.fixture(autouse=True)
def _clear():
    yield
    keras.backend.clear_session()


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_micro_batches_accumulated_equal_the_large_batch(optimizer):
    accumulated = _train(optimizer, MICRO, steps=STEPS)
    large = _train(optimizer, MICRO * STEPS)
    # the same number of real updates: Keras's `iterations` counts updates ...
    assert int(accumulated.optimizer.iterations) == int(large.optimizer.iterations) == 12
    # ... and both really moved the weights
    assert _max_diff(large, _model()) > 1e-2
    assert _max_diff(accumulated, large) <= 1e-6


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_without_accumulation_small_batches_differ(optimizer):
    # the control: batch 4 without accumulation makes 4x the updates
    small = _train(optimizer, MICRO)
    large = _train(optimizer, MICRO * STEPS)
    assert _max_diff(small, large) > 1e-2


def _moving_mean_by_hand(batch_size, momentum=0.9):
    """BatchNorm's moving mean of the inputs after one update per batch of `batch_size`."""
    mean = np.zeros(X.shape[1], "float64")
    for _ in range(EPOCHS):
        for start in range(0, len(X), batch_size):
            mean = momentum * mean + (1 - momentum) * X[start : start + batch_size].mean(axis=0)
    return mean


def test_batch_norm_statistics_update_every_micro_batch():
    accumulated = _train("sgd", MICRO, steps=STEPS, batch_norm=True)
    large = _train("sgd", MICRO * STEPS, batch_norm=True)
    got_accumulated = accumulated.get_layer("bn").moving_mean.numpy()
    got_large = large.get_layer("bn").moving_mean.numpy()
    # The BN layer sees the inputs directly: its moving mean can be computed by hand.
    np.testing.assert_allclose(got_large, _moving_mean_by_hand(16), atol=1e-6)
    # With accumulation it updated after each of the 48 micro-batches, not the 12 updates:
    np.testing.assert_allclose(got_accumulated, _moving_mean_by_hand(MICRO), atol=1e-6)
    assert np.max(np.abs(got_accumulated - got_large)) > 1e-2
    # and the weights differ too: each micro-batch is normalised with its own statistics
    assert _max_diff(accumulated, large) > 1e-3
