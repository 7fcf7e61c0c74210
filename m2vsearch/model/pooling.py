"""Text -> mean of static token vectors, fast.

The exact path runs the real `tokenizers` tokenizer on every text (model2vec's semantics: truncate
characters at max_length x median token length, truncate tokens at max_length, drop the unknown
token, mean the rest). Most of its cost is building one `Encoding` object per text in Python.

For BERT-style tokenizers (BertNormalizer + BertPreTokenizer) nothing crosses whitespace: a text's
tokens are the tokens of its whitespace-separated pieces, one after another. The piece path splits
a whole batch with one `str.split()`, tokenizes each distinct piece once with the real tokenizer
and caches the piece's vector sum and token counts, so a warm batch costs a split, dict look-ups
and numpy sums. Texts it cannot vouch for (a NUL byte, more than max_length tokens) take the exact
path, so results never depend on which path ran.

Word-by-word BPE tokenizers (`model/bpe.py`: the Gemma-derived model) take the piece path too:
there every whitespace run is a word boundary and each word is tokenized on its own, so unseen
pieces are simply tokenized one by one.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence

import numpy as np
from tokenizers import Tokenizer

from m2vsearch.model.bpe import WORD_MARK, is_word_by_word

_SEPARATOR = "\x00"  # a piece of its own between texts; texts containing it take the exact path
# Characters that Python's str.split() treats as whitespace but BertNormalizer deletes (they are
# control characters), so deleting them first keeps the two splits equal.
_SPLIT_BUT_DELETED = re.compile("[\x0b\x0c\x1c-\x1f\x85]")
_DELETE = str.maketrans(dict.fromkeys("\x0b\x0c\x1c\x1d\x1e\x1f\x85"))
_CACHE_TOKENS = 8_000_000  # cached token ids (64 MB) before the piece cache starts over


def _piece_path_ok(tokenizer: Tokenizer) -> bool:
    """Whether tokenizing whitespace-separated pieces one at a time equals tokenizing the text.

    True for BertNormalizer + BertPreTokenizer (every step is per character or per word) when no
    added token contains or looks at whitespace.
    """
    normalizer = type(tokenizer.normalizer).__name__
    pre_tokenizer = type(tokenizer.pre_tokenizer).__name__
    if normalizer != "BertNormalizer" or pre_tokenizer != "BertPreTokenizer":
        return False
    for token in tokenizer.get_added_tokens_decoder().values():
        if token.single_word or token.lstrip or token.rstrip:
            return False
        if not token.content or any(c.isspace() for c in token.content):
            return False
    return True


def unknown_token_id(tokenizer: Tokenizer) -> int | None:
    """The id of the tokenizer's unknown token, which encoding drops (as model2vec does)."""
    unk_token = getattr(tokenizer.model, "unk_token", None)
    if unk_token is not None:
        return tokenizer.token_to_id(unk_token)
    unk_id = getattr(tokenizer.model, "unk_id", None)  # Unigram
    if unk_id is None and type(tokenizer.model).__name__ == "Unigram":
        unk_id = json.loads(tokenizer.to_str())["model"].get("unk_id")
    return int(unk_id) if unk_id is not None else None


