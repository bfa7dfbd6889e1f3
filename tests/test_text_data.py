"""The offline text data of `dl4keras.data` (Tutorial 05) and the tool that snapshots it."""

import collections
import fnmatch
import importlib.util
import json
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dl4keras import data

ROOT = Path(__file__).resolve().parent.parent
TEXT = ROOT / "dl4keras" / "assets" / "text"
TOOL = ROOT / "tools" / "snapshot_text_data.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("snapshot_text_data", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- python_topics


def test_python_topics_splits_by_topic_fixed_and_disjoint():
    everything = data.python_topics_dict("all")
    train, validation = data.python_topics_dict("train"), data.python_topics_dict("validation")
    assert len(everything) == 79 and len(train) == 73 and len(validation) == 6
    assert list(everything) == sorted(everything)
    assert " ".join(validation) == "attribute-references calls formatstrings objects strings yield"
    assert set(train).isdisjoint(validation) and set(train) | set(validation) == set(everything)
    assert data.python_topics_dict("train") == train  # the same every call

    text = {split: data.python_topics(split) for split in data.TOPIC_SPLITS}
    assert [len(text[s]) for s in ("train", "validation", "all")] == [417357, 47767, 465126]
    assert text["train"] == data.python_topics()  # "train" is the default
    assert text["all"] == data.TOPIC_SEPARATOR.join(everything.values())

    # No paragraph of the validation text is in the training text.
    def paragraphs(topics):
        return {p.strip() for t in topics.values() for p in re.split(r"\n\s*\n", t)}

    shared = paragraphs(train) & paragraphs(validation)
    assert max(map(len, shared), default=0) < 100, shared  # at most a short line in common
    assert all(topic.endswith("\n") and topic.strip() for topic in everything.values())


def test_python_topics_rejects_an_unknown_split():
    with pytest.raises(ValueError, match=r"one of 'train', 'validation', 'all'.*split='test'"):
        data.python_topics("test")
    with pytest.raises(ValueError, match="split='valid'"):
        data.python_topics_dict("valid")


# ---------------------------------------------------------------- stdlib_docstrings


def test_stdlib_docstrings_sizes_classes_and_a_held_out_test_split():
    texts, labels, class_names = data.stdlib_docstrings("all")
    train_texts, train_labels, train_names = data.stdlib_docstrings("train")
    test_texts, test_labels, test_names = data.stdlib_docstrings("test")
    assert class_names == train_names == test_names
    assert class_names == ["dates and times", "files", "networking", "numbers", "text"]
    assert len(texts) == 498 and len(train_texts) == 299 and len(test_texts) == 199
    assert labels.dtype == train_labels.dtype == np.int64 and labels.shape == (498,)
    assert np.bincount(labels).tolist() == [98, 100, 100, 100, 100]
    assert np.bincount(train_labels).tolist() == [59, 60, 60, 60, 60]
    assert np.bincount(test_labels).tolist() == [39, 40, 40, 40, 40]
    # Held out: no sentence and no object of the test split is in the training split.
    assert set(train_texts).isdisjoint(test_texts)
    train_objects, test_objects = (data.stdlib_docstring_names(s) for s in ("train", "test"))
    assert set(train_objects).isdisjoint(test_objects)
    assert sorted(train_texts + test_texts) == sorted(texts)
    assert len(set(texts)) == len(texts)  # no duplicates
    assert len(set(data.stdlib_docstring_names("all"))) == len(texts)
    assert all(isinstance(t, str) and len(t.split()) >= 3 for t in texts)


def test_stdlib_docstrings_split_keeps_near_twins_on_one_side():
    """`math.sqrt` and `decimal.Decimal.sqrt` never straddle the split."""
    for c in range(5):
        sides = []
        for split in ("train", "test"):
            names = data.stdlib_docstring_names(split)
            labels = data.stdlib_docstrings(split)[1]
            sides.append({n.rsplit(".", 1)[-1] for n, y in zip(names, labels) if y == c})
        assert sides[0].isdisjoint(sides[1])


