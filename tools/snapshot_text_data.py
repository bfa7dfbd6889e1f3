"""Snapshots the offline text data of `dl4keras.data` from the running Python.

The data are text that ships with Python itself (PSF licence), taken from the
interpreter that runs this script and written to ``dl4keras/assets/text/``.
The text differs between Python versions, so the snapshot, not the running
Python, is the data: `dl4keras.data` only ever reads the files.

* ``python_topics.json.gz``: the 79 reference topics of `pydoc_data.topics`
  (what ``help("assert")`` shows), for language modelling, and the names of
  the validation topics (`validation_topics`).
* ``stdlib_docstrings.json``: the first sentences of the docstrings of
  standard-library functions, classes and methods, labelled by the area of the
  library they belong to (`AREAS`), with a fixed, stratified train/test split.
* ``search_documents.json``: the first sentences of `SEARCH_DOCUMENTS`, the
  documents of the semantic-search set.
* ``LICENSE``: the licence of the Python the text comes from (PSF).

The hand-written search queries (``search_queries.json``) are not generated:
each names its answer, one of `SEARCH_DOCUMENTS`.

Usage:

    python tools/snapshot_text_data.py           # rewrites the snapshot
    python tools/snapshot_text_data.py --check   # exit 1 if it differs from this Python's

Rules for the docstring examples, in order:

1. Objects: the public functions, then the classes, of each module of `AREAS`
   (its ``__all__``, else its public names), and the public methods and
   properties those classes define or inherit from private implementation
   classes (``socket.socket`` from ``_socket.socket``); for ``str``, its
   methods; for ``os``, only the file and directory functions of
   `OS_FILE_FUNCTIONS`. Objects of another public module that a module
   imports (``ssl.namedtuple``), class aliases (``socket.SocketType``) and
   objects met before (re-exports) are skipped.
2. Text: the first sentence of the first paragraph of the docstring that is
   not a call signature, on one line.
3. Dropped: sentences with fewer than 3 words or 15 characters, or not
   starting with a letter; C-style signatures (``"int -> date ..."``), usage
   lines and grammar rules (`NOT_PROSE`); sentences that name a module of
   `AREAS` in code (``re.match()``, ``time.localtime()``, ``os.environ``),
   which would spell the label out (plain words such as "time" or "socket"
   stay: they are what the text is about); and duplicates: a sentence that
   occurs in two areas is dropped everywhere, one repeated within an area is
   kept once (its first object in `AREAS` order).
4. Balance: an area with more than `PER_CLASS` sentences keeps `PER_CLASS`,
   its modules taking turns (each in a seeded random order), so that no big
   module (``decimal``, ``socket``) dominates its area.
5. Split: per area, objects are grouped by their last name part
   (``math.sqrt``, ``decimal.Decimal.sqrt`` -> ``sqrt``); groups in a seeded
   random order go to ``train`` until it holds `TRAIN_FRACTION` of the area,
   the rest to ``test``, so near-twins never straddle the split.
"""

from __future__ import annotations

import argparse
import gzip
import importlib
import inspect
import io
import json
import platform
import random
import re
import sys
import sysconfig
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "dl4keras" / "assets" / "text"
TOPICS_FILE = "python_topics.json.gz"
DOCSTRINGS_FILE = "stdlib_docstrings.json"
SEARCH_DOCUMENTS_FILE = "search_documents.json"

AREAS = {
    "dates and times": ("datetime", "time", "calendar", "zoneinfo"),
    "files": (
        "os",
        "os.path",
        "shutil",
        "pathlib",
        "glob",
        "fnmatch",
        "tempfile",
        "filecmp",
        "stat",
        "zipfile",
        "tarfile",
    ),
    "networking": (
        "socket",
        "ssl",
        "urllib.request",
        "urllib.parse",
        "urllib.error",
        "urllib.robotparser",
        "http.client",
        "http.server",
        "http.cookies",
        "http.cookiejar",
        "smtplib",
        "ftplib",
        "poplib",
        "imaplib",
        "ipaddress",
        "email.message",
        "email.utils",
        "email.parser",
        "email.headerregistry",
    ),
    "numbers": ("math", "cmath", "statistics", "decimal", "fractions", "random", "numbers"),
    "text": ("str", "string", "re", "textwrap", "difflib", "unicodedata", "html", "codecs"),
}
"""Class name -> the modules whose docstrings it holds (``"str"``: the str methods)."""

