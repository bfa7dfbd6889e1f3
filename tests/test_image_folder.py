"""Tests for dl4keras.image_folder (offline: sockets are blocked by pytest-socket)."""

import io
import os
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from dl4keras import image_folder
from dl4keras.image_folder import (
    DatasetUnavailableError,
    augmentation_layers,
    download_image_folder,
    download_tf_flowers,
    load_image_folder,
    make_demo_folder,
    validate_image_folder,
    write_image_folder,
)

# urllib3 probes for IPv6 with a socket when first imported; the offline test's download tries one.
pytestmark = pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")

NAMES = ("cat", "dog", "bird")


def small_dataset(n_per_class=4, size=(6, 5), seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(NAMES)), n_per_class)
    images = rng.integers(0, 256, size=(len(labels), *size, 3), dtype=np.uint8)
    return images, labels


def save(path, size=(6, 6), fmt="PNG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), 128, np.uint8)).save(path, format=fmt)


def as_arrays(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


# ------------------------------------------------------------------ write → load


def test_round_trip_keeps_pixels_labels_and_counts(tmp_path):
    images, labels = small_dataset()
    folder = write_image_folder(tmp_path / "pets", images, labels, NAMES)
    assert sorted(p.name for p in folder.iterdir()) == [".dl4keras_image_folder", *sorted(NAMES)]
    assert (folder / "dog" / "04.png").is_file()  # zero-padded index into `images`

    report = validate_image_folder(folder)
    assert report.class_names == ("bird", "cat", "dog")  # alphabetical, as the loader sees them
    assert report.counts == {"bird": 4, "cat": 4, "dog": 4} and report.num_images == 12
    assert report.sizes == {(6, 5): 12} and "3 classes, 12 images" in str(report)

    ds = load_image_folder(
        folder, image_size=None, batch_size=5, validation_split=None, subset=None, shuffle=False
    )
    assert ds.class_names == ["bird", "cat", "dog"]
    x, y = as_arrays(ds)
    assert x.shape == (12, 6, 5, 3) and x.dtype == np.float32 and y.dtype == np.int32
    # Unshuffled: file_paths order; file name = index into `images`.
    index = [int(os.path.basename(p).split(".")[0]) for p in ds.file_paths]
    np.testing.assert_array_equal(x, images[index].astype("float32"))  # raw 0-255, lossless PNG
    remap = {NAMES.index(c): i for i, c in enumerate(ds.class_names)}
    np.testing.assert_array_equal(y, [remap[label] for label in labels[index]])


def test_split_is_disjoint_and_training_reshuffles_each_epoch(tmp_path):
    images, labels = small_dataset(n_per_class=20)
    folder = write_image_folder(tmp_path / "pets", images, labels, NAMES, format="jpeg")
    train, val = load_image_folder(folder, image_size=(8, 8), batch_size=4, seed=3)
    assert len(train.file_paths) == 48 and len(val.file_paths) == 12
    assert not set(train.file_paths) & set(val.file_paths)
    assert len(set(as_arrays(val)[1])) > 1  # random split: not just the last class
    x, _ = as_arrays(train)
    assert x.shape == (48, 8, 8, 3) and 0 <= x.min() and x.max() <= 255 and x.max() > 1
    epochs = [as_arrays(train)[1] for _ in range(3)]  # cached, then shuffled per epoch
    assert any(not np.array_equal(epochs[0], e) for e in epochs[1:])
    folder_of = [
        val.class_names.index(os.path.basename(os.path.dirname(p))) for p in val.file_paths
    ]
    np.testing.assert_array_equal(as_arrays(val)[1], folder_of)  # val: in file_paths order
    only_val = load_image_folder(folder, image_size=8, subset="validation", seed=3)
    assert only_val.file_paths == val.file_paths and only_val.class_names == val.class_names
    ordered = load_image_folder(
        folder,
        image_size=8,
        class_names=["dog", "cat", "bird"],
        validation_split=None,
        subset=None,
        shuffle=False,
    )
    assert ordered.class_names == ["dog", "cat", "bird"]
    assert as_arrays(ordered)[1][0] == 0 and "/dog/" in ordered.file_paths[0]


def test_loader_argument_errors(tmp_path):
    images, labels = small_dataset(n_per_class=2)
    folder = write_image_folder(tmp_path / "pets", images, labels, NAMES)
    for kwargs, match in [
        (dict(subset="train"), "`subset` must be .*got 'train'"),
        (dict(validation_split=1.5), r"`validation_split` must be in \(0, 1\).*1.5"),
        (dict(validation_split=None), "Pass both `validation_split` and `subset`"),
        (dict(image_size=(32, 0)), r"`image_size` must be .*\(32, 0\)"),
        (dict(batch_size=0), "`batch_size` must be a positive integer.*0"),
        (dict(image_size=True), "`image_size` must be"),
        (dict(validation_split=0.1), r"`validation_split=0.1` of 6 images leaves no validation"),
        (dict(class_names=["cat", "dog"]), r"class folders \('bird', 'cat', 'dog'\)"),
    ]:
        with pytest.raises(ValueError, match=match):
            load_image_folder(folder, **kwargs)


# ------------------------------------------------------------------- writing


def test_write_refuses_non_empty_folders_and_overwrites_only_its_own_files(tmp_path):
    images, labels = small_dataset(n_per_class=5)
    folder = write_image_folder(tmp_path / "pets", images, labels, NAMES)
    with pytest.raises(FileExistsError, match="not empty; pass overwrite=True"):
        write_image_folder(folder, images, labels, NAMES)
    (folder / "cat" / "mine.jpg").write_bytes(b"a user's file")
    (folder / "notes.txt").write_text("keep me")
    with pytest.warns(UserWarning, match="2 file.*did not write; they stay"):
        write_image_folder(folder, images[:6], labels[:6], ["cat", "dog"], overwrite=True)
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == [
        ".dl4keras_image_folder",
        "cat/0.png",
        "cat/1.png",
        "cat/2.png",
        "cat/3.png",
        "cat/4.png",
        "cat/mine.jpg",
        "dog/5.png",
        "notes.txt",
    ]
    assert (folder / "cat" / "mine.jpg").read_bytes() == b"a user's file"
    with pytest.raises(FileExistsError):
        write_image_folder(tmp_path, images, labels, NAMES)  # a folder the user made


def test_write_argument_errors(tmp_path):
    images, labels = small_dataset(n_per_class=1)
    for args, kwargs, match in [
        ((images[..., :2], labels, NAMES), {}, r"shape \(n, height, width\).*\(3, 6, 5, 2\)"),
        ((images / 255.0, labels, NAMES), {}, r"scaled to \[0, 1\].*multiply by 255"),
        ((images * 2.0, labels, NAMES), {}, r"numbers in \[0, 255\].*510"),
        ((images, [0, 1, 3], NAMES), {}, r"`labels` must be 3 integers in \[0, 2\]"),
        ((images, labels, ["a", "a", "b"]), {}, "`class_names` must be distinct"),
        ((images, labels, ["a", "../b", "c"]), {}, "without '/'"),
        ((images, [0, 0, 1], NAMES), {}, r"Classes \['bird'\] have no images"),
        ((images, labels, NAMES), {"format": "tiff"}, "`format` must be one of.*'tiff'"),
    ]:
        with pytest.raises(ValueError, match=match):
            write_image_folder(tmp_path / "x", *args, **kwargs)
    assert not (tmp_path / "x").exists()
    grey = write_image_folder(tmp_path / "grey", images[..., 0], labels, NAMES, format="bmp")
    assert Image.open(grey / "cat" / "0.bmp").mode == "L"


def test_make_demo_folder_is_a_valid_mixed_format_dataset(tmp_path):
    folder = make_demo_folder(tmp_path / "demo", n_per_class=3, image_size=20, seed=1)
    report = validate_image_folder(folder)
    assert report.class_names == ("eight", "five", "nine", "seven", "six")
    assert set(report.counts.values()) == {3} and report.sizes == {(20, 20): 15}
    assert {p.suffix for p in folder.rglob("*.*") if p.is_file()} >= {".png", ".jpg"}
    again = make_demo_folder(tmp_path / "demo", n_per_class=2, image_size=20, overwrite=True)
    assert validate_image_folder(again).num_images == 10


# ---------------------------------------------------------------- validation


def test_missing_or_misshaped_folders(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path / 'nope'} does not exist"):
        validate_image_folder(tmp_path / "nope")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(ValueError, match="file.png is a file, not a folder"):
        load_image_folder(tmp_path / "file.png")
    save(tmp_path / "flat" / "a.png")
    with pytest.raises(ValueError, match=r"no class subfolders. It holds 1 image\(s\) .*a\.png"):
        validate_image_folder(tmp_path / "flat")
    with pytest.raises(ValueError, match="`allowed_formats` must be a non-empty subset"):
        validate_image_folder(tmp_path / "flat", allowed_formats=("webp",))


def test_empty_classes_and_broken_files_are_listed_together(tmp_path):
    folder = tmp_path / "pets"
    save(folder / "cat" / "ok.png")
    (folder / "dog").mkdir()
    (folder / "bird").mkdir()
    (folder / "bird" / "readme.txt").write_text("no images here")
    (folder / ".hidden").mkdir()  # not a class, like Keras
    (folder / "cat" / "garbage.jpg").write_bytes(b"not an image")
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(buffer, format="PNG")
    (folder / "cat" / "truncated.png").write_bytes(buffer.getvalue()[:-30])
    save(folder / "cat" / "actually.png", fmt="TIFF")
    with pytest.raises(ValueError) as info:
        validate_image_folder(folder)
    message = str(info.value)
    assert "class folders without .bmp/.gif/.jpeg/.jpg/.png images" in message
    assert "bird/ (1 other files)" in message and "dog/ (0 other files)" in message
    assert "3 unreadable image file(s)" in message
    for needed in (
        "cat/garbage.jpg: UnidentifiedImageError",
        "cat/truncated.png",
        "cat/actually.png: TIFF data, which TensorFlow cannot decode",
    ):
        assert needed in message, needed
    assert "ok.png" not in message and ".hidden" not in message


def test_long_lists_are_cut_at_ten(tmp_path):
    for i in range(13):
        (tmp_path / "pets" / "cat").mkdir(parents=True, exist_ok=True)
        (tmp_path / "pets" / "cat" / f"{i:02d}.png").write_bytes(b"broken")
    with pytest.raises(ValueError, match=r"(?s)13 unreadable.*cat/09.png.*\.\.\. and 3 more"):
        load_image_folder(tmp_path / "pets")


def test_other_extensions_warn_and_mixed_sizes_need_resizing(tmp_path):
    folder = tmp_path / "pets"
    save(folder / "cat" / "a.png", size=(6, 6))
    save(folder / "cat" / "nested" / "b.gif", size=(6, 6), fmt="GIF")
    save(folder / "dog" / "c.jpeg", size=(8, 4), fmt="JPEG")
    (folder / "dog" / "notes.txt").write_text("ignored")
    (folder / "dog" / ".DS_Store").write_bytes(b"")
    with pytest.warns(UserWarning, match=r"1 file\(s\) .* are ignored:\n    dog/notes.txt$"):
        report = validate_image_folder(folder)
    assert report.counts == {"cat": 2, "dog": 1} and report.sizes == {(6, 6): 2, (8, 4): 1}
    with pytest.raises(ValueError) as info:  # raised before the warning
        load_image_folder(folder, image_size=None)
    for needed in (
        "images of 2 sizes",
        "6x6: 2 image(s), e.g. cat/a.png",
        "8x4: 1 image(s), e.g. dog/c.jpeg",
        "Pass image_size=(height, width)",
    ):
        assert needed in str(info.value), needed
    with pytest.warns(UserWarning, match="notes.txt"):
        ds = load_image_folder(folder, image_size=(5, 7), validation_split=None, subset=None)
    x, y = as_arrays(ds)
    assert x.shape == (3, 5, 7, 3) and sorted(y.tolist()) == [0, 0, 1]


def test_augmentation_layers():
    augment = augmentation_layers(seed=0)
    assert [layer.name for layer in augment.layers] == [
        "random_flip",
        "random_translation",
        "random_zoom",
        "random_contrast",
    ]
    assert len(augmentation_layers(flip=None, zoom=0).layers) == 2
    x = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(augment(x, training=False)), x)
    out = np.asarray(augment(x, training=True))
    assert out.shape == x.shape and not np.allclose(out, x)
    assert out.min() >= 0 and out.max() <= 255


# ----------------------------------------------------------------- downloads


def flower_archive(tmp_path, kind="tgz"):
    source = tmp_path / "source"
    save(source / "flower_photos" / "daisy" / "1.jpg", fmt="JPEG")
    save(source / "flower_photos" / "roses" / "2.jpg", fmt="JPEG")
    (source / "flower_photos" / "LICENSE.txt").write_text("CC-BY")
    archive = tmp_path / f"flower_photos.{kind}"
    if kind == "tgz":
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(source / "flower_photos", arcname="flower_photos")
    else:
        with zipfile.ZipFile(archive, "w") as zipped:
            for path in (source / "flower_photos").rglob("*"):
                zipped.write(path, path.relative_to(source).as_posix())
    return archive


def test_download_extracts_a_file_url_once(tmp_path, monkeypatch):
    archive = flower_archive(tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    path = download_tf_flowers(url=archive.as_uri())
    assert path == tmp_path / "keras" / "datasets" / "flower_photos"
    assert validate_image_folder(path).counts == {"daisy": 1, "roses": 1}
    assert os.listdir(path.parent) == ["flower_photos"]  # no archive or partial folder left
    archive.unlink()
    assert download_tf_flowers(url=archive.as_uri()) == path  # cached: no download
    zipped = flower_archive(tmp_path / "z", kind="zip")
    other = download_image_folder(zipped.as_uri(), "flower_photos", tmp_path / "other")
    assert sorted(p.name for p in other.iterdir()) == ["LICENSE.txt", "daisy", "roses"]
    with pytest.raises(ValueError, match="has no top-level folder 'tulips'"):
        download_image_folder(zipped.as_uri(), "tulips", tmp_path / "other")
    assert os.listdir(tmp_path / "other") == ["flower_photos"]


def test_download_refuses_unsafe_archives(tmp_path):
    for name, member in [("evil", "../escaped.txt"), ("links", "flower_photos/link")]:
        archive = tmp_path / f"{name}.tgz"
        with tarfile.open(archive, "w:gz") as tar:
            info = tarfile.TarInfo(member)
            if name == "links":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                info.size = 4
                tar.addfile(info, io.BytesIO(b"evil"))
        match = f"Refusing to extract file://.*{name}.tgz: member '{member}'"
        with pytest.raises(ValueError, match=match):
            download_image_folder(archive.as_uri(), "flower_photos", tmp_path / "cache")
    assert not (tmp_path / "escaped.txt").exists()
    assert os.listdir(tmp_path / "cache") == []
    (tmp_path / "plain.tgz").write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="neither a tar nor a zip archive"):
        download_image_folder((tmp_path / "plain.tgz").as_uri(), "x", tmp_path / "cache")


def test_offline_download_fails_fast_and_clearly(tmp_path):
    with pytest.raises(DatasetUnavailableError) as info:
        download_tf_flowers(tmp_path)
    message = str(info.value)
    assert isinstance(info.value, OSError) and info.value.__cause__ is not None
    for needed in (
        image_folder.TF_FLOWERS_URL,
        str(tmp_path / "flower_photos"),
        "download the URL yourself",
        "make_demo_folder",
    ):
        assert needed in message, needed
    assert os.listdir(tmp_path) == []
    with pytest.raises(DatasetUnavailableError, match="Could not download file://.*missing.tgz"):
        download_tf_flowers(tmp_path, url=(tmp_path / "missing.tgz").as_uri())
