"""Loaders for retrieval test collections in the BEIR layout, and its writer (`write_beir`)."""

from __future__ import annotations

import csv
import json
import logging
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from m2vsearch.errors import M2VSearchError
from m2vsearch.jsonl import open_text, read_jsonl, with_gz

logger = logging.getLogger(__name__)


class DatasetError(M2VSearchError):
    """A test collection is missing or malformed."""


@dataclass
class RetrievalSet:
    """A test collection: corpus texts, queries and the relevant document ids of each query."""

    name: str
    corpus: dict[str, str]  # doc id -> title + " " + text (sentence-transformers' convention)
    queries: dict[str, str]  # query id -> text, only queries with at least one positive
    relevant: dict[str, set[str]]  # query id -> relevant doc ids (score > 0)


def _jsonl(path: Path) -> list[dict[str, object]]:
    """The rows of a corpus or queries file; an `_id` given twice is refused (naming both lines)."""
    rows = []
    seen: dict[str, int] = {}
    for number, row in read_jsonl(path, DatasetError, f"missing {path}"):
        if not isinstance(row, dict) or "_id" not in row:
            raise DatasetError(f"{path}:{number}: expected an object with an '_id'")
        key = str(row["_id"])
        if key in seen:
            raise DatasetError(f"{path}:{number}: _id {key!r} again (first on line {seen[key]})")
        seen[key] = number
        rows.append(row)
    return rows


def write_beir(folder: str | Path, corpus: Iterable[Mapping[str, Any]], queries: Iterable[Mapping[str, Any]],
               qrels: Iterable[tuple[str, str]]) -> None:  # fmt: skip
    """Write a collection in the BEIR layout `load_beir` reads: corpus.jsonl and queries.jsonl (one
    JSON object a line, as given: `_id`, `text`, optionally `title`), and qrels.tsv (each (query id,
    doc id) pair relevant, score 1). Each file is replaced atomically."""
    from m2vsearch.storage.safe_files import write_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        text = "".join(json.dumps(dict(row), ensure_ascii=False) + "\n" for row in rows)
        write_atomic(folder / name, text.encode("utf-8"))
    lines = "".join(f"{query}\t{doc}\t1\n" for query, doc in qrels)
    write_atomic(folder / "qrels.tsv", ("query-id\tcorpus-id\tscore\n" + lines).encode("utf-8"))


def _qrels_file(folder: Path) -> Path:
    for candidate in (folder / "qrels" / "test.tsv", folder / "qrels.tsv"):
        candidate = with_gz(candidate)
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{folder} has no qrels/test.tsv or qrels.tsv (or .tsv.gz)")


def _read_qrels(path: Path) -> dict[str, set[str]]:
    """query id -> relevant doc ids; a line that is not UTF-8, a damaged or truncated `.gz` and an
    unreadable file are one-line errors naming the file (and the line where known)."""
    relevant: dict[str, set[str]] = {}
    number = 0
    try:
        with open_text(path) as handle:
            reader = csv.reader(handle, delimiter="\t")
            for number, row in enumerate(reader, 1):
                if number == 1 and row and row[0] in ("query-id", "query_id", "qid"):
                    continue
                if not row:
                    continue
                if len(row) < 3:
                    raise DatasetError(f"{path}:{number}: expected query-id, corpus-id, score")
                try:
                    score = float(row[2])
                except ValueError:
                    raise DatasetError(f"{path}:{number}: score {row[2]!r} is not a number") from None
                if score > 0:
                    relevant.setdefault(row[0], set()).add(row[1])
    except UnicodeDecodeError:
        raise DatasetError(f"{path}:{number + 1}: not UTF-8") from None
    except csv.Error as exc:
        raise DatasetError(f"{path}:{number + 1}: {exc}") from None
    except (OSError, EOFError, zlib.error) as exc:  # gzip: BadGzipFile is an OSError; truncated: EOFError
        raise DatasetError(f"{path}: unreadable after line {number} ({exc or type(exc).__name__})") from None
    return relevant


def _judged(folder: Path, qrels: Path, corpus: dict[str, str], relevant: dict[str, set[str]]) -> None:
    """Refuse a set no query of which can be answered from its corpus; warn when some judgements
    name documents the corpus lacks (they count as misses, so every metric is lower)."""
    if not corpus:
        raise DatasetError(f"{folder}: the corpus is empty")
    pairs = [(query, doc) for query, docs in relevant.items() for doc in docs]
    unknown = sorted(doc for _, doc in pairs if doc not in corpus)
    if pairs and len(unknown) == len(pairs):
        raise DatasetError(f"{qrels}: no judged document is in the corpus (e.g. {unknown[0]!r}): "
                           "the qrels belong to another corpus")  # fmt: skip
    if unknown:
        logger.warning("%s: %d of %d judgements name documents not in the corpus (e.g. %r); they count as misses",
                       qrels, len(unknown), len(pairs), unknown[0])  # fmt: skip


