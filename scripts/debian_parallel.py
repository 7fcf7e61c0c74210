"""English <-> other-language paragraph pairs from two translated manuals packaged by Debian bookworm
(multilingual v3, issue 26), used by prepare_parallel.py --debian-docs.

- LibreOffice help (libreoffice-help-*, MPL-2.0): HTML pages under usr/share/libreoffice/help/<lang>/,
  one per help file in every language; paragraphs and headings carry the ids of the source .xhp
  (par_id..., hd_id...), so a translated paragraph is the one with the same id in the same file.
- The Debian Administrator's Handbook (debian-handbook, GPL-2+ or CC BY-SA 3.0): HTML chapters under
  usr/share/doc/debian-handbook/html/<lang>/; paragraphs (<div class="para">) are aligned by their order
  in the chapter, only where both languages' chapter holds the same number of them.

Packages are fetched with `apt-get download PACKAGE=VERSION` into a cache folder and checked against
the pinned sha256; their HTML is read straight from the package's data tar (regular files only: no
symlink is followed and nothing is written out). Markup is stripped to plain text; a pair is kept when
the English has at least 3 words, neither side exceeds 2,000 characters and the other side is neither
empty nor the English (identical, or untranslated but for a cross-reference). Readers return (other,
English, document, paragraph position) in document order.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tarfile
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

CACHE = Path.home() / ".cache" / "m2vsearch" / "debian-debs"
LO_VERSION = "4:7.4.7-1+deb12u14"
HANDBOOK_VERSION = "11.20220922"
# XQuAD language -> the package's language folder (languages the package lacks are left out)
HELP_LANGS = {"de": "de", "el": "el", "es": "es", "hi": "hi", "ru": "ru", "tr": "tr", "vi": "vi", "zh": "zh-CN"}
HANDBOOK_LANGS = {"ar": "ar-MA", "de": "de-DE", "el": "el-GR", "es": "es-ES", "ro": "ro-RO", "ru": "ru-RU",
                  "tr": "tr-TR", "vi": "vi-VN", "zh": "zh-CN"}  # fmt: skip
HELP_ROOT = "usr/share/libreoffice/help"
HANDBOOK_ROOT = "usr/share/doc/debian-handbook/html"
# package -> (version, sha256 of the .deb) of every package read
DEBS = {
    "libreoffice-help-en-us": (LO_VERSION, "8faa840285734d6cfe1ed25537b48f07e74bd6412e3917bf8e5f8a653f7b3712"),
    "libreoffice-help-de": (LO_VERSION, "00490b63c509ac96f7f212d6a6e40452d3e0d1f97ccf4b824dd5ec4c01e8277f"),
    "libreoffice-help-el": (LO_VERSION, "ed4c905d0df5761be817f59381ce7c48fa50ec9cef5737c83e66aa7d3c898f79"),
    "libreoffice-help-es": (LO_VERSION, "9128a84d83d92c8b1c618d90469d16affddb7d1290b09d42a0c5109cb16f0480"),
    "libreoffice-help-hi": (LO_VERSION, "fda6f59354cb79f7ecfe379a502b009119a506aa0873416b044f1f39ad00a4cf"),
    "libreoffice-help-ru": (LO_VERSION, "5a2f75d5b0dfcf660275070647af528a81be28b5d3e9c3ec2d419ef5518db7a2"),
    "libreoffice-help-tr": (LO_VERSION, "8fe832104805b66d2dc5c153564bcc55b5a084e10b3c3a3ea773c4b57659bfb8"),
    "libreoffice-help-vi": (LO_VERSION, "fcc4f84cd28d094f8663d1b68b98a7d562f3c71c8beeb71401c4859f1027aaaf"),
    "libreoffice-help-zh-cn": (LO_VERSION, "db867cdece4c2f9c7eebe65e519c6cf386fdcf49d6e061db3dffec893b3e1dee"),
    "debian-handbook": (HANDBOOK_VERSION, "3d5dbeac1f1afc9c094eab9d0f701f6ecff99c4927d5a4794cf6c85678134faa"),
}
LICENCES = {
    "libreoffice": "MPL-2.0 (LibreOffice help)",
    "debian-handbook": "GPL-2+ or CC BY-SA 3.0 (The Debian Administrator's Handbook)",
}
Pair = tuple[str, str, str, int]  # (other-language text, English text, document, paragraph position)
Attrs = dict[str, str]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
HELP_ID = re.compile(r"(?:par|hd)_id")
WORD = re.compile(r"\w+")


class _Units(HTMLParser):
    """The text of every element that `is_unit` picks, in document order; the content of elements that
    `is_skipped` picks is left out, and a unit inside another one keeps its own text."""

    def __init__(self, is_unit: Callable[[str, Attrs], bool], is_skipped: Callable[[str, Attrs], bool]) -> None:
        super().__init__(convert_charrefs=True)
        self.is_unit, self.is_skipped = is_unit, is_skipped
        self.stack: list[tuple[str, int | None, bool]] = []  # (tag, unit index, skipped)
        self.units: list[tuple[Attrs, list[str]]] = []

    def _current(self) -> int | None:
        for _, unit, skipped in reversed(self.stack):
            if skipped:
                return None
            if unit is not None:
                return unit
        return None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            if tag == "br" and (unit := self._current()) is not None:
                self.units[unit][1].append(" ")
            return
        named = {key: value or "" for key, value in attrs}
        skipped = self.is_skipped(tag, named) or any(s for _, _, s in self.stack)
        unit = None
        if not skipped and self.is_unit(tag, named):
            unit = len(self.units)
            self.units.append((named, []))
        self.stack.append((tag, unit, skipped))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth][0] == tag:  # closes it and whatever was left open inside it
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        if (unit := self._current()) is not None:
            self.units[unit][1].append(data)


def units(
    html: str, is_unit: Callable[[str, Attrs], bool], is_skipped: Callable[[str, Attrs], bool]
) -> list[tuple[Attrs, str]]:
    """(attributes, plain text with whitespace collapsed) of the picked elements of an HTML page."""
    parser = _Units(is_unit, is_skipped)
    parser.feed(html)
    parser.close()
    return [(attrs, " ".join("".join(parts).split())) for attrs, parts in parser.units]


def copied(other: str, english: str, share: float = 0.8) -> bool:
    """Whether `other` is (nearly) the English left untranslated: at least `share` of its words (\\w+,
    case-folded) are words of the English side (untranslated paragraphs differ by a cross-reference)."""
    words, known = WORD.findall(other.casefold()), set(WORD.findall(english.casefold()))
    return bool(words) and sum(word in known for word in words) >= share * len(words)


def keep(other: str, english: str, min_words: int = 3, max_chars: int = 2000) -> bool:
    """A pair worth training on: both sides present, at least min_words English words, translated
    (neither identical to the English nor a near copy of it) and no side longer than max_chars."""
    return bool(
        other
        and len(english.split()) >= min_words
        and max(len(other), len(english)) <= max_chars
        and other != english
        and not copied(other, english)
    )


def _help_skipped(tag: str, attrs: Attrs) -> bool:
    # system/application variants are hidden spans: keep the default one (Windows/Linux, any module)
    hidden = "hidden" in attrs and not attrs.get("id", "").startswith("default")
    return hidden or tag in {"script", "style", "pre"}


def help_paragraphs(html: str) -> list[tuple[str, str]]:
    """(key, text) of the paragraphs and headings of a LibreOffice help page; the key is the .xhp
    paragraph id, with '#n' added to its n-th repeat in the page (embedded sections)."""
    out, seen = [], {}
    for attrs, text in units(html, lambda tag, a: bool(HELP_ID.match(a.get("id", ""))), _help_skipped):
        pid = attrs["id"]
        seen[pid] = seen.get(pid, 0) + 1
        out.append((pid if seen[pid] == 1 else f"{pid}#{seen[pid]}", text))
    return out


def help_pairs(other_html: str, english_html: str, doc: str) -> list[Pair]:
    """One help page's paragraphs aligned by id with the English page's (position: in the English page)."""
    other = dict(help_paragraphs(other_html))
    return [
        (other[key], english, doc, pos)
        for pos, (key, english) in enumerate(help_paragraphs(english_html))
        if key in other and keep(other[key], english)
    ]


def handbook_paragraphs(html: str) -> list[str]:
    """The text of every <div class="para"> of a Handbook chapter, in order (screens/listings left out)."""
    is_para = lambda tag, a: tag == "div" and "para" in a.get("class", "").split()
    return [text for _, text in units(html, is_para, lambda tag, a: tag in {"script", "style", "pre"})]


def handbook_pairs(other_html: str, english_html: str, doc: str) -> list[Pair]:
    """One chapter's paragraphs aligned by order; none when the paragraph counts differ."""
    other, english = handbook_paragraphs(other_html), handbook_paragraphs(english_html)
    if len(other) != len(english):
        return []
    return [(o, e, doc, pos) for pos, (o, e) in enumerate(zip(other, english)) if keep(o, e)]