def test_stdlib_docstrings_are_fixed_and_safe_to_modify():
    texts, labels, names = data.stdlib_docstrings("train")
    assert texts[:2] == ["Return the square root of x.", "Return the arc tangent of z."]
    texts.append("changed")
    labels[0] = 4
    names.append("changed")
    again_texts, again_labels, again_names = data.stdlib_docstrings("train")
    assert len(again_texts) == 299 and again_labels[0] == 3 and len(again_names) == 5


def test_stdlib_docstrings_never_name_a_module_in_code(tool):
    """The label is not spelled out: no ``re.match()``, ``time.localtime()``..."""
    texts, labels, class_names = data.stdlib_docstrings("all")
    assert not [t for t in texts if tool.NAMES_A_MODULE.search(t)]
    names = data.stdlib_docstring_names("all")
    for name, label in zip(names, labels):
        assert any(name.startswith(m + ".") for m in tool.AREAS[class_names[label]]), name


def test_stdlib_docstrings_rejects_an_unknown_split():
    with pytest.raises(ValueError, match=r"one of 'train', 'test', 'all'.*split='validation'"):
        data.stdlib_docstrings("validation")


# ---------------------------------------------------------------- search_queries


def _words(text):
    return set(re.findall(r"[a-z0-9]+", text.lower())) - set(
        "a an the of to in on is it i my me how do can what by for and or with from this "
        "that as be into at".split()
    )


def test_search_queries_answers_are_valid_and_documents_unique():
    queries, documents, answers = data.search_queries()
    assert len(queries) == 74 and len(documents) == 195
    assert answers.dtype == np.int64 and answers.shape == (74,)
    assert answers.min() >= 0 and answers.max() < len(documents)
    assert len(set(documents)) == len(documents)
    assert len({d.split(": ", 1)[1] for d in documents}) == len(documents)
    assert len(set(queries)) == len(queries)
    assert len(set(answers.tolist())) == len(answers)  # one query per answer at most
    assert data.search_queries()[0] == queries  # fixed
    assert documents[answers[queries.index("How do I get the square root of a number?")]] == (
        "math.sqrt: Return the square root of x."
    )


def test_search_documents_cover_every_area(tool):
    _, documents, answers = data.search_queries()
    names = [d.split(": ", 1)[0] for d in documents]
    assert names == tool.SEARCH_DOCUMENTS
    areas = {m: label for label, modules in tool.AREAS.items() for m in modules}
    per_area = collections.Counter()
    for i in answers:
        module = max((m for m in areas if names[i].startswith(m + ".")), key=len)
        per_area[areas[module]] += 1
    assert len(per_area) == 5 and min(per_area.values()) >= 10


def test_search_queries_are_paraphrases_not_copies():
    queries, documents, answers = data.search_queries()
    overlaps = []
    for query, answer in zip(queries, answers):
        text = documents[answer].split(": ", 1)[1]
        assert query.lower() != text.lower() and text.lower() not in query.lower()
        q, d = _words(query), _words(text)
        overlaps.append(len(q & d) / len(q | d))
    assert max(overlaps) < 0.5 and np.mean(overlaps) < 0.1, (max(overlaps), np.mean(overlaps))


# ---------------------------------------------------------------- the snapshot


def test_the_snapshot_is_read_not_the_running_python(monkeypatch):
    """The data load with `pydoc_data` unimportable: it comes from the files."""
    monkeypatch.setitem(sys.modules, "pydoc_data", None)
    monkeypatch.setitem(sys.modules, "pydoc_data.topics", None)
    data._text_asset.cache_clear()
    try:
        assert len(data.python_topics("all")) == 465126
        assert len(data.stdlib_docstrings("all")[0]) == 498
        assert len(data.search_queries()[0]) == 74
    finally:
        data._text_asset.cache_clear()


