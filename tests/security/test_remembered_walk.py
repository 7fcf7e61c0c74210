"""`--hidden` and `--no-ignore` are remembered per root by the index (meta `walk`): a refresh,
`--rebuild`, MCP's refresh and `Index.add_path` keep what they let in until `--no-hidden` /
`--use-ignore`; a root added later never inherits them; `--follow-links` holds for one run only.
Real CLI runs in subprocesses on real files and links."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from reliability import cli, consistent, indexed_paths, make_docs, one_line_error

from m2vsearch.index.index import Index
from m2vsearch.integrations.reads import refresh_folders


def indexed_names(folder: Path) -> set[str]:
    return {Path(path).name for path in indexed_paths(folder)}


def planted_docs(tmp_path: Path) -> Path:
    docs = make_docs(tmp_path / "docs", 2)
    (docs / ".notes").mkdir()
    (docs / ".notes" / "hidden.md").write_text("# Hidden\n\nzebracorn notes kept in a hidden folder\n")
    (docs / "node_modules" / "pkg").mkdir(parents=True)
    (docs / "node_modules" / "pkg" / "dep.md").write_text("# Dep\n\nzebracorn dependency readme\n")
    (docs / ".env").write_text("API_TOKEN=zebracorn\n")  # a likely secret: never, remembered or not
    return docs


def test_refresh_rebuild_and_mcp_refresh_keep_hidden_and_no_ignore(tmp_path: Path) -> None:
    docs = planted_docs(tmp_path)
    folder = tmp_path / "X"
    first = cli("index", str(docs), "--index", str(folder), "--hidden", "--no-ignore")
    assert first.returncode == 0, first.stderr
    every = {"doc0.md", "doc1.md", "hidden.md", "dep.md"}
    assert indexed_names(folder) == every
    listed = cli("patterns", "--index", str(folder))
    root = str(docs.resolve())
    assert listed.stdout.split("\n")[:2] == [f"walk --hidden {root}", f"walk --no-ignore {root}"], listed.stdout
    for run in (["index", "--index", str(folder)], ["index", str(docs), "--index", str(folder)],
                ["index", "--rebuild", "--index", str(folder)]):  # fmt: skip
        result = cli(*run)
        assert result.returncode == 0, result.stderr
        assert indexed_names(folder) == every, (run, result.stdout)
    assert refresh_folders(folder)["removed"] == 0
    assert indexed_names(folder) == every
    with Index.open(folder) as index:
        index.add_path(docs)  # the Python API applies what the index remembers for the root too
        found = {hit.path.rsplit("/", 1)[-1] for hit in index.search("zebracorn", k=10, mode="bm25")}
    assert found == {"hidden.md", "dep.md"}
    assert indexed_names(folder) == every
    consistent(folder)


def test_a_root_added_later_does_not_inherit_them(tmp_path: Path) -> None:
    """`index proj --hidden`, then `index home`: home's .aws/credentials must stay out."""
    docs = planted_docs(tmp_path)
    home = make_docs(tmp_path / "home", 1, prefix="home")
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text("aws_secret_access_key = zebracorn\n")
    (home / "node_modules").mkdir()
    (home / "node_modules" / "lib.md").write_text("# zebracorn dependency\n")
    folder = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(folder), "--hidden", "--no-ignore").returncode == 0
    added = cli("index", str(home), "--index", str(folder))
    assert added.returncode == 0, added.stderr
    assert "1 hidden" in added.stdout and "1 ignored folder" in added.stdout, added.stdout
    every = {"doc0.md", "doc1.md", "hidden.md", "dep.md", "home0.md"}
    for run in (["index", "--index", str(folder)], ["index", "--rebuild", "--index", str(folder)]):
        assert cli(*run).returncode == 0
        assert indexed_names(folder) == every, run
    assert refresh_folders(folder)["added"] == 0
    assert indexed_names(folder) == every
    consistent(folder)


def test_no_hidden_and_use_ignore_turn_them_off_for_later_runs(tmp_path: Path) -> None:
    docs = planted_docs(tmp_path)
    folder = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(folder), "--hidden", "--no-ignore").returncode == 0
    off = cli("index", "--index", str(folder), "--no-hidden")
    assert off.returncode == 0, off.stderr
    assert indexed_names(folder) == {"doc0.md", "doc1.md", "dep.md"}
    assert cli("index", "--rebuild", "--index", str(folder)).returncode == 0  # --no-hidden is remembered too
    assert indexed_names(folder) == {"doc0.md", "doc1.md", "dep.md"}
    assert cli("index", "--index", str(folder), "--use-ignore").returncode == 0
    assert indexed_names(folder) == {"doc0.md", "doc1.md"}
    assert refresh_folders(folder)["added"] == 0
    assert cli("patterns", "--index", str(folder)).stdout == ""
    consistent(folder)


