"""Bring-your-own image datasets: `directory/<class name>/<image files>`.

`load_image_folder` checks such a folder (`validate_image_folder`, errors name
the files) and loads it with `keras.utils.image_dataset_from_directory`, split,
cached, shuffled each epoch and prefetched, as raw 0-255 float images (what
`dl4keras.backbones` models take). `write_image_folder` and `make_demo_folder`
write one offline; `download_tf_flowers` fetches a real one (online, once).

Examples:
    ```python
    from dl4keras.image_folder import load_image_folder, make_demo_folder

    folder = make_demo_folder("demo_digits", n_per_class=4)  # 5 classes, 20 images
    train_ds, val_ds = load_image_folder(folder, image_size=(32, 32), batch_size=8)
    print(train_ds.class_names)  # ['eight', 'five', 'nine', 'seven', 'six']: alphabetical
    ```
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from dl4keras.downloads import (
    DOWNLOAD_TIMEOUT,
    DatasetUnavailableError,  # noqa: F401 (raised here)
    download_and_extract,
)

__all__ = [
    "DEMO_CLASS_NAMES",
    "FolderReport",
    "IMAGE_FORMATS",
    "TF_FLOWERS_URL",
    "augmentation_layers",
    "download_image_folder",
    "download_tf_flowers",
    "load_image_folder",
    "make_demo_folder",
    "validate_image_folder",
    "write_image_folder",
]

IMAGE_FORMATS = ("bmp", "gif", "jpeg", "jpg", "png")
"""File extensions `keras.utils.image_dataset_from_directory` loads (case-insensitive)."""
TF_FLOWERS_URL = (
    "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz"
)
"""TF Flowers: 3670 photos of 5 flower classes, about 220 MB (CC-BY, see its LICENSE.txt)."""
DEMO_CLASS_NAMES = ("five", "six", "seven", "eight", "nine")
_MANIFEST = ".dl4keras_image_folder"  # files written by write_image_folder, one per line
_DECODABLE = {"BMP", "GIF", "JPEG", "MPO", "PNG"}  # PIL formats TensorFlow decodes
_WRITERS = {
    "png": ("PNG", "png"),
    "jpeg": ("JPEG", "jpg"),
    "jpg": ("JPEG", "jpg"),
    "bmp": ("BMP", "bmp"),
}


@dataclasses.dataclass(frozen=True)
class FolderReport:
    """What `validate_image_folder` found.

    Attributes:
        directory: the folder.
        class_names: class subfolder names, sorted (the loader's label order).
        counts: dict class name -> number of images.
        sizes: dict `(height, width)` -> number of images of that size.
        size_examples: dict `(height, width)` -> one file of that size.
        ignored: files skipped because of their extension.
    """

    directory: Path
    class_names: tuple
    counts: dict
    sizes: dict
    size_examples: dict
    ignored: tuple = ()

    @property
    def num_images(self):
        return sum(self.counts.values())

    def __str__(self):
        common = sorted(self.sizes.items(), key=lambda item: -item[1])
        sizes = ", ".join(f"{h}x{w} ({n})" for (h, w), n in common[:5])
        sizes += f", ... ({len(common)} sizes)" if len(common) > 5 else ""
        return (
            f"Image folder {self.directory}: {len(self.class_names)} classes, "
            f"{self.num_images} images\n  per class: "
            + ", ".join(f"{c}={n}" for c, n in self.counts.items())
            + f"\n  sizes (height x width): {sizes}"
        )


def _listing(items, limit=10):
    items = [str(x) for x in items]
    more = [f"    ... and {len(items) - limit} more"] if len(items) > limit else []
    return "\n".join([f"    {x}" for x in items[:limit]] + more)


def _probe(path):
    """`((height, width), None)` if PIL decodes `path` fully, else `(None, reason)`."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                size, kind = (image.height, image.width), image.format
                if kind not in _DECODABLE:
                    return None, f"{kind} data, which TensorFlow cannot decode"
                image.draft(None, (1, 1))  # JPEG: decode every byte, at 1/8 scale (fast)
                image.load()
    except Exception as exc:  # PIL raises many types for broken files
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return size, None


def validate_image_folder(directory, allowed_formats=IMAGE_FORMATS, require_same_size=False):
    """Checks an image folder before loading it, with messages that name the files.

    Mirrors how `keras.utils.image_dataset_from_directory` reads a folder:
    classes are the subfolders not starting with "."; a class's images are
    the files with an allowed extension anywhere below its subfolder; files
    directly in `directory` are ignored. Every image is decoded with PIL.

    Problems and what happens:

    - `directory` missing or not a folder, no class subfolders, a class
      folder without images, files that cannot be decoded: `ValueError`,
      listing every problem at once (at most 10 paths each, then "and N more").
    - files with other extensions (the loader skips them): a `UserWarning`
      naming them; names starting with "." (e.g. `.DS_Store`) are skipped silently.
    - images of different sizes: fine by default, because the loader resizes
      every image to its `image_size`; with `require_same_size=True` a
      `ValueError` that lists each size with an example file.

    Args:
        directory: the image folder.
        allowed_formats: extensions counted as images, a subset of `IMAGE_FORMATS`.
        require_same_size: whether all images must have one size.

    Returns:
        A `FolderReport` (class names, counts per class, sizes); `print` it.

    Raises:
        ValueError: as described above.

    Examples:
        >>> from dl4keras.image_folder import make_demo_folder, validate_image_folder
        >>> folder = make_demo_folder("demo_digits", n_per_class=2)
        >>> print(validate_image_folder(folder))  # classes, counts, sizes
        Image folder demo_digits: 5 classes, 10 images
          per class: eight=2, five=2, nine=2, seven=2, six=2
          sizes (height x width): 32x32 (10)
    """
    allowed = tuple("." + str(f).lower().lstrip(".") for f in allowed_formats)
    if not allowed or not set(allowed) <= {"." + f for f in IMAGE_FORMATS}:
        raise ValueError(
            f"`allowed_formats` must be a non-empty subset of {IMAGE_FORMATS}, "
            f"got {allowed_formats!r}."
        )
    directory = Path(directory)
    if not directory.is_dir():
        state = "is a file, not a folder" if directory.exists() else "does not exist"
        raise ValueError(f"Image folder {directory} {state}.")
    class_dirs = sorted(p for p in directory.iterdir() if p.is_dir() and p.name[0] != ".")
    if not class_dirs:
        loose = [p.name for p in directory.iterdir() if p.name.lower().endswith(allowed)]
        hint = f" It holds {len(loose)} image(s) directly, e.g. {loose[0]}." if loose else ""
        raise ValueError(
            f"Image folder {directory} has no class subfolders.{hint} Expected "
            "one subfolder per class: <directory>/<class name>/<image files>."
        )
    counts, sizes, examples = {}, Counter(), {}
    empty, broken, ignored = [], [], []
    for class_dir in class_dirs:
        files = sorted(Path(r) / f for r, _, fs in os.walk(class_dir) for f in fs)
        images = [p for p in files if p.name.lower().endswith(allowed)]
        ignored += [p for p in files if p.name[0] != "." and not p.name.lower().endswith(allowed)]
        counts[class_dir.name] = len(images)
        if not images:
            empty.append(f"{class_dir.name}/ ({len(files)} other files)")
        for path in images:
            size, problem = _probe(path)
            if problem:
                broken.append(f"{path.relative_to(directory)}: {problem}")
            else:
                sizes[size] += 1
                examples.setdefault(size, path.relative_to(directory))
    problems = []
    if empty:
        problems.append(f"class folders without {'/'.join(allowed)} images:\n{_listing(empty)}")
    if broken:
        problems.append(
            f"{len(broken)} unreadable image file(s) (delete or replace them):\n" + _listing(broken)
        )
    if require_same_size and len(sizes) > 1:
        rows = [
            f"{h}x{w}: {n} image(s), e.g. {examples[h, w]}" for (h, w), n in sizes.most_common()
        ]
        problems.append(
            f"images of {len(sizes)} sizes (height x width):\n{_listing(rows)}\n"
            "  Pass image_size=(height, width) to load_image_folder to resize them."
        )
    if problems:
        raise ValueError(f"Image folder {directory} has problems:\n- " + "\n- ".join(problems))
    if ignored:
        names = [p.relative_to(directory) for p in ignored]
        warnings.warn(
            f"{len(names)} file(s) in {directory} are not images with extension "
            f"{'/'.join(allowed)} and are ignored:\n{_listing(names)}",
            stacklevel=2,
        )
    return FolderReport(directory, tuple(counts), counts, dict(sizes), examples, tuple(ignored))


def _as_uint8(images):
    x = np.asarray(images)
    x = x[..., None] if x.ndim == 3 else x
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or len(x) == 0:
        raise ValueError(
            "`images` must have shape (n, height, width) or (n, height, width, 1 "
            f"or 3) with n >= 1, got shape {x.shape}."
        )
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.number) or x.min() < 0 or x.max() > 255:
        raise ValueError(
            f"`images` must hold numbers in [0, 255], got dtype {x.dtype}, "
            f"range [{x.min()}, {x.max()}]."
        )
    if np.issubdtype(x.dtype, np.floating) and 0 < x.max() <= 1:
        raise ValueError(f"`images` look scaled to [0, 1] (max {x.max()}); multiply by 255.")
    return np.round(x).astype("uint8")


