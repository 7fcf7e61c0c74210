"""Unigram (SentencePiece) vocabularies for distillation: prune to the most probable pieces.

XLM-R's 250k pieces (multilingual-e5-small) make a 64 MB table at 256 int8 dims. The Unigram
model scores every piece with its log-probability in the tokenizer's own multilingual training
text, so the most probable pieces are the ones worth a row. Every single-character piece is kept
as well, so any text still tokenizes into known pieces (a pruned word falls back to shorter
pieces, as SentencePiece does with any word it has no piece for).
"""

from __future__ import annotations

import json

import numpy as np
from tokenizers import Tokenizer

from m2vsearch.errors import ModelError


def is_unigram(tokenizer: Tokenizer) -> bool:
    return type(tokenizer.model).__name__ == "Unigram"


def prune_unigram(tokenizer: Tokenizer, keep: int | None) -> tuple[Tokenizer, list[str], np.ndarray]:
    """A tokenizer with the specials, every single-character piece and the most probable others,
    up to `keep` pieces (None: all); its pieces in id order and their probabilities (0 for specials)."""
    spec = json.loads(tokenizer.to_str())
    model = spec["model"]
    pieces: list[list] = model["vocab"]  # [piece, log-probability], in id order
    specials = {t["content"] for t in spec.get("added_tokens") or [] if t.get("special")}
    unk_id = model.get("unk_id")
    unk = pieces[unk_id][0] if unk_id is not None else None
    chosen = set(range(len(pieces))) if keep is None else _most_probable(pieces, specials | {unk}, keep)
    kept = [pieces[i] for i in sorted(chosen)]
    new_ids = {piece: i for i, (piece, _) in enumerate(kept)}
    model["vocab"] = kept
    if unk is not None:
        model["unk_id"] = new_ids[unk]
    for added in spec.get("added_tokens") or []:
        if added["content"] not in new_ids:
            raise ModelError(f"pruning lost the added token {added['content']!r}")
        added["id"] = new_ids[added["content"]]
    spec["post_processor"] = None
    spec["padding"] = None
    spec["truncation"] = None
    probability = np.array([0.0 if p in specials or p == unk else np.exp(s) for p, s in kept])
    return Tokenizer.from_str(json.dumps(spec)), [p for p, _ in kept], probability / max(probability.sum(), 1e-30)


def _most_probable(pieces: list[list], protected: set[str | None], keep: int) -> set[int]:
    must = {i for i, (piece, _) in enumerate(pieces) if piece in protected or len(piece.lstrip("\u2581")) <= 1}
    if keep < len(must):
        raise ModelError(f"keep at least {len(must)} tokens (the specials and every single character)")
    others = sorted((i for i in range(len(pieces)) if i not in must), key=lambda i: (-pieces[i][1], i))
    return must | set(others[: keep - len(must)])
