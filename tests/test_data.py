import numpy as np
import pytest

from dl4keras import data


def test_load_digits():
    images, labels = data.load_digits()
    assert images.shape == (1797, 8, 8) and labels.shape == (1797,)
    assert images.min() >= 0 and images.max() <= 16


def test_photos_are_rgb_uint8():
    photos = data.photos(("camera", "chelsea"))
    for image in photos.values():
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3
    with pytest.raises(ValueError, match="Unknown photo name"):
        data.photos(("not_a_photo",))


def test_digit_splits_are_disjoint_halves():
    train = data.digit_indices((5, 6), "train")
    test = data.digit_indices((5, 6), "test")
    both = data.digit_indices((5, 6), "all")
    assert not set(train) & set(test)
    assert sorted(set(train) | set(test)) == sorted(both)
    assert abs(len(train) - len(test)) <= 2
    with pytest.raises(ValueError, match="argument `split`, expected one of"):
        data.digit_indices((5,), "validation")


def test_cluttered_digits_shapes_labels_and_determinism():
    x, y = data.cluttered_digits(
        (5, 6, 7), n_per_class=4, image_size=24, digit_size=(10, 20), seed=3
    )
    assert x.shape == (12, 24, 24, 3) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [4, 4, 4]
    x2, y2 = data.cluttered_digits(
        (5, 6, 7), n_per_class=4, image_size=24, digit_size=(10, 20), seed=3
    )
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = data.cluttered_digits(
        (5, 6, 7), n_per_class=4, image_size=24, digit_size=(10, 20), seed=4
    )
    assert not np.array_equal(x, x3)


def test_cluttered_digits_the_digit_is_visible():
    """The pasted digit must change the image: compare with a blank digit."""
    x, _ = data.cluttered_digits((1,), n_per_class=20, seed=0)
    # Images have a wide range of values: background texture plus contrasting ink.
    assert float(np.mean(x.max(axis=(1, 2, 3)).astype(int) - x.min(axis=(1, 2, 3)))) > 100


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"classes": (1, 1)}, "distinct digits"),
        ({"classes": (10,)}, "distinct digits"),
        ({"n_per_class": 0}, "n_per_class"),
        ({"image_size": 8}, "image_size"),
        ({"digit_size": (2, 40)}, "digit_size"),
        ({"split": "val"}, "split"),
    ],
)
def test_cluttered_digits_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.cluttered_digits(**kwargs)


def test_domain_shift_digits_same_scenes_in_two_domains():
    kwargs = dict(classes=(3, 7), n_per_class=5, image_size=20, digit_size=(10, 16), seed=2)
    plain, y_plain = data.domain_shift_digits("plain", **kwargs)
    clutter, y_clutter = data.domain_shift_digits("clutter", **kwargs)
    colour, y_colour = data.domain_shift_digits("colour", **kwargs)
    assert plain.shape == clutter.shape == (10, 20, 20, 3) and plain.dtype == np.uint8
    np.testing.assert_array_equal(y_plain, y_clutter)  # same labels, same meaning
    np.testing.assert_array_equal(y_plain, y_colour)
    assert np.bincount(y_plain).tolist() == [5, 5]
    # "clutter" is exactly cluttered_digits; "plain" is white-on-black, the same digit mask.
    np.testing.assert_array_equal(clutter, data.cluttered_digits(**kwargs)[0])
    assert (plain[..., 0] == plain[..., 1]).all() and (plain[..., 1] == plain[..., 2]).all()
    assert plain.min() == 0 and plain.max() > 200
    ink = plain[..., 0] > 0
    assert 0.05 < ink.mean() < 0.6  # a digit on a mostly black background
    assert np.abs(plain.astype(int) - clutter.astype(int)).mean() > 50  # the domains differ
    # "colour": uniform background (the crop's mean colour) wherever there is no ink.
    for image, mask in zip(colour, ink):
        assert np.ptp(image[~mask], axis=0).max() <= 1 and np.ptp(image[mask], axis=0).max() > 0
    assert colour[~ink].std() > 20  # background colours vary between images


