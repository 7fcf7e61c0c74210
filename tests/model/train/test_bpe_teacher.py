"""BPE teachers (EmbeddingGemma's layout): pruning a vocabulary to the tokens sample text uses, and
distilling through a teacher's Dense modules with a prompt, checked against sentence-transformers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import AWKWARD, mean_pooling_modules, save_random_bert
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    trainers,
)

from m2vsearch import ModelError, StaticModel
from m2vsearch.model.bpe import count_tokens, prune_bpe

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]
BYTES = [f"<0x{i:02X}>" for i in range(256)]
TEXTS = [
    "the planet mars is known as the red planet",
    "venus is often called the twin of the earth",
    "jupiter is the largest planet of the solar system",
    "saturn is famous for its rings and its many moons",
    "the red spot of jupiter is a storm larger than the earth",
] * 3


def bpe_tokenizer() -> Tokenizer:
    """A small byte-fallback BPE in Gemma's layout: <pad> <eos> <bos> <unk>, then the 256 byte
    tokens, then learned merges; spaces become U+2581 and stay inside tokens."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tokenizer.normalizer = normalizers.Replace(" ", "\u2581")
    tokenizer.pre_tokenizer = pre_tokenizers.Split("\u2581", behavior="merged_with_next")
    tokenizer.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=SPECIALS + BYTES, show_progress=False)
    tokenizer.train_from_iterator([" " + t for t in TEXTS], trainer)
    spec = json.loads(tokenizer.to_str())  # byte tokens belong to the model, as in Gemma, not to added tokens
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] in SPECIALS]
    return Tokenizer.from_str(json.dumps(spec))


def merges_of(tokenizer: Tokenizer) -> list[tuple[str, str]]:
    raw = json.loads(tokenizer.to_str())["model"]["merges"]
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in raw]  # type: ignore[misc]


def test_pruning_keeps_bytes_specials_and_every_merge_part() -> None:
    tokenizer = bpe_tokenizer()
    counts = count_tokens(tokenizer, TEXTS)
    assert counts.sum() == sum(len(tokenizer.encode(t, add_special_tokens=False).ids) for t in TEXTS)
    pruned, kept, share = prune_bpe(tokenizer, counts, keep=300)
    assert kept[:4] == SPECIALS and set(BYTES) <= set(kept) and 300 <= len(kept) < tokenizer.get_vocab_size()
    assert pruned.get_vocab_size() == len(kept) and pruned.token_to_id("<unk>") == 3
    assert share[:4].tolist() == [0, 0, 0, 0] and share.sum() == pytest.approx(1)
    for left, right in merges_of(pruned):  # every merge builds a kept token from kept tokens
        assert {left, right, left + right} <= set(kept)
    by_count = [tokenizer.id_to_token(int(i)) for i in np.argsort(-counts, kind="stable")[:8]]
    assert set(by_count) <= set(kept) and "\u2581jupiter" not in kept  # the most frequent survive, rarer ones not
    for text in TEXTS[:5] + ["the unseen word zebra costs 5 €"]:
        tokens = pruned.encode(text, add_special_tokens=False).tokens
        assert set(tokens) <= set(kept) and "<unk>" not in tokens
        assert pruned.decode(pruned.encode(text, add_special_tokens=False).ids).lstrip() == text  # bytes cover the rest
    with pytest.raises(ModelError, match="keep at least"):
        prune_bpe(tokenizer, counts, keep=100)


def test_pruning_with_room_for_every_counted_token_changes_no_tokenization() -> None:
    from m2vsearch.model.bpe import word_tokenizer

    tokenizer = bpe_tokenizer()
    counts = count_tokens(word_tokenizer(tokenizer), TEXTS)  # counted as the pruned one will tokenize
    pruned, _, _ = prune_bpe(tokenizer, counts, keep=tokenizer.get_vocab_size())
    for text in TEXTS[:5]:  # word by word, the first word starts with U+2581 like the others
        assert (
            pruned.encode(text, add_special_tokens=False).tokens
            == tokenizer.encode(" " + text, add_special_tokens=False).tokens
        )


