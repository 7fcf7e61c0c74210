"""More docstring -> code pairs for model v4 (issue 24), written by `prepare_v4_data.py --only more-code`.

From MORE_PACKAGES (code_more_packages.py), pinned wheels over many domains (licences read from each wheel's METADATA:
permissive and no copyleft term, else the package is skipped and listed), into OUT/code-more/:
code-docstring.jsonl.gz, code-docstring-ident.jsonl.gz and per-package.json. OUT/code/ and the existing
PACKAGES stay as they are. Tests, vendored copies and anything named after a held-out package are not read;
a pair is dropped when its code is already an OUT/code pair or a code-search dev text, or its query is a
held-out docstring. Standard library only; deterministic (sorted inputs, seeded samples).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import code_more_packages as packages
import prepare_code_pairs as code
import prepare_selfsup_pairs as selfsup
import prepare_v4_data as v4

MORE_PACKAGES = packages.MORE_PACKAGES
PACKAGE_CAP = 5000  # pairs per package after de-duplication
QUERY_REPEAT = 3  # pairs per docstring summary within a package (transformers copies "Initialize the weights")
SHUFFLE_SEED = 0
# folders of a wheel not read, beside prepare_code_pairs.SKIP_PARTS: tests, vendored copies, the stdlib's distutils
# (setuptools) and tensorflow-probability's generated JAX and NumPy copies of itself (substrates)
MORE_SKIP_PARTS = {"_testing", "vendored", "_vendored", "external", "externals", "extern", "_extern",
                   "third_party", "thirdparty", "_distutils", "array_api_compat", "array_api_extra",
                   "substrates"}  # fmt: skip
COPYLEFT = re.compile(
    r"\b(?:A|L)?GPL\b|General Public|\bMPL\b|Mozilla|\bEPL\b|Eclipse|\bCDDL\b|\bEUPL\b|copyleft", re.I
)
PIP = ["--no-deps", "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
       "--abi", "abi3", "--abi", "none", "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64",
       "--platform", "any"]  # fmt: skip
OUTPUTS = ("code-docstring.jsonl.gz", "code-docstring-ident.jsonl.gz", "per-package.json")


def dist_key(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def find_wheel(cache: Path, name: str, version: str) -> Path | None:
    """The cached wheel of NAME==VERSION (file names spell the distribution in several ways)."""
    for path in sorted(cache.glob("*.whl")):
        dist, release = path.name.split("-")[:2]
        if (dist_key(dist), release) == (dist_key(name), version):
            return path
    return None


def licence_problem(licence: str) -> str:
    """Why LICENCE is not accepted ("" when it is): it must name a permissive licence and no copyleft one."""
    if not v4.PERMISSIVE.search(licence):
        return "not MIT/BSD/Apache/PSF"
    if COPYLEFT.search(licence):
        return "names a copyleft licence"
    return ""


def held_out_parts() -> set[str]:
    """Folder and module names of the held-out packages, with and without a leading underscore."""
    names = {dist_key(name) for name in v4.HELD_OUT}
    return names | {f"_{name}" for name in names}


def skip_member(path: str) -> bool:
    """A wheel member not read: non-Python, tests, vendored or stdlib copies, or a held-out package's name."""
    parts = path.split("/")
    folders = set(parts[:-1]) | {parts[-1].removesuffix(".py")}
    return code.skip_path(path) or bool(MORE_SKIP_PARTS.intersection(parts[:-1]) or held_out_parts() & folders)


def fetch_wheel(cache: Path, name: str, version: str, sha256: str) -> Path:
    """The wheel of NAME==VERSION, downloaded into CACHE when missing; exits on a sha256 mismatch."""
    if find_wheel(cache, name, version) is None:
        v4.log(f"downloading {name}=={version}")
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "-q", *PIP, "-d", str(cache), f"{name}=={version}"]
        subprocess.run(cmd, check=True)
    path = find_wheel(cache, name, version)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        sys.exit(f"{path.name}: sha256 {digest}, expected {sha256}")
    return path


def wheel_units(path: Path, name: str) -> list[code.CodeUnit]:
    units = []
    with zipfile.ZipFile(path) as whl:
        for member in sorted(whl.namelist()):
            if not skip_member(member):
                units += code.code_units(whl.read(member).decode("utf-8", "replace"), f"{name}/{member}")
    return units


