"""Datasets that work offline.

Everything here is built from data that ships with installed packages, so the
tutorials, tests and the documentation site run without a network:

* `load_digits`: the real 8x8 handwritten digits of scikit-learn
  (1797 images of 10 classes).
* `photos`: colour photos shipped with scikit-image (astronaut, the cat
  Chelsea, coffee, a rocket, ...).
* `cluttered_digits`: handwritten digits pasted at random positions, sizes
  and colours onto random crops of those photos, a small image-classification
  task where pretrained features genuinely help (see Tutorial 01).
* `cluttered_letters`: printed letters in 21 typefaces on the same clutter,
  part of the source task TinyResNet is pretrained on.
* `domain_shift_digits`: domains for domain adaptation, the analogue of
  MNIST -> MNIST-M: the same handwritten digits white on black
  (``"plain"``), in colour on a plain coloured background (``"colour"``) or
  in colour on photo clutter (``"clutter"``).

Text (Tutorial 05), snapshots of text that ships with Python (PSF licence)
and questions written for dl4keras:

* `python_topics`: the Python reference manual's 79 topics, one string per
  split, for language modelling (`python_topics_dict`: topic by topic).
* `stdlib_docstrings`: first sentences of standard-library docstrings in five
  classes ("files", "numbers", ...), a text-classification task with a fixed
  train/test split.
* `search_queries`: hand-written questions over 195 short documents, each with
  its answer, for semantic search.

Online (the ``full`` profile), `load_cifar100` downloads CIFAR-100 once and
then loads it offline from the cache.

Your own images, one subfolder per class, are `dl4keras.image_folder`'s
(`load_image_folder`, `make_demo_folder`, online `download_tf_flowers`).
"""

from __future__ import annotations

import functools

import numpy as np

from dl4keras import _validation, downloads

PHOTO_NAMES = (
    "astronaut",
    "brick",
    "camera",
    "cell",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)
"""The scikit-image photos that ship with the package (no download needed)."""

SPLITS = ("train", "test", "all")
DOMAINS = ("plain", "colour", "clutter")
"""The domains of `domain_shift_digits`."""


@functools.lru_cache(maxsize=1)
def load_digits():
    """Loads scikit-learn's 8x8 handwritten digits.

    Returns:
        Tuple `(images, labels)`: `images` is a float32 array of shape
        `(1797, 8, 8)` with values in `[0, 16]`, `labels` an int array of
        shape `(1797,)` with values `0..9`.
    """
    from sklearn.datasets import load_digits as _load

    digits = _load()
    return digits.images.astype("float32"), digits.target.astype("int64")


def photos(names=PHOTO_NAMES):
    """Returns scikit-image's bundled photos as a dict of uint8 RGB arrays.

    Grayscale photos are repeated over three channels.

    Args:
        names: photo names, a subset of `PHOTO_NAMES`.

    Returns:
        Dict mapping each name to a `(height, width, 3)` uint8 array.
    """
    unknown = sorted(set(names) - set(PHOTO_NAMES))
    if unknown:
        raise ValueError(
            f"Unknown photo name(s) {unknown} in argument `names`. Available: "
            f"{', '.join(PHOTO_NAMES)}. Received: names={names!r}"
        )
    return {name: _photo(name) for name in names}


@functools.cache
def _photo(name):
    import skimage.data

    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image[..., :3]).astype("uint8")


@functools.cache
def _background_pyramid(short_sides=(48, 80, 128)):
    """Each photo resized so its short side is each of `short_sides` pixels."""
    from skimage.transform import resize

    levels = []
    for name in PHOTO_NAMES:
        image = _photo(name)
        for side in short_sides:
            scale = side / min(image.shape[:2])
            shape = (round(image.shape[0] * scale), round(image.shape[1] * scale))
            levels.append(
                (resize(image, shape, order=1, anti_aliasing=True, preserve_range=True)).astype(
                    "float32"
                )
            )
    return tuple(levels)


