"""Distillation on a tiny randomly initialised BERT built in the test (no weights downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import bert_tokenizer

from m2vsearch import ModelError, StaticModel
from m2vsearch.cli import cli
from m2vsearch.model.train.distill import (
    build_vocabulary,
    distill,
    pca,
    read_vocabulary,
    zipf_sif_weights,
)


def test_distill_tiny_teacher(tiny_teacher: Path, tmp_path: Path) -> None:
    model = distill(tiny_teacher, dims=16, extra_words=["Searching", "teachers", "the", "a-b"])
    assert model.dim == 16
    vocab = model.tokenizer.get_vocab()
    assert "searching" in vocab and "teachers" in vocab  # normalised, added as whole words
    assert "a-b" not in vocab  # splits into several pieces, so not a word token
    assert not any(token.startswith("[unused") for token in vocab)
    assert model.tokenize(["searching teachers"])[0] == [vocab["searching"], vocab["teachers"]]
    vectors = model.encode(["search engine", "the cat and the dog"])
    assert vectors.shape == (2, 16) and np.isfinite(vectors).all()
    model.save_pretrained(tmp_path / "m", dtype="float16")
    reloaded = StaticModel.from_pretrained(tmp_path / "m")
    assert reloaded.tokenizer.get_vocab() == vocab
    assert (reloaded.encode(["search engine"]) * vectors[:1]).sum() > 0.999


def test_distill_is_deterministic(tiny_teacher: Path) -> None:
    first = distill(tiny_teacher, dims=8, extra_words=["searching"])
    second = distill(tiny_teacher, dims=8, extra_words=["searching"])
    np.testing.assert_array_equal(first.table, second.table)
    assert first.fingerprint == second.fingerprint


def test_pca_orders_components_by_variance() -> None:
    rng = np.random.default_rng(0)
    data = rng.standard_normal((500, 6)) * np.array([1.0, 5.0, 0.1, 3.0, 0.5, 2.0])
    reduced = pca(data, 4)
    variances = reduced.var(axis=0)
    assert list(variances) == sorted(variances, reverse=True)
    assert variances[0] == pytest.approx(25.0, rel=0.2)


def test_sif_weights_grow_with_rank() -> None:
    weights = zipf_sif_weights(1000, 1e-4)
    assert (np.diff(weights) > 0).all() and 0 < weights[0] < weights[-1] < 1


def test_build_vocabulary_keeps_special_token_ids_consistent() -> None:
    tokenizer, tokens, added = build_vocabulary(bert_tokenizer(), ["Brandnew", "cat"], r"\[unused\d+\]")
    assert added == ["brandnew"]
    assert tokens[tokenizer.token_to_id("[UNK]")] == "[UNK]"
    assert tokenizer.encode("brandnew [SEP]", add_special_tokens=False).tokens == ["brandnew", "[SEP]"]


def test_read_vocabulary_reads_tsv_with_header(tmp_path: Path) -> None:
    (tmp_path / "v.tsv").write_text("word\tfrequency\tzipf\nthe\t0.05\t7.7\nsearch\t0.001\t5\n\nindex\t1\t1\n")
    assert read_vocabulary(tmp_path / "v.tsv") == ["the", "search", "index"]
    assert read_vocabulary(tmp_path / "v.tsv", limit=2) == ["the", "search"]
    with pytest.raises(ModelError, match="no vocabulary file"):
        read_vocabulary(tmp_path / "missing.tsv")


def test_distill_command(tiny_teacher: Path, tmp_path: Path) -> None:
    (tmp_path / "words.txt").write_text("searching\nteachers\n")
    result = CliRunner().invoke(
        cli,
        ["distill", str(tiny_teacher), "--out", str(tmp_path / "out"), "--dims", "12",
         "--vocab", str(tmp_path / "words.txt"), "--dtype", "int8"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "distilled" in result.output
    model = StaticModel.from_pretrained(tmp_path / "out")
    assert model.dim == 12 and model.storage_dtype == "int8"
    assert "searching" in model.tokenizer.get_vocab()


def test_distill_bad_teacher_is_one_line_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "m2vsearch.cli", "distill", str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: no teacher folder at {tmp_path / 'nope'}"