def aligned(
    other: dict[str, str], english: dict[str, str], reader: Callable[[str, str, str], list[Pair]]
) -> list[Pair]:
    """Pairs of every document found in both languages ({document: HTML}), documents in sorted order."""
    return [pair for doc in sorted(english) if doc in other for pair in reader(other[doc], english[doc], doc)]


def deb_html(deb: Path, folders: dict[str, str]) -> dict[str, dict[str, str]]:
    """{key: {document: HTML}} of the .html files under each folder (key -> folder) of a package's data,
    read from its tar stream: regular files only (symlinks, hard links and devices are ignored)."""
    out: dict[str, dict[str, str]] = {key: {} for key in folders}
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if not member.isfile() or not name.endswith(".html") or ".." in name.split("/"):
                    continue
                for key, folder in folders.items():
                    prefix = folder.rstrip("/") + "/"
                    if name.startswith(prefix):
                        out[key][name[len(prefix) :]] = tar.extractfile(member).read().decode("utf-8")
        proc.stdout.read()  # the tar's padding: dpkg-deb ends without a broken pipe
    finally:
        proc.stdout.close()
        returncode = proc.wait()
    if returncode:
        raise RuntimeError(f"dpkg-deb --fsys-tarfile {deb} failed ({returncode})")
    return out


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_deb(package: str, cache: Path = CACHE) -> Path:
    """The pinned .deb of `package` in `cache` (apt-get download PACKAGE=VERSION once), sha256 checked."""
    version, digest = DEBS[package]
    cache.mkdir(parents=True, exist_ok=True)
    name = f"{package}_{version.replace(':', '%3a')}_all.deb"
    if not (cache / name).is_file():
        subprocess.run(["apt-get", "download", "-q", f"{package}={version}"], cwd=cache, check=True)
    if sha256(cache / name) != digest:
        raise SystemExit(f"{cache / name}: sha256 differs from the pinned {digest}")
    return cache / name


