"""Readers of the natural parallel text of multilingual v3 (issue 26), used by prepare_parallel.py --v3.

Every GitHub source is read from a bare git mirror at a pinned commit (`git show COMMIT:PATH`), never
from a checkout: OPUS-MT-testsets stores one direction of each language pair as symlinks, which
`GitTree.read` resolves inside the tree. Each reader returns (other-language text, English text)
pairs in file order; prepare_parallel.py de-duplicates, holds out and writes them.
"""

from __future__ import annotations

import posixpath
import random
import re
import subprocess
from pathlib import Path

# XQuAD language -> code per source (None: the source lacks it)
OPUS = {"ar": "ara", "de": "deu", "el": "ell", "es": "spa", "hi": "hin", "ro": "ron", "ru": "rus",
        "th": "tha", "tr": "tur", "vi": "vie", "zh": "zho"}  # fmt: skip
FLORES = {**OPUS, "en": "eng", "zh": "cmn_Hans"}
NTREX = {**OPUS, "ar": "arb", "zh": "zho-CN"}
PUD = {"ar": "Arabic", "de": "German", "es": "Spanish", "hi": "Hindi", "ru": "Russian", "th": "Thai",
       "tr": "Turkish", "zh": "Chinese", "en": "English"}  # fmt: skip
PYDOCS = {"es": "es", "ro": "ro", "tr": "tr", "zh": "zh-cn"}
# Tatoeba lines carry a language label (.labels): keep the standard language, not dialects or romanisations
TATOEBA_LABELS = {"zho": {"cmn_Hans", "cmn_Hant"}}

# (repository, commit, licence) of every pinned GitHub source
OPUS_REPO = ("Helsinki-NLP/OPUS-MT-testsets", "ac0f19c0be3cb4e0d9450fcb2d7a9847c4bdd180")
FLORES_REPO = ("Helsinki-NLP/OPUS-MT-testsets", "5677844c738832a280dc1d59a056a970564bdce3")  # last with dev/
NTREX_REPO = ("MicrosoftTranslator/NTREX", "8561f6a622db9edad1217683e5c83daefd8bb2bf")
PUD_COMMITS = {
    "ar": "be733f45d21f42d506c62930f806ed2182a5ee3d",
    "de": "ff80846ae60a0a70fc4d6251ef73e6a483a620ee",
    "en": "f16eba4ae7f3d161870ed320676c5088b8fa476c",
    "es": "818a82b8628c9cbec78750c7e83ccba34b9ce22b",
    "hi": "8bc630f73e0737ce5ed9eaa97abf11f172ecc9bd",
    "ru": "da5b3816eeaa24283c1d81a48bb1de4d062fc5d5",
    "th": "516638d39adfbc03fa3e7f7b33ce59555055a2d9",
    "tr": "63a134a087c8475ea832713b960baba8ff2f9401",
    "zh": "2849afd946a8c01b3e9acdf3e7afa8670cf2777d",
}
PYDOCS_COMMITS = {
    "es": "91f4ccc0baa8c7cbeb739e696c641388264caa30",  # branch 3.12
    "ro": "b330002cb5ce6db3143101de70b4655ab2f69e52",  # branch 3.13
    "tr": "be1c5a492f430197f4f23bd679d5f65dab68866a",  # branch 3.12
    "zh": "693cf6be2bc17f3d50ee21fe207c6964f3fab130",  # branch 3.13 (master holds no .po files)
}
LICENCES = {
    "tatoeba": "CC BY 2.0 FR (Tatoeba)",
    "tico19": "CC0 (TICO-19)",
    "flores": "CC BY-SA 4.0 (FLORES-200)",
    "ntrex": "CC BY-SA 4.0 (NTREX-128)",
    "pud": "CC BY-SA 3.0 (Universal Dependencies PUD)",
    "pydocs": "CC0 (Python documentation translations)",
}


