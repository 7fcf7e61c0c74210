"""Build English <-> other-language parallel pairs from Debian (training data for cross-lingual search).

    python scripts/prepare_parallel.py OUT [--langs de,es,...] [--holdout 500]

Two sources, both from the Debian bookworm mirror (deb.debian.org), both DFSG-free:
  1. package-description translations (dists/bookworm/main/i18n/Translation-<lang>), paired
     with the English descriptions through their Description-md5;
  2. the gettext catalogues (.mo) of the packages in PACKAGES: every msgid (English) with its
     msgstr, markup and accelerators removed, at least two words long.
Writes OUT/train-<lang>.jsonl and OUT/holdout-<lang>.jsonl ({"query": other, "positive": english}),
so no English text of a held-out pair is in training, and for languages with at least 3x --dev
translated package descriptions, dev sets from descriptions held out whole: dev-mono-<lang>.jsonl
(short description -> long description, both in <lang>) and dev-cross-<lang>.jsonl (short in <lang>
-> long in English). Downloads are cached in OUT/download/.

    python scripts/prepare_parallel.py OUT --v3 --mirrors DIR [--langs ...] [--holdout 500]

Multilingual v3 (issue 26): natural parallel text from pinned GitHub snapshots (bare git mirrors
DIR/<owner>+<name>/repo or DIR/<owner>+<name>.git; readers in parallel_sources.py) - Tatoeba and
TICO-19 from OPUS-MT-testsets, NTREX-128, Parallel Universal Dependencies, the Python documentation
translations - written as OUT/train-<lang>.jsonl and OUT/holdout-<lang>.jsonl ({"query": other,
"positive": english, "source"}), the FLORES-200 dev sets OUT/dev/<task>/<lang>/ (BEIR layout; no
FLORES dev sentence is in any pair; devtest is never read) and OUT/manifest.json. With --debian-docs,
also LibreOffice help and the Debian Administrator's Handbook (pinned Debian packages, cached in
--debs; readers in debian_parallel.py): their rows add "doc" (help file / chapter) and "pos" (paragraph).
"""

from __future__ import annotations

import argparse
import bz2
import gettext
import hashlib
import json
import lzma
import os
import random
import re
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import debian_parallel as dp
import parallel_sources as ps

