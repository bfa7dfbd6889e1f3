"""The same weights give the same outputs on TensorFlow, JAX and PyTorch.

`dl4keras.MultiHeadAttention`, `VisionTransformer` and `GPT` are built and saved as
`.keras` files on one backend, loaded on the others (each in a fresh process, as
`KERAS_BACKEND` is read when Keras is imported) and run on the same inputs:
the outputs agree within 1e-4 (float32), and a file saved on one backend loads
on every other.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).parent / "backend_worker" / "parity.py"
BACKENDS = ("tensorflow", "jax", "torch")
MODELS = ("attention", "vit", "gpt")
TOLERANCE = 1e-4


def _run(backend, mode, folder):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, str(WORKER), mode, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{backend} {mode} failed:\n{result.stderr[-3000:]}"
    return dict(np.load(folder / f"outputs_{backend}.npz"))


@pytest.mark.parametrize("saved_on", ["tensorflow", "torch"])
def test_outputs_agree_across_backends_and_files_load_everywhere(saved_on, tmp_path):
    reference = _run(saved_on, "save", tmp_path)
    for backend in (b for b in BACKENDS if b != saved_on):
        loaded = _run(backend, "load", tmp_path)
        for name in MODELS:
            assert loaded[name].shape == reference[name].shape, (backend, name)
            difference = float(np.abs(loaded[name] - reference[name]).max())
            assert difference <= TOLERANCE, (
                f"{name} saved on {saved_on}, run on {backend}: max abs difference "
                f"{difference:.2e} > {TOLERANCE:g}"
            )
