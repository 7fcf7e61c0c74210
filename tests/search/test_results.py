"""What a person reads: snippets at the matching lines, file names and titles in ranking, per-file
limits, static late interaction, and no results for queries with nothing close."""

from __future__ import annotations

import random
import string
from pathlib import Path

import numpy as np
import pytest
from conftest import random_model

from m2vsearch import Index, InvalidArgumentError
from m2vsearch.distributed import open_index
from m2vsearch.index.lifecycle import run_index
from m2vsearch.search.hit import Hit
from m2vsearch.search.maxsim import TokenScorer
from m2vsearch.search.snippet import snippet, stem
from m2vsearch.settings import IndexSettings

FILLER = [f"Line {n} talks about gardens, weather and the colour of the sky." for n in range(12)]


def test_snippet_is_the_matching_line_with_context() -> None:
    lines = list(FILLER)
    lines[7] = "To unpack archives, extract the tarball with tar -xf archive.tar."
    hit = Hit(1, 1.0, "\n".join(lines), "docs/x.md", 40, 51)
    shown = snippet(hit, "extracting an archive", context=1)
    assert shown.line == 47  # the 8th line of a chunk starting at line 40
    assert [item.number for item in shown.lines] == [46, 47, 48]
    best = shown.lines[1]
    marked = [best.text[a:b] for a, b in best.spans]
    assert marked == ["archives", "extract", "archive"]  # stems: extracting ~ extract, archive ~ archives
    assert [item.number for item in snippet(hit, "extracting an archive", context=0).lines] == [47]


def test_snippet_cuts_a_long_line_around_its_match() -> None:
    text = "word " * 200 + "needle here " + "word " * 200
    shown = snippet(Hit(1, 1.0, text, None, None, None), "needle", context=0)
    line = shown.lines[0]
    assert len(line.text) <= 250 and line.text.startswith("...") and line.text.endswith("...")
    assert [line.text[a:b] for a, b in line.spans] == ["needle"]
    assert shown.line is None  # a text without lines


def test_snippet_meaning_picks_a_line_without_the_words() -> None:
    from m2vsearch.model.static import StaticModel

    model = StaticModel.from_pretrained("default")
    lines = ["The weather was mild all week.", "Our cat sleeps on the sofa.", "Bake the bread for an hour."]
    hit = Hit(1, 1.0, "\n".join(lines), "a.md", 1, 3)
    assert snippet(hit, "kitten napping", TokenScorer(model, "kitten napping"), context=0).line == 2


def test_stem_matches_word_forms() -> None:
    assert stem("archives") == stem("archive") == stem("archiving")
    assert stem("files") == stem("file") and stem("downloaded") == stem("download")


def test_maxsim_matches_a_plain_loop() -> None:
    model = random_model(dim=16, seed=3)
    texts = ["search engine index", "cat dog house", "", "water fire play"]
    scorer = TokenScorer(model, "search the water", dims=12)
    table = model.table[:, :12]
    query = list(dict.fromkeys(model.tokenize(["search the water"])[0]))
    expected = []
    for ids in model.tokenize(texts):
        if not ids:
            expected.append(0.0)
            continue
        q = table[query] / np.linalg.norm(table[query], axis=1, keepdims=True)
        t = table[ids] / np.linalg.norm(table[ids], axis=1, keepdims=True)
        weights = np.linalg.norm(table[query], axis=1)
        expected.append(float(weights @ (q @ t.T).max(axis=1) / weights.sum()))
    assert scorer.scores(texts) == pytest.approx(expected, abs=1e-5)
    assert scorer.scores(["search the water"])[0] == pytest.approx(1.0, abs=1e-5)


def _pages(root: Path) -> Path:
    """tar.md says little about tar; atool.md mentions it in every line; a page titled Rsync
    lives in page7.md."""
    (root / "tar.md").write_text(
        "# tar\n\nArchiving utility.\n\n- Create an archive from files: `tar cf target.tar file1`\n"
    )
    (root / "atool.md").write_text(
        "# atool\n\nManage archives of various formats.\n\n"
        + "\n".join(
            f"- atool handles tar, tar.gz and tar.bz2 archives, case {n}: `atool -x archive.tar`" for n in range(8)
        )
        + "\n"
    )
    (root / "page7.md").write_text("# Rsync\n\nTransfer files between hosts.\n\n- Copy a folder: `cmd -a src/ dst/`\n")
    (root / "sync.md").write_text(
        "# sync\n\n"
        + "\n".join(f"- rsync is used with ssh, rsync daemon mode {n}, rsync filters" for n in range(8))
        + "\n"
    )
    for n in range(6):
        (root / f"other{n}.md").write_text(f"# Other {n}\n\n" + "\n\n".join(FILLER[n : n + 4]) + "\n")
    return root


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _pages(tmp_path_factory.mktemp("pages"))
    folder = root / "idx"
    run_index(folder, [root], IndexSettings())
    return folder


@pytest.mark.parametrize(("query", "first"), [("tar", "tar.md"), ("rsync", "page7.md")])
def test_a_query_naming_a_file_or_title_ranks_it_first(pages: Path, query: str, first: str) -> None:
    with Index.open(pages) as index:
        hits = index.search(query, k=3)
        assert Path(hits[0].path).name == first
        bm25 = index.search(query, k=3, mode="bm25")  # keywords alone do not know names
        assert Path(bm25[0].path).name != first


