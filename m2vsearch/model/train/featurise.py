"""Teacher embeddings of a text corpus, cached on disk (needs the `train` extra: torch).

The corpus is every string under the keys ``text``, ``query``, ``positive`` and ``definition``
(and every string in an ``examples`` list) of the JSONL files given, de-duplicated exactly and
shuffled with a fixed seed, so short texts (queries, titles, sentences) and passages are mixed in
every shard. The cache folder holds::

    manifest.json          teacher, pooling, max length, sources, count, shard size
    texts.jsonl            one {"text"} per line, in cache order
    vectors-00000.npy      float16 unit vectors of shard 0 (texts 0 .. shard_size-1), ...

A shard is written to a temporary file and renamed, so an interrupted run resumes at the first
missing shard; a cache made with another teacher or text list is refused. No pickle anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from m2vsearch.errors import ModelError
from m2vsearch.jsonl import read_jsonl
from m2vsearch.model.io import module_dir, read_json
from m2vsearch.model.train.pairs import refuse_evaluation_data
from m2vsearch.progress import Progress, no_progress

TEXT_KEYS = ("text", "query", "positive", "definition")
MANIFEST = "manifest.json"
TEXTS = "texts.jsonl"


def read_texts(paths: Sequence[Path], limit: int | None = None, seed: int = 0) -> list[str]:
    """De-duplicated, shuffled texts from JSONL files (keys in TEXT_KEYS and `examples` lists)."""
    seen: set[str] = set()
    texts: list[str] = []
    for path in paths:
        refuse_evaluation_data(path)
        found = 0
        for number, row in read_jsonl(path, ModelError, f"no text file at {path}"):
            if not isinstance(row, dict):
                raise ModelError(f"{path}:{number}: expected a JSON object")
            values = [row[k] for k in TEXT_KEYS if isinstance(row.get(k), str)]
            values += [v for v in row.get("examples") or [] if isinstance(v, str)]
            for value in values:
                value = value.strip()
                if value and value not in seen:
                    seen.add(value)
                    texts.append(value)
                    found += 1
        if found == 0:
            raise ModelError(f"{path}: no texts under the keys {', '.join(TEXT_KEYS)} or examples")
    random.Random(seed).shuffle(texts)
    return texts[:limit] if limit is not None else texts


def _pooling_mode(folder: Path) -> str:
    """'mean' or 'cls', from the Sentence Transformer's Pooling module (mean when there is none)."""
    pooling_dir = module_dir(folder, "Pooling")
    if pooling_dir is None:
        return "mean"
    config = read_json(pooling_dir / "config.json")
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    if config.get("pooling_mode_cls_token"):
        return "cls"
    raise ModelError(f"{folder}: only mean or CLS pooling teachers are supported")


def _max_length(folder: Path, transformer_dir: Path) -> int:
    for candidate in (folder / "sentence_bert_config.json", transformer_dir / "sentence_bert_config.json"):
        if candidate.is_file():
            return int(json.loads(candidate.read_text(encoding="utf-8")).get("max_seq_length", 512))
    return 512


