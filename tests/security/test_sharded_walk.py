"""A sharded index walks as a single one does: `--hidden` and `--no-ignore` are remembered per root
in every shard, `--follow-links` holds for one run, and a refresh drops a root that is gone or was
swapped for a link instead of following it out (it used to index where the link led, and to stop
at a gone root). Real CLI runs in subprocesses on real files and links."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from reliability import cli, indexed_paths, make_docs

from m2vsearch.index.index import Index
from m2vsearch.integrations.reads import refresh_folders

SHARDS = 3


def shard_folders(folder: Path) -> list[Path]:
    return sorted(folder.glob("shard-*"))


def names(folder: Path) -> set[str]:
    """The file names a sharded index holds, over all its shards."""
    return {Path(path).name for shard in shard_folders(folder) for path in indexed_paths(shard)}


def walks(folder: Path) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """What each shard remembers: (hidden roots, no-ignore roots)."""
    found = []
    for shard in shard_folders(folder):
        with Index.open(shard) as index:
            found.append((index.meta.hidden_roots, index.meta.no_ignore_roots))
    return found


def planted(tmp_path: Path) -> tuple[Path, set[str], set[str], set[str]]:
    """docs with plain files, a hidden folder, node_modules and a secret; enough of each that
    every shard gets some."""
    docs = make_docs(tmp_path / "docs", 6)
    (docs / ".notes").mkdir()
    (docs / "node_modules" / "pkg").mkdir(parents=True)
    for i in range(6):
        (docs / ".notes" / f"hidden{i}.md").write_text(f"# Hidden {i}\n\nzebracorn notes number {i}\n")
        (docs / "node_modules" / "pkg" / f"dep{i}.md").write_text(f"# Dep {i}\n\nzebracorn dependency {i}\n")
    (docs / ".env").write_text("API_TOKEN=zebracorn\n")  # a likely secret: never
    plain = {f"doc{i}.md" for i in range(6)}
    return docs, plain, {f"hidden{i}.md" for i in range(6)}, {f"dep{i}.md" for i in range(6)}


def run(*args: str) -> str:
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_sharded_index_remembers_hidden_and_no_ignore_per_root(tmp_path: Path) -> None:
    docs, plain, hidden, deps = planted(tmp_path)
    home = make_docs(tmp_path / "home", 2, prefix="home")
    (home / ".aws").mkdir()
    (home / ".aws" / "config").write_text("[default] zebracorn\n")
    folder = tmp_path / "S"
    run("index", str(docs), "--index", str(folder), "--shards", str(SHARDS), "--hidden", "--no-ignore")
    assert names(folder) == plain | hidden | deps
    key = str(docs.resolve())
    assert walks(folder) == [((key,), (key,))] * SHARDS
    run("index", "--index", str(folder))  # a refresh keeps them
    assert refresh_folders(folder)["removed"] == 0  # MCP's refresh too
    run("index", str(home), "--index", str(folder))  # a root added later does not inherit them
    every = plain | hidden | deps | {"home0.md", "home1.md"}
    assert names(folder) == every
    run("index", "--index", str(folder))
    assert names(folder) == every
    run("index", str(docs), "--index", str(folder), "--no-hidden")
    assert names(folder) == every - hidden
    run("index", "--index", str(folder), "--use-ignore")  # no PATH: every root
    assert names(folder) == plain | {"home0.md", "home1.md"}
    assert walks(folder) == [((), ())] * SHARDS


def test_a_walk_choice_holds_only_where_every_shard_remembers_it(tmp_path: Path) -> None:
    """A run killed between shards leaves them disagreeing; the next refresh takes the choice
    that lets in less, in every shard, rather than a different walk per shard."""
    docs, plain, hidden, _ = planted(tmp_path)
    folder = tmp_path / "S"
    run("index", str(docs), "--index", str(folder), "--shards", str(SHARDS), "--hidden")
    assert names(folder) == plain | hidden
    con = sqlite3.connect(shard_folders(folder)[1] / "index.sqlite")
    with con:  # as if the run that turned --hidden on had not reached this shard
        con.execute("UPDATE meta SET value = ? WHERE key = 'walk'", (json.dumps({"hidden": [], "no_ignore": []}),))
    con.close()
    run("index", "--index", str(folder))
    assert names(folder) == plain
    assert walks(folder) == [((), ())] * SHARDS


def test_a_rebuilt_shard_keeps_the_walk_choices(tmp_path: Path) -> None:
    docs, plain, hidden, _ = planted(tmp_path)
    folder = tmp_path / "S"
    run("index", str(docs), "--index", str(folder), "--shards", str(SHARDS), "--hidden")
    shutil.rmtree(shard_folders(folder)[2])  # a shard that is gone is rebuilt from its files
    run("index", "--index", str(folder), "-q")
    assert names(folder) == plain | hidden
    assert len({walk for walk in walks(folder)}) == 1


def test_a_sharded_refresh_does_not_follow_a_root_swapped_for_a_link(tmp_path: Path) -> None:
    """`mv docs docs.orig; ln -s elsewhere docs`: a refresh of a sharded index indexed elsewhere
    (the CLI and MCP's `index` tool); a gone root stopped the refresh. Both are now dropped with
    a note, as in a single index."""
    docs = make_docs(tmp_path / "docs", 4)
    other = make_docs(tmp_path / "other", 2, prefix="other")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "private.md").write_text("# Private\n\nA cormorant secret elsewhere.\n")
    folder = tmp_path / "S"
    run("index", str(docs), str(other), "--index", str(folder), "--shards", str(SHARDS))
    docs.rename(tmp_path / "docs.orig")
    docs.symlink_to(elsewhere, target_is_directory=True)
    out = run("index", "--index", str(folder))
    assert f"indexed folder {docs.resolve().parent / 'docs'} is now a link; not followed: dropped its 4 files" in out
    assert names(folder) == {"other0.md", "other1.md"}
    assert refresh_folders(folder)["added"] == 0  # MCP's refresh: the same
    assert names(folder) == {"other0.md", "other1.md"}
    run("index", "--index", str(folder), "--follow-links")  # a known root is gone now: nothing to follow
    assert "private.md" not in names(folder)
    run("index", str(docs), "--index", str(folder))  # named as a PATH: where it leads is indexed
    assert "private.md" in names(folder)
    shutil.rmtree(other)
    out = run("index", "--index", str(folder))
    assert "indexed folder" in out and "other is gone: dropped its 2 files" in out, out
    assert names(folder) == {"private.md"}
    with Index.open(shard_folders(folder)[0]) as index:
        assert list(index.meta.roots) == [str(elsewhere.resolve())]


def test_follow_links_works_on_a_sharded_index_for_one_run(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 3)
    outside = make_docs(tmp_path / "outside", 3, prefix="away")
    (docs / "linked").symlink_to(outside, target_is_directory=True)
    folder = tmp_path / "S"
    run("index", str(docs), "--index", str(folder), "--shards", str(SHARDS), "--follow-links")
    assert names(folder) == {"doc0.md", "doc1.md", "doc2.md", "away0.md", "away1.md", "away2.md"}
    run("index", "--index", str(folder))
    assert names(folder) == {"doc0.md", "doc1.md", "doc2.md"}


def test_patterns_lists_and_forgets_in_every_shard(tmp_path: Path) -> None:
    docs, plain, hidden, _ = planted(tmp_path)
    folder = tmp_path / "S"
    run("index", str(docs), "--index", str(folder), "--shards", str(SHARDS), "--hidden", "--exclude", "doc0.md")
    key = str(docs.resolve())
    assert run("patterns", "--index", str(folder)).splitlines() == ["exclude doc0.md", f"walk --hidden {key}"]
    assert names(folder) == (plain | hidden) - {"doc0.md"}
    refused = cli("patterns", "--index", str(folder), "--forget", "doc9.md")
    assert refused.returncode != 0 and "does not remember 'doc9.md'" in refused.stderr
    run("patterns", "--index", str(folder), "--forget", "doc0.md")
    assert run("patterns", "--index", str(folder)).splitlines() == [f"walk --hidden {key}"]
    run("index", "--index", str(folder))
    assert names(folder) == plain | hidden  # forgotten in every shard: doc0.md's shard takes it back


def swap_for_link(root: Path, target: Path) -> None:
    root.rename(root.with_name(root.name + ".orig"))
    root.symlink_to(target, target_is_directory=True)


def private_folder(tmp_path: Path) -> Path:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for i in range(6):
        (elsewhere / f"private{i}.md").write_text(f"# Private {i}\n\nA cormorant secret elsewhere {i}.\n")
    return elsewhere


def test_a_root_swapped_while_the_shards_are_refreshed_is_not_followed(tmp_path: Path) -> None:
    """Review case: the roots were checked once, before the shard jobs; a swap after shard 0's job
    made the later shards index where the link led and remember it as a root."""
    from m2vsearch.distributed.build import run_shard_job, run_sharded_index

    docs = make_docs(tmp_path / "docs", 6)
    elsewhere = private_folder(tmp_path)
    folder = tmp_path / "S"
    run("index", str(docs), "--index", str(folder), "--shards", str(SHARDS))

    def swapping_runner(jobs):
        first = run_shard_job(jobs[0])
        swap_for_link(docs, elsewhere)
        return [first, *(run_shard_job(job) for job in jobs[1:])]

    run_ = run_sharded_index(folder, [], runner=swapping_runner)
    assert sum("is now a link; not followed" in note for note in run_.notes) == SHARDS - 1, run_.notes
    assert not {name for name in names(folder) if name.startswith("private")}
    for shard in shard_folders(folder):
        with Index.open(shard) as index:
            assert str(elsewhere.resolve()) not in index.meta.roots
    out = run("index", "--index", str(folder))  # the next refresh drops it from shard 0 too
    assert "is now a link; not followed" in out and names(folder) == set()


def test_a_root_swapped_while_a_single_index_is_refreshed_is_not_followed(tmp_path: Path) -> None:
    """The same race on a single index with two roots: the second is swapped while the first is
    walked (it used to be indexed where it led and added as a root)."""
    from m2vsearch.index.lifecycle import run_index
    from m2vsearch.settings import IndexSettings

    first = make_docs(tmp_path / "a", 3, prefix="a")
    second = make_docs(tmp_path / "b", 2, prefix="b")
    elsewhere = private_folder(tmp_path)
    folder = tmp_path / "X"
    run("index", str(first), str(second), "--index", str(folder))
    (first / "a0.md").write_text("# a 0\n\nchanged, so the walk of a reports progress\n")
    swapped = []

    def progress(label: str, done: int, total: int, chunks: int) -> None:
        if not swapped:
            swap_for_link(second, elsewhere)
            swapped.append(label)

    result = run_index(folder, [], IndexSettings(), progress)
    assert swapped and any("b is now a link; not followed: dropped its 2 files" in n for n in result.notes), (
        result.notes
    )
    assert {Path(p).name for p in indexed_paths(folder)} == {"a0.md", "a1.md", "a2.md"}
    with Index.open(folder) as index:
        assert list(index.meta.roots) == [str(first.resolve())]


def test_patterns_a_killed_run_left_in_one_shard_reach_every_shard(tmp_path: Path) -> None:
    """Review case: a run killed after shard-000 stored `--exclude 'x*.txt'` left the others
    without it; `patterns` showed it, yet the x files stayed, and `--forget` changed shard-000 and
    then failed. A pattern any shard remembers now applies to all (the next run stores it in each)."""
    docs = make_docs(tmp_path / "docs", 2)
    for i in range(8):
        (docs / f"x{i}.txt").write_text(f"x file {i} about herons\n")
    folder = tmp_path / "S"
    run("index", str(docs), "--index", str(folder), "--shards", str(SHARDS))
    assert len(names(folder)) == 10
    (shard_folders(folder)[0] / "ignore").write_text("x*.txt\n")  # as the killed run left it
    assert run("patterns", "--index", str(folder)).splitlines() == ["exclude x*.txt"]
    run("index", "--index", str(folder))
    assert names(folder) == {"doc0.md", "doc1.md"}
    for shard in shard_folders(folder):
        assert "x*.txt" in (shard / "ignore").read_text().splitlines()
    for shard in shard_folders(folder)[1:]:  # a --forget killed after the first shard
        (shard / "ignore").write_text("\n")
    refused = cli("patterns", "--index", str(folder), "--forget", "x*.txt", "--forget", "y*.txt")
    assert refused.returncode != 0 and "does not remember 'y*.txt'" in refused.stderr
    assert "x*.txt" in (shard_folders(folder)[0] / "ignore").read_text().splitlines()  # refused: nothing changed
    run("patterns", "--index", str(folder), "--forget", "x*.txt")
    assert run("patterns", "--index", str(folder)) == ""
    run("index", "--index", str(folder))
    assert len(names(folder)) == 10


def test_patterns_refuses_a_planted_shard_and_a_shard_folder(tmp_path: Path) -> None:
    """Review case: `patterns --forget` wrote into a foreign index linked in as a shard."""
    docs = make_docs(tmp_path / "docs", 4)
    other = make_docs(tmp_path / "other", 2, prefix="other")
    foreign = tmp_path / "Y"
    run("index", str(other), "--index", str(foreign), "--exclude", "other0.md")
    folder = tmp_path / "S"
    run("index", str(docs), "--index", str(folder), "--shards", str(SHARDS), "--exclude", "doc0.md")
    shard = shard_folders(folder)[1]
    shard.rename(shard.with_name("moved-away"))
    shard.symlink_to(foreign, target_is_directory=True)
    for args in (["patterns", "--index", str(folder), "--forget", "doc0.md"], ["patterns", "--index", str(folder)]):
        result = cli(*args)
        assert result.returncode != 0 and result.stderr.count("\n") == 1, result.stderr
    assert "other0.md" in (foreign / "ignore").read_text().splitlines()
    shard.unlink()
    shard.with_name("moved-away").rename(shard)
    result = cli("patterns", "--index", str(shard), "--forget", "doc0.md")
    assert result.returncode != 0 and f"use --index {folder.resolve()}" in result.stderr, result.stderr
    assert run("patterns", "--index", str(folder)).splitlines() == ["exclude doc0.md"]


def test_follow_links_on_a_swapped_root_indexes_where_it_leads_in_its_place(tmp_path: Path) -> None:
    """`--follow-links` on a refresh follows a root swapped for a link, as naming it does: where it
    leads becomes a root, and the old name's files and place go at once (they stayed, and the old
    name was dropped only by a later run)."""
    docs = make_docs(tmp_path / "docs", 4)
    elsewhere = private_folder(tmp_path)
    folder = tmp_path / "S"
    run("index", str(docs), "--index", str(folder), "--shards", str(SHARDS))
    swap_for_link(docs, elsewhere)
    out = run("index", "--index", str(folder), "--follow-links")
    assert "is now a link; followed (--follow-links)" in out, out
    assert names(folder) == {f"private{i}.md" for i in range(6)}
    for shard in shard_folders(folder):
        with Index.open(shard) as index:
            assert list(index.meta.roots) == [str(elsewhere.resolve())]
    again = run("index", "--index", str(folder))
    assert "is now a link" not in again and names(folder) == {f"private{i}.md" for i in range(6)}


def test_a_root_that_cannot_be_checked_keeps_its_files(tmp_path: Path) -> None:
    """Second review: a root whose parent is unreadable (EACCES) was taken for "now a link" and its
    files dropped, by a refresh and for good by --rebuild. It is an error now, as before, and
    nothing is dropped."""
    import pytest
    from reliability import unprivileged

    prefix = unprivileged()
    if prefix is None:
        pytest.skip("needs a non-root user or setpriv to make permissions apply")
    top = tmp_path / "top"
    first = make_docs(top / "A", 2, prefix="a")
    second = make_docs(tmp_path / "B", 1, prefix="b")
    folder = tmp_path / "X"
    run("index", str(first), str(second), "--index", str(folder))
    top.chmod(0o000)
    try:
        for args in (["index", "--index", str(folder)], ["index", "--rebuild", "--index", str(folder)]):
            result = cli(*args, prefix=prefix)
            assert "now a link" not in result.stdout and "Traceback" not in result.stderr, (args, result)
    finally:
        top.chmod(0o755)
    assert {Path(p).name for p in indexed_paths(folder)} == {"a0.md", "a1.md", "b0.md"}
    with Index.open(folder) as index:
        assert set(index.meta.roots) == {str(first.resolve()), str(second.resolve())}


def test_a_link_into_a_root_swapped_during_the_run_is_not_followed(tmp_path: Path) -> None:
    """Second review: roots C, A, B with B/l.txt -> secret/s.txt (a link out: skipped). A swapped
    for a link to secret/ while C was walked made the walk of B count secret/ as inside a root
    (the boundaries were the roots' current real paths), so B/l.txt was indexed."""
    from m2vsearch.index.lifecycle import run_index
    from m2vsearch.settings import IndexSettings

    c, a, b = (
        make_docs(tmp_path / "C", 2, prefix="c"),
        make_docs(tmp_path / "A", 1, prefix="a"),
        make_docs(tmp_path / "B", 1, prefix="b"),
    )
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "s.txt").write_text("TOPSECRET cormorant\n")
    (b / "l.txt").symlink_to(secret / "s.txt")
    folder = tmp_path / "X"
    run("index", str(c), str(a), str(b), "--index", str(folder))
    swapped = []

    def progress(label: str, done: int, total: int, chunks: int) -> None:
        if not swapped:
            swap_for_link(a, secret)
            swapped.append(label)

    result = run_index(folder, [], IndexSettings(), progress)
    assert swapped and any("A is now a link; not followed" in note for note in result.notes), result.notes
    assert {Path(p).name for p in indexed_paths(folder)} == {"c0.md", "c1.md", "b0.md"}


def test_shards_stored_patterns_are_synced_as_they_are(tmp_path: Path) -> None:
    """Second review: every shard's ignore lines went back through the strict --exclude check, so a
    line one shard holds that the check refuses (hand-edited) stopped every refresh with
    `--exclude '[z-a]' is not a valid pattern`, though no --exclude was given."""
    docs = make_docs(tmp_path / "docs", 4)
    folder = tmp_path / "S"
    run("index", str(docs), "--index", str(folder), "--shards", str(SHARDS), "--exclude", "doc0.md")
    (shard_folders(folder)[1] / "ignore").write_text("doc0.md\n[z-a]\n")
    run("index", "--index", str(folder))
    for shard in shard_folders(folder):
        assert {"doc0.md", "[z-a]"} <= set((shard / "ignore").read_text().splitlines())
    assert names(folder) == {"doc1.md", "doc2.md", "doc3.md"}


def test_a_sharded_index_inside_a_hidden_root_does_not_index_its_own_lock(tmp_path: Path) -> None:
    """Third review: the shard walks skipped the sharded index's folder but not what lies beside
    it (its lock file `.S.lock`, staging), which `--hidden` let in as a document."""
    root = make_docs(tmp_path / "root", 2)
    run("index", str(root), "--index", str(root / "S"), "--shards", str(SHARDS), "--hidden")
    run("index", "--index", str(root / "S"))
    assert names(root / "S") == {"doc0.md", "doc1.md"}


