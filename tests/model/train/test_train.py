"""Pair training on a tiny model and corpus: the loss falls, retrieval improves, export round-trips."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import WORDS, needs, random_model

from m2vsearch import ModelError, StaticModel
from m2vsearch.cli import cli
from m2vsearch.model.train.pairs import read_pairs, train_pairs

CONTENT = [w for w in WORDS if not w.startswith("##") and len(w) > 3]


def make_pairs(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """A query of two words and a passage that contains them among distractors."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(count):
        key = rng.sample(CONTENT, 2)
        filler = rng.sample(CONTENT, 6)
        pairs.append((" ".join(key), " ".join(filler[:3] + key + filler[3:])))
    return pairs


def recall_at_1(model: StaticModel, pairs: list[tuple[str, str]]) -> float:
    queries = model.encode([q for q, _ in pairs])
    passages = model.encode([p for _, p in pairs])
    return float(np.mean((queries @ passages.T).argmax(axis=1) == np.arange(len(pairs))))


def test_training_lowers_the_loss_and_helps_retrieval() -> None:
    needs("torch")
    model = random_model(dim=32, seed=3)
    train = make_pairs(512, seed=1)
    held_out = make_pairs(64, seed=2)
    trained, losses = train_pairs(model, train, epochs=3, batch_size=64, learning_rate=0.05, dims=(8, 16, 32))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    assert recall_at_1(trained, held_out) > recall_at_1(model, held_out)
    assert trained.config["trained"][-1]["pairs"] == 512
    assert not np.array_equal(trained.table, model.table) and np.array_equal(
        model.table, random_model(dim=32, seed=3).table
    )


def test_training_is_deterministic() -> None:
    needs("torch")
    pairs = make_pairs(128)
    first, _ = train_pairs(random_model(dim=16), pairs, batch_size=32, dims=(8, 16))
    second, _ = train_pairs(random_model(dim=16), pairs, batch_size=32, dims=(8, 16))
    np.testing.assert_array_equal(first.table, second.table)


def test_train_command_exports_a_model_that_round_trips(tmp_path: Path) -> None:
    needs("torch")
    random_model(dim=32).save_pretrained(tmp_path / "base")
    with (tmp_path / "pairs.jsonl").open("w") as handle:
        for query, positive in make_pairs(300):
            handle.write(json.dumps({"query": query, "positive": positive}) + "\n")
    result = CliRunner().invoke(
        cli,
        ["train", str(tmp_path / "pairs.jsonl"), "--model", str(tmp_path / "base"), "--out", str(tmp_path / "out"),
         "--epochs", "2", "--batch-size", "50", "--dims", "16,32", "--dtype", "float32"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "trained on 300 pairs" in result.output
    loaded = StaticModel.from_pretrained(tmp_path / "out")
    assert loaded.dim == 32 and loaded.config["trained"][-1]["epochs"] == 2
    model2vec = needs("model2vec")

    theirs = model2vec.StaticModel.from_pretrained(str(tmp_path / "out")).encode(["search engine index"])
    ours = loaded.encode(["search engine index"])
    assert float(ours[0] @ (theirs[0] / np.linalg.norm(theirs[0]))) > 0.9999


def test_read_pairs_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"query": "x", "positive": "y"}\n{"q": 1}\n')
    with pytest.raises(ModelError, match=r"bad.jsonl:2: expected"):
        read_pairs([tmp_path / "bad.jsonl"])
    beir = tmp_path / "beir" / "scifact"
    beir.mkdir(parents=True)
    (beir / "pairs.jsonl").write_text('{"query": "x", "positive": "y"}\n')
    with pytest.raises(ModelError, match="never trained on"):
        read_pairs([beir / "pairs.jsonl"])
    with pytest.raises(ModelError, match="no pairs file"):
        read_pairs([tmp_path / "missing.jsonl"])


def test_soup_is_the_weighted_mean_of_tables_and_an_ensemble_of_encodings(tmp_path: Path) -> None:
    needs("torch")
    from click.testing import CliRunner

    from m2vsearch.cli import cli
    from m2vsearch.model.train.soup import soup

    a, b = random_model(dim=16, seed=1), random_model(dim=16, seed=2)
    mixed = soup([a, b], [3, 1])
    np.testing.assert_allclose(mixed.table, 0.75 * a.table + 0.25 * b.table, rtol=1e-5, atol=1e-6)
    texts = ["search engine index", "cat dog water"]
    pooled = 0.75 * a._pooler.pool(texts) + 0.25 * b._pooler.pool(texts)
    np.testing.assert_allclose(mixed.encode(texts), pooled / np.linalg.norm(pooled, axis=1, keepdims=True), atol=1e-6)
    assert mixed.config["trained"][-1]["weights"] == [0.75, 0.25]
    assert "hybrid" not in soup([StaticModel(a.table, a.tokenizer, {"hybrid": {"dense_weight": 0.4}}), b]).config
    with pytest.raises(ModelError, match="another vocabulary or dims"):
        soup([a, random_model(dim=8)])
    with pytest.raises(ModelError, match="at least two"):
        soup([a])
    a.save_pretrained(tmp_path / "a", dtype="float32")
    b.save_pretrained(tmp_path / "b", dtype="float32")
    result = CliRunner().invoke(
        cli, ["soup", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "c"), "--dtype", "float32"]
    )
    assert result.exit_code == 0, result.output
    souped = StaticModel.from_pretrained(tmp_path / "c")
    np.testing.assert_allclose(souped.table, 0.5 * (a.table + b.table), rtol=1e-5, atol=1e-6)
    assert [member["name"] for member in souped.config["trained"][-1]["soup"]] == ["a", "b"]