class Teacher:
    """A local Sentence Transformer folder as a batch encoder: pooled, normalised float32 vectors."""

    def __init__(self, folder: Path, max_length: int | None = None, bf16: bool = True, device: str = "auto",
                 prompt: str | None = None) -> None:  # fmt: skip
        import torch
        from transformers import AutoModel

        from m2vsearch.model.train.distill import dense_layers, teacher_parts

        self.torch = torch
        self.folder = Path(folder)
        transformer_dir, tokenizer = teacher_parts(self.folder)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.model = AutoModel.from_pretrained(str(transformer_dir), local_files_only=True).eval().to(device)
        positions = int(getattr(self.model.config, "max_position_embeddings", 512))
        self.max_length = min(max_length or _max_length(self.folder, transformer_dir), positions)
        self.pooling = _pooling_mode(self.folder)
        tokenizer.enable_truncation(self.max_length)
        tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]") or 0)
        self.tokenizer = tokenizer
        self.bf16 = bf16
        self.prompt = prompt or ""  # put before every text, as sentence-transformers' encode(prompt=...) does
        self.dense = dense_layers(self.folder)  # EmbeddingGemma: 768 -> 3072 -> 768 after pooling
        self.dim = int(self.dense[-1][0].shape[0]) if self.dense else int(self.model.config.hidden_size)

    def describe(self) -> dict[str, object]:
        """What decides the vectors (goes into the cache manifest)."""
        weights = sorted(self.folder.rglob("*.safetensors")) or sorted(self.folder.rglob("*.bin"))
        digest = hashlib.blake2b(digest_size=8)
        for path in weights:
            digest.update(f"{path.name}:{path.stat().st_size}".encode())
        described = {"teacher": self.folder.name, "weights": digest.hexdigest(), "pooling": self.pooling,
                     "max_length": self.max_length, "bf16": self.bf16, "dim": self.dim}  # fmt: skip
        if self.dense:
            described["dense_layers"] = len(self.dense)
        if self.prompt:
            described["prompt"] = self.prompt
        return described

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Unit vectors (len(texts), dim); batches are length-sorted to waste little padding."""
        torch = self.torch
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), int(self.model.config.hidden_size)), dtype=np.float32)  # pooled, before Dense
        device_type = "cuda" if self.device.startswith("cuda") else "cpu"
        with torch.inference_mode(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.bf16):
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                encoded = self.tokenizer.encode_batch([self.prompt + texts[i] for i in batch])
                ids = torch.tensor([e.ids for e in encoded], dtype=torch.long, device=self.device)
                mask = torch.tensor([e.attention_mask for e in encoded], dtype=torch.long, device=self.device)
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
                if self.pooling == "cls":
                    pooled = hidden[:, 0]
                else:
                    weights = mask.unsqueeze(-1).float()
                    pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
                out[batch] = pooled.cpu().numpy()
        if self.dense:
            from m2vsearch.model.train.distill import apply_dense

            out = apply_dense(out, self.dense)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def _shard_path(cache: Path, shard: int) -> Path:
    return cache / f"vectors-{shard:05d}.npy"


def _write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through `write(handle)` to a temporary file, fsync it, rename it over `path`."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def featurise(
    teacher: Teacher,
    texts: Sequence[str],
    cache: Path,
    sources: Sequence[str] = (),
    shard_size: int = 10_000,
    batch_size: int = 64,
    progress: Progress = no_progress,
    first: int | None = None,
) -> int:
    """Embed `texts` into `cache`, resuming where a previous run stopped; shards written this run.
    `first`: only the shards that hold the first `first` texts (a later run can add the rest)."""
    text_digest = hashlib.blake2b("\n".join(texts).encode("utf-8"), digest_size=16).hexdigest()
    manifest = {**teacher.describe(), "count": len(texts), "shard_size": shard_size,
                "texts_blake2b": text_digest, "sources": list(sources), "dtype": "float16"}  # fmt: skip
    cache.mkdir(parents=True, exist_ok=True)
    manifest_file = cache / MANIFEST
    if manifest_file.is_file():
        old = json.loads(manifest_file.read_text(encoding="utf-8"))
        keys = [k for k in manifest if k != "sources"]
        if any(old.get(k) != manifest[k] for k in keys):
            raise ModelError(f"{cache} holds embeddings of another teacher or text list; use a new --out")
    else:
        body = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts).encode("utf-8")
        _write_atomic(cache / TEXTS, lambda handle: handle.write(body))
        _write_atomic(manifest_file, lambda handle: handle.write(json.dumps(manifest, indent=2).encode()))
    needed = len(texts) if first is None else min(first, len(texts))
    shards = [s for s in range(-(-needed // shard_size)) if not _shard_path(cache, s).is_file()]
    for shard in progress(shards, len(shards), f"featurising with {teacher.folder.name}"):
        vectors = teacher.encode(texts[shard * shard_size : (shard + 1) * shard_size], batch_size)
        _write_atomic(_shard_path(cache, shard), lambda handle: np.save(handle, vectors.astype(np.float16)))
    return len(shards)


def load_cache(
    cache: Path, complete_only: bool = False, limit: int | None = None
) -> tuple[list[str], np.ndarray, dict[str, object]]:
    """Texts and float32 teacher vectors of every finished shard (all shards if complete_only; the
    first `limit` texts, in cache order, when a limit is given: a deterministic part of a cache
    whose later shards are still being embedded)."""
    manifest_file = cache / MANIFEST
    if not manifest_file.is_file():
        raise ModelError(f"no featurised cache at {cache} (run m2vsearch featurise first)")
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    shard_size, count = int(manifest["shard_size"]), int(manifest["count"])
    wanted = count if limit is None else min(limit, count)
    texts = [row["text"] for _, row in read_jsonl(cache / TEXTS, ModelError, f"{cache} has no {TEXTS}")]
    kept_texts: list[str] = []
    blocks: list[np.ndarray] = []
    for shard in range(-(-wanted // shard_size)):
        path = _shard_path(cache, shard)
        if not path.is_file():
            if complete_only or limit is not None:
                raise ModelError(f"{cache} is not finished ({path.name} missing); run featurise again")
            continue
        block = np.load(path, allow_pickle=False).astype(np.float32)
        chunk = texts[shard * shard_size : (shard + 1) * shard_size]
        if len(block) != len(chunk):
            raise ModelError(f"{path} holds {len(block)} vectors for {len(chunk)} texts")
        kept_texts.extend(chunk)
        blocks.append(block)
    if not blocks:
        raise ModelError(f"{cache} has no finished shard yet")
    if limit is not None:
        return kept_texts[:wanted], np.concatenate(blocks)[:wanted], manifest
    return kept_texts, np.concatenate(blocks), manifest
