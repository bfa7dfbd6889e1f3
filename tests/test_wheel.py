"""The wheel as a learner installs it: tutorials included, commands that work from any folder.

Builds the sdist and the wheel (offline: `python -m build --no-isolation`),
checks them with `twine check`, installs the wheel without dependencies into a
fresh virtual environment and runs the `dl4keras` command from an empty
temporary folder. The dependencies (Keras, TensorFlow, ...) come from this
test environment through `PYTHONPATH`; the `dl4keras` package and its
tutorials come only from the wheel (this environment's editable install is a
`.pth` hook, which `PYTHONPATH` does not run).
"""

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted(p.name for p in (ROOT / "tutorials").glob("[0-9][0-9]_*.py"))


def _run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, (
        f"{args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)])
    return out


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory):
    """(environment for the fresh venv's `dl4keras`, its path, an empty working folder)."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    wheel = next(dist.glob("*.whl"))
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)])
    env = dict(os.environ)
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]  # the dependencies, not dl4keras
    env.pop("DL4KERAS_TUTORIALS", None)
    env.update(DL4KERAS_PROFILE="smoke", MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="2")
    work = tmp_path_factory.mktemp("learner")
    return env, env_dir / "bin" / "dl4keras", work


def test_twine_accepts_the_wheel_and_the_sdist(dist):
    files = sorted(str(p) for p in dist.iterdir())
    assert any(f.endswith(".whl") for f in files) and any(f.endswith(".tar.gz") for f in files)
    _run([sys.executable, "-m", "twine", "check", "--strict", *files])


def test_the_wheel_carries_every_tutorial(dist):
    names = zipfile.ZipFile(next(dist.glob("*.whl"))).namelist()
    assert sorted(n.rsplit("/", 1)[1] for n in names if n.startswith("dl4keras/tutorials/")) == (
        TUTORIALS
    )


def test_the_wheel_carries_every_asset(dist):
    # The offline data and weights the tutorials load (text corpora, search set,
    # pretrained tiny_resnet, recipe record): every file under dl4keras/assets.
    names = set(zipfile.ZipFile(next(dist.glob("*.whl"))).namelist())
    assets = ROOT / "dl4keras" / "assets"
    expected = {
        p.relative_to(ROOT).as_posix()
        for p in assets.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert expected and expected <= names, sorted(expected - names)


def test_the_installed_package_is_the_wheel(installed):
    env, command, work = installed
    python = command.parent / "python"
    where = _run(
        [str(python), "-c", "import dl4keras; print(dl4keras.__file__)"], env=env, cwd=work
    )
    assert str(command.parent.parent) in where.stdout, where.stdout


def test_list_and_run_work_from_any_folder(installed):
    env, command, work = installed
    listing = _run([str(command), "list"], env=env, cwd=work).stdout
    assert f"{len(TUTORIALS)} tutorial(s) in" in listing and "site-packages" in listing
    for name in TUTORIALS:
        assert name in listing
    # 03, the quickest tutorial (the assets' presence is checked in the wheel above).
    run = _run([str(command), "run", "03", "--profile", "smoke"], env=env, cwd=work)
    assert "wrote results/03_attention.json" in run.stdout
    assert (work / "results" / "03_attention.json").is_file()


def test_tutorials_and_export_exercises_write_editable_copies(installed):
    env, command, work = installed
    _run([str(command), "tutorials", "mine"], env=env, cwd=work)
    assert sorted(p.name for p in (work / "mine").glob("*.py")) == TUTORIALS
    assert len(list((work / "mine").glob("*.ipynb"))) == len(TUTORIALS)
    _run([str(command), "export-exercises", "class"], env=env, cwd=work)
    for kind in ("student", "teacher"):
        assert len(list((work / "class" / kind).glob("*.ipynb"))) == len(TUTORIALS)
    again = subprocess.run(
        [str(command), "export-exercises", "class"],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 2 and "not an empty folder" in again.stderr  # nothing overwritten