def load_beir(folder: str | Path) -> RetrievalSet:
    """Read corpus.jsonl, queries.jsonl and qrels/test.tsv (or qrels.tsv) from a folder; an empty
    corpus, or qrels none of whose documents are in it, is refused (a warning when only some are not)."""
    data, qrels = _load_beir(Path(folder))
    _judged(Path(folder), qrels, data.corpus, data.relevant)
    return data


def _load_beir(folder: Path) -> tuple[RetrievalSet, Path]:
    """A BEIR folder's set, unchecked against its corpus, and its qrels file."""
    if not folder.is_dir():
        raise DatasetError(f"no BEIR folder at {folder}")
    corpus = {
        str(row["_id"]): (str(row.get("title") or "") + " " + str(row.get("text") or "")).strip()
        for row in _jsonl(with_gz(folder / "corpus.jsonl"))
    }
    queries = {str(row["_id"]): str(row.get("text") or "") for row in _jsonl(with_gz(folder / "queries.jsonl"))}
    qrels = _qrels_file(folder)
    relevant = _read_qrels(qrels)
    relevant = {q: docs for q, docs in relevant.items() if q in queries}
    queries = {q: text for q, text in queries.items() if q in relevant}
    if not queries:
        raise DatasetError(f"{folder}: no query has a relevant document")
    return RetrievalSet(folder.name, corpus, queries, relevant), qrels


XQUAD_LANGS = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")


def load_xquad(folder: str | Path, langs: list[str] | None = None, cross_lingual: bool = False) -> list[RetrievalSet]:
    """XQuAD as BEIR folders `folder/<lang>` (paragraph and question ids parallel across languages):
    one monolingual set per language (`xquad-de`), and with `cross_lingual` one set per non-English
    language whose questions search the English paragraphs (`xquad-de-en`)."""
    folder = Path(folder)
    langs = list(langs or XQUAD_LANGS)
    unknown = [lang for lang in langs if lang not in XQUAD_LANGS]
    if unknown:
        raise DatasetError(f"XQuAD has no language {', '.join(unknown)}; it has {', '.join(XQUAD_LANGS)}")
    found = {lang: _load_beir(folder / lang) for lang in dict.fromkeys([*langs, *(["en"] if cross_lingual else [])])}
    loaded = {lang: data for lang, (data, _) in found.items()}
    sets = [replace(loaded[lang], name=f"xquad-{lang}") for lang in langs]
    if cross_lingual:
        english = loaded["en"]
        for lang in (lang for lang in langs if lang != "en"):
            questions = loaded[lang]
            missing = {d for docs in questions.relevant.values() for d in docs} - english.corpus.keys()
            if missing:
                raise DatasetError(
                    f"{folder / lang}: paragraph ids {sorted(missing)[:3]} are not in {folder / 'en'}: not parallel"
                )
            sets.append(RetrievalSet(f"xquad-{lang}-en", english.corpus, questions.queries, questions.relevant))
    for lang, (data, qrels) in found.items():  # after the parallel check, which names the fault better
        _judged(folder / lang, qrels, data.corpus, data.relevant)
    return sets


NANOBEIR = {
    "climatefever": "ClimateFEVER", "dbpedia": "DBPedia", "fever": "FEVER", "fiqa2018": "FiQA2018",
    "hotpotqa": "HotpotQA", "msmarco": "MSMARCO", "nfcorpus": "NFCorpus", "nq": "NQ",
    "quoraretrieval": "QuoraRetrieval", "scidocs": "SCIDOCS", "arguana": "ArguAna", "scifact": "SciFact",
    "touche2020": "Touche2020",
}  # fmt: skip
NANOBEIR_HELP = (
    "put NanoBEIR in a folder in one of the published layouts and pass it with --nanobeir DIR: "
    "sentence-transformers/NanoBEIR-en (DIR/corpus/NanoSciFact-*.parquet, DIR/queries/..., DIR/qrels/...) "
    "or zeta-alpha-ai/Nano* (DIR/NanoSciFact/corpus/train-*.parquet, .../queries/..., .../qrels/...)"
)


def nanobeir_names(selected: str | None = None) -> list[str]:
    """Dataset keys (e.g. 'scifact'), all 13 unless a comma-separated subset is given."""
    if not selected:
        return list(NANOBEIR)
    names = []
    for raw in selected.split(","):
        key = raw.strip().lower().removeprefix("nano")
        if key not in NANOBEIR:
            raise DatasetError(f"unknown NanoBEIR dataset {raw!r}; choose from {', '.join(NANOBEIR)}")
        names.append(key)
    return names