def test_per_file_limits_hits_of_one_file(tmp_path: Path) -> None:
    (tmp_path / "long.md").write_text("\n\n".join(f"## Part {n}\n\nrsync copies files {n}" for n in range(12)))
    (tmp_path / "short.md").write_text("rsync mirrors a folder\n")
    folder = tmp_path / "idx"
    run_index(folder, [tmp_path], IndexSettings())
    with Index.open(folder) as index:
        unlimited = [Path(h.path).name for h in index.search("rsync", k=6, mode="bm25")]
        limited = [Path(h.path).name for h in index.search("rsync", k=6, mode="bm25", per_file=2)]
        assert unlimited.count("long.md") >= 5
        assert limited.count("long.md") == 2 and "short.md" in limited
        with pytest.raises(InvalidArgumentError, match="per_file"):
            index.search("rsync", per_file=0)
        with pytest.raises(InvalidArgumentError, match="rerank"):
            index.search("rsync", rerank="colbert")


def test_maxsim_rerank_reorders_and_keeps_the_candidates(pages: Path) -> None:
    with Index.open(pages) as index:
        plain = index.search("copy a folder to another host", k=5, rerank="none")
        late = index.search("copy a folder to another host", k=5)  # maxsim: hybrid's default
        assert [h.id for h in late] == [
            h.id for h in index.search("copy a folder to another host", k=5, rerank="maxsim")
        ]
        assert {h.id for h in late} <= {h.id for h in index.search("copy a folder to another host", k=50)}
        assert [h.score for h in late] == sorted((h.score for h in late), reverse=True)
        assert [h.id for h in late] != [h.id for h in plain] or [h.score for h in late] != [h.score for h in plain]


def test_random_letters_find_nothing_on_a_small_index(tmp_path: Path, real_texts: list[str]) -> None:
    from corpora import write_corpus

    write_corpus(tmp_path / "docs", real_texts, files=60)
    folder = tmp_path / "idx"
    run_index(folder, [tmp_path / "docs"], IndexSettings())
    rng = random.Random(7)
    queries = ["zzqqxxyy"] + [
        "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(6, 11))) for _ in range(29)
    ]
    with open_index(folder) as index:
        assert index.info()["chunks"] >= 300
        found = {query: len(index.search(query, k=3)) for query in queries}
        assert index.search("energy of photons", k=3)  # real questions still find passages
    assert not [query for query, count in found.items() if count], found


def test_token_bags_equal_the_tokenizer(real_texts: list[str]) -> None:
    """The piece cache gives late interaction the same token ids as the real tokenizer."""
    from m2vsearch.model.static import StaticModel

    model = StaticModel.from_pretrained("default")
    texts = [text for text in real_texts[:200] if len(model.tokenize([text])[0]) < model.max_length]
    texts += ["a\x00b with a NUL", "", "café über naïve"]  # the exact path, an empty text, accents
    flat, counts = model.token_bags(texts)
    assert counts.sum() == len(flat) and len(counts) == len(texts)
    bags = np.split(flat, np.cumsum(counts)[:-1])
    assert [list(bag) for bag in bags] == model.tokenize(texts)
    norms = np.linalg.norm(model.table, axis=1)
    assert model.inverse_norms()[:50] == pytest.approx(1 / norms[:50], rel=1e-5)


def test_the_random_letters_rule_is_for_wordpiece_vocabularies_only() -> None:
    """A sentence-piece vocabulary (the multilingual model) splits real words of many languages,
    and a question in another language shares no keyword with its passage: the rule must not apply."""
    from m2vsearch.model.static import StaticModel
    from m2vsearch.search.rank import knows_words

    english = StaticModel.from_pretrained("default")
    assert not knows_words(english, "zzqqxxyy ckqpd") and knows_words(english, "automobile accident")
    multilingual = StaticModel.from_pretrained("multilingual")
    assert knows_words(multilingual, "Donaudampfschifffahrtsgesellschaft") and knows_words(multilingual, "zzqqxxyy")


def test_snippet_edges_tabs_html_and_ss_words() -> None:
    assert stem("process") == stem("processes") and stem("class") == stem("classes") == "class"
    hit = Hit(1, 1.0, "func main() {\n\treturn archive\n}", "main.go", 10, 12)
    shown = snippet(hit, "archive", context=0)
    assert shown.line == 11 and shown.lines[0].text == "    return archive" and "\t" not in shown.text
    assert [shown.lines[0].text[a:b] for a, b in shown.lines[0].spans] == ["archive"]
    page = Hit(2, 1.0, "Title\nMagma rises", "site/page.HTML", 1, 2)
    assert snippet(page, "magma").line is None  # extracted text: its lines are not the file's


def test_reference_encoders_and_bm25_with_late_interaction(tmp_path: Path) -> None:
    """An encoder without a token table (eval's reference rows) still searches in hybrid; late
    interaction is refused for BM25, whose scores are not on its scale."""

    class Reference:
        name, dim, fingerprint = "reference", 32, "reference-encoder"

        def encode(self, texts: object, dims: int | None = None) -> np.ndarray:
            return random_model().encode(texts, dims=dims)

    with Index.create(tmp_path / "idx", model=Reference()) as index:  # type: ignore[arg-type]
        index.add_texts(["search engine index", "cat dog house"])
        assert index.search("search engine")[0].text == "search engine index"
        with pytest.raises(InvalidArgumentError, match="hybrid or dense"):
            index.search("search", mode="bm25", rerank="maxsim")


def test_real_words_split_in_two_still_count_as_known() -> None:
    from m2vsearch.model.static import StaticModel
    from m2vsearch.search.rank import knows_words

    model = StaticModel.from_pretrained("default")
    assert knows_words(model, "regex") and knows_words(model, "stdout numpy")
    assert not knows_words(model, "qxvbwz")