def test_a_gone_root_is_forgotten_with_its_walk_choices(tmp_path: Path) -> None:
    docs = planted_docs(tmp_path)
    folder = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(folder), "--hidden").returncode == 0
    moved = docs.rename(tmp_path / "moved")
    assert cli("index", "--index", str(folder)).returncode == 0  # the root is gone: dropped with a note
    assert cli("patterns", "--index", str(folder)).stdout == ""
    moved.rename(docs)
    assert cli("index", str(docs), "--index", str(folder)).returncode == 0  # indexed anew: the defaults
    assert indexed_names(folder) == {"doc0.md", "doc1.md"}


def test_follow_links_is_not_remembered(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 1)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "away.md").write_text("# Away\n\nzebracorn text outside the indexed folder\n")
    (docs / "linked").symlink_to(outside, target_is_directory=True)
    folder = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(folder), "--follow-links").returncode == 0
    assert "away.md" in indexed_names(folder)
    again = cli("index", "--index", str(folder))  # not asked this time: the link is not followed
    assert again.returncode == 0, again.stderr
    assert indexed_names(folder) == {"doc0.md"}


def test_a_damaged_walk_meta_is_a_one_line_error(tmp_path: Path) -> None:
    docs = make_docs(tmp_path / "docs", 1)
    folder = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(folder), "--hidden").returncode == 0
    for bad in ('{"hidden": "yes"}', '{"hidden": [1]}', "[]", "not json"):
        con = sqlite3.connect(folder / "index.sqlite")
        with con:
            con.execute("UPDATE meta SET value = ? WHERE key = 'walk'", (bad,))
        con.close()
        result = cli("query", "doc", "--index", str(folder))
        assert result.returncode != 0
        assert "meta walk" in one_line_error(result), bad


def test_rebuild_with_a_flag_and_a_path_applies_it_to_that_path_only(tmp_path: Path) -> None:
    """`index home`, then `index --rebuild --hidden proj`: home's .aws stays out (review case)."""
    home = make_docs(tmp_path / "home", 1, prefix="home")
    (home / ".aws").mkdir()
    (home / ".aws" / "config").write_text("[default] zebracorn\n")
    proj = planted_docs(tmp_path)
    folder = tmp_path / "X"
    assert cli("index", str(home), "--index", str(folder)).returncode == 0
    assert cli("index", "--rebuild", "--hidden", str(proj), "--index", str(folder)).returncode == 0
    assert cli("patterns", "--index", str(folder)).stdout == f"walk --hidden {proj.resolve()}\n"
    assert indexed_names(folder) == {"home0.md", "doc0.md", "doc1.md", "hidden.md"}
    assert cli("index", "--index", str(folder)).returncode == 0
    assert indexed_names(folder) == {"home0.md", "doc0.md", "doc1.md", "hidden.md"}


def test_a_nested_root_walks_as_its_parent_does(tmp_path: Path) -> None:
    """`index docs --hidden`, then `index docs/sub`: refreshes must not add and drop sub's hidden
    files by turns (review case)."""
    docs = planted_docs(tmp_path)
    sub = make_docs(docs / "sub", 1, prefix="sub")
    (sub / ".h").mkdir()
    (sub / ".h" / "h.md").write_text("# zebracorn nested hidden\n")
    folder = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(folder), "--hidden").returncode == 0
    assert cli("index", str(sub), "--index", str(folder)).returncode == 0
    for _ in range(2):
        again = cli("index", "--index", str(folder))
        summaries = [line for line in again.stdout.splitlines() if " added, " in line]
        assert again.returncode == 0 and len(summaries) == 2, again.stdout
        assert all(": 0 added, 0 changed, 0 removed" in line for line in summaries), again.stdout
        assert "h.md" in indexed_names(folder)


def test_a_rebuild_forgets_the_choices_of_roots_it_dropped(tmp_path: Path) -> None:
    docs = planted_docs(tmp_path)
    other = make_docs(tmp_path / "other", 1, prefix="other")
    folder = tmp_path / "X"
    assert cli("index", str(docs), "--index", str(folder), "--hidden").returncode == 0
    assert cli("index", str(other), "--index", str(folder)).returncode == 0
    moved = docs.rename(tmp_path / "moved")
    assert cli("index", "--rebuild", "--index", str(folder)).returncode == 0
    assert cli("patterns", "--index", str(folder)).stdout == ""
    moved.rename(docs)
    assert cli("index", str(docs), "--index", str(folder)).returncode == 0  # back, unasked: the defaults
    assert "hidden.md" not in indexed_names(folder)


