import json

import numpy as np
import pytest

from dl4keras import profiles, results


def test_save_and_load_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv(results.RESULTS_DIR_ENV, str(tmp_path))
    profiles.set_profile("smoke")
    try:
        path = results.save(
            "99_demo",
            {"accuracy": np.float32(0.5), "curve": np.arange(3)},
            headline={"accuracy": "50.0%"},
        )
    finally:
        profiles.set_profile(None)
    assert path == tmp_path / "99_demo.json"
    payload = json.loads(path.read_text())
    assert payload["profile"] == "smoke"
    assert payload["metrics"] == {"accuracy": 0.5, "curve": [0, 1, 2]}
    assert payload["headline"] == {"accuracy": "50.0%"}
    assert {"python", "keras", "backend", "tensorflow", "dl4keras"} <= set(payload["versions"])
    assert results.load("99_demo")["metrics"]["accuracy"] == 0.5


def test_bad_names_and_values(tmp_path, monkeypatch):
    monkeypatch.setenv(results.RESULTS_DIR_ENV, str(tmp_path))
    with pytest.raises(ValueError, match="plain file stem"):
        results.save("../escape", {})
    with pytest.raises(TypeError, match="Cannot store object"):
        results.save("99_demo", {"x": object()})
    with pytest.raises(ValueError, match="formatted strings"):
        results.save("99_demo", {}, headline={"accuracy": 0.5})
    with pytest.raises(FileNotFoundError, match="Run the tutorial first"):
        results.load("98_missing")


def test_versions_report_the_backend_in_use_and_every_installed_backend(backend):
    import importlib.metadata

    import keras

    info = results.versions()
    assert info["backend"] == backend == keras.backend.backend()
    assert info["keras"] == keras.__version__
    installed = results.backend_versions()
    assert set(installed) == {"tensorflow", "jax", "torch"}
    for package, version in installed.items():
        try:
            expected = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            expected = None
        if expected is not None:  # (a `-cpu` distribution is found by the function too)
            assert version == expected
        assert info.get(package) == version
    # The backend in use is installed, and its version is the imported module's.
    module = __import__(backend)
    assert info[backend] == module.__version__