MIRROR = "http://deb.debian.org/debian/dists/bookworm/main/i18n"
LANGS = ["ar", "de", "el", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"]
LOCALE_DIRS = {"zh": ["zh_CN", "zh_TW", "zh_HK", "zh"]}
PACKAGES = [
    "libgtk-3-common",
    "vlc-l10n",
    "gimp-data",
    "gnome-control-center-data",
    "nautilus-data",
    "evolution-data-server-common",
    "libglib2.0-data",
    "gnome-shell-common",
    "util-linux-locales",
    "coreutils",
    "apt",
    "dpkg",
    "tar",
    "gettext",
    "iso-codes",
    "inkscape",
    "gnucash-common",
    "gedit-common",
    "totem-common",
    "gnome-software-common",
    "rhythmbox-data",
    "xfce4-panel",
    "thunar-data",
    "shotwell-common",
    "transmission-common",
    "gparted",
    "evolution-common",
    "gnome-calendar",
    "gnome-maps",
    "gnome-weather",
    "gnome-clocks",
    "gnome-contacts",
    "libgweather-4-common",
    "gnome-disk-utility",
    "gnome-system-monitor",
    "file-roller",
    "eog",
    "evince-common",
    "baobab",
    "gnome-terminal-data",
    "cheese-common",
    "simple-scan",
    "gnome-online-accounts",
    "libgnome-desktop-3-20",
    "mousepad",
    "ristretto",
    "xfce4-settings",
    "network-manager",
    "network-manager-gnome",
    "pulseaudio",
    "gnupg-l10n",
    "aptitude-common",
    "synaptic",
    "brasero-common",
    "gnome-builder",
    "geany-common",
    "audacious",
    "pidgin-data",
    "hexchat-common",
    "filezilla-common",
    "gramps",
    "anki",
    "kdenlive-data",
    "digikam-data",
    "scribus-data",
    "gwenview",
    "okular",
    "dolphin",
    "konsole",
    "kate-data",
    "krita-data",
]
MARKUP = re.compile(r"<[^>]+>|%[-+ #0]*\d*(?:\.\d+)?[a-zA-Z]|%\(\w+\)[a-z]|\{\w*\}|\\n|\s+")


def fetch(url: str, dest: Path) -> Path:
    """Download url to dest once."""
    if not dest.exists():
        with urllib.request.urlopen(url, timeout=120) as response:
            dest.write_bytes(response.read())
    return dest


def read_translations(raw: str, lang_field: str) -> dict[str, tuple[str, str]]:
    """Description-md5 -> (short, long) description of one Translation file."""
    out: dict[str, tuple[str, str]] = {}
    for record in raw.split("\n\n"):
        md5 = text = None
        lines = record.split("\n")
        for i, line in enumerate(lines):
            if line.startswith("Description-md5: "):
                md5 = line.split(": ", 1)[1].strip()
            elif line.startswith(f"Description-{lang_field}: "):
                body = [line.split(": ", 1)[1]]
                for more in lines[i + 1 :]:
                    if not more.startswith(" "):
                        break
                    body.append("" if more.strip() == "." else more.strip())
                text = (body[0].strip(), " ".join(part for part in body[1:] if part))
        if md5 and text and text[0] and text[1]:
            out[md5] = text
    return out


def descriptions(download: Path, lang: str) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """((short, long) in `lang`, (short, long) in English) of every translated package description."""
    english = read_translations(
        lzma.decompress(fetch(f"{MIRROR}/Translation-en.xz", download / "Translation-en.xz").read_bytes()).decode(),
        "en",
    )
    pairs = []
    for code in LOCALE_DIRS.get(lang, [lang]):
        try:
            raw = fetch(f"{MIRROR}/Translation-{code}.bz2", download / f"Translation-{code}.bz2")
        except Exception:  # noqa: BLE001 - most languages have no file
            continue
        other = read_translations(bz2.decompress(raw.read_bytes()).decode(), code)
        pairs += [(text, english[md5]) for md5, text in sorted(other.items()) if md5 in english]
    return pairs


def clean(text: str) -> str:
    """A UI string without markup, accelerators or format placeholders."""
    text = MARKUP.sub(" ", text.replace("_", "").replace("&", ""))
    return " ".join(text.split())


def catalogue_pairs(download: Path) -> dict[str, list[tuple[str, str]]]:
    """lang -> (other, english) strings from the gettext catalogues of PACKAGES."""
    debs = download / "debs"
    debs.mkdir(exist_ok=True)
    for package in PACKAGES:
        if not list(debs.glob(f"{package}_*.deb")):
            subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True)
    by_lang: dict[str, dict[str, str]] = {lang: {} for lang in LANGS}
    wanted = {code: lang for lang in LANGS for code in LOCALE_DIRS.get(lang, [lang])}
    for deb in sorted(debs.glob("*.deb")):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
            for mo in sorted(Path(tmp).glob("usr/share/locale/*/LC_MESSAGES/*.mo")):
                lang = wanted.get(mo.parent.parent.name)
                if lang is None:
                    continue
                try:
                    with mo.open("rb") as handle:
                        catalogue = gettext.GNUTranslations(handle)._catalog  # noqa: SLF001
                except Exception:  # noqa: BLE001 - a damaged catalogue is skipped
                    continue
                for msgid, msgstr in catalogue.items():
                    if not isinstance(msgid, str) or not msgid or not msgstr:
                        continue
                    english, other = clean(msgid.split("\x04")[-1]), clean(msgstr)
                    if len(english.split()) >= 2 and other and other != english:
                        by_lang[lang].setdefault(english, other)
    return {lang: [(other, english) for english, other in strings.items()] for lang, strings in by_lang.items()}