def record(name: str, package: str, files: str, lang: str | None = None) -> dict:
    """The manifest's record of one package read."""
    version, digest = DEBS[package]
    lang_field = {"lang": lang} if lang else {}
    return {"name": name, **lang_field, "package": package, "version": version, "sha256": digest,
            "licence": LICENCES[name], "files": files}  # fmt: skip


def debian_docs(langs: list[str], cache: Path = CACHE) -> tuple[dict[str, list[tuple]], list[dict]]:
    """lang -> (other, English, source, document, position) rows, LibreOffice help's ('libreoffice')
    then the Handbook's ('debian-handbook'), and the manifest's records of the packages read."""
    out: dict[str, list[tuple]] = {lang: [] for lang in langs}
    records: list[dict] = []
    helped = [lang for lang in langs if lang in HELP_LANGS]
    if helped:
        english_deb = fetch_deb("libreoffice-help-en-us", cache)
        english = deb_html(english_deb, {"en": f"{HELP_ROOT}/en-US"})["en"]
        records.append(record("libreoffice", "libreoffice-help-en-us", f"{HELP_ROOT}/en-US/**/*.html", "en"))
    for lang in helped:
        package = f"libreoffice-help-{HELP_LANGS[lang].lower()}"
        folder = f"{HELP_ROOT}/{HELP_LANGS[lang]}"
        other = deb_html(fetch_deb(package, cache), {lang: folder})[lang]
        out[lang] += [(o, e, "libreoffice", doc, pos) for o, e, doc, pos in aligned(other, english, help_pairs)]
        records.append(record("libreoffice", package, f"{folder}/**/*.html (paragraphs by .xhp id)", lang))
    booked = [lang for lang in langs if lang in HANDBOOK_LANGS]
    if booked:
        folders = {
            "en": f"{HANDBOOK_ROOT}/en-US",
            **{lang: f"{HANDBOOK_ROOT}/{HANDBOOK_LANGS[lang]}" for lang in booked},
        }
        chapters = deb_html(fetch_deb("debian-handbook", cache), folders)
        for lang in booked:
            rows = aligned(chapters[lang], chapters["en"], handbook_pairs)
            out[lang] += [(o, e, "debian-handbook", doc, pos) for o, e, doc, pos in rows]
        languages = ",".join(["en-US", *(HANDBOOK_LANGS[lang] for lang in booked)])
        records.append(record("debian-handbook", "debian-handbook",
                              f"{HANDBOOK_ROOT}/{{{languages}}}/*.html (div.para by order, equal counts only)"))  # fmt: skip
    return out, records
