"""Turn a file into text, or say why it was skipped."""

from __future__ import annotations

import codecs
import html
import os
import re
import stat
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

MAX_FILE_BYTES = 20 * 1024 * 1024
TOO_LARGE = f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB"  # the skip reason
BINARY_PROBE_BYTES = 8192
MARKDOWN = {".md", ".markdown", ".mdx"}
HTML = {".html", ".htm", ".xhtml"}
RST = {".rst"}
CODE = {
    ".py", ".pyi", ".js", ".jsx", ".ts", ".tsx", ".java", ".kt", ".c", ".h", ".cc", ".cpp", ".hpp",
    ".cs", ".go", ".rs", ".rb", ".php", ".swift", ".scala", ".sh", ".bash", ".zsh", ".sql", ".r",
    ".lua", ".pl", ".hs", ".ml", ".ex", ".exs", ".erl", ".clj", ".dart", ".m", ".jl", ".css",
}  # fmt: skip


class Skip(Exception):
    """A file that is not indexed; the message is the reason shown to the user."""


@dataclass
class Document:
    """A file's text and what kind of text it is (markdown, rst, code, html, pdf, text)."""

    text: str
    kind: str


def kind_of(path: Path) -> str:
    """The chunking style for a file, from its extension."""
    suffix = path.suffix.lower()
    if suffix in MARKDOWN:
        return "markdown"
    if suffix in RST:
        return "rst"
    if suffix in HTML:
        return "html"
    if suffix in CODE:
        return "code"
    if suffix == ".pdf":
        return "pdf"
    return "text"


class _TextExtractor(HTMLParser):
    """Visible text of an HTML page, one block element per paragraph."""

    BLOCKS = {"p", "div", "br", "li", "tr", "section", "article", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "title"}
    HIDDEN = {"script", "style", "noscript", "template", "svg"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")
            if tag.startswith("h") and len(tag) == 2:
                self.parts.append("#" * int(tag[1]) + " ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN and self.hidden:
            self.hidden -= 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Strip markup, scripts and styles; keep headings as markdown headings."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    text = html.unescape("".join(parser.parts))
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _read_pdf(path: Path) -> str:
    try:
        from pypdf import PdfReader
    except ImportError:
        raise Skip("PDF support needs the pdf extra (pip install 'm2vsearch[pdf]')") from None
    try:
        reader = PdfReader(str(path))
        return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)
    except Exception as exc:  # pypdf raises many types on damaged files
        raise Skip(f"unreadable PDF ({type(exc).__name__})") from None


def read_bytes(path: Path) -> bytes:
    """A regular file's bytes, or Skip when it is too large, not a regular file (a FIFO or device
    put in its place would block or never end) or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise Skip("vanished before it was read") from None
    except OSError as exc:
        raise Skip(f"unreadable ({exc.strerror or type(exc).__name__})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Skip("not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise Skip(TOO_LARGE)
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:  # grown while read
            raise Skip(TOO_LARGE)
        return data
    except OSError as exc:
        raise Skip(f"unreadable ({exc.strerror or type(exc).__name__})") from None
    finally:
        os.close(fd)


# Byte-order marks, longest first (the UTF-32 LE mark starts with the UTF-16 LE one).
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)  # fmt: skip


def decode_text(data: bytes) -> str:
    """Bytes of a text file as str: UTF-8, or UTF-16/32 when a byte-order mark says so; Skip for
    binary data (NUL bytes) and undecodable text."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding)
            except UnicodeDecodeError as exc:
                raise Skip(f"not {encoding.upper()} (bad byte at offset {exc.start + len(bom)})") from None
    if b"\x00" in data[:BINARY_PROBE_BYTES]:
        raise Skip("binary file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Skip(f"not UTF-8 (bad byte at offset {exc.start})") from None


def read_document(path: Path, data: bytes | None = None) -> Document:
    """A file as UTF-8 text (HTML stripped, PDF extracted), or raise Skip with the reason."""
    kind = kind_of(path)
    try:
        if kind == "pdf":
            text = _read_pdf(path)
        else:
            data = read_bytes(path) if data is None else data
            text = decode_text(data)
    except OSError as exc:
        raise Skip(f"unreadable ({exc.strerror or type(exc).__name__})") from None
    if kind == "html":
        text = html_to_text(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise Skip("empty")
    return Document(text, kind)
