import subprocess
import sys

import pytest

import dl4keras


def test_version_and_public_api():
    assert dl4keras.__version__.count(".") == 2
    from dl4keras import MultiHeadAttention, attention

    assert MultiHeadAttention is attention.MultiHeadAttention
    assert dl4keras.VisionTransformer is dl4keras.vit.VisionTransformer
    assert dl4keras.TransformerEncoderBlock is dl4keras.transformer.TransformerEncoderBlock
    assert dl4keras.backbones.build is not None
    assert {"MultiHeadAttention", "backbones", "profiles"} <= set(dir(dl4keras))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        dl4keras.nope  # noqa: B018


def test_import_does_not_load_tensorflow():
    """`import dl4keras` (and so the `dl4keras` command) starts instantly."""
    code = "import sys, dl4keras, dl4keras.profiles; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