def mirror(mirrors: Path, repo: str, commit: str) -> Path:
    """The bare git mirror of a GitHub repository under `mirrors`, checked to hold `commit`."""
    name = repo.replace("/", "+")
    for git_dir in (mirrors / name / "repo", mirrors / f"{name}.git", mirrors / name):
        if (git_dir / "HEAD").is_file():
            if subprocess.run(["git", "--git-dir", str(git_dir), "cat-file", "-e", f"{commit}^{{commit}}"]).returncode:
                raise SystemExit(f"{git_dir} lacks commit {commit}")
            return git_dir
    raise SystemExit(f"no mirror of {repo}: git clone --mirror https://github.com/{repo} {mirrors / name}.git")


def natural_pairs(mirrors: Path, langs: list[str]) -> tuple[dict[str, list[tuple[str, str, str]]], list[dict]]:
    """lang -> (other, english, source) pairs of every v3 source, and the manifest's source records."""
    opus = ps.GitTree(mirror(mirrors, *ps.OPUS_REPO), ps.OPUS_REPO[1])
    ntrex = ps.GitTree(mirror(mirrors, *ps.NTREX_REPO), ps.NTREX_REPO[1])
    pud_en = ps.GitTree(
        mirror(mirrors, "UniversalDependencies/UD_English-PUD", ps.PUD_COMMITS["en"]), ps.PUD_COMMITS["en"]
    )
    english_pud = pud_en.read("en_pud-ud-test.conllu")
    sources = [{"name": name, "repo": ps.OPUS_REPO[0], "commit": ps.OPUS_REPO[1], "licence": ps.LICENCES[name],
                "files": f"testsets/{{xxx-eng,eng-xxx}}/{pattern} (symlinks resolved in the tree)"}
               for name, pattern in (("tatoeba", "tatoeba-test-v*"), ("tico19", "tico19-test.*"))]  # fmt: skip
    sources.append({"name": "ntrex", "repo": ps.NTREX_REPO[0], "commit": ps.NTREX_REPO[1],
                    "licence": ps.LICENCES["ntrex"], "files": "NTREX-128/newstest2019-{src.eng,ref.xxx}.txt"})  # fmt: skip
    sources.append({"name": "pud", "repo": "UniversalDependencies/UD_English-PUD", "commit": ps.PUD_COMMITS["en"],
                    "licence": ps.LICENCES["pud"], "files": "en_pud-ud-test.conllu (the English side)"})  # fmt: skip
    out: dict[str, list[tuple[str, str, str]]] = {}
    for lang in langs:
        rows = [(o, e, name) for name, pairs in ps.opus_testsets(opus, lang).items() for o, e in pairs]
        rows += [(o, e, "ntrex") for o, e in ps.ntrex(ntrex, lang)]
        if lang in ps.PUD:
            repo = f"UniversalDependencies/UD_{ps.PUD[lang]}-PUD"
            tree = ps.GitTree(mirror(mirrors, repo, ps.PUD_COMMITS[lang]), ps.PUD_COMMITS[lang])
            rows += [(o, e, "pud") for o, e in ps.pud_pairs(tree.read(f"{lang}_pud-ud-test.conllu"), english_pud)]
            sources.append({"name": "pud", "lang": lang, "repo": repo, "commit": ps.PUD_COMMITS[lang],
                            "licence": ps.LICENCES["pud"], "files": f"{lang}_pud-ud-test.conllu"})  # fmt: skip
        if lang in ps.PYDOCS:
            repo, commit = f"python/python-docs-{ps.PYDOCS[lang]}", ps.PYDOCS_COMMITS[lang]
            tree = ps.GitTree(mirror(mirrors, repo, commit), commit)
            for path in (path for path in tree.files("") if path.endswith(".po")):
                rows += [(o, e, "pydocs") for o, e in ps.po_pairs(tree.read(path))]
            sources.append({"name": "pydocs", "lang": lang, "repo": repo, "commit": commit,
                            "licence": ps.LICENCES["pydocs"], "files": "**/*.po (msgid -> msgstr, reST removed)"})  # fmt: skip
        out[lang] = rows
    return out, sources


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_dev(folder: Path, queries: dict[str, str], corpus: dict[str, str], qrels: dict[str, list[str]]) -> None:
    """One BEIR-layout set (corpus.jsonl, queries.jsonl, qrels.tsv)."""
    from m2vsearch.eval.datasets import write_beir

    write_beir(folder, [{"_id": did, "title": "", "text": text} for did, text in corpus.items()],
               [{"_id": qid, "text": text} for qid, text in queries.items()],
               [(q, d) for q, docs in qrels.items() for d in docs])  # fmt: skip


