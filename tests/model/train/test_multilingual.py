"""SentencePiece (Unigram) models: pruning, distillation from a tiny random teacher, and encoding
in every XQuAD language exactly as the real tokenizer says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import save_random_bert
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from m2vsearch import ModelError, StaticModel
from m2vsearch.model.train.unigram import prune_unigram

SAMPLES = {  # one sentence in each XQuAD language
    "ar": "ما هي عاصمة فرنسا؟", "de": "Wie viele Einwohner hat Berlin?", "el": "Ποια είναι η πρωτεύουσα της Ελλάδας;",
    "en": "How many people live in Berlin?", "es": "¿Cuál es la capital de España?", "hi": "भारत की राजधानी क्या है?",
    "ro": "Care este capitala României?", "ru": "Какая столица России?", "th": "เมืองหลวงของประเทศไทยคืออะไร",
    "tr": "Türkiye'nin başkenti neresidir?", "vi": "Thủ đô của Việt Nam là gì?", "zh": "中国的首都是哪里？",
}  # fmt: skip


def unigram_tokenizer() -> Tokenizer:
    """A small Unigram tokenizer (XLM-R layout: <s> <pad> </s> <unk> first, Metaspace) whose pieces
    are every character of the samples plus a few longer, more probable pieces."""
    chars = sorted({c for text in SAMPLES.values() for c in text if not c.isspace()})
    longer = [
        "\u2581How",
        "\u2581many",
        "\u2581Berlin",
        "\u2581the",
        "\u2581capital",
        "\u2581ca",
        "pital",
        "首都",
        "\u2581Wie",
    ]
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -3.0)]
    vocab += [(piece, -4.0 - i * 0.1) for i, piece in enumerate(longer)]
    vocab += [(c, -8.0 - i * 0.01) for i, c in enumerate(chars)] + [(f"\u2581{c}", -9.0) for c in chars[:20]]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>"])
    return tokenizer


def test_pruning_keeps_specials_every_character_and_the_most_probable_pieces() -> None:
    tokenizer = unigram_tokenizer()
    pieces = [p for p, _ in json.loads(tokenizer.to_str())["model"]["vocab"]]
    singles = [p for p in pieces if len(p.lstrip("\u2581")) <= 1 and p not in ("<s>", "<pad>", "</s>", "<unk>")]
    pruned, kept, probability = prune_unigram(tokenizer, keep=4 + len(singles) + 3)
    assert kept[:4] == ["<s>", "<pad>", "</s>", "<unk>"] and set(singles) <= set(kept)
    assert {"\u2581How", "\u2581many", "\u2581Berlin"} <= set(
        kept
    ) and "\u2581Wie" not in kept  # the three most probable
    assert probability[:4].tolist() == [0, 0, 0, 0] and probability.sum() == pytest.approx(1)
    assert pruned.token_to_id("<unk>") == 3 and pruned.get_vocab_size() == len(kept)
    assert pruned.encode("Wie viele").tokens[:3] == ["\u2581W", "i", "e"]  # "\u2581Wie" was pruned: shorter pieces
    with pytest.raises(ModelError, match="keep at least"):
        prune_unigram(tokenizer, keep=10)


def test_encoding_in_every_language_equals_the_tokenizer() -> None:
    """The exact path (SentencePiece models never take the whitespace-piece shortcut): each text is
    the mean of its pieces' rows, unknown pieces dropped, batch or not."""
    tokenizer = unigram_tokenizer()
    table = np.random.default_rng(0).standard_normal((tokenizer.get_vocab_size(), 16)).astype(np.float32)
    model = StaticModel(table, tokenizer, {})
    assert not model._pooler.piece_path
    texts = list(SAMPLES.values()) + ["", "  ", "Berlin 中国 ?", "x" * 3000]
    batch = model.encode(texts)
    for text, vector in zip(texts, batch):
        ids = [i for i in tokenizer.encode(text, add_special_tokens=False).ids[:512] if i != 3]
        expected = table[ids].mean(axis=0) if ids else np.zeros(16)
        norm = np.linalg.norm(expected)
        np.testing.assert_allclose(vector, expected / norm if norm else expected, atol=1e-5, err_msg=text[:20])
        np.testing.assert_allclose(model.encode(text)[0], vector, atol=1e-6)