def _remove_previous(directory):
    """Deletes the files a previous `write_image_folder` recorded, and nothing else."""
    manifest, root = directory / _MANIFEST, directory.resolve()
    if not manifest.is_file():
        return
    for line in manifest.read_text().splitlines():
        path = (directory / line).resolve()
        if line and root in path.parents and path.parent != root and path.is_file():
            path.unlink()
            if not any(path.parent.iterdir()):
                path.parent.rmdir()
    manifest.unlink()


def write_image_folder(directory, images, labels, class_names, format="png", overwrite=False):
    """Writes images as `directory/<class name>/<index>.<ext>`, the layout the loader reads.

    File names are the zero-padded indices into `images`. Note that the
    loader orders classes alphabetically by folder name, not as in
    `class_names`.

    Args:
        directory: the folder to write; created if needed.
        images: uint8-compatible array `(n, height, width[, 1 or 3])`, values 0-255.
        labels: int array `(n,)` indexing `class_names`.
        class_names: one folder name per class; every class needs an image.
        format: `"png"`, `"jpeg"` (JPEG quality 95) or `"bmp"`, or a list with
            one format per image.
        overwrite: if False, a non-empty `directory` is an error. If True,
            first deletes the files an earlier call recorded in
            `directory/.dl4keras_image_folder` (and class folders this
            empties), then writes, replacing files of the same names. Other
            files stay, and would be loaded too: a warning says how many.

    Returns:
        `directory` as a `Path`.

    Raises:
        FileExistsError: if `directory` is not empty and `overwrite` is False.
        ValueError: for bad images, labels, class names or formats.

    Examples:
        >>> from dl4keras.data import cluttered_digits
        >>> from dl4keras.image_folder import write_image_folder
        >>> x, y = cluttered_digits(classes=(0, 1), n_per_class=3)
        >>> folder = write_image_folder("zeros_ones", x, y, ["zero", "one"], format="jpeg")
        >>> sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jpg"))
        ['one/0.jpg', 'one/1.jpg', 'one/3.jpg', 'zero/2.jpg', 'zero/4.jpg', 'zero/5.jpg']
    """
    from PIL import Image

    directory, images = Path(directory), _as_uint8(images)
    labels, names = np.asarray(labels), [str(c) for c in class_names]
    bad = [c for c in names if c in ("", ".", "..") or c[0] == "." or set(c) & set("/\\")]
    if not names or bad or len(set(names)) != len(names):
        raise ValueError(
            f"`class_names` must be distinct folder names, without '/' and not "
            f"starting with '.', got {class_names!r}."
        )
    if (
        labels.shape != (len(images),)
        or not np.issubdtype(labels.dtype, np.integer)
        or labels.min() < 0
        or labels.max() >= len(names)
    ):
        raise ValueError(
            f"`labels` must be {len(images)} integers in [0, {len(names) - 1}], got {labels!r}."
        )
    missing = [c for i, c in enumerate(names) if not np.any(labels == i)]
    if missing:
        raise ValueError(f"Classes {missing} have no images: the loader would not see them.")
    formats = [format] * len(images) if isinstance(format, str) else list(format)
    if len(formats) != len(images) or not set(formats) <= set(_WRITERS):
        raise ValueError(
            f"`format` must be one of {tuple(_WRITERS)} or a list of "
            f"{len(images)} of them, got {format!r}."
        )
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"`directory` {directory} is a file, not a folder.")
    if directory.is_dir() and any(directory.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{directory} is not empty; pass overwrite=True to replace "
                "what write_image_folder wrote there, or choose a new folder."
            )
        _remove_previous(directory)
    width, written = len(str(len(images) - 1)), []
    for i, (image, label, fmt) in enumerate(zip(images, labels, formats)):
        kind, ext = _WRITERS[fmt]
        path = directory / names[label] / f"{i:0{width}d}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(
            path, format=kind, **({"quality": 95} if kind == "JPEG" else {})
        )
        written.append(path.relative_to(directory).as_posix())
    (directory / _MANIFEST).write_text("\n".join(written) + "\n")
    others = [p for p in directory.rglob("*") if p.is_file() and p.name != _MANIFEST]
    if len(others) > len(written):
        warnings.warn(
            f"{directory} holds {len(others) - len(written)} file(s) that "
            "write_image_folder did not write; they stay.",
            stacklevel=2,
        )
    return directory


