"""Featurising a corpus with a tiny random teacher and distilling a static model on it."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import WORDS, needs, random_model

from m2vsearch import ModelError, StaticModel
from m2vsearch.cli import cli
from m2vsearch.model.train.corpus import (
    Projection,
    TokenBatches,
    aligned_table,
    mean_pooled,
    train_corpus,
)
from m2vsearch.model.train.featurise import Teacher, featurise, load_cache, read_texts

CONTENT = [w for w in WORDS if not w.startswith("##") and len(w) > 3]


def make_texts(count: int, seed: int = 0) -> list[str]:
    """Short (2-word) and longer (8-word) texts over the tiny vocabulary."""
    rng = random.Random(seed)
    return [" ".join(rng.sample(CONTENT, 2 if i % 2 else 8)) for i in range(count)]


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def similarity_agreement(model: StaticModel, texts: list[str], teacher_vectors: np.ndarray) -> float:
    """Correlation of the student's and the teacher's pairwise cosines (space-agnostic)."""
    student = model.encode(texts)
    upper = np.triu_indices(len(texts), 1)
    return float(np.corrcoef((student @ student.T)[upper], (teacher_vectors @ teacher_vectors.T)[upper])[0, 1])


def test_teacher_matches_sentence_transformers(tiny_teacher: Path, real_texts: list[str]) -> None:
    SentenceTransformer = needs("sentence_transformers").SentenceTransformer

    texts = real_texts[:40]
    ours = Teacher(tiny_teacher, max_length=64, bf16=False).encode(texts, batch_size=7)
    reference = SentenceTransformer(str(tiny_teacher), device="cpu")
    reference.max_seq_length = 64
    theirs = reference.encode(texts, normalize_embeddings=True)
    assert ours.shape == (40, 48) and ours.dtype == np.float32
    assert float(np.min(np.sum(ours * theirs, axis=1))) > 0.9999
    bf16 = Teacher(tiny_teacher, max_length=64).encode(texts)
    assert float(np.min(np.sum(ours * bf16, axis=1))) > 0.99


def test_read_texts_collects_keys_dedupes_and_refuses_beir(tmp_path: Path) -> None:
    rows = [{"query": "q one", "positive": "p one"}, {"text": "q one"}, {"definition": "d", "examples": ["e1", 3]}]
    texts = read_texts([write_jsonl(tmp_path / "a.jsonl", rows)])
    assert sorted(texts) == ["d", "e1", "p one", "q one"]
    assert read_texts([tmp_path / "a.jsonl"], seed=1) != texts or len(texts) < 3
    assert len(read_texts([tmp_path / "a.jsonl"], limit=2)) == 2
    with pytest.raises(ModelError, match="no texts under the keys"):
        read_texts([write_jsonl(tmp_path / "b.jsonl", [{"other": "x"}])])
    with pytest.raises(ModelError, match=r"c.jsonl:1: expected a JSON object"):
        read_texts([write_jsonl(tmp_path / "c.jsonl", [["x"]])])
    (tmp_path / "beir").mkdir()
    with pytest.raises(ModelError, match="never trained on"):
        read_texts([write_jsonl(tmp_path / "beir" / "a.jsonl", [{"text": "x"}])])
    (tmp_path / "dev" / "pubmedqa").mkdir(parents=True)  # any BEIR-layout file: dev sets, xquad
    for name in ("corpus.jsonl", "queries.jsonl.gz"):
        with pytest.raises(ModelError, match="never trained on"):
            read_texts([write_jsonl(tmp_path / "dev" / "pubmedqa" / name, [{"text": "x"}])])


def test_featurise_resumes_and_refuses_another_text_list(tiny_teacher: Path, tmp_path: Path) -> None:
    teacher = Teacher(tiny_teacher, max_length=32, bf16=False)
    texts = make_texts(25)
    cache = tmp_path / "cache"
    assert featurise(teacher, texts, cache, shard_size=10) == 3
    loaded_texts, vectors, manifest = load_cache(cache, complete_only=True)
    assert loaded_texts == texts and vectors.shape == (25, 48) and manifest["count"] == 25
    np.testing.assert_allclose(vectors, teacher.encode(texts), atol=2e-3)  # stored as float16
    (cache / "vectors-00001.npy").unlink()
    partial_texts, partial, _ = load_cache(cache)
    assert partial_texts == texts[:10] + texts[20:] and len(partial) == 15
    with pytest.raises(ModelError, match="not finished"):
        load_cache(cache, complete_only=True)
    assert featurise(teacher, texts, cache, shard_size=10) == 1
    np.testing.assert_array_equal(load_cache(cache, complete_only=True)[1], vectors)
    assert featurise(teacher, texts, cache, shard_size=10) == 0
    with pytest.raises(ModelError, match="another teacher or text list"):
        featurise(teacher, texts[:-1], cache, shard_size=10)
    with pytest.raises(ModelError, match="no featurised cache"):
        load_cache(tmp_path / "nothing")


def test_featurise_first_shards_and_load_a_prefix(tiny_teacher: Path, tmp_path: Path) -> None:
    teacher = Teacher(tiny_teacher, max_length=32, bf16=False)
    texts = make_texts(25)
    cache = tmp_path / "cache"
    assert featurise(teacher, texts, cache, shard_size=10, first=12) == 2  # shards 0 and 1 hold texts 0..19
    prefix, vectors, _ = load_cache(cache, limit=15)
    assert prefix == texts[:15] and len(vectors) == 15
    with pytest.raises(ModelError, match="not finished"):
        load_cache(cache, limit=21)
    assert featurise(teacher, texts, cache, shard_size=10) == 1  # the rest, later


def test_projection_orders_by_variance_and_alignment_is_exact() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((500, 6)) * np.array([1.0, 5.0, 0.1, 3.0, 0.5, 2.0])
    projected = Projection.fit(vectors, 4, whiten=False)(vectors)
    assert projected.shape == (500, 4)
    assert list(np.argsort(-projected.var(axis=0))) == [0, 1, 2, 3]
    np.testing.assert_allclose(projected.mean(axis=0), 0.0, atol=1e-5)
    whitened = Projection.fit(vectors, 4)(vectors)
    np.testing.assert_allclose(whitened.var(axis=0, ddof=1), 1.0, rtol=1e-3)
    np.testing.assert_allclose(np.abs(np.corrcoef(whitened.T, projected.T)[:4, 4:]).diagonal(), 1.0, atol=1e-4)
    model = random_model(dim=16, seed=1)
    texts = make_texts(300)
    batches = TokenBatches(model, texts)
    rows = np.arange(len(texts))
    mapping = rng.standard_normal((16, 8)).astype(np.float32)
    targets = mean_pooled(model, batches, rows) @ mapping
    table = aligned_table(model, batches, targets, ridge=1e-9)
    assert table.shape == (model.vocab_size, 8)
    np.testing.assert_allclose(table, model.table @ mapping, atol=1e-3)


def test_corpus_training_lowers_the_loss_and_learns_the_teacher(tiny_teacher: Path) -> None:
    teacher = Teacher(tiny_teacher, max_length=32, bf16=False)
    texts, held_out = make_texts(1024, seed=1), make_texts(80, seed=2)
    model = random_model(dim=16, seed=3)
    trained, losses = train_corpus(
        model, texts, teacher.encode(texts), epochs=4, batch_size=64, learning_rate=0.05, dims=(8, 16)
    )
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    before = similarity_agreement(model, held_out, teacher.encode(held_out))
    after = similarity_agreement(trained, held_out, teacher.encode(held_out))
    assert after > before + 0.1, (before, after)
    assert trained.config["trained"][-1]["texts"] == 1024 and trained.dim == 16
    again, _ = train_corpus(
        model, texts, teacher.encode(texts), epochs=4, batch_size=64, learning_rate=0.05, dims=(8, 16)
    )
    np.testing.assert_array_equal(trained.table, again.table)


def test_corpus_training_with_pairs_and_errors(tiny_teacher: Path) -> None:
    texts = make_texts(256)
    vectors = Teacher(tiny_teacher, max_length=32, bf16=False).encode(texts)
    pairs = [(t.split()[0], t) for t in texts[::2]]
    model = random_model(dim=16)
    trained, losses = train_corpus(model, texts, vectors, pairs, batch_size=32, dims=(16,), align=False)
    assert trained.config["trained"][-1]["pairs"] == 128 and len(losses) == 8
    twice, _ = train_corpus(trained, texts, vectors, batch_size=32, dims=(16,))
    assert [stage["pairs"] for stage in twice.config["trained"]] == [128, 0]
    with pytest.raises(ModelError, match="teacher vector"):
        train_corpus(model, texts, vectors[:-1])
    with pytest.raises(ModelError, match="a token the model knows"):
        train_corpus(model, ["\u0f00\u0f01", "\u0f02", texts[0]], vectors[:3])
    small, small_losses = train_corpus(model, texts[:5], vectors[:5], batch_size=512, dims=(16,))
    assert len(small_losses) == 1 and small.dim == 16


def test_featurise_and_train_commands_export_a_model_that_round_trips(tiny_teacher: Path, tmp_path: Path) -> None:
    random_model(dim=32).save_pretrained(tmp_path / "base")
    corpus_file = write_jsonl(tmp_path / "text.jsonl", [{"text": t} for t in make_texts(300)])
    pairs_file = write_jsonl(
        tmp_path / "pairs.jsonl", [{"query": t.split()[0], "positive": t} for t in make_texts(100, 5)]
    )
    runner = CliRunner()
    result = runner.invoke(
        cli, ["featurise", str(tiny_teacher), str(corpus_file), "--out", str(tmp_path / "cache"), "--shard-size", "128",
              "--max-length", "32", "--no-bf16"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "3 shard(s) embedded" in result.output
    assert "3/3 done" in result.output  # progress lines on stderr when it is not a terminal
    held = write_jsonl(tmp_path / "held.jsonl", [{"text": t} for t in make_texts(300)[:40]])
    result = runner.invoke(
        cli, ["train", str(pairs_file), "--featurised", str(tmp_path / "cache"), "--model", str(tmp_path / "base"),
              "--out", str(tmp_path / "prefix"), "--batch-size", "50", "--dims", "16,32", "--dtype", "float32",
              "--texts", "200", "--exclude-texts", str(held)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cached = [json.loads(line)["text"] for line in (tmp_path / "cache" / "texts.jsonl").open()][:200]
    kept = [t for t in cached if t not in set(make_texts(300)[:40])]
    assert f"trained on {len(kept)} featurised texts" in result.output and len(kept) < 200
    result = runner.invoke(
        cli, ["train", str(pairs_file), "--featurised", str(tmp_path / "cache"), "--model", str(tmp_path / "base"),
              "--out", str(tmp_path / "out"), "--batch-size", "50", "--dims", "16,32", "--dtype", "float32"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"trained on {len(set(make_texts(300)))} featurised texts and 100 pairs" in result.output
    loaded = StaticModel.from_pretrained(tmp_path / "out")
    model2vec = needs("model2vec")

    theirs = model2vec.StaticModel.from_pretrained(str(tmp_path / "out")).encode(["search engine index"])
    ours = loaded.encode(["search engine index"])
    assert float(ours[0] @ (theirs[0] / np.linalg.norm(theirs[0]))) > 0.9999
    bad = subprocess.run(
        [sys.executable, "-c", "import sys; from m2vsearch.cli import main; sys.argv[0] = 'm2vsearch'; main()",
         "featurise", str(tiny_teacher), str(corpus_file), "--out", str(tmp_path / "c2"), "--device", "nonsense"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 1 and "error: cannot load the teacher on nonsense" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "c2").exists()
    result = runner.invoke(cli, ["train", "--model", str(tmp_path / "base"), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "PAIRS files, --featurised" in result.output