@pytest.fixture(scope="module")
def unigram_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch", reason="needs the train extra")
    pytest.importorskip("transformers", reason="needs the train extra")
    folder = tmp_path_factory.mktemp("unigram-teacher")
    save_random_bert(folder, unigram_tokenizer(), pad_token_id=1)
    return folder


def test_distilling_a_sentencepiece_teacher(tmp_path: Path, unigram_teacher: Path) -> None:
    from click.testing import CliRunner

    from m2vsearch.cli import cli
    from m2vsearch.model.train.distill import distill

    full = distill(unigram_teacher, dims=8)
    assert full.vocab_size == unigram_tokenizer().get_vocab_size() and full.dim == 8
    pruned = distill(unigram_teacher, dims=8, keep_tokens=full.vocab_size - 5)
    assert pruned.vocab_size == full.vocab_size - 5
    vectors = pruned.encode(list(SAMPLES.values()))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    with pytest.raises(ModelError, match="need a WordPiece teacher"):
        distill(unigram_teacher, dims=8, extra_words=["hello"])
    result = CliRunner().invoke(cli, ["distill", str(unigram_teacher), "--out", str(tmp_path / "m"), "--dims", "8",
                                      "--keep-tokens", str(full.vocab_size - 5), "--dtype", "float32"])  # fmt: skip
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(StaticModel.from_pretrained(tmp_path / "m").table, pruned.table, atol=1e-6)


NOTES = {
    "zh-bread.md": "面包需要酵母和面粉，在烤箱里烤一个小时。", "zh-rain.md": "明天下午会下大雨，出门记得带伞。",
    "ru-cat.md": "Кошка спит на диване весь день.", "ru-train.md": "Поезд в Москву отправляется в восемь утра.",
    "ar-sea.md": "البحر هادئ اليوم والسفن تبحر إلى الميناء.", "ar-school.md": "يذهب الأطفال إلى المدرسة كل صباح لتعلم القراءة.",
    "de-bread.md": "Das Brot wird mit Sauerteig gebacken und braucht viele Stunden im Ofen.",
    "de-car.md": "Das Auto steht in der Garage und braucht neue Reifen.",
}  # fmt: skip
QUERIES = {"烤面包": "zh-bread.md", "下雨天要带雨伞": "zh-rain.md", "кот на диване": "ru-cat.md", "поезд в Москву": "ru-train.md",
           "السفن في البحر": "ar-sea.md", "الأطفال في المدرسة": "ar-school.md", "Brot backen": "de-bread.md",
           "Reifen für das Auto": "de-car.md"}  # fmt: skip


def test_packaged_multilingual_model_finds_notes_in_four_scripts(tmp_path: Path) -> None:
    """`index --model multilingual` (shipped, no download): each query finds its note among notes
    in four languages and scripts, by meaning (dense) and with the trigram full text (hybrid)."""
    from corpora import run

    notes = tmp_path / "notes"
    notes.mkdir()
    for name, text in NOTES.items():
        (notes / name).write_text(text + "\n", encoding="utf-8")
    index = str(tmp_path / "idx")
    created = run("index", str(notes), "--index", index, "--model", "multilingual", "--fts", "trigram", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    result = run("query", "烤面包", "--index", index, "-k", "1", "--json", cwd=tmp_path)
    assert json.loads(result.stdout)["hits"][0]["path"].endswith("zh-bread.md"), result.stdout
    assert "model: multilingual" in run("info", "--index", index, cwd=tmp_path).stdout
    from m2vsearch.index.index import Index

    with Index.open(index) as opened:
        for query, expected in QUERIES.items():
            for mode in ("dense", "hybrid"):
                hits = opened.search(query, k=1, mode=mode)
                assert hits and hits[0].path.endswith(expected), (query, mode, hits)
