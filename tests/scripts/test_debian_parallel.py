"""The Debian-manual readers of scripts/debian_parallel.py (prepare_parallel.py --debian-docs) on tiny made-up pages."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import debian_parallel as dp  # noqa: E402
import prepare_parallel as pp  # noqa: E402

LONG = "word " * 450  # over 2,000 characters


def help_page(lang: str, body: str) -> str:
    """A LibreOffice help page as the packages ship it: navigation around the paragraphs."""
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>T</title><script>var x = "<p id='par_id9'>no</p>";</script></head>
<body><header id="TopLeftHeader"><p dir="auto">LibreOffice Help</p></header>
<div id="DisplayArea">{body}</div><footer><p>Footer text here</p></footer></body></html>"""


ENGLISH_HELP = help_page(
    "en-US",
    """<h1 id="hd_id1"><a name="x"></a>Inserting and Editing Frames</h1>
<p id="par_id2" class="paragraph">A <span class="emph">frame</span> is a container for<br>text and
   <a href="en-US/text/g.html">graphics</a>.</p>
<p id="par_id3">Choose <span id="swlnsys1" class="switchinline"><span hidden="true" id="MACtext1" class="MAC">LibreOffice -
 Preferences</span><span hidden="true" id="defaulttext1">Tools - Options</span></span> - View.</p>
<p id="par_id4">Too short</p>
<p id="par_id5">This paragraph stays in English.</p>
<p id="par_id6">This one is not in the other page.</p>
<p id="par_id7">{long}</p>
<p id="par_id8">See Section 2.1 for details.</p>
<div class="embedded"><p id="par_id2">The same paragraph embedded again.</p></div>
<p id="par_idN1">Only the empty translation.</p>
<p id="other">Not a paragraph id at all.</p>""".format(long=LONG),
)
GERMAN_HELP = help_page(
    "de",
    """<p id="par_id3">Wählen Sie <span id="swlnsys1" class="switchinline"><span hidden="true" id="MACtext1"
 class="MAC">LibreOffice - Einstellungen</span><span hidden="true" id="defaulttext1">Extras - Optionen</span></span>
 - Ansicht.</p>
<h1 id="hd_id1">Einfügen und Bearbeiten von Rahmen</h1>
<p id="par_id2" class="paragraph">Ein <span class="emph">Rahmen</span> ist ein Behälter für Text und Grafiken.</p>
<p id="par_id4">Zu kurz</p>
<p id="par_id5">This paragraph stays in English.</p>
<p id="par_id7">lang</p>
<p id="par_id8">See Abschnitt 2.1 for details.</p>
<div class="embedded"><p id="par_id2">Derselbe Absatz, noch einmal eingebettet.</p></div>
<p id="par_idN1">  </p>
<p id="par_id99">Ein Absatz ohne englisches Gegenstück.</p>""",
)


def test_help_paragraphs_strip_markup_keep_default_variants_and_number_repeated_ids():
    paragraphs = dict(dp.help_paragraphs(ENGLISH_HELP))
    assert paragraphs["hd_id1"] == "Inserting and Editing Frames"
    assert paragraphs["par_id2"] == "A frame is a container for text and graphics."
    assert paragraphs["par_id3"] == "Choose Tools - Options - View."  # the macOS variant is left out
    assert paragraphs["par_id2#2"] == "The same paragraph embedded again."
    assert "other" not in paragraphs and "par_id9" not in paragraphs  # neither a .xhp id nor in a script
    assert not any("Footer" in text or "LibreOffice Help" in text for text in paragraphs.values())


def test_help_pairs_align_by_id_and_filter():
    pairs = dp.help_pairs(GERMAN_HELP, ENGLISH_HELP, "text/a.html")
    assert pairs == [
        ("Einfügen und Bearbeiten von Rahmen", "Inserting and Editing Frames", "text/a.html", 0),
        ("Ein Rahmen ist ein Behälter für Text und Grafiken.", "A frame is a container for text and graphics.",
         "text/a.html", 1),
        ("Wählen Sie Extras - Optionen - Ansicht.", "Choose Tools - Options - View.", "text/a.html", 2),
        ("Derselbe Absatz, noch einmal eingebettet.", "The same paragraph embedded again.", "text/a.html", 8),
    ]  # fmt: skip
    # left out: 2 English words (par_id4), identical (par_id5), missing (par_id6), over 2,000 characters
    # (par_id7), untranslated but for a cross-reference (par_id8), empty (par_idN1)


def test_keep_and_copied():
    assert dp.keep("Drei Wörter hier", "three words here")
    assert not dp.keep("Zwei Wörter", "two words")
    assert not dp.keep("", "three words here") and not dp.keep("same three words", "same three words")
    assert not dp.keep(LONG, "three words here") and not dp.keep("Drei Wörter hier", LONG)
    assert dp.copied("See Раздел 6.2.1 for the details of it.", "See Section 6.2.1 for the details of it.")
    assert not dp.copied("Diese Funktion ist seit LibreOffice 4.2 verfügbar.", "This function is available since 4.2.")


