"""StaticModel: encode shape and semantics, dims, dtypes, round trips, bad folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import needs, random_model
from safetensors.numpy import save_file

from m2vsearch import ModelError, StaticModel


def test_encode_is_always_2d_float32_unit_length(small_model: StaticModel) -> None:
    one = small_model.encode("the search engine")
    many = small_model.encode(["the search engine", "a static model"])
    none = small_model.encode([])
    assert one.shape == (1, small_model.dim) and one.dtype == np.float32
    assert many.shape == (2, small_model.dim)
    assert none.shape == (0, small_model.dim)
    np.testing.assert_allclose(np.linalg.norm(many, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(one[0], many[0], rtol=1e-6)


def test_encode_is_the_normalised_mean_of_token_vectors(small_model: StaticModel) -> None:
    ids = small_model.tokenize(["static search engine"])[0]
    assert len(ids) == 3
    mean = small_model.table[ids].mean(axis=0)
    expected = mean / np.linalg.norm(mean)
    np.testing.assert_allclose(small_model.encode(["static search engine"])[0], expected, rtol=1e-5)


def test_empty_and_unknown_texts_give_zero_vectors(small_model: StaticModel) -> None:
    vectors = small_model.encode(["", "   ", "ɸɸɸ"])
    np.testing.assert_array_equal(vectors, np.zeros_like(vectors))


def test_dims_truncates_then_renormalises(small_model: StaticModel) -> None:
    full = small_model.encode(["search the index"], dims=None)
    cut = small_model.encode(["search the index"], dims=8)
    expected = full[:, :8] / np.linalg.norm(full[:, :8])
    np.testing.assert_allclose(cut, expected, rtol=1e-5)
    np.testing.assert_allclose(small_model.truncate(8).encode(["search the index"]), cut, rtol=1e-5)
    for bad in (0, small_model.dim + 1):
        with pytest.raises(ModelError, match="dims must be between 1 and"):
            small_model.encode(["x"], dims=bad)


@pytest.mark.parametrize(("dtype", "min_cosine"), [("float32", 0.999999), ("float16", 0.9999), ("int8", 0.999)])
def test_save_load_round_trip(tmp_path: Path, dtype: str, min_cosine: float, real_texts: list[str]) -> None:
    model = random_model(dim=64)
    model.save_pretrained(tmp_path / "m", dtype=dtype)  # type: ignore[arg-type]
    loaded = StaticModel.from_pretrained(tmp_path / "m")
    assert loaded.storage_dtype == dtype
    assert loaded.vocab_size == model.vocab_size and loaded.dim == 64
    cosines = (model.encode(real_texts[:200]) * loaded.encode(real_texts[:200])).sum(axis=1)
    known = np.linalg.norm(model.encode(real_texts[:200]), axis=1) > 0
    assert cosines[known].min() >= min_cosine
    # magnitudes survive storage (int8 keeps a per-row scale)
    np.testing.assert_allclose(np.linalg.norm(loaded.table, axis=1), np.linalg.norm(model.table, axis=1), rtol=0.02)


def test_int8_scaled_rows_keep_relative_token_weights(tmp_path: Path) -> None:
    model = random_model(dim=16)
    model.table[7] *= 50.0  # one heavy token must stay heavy after int8 storage
    model.save_pretrained(tmp_path / "m", dtype="int8")
    loaded = StaticModel.from_pretrained(tmp_path / "m")
    ratio = np.linalg.norm(loaded.table[7]) / np.linalg.norm(loaded.table[8])
    expected = np.linalg.norm(model.table[7]) / np.linalg.norm(model.table[8])
    assert ratio == pytest.approx(expected, rel=0.02)


def test_model2vec_and_sentence_transformers_load_our_folder(tmp_path: Path, real_texts: list[str]) -> None:
    model2vec = needs("model2vec")
    SentenceTransformer = needs("sentence_transformers").SentenceTransformer

    model = random_model(dim=32)
    texts = [t for t in real_texts[:300] if "[" not in t]
    for dtype in ("float32", "int8"):
        folder = tmp_path / dtype
        model.save_pretrained(folder, dtype=dtype)  # type: ignore[arg-type]
        ours = StaticModel.from_pretrained(folder).encode(texts)
        theirs = model2vec.StaticModel.from_pretrained(str(folder)).encode(texts)
        theirs = theirs / np.maximum(np.linalg.norm(theirs, axis=1, keepdims=True), 1e-12)
        known = np.linalg.norm(ours, axis=1) > 0
        assert ((ours * theirs).sum(axis=1)[known] >= 0.9999).all()
        st = SentenceTransformer(str(folder), device="cpu").encode(texts, convert_to_numpy=True)
        # sentence-transformers neither drops unknown tokens nor truncates: compare texts where
        # neither applies
        clean = [i for i, t in enumerate(texts) if known[i] and _untruncated_and_known(model, t)]
        assert len(clean) > 20
        assert ((ours[clean] * st[clean]).sum(axis=1) >= 0.9999).all()


def _untruncated_and_known(model: StaticModel, text: str) -> bool:
    ids = model.tokenizer.encode(text, add_special_tokens=False).ids
    limit = model._pooler.char_limit or 0
    return model.tokenizer.token_to_id("[UNK]") not in ids and len(ids) <= 512 and len(text) <= limit


def test_loads_sentence_transformers_static_layouts(tmp_path: Path) -> None:
    SentenceTransformer = needs("sentence_transformers").SentenceTransformer
    StaticEmbedding = needs("sentence_transformers.models").StaticEmbedding

    model = random_model(dim=24)
    module = StaticEmbedding(model.tokenizer, embedding_weights=model.table)
    text = ["search engine static model"]
    # what sentence-transformers writes today: the module at the folder root
    SentenceTransformer(modules=[module], device="cpu").save(str(tmp_path / "root"))
    # the classic layout: modules.json pointing at 0_StaticEmbedding/ with embedding.weight
    classic = tmp_path / "classic"
    module.save(str((classic / "0_StaticEmbedding").mkdir(parents=True) or classic / "0_StaticEmbedding"))
    modules = [
        {"idx": 0, "name": "0", "path": "0_StaticEmbedding", "type": "sentence_transformers.models.StaticEmbedding"}
    ]
    (classic / "modules.json").write_text(json.dumps(modules))
    bare = tmp_path / "bare"  # no modules.json at all, just the folder
    module.save(str((bare / "0_StaticEmbedding").mkdir(parents=True) or bare / "0_StaticEmbedding"))
    for folder in (tmp_path / "root", classic, bare):
        loaded = StaticModel.from_pretrained(folder)
        np.testing.assert_allclose(loaded.table, model.table)
        np.testing.assert_allclose(loaded.encode(text), model.encode(text), rtol=1e-6)


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors", "tokenizer.json"])
def test_missing_file_is_named(tmp_path: Path, missing: str) -> None:
    random_model().save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "modules.json").unlink()
    (tmp_path / "m" / missing).unlink()
    with pytest.raises(ModelError, match=f"missing {missing}"):
        StaticModel.from_pretrained(tmp_path / "m")


def test_bad_model_folders_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model folder at"):
        StaticModel.from_pretrained(tmp_path / "nowhere")
    folder = tmp_path / "m"
    random_model().save_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="cannot read"):
        StaticModel.from_pretrained(folder)
    save_file({"vectors": np.zeros((3, 2), dtype=np.float32)}, str(folder / "model.safetensors"))
    with pytest.raises(ModelError, match="no 'embeddings' or 'embedding.weight' tensor"):
        StaticModel.from_pretrained(folder)
    save_file({"embeddings": np.zeros((3, 2), dtype=np.float32)}, str(folder / "model.safetensors"))
    with pytest.raises(ModelError, match="3 table rows but the tokenizer has"):
        StaticModel.from_pretrained(folder)
    (folder / "config.json").write_text("{not json")
    (folder / "modules.json").unlink()
    with pytest.raises(ModelError, match="cannot read"):
        StaticModel.from_pretrained(folder)
    (folder / "modules.json").write_text(json.dumps([{"path": "", "type": "x.Transformer"}]))
    with pytest.raises(ModelError, match="without a StaticEmbedding module"):
        StaticModel.from_pretrained(folder)


def test_default_model_loads_and_ranks_sensibly() -> None:
    model = StaticModel.from_pretrained()
    assert model.name == "default" and model.dim >= 64
    docs = model.encode(["How to bake bread with yeast and flour", "Configuring a PostgreSQL database index"])
    query = model.encode("making a loaf of bread")
    assert (query @ docs.T)[0, 0] > (query @ docs.T)[0, 1]


def test_fingerprint_changes_with_the_table() -> None:
    a, b = random_model(seed=0), random_model(seed=1)
    assert a.fingerprint != b.fingerprint
    assert a.fingerprint == random_model(seed=0).fingerprint
