"""Downloads, cache folders and their errors: one small home, standard library only.

Everything dl4keras fetches from the internet (ImageNet weights, TF Flowers,
CIFAR-100) is kept under the Keras cache, so it is downloaded once and used
offline afterwards:

* `keras_home()`: `$KERAS_HOME` (read at call time), else `~/.keras`
  (`/tmp/.keras` when the home folder is read-only);
* `weights_cache_dir()`: `keras_home()/models`, where Keras keeps weights;
* `datasets_dir()`: `keras_home()/datasets`.

`download_and_extract` fetches an archive once and extracts it safely. When a
resource is neither cached nor downloadable now, the error is a
`ResourceUnavailableError` (an `OSError`) that names the resource, where it
would go and how to get it, raised at once: every network operation waits at
most `DOWNLOAD_TIMEOUT` seconds.

Examples:
    ```python
    from dl4keras import downloads

    print(downloads.datasets_dir())     # e.g. /home/me/.keras/datasets
    try:
        downloads.download_and_extract("file:///no/such/archive.tgz", "archive", "tmp")
    except downloads.DatasetUnavailableError as error:
        print(str(error).splitlines()[0])   # Could not download file:///no/such/...
    ```
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

__all__ = [
    "DOWNLOAD_TIMEOUT",
    "DatasetUnavailableError",
    "ResourceUnavailableError",
    "WeightsUnavailableError",
    "datasets_dir",
    "download_and_extract",
    "first_line",
    "keras_home",
    "network_timeout",
    "weights_cache_dir",
]

DOWNLOAD_TIMEOUT = 15
"""Seconds a download may wait on the network (per socket operation)."""


class ResourceUnavailableError(OSError):
    """A resource from the internet is neither cached nor downloadable now."""


class WeightsUnavailableError(ResourceUnavailableError):
    """Pretrained weights are neither in the local cache nor downloadable now."""


class DatasetUnavailableError(ResourceUnavailableError):
    """A dataset is neither on disk nor downloadable now."""


def keras_home() -> Path:
    """The Keras cache folder: `$KERAS_HOME`, else `~/.keras` (`/tmp/.keras` if read-only).

    The variable is read at call time, so tests and users can redirect it.
    """
    base = os.environ.get("KERAS_HOME")
    if not base:
        home = os.path.expanduser("~")
        base = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    return Path(base).expanduser()


def weights_cache_dir() -> Path:
    """Folder where Keras keeps downloaded weights: `keras_home() / "models"`."""
    return keras_home() / "models"


def datasets_dir() -> Path:
    """Where downloaded datasets go: `keras_home() / "datasets"`."""
    return keras_home() / "datasets"


def first_line(exc, limit=300) -> str:
    """`exc` as one short line: 'Type: first line of its message'."""
    line = (str(exc).strip().splitlines() or [""])[0][:limit]
    return f"{type(exc).__name__}: {line}" if type(exc) is not Exception else line


@contextlib.contextmanager
def network_timeout(seconds=DOWNLOAD_TIMEOUT):
    """Within the block, every socket operation waits at most `seconds`.

    For downloaders that take no timeout of their own (`keras.utils.get_file`);
    the previous default is restored afterwards.
    """
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _safe_extract(archive, destination, url):
    """Extracts a tar or zip archive, refusing links and members outside `destination`."""
    root = destination.resolve()

    def check(name, is_plain=True):
        target = (root / name).resolve()
        if not is_plain or os.path.isabs(name) or (target != root and root not in target.parents):
            raise ValueError(
                f"Refusing to extract {url}: member {name!r} is a link or would "
                f"be written outside {destination}."
            )

    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                check(member.name, member.isfile() or member.isdir())
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(destination, members=members, **safe)
    elif zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            for name in zipped.namelist():
                check(name)
            zipped.extractall(destination)
    else:
        raise ValueError(f"{url} is neither a tar nor a zip archive.")


def download_and_extract(url, name, directory=None, timeout=DOWNLOAD_TIMEOUT, hint="") -> Path:
    """Downloads a `.tgz`/`.tar`/`.zip` archive holding folder `name` and extracts it, once.

    If `directory/name` exists, it is returned without network access.
    Otherwise the archive is downloaded and safely extracted (no links, no
    paths leading outside) in a temporary folder inside `directory`, deleted
    afterwards with the archive; `name` is moved into place only when complete.

    Args:
        url: the archive's URL (`https://`, `http://` or `file://`).
        name: the folder at the top of the archive.
        directory: where to keep it; default `datasets_dir()`.
        timeout: seconds each network operation may wait.
        hint: extra lines for the error message when the download fails
            (e.g. an offline alternative).

    Returns:
        The `Path` of `directory/name`.

    Raises:
        DatasetUnavailableError: if the download fails (e.g. offline); the
            message says where the folder goes and how to get it by hand.
        ValueError: if the archive is unsafe, broken or lacks folder `name`.

    Examples:
        ```python
        import pathlib, tarfile
        from dl4keras.downloads import download_and_extract

        pathlib.Path("src/notes").mkdir(parents=True, exist_ok=True)
        pathlib.Path("src/notes/a.txt").write_text("hello")
        with tarfile.open("notes.tgz", "w:gz") as tar:
            tar.add("src/notes", arcname="notes")
        url = pathlib.Path("notes.tgz").resolve().as_uri()
        folder = download_and_extract(url, "notes", "cache")
        print((folder / "a.txt").read_text())   # hello
        ```
    """
    root = Path(directory).expanduser() if directory is not None else datasets_dir()
    target = root / name
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{name}-partial-") as tmp:
        archive = Path(tmp) / "download"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(archive, "wb") as f:
                shutil.copyfileobj(response, f)
        except Exception as exc:  # URLError, timeouts, HTTP errors, blocked sockets, ...
            raise DatasetUnavailableError(
                f"Could not download {url} ({first_line(exc, 200)}).\n"
                f"  It would be extracted to: {target}\n"
                "To get it: run once with internet access (later calls find it there, "
                f"offline), or download the URL yourself and extract it into {root}."
                + (f"\n{hint}" if hint else "")
            ) from exc
        _safe_extract(archive, Path(tmp) / "extracted", url)
        if not (Path(tmp) / "extracted" / name).is_dir():
            raise ValueError(f"The archive at {url} has no top-level folder {name!r}.")
        (Path(tmp) / "extracted" / name).rename(target)
    return target
