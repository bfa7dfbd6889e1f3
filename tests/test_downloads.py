"""Tests for dl4keras.downloads (offline: sockets are blocked by pytest-socket)."""

import socket
import tarfile

import pytest

from dl4keras import backbones, data, downloads, image_folder

pytestmark = pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")


def test_cache_folders_follow_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert downloads.keras_home() == tmp_path / "kh"
    assert downloads.weights_cache_dir() == tmp_path / "kh" / "models"
    assert downloads.datasets_dir() == tmp_path / "kh" / "datasets"
    monkeypatch.delenv("KERAS_HOME")
    assert downloads.keras_home().name == ".keras"


def test_one_home_for_errors_and_timeout():
    """The modules that download share these objects instead of defining their own."""
    assert issubclass(downloads.WeightsUnavailableError, downloads.ResourceUnavailableError)
    assert issubclass(downloads.DatasetUnavailableError, OSError)
    assert backbones.WeightsUnavailableError is downloads.WeightsUnavailableError
    assert image_folder.DatasetUnavailableError is downloads.DatasetUnavailableError
    assert not hasattr(backbones, "DOWNLOAD_TIMEOUT") or (
        backbones.DOWNLOAD_TIMEOUT is downloads.DOWNLOAD_TIMEOUT
    )
    assert not hasattr(image_folder, "datasets_dir")
    assert not hasattr(data, "download_image_folder")


def test_network_timeout_restores_the_previous_default():
    before = socket.getdefaulttimeout()
    with downloads.network_timeout(3):
        assert socket.getdefaulttimeout() == 3
    assert socket.getdefaulttimeout() == before
    with pytest.raises(RuntimeError), downloads.network_timeout(4):
        raise RuntimeError
    assert socket.getdefaulttimeout() == before


def test_download_and_extract_any_archive(tmp_path):
    (tmp_path / "src" / "notes").mkdir(parents=True)
    (tmp_path / "src" / "notes" / "a.txt").write_text("hello")
    archive = tmp_path / "notes.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "notes", arcname="notes")
    folder = downloads.download_and_extract(archive.as_uri(), "notes", tmp_path / "cache")
    assert (folder / "a.txt").read_text() == "hello"
    archive.unlink()  # cached: no download the second time
    assert downloads.download_and_extract(archive.as_uri(), "notes", tmp_path / "cache") == folder


def test_offline_error_names_the_resource_and_the_fix(tmp_path):
    url = "https://example.com/archive.tgz"
    with pytest.raises(downloads.DatasetUnavailableError) as info:
        downloads.download_and_extract(url, "archive", tmp_path, hint="Offline, use X.")
    message = str(info.value)
    for needed in (url, str(tmp_path / "archive"), "download the URL yourself", "Offline, use X."):
        assert needed in message, needed
    assert list(tmp_path.iterdir()) == []  # no partial folder left
