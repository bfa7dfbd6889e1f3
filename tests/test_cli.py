"""Tests of the `dl4keras` command (dl4keras/cli.py) on dummy tutorials."""

import pytest

from dl4keras import cli

HEADER = """\
# %% [markdown]
# # Transfer learning I: pretrained backbones as feature extractors
#
# **Description:** Reuse a pretrained backbone
# as a frozen feature extractor.
#
# **Exercise:** 4.1
#
# **You will learn:**
# - to extract features

# %%
import os
import sys

print("profile is", os.environ.get("DL4KERAS_PROFILE"))
sys.exit(int(os.environ.get("DUMMY_EXIT", "0")))
"""

NO_HEADER = """\
# %%
print("no header here")
"""


@pytest.fixture
def tutorials(tmp_path, monkeypatch):
    folder = tmp_path / "tutorials"
    folder.mkdir()
    (folder / "01_feature_extraction.py").write_text(HEADER)
    (folder / "02_plain.py").write_text(NO_HEADER)
    (folder / "helpers.py").write_text("# not a tutorial\n")
    monkeypatch.delenv(cli.TUTORIALS_ENV, raising=False)
    monkeypatch.delenv("DL4KERAS_PROFILE", raising=False)
    return folder


def test_read_header(tutorials):
    tutorial = cli.read_header(tutorials / "01_feature_extraction.py")
    assert tutorial.number == "01"
    assert tutorial.stem == "01_feature_extraction"
    assert tutorial.title == "Transfer learning I: pretrained backbones as feature extractors"
    assert tutorial.description == "Reuse a pretrained backbone as a frozen feature extractor."
    assert tutorial.exercise == "4.1"

    plain = cli.read_header(tutorials / "02_plain.py")
    assert (plain.title, plain.description, plain.exercise) == ("02_plain", "", "")


def test_list(tutorials, capsys):
    assert cli.main(["list", "--tutorials-dir", str(tutorials)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["#", "file", "title", "description"]
    first = next(line for line in lines if line.startswith("01 "))
    assert "01_feature_extraction.py" in first
    assert "Transfer learning I: pretrained backbones as feature extractors" in first
    assert "Reuse a pretrained backbone" in out
    assert any(line.startswith("02 ") and "02_plain.py" in line for line in lines)
    assert "helpers.py" not in out


def test_list_finds_the_folder_from_the_environment(tutorials, monkeypatch, capsys):
    monkeypatch.setenv(cli.TUTORIALS_ENV, str(tutorials))
    assert cli.main(["list"]) == 0
    assert "01_feature_extraction.py" in capsys.readouterr().out


def test_list_finds_tutorials_in_the_working_directory(tutorials, monkeypatch, capsys):
    monkeypatch.chdir(tutorials.parent)
    assert cli.main(["list"]) == 0
    assert "01_feature_extraction.py" in capsys.readouterr().out


@pytest.mark.parametrize("identifier", ["01", "1", "01_feature_extraction"])
@pytest.mark.parametrize("profile", ["smoke", "full"])
def test_run_passes_the_profile(tutorials, capfd, identifier, profile):
    status = cli.main(["run", identifier, "--profile", profile, "--tutorials-dir", str(tutorials)])
    assert status == 0
    assert f"profile is {profile}" in capfd.readouterr().out


def test_run_defaults_to_the_environment_profile(tutorials, monkeypatch, capfd):
    monkeypatch.setenv("DL4KERAS_PROFILE", "smoke")
    assert cli.main(["run", "1", "--tutorials-dir", str(tutorials)]) == 0
    assert "profile is smoke" in capfd.readouterr().out


def test_run_returns_the_exit_status_of_the_tutorial(tutorials, monkeypatch):
    monkeypatch.setenv("DUMMY_EXIT", "3")
    assert cli.main(["run", "01", "--profile", "smoke", "--tutorials-dir", str(tutorials)]) == 3


def _one_line_error(capsys):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("dl4keras: error: ")
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def test_unknown_tutorial(tutorials, capsys):
    assert cli.main(["run", "9", "--tutorials-dir", str(tutorials)]) == 2
    message = _one_line_error(capsys)
    assert "'9'" in message
    assert "01 (01_feature_extraction)" in message and "02 (02_plain)" in message


def test_bad_profile(tutorials, capsys):
    assert cli.main(["run", "01", "--profile", "fast", "--tutorials-dir", str(tutorials)]) == 2
    message = _one_line_error(capsys)
    assert "'fast'" in message and "smoke, docs, full" in message


def test_bad_profile_from_the_environment(tutorials, monkeypatch, capsys):
    monkeypatch.setenv("DL4KERAS_PROFILE", "huge")
    assert cli.main(["run", "01", "--tutorials-dir", str(tutorials)]) == 2
    message = _one_line_error(capsys)
    assert "'huge'" in message and "DL4KERAS_PROFILE" in message


def test_missing_tutorials_folder(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert cli.main(["list", "--tutorials-dir", str(missing)]) == 2
    assert str(missing) in _one_line_error(capsys)


def test_unknown_command(capsys):
    assert cli.main(["fly"]) == 2
    message = _one_line_error(capsys)
    assert "'fly'" in message and "list" in message and "doctor" in message


def test_doctor(tmp_path, monkeypatch, capsys):
    keras_home = tmp_path / "keras_home"
    (keras_home / "models").mkdir(parents=True)
    (keras_home / "models" / "resnet50_notop.h5").write_bytes(b"\0" * 2048)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kaggle"))

    assert cli.main(["doctor"]) == 0  # with sockets blocked: doctor never touches the network
    out = capsys.readouterr().out
    for section in ("Versions", "Devices", "Mixed precision", "Offline assets"):
        assert section in out
    for name in ("python", "dl4keras", "keras", "tensorflow", "keras-hub", "numpy"):
        assert f"  {name} " in out
    assert "backend: " in out
    assert "GPU: " in out
    # Backends: each one's version (from its metadata) or "not installed", and the one in use.
    import importlib.metadata

    import keras

    backends = out[out.index("Backends") : out.index("Devices")].splitlines()[1:]
    for package in ("tensorflow", "jax", "torch"):
        (line,) = [line for line in backends if line.split()[:1] == [package]]
        try:
            shown = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            shown = "not installed"
        assert line.startswith(f"  {package:<12} {shown}")
        assert line.endswith("(in use)") is (package == keras.backend.backend())
    assert "KERAS_BACKEND=tensorflow|jax|torch" in out
    assert "mixed_float16" in out and "mixed_bfloat16" in out
    assert "TinyResNet weights" in out and "tiny_resnet_cluttered_glyphs.weights.h5" in out
    assert "MiniLM" in out
    assert "resnet50_notop.h5" in out and "1 file(s)" in out
    assert "Hugging Face cache" in out and str(tmp_path / "hf" / "hub") in out
    assert "KerasHub (Kaggle)" in out