@pytest.fixture(scope="module")
def bpe_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 1-layer transformer with the BPE tokenizer, mean pooling and two Dense modules
    (identity, then tanh with a bias), saved as a Sentence Transformer folder."""
    torch = pytest.importorskip("torch", reason="needs the train extra")
    pytest.importorskip("transformers", reason="needs the train extra")
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("bpe-teacher")
    save_random_bert(folder, bpe_tokenizer())  # seeds torch, so the Dense weights below are fixed too
    modules = mean_pooling_modules(folder, 32)
    for index, (shape, bias, activation) in enumerate(
        [((48, 32), False, "Identity"), ((24, 48), True, "Tanh")], start=2
    ):
        path = folder / f"{index}_Dense"
        path.mkdir()
        tensors = {"linear.weight": torch.randn(shape) * 0.2}
        if bias:
            tensors["linear.bias"] = torch.randn(shape[0]) * 0.1
        save_file(tensors, str(path / "model.safetensors"))
        path.joinpath("config.json").write_text(json.dumps({"in_features": shape[1], "out_features": shape[0], "bias": bias,
                                                            "activation_function": f"torch.nn.modules.{activation}"}))  # fmt: skip
        modules.append(
            {"idx": index, "name": str(index), "path": path.name, "type": "sentence_transformers.models.Dense"}
        )
    (folder / "modules.json").write_text(json.dumps(modules))
    return folder


def test_token_vectors_go_through_the_dense_modules_like_the_teacher(bpe_teacher: Path) -> None:
    """What distillation computes for an input equals the teacher's own pipeline (mean pooling,
    then each Dense module), written out here with torch."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel

    from m2vsearch.model.train.distill import dense_layers, embed_tokens

    inputs = [[2, 300, 1], [2, 301, 302, 1], [2, 5, 1]]
    ours = embed_tokens(bpe_teacher, inputs, 0, dense=dense_layers(bpe_teacher))
    model = AutoModel.from_pretrained(str(bpe_teacher)).eval()
    with torch.inference_mode():
        for row, ids in zip(ours, inputs):
            vector = model(input_ids=torch.tensor([ids])).last_hidden_state[0].mean(0)
            for index, activation in ((2, torch.nn.Identity()), (3, torch.nn.Tanh())):
                tensors = load_file(str(bpe_teacher / f"{index}_Dense" / "model.safetensors"))
                vector = activation(vector @ tensors["linear.weight"].T + tensors.get("linear.bias", 0))
            np.testing.assert_allclose(row, vector.numpy(), atol=1e-5)
    assert ours.shape == (3, 24)


def test_distilling_a_bpe_teacher(tmp_path: Path, bpe_teacher: Path) -> None:
    from click.testing import CliRunner

    from m2vsearch.cli import cli
    from m2vsearch.model.train.distill import distill

    with pytest.raises(ModelError, match="needs sample text"):
        distill(bpe_teacher, dims=8)
    model = distill(bpe_teacher, dims=8, keep_tokens=300, count_texts=TEXTS, prompt="title: none | text: ")
    assert 300 <= model.vocab_size < bpe_tokenizer().get_vocab_size() and model.dim == 8
    assert model.config["teacher_prompt"] == "title: none | text: "
    vectors = model.encode(["the red planet", "rings of saturn", "zebra €"])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    plain = distill(bpe_teacher, dims=8, keep_tokens=300, count_texts=TEXTS)
    assert not np.allclose(plain.table, model.table)  # the prompt changes what the teacher sees
    sample = tmp_path / "sample.jsonl"
    sample.write_text("".join(json.dumps({"query": t, "positive": t}) + "\n" for t in TEXTS), encoding="utf-8")
    result = CliRunner().invoke(cli, ["distill", str(bpe_teacher), "--out", str(tmp_path / "m"), "--dims", "8", "--keep-tokens", "300",
                                      "--count-on", str(sample), "--prompt", "title: none | text: ", "--dtype", "float32"])  # fmt: skip
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(StaticModel.from_pretrained(tmp_path / "m").table, model.table, atol=1e-5)


