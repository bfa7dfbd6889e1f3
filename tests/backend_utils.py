"""Backend-neutral test helpers: the tests run on TensorFlow, JAX and PyTorch.

Import as `from backend_utils import value_and_gradient` (pytest puts tests/ on
the path).
"""

import keras
import numpy as np


def value_and_gradient(fn, *inputs):
    """`fn(*inputs)` (a scalar) and its gradients with respect to `inputs`, as NumPy.

    Uses the backend's own autodiff: `tf.GradientTape`, `jax.value_and_grad` or
    `torch.autograd`.
    """
    backend = keras.backend.backend()
    arrays = [np.asarray(x, dtype="float32") for x in inputs]
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.convert_to_tensor(x) for x in arrays]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            value = fn(*tensors)
        grads = tape.gradient(value, tensors)
    elif backend == "jax":
        import jax

        value, grads = jax.value_and_grad(fn, argnums=tuple(range(len(arrays))))(*arrays)
    elif backend == "torch":
        import torch

        tensors = [torch.tensor(x, requires_grad=True) for x in arrays]
        value = fn(*tensors)
        value.backward()
        grads = [t.grad for t in tensors]
    else:  # pragma: no cover
        raise ValueError(f"unknown Keras backend {backend!r}")
    return keras.ops.convert_to_numpy(value), [keras.ops.convert_to_numpy(g) for g in grads]


def to_numpy(x, dtype=None):
    """Any backend's tensor (a PyTorch one that requires grad included) as a NumPy array."""
    return np.asarray(keras.ops.convert_to_numpy(x), dtype)


def dtype_name(x):
    """The dtype of `x` as Keras names it ("float32"), on every backend."""
    return keras.backend.standardize_dtype(x.dtype)