class GitTree:
    """The files of one commit of a bare git repository (symlinks followed inside the tree)."""

    def __init__(self, git_dir: Path, commit: str) -> None:
        self.git_dir, self.commit = git_dir, commit

    def _git(self, *args: str) -> bytes:
        return subprocess.run(["git", "--git-dir", str(self.git_dir), *args], check=True, capture_output=True).stdout

    def entries(self, folder: str) -> dict[str, str]:
        """name -> mode ('100644', '120000', '040000') of the entries of one folder."""
        out = {}
        for line in self._git("ls-tree", "-z", self.commit, folder.rstrip("/") + "/").split(b"\0"):
            if line:
                meta, path = line.decode().split("\t", 1)
                out[posixpath.basename(path)] = meta.split()[0]
        return out

    def files(self, folder: str) -> list[str]:
        """Every file path under folder (recursively, symlinks excluded)."""
        where = [folder.rstrip("/") + "/"] if folder else []
        raw = self._git("ls-tree", "-r", "-z", self.commit, *where).split(b"\0")
        return sorted(line.decode().split("\t", 1)[1] for line in raw if line and line.split()[0] == b"100644")

    def blob(self, path: str) -> tuple[str, bytes]:
        """(mode, content) of one path; None mode if it does not exist."""
        listing = self._git("ls-tree", "-z", self.commit, path).split(b"\0")[0]
        if not listing:
            return "", b""
        return listing.decode().split()[0], self._git("show", f"{self.commit}:{path}")

    def read(self, path: str, hops: int = 8) -> str | None:
        """The text of a file, following symlinks (relative to their folder) inside the tree."""
        for _ in range(hops):
            mode, content = self.blob(path)
            if mode != "120000":
                return content.decode("utf-8") if mode else None
            path = posixpath.normpath(posixpath.join(posixpath.dirname(path), content.decode()))
        raise ValueError(f"symlink loop at {path}")


def lines(text: str) -> list[str]:
    """Lines split on \\n only (some texts hold U+2028), whitespace-normalised; no trailing empty line."""
    rows = [" ".join(line.split()) for line in text.split("\n")]
    return rows[:-1] if rows and rows[-1] == "" else rows


def zip_lines(
    other: str, english: str, labels: str | None = None, keep: set[str] | None = None
) -> list[tuple[str, str]]:
    """Line-aligned pairs of two files (none if their lengths differ), filtered by language label."""
    a, b = lines(other), lines(english)
    tags = lines(labels) if labels is not None else None
    if len(a) != len(b) or (tags is not None and len(tags) != len(a)):
        return []
    return [(x, y) for i, (x, y) in enumerate(zip(a, b)) if x and y and (tags is None or tags[i] in keep)]


def opus_testsets(tree, lang: str) -> dict[str, list[tuple[str, str]]]:
    """{'tatoeba': pairs, 'tico19': pairs} for one language from testsets/{xxx-eng,eng-xxx}/ (every Tatoeba
    release; WMT news, multi30k and other sets without a stated licence are left out)."""
    code = OPUS[lang]
    out: dict[str, list[tuple[str, str]]] = {"tatoeba": [], "tico19": []}
    for folder in (f"testsets/{code}-eng", f"testsets/eng-{code}"):
        for name in sorted(tree.entries(folder)):
            stem, _, ext = name.rpartition(".")
            source = "tatoeba" if stem.startswith("tatoeba-test-") else "tico19" if stem == "tico19-test" else None
            if source is None or ext != code:
                continue
            labels = tree.read(f"{folder}/{stem}.{code}.labels")
            english = tree.read(f"{folder}/{stem}.eng")
            if english is None:
                continue
            keep = TATOEBA_LABELS.get(code, {code})
            out[source] += zip_lines(tree.read(f"{folder}/{name}"), english, labels, keep)
    return out


def flores_dev(tree, lang: str) -> list[str]:
    """The 997 FLORES-200 dev sentences of one language (devtest is never read)."""
    return lines(tree.read(f"testsets/flores200_dataset/dev/{FLORES[lang]}.dev"))


def flores_documents(tree) -> list[str]:
    """The source URL (document) of each FLORES dev sentence, from metadata_dev.tsv."""
    rows = lines(tree.read("testsets/flores200_dataset/metadata_dev.tsv"))
    return [row.split("\t")[0] for row in rows[1:]]


def ntrex(tree, lang: str) -> list[tuple[str, str]]:
    """NTREX-128: the 1,997 newstest2019 sentences translated from English."""
    other = tree.read(f"NTREX-128/newstest2019-ref.{NTREX[lang]}.txt")
    return zip_lines(other, tree.read("NTREX-128/newstest2019-src.eng.txt")) if other else []


def conllu_texts(text: str) -> dict[str, str]:
    """sent_id -> '# text' of a CoNLL-U file."""
    out, sent_id = {}, None
    for line in text.split("\n"):
        if line.startswith("# sent_id"):
            sent_id = line.split("=", 1)[1].strip()
        elif line.startswith("# text =") and sent_id:
            out[sent_id] = " ".join(line.split("=", 1)[1].split())
    return out