def split_pairs(rows, blocked: set[str], holdout: int, seed: str) -> tuple[list[tuple], list[tuple], int]:
    """(train, held out, dropped for the dev set): unique pairs (first source wins, with whatever follows
    its source in its row), none with a dev text; a seeded `holdout` of them held out, and no train pair
    shares a text with a held-out one."""
    first: dict[tuple[str, str], tuple] = {}
    dropped = 0
    for other, english, *rest in rows:
        if other in blocked or english in blocked:
            dropped += 1
        elif other != english:
            first.setdefault((other, english), tuple(rest))
    unique = sorted((o, e, *rest) for (o, e), rest in first.items())  # (o, e) unique: rest never compared
    random.Random(seed).shuffle(unique)
    held = unique[:holdout]
    held_texts = {text for o, e, *_ in held for text in (o, e)}
    train = [row for row in unique[holdout:] if row[0] not in held_texts and row[1] not in held_texts]
    return train, held, dropped


def row_json(row: tuple) -> dict:
    """One output line: query, positive, source, and doc/pos where the source gives them."""
    out = {"query": row[0], "positive": row[1], "source": row[2]}
    if len(row) > 3:
        out.update(doc=row[3], pos=row[4])
    return out


def build_v3(out: Path, mirrors: Path, langs: list[str], holdout: int, debs: Path | None = None) -> dict:
    """Write the v3 pairs (plus the Debian manuals' with `debs`, their package cache), the FLORES dev
    sets and OUT/manifest.json; return the manifest."""
    flores = ps.GitTree(mirror(mirrors, *ps.FLORES_REPO), ps.FLORES_REPO[1])
    sentences = {lang: ps.flores_dev(flores, lang) for lang in ["en", *langs]}
    blocked = {text for texts in sentences.values() for text in texts}
    dev = ps.flores_dev_sets(sentences, ps.flores_documents(flores))
    dev_sizes: dict[str, dict] = {}
    for task, per_lang in dev.items():
        for lang, (queries, corpus, qrels) in per_lang.items():
            write_dev(out / "dev" / task / lang, queries, corpus, qrels)
            dev_sizes.setdefault(task, {})[lang] = {"queries": len(queries), "corpus": len(corpus)}
    pairs, sources = natural_pairs(mirrors, langs)
    if debs is not None:
        manuals, records = dp.debian_docs(langs, debs)
        for lang in langs:
            pairs[lang] += manuals[lang]
        sources += records
    sources.append({"name": "flores-dev", "repo": ps.FLORES_REPO[0], "commit": ps.FLORES_REPO[1],
                    "licence": ps.LICENCES["flores"], "files": "testsets/flores200_dataset/{dev/*.dev,metadata_dev.tsv}",
                    "use": "development only (devtest untouched)"})  # fmt: skip
    counts, held_counts, dropped = {}, {}, {}
    for lang in langs:
        train, held, dropped[lang] = split_pairs(pairs[lang], blocked, holdout, f"v3-{lang}")
        for name, rows in (("train", train), ("holdout", held)):
            write_jsonl(out / f"{name}-{lang}.jsonl", [row_json(row) for row in rows])
        counts[lang] = {src: sum(1 for row in train if row[2] == src) for src in sorted({r[2] for r in train})}
        held_counts[lang] = len(held)
        print(f"{lang}: {len(train)} train {counts[lang]}, {len(held)} held out, {dropped[lang]} dropped (dev text)")
    manifest = {"sources": sources, "train_pairs": counts, "holdout_pairs": held_counts, "dropped_dev_text": dropped,
                "dev": dev_sizes, "holdout": holdout, "langs": langs}  # fmt: skip
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--langs", default=",".join(LANGS))
    parser.add_argument("--holdout", type=int, default=500, help="held-out pairs per language")
    parser.add_argument("--dev", type=int, default=300, help="package descriptions held out per language as dev")
    parser.add_argument("--download", type=Path, help="download cache (default: OUT/download)")
    parser.add_argument("--v3", action="store_true", help="natural parallel text and FLORES dev sets (issue 26)")
    parser.add_argument("--mirrors", type=Path, default=Path(os.environ.get("M2VSEARCH_MIRRORS", "/work/.mirror")))
    parser.add_argument("--debian-docs", action="store_true", help="with --v3: add LibreOffice help and the Handbook")
    parser.add_argument("--debs", type=Path, default=dp.CACHE, help="cache of the .deb packages of --debian-docs")
    args = parser.parse_args()
    if args.debian_docs and not args.v3:
        parser.error("--debian-docs needs --v3")
    if args.v3:
        args.out.mkdir(parents=True, exist_ok=True)
        langs = [lang for lang in args.langs.split(",") if lang]
        build_v3(args.out, args.mirrors, langs, args.holdout, args.debs if args.debian_docs else None)
        return
    download = args.download or args.out / "download"
    download.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    langs = [lang for lang in args.langs.split(",") if lang]
    catalogues = catalogue_pairs(download)
    for lang in langs:
        described = sorted(set(descriptions(download, lang)))
        random.Random(f"dev-{lang}").shuffle(described)
        dev = described[: args.dev] if len(described) >= 3 * args.dev else []
        dev_english = {english for _, english in dev}
        pairs = [(f"{o[0]} {o[1]}", f"{e[0]} {e[1]}") for o, e in described if e not in dev_english]
        dev_texts = {t for o, e in dev for t in (*o, *e)}
        pairs += [pair for pair in catalogues.get(lang, []) if pair[0] not in dev_texts and pair[1] not in dev_texts]
        unique = sorted(set(pairs))
        random.Random(lang).shuffle(unique)
        held_english = {english for _, english in unique[: args.holdout]}
        holdout = unique[: args.holdout]
        train = [pair for pair in unique[args.holdout :] if pair[1] not in held_english]
        outputs = {"train": train, "holdout": holdout}
        if dev:  # package descriptions held out whole: short description -> long one, same language or English
            outputs["dev-mono"] = [(o[0], o[1]) for o, _ in dev]
            outputs["dev-cross"] = [(o[0], e[1]) for o, e in dev]
        for name, rows in outputs.items():
            with (args.out / f"{name}-{lang}.jsonl").open("w", encoding="utf-8") as handle:
                for other, english in rows:
                    handle.write(json.dumps({"query": other, "positive": english}, ensure_ascii=False) + "\n")
        print(f"{lang}: {len(train)} train, {len(holdout)} held out, {len(dev)} dev descriptions")
    sums = [f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(download)}"
            for path in sorted(download.rglob("*")) if path.is_file()]  # fmt: skip
    (args.out / "sources.sha256").write_text("\n".join(sums) + "\n")  # what these pairs were made from


if __name__ == "__main__":
    main()