def digit_indices(classes, split="all"):
    """Indices into `load_digits()` of the given classes and split.

    The 1797 digits are split once, with a fixed seed, into two halves of
    each class: ``"train"`` and ``"test"``. Rendered training and test images
    therefore never share an underlying handwritten digit.

    Args:
        classes: digit classes to keep, e.g. `(5, 6, 7, 8, 9)`.
        split: ``"train"``, ``"test"`` or ``"all"``.

    Returns:
        An int array of indices.
    """
    _validation.one_of("split", split, SPLITS)
    _, labels = load_digits()
    order = np.random.default_rng(1234).permutation(len(labels))
    chosen = []
    for c in classes:
        members = order[labels[order] == c]
        half = len(members) // 2
        chosen.append({"train": members[:half], "test": members[half:], "all": members}[split])
    return np.sort(np.concatenate(chosen))


def cluttered_digits(
    classes=(0, 1, 2, 3, 4),
    n_per_class=100,
    image_size=32,
    split="all",
    digit_size=(14, 26),
    seed=0,
):
    """Renders handwritten digits onto cluttered photo crops.

    Each image is a random crop of a scikit-image photo (random photo, scale,
    position and flip) with one handwritten digit pasted at a random position
    and size, in a random colour that contrasts with the background.

    Args:
        classes: digit classes to draw, e.g. `(0, 1, 2, 3, 4)`. Labels are the
            positions in this tuple, so `classes=(5, 6, 7, 8, 9)` gives labels
            `0..4`.
        n_per_class: images per class.
        image_size: side of the square images, at least 16.
        split: which half of the handwritten digits to draw from (see
            `digit_indices`): ``"train"``, ``"test"`` or ``"all"``.
        digit_size: `(min, max)` side in pixels of the pasted digit.
        seed: random seed; the same arguments always give the same images.

    Returns:
        Tuple `(images, labels)`: uint8 RGB images of shape
        `(len(classes) * n_per_class, image_size, image_size, 3)` with values
        0-255, and int64 labels. Examples are shuffled.

    Examples:
        >>> from dl4keras.data import cluttered_digits
        >>> x, y = cluttered_digits(classes=(5, 6), n_per_class=3, seed=1)
        >>> x.shape, x.dtype, sorted(set(y.tolist()))
        ((6, 32, 32, 3), dtype('uint8'), [0, 1])
    """
    pools = _digit_pools(classes, split)
    return _render_on_clutter(pools, n_per_class, image_size, ("digit_size", digit_size), seed)


def domain_shift_digits(
    domain,
    classes=tuple(range(10)),
    n_per_class=100,
    image_size=32,
    split="all",
    digit_size=(14, 26),
    seed=0,
):
    """Handwritten digits in one of three visual domains, for domain adaptation.

    The offline analogue of MNIST -> MNIST-M (Ganin & Lempitsky, 2015): the
    same task, digit classification, in three domains whose images look
    different while the labels mean the same thing:

    * ``"plain"`` (the usual *source*): white digits on a black background,
      like MNIST;
    * ``"colour"``: digits in a random contrasting colour (dark ink on bright
      backgrounds, bright ink on dark ones) on a uniform background, the
      mean colour of the photo crop that ``"clutter"`` uses;
    * ``"clutter"``: the same ink on the random photo crop itself, exactly
      `cluttered_digits` (the hardest target).

    All domains place the digit at a random position and size. With the same
    arguments they draw the same digits at the same places and differ only in
    background and ink, so `domain_shift_digits(domain, seed=s)` for the
    three domains are views of the same scenes.
    Use different seeds (or splits) for the source and target sets of an
    experiment.

    The other arguments (`classes`, `n_per_class`, `image_size`, `split`,
    `digit_size`, `seed`) mean what they mean in `cluttered_digits`.

    Args:
        domain: ``"plain"``, ``"colour"`` or ``"clutter"``.

    Returns:
        Tuple `(images, labels)`, as `cluttered_digits` returns them.

    Raises:
        ValueError: for an unknown `domain` or any invalid argument of
            `cluttered_digits`.

    Examples:
        >>> from dl4keras.data import domain_shift_digits
        >>> source, y = domain_shift_digits("plain", classes=(0, 1), n_per_class=2)
        >>> target, y2 = domain_shift_digits("clutter", classes=(0, 1), n_per_class=2)
        >>> source.shape == target.shape, y.tolist() == y2.tolist(), int(source[0, 0, 0, 0])
        (True, True, 0)
    """
    _validation.one_of("domain", domain, DOMAINS)
    pools = _digit_pools(classes, split)
    background = {"plain": "black", "colour": "mean", "clutter": "photo"}[domain]
    return _render_on_clutter(
        pools, n_per_class, image_size, ("digit_size", digit_size), seed, background
    )


