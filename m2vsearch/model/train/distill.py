"""Distil a static model from a local Sentence Transformer folder (needs the `train` extra).

Recipe (Model2Vec): every vocabulary token, as ``[CLS] token [SEP]`` (optionally after a prompt),
goes through the teacher and is mean-pooled, then through the teacher's Dense modules if it has any
(EmbeddingGemma); optional extra words become whole-word tokens and are embedded from their teacher
sub-tokens; PCA reduces to `dims` components ordered by variance (so truncation behaves like
Matryoshka); each row is scaled by its SIF weight ``sif / (sif + p(token))`` with p from Zipf's law
on the vocabulary order. Deterministic for a given teacher, vocabulary and settings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from m2vsearch.errors import ModelError
from m2vsearch.jsonl import read_jsonl
from m2vsearch.model.bpe import count_tokens, is_bpe, prune_bpe, word_tokenizer
from m2vsearch.model.io import module_dir, read_json
from m2vsearch.model.static import StaticModel
from m2vsearch.model.train.pairs import refuse_evaluation_data
from m2vsearch.model.train.unigram import is_unigram, prune_unigram
from m2vsearch.progress import Progress, no_progress

UNUSED_TOKENS = r"\[unused\d+\]"


def teacher_parts(folder: Path) -> tuple[Path, Tokenizer]:
    """The transformer folder inside a Sentence Transformer folder, and its fast tokenizer."""
    if not folder.is_dir():
        raise ModelError(f"no teacher folder at {folder}")
    transformer_dir = module_dir(folder, "Transformer") or folder
    for name in ("config.json", "tokenizer.json"):
        if not (transformer_dir / name).is_file():
            raise ModelError(f"teacher folder {transformer_dir} is missing {name}")
    return transformer_dir, Tokenizer.from_file(str(transformer_dir / "tokenizer.json"))


def read_vocabulary(path: Path, limit: int | None = None) -> list[str]:
    """Words from a file: one per line, or the first column of a TSV (a 'word' header is skipped)."""
    if not path.is_file():
        raise ModelError(f"no vocabulary file at {path}")
    words: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            word = line.rstrip("\n").split("\t")[0].strip()
            if not word or (number == 0 and word.lower() == "word"):
                continue
            words.append(word)
            if limit is not None and len(words) >= limit:
                break
    return words


def teacher_license(folder: Path) -> str | None:
    """The `license:` of the teacher's model card front matter (README.md), e.g. "apache-2.0" or
    "gemma"; a distilled model is a derivative and carries it."""
    card = folder / "README.md"
    if not card.is_file():
        return None
    lines = card.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for line in lines[1:]:
        if line.strip() == "---":
            break
        key, _, value = line.partition(":")
        if key.strip() == "license" and value.strip():
            return value.strip().strip("'\"")
    return None


def read_sample_texts(paths: list[Path], limit: int | None = None) -> list[str]:
    """Texts to count tokens on: every string field of each JSON line of a .jsonl(.gz) file (pairs),
    or each non-empty line of any other file; at most `limit` lines from each file. Evaluation
    data is refused, as for training (`train.refuse_evaluation_data`)."""
    texts: list[str] = []
    for path in paths:
        refuse_evaluation_data(path)
        if path.name.endswith((".jsonl", ".jsonl.gz")):
            for number, row in read_jsonl(path, ModelError, f"no sample text file at {path}"):
                if limit is not None and number > limit:
                    break
                texts.extend(v for v in (row.values() if isinstance(row, dict) else []) if isinstance(v, str) and v)
            continue
        if not path.is_file():
            raise ModelError(f"no sample text file at {path}")
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle):
                if limit is not None and number >= limit:
                    break
                texts.extend([line.strip()] if line.strip() else [])
    return texts


def build_vocabulary(
    tokenizer: Tokenizer, extra_words: list[str], remove_pattern: str | None
) -> tuple[Tokenizer, list[str], list[str]]:
    """A WordPiece tokenizer with `remove_pattern` tokens dropped and new whole-word tokens added.

    Returns the new tokenizer, its tokens in id order, and the words that were added.
    """
    spec = json.loads(tokenizer.to_str())
    model = spec["model"]
    if model.get("type") != "WordPiece":
        raise ModelError(f"distillation supports WordPiece tokenizers, not {model.get('type')}")
    pattern = re.compile(remove_pattern) if remove_pattern else None
    old_tokens = [t for t, _ in sorted(model["vocab"].items(), key=lambda item: item[1])]
    tokens = [t for t in old_tokens if pattern is None or not pattern.fullmatch(t)]
    known = set(tokens)
    added: list[str] = []
    normalizer, pre_tokenizer = tokenizer.normalizer, tokenizer.pre_tokenizer
    for word in extra_words:
        if normalizer is not None:
            word = normalizer.normalize_str(word)
        pieces = pre_tokenizer.pre_tokenize_str(word) if pre_tokenizer is not None else [(word, None)]
        if len(pieces) != 1 or pieces[0][0] != word or word in known or len(word) > 100:
            continue
        known.add(word)
        added.append(word)
    tokens += added
    new_ids = {token: i for i, token in enumerate(tokens)}
    model["vocab"] = new_ids
    for added_token in spec.get("added_tokens") or []:
        added_token["id"] = new_ids[added_token["content"]]
    spec["post_processor"] = None
    spec["padding"] = None
    spec["truncation"] = None
    return Tokenizer.from_str(json.dumps(spec)), tokens, added


def _first_id(vocab: dict[str, int], names: tuple[str, ...]) -> list[int]:
    return [vocab[name] for name in names if name in vocab][:1]


def _teacher_inputs(
    teacher_tokenizer: Tokenizer, tokens: list[str], added: set[str], prompt: str | None = None
) -> list[list[int]]:
    """Teacher ids for each token: [CLS] prompt token [SEP], new words via the teacher's sub-tokens
    ([CLS]/[SEP] of BERT, <s>/</s> of XLM-R, <bos>/<eos> of Gemma)."""
    vocab = teacher_tokenizer.get_vocab()
    prefix = _first_id(vocab, ("[CLS]", "<s>", "<bos>"))
    suffix = _first_id(vocab, ("[SEP]", "</s>", "<eos>"))
    plain = Tokenizer.from_str(teacher_tokenizer.to_str())
    plain.no_padding()
    plain.no_truncation()
    if prompt:
        prefix = prefix + plain.encode(prompt, add_special_tokens=False).ids
    out: list[list[int]] = []
    for token in tokens:
        if token in added or token not in vocab:
            ids = plain.encode(token, add_special_tokens=False).ids
        else:
            ids = [vocab[token]]
        out.append(prefix + ids[:510] + suffix)
    return out


_ACTIVATIONS = {"Identity": lambda x: x, "Tanh": np.tanh}


def dense_layers(folder: Path) -> list[tuple[np.ndarray, np.ndarray | None, str]]:
    """(weight, bias, activation) of each Dense module after pooling in a Sentence Transformer
    folder, in order (EmbeddingGemma: 768 -> 3072 -> 768, no bias, identity)."""
    from safetensors.numpy import load_file

    modules = read_json(folder / "modules.json") if (folder / "modules.json").is_file() else []
    layers = []
    for module in modules if isinstance(modules, list) else []:
        if not str(module.get("type", "")).endswith(".Dense"):
            continue
        path = folder / module.get("path", "")
        config = read_json(path / "config.json")
        activation = str(config.get("activation_function", "")).rsplit(".", 1)[-1]
        if activation not in _ACTIVATIONS:
            raise ModelError(f"{path}: Dense activation {activation!r} is not supported (Identity, Tanh)")
        tensors = load_file(str(path / "model.safetensors"))
        layers.append((tensors["linear.weight"], tensors.get("linear.bias"), activation))
    return layers


def apply_dense(vectors: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray | None, str]]) -> np.ndarray:
    """Pooled vectors through the Dense modules, as sentence-transformers applies them."""
    for weight, bias, activation in layers:
        vectors = vectors @ weight.T.astype(np.float32)
        if bias is not None:
            vectors = vectors + bias.astype(np.float32)
        vectors = _ACTIVATIONS[activation](vectors)
    return vectors.astype(np.float32)


def embed_tokens(
    transformer_dir: Path,
    inputs: list[list[int]],
    pad_id: int,
    batch_size: int = 256,
    progress: Progress = no_progress,
    dense: list[tuple[np.ndarray, np.ndarray | None, str]] | None = None,
) -> np.ndarray:
    """Mean-pooled last hidden states of the teacher for each input id list, then its Dense
    modules if any (float32)."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(transformer_dir), local_files_only=True)
    model.eval()
    order = np.argsort([len(ids) for ids in inputs], kind="stable")
    out = np.zeros((len(inputs), model.config.hidden_size), dtype=np.float32)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    with torch.inference_mode():
        for batch in progress(batches, len(batches), "embedding tokens"):
            width = max(len(inputs[i]) for i in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids[row, : len(inputs[i])] = torch.tensor(inputs[i])
                mask[row, : len(inputs[i])] = 1
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
            weights = mask.unsqueeze(-1).float()
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
            out[batch] = pooled.numpy()
    out = np.nan_to_num(out)
    return apply_dense(out, dense) if dense else out


def pca(vectors: np.ndarray, dims: int) -> np.ndarray:
    """Centred projection on the top `dims` principal components, largest variance first.

    Each component's sign is fixed so its largest-magnitude score is positive (deterministic).
    """
    data = vectors.astype(np.float64)
    centred = data - data.mean(axis=0)
    covariance = centred.T @ centred / max(len(data) - 1, 1)
    values, vectors_ = np.linalg.eigh(covariance)
    components = vectors_[:, np.argsort(values)[::-1][: min(dims, data.shape[1])]]
    scores = centred @ components
    peaks = scores[np.argmax(np.abs(scores), axis=0), np.arange(scores.shape[1])]
    return (scores * np.where(peaks < 0, -1.0, 1.0)).astype(np.float32)


def zipf_sif_weights(count: int, sif: float) -> np.ndarray:
    """sif / (sif + p(rank)) with p from Zipf's law over the vocabulary order."""
    inverse_rank = 1.0 / np.arange(2, count + 2)
    probability = inverse_rank / inverse_rank.sum()
    return (sif / (sif + probability)).astype(np.float32)


def distill(
    teacher: str | Path,
    dims: int = 256,
    extra_words: list[str] | None = None,
    sif: float | None = 1e-4,
    remove_pattern: str | None = UNUSED_TOKENS,
    batch_size: int = 256,
    progress: Progress = no_progress,
    keep_tokens: int | None = None,
    count_texts: list[str] | None = None,
    prompt: str | None = None,
) -> StaticModel:
    """Distil a StaticModel from a local Sentence Transformer folder. A Unigram (SentencePiece)
    teacher vocabulary is pruned to `keep_tokens` pieces (`model/unigram.py`) and weighted by its
    own piece probabilities; a BPE one (EmbeddingGemma) to the `keep_tokens` most frequent in
    `count_texts` (`model/bpe.py`), weighted by their frequency there; a WordPiece one takes
    `extra_words`. `prompt` goes before every token (the teacher's document prompt)."""
    if sif is not None and not 0 < sif < 1:
        raise ModelError(f"sif must be between 0 and 1, got {sif}")
    transformer_dir, teacher_tokenizer = teacher_parts(Path(teacher))
    probability = None
    added: list[str] = []
    if (is_unigram(teacher_tokenizer) or is_bpe(teacher_tokenizer)) and extra_words:
        raise ModelError(
            "extra words (--vocab) need a WordPiece teacher; this one is SentencePiece or BPE: use --keep-tokens"
        )
    if is_unigram(teacher_tokenizer):
        tokenizer, tokens, probability = prune_unigram(teacher_tokenizer, keep_tokens)
    elif is_bpe(teacher_tokenizer):
        if not count_texts:
            raise ModelError("a BPE teacher needs sample text (--count-on) to choose its tokens by frequency")
        counts = count_tokens(word_tokenizer(teacher_tokenizer), count_texts)
        tokenizer, tokens, _ = prune_bpe(teacher_tokenizer, counts, keep_tokens or int((counts > 0).sum()) + 300)
        counted = count_tokens(tokenizer, count_texts).astype(np.float64)  # frequencies after pruning
        probability = counted / max(counted.sum(), 1.0)
    else:
        if keep_tokens is not None:
            raise ModelError("--keep-tokens needs a SentencePiece or BPE teacher; this one is WordPiece")
        tokenizer, tokens, added = build_vocabulary(teacher_tokenizer, extra_words or [], remove_pattern)
    inputs = _teacher_inputs(teacher_tokenizer, tokens, set(added), prompt)
    pad_id = teacher_tokenizer.token_to_id("[PAD]") or teacher_tokenizer.token_to_id("<pad>") or 0
    dense = dense_layers(Path(teacher))
    vectors = embed_tokens(transformer_dir, inputs, pad_id, batch_size, progress, dense)
    table = pca(vectors, dims)
    if sif is not None:
        weights = zipf_sif_weights(len(table), sif) if probability is None else sif / (sif + probability)
        table *= weights.astype(np.float32)[:, None]
    config = {
        "tokenizer_name": Path(teacher).name,
        "apply_pca": dims,
        "sif_coefficient": sif,
        "hidden_dim": int(table.shape[1]),
        "seq_length": 1000000,
        "normalize": True,
        "distilled_by": "m2vsearch",
        "teacher": Path(teacher).name,
        "added_words": len(added),
        **({"teacher_prompt": prompt} if prompt else {}),
        **({"license": license_} if (license_ := teacher_license(Path(teacher))) else {}),
    }
    return StaticModel(table, tokenizer, config, name=f"distilled:{Path(teacher).name}")