def key(text: str) -> str:
    """Comparison form of a query or code text: whitespace squashed, case folded."""
    return code.squash(text).casefold()


def limit_repeats(pairs: list[tuple[str, str]], repeat: int) -> list[tuple[str, str]]:
    """At most REPEAT pairs per query text, the first ones."""
    count: dict[str, int] = {}
    kept = []
    for query, positive in pairs:
        count[key(query)] = count.get(key(query), 0) + 1
        if count[key(query)] <= repeat:
            kept.append((query, positive))
    return kept


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def guard_texts(out: Path, cache: Path) -> tuple[set[str], set[str]]:
    """Query and code keys no new pair may have: the dev set's queries and corpus, every held-out docstring
    summary, and the code of OUT/code's pairs."""
    dev = out / "dev/code_search"
    queries = {key(q["text"]) for q in read_jsonl(dev / "queries.jsonl")}
    codes = {key(d["text"]) for d in read_jsonl(dev / "corpus.jsonl")}
    for name, version, _ in v4.PACKAGES:
        if name in v4.HELD_OUT:
            queries |= {key(u.query) for u in v4.package_units(cache, name, version) if u.query}
    for path in (out / "code/code-docstring.jsonl.gz", out / "code/code-docstring-ident.jsonl.gz"):
        codes |= {key(row["positive"]) for row in read_jsonl(path)}
    return queries, codes


def step_more_code(out: Path, cache: Path) -> None:
    """Write OUT/code-more/ (skipped when all its files exist)."""
    folder = out / "code-more"
    if all((folder / name).exists() for name in OUTPUTS):
        return
    guard_queries, guard_codes = guard_texts(out, cache)
    rows, skipped, train = [], [], []
    seen: set[str] = set()
    dropped = {"held_out_query": 0, "held_out_or_existing_code": 0, "duplicate_code": 0}
    for name, version, sha256, domain in sorted(MORE_PACKAGES):
        path = fetch_wheel(cache, name, version, sha256)
        licence = v4.wheel_licence(path)
        problem = licence_problem(licence)
        if problem:
            skipped.append({"package": name, "version": version, "licence": licence, "reason": problem})
            v4.log(f"skipping {name}: licence {licence!r} {problem}")
            continue
        units = wheel_units(path, name)
        pairs = []
        for query, positive in code.code_pairs(units):
            reason = ("held_out_query" if key(query) in guard_queries else
                      "held_out_or_existing_code" if key(positive) in guard_codes else
                      "duplicate_code" if key(positive) in seen else "")  # fmt: skip
            if reason:
                dropped[reason] += 1
                continue
            seen.add(key(positive))
            pairs.append((query, positive))
        pairs = selfsup.cap_sample(limit_repeats(pairs, QUERY_REPEAT), PACKAGE_CAP, zlib.crc32(name.encode()))
        rows.append({"package": name, "version": version, "licence": licence, "domain": domain, "wheel": path.name,
                     "sha256": sha256, "units": len(units), "pairs": len(pairs)})  # fmt: skip
        v4.log(f"{name}: {len(units)} units, {len(pairs)} pairs")
        train += pairs
    random.Random(SHUFFLE_SEED).shuffle(train)
    v4.log(f"code-more: {len(train)} pairs from {len(rows)} packages, {len(skipped)} skipped, dropped {dropped}")
    v4.write_pairs(folder / "code-docstring.jsonl.gz", train)
    v4.write_pairs(folder / "code-docstring-ident.jsonl.gz", code.ident_variant(train))
    summary = {"pairs": len(train), "package_cap": PACKAGE_CAP, "query_repeat": QUERY_REPEAT, "dropped": dropped,
               "packages": rows, "skipped": skipped}  # fmt: skip
    v4.write_text(folder / "per-package.json", json.dumps(summary, indent=1, ensure_ascii=False) + "\n")


def manifest_entry(out: Path) -> dict | None:
    """The manifest's "code_more" entry: pair counts of OUT/code-more/ and its per-package summary."""
    summary = out / "code-more/per-package.json"
    if not summary.exists():
        return None
    files = sorted((out / "code-more").glob("*.jsonl.gz"))
    counts = {p.relative_to(out).as_posix(): v4.count_lines(p) for p in files}
    return {"files": counts, **json.loads(summary.read_text(encoding="utf-8"))}