OS_FILE_FUNCTIONS = (
    "access chdir chmod chown fsync getcwd link listdir lstat makedirs mkdir readlink "
    "remove removedirs rename renames replace rmdir scandir stat symlink truncate unlink "
    "utime walk"
).split()
"""The functions of `os` taken (the rest of `os` is processes, users, terminals...)."""

SEARCH_DOCUMENTS = """
datetime.date.fromtimestamp datetime.date.isocalendar datetime.date.isoformat
datetime.date.isoweekday datetime.datetime.date datetime.datetime.now datetime.datetime.timestamp
datetime.datetime.utcnow datetime.timedelta datetime.timedelta.total_seconds datetime.timezone
datetime.tzinfo time.asctime time.ctime time.gmtime time.localtime time.mktime time.monotonic
time.perf_counter time.process_time time.sleep time.strftime time.strptime time.time time.time_ns
calendar.isleap calendar.leapdays calendar.month calendar.monthrange calendar.weekday
calendar.prcal calendar.timegm calendar.HTMLCalendar.formatmonth zoneinfo.ZoneInfo.utcoffset
zoneinfo.available_timezones

os.chdir os.chmod os.getcwd os.listdir os.mkdir os.makedirs os.remove os.rename os.walk
os.symlink os.stat os.path.abspath os.path.basename os.path.dirname os.path.exists
os.path.expanduser os.path.isdir os.path.isfile os.path.join os.path.splitext os.path.relpath
shutil.copy shutil.copytree shutil.disk_usage shutil.move shutil.rmtree shutil.which
shutil.make_archive shutil.unpack_archive glob.glob fnmatch.fnmatch tempfile.mkdtemp
tempfile.NamedTemporaryFile pathlib.Path.read_text pathlib.Path.write_bytes pathlib.Path.touch
pathlib.PurePath.with_suffix pathlib.PurePath.stem zipfile.ZipFile.namelist zipfile.is_zipfile
tarfile.TarFile.add filecmp.cmp stat.filemode

socket.gethostname socket.gethostbyname socket.create_connection socket.socket.accept
socket.socket.bind socket.socket.listen socket.socket.settimeout socket.socket.recv socket.htons
ssl.create_default_context ssl.get_server_certificate urllib.request.urlopen
urllib.request.urlretrieve urllib.parse.urlencode urllib.parse.urljoin urllib.parse.urlparse
urllib.parse.unquote urllib.parse.parse_qs urllib.robotparser.RobotFileParser.can_fetch
http.client.HTTPConnection.request http.client.HTTPResponse.getheaders
http.server.SimpleHTTPRequestHandler http.cookiejar.CookieJar.clear_session_cookies
smtplib.SMTP.login smtplib.SMTP.sendmail smtplib.SMTP.starttls ftplib.FTP.storbinary
ftplib.FTP.nlst poplib.POP3.retr imaplib.IMAP4.search ipaddress.ip_address
ipaddress.IPv4Address.is_private ipaddress.IPv4Address.is_loopback ipaddress.IPv6Network.hosts
email.message.Message.attach email.message.Message.get_payload email.utils.parseaddr
email.utils.formatdate email.utils.make_msgid

math.sqrt math.ceil math.floor math.gcd math.log math.log2 math.log10 math.exp math.hypot
math.dist math.degrees math.radians math.isclose math.comb math.perm math.prod math.fsum
math.isnan math.trunc math.cos cmath.phase cmath.polar statistics.mean statistics.median
statistics.mode statistics.stdev statistics.variance statistics.quantiles
statistics.linear_regression statistics.NormalDist random.choice random.shuffle random.randint
random.sample random.seed random.uniform fractions.Fraction.limit_denominator decimal.getcontext
decimal.Decimal.quantize

str.upper str.lower str.capitalize str.title str.strip str.replace str.startswith str.endswith
str.find str.count str.join str.splitlines str.zfill str.isdigit str.center str.partition
str.swapcase str.removeprefix str.encode str.isidentifier re.compile re.search re.findall re.sub
re.escape re.split textwrap.wrap textwrap.dedent textwrap.shorten textwrap.indent
difflib.get_close_matches difflib.unified_diff difflib.SequenceMatcher.ratio unicodedata.name
unicodedata.lookup unicodedata.normalize html.escape html.unescape codecs.open
""".split()
"""The documents of the semantic-search set: well-known objects of every area.

Chosen so that no two are answers to the same everyday question: where two
objects do the same thing (``os.remove``/``os.unlink``, ``math.sqrt``/
``cmath.sqrt``, ``str.title``/``string.capwords``, ``socket.gethostbyname``/
``socket.getaddrinfo``), only one is here.
"""

