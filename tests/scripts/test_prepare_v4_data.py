"""The pair builders of scripts/prepare_v4_data.py (issue 24) on tiny in-memory data."""

from __future__ import annotations

import gzip
import json
import random
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


sys.path.insert(0, str(SCRIPTS))
import prepare_code_pairs as code  # noqa: E402
import prepare_selfsup_pairs as selfsup  # noqa: E402
import prepare_v4_data as v4  # noqa: E402

MODULE = textwrap.dedent(
    '''
    def add_totals(rows, column):
        """Sum the values of one column over all rows of a table.

        Parameters
        ----------
        rows : list
        """
        total = 0
        for row in rows:
            total += row[column]
        return total


    def _tiny(x):
        """Return the argument unchanged, always and forever."""
        return x


    def __getattr__(name):
        """Module attribute hook that is never a training pair."""
        value = globals().get(name)
        return value


    class LineReader(object):
        """Read a text file one line at a time with line numbers."""

        def __init__(self, path):
            self.path = path
            self.number = 0

        @property
        def name(self):
            return self.path

        def read_line(self, handle):
            """Read the next line and count it in the line number."""
            self.number += 1
            return handle.readline()
    '''
)


def test_docstring_is_removed_and_units_are_found():
    units = {u.id.split("::")[1].split(":")[0]: u for u in code.code_units(MODULE, "pkg/mod.py")}
    assert set(units) == {"add_totals", "_tiny", "__getattr__", "LineReader", "LineReader.__init__",
                          "LineReader.name", "LineReader.read_line"}  # fmt: skip
    add = units["add_totals"]
    assert add.query == "Sum the values of one column over all rows of a table."
    assert add.code.startswith("def add_totals(rows, column):\n    total = 0")
    assert "Parameters" not in add.code and '"""' not in add.code
    cls = units["LineReader"]
    assert cls.code.splitlines() == ["class LineReader(object):", "    def __init__(self, path):", "    @property",
                                     "    def name(self):", "    def read_line(self, handle):"]  # fmt: skip
    assert units["LineReader.read_line"].code.startswith("def read_line(self, handle):\n    self.number += 1")
    pairs = dict(code.code_pairs(list(units.values())))
    # a body of one statement, a dunder and a unit without a docstring give no pair
    assert set(pairs) == {add.query, cls.query, units["LineReader.read_line"].query}


def test_docstring_query_rules():
    assert code.docstring_query("Short doc.") == ""  # under four words
    assert code.docstring_query("f(x, y) -> int\n\nReturn the sum of two :class:`int` values.") == (
        "Return the sum of two int values."
    )
    assert code.docstring_query("Use ``foo_bar`` with :func:`~pkg.mod.helper` to do it.") == (
        "Use foo_bar with helper to do it."
    )
    assert code.docstring_query(">>> f(1)\n1") == ""
    assert code.docstring_query("Parameters\n----------\nx : int") == ""
    assert code.docstring_query("Args:\n    x: the value") == ""
    assert code.docstring_query("Return the value of the named option.") == "Return the value of the named option."
    long = "This is a first sentence that says a little. " + "More words follow here " * 20
    assert code.docstring_query(long) == "This is a first sentence that says a little."


def test_identifier_split():
    assert code.split_identifiers("getUserName(max_row_count) HTTPServer") == "get User Name(max row count) HTTP Server"
    assert code.ident_variant([("plain words only here", "no identifiers at all")]) == []


def test_skip_path():
    assert code.skip_path("pkg/tests/test_x.py") and code.skip_path("pkg/test_util.py")
    assert code.skip_path("pkg/_vendor/six.py") and code.skip_path("pkg/data.json")
    assert not code.skip_path("pkg/util.py")


def test_held_out_packages_never_in_training(tmp_path, monkeypatch):
    other = MODULE.replace("add_totals", "add_sums").replace("LineReader", "RowReader")
    sources = {"alpha": MODULE, "beta": other, "gamma": other.replace("row", "item")}
    monkeypatch.setattr(v4, "PACKAGES", [(name, "1.0", "") for name in sources])
    monkeypatch.setattr(v4, "HELD_OUT", ["beta"])
    monkeypatch.setattr(v4, "package_units", lambda cache, name, version: code.code_units(sources[name], name))
    monkeypatch.setattr(v4, "stdlib_units", lambda: [])
    v4.step_code(tmp_path, tmp_path)
    with gzip.open(tmp_path / "code/code-docstring.jsonl.gz", "rt", encoding="utf-8") as handle:
        train = [json.loads(line) for line in handle]
    held = code.code_units(sources["beta"], "beta")
    held_code = {u.code for u in held}
    assert train and not any(row["positive"] in held_code for row in train)
    corpus = [json.loads(line) for line in (tmp_path / "dev/code_search/corpus.jsonl").open(encoding="utf-8")]
    assert {d["_id"] for d in corpus} == {u.id for u in held} and all(d["_id"].startswith("beta") for d in corpus)
    queries = [json.loads(line) for line in (tmp_path / "dev/code_search/queries.jsonl").open(encoding="utf-8")]
    qrels = (tmp_path / "dev/code_search/qrels.tsv").read_text(encoding="utf-8").splitlines()
    assert qrels[0] == "query-id\tcorpus-id\tscore"
    assert {row.split("\t")[0] for row in qrels[1:]} == {q["_id"] for q in queries}
    assert all("\t" + d + "\t" not in "".join(qrels) for d in {u.id for u in code.code_units(MODULE, "alpha")})


