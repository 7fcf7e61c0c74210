"""Shared fixtures: real texts, small static models, a tiny random BERT teacher."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from m2vsearch import StaticModel

DATA = Path(__file__).parent / "data"
# Texts that stress tokenizers and pooling (empty, control characters, scripts, long words).
AWKWARD = [
    "",
    "   ",
    "Hello, world!",
    "naïve café déjà-vu ÉCOLE Ünïcödé",
    "中文字符 mixed with English中文",
    "tabs\tand\nnew\rlines and\x0bvertical\x0cfeeds",
    "control\x1cchars\x1d\x1e\x1fhere\x85there",
    "zero\u200bwidth and\u00a0nbsp and\u2028line sep and \u3000 ideographic space",
    "literal [CLS] and [SEP] and [MASK] and [unk] tokens",
    "nul\x00byte",
    "replacement \ufffd char and emoji 😀 and symbols ©®™ °C ±5",
    "ΣΊΣΥΦΟΣ ΟΔΟΣ greek final sigma",
    "İstanbul ǅ ß ﬁ ligature",
    "x" * 150 + " very long word",
    "play playing played player unplayed replay",
    "SELECT * FROM table WHERE row = 'column'; -- sql",
]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = (
    "the of and to in is was for on that with as by it at from he be this are which or an "
    "search engine index query vector model token text file static embedding fast python data "
    "sql table row column database learn train distil teacher student cat dog house water fire "
    "play ##s ##ed ##ing ##er ##ly un re"
).split()


@pytest.fixture(scope="session")
def real_texts() -> list[str]:
    """1,200 real texts of mixed length (see tests/data/README.md)."""
    with (DATA / "texts.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle]


def bert_tokenizer(extra: list[str] | None = None) -> Tokenizer:
    """A small uncased WordPiece tokenizer with BERT's normaliser and pre-tokeniser."""
    chars = list(string.ascii_lowercase + string.digits + string.punctuation) + ["é", "中"]
    vocab_list = SPECIALS + [f"[unused{i}]" for i in range(3)] + chars
    vocab_list += [f"##{c}" for c in string.ascii_lowercase + string.digits]
    vocab_list += [w for w in WORDS + (extra or []) if w not in vocab_list]
    vocab = {token: i for i, token in enumerate(vocab_list)}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer.add_special_tokens(SPECIALS)
    return tokenizer


def random_model(dim: int = 32, seed: int = 0) -> StaticModel:
    """A static model with random vectors over the small BERT tokenizer."""
    tokenizer = bert_tokenizer()
    table = np.random.default_rng(seed).standard_normal((tokenizer.get_vocab_size(), dim))
    return StaticModel(table.astype(np.float32), tokenizer, {}, name="random")


@pytest.fixture()
def small_model() -> StaticModel:
    return random_model()


def save_random_bert(
    folder: Path, tokenizer: Tokenizer, hidden_size: int = 32, layers: int = 1, heads: int = 2,
    positions: int = 64, pad_token_id: int = 0,
) -> None:  # fmt: skip
    """A randomly initialised BERT (torch seed 0, intermediate size 2 x hidden) and its tokenizer,
    saved in `folder` (no download). Skips the test without torch and transformers."""
    torch = needs("torch")
    BertConfig, BertModel = needs("transformers").BertConfig, needs("transformers").BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=hidden_size, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=2 * hidden_size,
                        max_position_embeddings=positions, pad_token_id=pad_token_id)  # fmt: skip
    BertModel(config).eval().save_pretrained(folder)
    tokenizer.save(str(folder / "tokenizer.json"))


def mean_pooling_modules(folder: Path, dim: int) -> list[dict[str, object]]:
    """Sentence Transformer modules (the transformer at the root, then mean pooling), with the
    pooling config written; the caller writes modules.json, after adding any further modules."""
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": dim, "pooling_mode_mean_tokens": True})
    )
    return [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT saved as a Sentence Transformer folder (no download)."""
    folder = tmp_path_factory.mktemp("teacher")
    save_random_bert(folder, bert_tokenizer(), hidden_size=48, layers=2, heads=4, positions=128)
    (folder / "modules.json").write_text(json.dumps(mean_pooling_modules(folder, 48)))
    return folder


def sql_rows(index: Any, query: str) -> list[tuple[Any, ...]]:
    """Rows of a raw SQL query on one read snapshot of `index` (tests check storage directly)."""
    return index.read(lambda snapshot: snapshot.store.conn.execute(query).fetchall())


def faiss_of(index: Any) -> Any:
    """The FAISS index of `index`'s current snapshot."""
    return index.read(lambda snapshot: snapshot.vectors())


EXTRA_OF = {"torch": "train", "transformers": "train", "sklearn": "train", "sentence_transformers": "test",
            "model2vec": "test", "pyarrow": "eval"}  # fmt: skip


def needs(module: str, extra: str | None = None) -> Any:
    """`module`, or skip the test naming the extra that installs it."""
    extra = extra or EXTRA_OF.get(module, "test")
    return pytest.importorskip(module, reason=f"needs {module}: pip install 'm2vsearch[{extra}]'")