def test_featurising_applies_the_prompt_and_the_dense_modules(bpe_teacher: Path) -> None:
    """Teacher vectors for `train --featurised`: the prompt goes before each text, then mean pooling
    and the Dense modules, then unit length; recorded in what the cache manifest compares."""
    import torch
    from transformers import AutoModel

    from m2vsearch.model.train.distill import apply_dense, dense_layers
    from m2vsearch.model.train.featurise import Teacher

    teacher = Teacher(bpe_teacher, bf16=False, device="cpu", prompt="title: none | text: ")
    assert teacher.dim == 24 and teacher.describe()["prompt"] == "title: none | text: "
    assert teacher.describe()["dense_layers"] == 2
    texts = ["the red planet", "rings of saturn and its moons"]
    vectors = teacher.encode(texts)
    model = AutoModel.from_pretrained(str(bpe_teacher)).eval()
    for text, vector in zip(texts, vectors):
        ids = bpe_tokenizer().encode("title: none | text: " + text).ids
        with torch.inference_mode():
            pooled = model(input_ids=torch.tensor([ids])).last_hidden_state[0].mean(0).numpy()
        expected = apply_dense(pooled[None, :], dense_layers(bpe_teacher))[0]
        np.testing.assert_allclose(vector, expected / np.linalg.norm(expected), atol=1e-5)
    plain = Teacher(bpe_teacher, bf16=False, device="cpu").encode(texts)
    assert not np.allclose(plain, vectors)


def test_pruned_tokenizers_work_word_by_word_and_take_the_fast_piece_path(real_texts: list[str]) -> None:
    """A pruned BPE tokenizes each whitespace-separated word on its own (every word starts with
    U+2581, whitespace runs are boundaries, no added tokens), so encoding may cache words: the
    piece path must give exactly the exact path's vectors, awkward texts included."""
    from m2vsearch.model.bpe import is_word_by_word
    from m2vsearch.model.pooling import MeanPooler

    tokenizer = bpe_tokenizer()
    pruned, kept, _ = prune_bpe(tokenizer, count_tokens(tokenizer, TEXTS), keep=320)
    assert is_word_by_word(pruned) and not is_word_by_word(tokenizer)
    assert pruned.encode("  the\tred \n\n planet ").tokens == pruned.encode("the red planet").tokens
    assert pruned.encode("the red planet").tokens[0].startswith("\u2581")  # the first word too
    texts = (
        AWKWARD
        + ["<eos> literal <unk> tokens", "\n\nlead", "trail \x1c\x1d ", "word\u2581mark in\u2581\u2581a piece"]
        + real_texts
    )
    for text in texts[:40]:
        words = [t for word in text.split() for t in pruned.encode(word, add_special_tokens=False).tokens]
        assert pruned.encode(text, add_special_tokens=False).tokens == words, text
    table = np.random.default_rng(1).standard_normal((len(kept), 12)).astype(np.float32)
    fast = MeanPooler(pruned, table, 512)
    exact = MeanPooler(pruned, table, 512)
    exact.piece_path = False
    assert fast.piece_path
    np.testing.assert_allclose(fast.pool(texts), exact.pool(texts), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast.pool(texts[::-1]), exact.pool(texts[::-1]), rtol=1e-5, atol=1e-6)  # warm cache


def test_sample_text_for_counting_reads_pairs_and_lines_and_refuses_evaluation_data(tmp_path: Path) -> None:
    from m2vsearch.model.train.distill import read_sample_texts

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        '{"query": "red planet", "positive": "Mars is red", "score": 1}\n\n{"query": "rings", "positive": "Saturn"}\n'
    )
    lines = tmp_path / "notes.txt"
    lines.write_text("first line\n\nsecond line\nthird line\n")
    assert read_sample_texts([pairs, lines]) == [
        "red planet",
        "Mars is red",
        "rings",
        "Saturn",
        "first line",
        "second line",
        "third line",
    ]
    assert read_sample_texts([pairs, lines], limit=2) == ["red planet", "Mars is red", "first line"]
    corpus = tmp_path / "beir" / "scifact" / "corpus.jsonl"
    corpus.parent.mkdir(parents=True)
    corpus.write_text('{"_id": "1", "text": "a test document"}\n')
    with pytest.raises(ModelError, match="evaluation data"):
        read_sample_texts([corpus])
    with pytest.raises(ModelError, match="no sample text file"):
        read_sample_texts([tmp_path / "missing.jsonl"])
    (tmp_path / "bad.jsonl").write_text("not json\n")
    with pytest.raises(ModelError, match="not JSON"):
        read_sample_texts([tmp_path / "bad.jsonl"])