def test_a_link_into_another_root_gets_that_roots_walk(tmp_path: Path) -> None:
    """Review case: a link in root A (--hidden) to a hidden file of root B (defaults) was judged by
    A's flags, so A's --hidden let in B's hidden files through the link. A link's target is now
    judged by the choices of the root it lies in."""
    a = make_docs(tmp_path / "a", 1, prefix="a")
    b = make_docs(tmp_path / "b", 1, prefix="b")
    (b / ".private").mkdir()
    (b / ".private" / "notes.md").write_text("# Notes\n\nzebracorn private notes of b\n")
    (b / "node_modules").mkdir()
    (b / "node_modules" / "dep.md").write_text("# Dep\n\nzebracorn dependency of b\n")
    (a / ".mine").mkdir()
    (a / ".mine" / "own.md").write_text("# Own\n\nzebracorn hidden notes of a\n")
    (a / "to-notes.md").symlink_to(b / ".private" / "notes.md")
    (a / "to-dep.md").symlink_to(b / "node_modules" / "dep.md")
    (b / "to-own.md").symlink_to(a / ".mine" / "own.md")  # into a's hidden files: a lets them in
    folder = tmp_path / "X"
    run = cli("index", str(b), "--index", str(folder))
    assert run.returncode == 0, run.stderr
    result = cli("index", str(a), "--index", str(folder), "--hidden", "--no-ignore", "-v")
    assert result.returncode == 0, result.stderr
    assert "a/to-notes.md: symbolic link to a hidden file" in result.stdout, result.stdout
    assert "a/to-dep.md: symbolic link into an ignored folder" in result.stdout, result.stdout
    assert cli("index", "--index", str(folder)).returncode == 0
    assert indexed_names(folder) == {"a0.md", "own.md", "b0.md", "to-own.md"}


def test_a_folder_link_followed_into_another_root_walks_with_that_roots_choices(tmp_path: Path) -> None:
    """Third review: with --follow-links, the walk inside a folder link into root b used a's
    --hidden, so b's hidden files came in through a/dir-link/.deep/d.md."""
    a = make_docs(tmp_path / "a", 1, prefix="a")
    b = make_docs(tmp_path / "b", 1, prefix="b")
    (b / "sub" / ".deep").mkdir(parents=True)
    (b / "sub" / ".deep" / "d.md").write_text("# Deep\n\nzebracorn hidden in b\n")
    (b / "sub" / "plain.md").write_text("# Plain\n\nzebracorn visible in b\n")
    (a / "dir-link").symlink_to(b / "sub", target_is_directory=True)
    (a / "root-link").symlink_to(b, target_is_directory=True)
    folder = tmp_path / "X"
    assert cli("index", str(b), "--index", str(folder)).returncode == 0
    result = cli("index", str(a), "--index", str(folder), "--hidden", "--follow-links")
    assert result.returncode == 0, result.stderr
    paths = indexed_paths(folder)
    assert not [p for p in paths if "/.deep/" in p], sorted(paths)
    assert str(a.resolve() / "dir-link" / "plain.md") in paths  # followed, as asked


def test_a_file_swapped_for_a_link_after_the_walk_is_judged_again_before_it_is_read(tmp_path: Path) -> None:
    """Third review (suspicion): the check right before a file is read looked only for links out
    of the roots and to secrets, so b/ok.md swapped after the walk for a link to b/.private/x.md
    (a hidden file b's choices leave out) would have been read."""
    from m2vsearch.ingest.walk import LINK_HIDDEN, LINK_IGNORED_FOLDER, WalkOptions, link_problem

    a, b = make_docs(tmp_path / "a", 1, prefix="a"), make_docs(tmp_path / "b", 1, prefix="b")
    (b / ".private").mkdir()
    (b / ".private" / "x.md").write_text("# X\n\nzebracorn\n")
    (b / "node_modules").mkdir()
    (b / "node_modules" / "y.md").write_text("# Y\n\nzebracorn\n")
    (a / ".mine").mkdir()
    (a / ".mine" / "own.md").write_text("# Own\n\nzebracorn\n")
    options = WalkOptions(hidden=True, roots=(a, b), root_flags=((str(b), False, False),))
    for target, reason in ((b / ".private" / "x.md", LINK_HIDDEN), (b / "node_modules" / "y.md", LINK_IGNORED_FOLDER),
                           (a / ".mine" / "own.md", None), (b / "b0.md", None)):  # fmt: skip
        (a / "swapped.md").unlink(missing_ok=True)
        (a / "swapped.md").symlink_to(target)
        assert link_problem(a / "swapped.md", options) == reason, target
    assert link_problem(a / ".mine" / "own.md", options) is None  # no link: the walk's verdict stands
    b_walk = WalkOptions(roots=(b, a), root_flags=((str(a), True, False),))
    (b / "to-own.md").symlink_to(a / ".mine" / "own.md")  # a's --hidden lets its own hidden files in
    assert link_problem(b / "to-own.md", b_walk) is None
