"""The v3 parallel-pair builders of scripts/prepare_parallel.py (issue 26) on tiny made-up data."""

from __future__ import annotations

import json
import posixpath
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import parallel_dev  # noqa: E402
import parallel_sources as ps  # noqa: E402
import prepare_parallel as pp  # noqa: E402

from m2vsearch.eval.datasets import load_beir  # noqa: E402
from m2vsearch.eval.metrics import mean_metrics  # noqa: E402


class FakeTree:
    """GitTree's read/entries on a dict; a value starting with 'LINK:' is a symlink."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files_ = files

    def entries(self, folder: str) -> dict[str, str]:
        prefix = folder.rstrip("/") + "/"
        names = {
            p[len(prefix) :]: v for p, v in self.files_.items() if p.startswith(prefix) and "/" not in p[len(prefix) :]
        }
        return {name: "120000" if v.startswith("LINK:") else "100644" for name, v in names.items()}

    def read(self, path: str) -> str | None:
        value = self.files_.get(path)
        while value is not None and value.startswith("LINK:"):
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), value[5:]))
            value = self.files_.get(path)
        return value


def test_git_tree_follows_symlinks_inside_the_tree(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "testsets" / "deu-eng").mkdir(parents=True)
    (repo / "testsets" / "eng-deu").mkdir()
    (repo / "testsets" / "deu-eng" / "tatoeba-test-v1.deu").write_text("Hallo Welt\n")
    (repo / "testsets" / "eng-deu" / "tatoeba-test-v1.deu").symlink_to("../deu-eng/tatoeba-test-v1.deu")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    tree = ps.GitTree(repo / ".git", commit)
    assert tree.entries("testsets/eng-deu") == {"tatoeba-test-v1.deu": "120000"}
    assert tree.read("testsets/eng-deu/tatoeba-test-v1.deu") == "Hallo Welt\n"
    assert tree.read("testsets/eng-deu/missing.eng") is None
    assert tree.files("testsets") == ["testsets/deu-eng/tatoeba-test-v1.deu"]
    (tmp_path / "mirrors").mkdir()
    (tmp_path / "mirrors" / "o+r").symlink_to(repo / ".git")
    assert pp.mirror(tmp_path / "mirrors", "o/r", commit) == tmp_path / "mirrors" / "o+r"
    with pytest.raises(SystemExit):
        pp.mirror(tmp_path / "mirrors", "o/missing", commit)


def test_opus_testsets_reads_tatoeba_and_tico_both_directions_with_labels():
    tree = FakeTree(
        {
            "testsets/zho-eng/tatoeba-test-v2.zho": "我们走吧。\n走吧\n你好\n",
            "testsets/zho-eng/tatoeba-test-v2.zho.labels": "cmn_Hans\nyue_Hans\ncmn_Hant\n",
            "testsets/zho-eng/tatoeba-test-v2.eng": "Let's go.\nGo\nHello\n",
            "testsets/zho-eng/tico19-test.zho": "LINK:../eng-zho/tico19-test.zho",
            "testsets/zho-eng/tico19-test.eng": "LINK:../eng-zho/tico19-test.eng",
            "testsets/eng-zho/tico19-test.zho": "洗手。\n",
            "testsets/eng-zho/tico19-test.eng": "Wash  your hands.\n",
            "testsets/zho-eng/newstest2019.zho": "新闻\n",  # WMT news: no licence, left out
            "testsets/zho-eng/newstest2019.eng": "News\n",
            "testsets/zho-eng/tatoeba-test-v3.zho": "一\n二\n",  # lengths differ: skipped
            "testsets/zho-eng/tatoeba-test-v3.eng": "one\n",
        }
    )
    out = ps.opus_testsets(tree, "zh")
    assert out["tatoeba"] == [("我们走吧。", "Let's go."), ("你好", "Hello")]
    assert out["tico19"] == [("洗手。", "Wash your hands."), ("洗手。", "Wash your hands.")]  # both folders


def test_ntrex_and_pud_pairs():
    tree = FakeTree(
        {"NTREX-128/newstest2019-src.eng.txt": "A.\nB.\n", "NTREX-128/newstest2019-ref.arb.txt": "أ.\nب.\n"}
    )
    assert ps.ntrex(tree, "ar") == [("أ.", "A."), ("ب.", "B.")]
    assert ps.ntrex(tree, "de") == []
    english = "# newdoc id = n1\n# sent_id = n1\n# text = One sentence.\n1\tOne\n\n# sent_id = n2\n# text = Two.\n"
    german = "# sent_id = n2\n# text = Zwei.\n1\tZwei\n\n# sent_id = n3\n# text = Drei.\n"
    assert ps.pud_pairs(german, english) == [("Zwei.", "Two.")]


PO = r"""
msgid ""
msgstr ""
"Language: es\n"