def segment_sums(table: np.ndarray, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sum of table rows over consecutive runs of `ids` of the given lengths (empty -> zeros)."""
    out = np.zeros((len(lengths), table.shape[1]), dtype=np.float32)
    ends = np.cumsum(lengths).tolist()
    start = 0
    for row, end in enumerate(ends):
        if end > start:
            np.add.reduce(table[ids[start:end]], axis=0, out=out[row])
        start = end
    return out


class MeanPooler:
    """Mean-pools rows of a float32 token table over the tokens of each text."""

    def __init__(
        self, tokenizer: Tokenizer, table: np.ndarray, max_length: int | None, median_token_length: int | None = None
    ) -> None:
        self.table = table
        self.max_length = max_length
        self.unk_id = unknown_token_id(tokenizer)
        if median_token_length is None:  # saved models record it: computing it reads the vocabulary
            median_token_length = int(np.median([len(token) for token in tokenizer.get_vocab()]))
        self.median_token_length = int(median_token_length)
        self.char_limit = None if max_length is None else max_length * self.median_token_length
        if tokenizer.padding is not None or tokenizer.truncation is not None:
            tokenizer = Tokenizer.from_str(tokenizer.to_str())
            tokenizer.no_padding()
            tokenizer.no_truncation()
        self._tokenizer = tokenizer  # never pads or truncates; max_length is applied here
        self.words = is_word_by_word(tokenizer)  # pieces are tokenized alone; nothing to delete
        self.piece_path = self.words or _piece_path_ok(tokenizer)
        self._word_starts = _word_start_ids(tokenizer) if self.words else None
        self._lock = threading.Lock()
        self._reset_cache()

    # -- exact path ---------------------------------------------------------------------------
    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text after truncation, unknown tokens dropped (model2vec's tokenize)."""
        encodings = self._tokenizer.encode_batch_fast(self._clip(texts), add_special_tokens=False)
        unk, limit = self.unk_id, self.max_length
        return [[i for i in e.ids[:limit] if i != unk] for e in encodings]

    def _pool_exact(self, texts: Sequence[str]) -> np.ndarray:
        ids = self.token_ids(texts)
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter((t for i in ids for t in i), dtype=np.int64, count=int(lengths.sum()))
        return segment_sums(self.table, flat, lengths) / np.maximum(lengths, 1)[:, None]

    # -- piece path ---------------------------------------------------------------------------
    def _reset_cache(self) -> None:
        self._index: dict[str, int] = {_SEPARATOR: 0}
        self._first = np.zeros(1024, dtype=np.int64)  # where a piece's kept tokens start in _tokens
        self._kept = np.zeros(1024, dtype=np.int64)  # tokens that count in the mean
        self._all = np.zeros(1024, dtype=np.int64)  # tokens before dropping unknowns
        self._tokens = np.zeros(4096, dtype=np.int64)
        self._used = 0  # filled length of _tokens

    def _learn(self, pieces: list[str], chunk: int = 256) -> None:
        """Tokenize unseen pieces once (256 to a text) and cache their kept token ids and token
        counts. Which piece a token belongs to: by its character offset (BERT-style), or by the
        word-start tokens (word by word; a group whose word count disagrees is redone piece by
        piece)."""
        first = len(self._index)
        end = first + len(pieces)
        self._first, self._kept, self._all = (_grown(a, end) for a in (self._first, self._kept, self._all))
        groups = [pieces[i : i + chunk] for i in range(0, len(pieces), chunk)]
        encode = self._tokenizer.encode_batch_fast if self.words else self._tokenizer.encode_batch  # offsets: BERT only
        encodings = encode([" ".join(g) for g in groups], add_special_tokens=False)
        for offset, group, encoding in zip(range(first, end, chunk), groups, encodings):
            ids = np.asarray(encoding.ids, dtype=np.int64)
            if self._word_starts is None:
                lengths = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
                starts = np.cumsum(lengths + 1) - lengths - 1
                token_starts = np.fromiter((o[0] for o in encoding.offsets), dtype=np.int64, count=len(ids))
                owner = np.searchsorted(starts, token_starts, side="right") - 1
            else:
                word_starts = self._word_starts[ids]
                owner = np.cumsum(word_starts) - 1
                if int(word_starts.sum()) != len(group) or (len(ids) and not word_starts[0]):
                    singles = self._tokenizer.encode_batch_fast(group, add_special_tokens=False)
                    ids = np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in singles])
                    owner = np.repeat(np.arange(len(group)), [len(e.ids) for e in singles])
            self._store(offset, len(group), ids, owner)
        self._index.update(zip(pieces, range(first, end)))

    def _store(self, offset: int, count: int, ids: np.ndarray, owner: np.ndarray) -> None:
        """Cache the kept token ids and token counts of `count` pieces from `offset` on."""
        keep = ids != self.unk_id if self.unk_id is not None else np.ones(len(ids), dtype=bool)
        rows = slice(offset, offset + count)
        kept_counts = np.bincount(owner[keep], minlength=count)
        self._all[rows] = np.bincount(owner, minlength=count)
        self._kept[rows] = kept_counts
        self._first[rows] = self._used + np.cumsum(kept_counts) - kept_counts
        total = int(keep.sum())
        self._tokens = _grown(self._tokens, self._used + total)
        self._tokens[self._used : self._used + total] = ids[keep]
        self._used += total

    def _piece_tokens(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The kept token ids of all texts one after another, the count per text, and a mask of
        texts longer than max_length tokens (call under the lock)."""
        pieces = f" {_SEPARATOR} ".join(texts).split()
        unseen = set(pieces).difference(self._index)
        if self._used > _CACHE_TOKENS:
            self._reset_cache()
            unseen = set(pieces).difference(self._index)
        if unseen:
            self._learn(sorted(unseen))
        piece_ids = np.fromiter(map(self._index.__getitem__, pieces), dtype=np.int64, count=len(pieces))
        ends = np.append(np.flatnonzero(piece_ids == 0) + 1, len(piece_ids))
        starts = ends - np.diff(ends, prepend=0)
        kept = self._kept[piece_ids]
        # Sums per text over [start, next start); a trailing 0 keeps an empty last text in range.
        text_kept = np.add.reduceat(np.append(kept, 0), starts)
        too_long = np.zeros(len(texts), dtype=bool)
        if self.max_length is not None:
            too_long = np.add.reduceat(np.append(self._all[piece_ids], 0), starts) > self.max_length
        # Ragged gather: the kept token ids of every piece, in order.
        total = int(kept.sum())
        shift = np.repeat(self._first[piece_ids] - (np.cumsum(kept) - kept), kept)
        return self._tokens[shift + np.arange(total)], text_kept, too_long

    def _pool_pieces(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Means of texts, and a mask of texts longer than max_length tokens."""
        tokens, text_kept, too_long = self._piece_tokens(texts)
        sums = segment_sums(self.table, tokens, text_kept)
        return sums / np.maximum(text_kept, 1)[:, None], too_long

    def token_bags(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The token ids of each text (unknown tokens dropped; not cut at max_length), one text
        after another, and the count per text: what late interaction compares, from the piece
        cache (a text of 1,000 characters costs a split and dictionary look-ups)."""
        texts = list(texts)
        prepared = self._prepare(texts) if self.piece_path else [None] * len(texts)
        fast = [i for i, text in enumerate(prepared) if text is not None]
        if texts and len(fast) == len(texts):  # the usual case: one gather for all
            with self._lock:
                tokens, counts, _ = self._piece_tokens(prepared)  # type: ignore[arg-type]
            return tokens, counts.astype(np.int64)
        bags: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(texts)
        if fast:
            with self._lock:
                tokens, counts, _ = self._piece_tokens([prepared[i] for i in fast])  # type: ignore[misc]
            for i, bag in zip(fast, np.split(tokens, np.cumsum(counts)[:-1])):
                bags[i] = bag
        slow = [i for i, text in enumerate(prepared) if text is None]
        if slow:
            encodings = self._tokenizer.encode_batch_fast([texts[i] for i in slow], add_special_tokens=False)
            for i, encoding in zip(slow, encodings):
                bags[i] = np.asarray([t for t in encoding.ids if t != self.unk_id], dtype=np.int64)
        lengths = np.fromiter(map(len, bags), dtype=np.int64, count=len(bags))
        return (np.concatenate(bags) if bags else np.zeros(0, dtype=np.int64)), lengths

    def _prepare(self, texts: list[str]) -> list[str | None]:
        """Texts ready for the piece path, or None for those that need the exact path."""
        out: list[str | None] = list(texts)
        for i, text in enumerate(texts):
            if _SEPARATOR in text:
                out[i] = None
            elif not self.words and _SPLIT_BUT_DELETED.search(text):
                out[i] = text.translate(_DELETE)
        return out

    # -- public -------------------------------------------------------------------------------
    def _clip(self, texts: Sequence[str]) -> list[str]:
        limit = self.char_limit
        if limit is None:
            return list(texts)
        return [t if len(t) <= limit else t[:limit] for t in texts]

    def pool(self, texts: Sequence[str]) -> np.ndarray:
        """Mean token vector per text, float32 (n, dim); a text with no known token gives zeros."""
        texts = self._clip(texts)
        out = np.zeros((len(texts), self.table.shape[1]), dtype=np.float32)
        exact = np.ones(len(texts), dtype=bool)
        if self.piece_path and texts:
            prepared = self._prepare(texts)
            fast = [i for i, text in enumerate(prepared) if text is not None]
            if fast:
                with self._lock:
                    means, too_long = self._pool_pieces([prepared[i] for i in fast])  # type: ignore[misc]
                out[fast] = means
                exact[fast] = too_long
        slow = np.flatnonzero(exact)
        if len(slow):
            out[slow] = self._pool_exact([texts[i] for i in slow])
        return out


def _word_start_ids(tokenizer: Tokenizer) -> np.ndarray:
    """Per token id: whether the token starts a word (begins with U+2581)."""
    starts = np.zeros(tokenizer.get_vocab_size(), dtype=bool)
    starts[[i for token, i in tokenizer.get_vocab().items() if token.startswith(WORD_MARK)]] = True
    return starts


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    """`array` with room for at least `size` items (doubling), contents kept."""
    if size <= len(array):
        return array
    bigger = np.zeros(max(size, 2 * len(array)), dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger
