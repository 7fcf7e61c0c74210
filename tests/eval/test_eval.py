"""Evaluation: metric parity with sentence-transformers, BEIR/NanoBEIR readers, sweeps, JSON."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import needs, random_model
from corpora import TOPICS, write_beir

from m2vsearch.cli import cli
from m2vsearch.eval.datasets import (
    DatasetError,
    load_beir,
    load_nanobeir,
    nanobeir_names,
)
from m2vsearch.eval.metrics import mean_metrics
from m2vsearch.eval.run import evaluate


def st_ir_evaluator() -> type:
    needs("sentence_transformers")
    try:
        from sentence_transformers.sentence_transformer.evaluation import (
            InformationRetrievalEvaluator,
        )
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.evaluation import InformationRetrievalEvaluator
    return InformationRetrievalEvaluator


def test_metrics_equal_sentence_transformers_on_random_rankings() -> None:
    import numpy as np

    InformationRetrievalEvaluator = st_ir_evaluator()

    rng = random.Random(1)
    corpus = {f"d{i}": f"doc {i}" for i in range(300)}
    queries = {f"q{i}": f"query {i}" for i in range(60)}
    relevant = {q: set(rng.sample(list(corpus), rng.randint(1, 12))) for q in queries}
    evaluator = InformationRetrievalEvaluator(queries, corpus, relevant, write_csv=False)
    rankings, results = {}, []
    for query_id in evaluator.queries_ids:
        docs = rng.sample(list(corpus), 120)
        scores = sorted((rng.random() for _ in docs), reverse=True)
        rankings[query_id] = docs
        results.append([{"corpus_id": d, "score": s} for d, s in zip(docs, scores)])
    theirs = evaluator.compute_metrics(results)
    ours = mean_metrics(rankings, relevant)
    for k in (1, 3, 5, 10):
        for name in ("accuracy", "precision", "recall"):
            assert ours[f"{name}@{k}"] == pytest.approx(theirs[f"{name}@k"][k], abs=1e-6)
    assert ours["mrr@10"] == pytest.approx(theirs["mrr@k"][10], abs=1e-6)
    assert ours["ndcg@10"] == pytest.approx(theirs["ndcg@k"][10], abs=1e-6)
    assert ours["map@100"] == pytest.approx(theirs["map@k"][100], abs=1e-6)
    assert np.isfinite(list(ours.values())).all()


def test_eval_through_the_product_matches_sentence_transformers(tmp_path: Path) -> None:
    InformationRetrievalEvaluator = st_ir_evaluator()

    from m2vsearch.index.index import Index

    data = load_beir(write_beir(tmp_path / "set"))
    model = random_model(dim=32)
    [row] = evaluate([data], model, [16], ["dense"]).rows
    # the same rankings, scored by sentence-transformers
    with Index.create(tmp_path / "idx", model=model, dims=16) as index:
        ids = dict(zip(index.add_texts(list(data.corpus.values())), data.corpus))
        evaluator = InformationRetrievalEvaluator(data.queries, data.corpus, data.relevant, write_csv=False)
        results = [
            [{"corpus_id": ids[h.id], "score": h.score} for h in index.search(data.queries[q], k=100, mode="dense")]
            for q in evaluator.queries_ids
        ]
    theirs = evaluator.compute_metrics(results)
    assert row.metrics["ndcg@10"] == pytest.approx(theirs["ndcg@k"][10], abs=1e-6)
    assert row.metrics["map@100"] == pytest.approx(theirs["map@k"][100], abs=1e-6)


def test_beir_reader(tmp_path: Path) -> None:
    data = load_beir(write_beir(tmp_path / "a", qrels_name="qrels/test.tsv"))
    assert len(data.corpus) == 30 and data.corpus["d0"].startswith("search search engine")
    assert set(data.queries) == {f"q{i}" for i in range(len(TOPICS))}  # q-none dropped
    assert "d1" not in data.relevant["q0"] and "d0" in data.relevant["q0"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda f: (f / "corpus.jsonl").write_text('{"_id": "x", "text": "ok"}\n{broken\n'),
            r"corpus.jsonl:2: not JSON",
        ),
        (lambda f: (f / "qrels.tsv").unlink(), "has no qrels/test.tsv or qrels.tsv"),
        (lambda f: (f / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\tmany\n"), "is not a number"),
        (lambda f: (f / "qrels.tsv").write_text("q0\td0\n"), "expected query-id, corpus-id, score"),
        (lambda f: (f / "queries.jsonl").write_text('{"text": "no id"}\n'), "expected an object with an '_id'"),
        (lambda f: (f / "queries.jsonl").unlink(), "missing"),
    ],
)
def test_malformed_beir_files_give_clear_errors(tmp_path: Path, damage: object, message: str) -> None:
    folder = write_beir(tmp_path / "bad")
    damage(folder)  # type: ignore[operator]
    with pytest.raises(DatasetError, match=message):
        load_beir(folder)


def _write_parquet(path: Path, rows: list[dict[str, object]]) -> None:
    pa = needs("pyarrow")
    pq = needs("pyarrow.parquet", "eval")

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


NANO_CORPUS = [{"_id": "c1", "text": "static embeddings are fast"}, {"_id": "c2", "text": "bread needs flour"},
               {"_id": "c3", "text": ""}]  # fmt: skip
NANO_QUERIES = [{"_id": "q1", "text": "fast embeddings"}, {"_id": "q2", "text": "flour"}, {"_id": "q3", "text": "none"}]
NANO_QRELS = [{"query-id": "q1", "corpus-id": "c1"}, {"query-id": "q2", "corpus-id": "c2"}]


def test_nanobeir_sentence_transformers_layout(tmp_path: Path) -> None:
    for subset, rows in (("corpus", NANO_CORPUS), ("queries", NANO_QUERIES), ("qrels", NANO_QRELS)):
        _write_parquet(tmp_path / subset / "NanoSciFact-00000-of-00001.parquet", rows)
        _write_parquet(tmp_path / subset / "NanoNFCorpus-00000-of-00001.parquet", rows)
    sets = load_nanobeir(tmp_path, nanobeir_names("scifact,NanoNFCorpus"))
    assert [s.name for s in sets] == ["NanoSciFact", "NanoNFCorpus"]
    assert set(sets[0].corpus) == {"c1", "c2"}  # empty texts dropped, as sentence-transformers does
    assert set(sets[0].queries) == {"q1", "q2"} and sets[0].relevant["q1"] == {"c1"}
    with pytest.raises(DatasetError, match="NanoFiQA2018 not found under"):
        load_nanobeir(tmp_path, ["fiqa2018"])


def test_nanobeir_zeta_alpha_layout_with_list_qrels(tmp_path: Path) -> None:
    root = tmp_path / "NanoSciFact"
    _write_parquet(root / "corpus" / "train-00000-of-00001.parquet", NANO_CORPUS)
    _write_parquet(root / "queries" / "train-00000-of-00001.parquet", NANO_QUERIES)
    _write_parquet(root / "qrels" / "train-00000-of-00001.parquet", [{"query-id": "q1", "corpus-id": ["c1", "c2"]}])
    [data] = load_nanobeir(tmp_path, ["scifact"])
    assert data.relevant == {"q1": {"c1", "c2"}}
    [same] = load_nanobeir(root, nanobeir_names(None))  # the dataset folder itself
    assert same.name == "NanoSciFact"


def test_malformed_nanobeir(tmp_path: Path) -> None:
    _write_parquet(tmp_path / "corpus" / "NanoSciFact-0.parquet", [{"id": "c1", "text": "x"}])
    _write_parquet(tmp_path / "queries" / "NanoSciFact-0.parquet", NANO_QUERIES)
    _write_parquet(tmp_path / "qrels" / "NanoSciFact-0.parquet", NANO_QRELS)
    with pytest.raises(DatasetError, match="lacks column"):
        load_nanobeir(tmp_path, ["scifact"])
    (tmp_path / "corpus" / "NanoSciFact-0.parquet").write_bytes(b"not parquet")
    with pytest.raises(DatasetError, match="cannot read"):
        load_nanobeir(tmp_path, ["scifact"])
    with pytest.raises(DatasetError, match="unknown NanoBEIR dataset"):
        nanobeir_names("scifact,imagenet")
    with pytest.raises(DatasetError, match="no NanoBEIR folder at .* sentence-transformers/NanoBEIR-en"):
        load_nanobeir(tmp_path / "missing", ["scifact"])


def test_eval_command_sweeps_dims_and_modes_and_writes_json(tmp_path: Path) -> None:
    write_beir(tmp_path / "one")
    write_beir(tmp_path / "two")
    random_model(dim=32).save_pretrained(tmp_path / "model")
    result = CliRunner().invoke(
        cli,
        ["eval", "--beir", str(tmp_path / "one"), "--beir", str(tmp_path / "two"), "--model", str(tmp_path / "model"),
         "--dims", "8,16", "--mode", "dense,bm25,hybrid", "--json", str(tmp_path / "out.json")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out.json").read_text())
    assert set(report) == {"model", "seconds", "results", "mean"}
    assert len(report["results"]) == 2 * 2 * 3 and len(report["mean"]) == 2 * 3
    row = report["results"][0]
    assert set(row) == {"dataset", "dims", "mode", "metrics"}
    assert {"ndcg@10", "mrr@10", "map@100", "recall@10", "precision@1", "accuracy@3"} <= set(row["metrics"])
    bm25 = [r["metrics"]["ndcg@10"] for r in report["results"] if r["mode"] == "bm25" and r["dataset"] == "one"]
    assert bm25[0] == bm25[1] and bm25[0] > 0.5  # BM25 does not depend on dims, and finds the topics
    assert "mean" in result.output


def test_eval_command_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["eval"]).exit_code == 2
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    result = runner.invoke(cli, ["eval", "--nanobeir"])
    assert isinstance(result.exception, DatasetError) and "put NanoBEIR in a folder" in str(result.exception)
    write_beir(tmp_path / "one")
    result = runner.invoke(cli, ["eval", "--beir", str(tmp_path / "one"), "--mode", "sparse"])
    assert result.exit_code == 2 and "sparse" in result.output


def test_calibrate_command_stores_the_hybrid_settings(tmp_path: Path) -> None:
    from m2vsearch.model.static import StaticModel
    from m2vsearch.search.fusion import Fusion

    model = random_model(dim=16)
    model.save_pretrained(tmp_path / "model")
    rng = random.Random(0)
    with (tmp_path / "pairs.jsonl").open("w") as handle:
        for i in range(60):
            topic = TOPICS[i % len(TOPICS)]
            handle.write(json.dumps({"query": topic.split()[0], "positive": f"{topic} {rng.random()}"}) + "\n")
    result = CliRunner().invoke(
        cli, ["calibrate", str(tmp_path / "model"), str(tmp_path / "pairs.jsonl"), "--dense-weight", "0.35"]
    )
    assert result.exit_code == 0, result.output
    fusion = Fusion.from_config(StaticModel.from_pretrained(tmp_path / "model").config)
    assert fusion.dense_weight == 0.35 and -1 <= fusion.unrelated < fusion.related <= 1
    assert fusion.related > 0.5  # a query shares its topic words with its own passage
    assert fusion.unrelated < fusion.noise < 1  # the 99th percentile of unrelated pairs
    bad = CliRunner().invoke(
        cli, ["calibrate", str(tmp_path / "model"), str(tmp_path / "pairs.jsonl"), "--dense-weight", "2"]
    )
    assert bad.exit_code == 2
    # Truncated dims get their own calibration, and their own weight where one is given.
    result = CliRunner().invoke(cli, ["calibrate", str(tmp_path / "model"), str(tmp_path / "pairs.jsonl"), "--dims", "4,8,12",
                                      "--dense-weight-at", "12=0.1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (
        "4 dims" in result.output and "no separation, not stored" in result.output
    )  # 4 random dims: related < unrelated
    config = StaticModel.from_pretrained(tmp_path / "model").config
    assert sorted(config["hybrid"]["by_dims"]) == ["12", "8"]
    at12, at8, full = Fusion.from_config(config, 12), Fusion.from_config(config, 8), Fusion.from_config(config, 16)
    assert (at12.dense_weight, at8.dense_weight, full.dense_weight) == (0.1, 0.35, 0.35)
    assert full == fusion == Fusion.from_config(config, 4)
    assert at8.unrelated > at12.unrelated > full.unrelated  # shorter random vectors agree more by chance
    for args in (["--dense-weight-at", "4:0.1"], ["--dense-weight-at", "4=3"], ["--dims", "x"], ["--dense-weight", "nan"],
                 ["--dims", "0"], ["--dims", "16"], ["--dims", "8,8"], ["--dims", "8", "--dense-weight-at", "12=0.5"],
                 ["--dims", "8", "--dense-weight-at", "8=0.5", "--dense-weight-at", "8=0.6"]):  # fmt: skip
        bad = CliRunner().invoke(cli, ["calibrate", str(tmp_path / "model"), str(tmp_path / "pairs.jsonl"), *args])
        assert bad.exit_code == 2 and "Traceback" not in bad.output, args
    # Recalibrating one dims keeps the others' settings.
    result = CliRunner().invoke(
        cli, ["calibrate", str(tmp_path / "model"), str(tmp_path / "pairs.jsonl"), "--dims", "8"]
    )
    assert result.exit_code == 0 and "kept the stored settings for 12 dims" in result.output, result.output
    assert Fusion.from_config(StaticModel.from_pretrained(tmp_path / "model").config, 12) == at12
    # Pairs that do not match (one passage for every query) cannot calibrate: an error, nothing written.
    before = (tmp_path / "model" / "config.json").read_text()
    queries = [json.loads(line)["query"] for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    (tmp_path / "bad.jsonl").write_text(
        "".join(json.dumps({"query": q, "positive": "the same passage"}) + "\n" for q in queries)
    )
    result = CliRunner().invoke(cli, ["calibrate", str(tmp_path / "model"), str(tmp_path / "bad.jsonl")])
    assert result.exit_code == 1 and "do not separate" in str(result.exception)
    assert (tmp_path / "model" / "config.json").read_text() == before


XQUAD = {  # three parallel paragraphs and questions in three languages
    "en": (["The database index speeds up queries.", "Bread needs yeast and a long rise.", "Heavy rain is expected tomorrow."],
           ["What speeds up database queries?", "What does bread need?", "What is expected tomorrow?"]),
    "de": (["Der Datenbankindex beschleunigt Abfragen.", "Brot braucht Hefe und lange Gare.", "Morgen wird starker Regen erwartet."],
           ["Was beschleunigt Datenbankabfragen?", "Was braucht Brot?", "Was wird morgen erwartet?"]),
    "zh": (["数据库索引可以加快查询速度。", "面包需要酵母和长时间发酵。", "明天预计会有大雨。"],
           ["什么可以加快数据库查询速度？", "面包需要什么？", "明天预计会有什么？"]),
}  # fmt: skip


def write_xquad(root: Path) -> Path:
    for lang, (paragraphs, questions) in XQUAD.items():
        folder = root / lang
        folder.mkdir(parents=True)
        (folder / "corpus.jsonl").write_text(
            "".join(
                json.dumps({"_id": f"p{i}", "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(paragraphs)
            ),
            encoding="utf-8",
        )
        (folder / "queries.jsonl").write_text(
            "".join(
                json.dumps({"_id": f"q{i}", "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(questions)
            ),
            encoding="utf-8",
        )
        (folder / "qrels.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\tp{i}\t1\n" for i in range(3))
        )
    return root


def test_xquad_monolingual_and_cross_lingual_sets(tmp_path: Path) -> None:
    from m2vsearch.eval.datasets import load_xquad

    root = write_xquad(tmp_path / "xquad")
    sets = {s.name: s for s in load_xquad(root, ["de", "zh"], cross_lingual=True)}
    assert sorted(sets) == ["xquad-de", "xquad-de-en", "xquad-zh", "xquad-zh-en"]
    assert sets["xquad-zh-en"].corpus == load_beir(root / "en").corpus  # English paragraphs ...
    assert sets["xquad-zh-en"].queries == sets["xquad-zh"].queries  # ... searched with Chinese questions
    assert sets["xquad-zh-en"].relevant == {f"q{i}": {f"p{i}"} for i in range(3)}
    with pytest.raises(DatasetError, match="no language fr"):
        load_xquad(root, ["fr"])
    (root / "de" / "qrels.tsv").write_text("q0\tp9\t1\n")
    with pytest.raises(DatasetError, match="not parallel"):
        load_xquad(root, ["de"], cross_lingual=True)


def test_eval_xquad_command_uses_trigram_bm25_for_chinese(tmp_path: Path) -> None:
    root = write_xquad(tmp_path / "xquad")
    random_model(dim=8).save_pretrained(tmp_path / "model")
    out = tmp_path / "xquad.json"
    result = CliRunner().invoke(cli, ["eval", "--xquad", str(root), "--langs", "en,zh", "--cross-lingual", "--model",
                                      str(tmp_path / "model"), "--dims", "8", "--json", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {(r["dataset"], r["mode"]): r["metrics"]["ndcg@10"] for r in json.loads(out.read_text())["results"]}
    assert {d for d, _ in rows} == {"xquad-en", "xquad-zh", "xquad-zh-en"}
    assert rows[("xquad-zh", "bm25")] > 0.9  # whole-sentence "words" under unicode61 would match nothing
    assert rows[("xquad-zh-en", "bm25")] < 0.9  # Chinese questions share no words with English text
    bad = CliRunner().invoke(cli, ["eval", "--beir", str(root / "en"), "--cross-lingual"])
    assert bad.exit_code == 2 and "go with --xquad" in bad.output
    for langs in ("", ","):
        bad = CliRunner().invoke(cli, ["eval", "--xquad", str(root), "--langs", langs])
        assert bad.exit_code == 2 and "names no language" in bad.output
    twice = CliRunner().invoke(cli, ["eval", "--xquad", str(root), "--langs", "en,en", "--model", str(tmp_path / "model"),
                                     "--dims", "8", "--mode", "bm25"])  # fmt: skip
    assert twice.exit_code == 0 and twice.output.count("xquad-en ") == 1, twice.output


def test_write_beir_round_trips_through_load_beir(tmp_path: Path) -> None:
    """The scripts' BEIR writer (`write_beir`) writes what `load_beir` reads back, non-ASCII and
    tabs in texts included; a second write replaces the first."""
    from m2vsearch.eval.datasets import write_beir as write_collection

    corpus = [{"_id": "d1", "title": "Über", "text": "naïve\tcafé"}, {"_id": "d2", "title": "", "text": "数据库"}]
    queries = [{"_id": "q1", "text": "was ist über"}, {"_id": "q2", "text": "unjudged"}]
    folder = tmp_path / "set"
    write_collection(folder, [{"_id": "x", "text": "old"}], [{"_id": "q", "text": "old"}], [("q", "x")])
    write_collection(folder, corpus, queries, [("q1", "d1"), ("q1", "d2")])
    data = load_beir(folder)
    assert data.corpus == {"d1": "Über naïve\tcafé", "d2": "数据库"}
    assert data.queries == {"q1": "was ist über"} and data.relevant == {"q1": {"d1", "d2"}}
    assert (folder / "qrels.tsv").read_text() == "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t1\n"
    assert sorted(p.name for p in folder.iterdir()) == ["corpus.jsonl", "qrels.tsv", "queries.jsonl"]