def test_a_missing_snapshot_says_how_to_get_it_back(monkeypatch):
    monkeypatch.setattr(data, "TEXT_DIR", "assets/no-such-folder")
    data._text_asset.cache_clear()
    try:
        with pytest.raises(FileNotFoundError, match="reinstall.*snapshot_text_data.py"):
            data.python_topics()
    finally:
        data._text_asset.cache_clear()


def test_the_snapshot_records_its_source_and_licence():
    versions = set()
    for name in ("stdlib_docstrings.json", "search_documents.json"):
        header = json.loads((TEXT / name).read_text(encoding="utf-8"))
        assert header["licence"].startswith("PSF-2.0")
        versions.add(header["python_version"])
    assert len(versions) == 1
    readme = (TEXT / "README.md").read_text(encoding="utf-8")
    assert versions.pop() in readme and "PSF" in readme
    assert "PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2" in (TEXT / "LICENSE").read_text()


def test_every_text_asset_ships_in_the_wheel():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["dl4keras.assets"]
    for path in TEXT.iterdir():
        relative = f"text/{path.name}"
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative


def test_the_tool_matches_the_snapshot_it_wrote(tool):
    """Whatever the Python: the tool's tables are those of the snapshot."""
    header = json.loads((TEXT / "stdlib_docstrings.json").read_text(encoding="utf-8"))
    assert header["class_names"] == sorted(tool.AREAS)
    assert header["modules"] == {k: list(v) for k, v in tool.AREAS.items()}
    queries = json.loads((TEXT / "search_queries.json").read_text(encoding="utf-8"))
    assert {q["answer"] for q in queries["queries"]} <= set(tool.SEARCH_DOCUMENTS)


def _run_tool(code):
    """Runs `code` with the tool imported as `tool`, in a fresh Python.

    A fresh interpreter, because the tool reads the live standard library and
    pytest-socket (this suite runs with the network cut) replaces `socket.socket`.
    """
    script = (
        f"import sys; sys.path.insert(0, {str(TOOL.parent)!r}); import snapshot_text_data as tool\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script + code], capture_output=True, text=True, timeout=120
    )


def test_the_tool_writes_the_same_bytes_twice():
    """Fixed seeds and gzip without a time stamp: a rebuild changes no byte."""
    done = _run_tool("assert tool.build() == tool.build(); print(sorted(tool.build()))")
    assert done.returncode == 0, done.stderr
    assert "python_topics.json.gz" in done.stdout


def test_regenerating_from_this_python_gives_the_snapshot():
    """The snapshot is the source of truth: other Pythons may give other text.

    Docstrings and the reference topics change between Python versions, so
    the comparison runs only on the version the snapshot was taken from.
    """
    header = json.loads((TEXT / "stdlib_docstrings.json").read_text(encoding="utf-8"))
    if platform.python_version() != header["python_version"]:
        pytest.skip(
            f"snapshot taken from Python {header['python_version']}, this is "
            f"{platform.python_version()}: its text may differ, and the snapshot is what "
            "dl4keras.data reads"
        )
    done = subprocess.run(
        [sys.executable, str(TOOL), "--check"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no change" in done.stdout


def test_first_sentence_rules(tool):
    assert tool.first_sentence("sqrt(x)\n\nReturn the square root of x.") == (
        "Return the square root of x."
    )
    assert tool.first_sentence("Convert a tuple, e.g. (1, 2). More.") == (
        "Convert a tuple, e.g. (1, 2)."
    )
    assert tool.first_sentence("log(x, [base=math.e])\nReturn the log of x.\n") == (
        "Return the log of x."
    )
    assert tool.first_sentence("f(a,\n  b) -> int\n\nDo it.\\\n\nMore") == "Do it."
    assert not tool._keep("Return time tuple, compatible with time.localtime().")
    assert not tool._keep("int -> date corresponding to a proleptic Gregorian ordinal.")
    assert tool._keep("Return the current time in seconds since the Epoch.")