def pud_pairs(other: str, english: str) -> list[tuple[str, str]]:
    """PUD sentences aligned with the English PUD by sentence id."""
    en = conllu_texts(english)
    return [(text, en[sid]) for sid, text in conllu_texts(other).items() if sid in en and text]


PO_FIELD = re.compile(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) "(.*)"$')
PO_ESCAPES = {"n": " ", "t": " ", '"': '"', "\\": "\\"}
ROLE = re.compile(r":[\w:.+-]+:`[~!]?([^`<]*?)\s*(?:<[^`>]*>)?`")  # :func:`os.path`, :ref:`text <label>`
MARKS = re.compile(r"``|\*\*|(?<!\w)\*(?=\S)|(?<=\S)\*(?!\w)|`_{0,2}|\|")


def unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: PO_ESCAPES.get(m.group(1), m.group(1)), text)


def read_po(text: str) -> list[tuple[str, str]]:
    """(msgid, msgstr) of every translated, non-fuzzy, non-obsolete singular entry of a .po file."""
    out = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        current, fuzzy = None, False
        for line in block.split("\n"):
            line = line.strip()
            if line.startswith("#,") and "fuzzy" in line:
                fuzzy = True
            elif match := PO_FIELD.match(line):
                current = match.group(1)
                fields[current] = unquote(match.group(2))
            elif line.startswith('"') and line.endswith('"') and current:
                fields[current] += unquote(line[1:-1])
            elif not line.startswith("#"):
                current = None
        if not fuzzy and fields.get("msgid") and fields.get("msgstr") and "msgid_plural" not in fields:
            out.append((fields["msgid"], fields["msgstr"]))
    return out


def clean_rst(text: str) -> str:
    """Prose without reST roles, literals and emphasis marks."""
    text = MARKS.sub("", ROLE.sub(r"\1", text)).replace("::", ":")
    return " ".join(text.split())


def po_pairs(text: str, min_words: int = 3, max_chars: int = 2000) -> list[tuple[str, str]]:
    """(translation, English) prose pairs of one .po file of the Python documentation: at least
    min_words English words, translated (not a copy of the English), reST markup removed."""
    out = []
    for msgid, msgstr in read_po(text):
        english, other = clean_rst(msgid), clean_rst(msgstr)
        if (
            len(english.split()) >= min_words
            and other
            and other != english
            and max(len(english), len(other)) <= max_chars
        ):
            out.append((other, english))
    return out


def flores_dev_sets(sentences: dict[str, list[str]], documents: list[str], seed: str = "flores-dev") -> dict:
    """The multilingual development sets from FLORES dev, BEIR-style, per task and language:
    {task: {lang: (queries {id: text}, corpus {id: text}, qrels {query id: [doc ids]})}}.

    cross (every language but en): each sentence -> its English translation among all of them;
    mono (every language): one seeded sentence of each document of 2+ sentences -> the rest of that
    document (its paragraph neighbours, joined), among all documents (single-sentence ones whole);
    doc-cross (every language but en): the same queries -> the English rest of their document.
    The chosen sentences are the same in every language."""
    n = len(documents)
    assert all(len(texts) == n for texts in sentences.values()), "FLORES files differ in length"
    docs: dict[str, list[int]] = {}
    for i, url in enumerate(documents):
        docs.setdefault(url, []).append(i)
    rng = random.Random(seed)
    chosen = {url: rng.choice(ids) if len(ids) > 1 else None for url, ids in docs.items()}
    names = {url: f"d{k:03d}" for k, url in enumerate(docs)}

    def passages(lang: str) -> dict[str, str]:
        text = sentences[lang]
        return {names[url]: " ".join(text[i] for i in ids if i != chosen[url]) for url, ids in docs.items()}

    def queries(lang: str) -> dict[str, str]:
        return {f"q{q:03d}": sentences[lang][q] for q in sorted(q for q in chosen.values() if q is not None)}

    qrels = {f"q{q:03d}": [names[url]] for url, q in chosen.items() if q is not None}
    english = [f"s{i:03d}" for i in range(n)]
    out: dict[str, dict] = {"cross": {}, "mono": {}, "doc-cross": {}}
    for lang in sorted(sentences):
        out["mono"][lang] = (queries(lang), passages(lang), qrels)
        if lang != "en":
            cross_q = {f"q{i:03d}": text for i, text in enumerate(sentences[lang])}
            cross_qrels = {f"q{i:03d}": [english[i]] for i in range(n)}
            out["cross"][lang] = (cross_q, dict(zip(english, sentences["en"])), cross_qrels)
            out["doc-cross"][lang] = (queries(lang), passages("en"), qrels)
    return out