def recall_at_1_dims(model: StaticModel, pairs: list[tuple[str, str]], dims: int) -> float:
    queries = model.encode([q for q, _ in pairs], dims=dims)
    passages = model.encode([p for _, p in pairs], dims=dims)
    return float(np.mean((queries @ passages.T).argmax(axis=1) == np.arange(len(pairs))))


def test_rotation_helps_truncated_dims_and_leaves_full_dims_alone(tmp_path: Path) -> None:
    needs("torch")
    from m2vsearch.model.train.rotate import rotate

    # The first 16 dims carry no information (the same value for every token): a rotation must
    # bring informative directions forward for the 8- and 16-dim prefixes to retrieve anything.
    model = random_model(dim=32, seed=5)
    hybrid = {"dense_weight": 0.5, "unrelated": 0.1, "related": 0.7, "by_dims": {"8": {"unrelated": 0.3}}}
    model = StaticModel(np.hstack([np.ones_like(model.table[:, :16]), model.table[:, 16:]]), model.tokenizer,
                        {"hybrid": hybrid}, name="skewed")  # fmt: skip
    train, held_out = make_pairs(600, seed=1), make_pairs(100, seed=2)
    rotated = rotate(model, train, dims=(8, 16), steps=150)
    # Full dims: every cosine is unchanged (the rotation is orthogonal).
    texts = [p for _, p in held_out[:20]] + [q for q, _ in held_out[:20]]
    before, after = model.encode(texts), rotated.encode(texts)
    np.testing.assert_allclose(after @ after.T, before @ before.T, atol=1e-4)
    assert not np.allclose(after, before, atol=1e-3)
    # Truncated dims: held-out pairs rank better.
    for dims in (8, 16):
        assert recall_at_1_dims(rotated, held_out, dims) > recall_at_1_dims(model, held_out, dims) + 0.08
    assert rotated.config["trained"][-1]["matryoshka_rotation"]["dims"] == [8, 16]
    assert rotated.config["hybrid"] == {"dense_weight": 0.5, "unrelated": 0.1, "related": 0.7}  # truncated dims: stale
    assert rotate(model, train, dims=(16, 8, 16), steps=1).config["trained"][-1]["matryoshka_rotation"]["dims"] == [
        8,
        16,
    ]
    with pytest.raises(ModelError, match="below the model's 32"):
        rotate(model, train, dims=(32,))
    model.save_pretrained(tmp_path / "base", dtype="float32")
    with (tmp_path / "pairs.jsonl").open("w") as handle:
        for query, positive in train:
            handle.write(json.dumps({"query": query, "positive": positive}) + "\n")
    result = CliRunner().invoke(cli, ["rotate", str(tmp_path / "base"), str(tmp_path / "pairs.jsonl"), "--out",
                                      str(tmp_path / "rotated"), "--dims", "4,8", "--steps", "20", "--dtype", "float32"])  # fmt: skip
    assert result.exit_code == 0, result.output
    loaded = StaticModel.from_pretrained(tmp_path / "rotated")
    np.testing.assert_allclose(np.linalg.norm(loaded.table, axis=1), np.linalg.norm(model.table, axis=1), rtol=1e-4)
    bad = CliRunner().invoke(
        cli,
        ["rotate", str(tmp_path / "base"), str(tmp_path / "pairs.jsonl"), "--out", str(tmp_path / "x"), "--dims", "a"],
    )
    assert bad.exit_code != 0 and "comma-separated" in bad.output