def test_dev_set_caps_queries_and_joins_duplicates():
    twice = MODULE + MODULE.replace("add_totals", "add_totals_again").replace("LineReader", "OtherReader")
    corpus, queries, qrels = code.dev_set(code.code_units(twice, "p"), max_queries=100)
    sum_query = next(q["_id"] for q in queries if q["text"].startswith("Sum the values"))
    assert len([d for q, d in qrels if q == sum_query]) == 2
    _, few, few_qrels = code.dev_set(code.code_units(twice, "p"), max_queries=2, seed=3)
    assert len(few) == 2 and {q for q, _ in few_qrels} == {q["_id"] for q in few}


PARAGRAPH = (
    "The heart pumps blood through the body. It has four chambers, two atria and two ventricles. "
    "Dr. Harvey described the circulation in 1628. Valves keep the blood flowing in one direction only. "
    "The beat is started by the sinoatrial node in the right atrium."
)


def test_sentences_and_ict():
    sentences = selfsup.split_sentences(PARAGRAPH)
    assert len(sentences) == 5 and sentences[2] == "Dr. Harvey described the circulation in 1628."
    pairs = [selfsup.ict_pair(PARAGRAPH, random.Random(seed)) for seed in range(40)]
    assert pairs == [selfsup.ict_pair(PARAGRAPH, random.Random(seed)) for seed in range(40)]
    for query, rest in pairs:
        assert query in sentences
    removed = [q not in rest for q, rest in pairs]
    assert any(removed) and sum(removed) > 30  # left in about one time in ten
    assert selfsup.ict_pair("One sentence only. And two.", random.Random(0)) is None


def test_crops_are_deterministic_spans():
    passage = " ".join(f"w{i}" for i in range(100))
    crops = [selfsup.crop_pair(passage, random.Random(seed)) for seed in range(20)]
    assert crops == [selfsup.crop_pair(passage, random.Random(seed)) for seed in range(20)]
    for first, second in crops:
        for crop in (first, second):
            assert crop in passage and 8 <= len(crop.split()) <= 50
    assert selfsup.crop_pair("too short a passage", random.Random(0)) is None
    texts = [passage, "short", passage + " more"]
    assert selfsup.sample_pairs(texts, selfsup.crop_pair, 5, 1) == selfsup.sample_pairs(texts, selfsup.crop_pair, 5, 1)


def test_article_sections():
    lead_a, lead_b = "Alpha is a thing. " * 3, "Beta is another. " * 3
    body = (
        "This later paragraph tells much more about the subject of the article, in enough words to count as a section."
    )
    paragraphs = [lead_a, body, body + " 2", lead_b, body + " b", "x", "y", "z", "w", "unknown lead " + body]
    pairs = list(selfsup.article_sections(paragraphs, {lead_a: "Alpha", lead_b: "Beta"}))
    assert pairs == [("Alpha", body), ("Alpha", body + " 2")]  # Beta's run is too long to trust


def test_gzip_output_is_byte_identical(tmp_path):
    pairs = [("query é", "positive ü"), ("a", "b")]
    v4.write_pairs(tmp_path / "one.jsonl.gz", pairs)
    v4.write_pairs(tmp_path / "sub/two.jsonl.gz", pairs)
    assert (tmp_path / "one.jsonl.gz").read_bytes() == (tmp_path / "sub/two.jsonl.gz").read_bytes()
    with gzip.open(tmp_path / "one.jsonl.gz", "rt", encoding="utf-8") as handle:
        assert [json.loads(line) for line in handle] == [{"query": q, "positive": p} for q, p in pairs]


def test_aws_builders():
    model = {
        "metadata": {"serviceAbbreviation": "Amazon S3"},
        "operations": {"GetObject": {"documentation": "<p>Retrieves an object from <code>Amazon S3</code> by key.</p>"}},
        "shapes": {"GetObjectRequest": {"type": "structure", "members": {"VersionId": {
            "documentation": "<p>The version of the object to fetch, when versioning is on.</p>"}}}},
    }  # fmt: skip
    operations, fields = code.botocore_pairs(json.dumps(model))
    assert operations == [("Get Object (Amazon S3)", "Retrieves an object from Amazon S3 by key.")]
    assert fields == [
        ("Version Id of Get Object (Amazon S3)", "The version of the object to fetch, when versioning is on.")
    ]
    rst = textwrap.dedent(
        """\
        **To list the users in an account**

        The following ``list-users`` command lists the IAM users in the current account. ::

            aws iam list-users \\
                --max-items 10

        Output::

            {"Users": []}

        For more information, see `Listing users <https://example.com/x>`__ in the *IAM User Guide*.
        """
    )
    assert code.awscli_pairs(rst) == [
        (
            "To list the users in an account",
            "The following list-users command lists the IAM users in the current account. "
            "aws iam list-users --max-items 10 For more information, see Listing users in the IAM User Guide.",
        )
    ]


@pytest.mark.parametrize("text", ["x" * 5000, "Sentence one. " * 400])
def test_cap_text(text):
    assert len(code.cap_text(text)) <= code.MAX_POSITIVE_CHARS