def make_demo_folder(directory, n_per_class=40, image_size=32, seed=0, overwrite=False):
    """Writes a small offline image-folder dataset: cluttered handwritten digits 5-9.

    Images come from `dl4keras.data.cluttered_digits(classes=(5, 6, 7, 8, 9))`;
    the class folders are `DEMO_CLASS_NAMES` ("five".."nine"), and files
    alternate between PNG and JPEG, like a folder gathered by hand.

    Args:
        directory: folder to write (see `write_image_folder`).
        n_per_class: images per class.
        image_size: side of the square images, at least 16.
        seed: random seed of the images.
        overwrite: see `write_image_folder`.

    Returns:
        `directory` as a `Path`.
    """
    from dl4keras.data import cluttered_digits

    digit_size = (round(image_size * 0.45), round(image_size * 0.8))  # (14, 26) at 32
    images, labels = cluttered_digits(
        (5, 6, 7, 8, 9), n_per_class, image_size, "all", digit_size, seed
    )
    formats = ["png" if i % 2 == 0 else "jpeg" for i in range(len(images))]
    return write_image_folder(directory, images, labels, DEMO_CLASS_NAMES, formats, overwrite)


def load_image_folder(
    directory,
    image_size=(32, 32),
    batch_size=32,
    validation_split=0.2,
    subset="both",
    seed=0,
    shuffle=True,
    cache=True,
    class_names=None,
    color_mode="rgb",
    crop_to_aspect_ratio=False,
):
    """Validates an image folder, then loads it as batched `tf.data` datasets.

    Wraps `keras.utils.image_dataset_from_directory` (`label_mode="int"`):
    the split is random (seeded) over all files; each dataset is
    `.cache()`d in memory *before* the training set's per-epoch
    `.shuffle()`, then batched and `.prefetch()`ed. Caching holds every
    image as float32: `n * height * width * 3 * 4` bytes.

    Args:
        directory: the image folder (see `validate_image_folder`).
        image_size: `(height, width)` (or one int) every image is resized to;
            None keeps the images' own size, which must then be the same for all.
        batch_size: images per batch; None for unbatched datasets.
        validation_split: fraction of images held out, in (0, 1); None for
            one dataset of all images (then pass `subset=None`).
        subset: `"both"` (returns `(train_ds, val_ds)`), `"training"`,
            `"validation"`, or None (with `validation_split=None`).
        seed: seed of the split and the shuffling.
        shuffle: whether the training set is reshuffled every epoch.
        cache: whether to cache decoded images in memory.
        class_names: the class folders in label order; default alphabetical.
        color_mode: `"rgb"`, `"grayscale"` or `"rgba"`.
        crop_to_aspect_ratio: center-crop to the aspect ratio of `image_size`
            before resizing, instead of stretching.

    Returns:
        `(train_ds, val_ds)` or one dataset of `(images, labels)`: float32
        images `(batch, height, width, channels)` with raw values 0-255 and
        int32 labels. Each has `.class_names` and `.file_paths` attributes;
        `val_ds`, and the dataset of `validation_split=None, shuffle=False`,
        iterate in `.file_paths` order.

    Raises:
        ValueError: for bad arguments or a bad folder (with the files named).

    Examples:
        >>> from dl4keras.image_folder import load_image_folder, make_demo_folder
        >>> folder = make_demo_folder("demo_digits", n_per_class=4)  # 5 classes, 20 images
        >>> train_ds, val_ds = load_image_folder(folder, image_size=(32, 32), batch_size=8)
        Using 16 files for training.
        Using 4 files for validation.
        >>> train_ds.class_names  # alphabetical: the labels 0..4
        ['eight', 'five', 'nine', 'seven', 'six']
        >>> images, labels = next(iter(train_ds))
        >>> tuple(images.shape), images.dtype.name, labels.dtype.name  # raw 0-255 floats
        ((8, 32, 32, 3), 'float32', 'int32')
        >>> # The datasets go straight into `fit`, e.g. of a pretrained backbone with a head.
        >>> from dl4keras import backbones
        >>> model = backbones.attach_head(backbones.build("tiny_resnet"), num_classes=5)
        >>> model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        >>> history = model.fit(train_ds, validation_data=val_ds, epochs=1, verbose=0)
        >>> sorted(history.history)
        ['accuracy', 'loss', 'val_accuracy', 'val_loss']
    """
    import keras
    import tensorflow as tf

    if subset not in ("both", "training", "validation", None):
        raise ValueError(
            f"`subset` must be 'both', 'training', 'validation' or None, got {subset!r}."
        )
    if validation_split is not None and not (
        isinstance(validation_split, (int, float)) and 0 < validation_split < 1
    ):
        raise ValueError(f"`validation_split` must be in (0, 1) or None, got {validation_split!r}.")
    if (validation_split is None) != (subset is None):
        raise ValueError(
            "Pass both `validation_split` and `subset`, or neither (one dataset "
            f"of all images); got validation_split={validation_split!r}, "
            f"subset={subset!r}."
        )
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"`batch_size` must be a positive integer or None, got {batch_size!r}.")
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    if size is not None and (
        len(size) != 2
        or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0 for s in size
        )
    ):
        raise ValueError(
            f"`image_size` must be (height, width) of positive ints, an int or "
            f"None, got {image_size!r}."
        )
    report = validate_image_folder(directory, require_same_size=size is None)
    if class_names is not None and sorted(class_names) != sorted(report.class_names):
        raise ValueError(
            f"`class_names` must list the class folders {report.class_names} "
            f"(in any order), got {class_names!r}."
        )
    if validation_split and int(validation_split * report.num_images) == 0:
        raise ValueError(
            f"`validation_split={validation_split}` of {report.num_images} images "
            "leaves no validation image: use a larger split, or more images."
        )
    size = tuple(int(s) for s in size) if size else next(iter(report.sizes))
    loaded = keras.utils.image_dataset_from_directory(
        directory,
        label_mode="int",
        class_names=class_names,
        color_mode=color_mode,
        batch_size=None,
        image_size=size,
        shuffle=shuffle or subset is not None,
        seed=seed,
        validation_split=validation_split,
        subset=None if subset is None else "both",
        crop_to_aspect_ratio=crop_to_aspect_ratio,
        verbose=False,
    )

    def finish(ds, training):
        names, paths = ds.class_names, ds.file_paths
        ds = ds.cache() if cache else ds
        if training and shuffle:
            ds = ds.shuffle(min(len(paths), 1024), seed=seed, reshuffle_each_iteration=True)
        ds = (ds.batch(batch_size) if batch_size else ds).prefetch(tf.data.AUTOTUNE)
        ds.class_names, ds.file_paths = names, paths
        return ds

    if subset is None:
        return finish(loaded, training=True)
    train, val = finish(loaded[0], training=True), finish(loaded[1], training=False)
    return {"both": (train, val), "training": train, "validation": val}[subset]