def _parquet_rows(files: list[Path]) -> list[dict[str, object]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError("reading NanoBEIR parquet files needs pyarrow (pip install 'm2vsearch[eval]')") from None
    rows: list[dict[str, object]] = []
    for path in files:
        try:
            rows.extend(pq.read_table(path).to_pylist())
        except Exception as exc:  # pyarrow raises several types on damaged files
            raise DatasetError(f"cannot read {path}: {exc}") from None
    return rows


def _nano_files(folder: Path, subset: str, split: str) -> list[Path]:
    return sorted((folder / subset).glob(f"{split}-*.parquet")) + sorted((folder / subset).glob(f"{split}.parquet"))


def _nano_set(name: str, corpus: list[dict], queries: list[dict], qrels: list[dict], where: Path) -> RetrievalSet:
    """A NanoBEIR set exactly as sentence-transformers' NanoBEIREvaluator builds it."""
    for rows, columns, subset in ((corpus, ("_id", "text"), "corpus"), (queries, ("_id", "text"), "queries"),
                                  (qrels, ("query-id", "corpus-id"), "qrels")):  # fmt: skip
        if not rows:
            raise DatasetError(f"{where}: no {subset} rows for Nano{NANOBEIR[name]}")
        missing = [c for c in columns if c not in rows[0]]
        if missing:
            raise DatasetError(f"{where}: {subset} of Nano{NANOBEIR[name]} lacks column(s) {', '.join(missing)}")
    documents = {str(r["_id"]): str(r["text"]) for r in corpus if r["text"]}
    questions = {str(r["_id"]): str(r["text"]) for r in queries if r["text"]}
    relevant: dict[str, set[str]] = {}
    for row in qrels:
        ids = row["corpus-id"] if isinstance(row["corpus-id"], list) else [row["corpus-id"]]
        relevant.setdefault(str(row["query-id"]), set()).update(str(i) for i in ids)
    questions = {q: t for q, t in questions.items() if relevant.get(q)}
    return RetrievalSet(f"Nano{NANOBEIR[name]}", documents, questions, {q: relevant[q] for q in questions})


def load_nanobeir(folder: str | Path, names: list[str]) -> list[RetrievalSet]:
    """NanoBEIR sets from a local folder in either published parquet layout."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"no NanoBEIR folder at {folder}; {NANOBEIR_HELP}")
    own = folder.name.lower().removeprefix("nano")
    if own in NANOBEIR and (folder / "corpus").is_dir():  # a single zeta-alpha-ai dataset folder
        names = [own]
    sets = []
    for name in names:
        split = f"Nano{NANOBEIR[name]}"
        parts = [_nano_files(folder, subset, split) for subset in ("corpus", "queries", "qrels")]
        where = folder
        if not all(parts):  # zeta-alpha-ai layout: one folder per dataset, split "train"
            where = folder / split if (folder / split).is_dir() else folder
            parts = [_nano_files(where, subset, "train") for subset in ("corpus", "queries", "qrels")]
        if not all(parts):
            raise DatasetError(f"{split} not found under {folder}; {NANOBEIR_HELP}")
        corpus, queries, qrels = (_parquet_rows(files) for files in parts)
        sets.append(_nano_set(name, corpus, queries, qrels, where))
    return sets


def default_nanobeir_folder() -> Path | None:
    """A NanoBEIR-en snapshot in the Hugging Face cache, if one is there."""
    import os

    hub = Path(
        os.environ.get("HF_HUB_CACHE")
        or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub"
    )
    snapshots = sorted((hub / "datasets--sentence-transformers--NanoBEIR-en" / "snapshots").glob("*"))
    return snapshots[-1] if snapshots else None


def load_nanobeir_hub(names: list[str]) -> list[RetrievalSet]:
    """NanoBEIR-en through the optional `datasets` library (needs the network or its cache)."""
    try:
        from datasets import load_dataset
    except ImportError:
        raise DatasetError(f"NanoBEIR is not in the Hugging Face cache; {NANOBEIR_HELP}") from None
    sets = []
    for name in names:
        split = f"Nano{NANOBEIR[name]}"
        try:
            parts = [
                load_dataset("sentence-transformers/NanoBEIR-en", subset, split=split).to_list()
                for subset in ("corpus", "queries", "qrels")
            ]
        except Exception as exc:  # offline, missing, or a changed layout
            raise DatasetError(f"could not load {split} from the hub ({type(exc).__name__}); {NANOBEIR_HELP}") from None
        sets.append(_nano_set(name, *parts, Path("sentence-transformers/NanoBEIR-en")))
    return sets