def _digit_pools(classes, split):
    """Per-class arrays of 8x8 handwritten digits in [0, 1]."""
    classes = tuple(int(c) for c in classes)
    if not classes or any(c < 0 or c > 9 for c in classes) or len(set(classes)) != len(classes):
        raise _validation.invalid("classes", "distinct digits 0-9", classes)
    digit_images, _ = load_digits()
    return [digit_images[digit_indices([c], split)] / 16.0 for c in classes]


LETTERS = "ACDEFHIJKLMNOPRTUVWXYZacdefhijkmnprtuvwxyz"
"""Letters of `cluttered_letters`: A-Z and a-z without those that look like
the digits 5-9 (S, s, b, B, G, g, q) or are too small at 8x8 (l, o, Q)."""


def letter_glyphs():
    """The letters of `LETTERS` rendered in matplotlib's bundled fonts at 8x8.

    21 typefaces (DejaVu Sans/Serif/Mono, STIX, Computer Modern; regular,
    bold, italic) give 21 glyphs per letter, in the same 8x8 grid and [0, 1]
    range as scikit-learn's handwritten digits.

    Returns:
        Tuple `(glyphs, labels)`: float32 `(n, 8, 8)` and int64 `(n,)` with
        labels indexing `LETTERS`.
    """
    return _letter_glyphs()