def test_sharded_watch_reruns_only_the_watched_roots_with_their_flags(tmp_path: Path) -> None:
    """Third review: a sharded --watch re-run refreshed every root with the run's --follow-links
    (a link in another root was followed out), dropped another root that was briefly missing, and
    never indexed a watched root again once it was back."""
    import subprocess
    import time

    import pytest
    from reliability import CLI

    pytest.importorskip("watchfiles", reason="the watch extra is not installed (pip install 'm2vsearch[watch]')")
    a = make_docs(tmp_path / "a", 1, prefix="a")
    b = make_docs(tmp_path / "b", 2, prefix="b")
    outside = private_folder(tmp_path)
    (b / "out").symlink_to(outside, target_is_directory=True)
    folder = tmp_path / "S"
    run("index", str(a), str(b), "--index", str(folder), "--shards", str(SHARDS))
    proc = subprocess.Popen([*CLI, "index", str(a), "--index", str(folder), "--watch", "--follow-links"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # the first run is done once it watches
            if line.startswith("watching"):
                break
        b.rename(tmp_path / "b-away")  # another root, briefly missing (an unmounted drive)
        deadline, number = time.monotonic() + 120, 0

        def wait_for(name: str) -> None:
            nonlocal number
            while name not in names(folder):
                number += 1
                (a / f"new{number}.md").write_text(f"# New {number}\n\nA heron.\n")
                time.sleep(1)
                assert time.monotonic() < deadline and proc.poll() is None, names(folder)

        wait_for("new1.md")
        assert {"b0.md", "b1.md"} <= names(folder)  # not dropped
        assert not {n for n in names(folder) if n.startswith("private")}  # b's link out: not followed
        a.rename(tmp_path / "a-away")
        time.sleep(3)
        (tmp_path / "a-away").rename(a)
        (a / "back.md").write_text("# Back\n\nA heron came back.\n")
        wait_for("back.md")  # the watched root, back: indexed again
    finally:
        proc.terminate()
        proc.wait(timeout=60)
