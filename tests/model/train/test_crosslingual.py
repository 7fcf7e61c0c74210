"""Cross-lingual distillation on tiny data: a made-up language whose words translate one to one."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import WORDS, random_model

from m2vsearch import ModelError, StaticModel
from m2vsearch.cli import cli
from m2vsearch.model.train.corpus import TokenBatches, mean_pooled, train_corpus
from m2vsearch.model.train.crosslingual import to_student_space, translation_corpus
from m2vsearch.model.train.featurise import Teacher

CONTENT = sorted({w for w in WORDS if not w.startswith("##") and len(w) > 3})
HALF = len(CONTENT) // 2
ENGLISH, FOREIGN = CONTENT[:HALF], CONTENT[HALF : 2 * HALF]  # FOREIGN[i] translates ENGLISH[i]
REPO = Path(__file__).resolve().parents[3]


def translations(count: int, seed: int) -> list[tuple[str, str]]:
    """(foreign, English) sentences of 3-6 words, word for word."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        picks = rng.sample(range(HALF), rng.randint(3, 6))
        rows.append((" ".join(FOREIGN[i] for i in picks), " ".join(ENGLISH[i] for i in picks)))
    return rows


def hits_at_1(model: StaticModel, pairs: list[tuple[str, str]]) -> float:
    """How often a foreign sentence's nearest English sentence is its translation."""
    foreign, english = model.encode([f for f, _ in pairs]), model.encode([e for _, e in pairs])
    return float(np.mean(np.argmax(foreign @ english.T, axis=1) == np.arange(len(pairs))))


def test_translation_corpus_pairs_each_side_with_the_english_vector() -> None:
    texts = ["a b", "c d", "e f"]
    vectors = np.arange(6, dtype=np.float64).reshape(3, 2)
    corpus, targets = translation_corpus([("x", "c d"), ("y", "a b"), ("z", "c d")], texts, vectors)
    assert corpus == ["x", "c d", "y", "a b", "z"]  # each English side once, after its first translation
    np.testing.assert_array_equal(targets, vectors[[1, 1, 0, 0, 1]])
    assert targets.dtype == np.float32
    only, _ = translation_corpus([("x", "c d"), ("z", "c d")], texts, vectors, english=False)
    assert only == ["x", "z"]
    with pytest.raises(ModelError, match="1 of 2 translations have no teacher vector"):
        translation_corpus([("x", "c d"), ("y", "not featurised")], texts, vectors)


def test_to_student_space_recovers_an_affine_map() -> None:
    model = random_model(dim=8, seed=1)
    texts = [e for _, e in translations(300, seed=2)]
    pooled = mean_pooled(model, TokenBatches(model, texts), np.arange(len(texts)))
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    mixing = np.random.default_rng(3).standard_normal((8, 12))
    teacher = pooled @ mixing + 0.5  # the teacher's vectors: an affine image of the model's own
    mapped = to_student_space(model, texts, teacher, teacher[:10], ridge=1e-9)
    np.testing.assert_allclose(mapped, pooled[:10], atol=1e-4)
    with pytest.raises(ModelError, match="at least two texts"):
        to_student_space(model, texts[:1], teacher[:1], teacher[:1])


def test_cross_lingual_distillation_aligns_the_languages(tiny_teacher: Path) -> None:
    teacher = Teacher(tiny_teacher, max_length=32, bf16=False)
    train, held_out = translations(1500, seed=4), translations(60, seed=5)
    english = list(dict.fromkeys(e for _, e in train))
    vectors = teacher.encode(english)
    model = random_model(dim=16, seed=6)
    corpus, targets = translation_corpus(train, english, vectors)
    mapped = to_student_space(model, english, vectors, targets)
    trained, losses = train_corpus(
        model, corpus, mapped, epochs=4, batch_size=64, learning_rate=0.05, dims=(8, 16), project=False
    )
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    before, after = hits_at_1(model, held_out), hits_at_1(trained, held_out)
    assert before < 0.2 and after > 0.6, (before, after)
    assert trained.config["trained"][-1]["targets"] == "model space"
    with pytest.raises(ModelError, match="need 16 dims, got 48"):
        train_corpus(model, corpus, targets, project=False)


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_train_command_with_translations(tiny_teacher: Path, tmp_path: Path) -> None:
    random_model(dim=16).save_pretrained(tmp_path / "base")
    rows = translations(400, seed=7)
    pairs = write_jsonl(tmp_path / "translations.jsonl", [{"query": f, "positive": e} for f, e in rows])
    english = list(dict.fromkeys(e for _, e in rows))
    write_jsonl(tmp_path / "english.jsonl", [{"text": e} for e in english])
    runner = CliRunner()
    result = runner.invoke(
        cli, ["featurise", str(tiny_teacher), str(tmp_path / "english.jsonl"), "--out", str(tmp_path / "cache"),
              "--max-length", "32", "--no-bf16"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    train = ["train", "--featurised", str(tmp_path / "cache"), "--model", str(tmp_path / "base"), "--batch-size", "50",
             "--dims", "8,16", "--dtype", "float32"]  # fmt: skip
    result = runner.invoke(
        cli, [*train, "--translations", str(pairs), "--targets", "model", "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 0, result.output
    assert f"trained on {len(rows) + len(english)} featurised texts and 0 pairs" in result.output
    assert StaticModel.from_pretrained(tmp_path / "m").config["trained"][-1]["targets"] == "model space"
    result = runner.invoke(cli, [*train, "--translations", str(pairs), "--out", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output  # the teacher's axes, as plain --featurised
    assert StaticModel.from_pretrained(tmp_path / "t").config["trained"][-1]["whiten"] is True
    result = runner.invoke(cli, ["train", str(pairs), "--translations", str(pairs), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "need --featurised" in result.output
    stray = write_jsonl(tmp_path / "stray.jsonl", [{"query": "cat dog", "positive": "never featurised"}])
    bad = subprocess.run(
        [sys.executable, "-c", "import sys; from m2vsearch.cli import main; sys.argv[0] = 'm2vsearch'; main()",
         *train, "--translations", str(stray), "--out", str(tmp_path / "y")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 1 and "error: 1 of 1 translations have no teacher vector" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "y").exists()


def test_sample_translations_script_is_deterministic(tmp_path: Path) -> None:
    parallel = tmp_path / "parallel"
    parallel.mkdir()
    for lang, seed in (("de", 8), ("zh", 9)):
        write_jsonl(parallel / f"train-{lang}.jsonl", [{"query": f, "positive": e} for f, e in translations(50, seed)])
    script = [sys.executable, str(REPO / "scripts" / "sample_translations.py"), str(parallel)]
    for out in ("a", "b"):
        done = subprocess.run([*script, str(tmp_path / out), "--per-language", "20", "--limit", "40"],
                              capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 0, done.stderr
    for name in ("translations.jsonl", "english.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    sample = [json.loads(line) for line in (tmp_path / "a" / "translations.jsonl").open()]
    english = [json.loads(line)["text"] for line in (tmp_path / "a" / "english.jsonl").open()]
    assert len(sample) == 40 and english == list(dict.fromkeys(row["positive"] for row in sample))
    first = {row["query"] for row in sample[:20]}
    assert first <= {f for f, _ in translations(50, 8)}  # file by file, in name order
    missing = subprocess.run([*script[:2], str(tmp_path / "none"), str(tmp_path / "c")], capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stderr.startswith("error: no train-*.jsonl under")