#: library/os.rst:1
msgid ""
"The :mod:`platform` module provides ``detailed`` checks, see :ref:`the "
"guide <guide-label>`."
msgstr ""
"El módulo :mod:`platform` proporciona comprobaciones ``detalladas``, vea :ref:`la "
"guía <guide-label>`."

#, fuzzy
msgid "A fuzzy entry is never used."
msgstr "Una entrada dudosa."

msgid "Untranslated entry stays out."
msgstr ""

msgid "Too short"
msgstr "Corto"

msgid "Same text in both languages"
msgstr "Same text in both languages"

#~ msgid "Obsolete entry is never used."
#~ msgstr "Entrada obsoleta."
"""


def test_po_pairs_keep_translated_prose_without_markup():
    assert ps.po_pairs(PO) == [
        (
            "El módulo platform proporciona comprobaciones detalladas, vea la guía.",
            "The platform module provides detailed checks, see the guide.",
        )
    ]


def test_split_pairs_dedups_blocks_dev_text_and_holds_out_whole_texts():
    rows = [(f"x{i}", f"e{i}", "tatoeba") for i in range(20)]
    rows += [("x0", "e0", "ntrex"), ("y0", "e0", "ntrex"), ("same", "same", "pud"), ("dev", "e99", "pud")]
    train, held, dropped = pp.split_pairs(rows, {"dev"}, holdout=3, seed="t")
    assert dropped == 1 and len(held) == 3
    assert ("x0", "e0", "tatoeba") in train + held and ("x0", "e0", "ntrex") not in train + held
    assert all(o != e for o, e, _ in train)
    held_texts = {t for o, e, _ in held for t in (o, e)}
    assert not any(o in held_texts or e in held_texts for o, e, _ in train)
    assert pp.split_pairs(rows, {"dev"}, 3, "t") == (train, held, dropped)  # deterministic


def test_flores_dev_sets_and_their_scores(tmp_path):
    documents = ["u1", "u1", "u1", "u2", "u3", "u3"]
    sentences = {
        "en": ["cats purr", "cats sleep", "cats eat", "rain falls", "cars drive", "cars stop"],
        "de": ["Katzen schnurren", "Katzen schlafen", "Katzen fressen", "Regen fällt", "Autos fahren", "Autos halten"],
    }
    dev = ps.flores_dev_sets(sentences, documents, seed="s")
    assert set(dev) == {"cross", "mono", "doc-cross"} and set(dev["cross"]) == {"de"}
    queries, corpus, qrels = dev["cross"]["de"]
    assert len(queries) == 6 and corpus["s003"] == "rain falls" and qrels["q003"] == ["s003"]
    queries, corpus, qrels = dev["mono"]["de"]
    assert len(queries) == 2 and len(corpus) == 3 and corpus["d001"] == "Regen fällt"  # single sentence: distractor
    for qid, (doc,) in qrels.items():
        assert queries[qid] not in corpus[doc] and corpus[doc]  # the query sentence is left out of its document
    en_queries, _, en_qrels = dev["mono"]["en"]
    assert list(en_queries) == list(queries) and en_qrels == qrels  # same sentences in every language
    x_queries, x_corpus, _ = dev["doc-cross"]["de"]
    assert x_queries == queries and x_corpus == dev["mono"]["en"][1]
    for task, per_lang in dev.items():
        for lang, parts in per_lang.items():
            pp.write_dev(tmp_path / task / lang, *parts)
    read = load_beir(tmp_path / "mono" / "de")  # what parallel_dev.py scores
    assert read.queries == queries and read.corpus == corpus and read.relevant == {q: set(d) for q, d in qrels.items()}
    assert json.loads((tmp_path / "cross" / "de" / "corpus.jsonl").read_text().split("\n")[0])["_id"] == "s000"


def test_ranked_ids_and_their_metrics():
    sims = np.array([[0.9, 0.1, 0.5], [0.9, 0.1, 0.5]])
    ranked = parallel_dev.ranked_ids(sims, ["a", "b", "c"], ["q1", "q2"])
    assert ranked == {"q1": ["a", "c", "b"], "q2": ["a", "c", "b"]}
    metrics = mean_metrics(ranked, {"q1": {"a"}, "q2": {"c"}})
    assert metrics["recall@1"] == 0.5 and metrics["mrr@10"] == pytest.approx(0.75)
    assert metrics["ndcg@10"] == pytest.approx((1 + 1 / np.log2(3)) / 2)
