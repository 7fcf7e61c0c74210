"""Full-text tokenizers of an index (FTS5) and the BM25 query each one needs.

- `porter` (default): FTS5's `unicode61` words with Porter stemming and diacritics removed: English
  and other languages that put spaces between words.
- `trigram`: FTS5's `trigram` tokenizer (every 3-character window, case-insensitive): languages
  written without spaces (Chinese, Japanese, Thai), where `unicode61` would make one "word" of a
  whole sentence. A query is OR-ed over its own trigrams, so BM25 ranks by shared trigrams.

The choice is fixed when an index is created and kept in its meta (`fts_tokenizer`).
"""

from __future__ import annotations

import itertools
import re
import sqlite3
from collections.abc import Iterable

from m2vsearch.settings import DEFAULT_FTS_TOKENIZER

TOKENIZERS = {"porter": "porter unicode61 remove_diacritics 2", "trigram": "trigram"}
DEFAULT_TOKENIZER = DEFAULT_FTS_TOKENIZER
MAX_TRIGRAMS = 64  # per query: a long query stays one bounded FTS5 match
MAX_TERMS = 256  # distinct words per query (the first ones): a pasted page cannot make BM25 OR thousands of terms
STOPWORDS = frozenset(
    "a an and are as at be but by for from has have he her his i if in into is it its of on or "
    "our she so such that the their them then there these they this to was we were what when "
    "where which who will with you your do does did how can not no".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)
# Text between whitespace and punctuation (ASCII, general and CJK punctuation, full-width forms).
_RUN = re.compile(
    r"[^\s!-/:-@\[-`{-~\u00a1-\u00bf\u2000-\u206f\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]+"
)
# Scripts written without spaces between words: CJK ideographs, kana, Hangul syllables, Thai, Lao,
# Khmer, Myanmar.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]")


def has_content_words(text: str) -> bool:
    """Whether `text` has a word that is not a stopword (else hybrid search ignores BM25)."""
    return any(w.lower() not in STOPWORDS for w in _WORD.findall(text))


def _quoted(terms: Iterable[str]) -> str:
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def fts_terms(text: str, tokenizer: str = DEFAULT_TOKENIZER) -> list[str]:
    """The phrases BM25 ORs for `text`: its words (or, for `trigram`, its trigrams), stopwords
    dropped unless that is all there is; empty when nothing can match."""
    if tokenizer == "trigram":  # runs between spaces and punctuation, combining marks kept (Thai, Hindi)
        runs = list(dict.fromkeys(_RUN.findall(text.lower())))
        runs = [r for r in runs if r not in STOPWORDS] or runs
        per_run = [[r[i : i + 3] for i in range(len(r) - 2)] for r in runs]  # under 3 chars: no match
        # Round-robin over the runs, so a long query keeps some trigrams of every word.
        interleaved = [g for round_ in itertools.zip_longest(*per_run) for g in round_ if g is not None]
        return list(dict.fromkeys(interleaved))[:MAX_TRIGRAMS]
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(text)))
    return ([w for w in words if w not in STOPWORDS] or words)[:MAX_TERMS]


def fts_query(text: str, tokenizer: str = DEFAULT_TOKENIZER) -> str:
    """An FTS5 query that ORs the phrases of `text` (`fts_terms`); empty when nothing can match."""
    return _quoted(fts_terms(text, tokenizer))


def short_runs(text: str, limit: int = 8) -> list[str]:
    """The 1- and 2-character runs of a query (not stopwords), which a trigram index cannot MATCH:
    most Chinese and Japanese words are that short."""
    runs = [r for r in dict.fromkeys(_RUN.findall(text.lower())) if len(r) < 3 and r not in STOPWORDS]
    return runs[:limit]


def table_tokenizer(conn: sqlite3.Connection) -> str | None:
    """The tokenizer the FTS5 table was really created with (its SQL), or None if unknown."""
    try:
        row = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'chunks_fts'").fetchone()
    except sqlite3.Error:
        return None
    if not row or not row[0]:
        return None
    match = re.search(r"tokenize\s*=\s*['\"]([^'\"]*)['\"]", row[0])
    for name, spec in TOKENIZERS.items():
        if match and match.group(1).strip() == spec:
            return name
    return None


def unspaced_share(texts: Iterable[str]) -> float:
    """The share of word characters in `texts` that belong to scripts written without spaces."""
    unspaced = total = 0
    for text in texts:
        unspaced += len(_UNSPACED.findall(text))
        total += sum(len(w) for w in _WORD.findall(text))
    return unspaced / total if total else 0.0


def suggested_tokenizer(texts: Iterable[str]) -> str:
    """`trigram` when over a fifth of the text is in scripts without spaces, else `porter`."""
    return "trigram" if unspaced_share(texts) > 0.2 else DEFAULT_TOKENIZER
