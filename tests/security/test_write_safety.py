"""What an index writes and reads on disk (issue 22): no write goes through a planted symbolic
link, a foreign FAISS file is caught by its fingerprint, hostile API arguments are refused in one
line, and readers keep working (or say exactly what is wrong) when the disk or the files do not
cooperate. Real files, links, processes and mounts."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from reliability import built_index, cli, make_docs, one_line_error, tmpfs_or_skip

from m2vsearch.errors import InvalidArgumentError

VICTIM_TEXT = "precious data that no index may touch\n"


@pytest.fixture()
def built(tmp_path: Path) -> tuple[Path, Path]:
    return built_index(tmp_path, "IDX", 12)


def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text(VICTIM_TEXT)
    return path


def generation(folder: Path) -> int:
    with sqlite3.connect(folder / "index.sqlite") as conn:
        return int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])


# -- case 1: writes never follow a planted link ------------------------------------------------
def test_a_planted_lock_link_is_refused_not_truncated(built: tuple[Path, Path], tmp_path: Path) -> None:
    folder, docs = built
    target = victim(tmp_path)
    lock = folder.parent / ".IDX.lock"
    lock.unlink()
    lock.symlink_to(target)
    line = one_line_error(cli("index", str(docs), "--index", str(folder)))
    assert ".IDX.lock" in line and "symbolic link" in line, line
    assert target.read_text() == VICTIM_TEXT
    lock.unlink()  # once the link is gone, writing works again
    assert cli("index", str(docs), "--index", str(folder)).returncode == 0


def test_a_planted_ignore_tmp_link_is_refused(built: tuple[Path, Path], tmp_path: Path) -> None:
    folder, docs = built
    target = victim(tmp_path)
    (folder / "ignore.tmp").symlink_to(target)
    line = one_line_error(cli("index", str(docs), "--exclude", "doc1.md", "--index", str(folder)))
    assert "ignore.tmp" in line and "symbolic link" in line, line
    assert target.read_text() == VICTIM_TEXT
    assert "doc1.md" not in (folder / "ignore").read_text()


def test_a_planted_faiss_tmp_link_is_refused_and_never_becomes_live(built: tuple[Path, Path], tmp_path: Path) -> None:
    folder, docs = built
    target = victim(tmp_path)
    live = generation(folder)
    (folder / f"vectors-{live + 1}.faiss.tmp").symlink_to(target)
    (docs / "new.md").write_text("# New\n\nA new paragraph about lighthouses.\n")
    line = one_line_error(cli("index", str(docs), "--index", str(folder)))
    assert f"vectors-{live + 1}.faiss.tmp" in line and "symbolic link" in line, line
    assert target.read_text() == VICTIM_TEXT
    assert generation(folder) == live and not (folder / f"vectors-{live + 1}.faiss").is_symlink()
    assert cli("query", "rivers", "--index", str(folder)).returncode == 0


def test_a_dangling_lock_link_creates_nothing(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 3)
    (tmp_path / ".IDX.lock").symlink_to(tmp_path / "created-by-the-link")
    line = one_line_error(cli("index", str(docs), "--index", str(tmp_path / "IDX")))
    assert ".IDX.lock" in line, line
    assert not (tmp_path / "created-by-the-link").exists()


def test_a_planted_manifest_tmp_link_is_refused(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 6)
    sharded = tmp_path / "SH"
    assert cli("index", str(docs), "--shards", "2", "--index", str(sharded)).returncode == 0
    target = victim(tmp_path)
    (sharded / "shards.json.tmp").symlink_to(target)
    (docs / "more.md").write_text("# More\n\nAnother paragraph.\n")
    result = cli("index", str(docs), "--index", str(sharded))
    line = one_line_error(result)
    assert "shards.json.tmp" in line and "symbolic link" in line, line
    assert target.read_text() == VICTIM_TEXT


def test_a_tantivy_folder_swapped_for_a_link_is_never_written_through(tmp_path: Path) -> None:
    pytest.importorskip("tantivy", reason="the tantivy extra is not installed")
    docs = make_docs(tmp_path / "docs", 6)
    folder = tmp_path / "IDX"
    assert cli("index", str(docs), "--index", str(folder), "--bm25", "tantivy").returncode == 0
    outside = tmp_path / "outside-tantivy"
    (folder / "bm25-tantivy").rename(outside)  # a real tantivy index elsewhere, linked in its place
    (folder / "bm25-tantivy").symlink_to(outside)
    before = {p.name: p.read_bytes() for p in outside.iterdir()}
    (docs / "new.md").write_text("# New\n\nA paragraph about lighthouses.\n")
    assert cli("index", str(docs), "--index", str(folder)).returncode == 0
    assert {p.name: p.read_bytes() for p in outside.iterdir()} == before
    assert not (folder / "bm25-tantivy").is_symlink() and (folder / "bm25-tantivy" / "meta.json").is_file()
    hit = cli("query", "lighthouses", "--mode", "bm25", "--index", str(folder))
    assert hit.returncode == 0 and "new.md" in hit.stdout


# -- case 10: a foreign FAISS file is caught by its fingerprint --------------------------------
def test_another_indexs_faiss_file_is_damage_and_is_repaired(built: tuple[Path, Path], tmp_path: Path) -> None:
    folder, docs = built
    other_docs = tmp_path / "other"
    other_docs.mkdir()
    for i in range(12):  # the same count of chunks (and so the same ids), other texts
        (other_docs / f"o{i}.md").write_text(f"# Other {i}\n\nSpaceships orbit distant planet number {i}.\n")
    assert cli("index", str(other_docs), "--index", str(tmp_path / "OTHER")).returncode == 0
    with sqlite3.connect(folder / "index.sqlite") as conn:
        recorded = dict(conn.execute("SELECT key, value FROM meta").fetchall())["vectors_fingerprint"]
    live = folder / f"vectors-{generation(folder)}.faiss"
    assert recorded.startswith(f"{generation(folder)}:")
    shutil.copyfile(tmp_path / "OTHER" / f"vectors-{generation(tmp_path / 'OTHER')}.faiss", live)
    for args in (["query", "rivers", "--mode", "dense"], ["info"]):
        line = one_line_error(cli(*args, "--index", str(folder)))
        assert live.name in line and "fingerprint" in line and "m2vsearch index --index" in line, line
    assert cli("query", "rivers", "--mode", "bm25", "--index", str(folder)).returncode == 0
    repaired = cli("index", "--index", str(folder))
    assert repaired.returncode == 0 and "repaired the vectors" in repaired.stdout, repaired.stderr
    hit = cli("query", "Paragraph about rivers and bread number 7", "--mode", "dense", "--index", str(folder))
    assert hit.returncode == 0 and "doc7.md" in hit.stdout.splitlines()[0]


def test_an_index_without_the_fingerprint_key_still_works(built: tuple[Path, Path]) -> None:
    folder, _ = built
    with sqlite3.connect(folder / "index.sqlite") as conn:
        conn.execute("DELETE FROM meta WHERE key = 'vectors_fingerprint'")
    assert cli("query", "rivers", "--mode", "dense", "--index", str(folder)).returncode == 0
    assert cli("info", "--index", str(folder)).returncode == 0


# -- hostile API arguments: one line each, nothing written --------------------------------------
@pytest.fixture()
def api_index(tmp_path: Path):  # noqa: ANN201
    from conftest import random_model

    from m2vsearch.index.index import Index

    index = Index.create(tmp_path / "API", random_model(), dims=32)
    index.add_texts(["first text about rivers", "second text about bread", "third text about cats"])
    yield index
    index.close()


def test_delete_refuses_ids_that_are_not_whole_numbers(api_index) -> None:  # noqa: ANN001
    for bad in ([1.9], [True], ["1"], [float("nan")], 1):
        with pytest.raises(InvalidArgumentError, match="whole number|list of chunk ids"):
            api_index.delete(bad)
    assert api_index.info()["chunks"] == 3
    assert api_index.delete([1.0]) == 1 and api_index.info()["chunks"] == 2


def test_add_texts_refuses_a_single_string(api_index) -> None:  # noqa: ANN001
    with pytest.raises(InvalidArgumentError, match="not a single str") as raised:
        api_index.add_texts("hello world")
    assert "\n" not in str(raised.value)
    assert api_index.info()["chunks"] == 3


@pytest.mark.parametrize("metadata", [{"x": float("nan")}, {"x": [float("inf")]}, ["not", "a dict"], "text"])
def test_add_texts_refuses_metadata_json_cannot_hold(api_index, metadata: object) -> None:  # noqa: ANN001
    with pytest.raises(InvalidArgumentError, match="metadata") as raised:
        api_index.add_texts(["a text"], [metadata])
    assert "\n" not in str(raised.value)
    assert api_index.info()["chunks"] == 3


def test_stored_nan_metadata_still_gives_valid_json(built: tuple[Path, Path]) -> None:
    folder, _ = built
    with sqlite3.connect(folder / "index.sqlite") as conn:  # written by an older version
        conn.execute("""UPDATE chunks SET metadata = '{"x": NaN}'""")
    result = cli("query", "rivers", "--json", "--index", str(folder))
    assert result.returncode == 0, result.stderr

    def refuse(name: str) -> None:
        raise ValueError(name)

    document = json.loads(result.stdout, parse_constant=refuse)  # strict JSON: no NaN
    assert "invalid_metadata" in json.dumps(document)


# -- models ----------------------------------------------------------------------------------
def saved_model(folder: Path, poison: bool = False) -> Path:
    from conftest import random_model

    from m2vsearch.model.static import StaticModel

    model = random_model()
    if poison:
        table = model.table.copy()
        table[5, 3] = np.nan
        model = StaticModel(table, model.tokenizer, model.config)
    model.save_pretrained(folder)
    return folder


def test_a_model_with_nan_weights_is_refused_at_load(tmp_path: Path) -> None:
    from m2vsearch.errors import ModelError
    from m2vsearch.model.static import StaticModel

    folder = saved_model(tmp_path / "nan-model", poison=True)
    with pytest.raises(ModelError, match="NaN") as raised:
        StaticModel.from_pretrained(folder)
    assert "model.safetensors" in str(raised.value) and "\n" not in str(raised.value)
    assert StaticModel.from_pretrained(saved_model(tmp_path / "good-model")).dim == 32


def test_bm25_answers_without_the_model(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 5)
    model = saved_model(tmp_path / "model")
    assert cli("index", str(docs), "--model", str(model), "--index", str(tmp_path / "IDX")).returncode == 0
    (model / "model.safetensors").write_bytes(b"damaged")
    bm25 = cli("query", "rivers bread", "--mode", "bm25", "--index", str(tmp_path / "IDX"))
    assert bm25.returncode == 0 and "doc" in bm25.stdout, bm25.stderr
    line = one_line_error(cli("query", "rivers", "--mode", "dense", "--index", str(tmp_path / "IDX")))
    assert "model.safetensors" in line, line


def test_bm25_answers_without_the_model_on_a_sharded_index(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 6)
    model = saved_model(tmp_path / "model")
    built = cli("index", str(docs), "--model", str(model), "--index", str(tmp_path / "SH"), "--shards", "2")
    assert built.returncode == 0, built.stderr
    (model / "model.safetensors").write_bytes(b"damaged")
    bm25 = cli("query", "rivers bread", "--mode", "bm25", "--index", str(tmp_path / "SH"))
    assert bm25.returncode == 0 and "doc" in bm25.stdout, bm25.stderr
    line = one_line_error(cli("query", "rivers", "--mode", "hybrid", "--index", str(tmp_path / "SH")))
    assert "model" in line, line


# -- permissions, full and read-only disks -----------------------------------------------------
def test_an_unreadable_faiss_file_is_a_permission_error_not_damage(built: tuple[Path, Path]) -> None:
    from reliability import unprivileged

    prefix = unprivileged()
    if prefix is None:
        pytest.skip("needs a non-root user or setpriv to make permissions apply")
    folder, _ = built
    live = folder / f"vectors-{generation(folder)}.faiss"
    before = generation(folder)
    live.chmod(0o000)
    try:
        line = one_line_error(cli("query", "rivers", "--mode", "dense", "--index", str(folder), prefix=prefix))
        assert live.name in line and "Permission denied" in line and "damaged" not in line, line
        line = one_line_error(cli("index", "--index", str(folder), prefix=prefix))
        assert live.name in line and "Permission denied" in line, line
        assert generation(folder) == before  # nothing re-embedded
    finally:
        live.chmod(0o644)
    assert cli("query", "rivers", "--mode", "dense", "--index", str(folder)).returncode == 0


FULL_AND_READ_ONLY = """
set -e
mount -t tmpfs -o size=8m tmpfs "$1"
cp -r "$2" "$1/docs"
"$3" -m m2vsearch.cli index "$1/docs" --index "$1/X" > /dev/null
dd if=/dev/zero of="$1/filler" bs=64k 2> /dev/null || true
echo "== full query"; "$3" -m m2vsearch.cli query rivers --index "$1/X" 2>&1 || echo "rc=$?"
echo "== full info"; "$3" -m m2vsearch.cli info --index "$1/X" 2>&1 || echo "rc=$?"
echo "new" > "$1/docs/new.md" || true
echo "== full index"; "$3" -m m2vsearch.cli index --index "$1/X" 2>&1 || echo "rc=$?"
mount -o remount,ro "$1"
echo "== ro query"; "$3" -m m2vsearch.cli query rivers --index "$1/X" 2>&1 || echo "rc=$?"
echo "== ro index"; "$3" -m m2vsearch.cli index --index "$1/X" 2>&1 || echo "rc=$?"
"""


def test_readers_work_on_a_full_or_read_only_disk(tmp_path: Path) -> None:
    """A query must not need to write; a writer says which file and why, in one line."""
    tmpfs_or_skip(tmp_path)
    docs = make_docs(tmp_path / "docs", 10)
    (tmp_path / "fs").mkdir()
    script = tmp_path / "run.sh"
    script.write_text(FULL_AND_READ_ONLY)
    result = subprocess.run(["unshare", "-m", "sh", str(script), str(tmp_path / "fs"), str(docs), sys.executable],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    parts = dict(part.split("\n", 1) for part in result.stdout.split("== ")[1:])
    for reader in ("full query", "ro query"):
        assert "rc=" not in parts[reader] and "doc" in parts[reader], (reader, parts[reader])
    assert "rc=" not in parts["full info"], parts["full info"]
    for writer, cause in (("full index", "the disk is full"), ("ro index", "Read-only file system")):
        lines = [line for line in parts[writer].splitlines() if line.strip()]
        assert lines[-1] == "rc=1" and len(lines) == 2 and lines[0].startswith("error: "), (writer, lines)
        assert cause in lines[0] and str(tmp_path / "fs") in lines[0] and "Traceback" not in lines[0], lines[0]


# -- damaged index.sqlite ----------------------------------------------------------------------
def test_malformed_sqlite_pages_name_the_file_and_the_rebuild(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(200):
        words = " ".join(f"word{(i * 7 + j) % 997} river bread" for j in range(100))
        (docs / f"d{i}.md").write_text(f"# Doc {i}\n\n{words}\n")
    folder = tmp_path / "IDX"
    assert cli("index", str(docs), "--index", str(folder)).returncode == 0
    db = folder / "index.sqlite"
    data = bytearray(db.read_bytes())
    for page in range(4, len(data) // 4096):  # keep the header and the first pages (meta), garble the rest
        data[page * 4096 : page * 4096 + 4096] = bytes([(page * 37 + i) % 251 for i in range(4096)])
    db.write_bytes(bytes(data))
    for args in (["query", "word5 river"], ["query", "bread", "--mode", "bm25"]):
        line = one_line_error(cli(*args, "--index", str(folder)))
        assert str(db) in line and "--rebuild" in line, line


# -- bounded queries -------------------------------------------------------------------------
def test_a_query_is_bounded_in_length_and_in_terms(api_index) -> None:  # noqa: ANN001
    from m2vsearch.storage.fulltext import MAX_TERMS, fts_terms

    huge = " ".join(f"term{i}" for i in range(40_000))  # about 360 KB
    with pytest.raises(InvalidArgumentError, match="characters long") as raised:
        api_index.search(huge)
    assert "\n" not in str(raised.value)
    long = " ".join(f"term{i}" for i in range(3_000))  # under the length cap: its first MAX_TERMS words
    assert len(fts_terms(long)) == MAX_TERMS == 256 and fts_terms(long)[0] == "term0"
    assert isinstance(api_index.search(long, mode="bm25"), list)
    assert [hit.id for hit in api_index.search("rivers " + long, mode="bm25")][:1] == [1]


# -- planted links at the entries m2vsearch makes itself (review 2) -----------------------------
def victim_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "victim"
    folder.mkdir()
    (folder / "keep.txt").write_text(VICTIM_TEXT)
    return folder


def untouched(folder: Path) -> bool:
    return sorted(p.name for p in folder.iterdir()) == ["keep.txt"] and (folder / "keep.txt").read_text() == VICTIM_TEXT


@pytest.mark.parametrize("rebuild", [False, True])
def test_a_planted_previous_link_is_refused_not_renamed_into_place(tmp_path: Path, rebuild: bool) -> None:
    docs, target = make_docs(tmp_path / "docs", 3), victim_folder(tmp_path)
    previous = tmp_path / ".IDX.previous"
    previous.symlink_to(target)
    line = one_line_error(
        cli("index", str(docs), "--index", str(tmp_path / "IDX"), *(["--rebuild"] if rebuild else []))
    )
    assert ".IDX.previous" in line and "is a symbolic link" in line and "does not write through it" in line, line
    assert previous.is_symlink() and not (tmp_path / "IDX").exists() and untouched(target)
    previous.unlink()  # once the link is gone, indexing works again
    assert cli("index", str(docs), "--index", str(tmp_path / "IDX")).returncode == 0


def test_a_planted_previous_link_beside_a_healthy_index_is_refused(built: tuple[Path, Path], tmp_path: Path) -> None:
    folder, docs = built
    target = victim_folder(tmp_path)
    (tmp_path / ".IDX.previous").symlink_to(target)
    line = one_line_error(cli("index", str(docs), "--index", str(folder), "--rebuild"))
    assert ".IDX.previous" in line and "symbolic link" in line, line
    assert untouched(target) and (tmp_path / ".IDX.previous").is_symlink()


def test_a_planted_staging_link_is_refused_not_removed_through(built: tuple[Path, Path], tmp_path: Path) -> None:
    folder, docs = built
    target = victim_folder(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    staging = tmp_path / f".IDX.new-{int(dead.stdout)}-planted"
    staging.symlink_to(target)
    line = one_line_error(cli("index", str(docs), "--index", str(folder)))
    assert staging.name in line and "symbolic link" in line, line
    assert staging.is_symlink() and untouched(target)


def test_a_planted_shard_folder_link_is_refused(tmp_path: Path) -> None:
    docs, target = make_docs(tmp_path / "docs", 6), victim_folder(tmp_path)
    sharded = tmp_path / "SH"
    sharded.mkdir()
    (sharded / "shard-000").symlink_to(target)
    line = one_line_error(cli("index", str(docs), "--index", str(sharded), "--shards", "2"))
    assert "shard-000" in line and "symbolic link" in line, line
    assert untouched(target) and not list(tmp_path.glob(".victim*"))


def test_a_shard_folder_swapped_for_a_link_is_refused(tmp_path: Path) -> None:
    docs, target = make_docs(tmp_path / "docs", 6), victim_folder(tmp_path)
    sharded = tmp_path / "SH"
    assert cli("index", str(docs), "--index", str(sharded), "--shards", "2").returncode == 0
    shutil.rmtree(sharded / "shard-001")
    (sharded / "shard-001").symlink_to(target)
    line = one_line_error(cli("index", str(docs), "--index", str(sharded)))
    assert "shard-001" in line and "symbolic link" in line, line
    assert untouched(target) and not list(tmp_path.glob(".victim*"))


def test_a_hard_linked_lock_file_is_refused_not_truncated(built: tuple[Path, Path], tmp_path: Path) -> None:
    folder, docs = built
    target = victim(tmp_path)
    lock = tmp_path / ".IDX.lock"
    lock.unlink()
    lock.hardlink_to(target)
    line = one_line_error(cli("index", str(docs), "--index", str(folder)))
    assert ".IDX.lock" in line and "hard link" in line, line
    assert target.read_text() == VICTIM_TEXT
    lock.unlink()
    assert cli("index", str(docs), "--index", str(folder)).returncode == 0


def test_a_planted_ignore_link_is_never_read_or_copied(built: tuple[Path, Path], tmp_path: Path) -> None:
    folder, docs = built
    private = tmp_path / "private.txt"
    private.write_text("secret-token-123\n")
    private.chmod(0o600)
    (folder / "ignore").unlink()
    (folder / "ignore").symlink_to(private)
    for args in (["index", str(docs), "--index", str(folder), "--exclude", "*.log"],
                 ["index", str(docs), "--index", str(folder), "--rebuild"],
                 ["patterns", "--index", str(folder)]):  # fmt: skip
        result = cli(*args)
        assert "secret-token-123" not in result.stdout + result.stderr, args
        if result.returncode:
            line = one_line_error(result)
            assert "ignore" in line and "symbolic link" in line, line
    assert (folder / "ignore").is_symlink() and private.read_text() == "secret-token-123\n"
    assert not any(
        "secret-token-123" in p.read_text(errors="replace")
        for p in folder.parent.rglob("ignore*")
        if p.is_file() and not p.is_symlink()
    )


def test_error_lines_escape_terminal_escapes_in_file_names(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 2)
    foreign = tmp_path / "IDX"
    foreign.mkdir()
    (foreign / "index.sqlite.\x1b[2J\x1b]0;pwned\x07").write_text("x")  # a foreign file: --rebuild names it
    result = cli("index", str(docs), "--index", str(foreign), "--rebuild")
    line = one_line_error(result)
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "\\x1b[2J\\x1b]0;pwned\\x07" in line, line


def test_format_characters_in_file_names_are_escaped(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "evil\u202edm.txt").write_text("# evil\n\nA file named to look like a markdown file.\n")
    (docs / "note.md").write_text("# note\n\nRivers and bread.\n")
    result = cli("index", str(docs), "--index", str(tmp_path / "IDX"), "--verbose")
    assert result.returncode == 0, result.stderr
    found = cli("query", "evil markdown file", "--index", str(tmp_path / "IDX"))
    assert found.returncode == 0, found.stderr
    output = result.stdout + result.stderr + found.stdout + found.stderr
    assert "\u202e" not in output
    assert "evil\\u202edm.txt" in found.stdout, found.stdout
    missing = cli("index", str(docs / "gone\u202etxt.md"), "--index", str(tmp_path / "IDX"))
    assert "\u202e" not in missing.stderr and "gone\\u202etxt.md" in one_line_error(missing)