def test_domain_shift_digits_determinism_and_errors():
    a = data.domain_shift_digits("plain", classes=(1,), n_per_class=4, split="test", seed=5)
    b = data.domain_shift_digits("plain", classes=(1,), n_per_class=4, split="test", seed=5)
    c = data.domain_shift_digits("plain", classes=(1,), n_per_class=4, split="test", seed=6)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    with pytest.raises(
        ValueError,
        match=(
            r"argument `domain`, expected one of 'plain', 'colour', 'clutter'. "
            r"Received: domain='mnist'"
        ),
    ):
        data.domain_shift_digits("mnist")
    with pytest.raises(ValueError, match="distinct digits"):
        data.domain_shift_digits("plain", classes=(1, 1))


def test_data_does_not_re_export_image_folder_functions():
    """Image folders live in `dl4keras.image_folder`, documented there (one home per name)."""
    assert not hasattr(data, "load_image_folder")
    with pytest.raises(AttributeError, match="no attribute 'load_folder'"):
        data.load_folder  # noqa: B018


def _fake_cifar100_archive(tmp_path, n_train=6, n_test=4):
    """A .tar.gz laid out like the real CIFAR-100 archive, with known pixels."""
    import pickle
    import tarfile

    root = tmp_path / "src" / "cifar-100-python"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for name, n in (("train", n_train), ("test", n_test)):
        # Rows are (R plane, G plane, B plane), each 32x32 row-major, as in CIFAR.
        images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        fine, coarse = rng.integers(0, 100, n), rng.integers(0, 20, n)
        rows = images.transpose(0, 3, 1, 2).reshape(n, 3072)
        batch = {b"data": rows, b"fine_labels": fine.tolist(), b"coarse_labels": coarse.tolist()}
        (root / name).write_bytes(pickle.dumps(batch))
        arrays[name] = (images, fine, coarse)
    meta = {
        b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
        b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
    }
    (root / "meta").write_bytes(pickle.dumps(meta))
    archive = tmp_path / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="cifar-100-python")
    return archive.as_uri(), arrays


def test_load_cifar100_from_an_archive_then_from_the_cache(tmp_path):
    url, arrays = _fake_cifar100_archive(tmp_path)
    cache = tmp_path / "cache"
    (x_train, y_train), (x_test, y_test), names = data.load_cifar100(directory=cache, url=url)
    assert x_train.shape == (6, 32, 32, 3) and x_train.dtype == np.uint8
    np.testing.assert_array_equal(x_train, arrays["train"][0])  # channels last, exact pixels
    np.testing.assert_array_equal(x_test, arrays["test"][0])
    np.testing.assert_array_equal(y_train, arrays["train"][1])
    assert y_test.dtype == np.int64 and names[:2] == ["fine0", "fine1"] and len(names) == 100
    # Downloaded once: later calls read the cache, whatever the URL.
    missing = (tmp_path / "gone.tar.gz").as_uri()
    (_, coarse), _, coarse_names = data.load_cifar100("coarse", directory=cache, url=missing)
    np.testing.assert_array_equal(coarse, arrays["train"][2])
    assert len(coarse_names) == 20


def test_load_cifar100_offline_and_bad_input(tmp_path):
    from dl4keras.image_folder import DatasetUnavailableError

    missing = (tmp_path / "cifar-100-python.tar.gz").as_uri()
    with pytest.raises(DatasetUnavailableError, match="CIFAR-100 is not downloaded yet") as info:
        data.load_cifar100(directory=tmp_path / "cache", url=missing)
    assert str(tmp_path / "cache") in str(info.value)
    with pytest.raises(ValueError, match="label_mode.*'medium'"):
        data.load_cifar100("medium", directory=tmp_path)
    broken = tmp_path / "broken" / "cifar-100-python"
    broken.mkdir(parents=True)
    (broken / "meta").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a readable CIFAR-100 file"):
        data.load_cifar100(directory=tmp_path / "broken", url=missing)
