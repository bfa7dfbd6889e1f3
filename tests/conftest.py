"""The Keras backend the tests run on, and what runs on which.

`make test` runs the whole suite on TensorFlow, then the package's unit tests
on JAX and PyTorch (`make test-backends`): `KERAS_BACKEND=jax pytest` leaves
out the tests in `RUN_ONCE` (they check the site, the build, the wheel and the
tutorials' text, not the package's numerics; the tutorials that support JAX
run on it from tests/test_tutorials.py), tests marked `run_once` (they start
their own processes on the backends they need) and tests marked `tensorflow_only`
(code that is TensorFlow-only by nature, such as `tf.distribute`; what such
code does on another backend, a clear error, is tested on that backend).
"""

import os

import pytest

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")

RUN_ONCE = {
    "test_api_docs.py",
    "test_backend_parity.py",
    "test_benchmarks.py",
    "test_build_notebooks.py",
    "test_notebooks.py",
    "test_prose_numbers.py",
    "test_site_hook.py",
    "test_tutorials.py",
    "test_vit_recipe_search.py",
    "test_wheel.py",
    "test_workflows.py",
}
"""Test files that run on TensorFlow only: about the site, build and packaging."""


def pytest_report_header(config):
    return f"Keras backend: {BACKEND}"


def pytest_collection_modifyitems(config, items):
    if BACKEND == "tensorflow":
        return
    kept, left_out = [], []
    for item in items:
        once = item.path.name in RUN_ONCE
        marked = item.get_closest_marker("tensorflow_only") or item.get_closest_marker("run_once")
        (left_out if once or marked else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture
def backend():
    """The Keras backend this test session runs on."""
    return BACKEND