SHARED_PARAGRAPH_CHARS = 100
VALIDATION_EVERY, VALIDATION_OFFSET = 10, 5
"""`python_topics`: which groups of topics are validation (see `validation_topics`)."""

PER_CLASS = 100
TRAIN_FRACTION = 0.6
SEED = 12
MIN_WORDS, MIN_CHARS = 3, 15
NOT_PROSE = ("->", " = ", "*(")
"""Marks of C signatures (``"int -> date"``), usage lines and grammar rules."""
ABBREVIATIONS = ("e.g.", "eg.", "i.e.", "a.k.a.", "etc.", "vs.", "cf.")
SIGNATURE = re.compile(r"^[\w.]+\(.*\)\s*(-+>.*)?$")


def _module_names():
    names = {m.split(".")[0] for modules in AREAS.values() for m in modules}
    return sorted(names, key=len, reverse=True)


NAMES_A_MODULE = re.compile(r"\b(?:" + "|".join(_module_names()) + r")\.[A-Za-z_]")
"""A qualified name of a module of `AREAS` in code: ``re.match``, ``os.environ``."""


# ---------------------------------------------------------------- topics


def python_topics():
    """`pydoc_data.topics.topics` as a dict sorted by topic name."""
    from pydoc_data.topics import topics

    return {name: topics[name] for name in sorted(topics)}


def topic_groups(topics):
    """The topics in groups that share text, each sorted, in order of first name.

    Two topics are in one group when they share a paragraph of at least
    `SHARED_PARAGRAPH_CHARS` characters (``"else"`` and ``"if"`` are the same
    text; ``"compound"`` repeats the sections of ``"for"``, ``"try"``...), or
    through a chain of such topics.
    """

    def paragraphs(text):
        found = (p.strip() for p in re.split(r"\n\s*\n", text))
        return {p for p in found if len(p) >= SHARED_PARAGRAPH_CHARS}

    names = sorted(topics)
    owner = {name: name for name in names}

    def root(name):
        while owner[name] != name:
            name = owner[name]
        return name

    shared = {name: paragraphs(topics[name]) for name in names}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if shared[a] & shared[b]:
                owner[root(b)] = root(a)
    groups = {}
    for name in names:
        groups.setdefault(root(name), []).append(name)
    return sorted(groups.values())


def validation_topics(topics):
    """The validation topics: every `VALIDATION_EVERY`-th group from `VALIDATION_OFFSET`.

    Whole groups (`topic_groups`) go to one side, so no paragraph of the
    validation text is also in the training text. The offset keeps the big
    group (the compound statements and special methods, 44% of the text) in
    training and gives validation about 10% of the characters.
    """
    groups = topic_groups(topics)[VALIDATION_OFFSET::VALIDATION_EVERY]
    return sorted(name for group in groups for name in group)


# ---------------------------------------------------------------- docstrings


def first_sentence(doc):
    """The first sentence of the first paragraph of `doc` that is not a signature."""
    doc = inspect.cleandoc(doc).replace("\\\n", "\n")  # Argument Clinic's line ends
    for paragraph in re.split(r"\n\s*\n", doc):
        if SIGNATURE.match(" ".join(paragraph.split())):
            continue  # a signature over several lines
        lines = paragraph.strip().splitlines()
        while lines and SIGNATURE.match(lines[0].strip()):
            lines.pop(0)  # "log(x, [base=math.e])" above the text
        paragraph = " ".join(" ".join(lines).split())
        if not paragraph:
            continue
        for end in re.finditer(r"[.!?](?=\s|$)", paragraph):
            head = paragraph[: end.end()]
            if not head.endswith(ABBREVIATIONS):
                return head
        return paragraph
    return ""


