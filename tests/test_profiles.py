import subprocess
import sys

import pytest

from dl4keras import profiles


@pytest.fixture(autouse=True)
def _reset(monkeypatch):
    monkeypatch.delenv(profiles.ENV_VAR, raising=False)
    monkeypatch.setattr(sys, "argv", ["prog"])
    profiles.set_profile(None)
    yield
    profiles.set_profile(None)


def test_default_is_docs():
    assert profiles.current() == "docs"
    assert profiles.choose(smoke=1, docs=2, full=3) == 2


@pytest.mark.parametrize("name,expected", [("smoke", 1), ("docs", 2), ("full", 3), (" FULL ", 3)])
def test_environment_variable_selects(monkeypatch, name, expected):
    monkeypatch.setenv(profiles.ENV_VAR, name)
    assert profiles.choose(smoke=1, docs=2, full=3) == expected


@pytest.mark.parametrize("argv", [["prog", "--profile", "smoke"], ["prog", "--profile=smoke"]])
def test_command_line_overrides_environment(monkeypatch, argv):
    monkeypatch.setenv(profiles.ENV_VAR, "full")
    monkeypatch.setattr(sys, "argv", argv)
    assert profiles.current() == "smoke"


def test_set_profile_overrides_all_and_is_inherited(monkeypatch):
    monkeypatch.setenv(profiles.ENV_VAR, "full")
    monkeypatch.setattr(sys, "argv", ["prog", "--profile", "docs"])
    profiles.set_profile("smoke")
    assert profiles.current() == "smoke"
    child = subprocess.run(
        [sys.executable, "-c", "from dl4keras import profiles; print(profiles.current())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.strip() == "smoke"


@pytest.mark.parametrize("bad", ["fast", "", "smoke1"])
def test_unknown_profile_is_a_clear_error(monkeypatch, bad):
    monkeypatch.setenv(profiles.ENV_VAR, bad or "x")
    with pytest.raises(ValueError, match="Expected one of smoke, docs, full"):
        profiles.current()
    with pytest.raises(ValueError, match=r"Unknown profile"):
        profiles.set_profile(bad)


def test_profile_flag_without_value(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["prog", "--profile"])
    with pytest.raises(ValueError, match="--profile needs a value"):
        profiles.current()


def test_choose_requires_every_profile():
    with pytest.raises(TypeError):
        profiles.choose(smoke=1, docs=2)
