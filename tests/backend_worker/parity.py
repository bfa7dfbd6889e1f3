"""Run by tests/test_backend_parity.py in a fresh process per Keras backend.

    python parity.py save DIR   # build the models, save them as .keras + inputs + outputs
    python parity.py load DIR   # load DIR's .keras files, run the saved inputs

Writes DIR/outputs_<backend>.npz. The backend is `KERAS_BACKEND`'s.
"""

import sys
from pathlib import Path

import keras
import numpy as np

import dl4keras
from dl4keras.gpt import GPT
from dl4keras.vit import VisionTransformer


def models():
    """The three models under test, each with the input it is run on."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    sequence = keras.Input((6, 16))
    attention = keras.Model(
        sequence, dl4keras.MultiHeadAttention(num_heads=4, key_dim=8)(sequence, sequence)
    )
    vit = VisionTransformer.from_config_name("vit_digits", depth=2)
    gpt = GPT(
        vocabulary_size=50, sequence_length=12, hidden_dim=32, num_layers=2, num_heads=4, mlp_dim=64
    )
    return {
        "attention": (attention, rng.normal(size=(2, 6, 16)).astype("float32")),
        "vit": (vit, rng.uniform(size=(2, 8, 8, 1)).astype("float32")),
        "gpt": (gpt, rng.integers(0, 50, size=(2, 12)).astype("int32")),
    }


def main(mode, folder):
    folder = Path(folder)
    backend = keras.backend.backend()
    outputs = {}
    if mode == "save":
        for name, (model, x) in models().items():
            model(x)  # build
            model.save(folder / f"{name}.keras")
            np.save(folder / f"{name}_input.npy", x)
            outputs[name] = keras.ops.convert_to_numpy(model(x))
    elif mode == "load":
        for name in ("attention", "vit", "gpt"):
            model = keras.saving.load_model(folder / f"{name}.keras", safe_mode=True)
            x = np.load(folder / f"{name}_input.npy")
            outputs[name] = keras.ops.convert_to_numpy(model(x))
    else:
        raise SystemExit(f"mode must be 'save' or 'load', not {mode!r}")
    np.savez(folder / f"outputs_{backend}.npz", **outputs)
    print(backend, "ok")


if __name__ == "__main__":
    main(*sys.argv[1:])