IMPLEMENTED_IN = {"os": ("posix",), "os.path": ("posixpath", "genericpath", "ntpath")}
"""Public modules whose objects `os` and `os.path` re-export as their own."""


def _home(obj, module_name):
    """Whether `obj` belongs to `module_name`, not to another public module it imports."""
    home = getattr(obj, "__module__", None)
    if home is None or home == module_name:
        return True
    if any(part.startswith("_") for part in home.split(".")):
        return True  # a private implementation module: _socket, zoneinfo._tzpath
    return home in IMPLEMENTED_IN.get(module_name, ())


def _members(prefix, cls):
    """`(qualified name, member)` of the public methods and properties of `cls`.

    Those `cls` defines and those it inherits from private implementation
    classes (``socket.socket`` from ``_socket.socket``).
    """
    namespace = {}
    for klass in reversed(cls.__mro__):
        if klass is cls or klass.__module__.startswith("_"):
            namespace.update(vars(klass))
    for attr, member in sorted(namespace.items()):
        if attr.startswith("_") or inspect.isclass(member):
            continue
        if isinstance(member, (classmethod, staticmethod)):
            member = member.__func__
        if callable(member) or isinstance(member, property):
            yield f"{prefix}.{attr}", member


def _objects(module_name):
    """`(qualified name, object)` of the module's public API: functions, then classes."""
    if module_name == "str":
        yield from _members("str", str)
        return
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    if module_name == "os":
        names = OS_FILE_FUNCTIONS
    found = [(name, getattr(module, name, None)) for name in sorted(set(names))]
    found = [
        (name, obj)
        for name, obj in found
        if callable(obj) and not inspect.ismodule(obj) and _home(obj, module_name)
    ]
    for name, obj in found:
        if not inspect.isclass(obj):
            yield f"{module_name}.{name}", obj
    for name, obj in found:
        if inspect.isclass(obj) and obj.__name__ == name:  # not an alias (socket.SocketType)
            yield f"{module_name}.{name}", obj
            if not issubclass(obj, BaseException):
                yield from _members(f"{module_name}.{name}", obj)


def _keep(text):
    return (
        len(text.split()) >= MIN_WORDS
        and len(text) >= MIN_CHARS
        and text[0].isalpha()
        and not any(mark in text for mark in NOT_PROSE)
        and not NAMES_A_MODULE.search(text)
    )


def docstring_candidates():
    """Every kept `{"name", "module", "label", "text"}`, before balancing (rules 1-3)."""
    seen_objects, by_text = {}, {}
    for label, modules in AREAS.items():
        for module_name in modules:
            for name, obj in _objects(module_name):
                if id(obj) in seen_objects:
                    continue
                seen_objects[id(obj)] = obj  # kept alive: ids stay unique
                doc = getattr(obj, "__doc__", None)
                text = first_sentence(doc) if isinstance(doc, str) else ""
                if not _keep(text):
                    continue
                key = " ".join(text.lower().split())
                record = {"name": name, "module": module_name, "label": label, "text": text}
                by_text.setdefault(key, []).append(record)
    kept = []
    for records in by_text.values():
        if len({r["label"] for r in records}) == 1:
            kept.append(records[0])
    order = {m: i for i, m in enumerate(m for ms in AREAS.values() for m in ms)}
    return sorted(kept, key=lambda r: (order[r["module"]], r["name"]))


def _balanced(records, rng):
    """At most `PER_CLASS` records, the modules taking turns (rule 4)."""
    if len(records) <= PER_CLASS:
        return list(records)
    queues = {}
    for record in records:
        queues.setdefault(record["module"], []).append(record)
    for queue in queues.values():
        rng.shuffle(queue)
    chosen = []
    while len(chosen) < PER_CLASS:
        for queue in queues.values():
            if queue and len(chosen) < PER_CLASS:
                chosen.append(queue.pop(0))
    return chosen