def chapter(paragraphs: list[str], lang: str) -> str:
    body = "".join(f'<div class="para">\n\t\t\t{text}\n\t\t</div>' for text in paragraphs)
    return f"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<html xmlns="http://www.w3.org/1999/xhtml" lang="{lang}"><head><title>C</title></head><body>
<ul class="docnav top"><li class="previous"><a href="x.html"><strong>Prev</strong></a></li></ul>
<div class="section"><div class="titlepage"><h2 class="title"><a xmlns="" id="sect.x"></a>6.2. Title</h2></div>
<a id="id-1" class="indexterm"/>{body}</div></body></html>"""


def test_handbook_pairs_align_by_order_and_skip_chapters_whose_counts_differ():
    english = chapter(
        [
            'APT is a <code class="command">vast</code> project.',
            'Run this: <pre class="screen">apt update</pre> as root now.',
            "Untranslated paragraph stays out.",
        ],
        "en-US",
    )
    german = chapter(
        [
            'APT ist ein <code class="command">gewaltiges</code> Projekt.',
            'Führen Sie <pre class="screen">apt update</pre> als root aus.',
            "Untranslated paragraph stays out.",
        ],
        "de-DE",
    )
    assert dp.handbook_paragraphs(english)[1] == "Run this: as root now."  # screens left out
    assert dp.handbook_pairs(german, english, "apt.html") == [
        ("APT ist ein gewaltiges Projekt.", "APT is a vast project.", "apt.html", 0),
        ("Führen Sie als root aus.", "Run this: as root now.", "apt.html", 1),
    ]
    shorter = chapter(["APT ist ein gewaltiges Projekt.", "Führen Sie als root aus."], "de-DE")
    assert dp.handbook_pairs(shorter, english, "apt.html") == []


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_deb_html_reads_regular_files_only_and_aligned_pairs_documents(tmp_path):
    tree = tmp_path / "pkg"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        "Package: fake-help\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@t>\nDescription: test\n"
    )
    help_root = tree / "usr/share/libreoffice/help"
    for lang, page in (("en-US", ENGLISH_HELP), ("de", GERMAN_HELP)):
        (help_root / lang / "text").mkdir(parents=True)
        (help_root / lang / "text" / "a.html").write_text(page)
    (help_root / "de" / "text" / "b.html").write_text(GERMAN_HELP)  # no English page: skipped
    (tmp_path / "secret.html").write_text(ENGLISH_HELP)
    (help_root / "en-US" / "text" / "b.html").symlink_to(tmp_path / "secret.html")  # never followed
    (help_root / "en-US" / "text" / "c.html").symlink_to("a.html")
    deb = tmp_path / "fake.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(deb)], check=True, capture_output=True)
    pages = dp.deb_html(deb, {"en": f"{dp.HELP_ROOT}/en-US", "de": f"{dp.HELP_ROOT}/de"})
    assert sorted(pages["en"]) == ["text/a.html"] and sorted(pages["de"]) == ["text/a.html", "text/b.html"]
    pairs = dp.aligned(pages["de"], pages["en"], dp.help_pairs)
    assert pairs == dp.help_pairs(GERMAN_HELP, ENGLISH_HELP, "text/a.html") and len(pairs) == 4


def test_fetch_deb_checks_the_pinned_sha256(tmp_path, monkeypatch):
    (tmp_path / "fake-help_2%3a1.0_all.deb").write_bytes(b"package bytes")
    monkeypatch.setitem(dp.DEBS, "fake-help", ("2:1.0", hashlib.sha256(b"package bytes").hexdigest()))
    assert dp.fetch_deb("fake-help", tmp_path) == tmp_path / "fake-help_2%3a1.0_all.deb"
    monkeypatch.setitem(dp.DEBS, "fake-help", ("2:1.0", "0" * 64))
    with pytest.raises(SystemExit):
        dp.fetch_deb("fake-help", tmp_path)
    record = dp.record("libreoffice", "fake-help", "files", "de")
    assert record["version"] == "2:1.0" and record["lang"] == "de" and record["licence"].startswith("MPL-2.0")


def test_split_pairs_keeps_doc_and_pos_of_the_first_source_and_row_json_writes_them():
    rows = [(f"x{i}", f"e{i}", "tatoeba") for i in range(10)]
    rows += [("x0", "e0", "libreoffice", "text/a.html", 3), ("y1", "f1", "libreoffice", "text/a.html", 4)]
    rows += [("y1", "f1", "debian-handbook", "apt.html", 0), ("z2", "g2", "debian-handbook", "apt.html", 1)]
    train, held, _ = pp.split_pairs(rows, set(), holdout=2, seed="t")
    kept = {row[:2]: row for row in train + held}
    assert kept[("x0", "e0")] == ("x0", "e0", "tatoeba")  # the first source wins, with its own fields
    assert kept[("y1", "f1")] == ("y1", "f1", "libreoffice", "text/a.html", 4)
    assert pp.row_json(kept[("z2", "g2")]) == {
        "query": "z2", "positive": "g2", "source": "debian-handbook", "doc": "apt.html", "pos": 1,
    }  # fmt: skip
    assert pp.row_json(kept[("x0", "e0")]) == {"query": "x0", "positive": "e0", "source": "tatoeba"}