def augmentation_layers(flip="horizontal", translation=0.1, zoom=0.1, contrast=0.2, seed=None):
    """Random augmentation for small images, as a `keras.Sequential` of preprocessing layers.

    Active only in training (`model.fit`); identity at inference. Works on
    raw 0-255 images. Use `flip=None` for digits and text, whose mirror image
    is another (or no) class.

    Args:
        flip: `"horizontal"`, `"vertical"`, `"horizontal_and_vertical"` or None.
        translation: largest shift, as a fraction of height and width; 0 for none.
        zoom: largest zoom in or out, as a fraction; 0 for none.
        contrast: contrast factor range `[1 - contrast, 1 + contrast]`; 0 for none.
        seed: seed of the random layers.

    Returns:
        A `keras.Sequential` named "augmentation".

    Examples:
        >>> from dl4keras.image_folder import augmentation_layers
        >>> augment = augmentation_layers(flip=None)
        >>> [layer.name for layer in augment.layers]
        ['random_translation', 'random_zoom', 'random_contrast']
        >>> x = np.random.uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
        >>> bool(np.allclose(augment(x, training=False), x))  # the identity at inference
        True
        >>> bool(np.allclose(augment(x, training=True), x))  # random changes in training
        False
    """
    from keras import Sequential, layers

    chosen = [layers.RandomFlip(flip, seed=seed, name="random_flip")] if flip else []
    if translation:
        chosen.append(
            layers.RandomTranslation(translation, translation, seed=seed, name="random_translation")
        )
    if zoom:
        chosen.append(layers.RandomZoom(zoom, seed=seed, name="random_zoom"))
    if contrast:
        chosen.append(
            layers.RandomContrast(contrast, value_range=(0, 255), seed=seed, name="random_contrast")
        )
    return Sequential(chosen, name="augmentation")