def _split(records, rng):
    """Tags each record "train" or "test" by groups of the last name part (rule 5)."""
    groups = {}
    for record in records:
        groups.setdefault(record["name"].rsplit(".", 1)[-1], []).append(record)
    keys = sorted(groups)
    rng.shuffle(keys)
    n_train = 0
    for key in keys:
        split = "train" if n_train < TRAIN_FRACTION * len(records) else "test"
        for record in groups[key]:
            record["split"] = split
        n_train += len(groups[key]) if split == "train" else 0


def stdlib_docstrings():
    """The labelled, balanced, split examples, in a fixed shuffled order."""
    rng = random.Random(SEED)
    candidates = docstring_candidates()
    examples = []
    for label in AREAS:
        chosen = _balanced([r for r in candidates if r["label"] == label], rng)
        _split(chosen, rng)
        examples.extend(chosen)
    rng.shuffle(examples)
    return [{k: r[k] for k in ("name", "module", "label", "split", "text")} for r in examples]


def search_documents():
    """`{"name", "text"}` of each of `SEARCH_DOCUMENTS`, in that order."""
    texts = {r["name"]: r["text"] for r in docstring_candidates()}
    missing = [name for name in SEARCH_DOCUMENTS if name not in texts]
    if missing or len(set(SEARCH_DOCUMENTS)) != len(SEARCH_DOCUMENTS):
        raise ValueError(f"SEARCH_DOCUMENTS: not kept by rules 1-3 or repeated: {missing}")
    return [{"name": name, "text": texts[name]} for name in SEARCH_DOCUMENTS]


# ---------------------------------------------------------------- files


def _header(source):
    return {
        "source": source,
        "python_version": platform.python_version(),
        "licence": "PSF-2.0 (Python Software Foundation License Version 2); see LICENSE",
        "generator": "tools/snapshot_text_data.py",
    }


def build():
    """`{file name: bytes}` of the snapshot, from the running Python."""
    topics = python_topics()
    topics = {
        **_header("pydoc_data.topics.topics"),
        "validation_topics": validation_topics(topics),
        "topics": topics,
    }
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as f:
        f.write(json.dumps(topics, ensure_ascii=False, indent=0).encode("utf-8"))
    header = {
        **_header("first sentences of standard-library docstrings"),
        "class_names": sorted(AREAS),
        "modules": AREAS,
    }
    lines = json.dumps(header, ensure_ascii=False, indent=1)[:-2] + ',\n "examples": [\n'
    rows = [json.dumps(r, ensure_ascii=False) for r in stdlib_docstrings()]
    docstrings = lines + ",\n".join(rows) + "\n ]\n}\n"
    search = {**_header("first sentences of standard-library docstrings"), "documents": []}
    search["documents"] = search_documents()
    rows = [json.dumps(d, ensure_ascii=False) for d in search.pop("documents")]
    search_text = json.dumps(search, ensure_ascii=False, indent=1)[:-2] + ',\n "documents": [\n'
    search_text += ",\n".join(rows) + "\n ]\n}\n"
    return {
        TOPICS_FILE: buffer.getvalue(),
        DOCSTRINGS_FILE: docstrings.encode("utf-8"),
        SEARCH_DOCUMENTS_FILE: search_text.encode("utf-8"),
    }


def _content(name, data):
    """What a snapshot file says, less the Python version it was taken from."""
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    content = json.loads(data)
    content.pop("python_version")
    return content


def differences(folder=ASSETS):
    """Names of the snapshot files whose data differ from what this Python gives."""
    return [
        name
        for name, data in build().items()
        if not (folder / name).exists()
        or _content(name, (folder / name).read_bytes()) != _content(name, data)
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    parser.add_argument("--out", type=Path, default=ASSETS, help="folder of the snapshot")
    args = parser.parse_args(argv)
    if args.check:
        changed = differences(args.out)
        print(f"Python {platform.python_version()}: " + (", ".join(changed) or "no") + " change")
        return 1 if changed else 0
    args.out.mkdir(parents=True, exist_ok=True)
    files = build()
    licence = Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"
    if licence.exists():  # the licence of the Python the text comes from
        files["LICENSE"] = licence.read_bytes()
    for name, data in files.items():
        (args.out / name).write_bytes(data)
        print(f"wrote {args.out / name} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