def split_pairs(count: int, seed: int = 0) -> tuple[list[tuple[str, str]], set[str], set[str]]:
    """Pairs whose queries use only one half of the words and whose positives only the other."""
    rng = random.Random(seed)
    query_words, positive_words = CONTENT[: len(CONTENT) // 2], CONTENT[len(CONTENT) // 2 :]
    pairs = [(" ".join(rng.sample(query_words, 2)), " ".join(rng.sample(positive_words, 5))) for _ in range(count)]
    return pairs, set(query_words), set(positive_words)


def test_fixed_queries_move_only_the_positives_tokens() -> None:
    needs("torch")
    pairs, query_words, positive_words = split_pairs(256)
    model = random_model(dim=16, seed=5)
    ids = model.tokenizer.get_vocab()
    query_rows = sorted({ids[w] for w in query_words if w in ids})
    positive_rows = sorted({ids[w] for w in positive_words if w in ids})
    kwargs = {"batch_size": 32, "learning_rate": 0.05, "dims": (8, 16)}
    held, _ = train_pairs(model, pairs, fixed_queries=[True] * len(pairs), **kwargs)
    np.testing.assert_array_equal(held.table[query_rows], model.table[query_rows])
    assert not np.allclose(held.table[positive_rows], model.table[positive_rows])
    assert held.config["trained"][-1]["fixed_queries"] == len(pairs)
    free, _ = train_pairs(model, pairs, fixed_queries=[False] * len(pairs), **kwargs)
    assert not np.allclose(free.table[query_rows], model.table[query_rows])
    plain, _ = train_pairs(model, pairs, **kwargs)  # all False is the plain loss, step for step
    np.testing.assert_array_equal(free.table, plain.table)
    half = [i % 2 == 0 for i in range(len(pairs))]  # a mix: the unheld half still moves the query rows
    mixed, _ = train_pairs(model, pairs, fixed_queries=half, **kwargs)
    assert not np.allclose(mixed.table[query_rows], model.table[query_rows])
    with pytest.raises(ModelError, match="one flag per pair"):
        train_pairs(model, pairs, fixed_queries=[True], **kwargs)


def test_train_command_takes_fixed_query_files(tmp_path: Path) -> None:
    needs("torch")
    random_model(dim=16, seed=5).save_pretrained(tmp_path / "base")
    pairs, _, _ = split_pairs(120)
    for name, rows in (("free", make_pairs(100)), ("fixed", pairs)):
        with (tmp_path / f"{name}.jsonl").open("w") as handle:
            handle.writelines(json.dumps({"query": q, "positive": p}) + "\n" for q, p in rows)
    args = ["train", str(tmp_path / "free.jsonl"), "--fixed-queries", str(tmp_path / "fixed.jsonl"), "--model",
            str(tmp_path / "base"), "--out", str(tmp_path / "out"), "--batch-size", "40", "--dims", "8,16",
            "--dtype", "float32", "--limit", "100"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "trained on 200 pairs (100 with fixed queries)" in result.output
    trained = StaticModel.from_pretrained(tmp_path / "out")
    assert trained.config["trained"][-1]["fixed_queries"] == 100
    refused = CliRunner().invoke(cli, [*args[:4], "--featurised", str(tmp_path), "--out", str(tmp_path / "x")])
    assert refused.exit_code != 0 and "does not combine with --featurised" in refused.output