def download_image_folder(url, name, directory=None, timeout=DOWNLOAD_TIMEOUT) -> Path:
    """Downloads an archive holding image folder `name` (one subfolder per class), once.

    `dl4keras.downloads.download_and_extract` does the work: if
    `directory/name` exists it is returned without network access; otherwise
    the archive is downloaded and safely extracted.

    Args:
        url: the archive's URL (`https://`, `http://` or `file://`).
        name: the folder at the top of the archive.
        directory: where to keep it; default `dl4keras.downloads.datasets_dir()`.
        timeout: seconds each network operation may wait.

    Returns:
        The `Path` of `directory/name`.

    Raises:
        DatasetUnavailableError: if the download fails (e.g. offline); the
            message says where the folder goes, how to get it by hand, and
            the offline alternative `make_demo_folder`.
        ValueError: if the archive is unsafe, broken or lacks folder `name`.
    """
    hint = (
        "The folder should then hold <class name>/<images> subfolders. Offline, "
        "dl4keras.image_folder.make_demo_folder(directory) writes a small image-folder "
        "dataset instead."
    )
    return download_and_extract(url, name, directory, timeout, hint=hint)


def download_tf_flowers(directory=None, url=TF_FLOWERS_URL) -> Path:
    """Downloads TF Flowers (3670 photos, 5 classes, ~220 MB) once; needs internet the first time.

    Args:
        directory: where to keep it; default `dl4keras.downloads.datasets_dir()`.
        url: the archive (e.g. a local `file://` copy).

    Returns:
        The `Path` of the `flower_photos` folder (daisy, dandelion, roses,
        sunflowers, tulips), ready for `load_image_folder(path, image_size=(180, 180))`.

    Raises:
        DatasetUnavailableError: when offline and not downloaded yet.

    Examples:
        ```python
        # requires: network
        from dl4keras.image_folder import download_tf_flowers, load_image_folder

        flowers = download_tf_flowers()  # ~/.keras/datasets/flower_photos
        train_ds, val_ds = load_image_folder(flowers, image_size=(180, 180), batch_size=64)
        print(train_ds.class_names)  # ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']
        ```
    """
    return download_image_folder(url, "flower_photos", directory)