@functools.lru_cache(maxsize=1)
def _letter_glyphs():
    from pathlib import Path

    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = sorted(
        p
        for p in folder.glob("*.ttf")
        if p.name.startswith(("DejaVuSans", "DejaVuSerif", "STIXGeneral"))
        and "Display" not in p.name
    ) + [folder / f"{name}.ttf" for name in ("cmr10", "cmss10", "cmti10", "cmtt10", "cmb10")]
    glyphs, labels = [], []
    for font_path in fonts:
        font = ImageFont.truetype(str(font_path), 48)
        for label, char in enumerate(LETTERS):
            canvas = Image.new("L", (96, 96), 0)
            ImageDraw.Draw(canvas).text((20, 10), char, fill=255, font=font)
            box = canvas.getbbox()
            if box is None:
                continue
            crop = canvas.crop(box)
            side = max(crop.size) + 8
            square = Image.new("L", (side, side), 0)
            square.paste(crop, ((side - crop.size[0]) // 2, (side - crop.size[1]) // 2))
            glyphs.append(np.asarray(square.resize((8, 8), Image.BOX), dtype="float32") / 255.0)
            labels.append(label)
    return np.stack(glyphs), np.asarray(labels, dtype="int64")


def cluttered_letters(n_per_class=100, image_size=32, glyph_size=(14, 26), seed=0):
    """Renders printed letters onto cluttered photo crops, like `cluttered_digits`.

    A varied source task for pretraining: 42 letter classes in 21 typefaces.

    Args:
        n_per_class: images per letter.
        image_size: side of the square images, at least 16.
        glyph_size: `(min, max)` side in pixels of the pasted letter.
        seed: random seed.

    Returns:
        Tuple `(images, labels)`: uint8 images and int64 labels indexing
        `LETTERS`.
    """
    glyphs, labels = letter_glyphs()
    pools = [glyphs[labels == i] for i in range(len(LETTERS))]
    return _render_on_clutter(pools, n_per_class, image_size, ("glyph_size", glyph_size), seed)


def _render_on_clutter(pools, n_per_class, image_size, sized, seed, background="photo"):
    """Pastes a random glyph of each class pool onto random photo crops.

    `sized` is `(argument name, (min, max))` of the glyph size, so errors name
    the caller's argument. The same random draws give the same scenes with
    another `background`: ``"black"`` (and white glyphs) or ``"mean"`` (the
    crop's mean colour).
    """
    size_name, glyph_size = sized
    n_per_class = _validation.positive_int("n_per_class", n_per_class)
    if not _validation.is_positive_int(image_size) or image_size < 16:
        raise _validation.invalid("image_size", "an integer >= 16", image_size)
    if (
        not isinstance(glyph_size, (tuple, list))
        or len(glyph_size) != 2
        or not all(_validation.is_positive_int(v) for v in glyph_size)
        or not 4 <= glyph_size[0] <= glyph_size[1] <= image_size
    ):
        raise _validation.invalid(
            size_name, f"(min, max) with 4 <= min <= max <= image_size={image_size}", glyph_size
        )
    lo, hi = glyph_size
    rng = np.random.default_rng(seed)
    backgrounds = _background_pyramid()
    n = len(pools) * int(n_per_class)
    images = np.empty((n, image_size, image_size, 3), dtype="uint8")
    labels = np.repeat(np.arange(len(pools)), int(n_per_class))
    for i, label in enumerate(labels):
        bg = backgrounds[rng.integers(len(backgrounds))]
        top = rng.integers(bg.shape[0] - image_size + 1)
        left = rng.integers(bg.shape[1] - image_size + 1)
        canvas = bg[top : top + image_size, left : left + image_size].copy()
        if rng.random() < 0.5:
            canvas = canvas[:, ::-1]
        side = int(rng.integers(lo, hi + 1))
        pool = pools[label]
        glyph = _resize_glyph(pool[rng.integers(len(pool))], side)
        y0 = rng.integers(image_size - side + 1)
        x0 = rng.integers(image_size - side + 1)
        region = canvas[y0 : y0 + side, x0 : x0 + side]
        colour = _contrasting_colour(region.mean(axis=(0, 1)), rng)
        alpha = glyph[..., None] * rng.uniform(0.75, 1.0)
        if background == "black":
            canvas[:], region, colour = 0.0, 0.0, 255.0
        elif background == "mean":
            canvas[:] = region = canvas.mean(axis=(0, 1))
        canvas[y0 : y0 + side, x0 : x0 + side] = (1 - alpha) * region + alpha * colour
        images[i] = np.clip(canvas, 0, 255).astype("uint8")
    order = rng.permutation(n)
    return images[order], labels[order].astype("int64")


def _resize_glyph(glyph, side):
    """Bilinear upscaling of an 8x8 glyph in [0, 1] to `side` x `side`."""
    from PIL import Image

    image = Image.fromarray(glyph.astype("float32"), mode="F")
    return np.clip(np.asarray(image.resize((side, side), Image.BILINEAR)), 0.0, 1.0)


def _contrasting_colour(mean_rgb, rng):
    """A random colour whose brightness is far from the background's."""
    brightness = float(np.mean(mean_rgb))
    hue = rng.uniform(0.0, 1.0, size=3)
    if brightness > 110:
        return hue * 70.0  # dark ink on a bright background
    return 185.0 + hue * 70.0  # bright ink on a dark background


CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
"""Where `load_cifar100` downloads CIFAR-100 from (about 170 MB)."""


def load_cifar100(label_mode="fine", directory=None, url=CIFAR100_URL):
    """Loads CIFAR-100 (Krizhevsky, 2009), downloading it once; needs internet the first time.

    50,000 training and 10,000 test colour images of 32x32 pixels in 100
    classes ("fine" labels), grouped into 20 superclasses ("coarse" labels).
    The archive is downloaded and safely extracted into
    `directory/cifar-100-python` (by `dl4keras.downloads.download_and_extract`);
    later calls read it from there, offline.

    Args:
        label_mode: ``"fine"`` (100 classes) or ``"coarse"`` (20).
        directory: where to keep the data; default `$KERAS_HOME/datasets`
            (else ``~/.keras/datasets``).
        url: the `.tar.gz` archive (e.g. a local ``file://`` copy).

    Returns:
        Tuple `((x_train, y_train), (x_test, y_test), class_names)`: uint8
        images of shape `(n, 32, 32, 3)` (channels last), int64 labels of
        shape `(n,)`, and the list of class names.

    Raises:
        ValueError: for an unknown `label_mode`, or a broken archive.
        DatasetUnavailableError: when offline and not downloaded yet.

    Examples:
        ```python
        # requires: network
        from dl4keras.data import load_cifar100

        (x_train, y_train), (x_test, y_test), names = load_cifar100()  # 170 MB once
        print(x_train.shape, x_test.shape, len(names))  # (50000, 32, 32, 3) (10000, 32, 32, 3) 100
        ```
    """
    import pickle

    _validation.one_of("label_mode", label_mode, ("fine", "coarse"))
    try:
        folder = downloads.download_and_extract(url, "cifar-100-python", directory)
    except downloads.DatasetUnavailableError as exc:
        raise downloads.DatasetUnavailableError(
            f"CIFAR-100 is not downloaded yet. {str(exc).splitlines()[0]}\n"
            "Run once with internet access (it is kept for later, offline runs), or "
            f"extract {url.rsplit('/', 1)[-1]} yourself into "
            f"{directory or downloads.datasets_dir()}. Offline, the tutorials use "
            "scikit-learn's digits instead."
        ) from exc

    def read(name):
        try:
            with open(folder / name, "rb") as f:
                return pickle.load(f, encoding="bytes")
        except (OSError, pickle.UnpicklingError, EOFError) as exc:
            raise ValueError(
                f"{folder / name} is not a readable CIFAR-100 file ({exc}). Delete "
                f"{folder} and download it again."
            ) from exc

    def split(name):
        batch = read(name)
        images = np.asarray(batch[b"data"], dtype="uint8").reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[f"{label_mode}_labels".encode()], dtype="int64")
        return images.transpose(0, 2, 3, 1), labels

    names = read("meta")[f"{label_mode}_label_names".encode()]
    return split("train"), split("test"), [n.decode() for n in names]


# ---------------------------------------------------------------- text (Tutorial 05)
#
# Three offline text data sets in dl4keras/assets/text/: snapshots of text that
# ships with Python (PSF licence; see the LICENSE and README there), taken by
# tools/snapshot_text_data.py, and search queries written by hand. The snapshot,
# not the running Python, is the data: it is the same on every Python version.

TEXT_DIR = "assets/text"
"""Where the text snapshots live, relative to the package."""

TOPIC_SPLITS = ("train", "validation", "all")
"""The splits of `python_topics`."""

TOPIC_SEPARATOR = "\n\n"
"""What `python_topics` puts between two topics (each topic ends with a newline)."""


@functools.cache
def _text_asset(name):
    """The parsed JSON of one text snapshot file (``.json`` or ``.json.gz``)."""
    import gzip
    import json
    from pathlib import Path

    path = Path(__file__).parent / TEXT_DIR / name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FileNotFoundError(
            f"The text snapshot {path} is missing ({exc}). It ships with dl4keras: "
            "reinstall the package, or run `python tools/snapshot_text_data.py` in a "
            "checkout of the repository to rebuild it."
        ) from exc
    return json.loads(gzip.decompress(data) if name.endswith(".gz") else data)


def python_topics_dict(split="all"):
    """The Python reference topics of `python_topics` as a dict, topic name -> text.

    Args:
        split: ``"train"``, ``"validation"`` or ``"all"`` (see `python_topics`).

    Returns:
        A new dict mapping each topic name of the split to its text, in
        order of name.

    Examples:
        >>> from dl4keras.data import python_topics_dict
        >>> topics = python_topics_dict("validation")
        >>> list(topics)
        ['attribute-references', 'calls', 'formatstrings', 'objects', 'strings', 'yield']
        >>> print(topics["calls"][:11])
        Calls
        *****
    """
    _validation.one_of("split", split, TOPIC_SPLITS)
    snapshot = _text_asset("python_topics.json.gz")
    topics = snapshot["topics"]
    names = sorted(topics)
    validation = set(snapshot["validation_topics"])
    keep = {
        "all": names,
        "train": [n for n in names if n not in validation],
        "validation": [n for n in names if n in validation],
    }[split]
    return {name: topics[name] for name in keep}


def python_topics(split="train"):
    """Text of the Python reference manual, for language modelling, as one string.

    The 79 topics of `pydoc_data.topics` (what ``help("assert")`` or
    ``help("for")`` shows: statements, expressions, data model, built-in
    types; about 465,000 characters of English and Python code, almost all
    ASCII), snapshotted from Python 3.11.7 so that the text is the same on
    every Python version. Licence: PSF.

    The split is by topic, fixed: 6 topics (``attribute-references``,
    ``calls``, ``formatstrings``, ``objects``, ``strings``, ``yield``;
    47,767 characters) are ``"validation"``, the other 73 ``"train"``
    (417,357 characters). Topics that share a paragraph (``"else"`` and
    ``"if"`` are the same page; ``"compound"`` repeats ``"for"`` and
    ``"try"``) are always on the same side, so no paragraph of the
    validation text is in the training text and validation loss measures
    generalisation to unseen pages. (The rule: of the groups of such topics
    in order of name, every 10th from the 6th is validation; see
    ``tools/snapshot_text_data.py``.)

    Args:
        split: ``"train"``, ``"validation"`` or ``"all"`` (465,126 characters).

    Returns:
        A `str`: the split's topics in order of name, joined by
        `TOPIC_SEPARATOR` (a blank line).

    Examples:
        >>> from dl4keras.data import python_topics
        >>> train, validation = python_topics("train"), python_topics("validation")
        >>> len(train), len(validation), len(python_topics("all"))
        (417357, 47767, 465126)
        >>> print(train[:45])
        The "assert" statement
        **********************
        >>> len(set(train.encode("utf-8")))  # distinct bytes: a byte vocabulary fits
        105
    """
    return TOPIC_SEPARATOR.join(python_topics_dict(split).values())


def _docstring_examples(split):
    _validation.one_of("split", split, SPLITS)
    snapshot = _text_asset("stdlib_docstrings.json")
    rows = [r for r in snapshot["examples"] if split == "all" or r["split"] == split]
    return rows, list(snapshot["class_names"])


def stdlib_docstrings(split="train"):
    """A text-classification task: which part of the standard library is this docstring from?

    Each example is the first sentence of the docstring of a Python
    standard-library function, class, method or property, labelled by the
    area of the library it belongs to (five classes):

    * ``"dates and times"``: `datetime`, `time`, `calendar`, `zoneinfo`;
    * ``"files"``: `os` (its file and directory functions), `os.path`,
      `shutil`, `pathlib`, `glob`, `fnmatch`, `tempfile`, `filecmp`, `stat`,
      `zipfile`, `tarfile`;
    * ``"networking"``: `socket`, `ssl`, `urllib`, `http`, `smtplib`,
      `ftplib`, `poplib`, `imaplib`, `ipaddress`, `email`;
    * ``"numbers"``: `math`, `cmath`, `statistics`, `decimal`, `fractions`,
      `random`, `numbers`;
    * ``"text"``: the `str` methods, `string`, `re`, `textwrap`, `difflib`,
      `unicodedata`, `html`, `codecs`.

    498 examples: 100 per class (98 for "dates and times"), with a fixed,
    stratified split of 299 ``"train"`` (59 or 60 per class) and 199
    ``"test"`` (39 or 40 per class). Objects whose names end alike
    (`math.sqrt`, `decimal.Decimal.sqrt`) are always on the same side, so
    near-twin sentences never straddle the split. Sentences that name a
    module in code (``re.match()``, ``time.localtime()``, which would give
    the label away), very short ones, signatures and duplicates were dropped;
    where an area had more than 100 sentences, its modules took turns, so
    that no big module dominates. Snapshotted from Python 3.11.7 by
    ``tools/snapshot_text_data.py``, which states every rule. Licence: PSF.

    Args:
        split: ``"train"``, ``"test"`` or ``"all"``.

    Returns:
        Tuple `(texts, labels, class_names)`: a list of strings, an int64
        array of indices into `class_names`, and the list of the five class
        names. The order is fixed and shuffled (classes mixed).

    Examples:
        >>> from dl4keras.data import stdlib_docstrings
        >>> texts, labels, class_names = stdlib_docstrings("train")
        >>> len(texts), labels.shape, labels.dtype
        (299, (299,), dtype('int64'))
        >>> class_names
        ['dates and times', 'files', 'networking', 'numbers', 'text']
        >>> texts[0], class_names[labels[0]]
        ('Return the square root of x.', 'numbers')
        >>> np.bincount(stdlib_docstrings("test")[1]).tolist()
        [39, 40, 40, 40, 40]
    """
    rows, class_names = _docstring_examples(split)
    labels = np.asarray([class_names.index(r["label"]) for r in rows], dtype="int64")
    return [r["text"] for r in rows], labels, class_names


def stdlib_docstring_names(split="train"):
    """The qualified names of the objects whose docstrings `stdlib_docstrings` returns.

    Args:
        split: ``"train"``, ``"test"`` or ``"all"``.

    Returns:
        A list of strings such as ``"math.sqrt"``, aligned with the texts of
        `stdlib_docstrings(split)`.

    Examples:
        >>> from dl4keras.data import stdlib_docstring_names, stdlib_docstrings
        >>> names, (texts, _, _) = stdlib_docstring_names("test"), stdlib_docstrings("test")
        >>> len(names) == len(texts), names[0]
        (True, 'textwrap.TextWrapper')
    """
    return [r["name"] for r in _docstring_examples(split)[0]]


def search_queries():
    """A semantic-search test set: questions, documents, and the right document for each.

    The 195 documents are the first docstring sentences of well-known
    standard-library objects (all five areas of `stdlib_docstrings`), each
    prefixed with the object's name, e.g. ``"math.sqrt: Return the square
    root of x."``; no two of them answer the same everyday question (of two
    objects that do the same thing, like `os.remove` and `os.unlink`, only
    one is there). The 74 queries are written by hand for dl4keras as a
    learner would ask them, in other words than the document's
    (``"How do I get the square root of a number?"``, ``"Draw a raffle
    winner from a list of names."`` -> `random.choice`), and were not tuned
    against any model.

    Returns:
        Tuple `(queries, documents, answers)`: two lists of strings and an
        int64 array, `answers[i]` the index into `documents` of the answer to
        `queries[i]`.

    Examples:
        >>> from dl4keras.data import search_queries
        >>> queries, documents, answers = search_queries()
        >>> len(queries), len(documents), answers.dtype
        (74, 195, dtype('int64'))
        >>> print(queries[0], "->", documents[answers[0]])
        How can I make my program pause for two seconds? -> time.sleep: Delay execution
        for a given number of seconds.
    """
    documents = _text_asset("search_documents.json")["documents"]
    index = {d["name"]: i for i, d in enumerate(documents)}
    rows = _text_asset("search_queries.json")["queries"]
    return (
        [r["query"] for r in rows],
        [f"{d['name']}: {d['text']}" for d in documents],
        np.asarray([index[r["answer"]] for r in rows], dtype="int64"),
    )
