"""BPE vocabularies for distillation: prune to the tokens a text collection actually uses.

EmbeddingGemma's tokenizer has 262,144 BPE tokens (a 67 MB table at 256 int8 dims, ~1.75 h to
distil on two cores) and, unlike SentencePiece's Unigram, no per-token probability to rank them
by. So tokens are ranked by how often the full tokenizer produces them on sample text, and the
most frequent are kept together with everything BPE needs to reach them: the two parts of every
kept token's merge, recursively, and all 256 byte tokens (byte fallback), so any text still
tokenizes into kept tokens (a pruned token falls back to its parts, as BPE does without its merge).

The pruned tokenizer also works word by word (`word_by_word`): every run of whitespace is one word
boundary and each word starts with U+2581, so a text's tokens are exactly its whitespace-separated
words' tokens one after another. Gemma's own tokenizer runs BPE over the whole text (newlines and
space runs are tokens, the first word has no U+2581); word by word, encoding can cache each
distinct word once (`model/pooling.py`), which makes it as fast as the WordPiece default.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from m2vsearch.errors import ModelError

_KEPT_SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>", "<s>", "</s>")
# Exactly the characters Python's str.split() splits on, so the pooler's split agrees with this one.
WHITESPACE = "\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
WORD_MARK = "\u2581"
WORD_NORMALIZER = {
    "type": "Sequence",
    "normalizers": [
        {"type": "Replace", "pattern": {"Regex": f"\\A[{WHITESPACE}]+|[{WHITESPACE}]+\\z"}, "content": ""},
        {"type": "Replace", "pattern": {"Regex": f"[{WHITESPACE}]+"}, "content": WORD_MARK},
        {"type": "Prepend", "prepend": WORD_MARK},
    ],
}
WORD_PRE_TOKENIZER = {"type": "Split", "pattern": {"String": WORD_MARK}, "behavior": "MergedWithNext", "invert": False}


def is_bpe(tokenizer: Tokenizer) -> bool:
    return type(tokenizer.model).__name__ == "BPE"


def count_tokens(tokenizer: Tokenizer, texts: Iterable[str], batch: int = 4096) -> np.ndarray:
    """How often each token id occurs when `tokenizer` encodes `texts` (no special tokens)."""
    plain = Tokenizer.from_str(tokenizer.to_str())
    plain.no_padding()
    plain.no_truncation()
    counts = np.zeros(tokenizer.get_vocab_size(), dtype=np.int64)
    pending: list[str] = []

    def flush() -> None:
        encodings = plain.encode_batch_fast(pending, add_special_tokens=False)
        ids = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int64)
        counts[:] += np.bincount(ids, minlength=len(counts))[: len(counts)]
        pending.clear()

    for text in texts:
        pending.append(text)
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    return counts


def word_by_word(spec: dict[str, Any]) -> dict[str, Any]:
    """A BPE tokenizer spec made to tokenize word by word (see the module docstring); added tokens
    are dropped so that none is matched across or inside words (a static model needs none)."""
    spec = {**spec, "normalizer": WORD_NORMALIZER, "pre_tokenizer": WORD_PRE_TOKENIZER, "added_tokens": []}
    spec["post_processor"] = None
    return spec


def word_tokenizer(tokenizer: Tokenizer) -> Tokenizer:
    """The same BPE vocabulary tokenizing word by word: count tokens with it before pruning, so
    the counts are those of the tokenizer the model will use."""
    return Tokenizer.from_str(json.dumps(word_by_word(json.loads(tokenizer.to_str()))))


def is_word_by_word(tokenizer: Tokenizer) -> bool:
    """Whether a tokenizer is a BPE made by `word_by_word` (its text = its words' tokens in order)."""
    if not is_bpe(tokenizer) or tokenizer.normalizer is None or tokenizer.pre_tokenizer is None:
        return False
    # Each component's own JSON (what pickling uses), not the whole tokenizer: serialising Gemma's
    # vocabulary and merges would add ~0.3 s to every model load.
    normalizer = json.loads(tokenizer.normalizer.__getstate__())
    pre_tokenizer = json.loads(tokenizer.pre_tokenizer.__getstate__())
    return (
        normalizer == WORD_NORMALIZER
        and pre_tokenizer == WORD_PRE_TOKENIZER
        and not tokenizer.get_added_tokens_decoder()
    )


def _merge_pairs(merges: list[Any]) -> list[tuple[str, str]]:
    """Merges as (left, right) pairs, from either serialisation ("a b" or ["a", "b"])."""
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in merges]  # type: ignore[misc]


def prune_bpe(tokenizer: Tokenizer, counts: np.ndarray, keep: int) -> tuple[Tokenizer, list[str], np.ndarray]:
    """A word-by-word tokenizer with the `keep` most frequent tokens (by `counts`, one per old id)
    plus the byte tokens, the basic specials and every merge part they need; its tokens in id order
    and each kept token's share of the counted tokens (specials 0)."""
    spec = json.loads(tokenizer.to_str())
    model = spec["model"]
    vocab: dict[str, int] = model["vocab"]
    if len(counts) < len(vocab):  # the tokenizer's size may also count added tokens outside the model
        raise ModelError(f"{len(counts)} token counts for a vocabulary of {len(vocab)}")
    id_to_token = {i: t for t, i in vocab.items()}
    merges = _merge_pairs(model["merges"])
    parents = {}
    for left, right in merges:
        parents.setdefault(left + right, (left, right))
    specials = {t for t in _KEPT_SPECIALS if t in vocab}
    if model.get("unk_token") in vocab:
        specials.add(model["unk_token"])
    kept: set[str] = specials | {t for t in vocab if len(t) == 6 and t.startswith("<0x") and t.endswith(">")}
    if keep < len(kept):
        raise ModelError(f"keep at least {len(kept)} tokens (the specials and the 256 byte tokens)")

    def add(token: str) -> None:
        stack = [token]
        while stack:
            current = stack.pop()
            if current in kept:
                continue
            kept.add(current)
            stack.extend(parents.get(current, ()))

    for old_id in np.argsort(-counts, kind="stable"):
        if counts[old_id] == 0 or len(kept) >= keep:
            break
        if int(old_id) in id_to_token:
            add(id_to_token[int(old_id)])
    tokens = sorted(kept, key=vocab.__getitem__)
    new_ids = {token: i for i, token in enumerate(tokens)}
    model["vocab"] = new_ids
    model["merges"] = [[a, b] for a, b in merges if a in kept and b in kept and a + b in kept]
    spec = word_by_word(spec)
    spec["padding"] = None
    spec["truncation"] = None
    share = np.array([0.0 if t in specials else float(counts[vocab[t]]) for t in tokens])
    return Tokenizer.from_str(json.dumps(spec)), tokens, share / max(share.sum(), 1.0)
