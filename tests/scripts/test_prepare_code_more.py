"""prepare_code_more.py (issue 24's extra code pairs) on tiny wheels written here."""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
import textwrap
import zipfile
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


sys.path.insert(0, str(SCRIPTS))
import prepare_code_more as more  # noqa: E402
import prepare_v4_data as v4  # noqa: E402


def function(name: str, doc: str, body: str = "total = 0\nfor x in items:\n    total += x\nreturn total") -> str:
    """Source of one function with docstring DOC and BODY (two statements or more: a trainable unit)."""
    return f'def {name}(items):\n    """{doc}"""\n' + textwrap.indent(body, "    ") + "\n\n\n"


def make_wheel(cache: Path, name: str, licence: str, files: dict[str, str]) -> str:
    """Write NAME-1.0-py3-none-any.whl into CACHE with a METADATA licence; return its sha256."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        meta = f"Metadata-Version: 2.4\nName: {name}\nVersion: 1.0\nLicense-Expression: {licence}\n\n"
        whl.writestr(f"{name}-1.0.dist-info/METADATA", meta)
        for member, source in files.items():
            whl.writestr(member, source)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_pairs(path: Path) -> list[tuple[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [(row["query"], row["positive"]) for row in map(json.loads, handle)]


def test_skip_member():
    for path in ["pkg/_vendor/six.py", "pkg/vendor/x.py", "skimage/_vendored/x.py", "sklearn/externals/x.py",
                 "IPython/external/x.py", "astropy/extern/x.py", "setuptools/_distutils/core.py",
                 "scipy/_lib/array_api_compat/x.py", "tensorflow_probability/substrates/jax/x.py", "pandas/_testing/x.py", "pkg/tests/x.py", "pkg/test_x.py",
                 "typer/_click/core.py", "pkg/networkx/algo.py", "pkg/boltons.py", "pkg/data.json"]:  # fmt: skip
        assert more.skip_member(path), path
    for path in ["pkg/util.py", "openpyxl/workbook/external_link/x.py", "pandas/compat/x.py", "pkg/clicker.py"]:
        assert not more.skip_member(path), path


def test_licence_problem():
    for licence in ["MIT", "Apache-2.0 OR BSD-3-Clause", "MIT OR AFL-2.1", "Freely Distributable / BSD License"]:
        assert more.licence_problem(licence) == "", licence
    assert more.licence_problem("MPL-2.0 AND MIT") == "names a copyleft licence"
    assert more.licence_problem("Public Domain / BSD License / GNU General Public License (GPL)")
    assert more.licence_problem("ISC") == more.licence_problem("") == "not MIT/BSD/Apache/PSF"
    assert more.licence_problem("LGPL-2.1-or-later")


def test_find_wheel_normalises_names(tmp_path):
    for name in ["ruamel.yaml-0.18.6-py3-none-any.whl", "scikit_learn-1.9.1-cp311-cp311-manylinux.whl"]:
        (tmp_path / name).write_bytes(b"")
    assert more.find_wheel(tmp_path, "ruamel-yaml", "0.18.6").name.startswith("ruamel.yaml")
    assert more.find_wheel(tmp_path, "scikit-learn", "1.9.1").name.startswith("scikit_learn")
    assert more.find_wheel(tmp_path, "scikit-learn", "1.9") is None


def test_limit_repeats():
    pairs = [("Initialize the  weights", f"code {i}") for i in range(5)] + [("Other query here", "code x")]
    assert more.limit_repeats(pairs, 2) == [pairs[0], pairs[1], pairs[5]]


def build(tmp_path: Path, monkeypatch, out: Path) -> tuple[Path, dict[str, str]]:
    """Tiny held-out, dev, existing-code and new-package data; runs step_more_code into OUT."""
    cache = tmp_path / "wheels"
    fresh = function("mean_of", "Compute the arithmetic mean of all items.", "n = len(items)\nreturn sum(items) / n")
    in_dev = function("dev_code", "Some docstring that only names it.", "a = 1\nreturn a + len(items)")
    held_query = function("count_edges", "Count the edges of the graph given.", "m = 0\nreturn m + len(items)")
    vendored = function("vendored_fn", "A vendored helper that is never read.", "v = 1\nreturn v * len(items)")
    existing = function("old_one", "Already a pair of the first code set.", "z = 2\nreturn z - len(items)")
    twin = function("sum_up", "Add up all the values in the list.")
    sources = {
        "alpha/core.py": fresh + in_dev + held_query + twin,
        "alpha/_vendor/six.py": vendored,
        "alpha/tests/test_core.py": function("helper", "A test helper function for the tests."),
        "alpha/_heldpkg/copy.py": function("copied", "Code copied from the held-out package."),
    }
    shas = {
        "alpha": make_wheel(cache, "alpha", "MIT", sources),
        "beta": make_wheel(
            cache, "beta", "MPL-2.0 AND MIT", {"beta/x.py": function("b_fn", "A copyleft function here.")}
        ),
        "gamma": make_wheel(cache, "gamma", "BSD-3-Clause", {"gamma/m.py": twin + existing}),
        "heldpkg": make_wheel(cache, "heldpkg", "MIT", {"heldpkg/g.py": held_query}),
    }
    monkeypatch.setattr(v4, "PACKAGES", [("heldpkg", "1.0", shas["heldpkg"])])
    monkeypatch.setattr(v4, "HELD_OUT", ["heldpkg"])
    packages = [("gamma", "1.0", shas["gamma"], "misc"), ("alpha", "1.0", shas["alpha"], "web"),
                ("beta", "1.0", shas["beta"], "devtools")]  # fmt: skip
    monkeypatch.setattr(more, "MORE_PACKAGES", packages)
    dev = out / "dev/code_search"
    dev.mkdir(parents=True)
    (dev / "queries.jsonl").write_text(json.dumps({"_id": "q0", "text": "Unrelated dev query text."}) + "\n")
    dev_unit = next(u for u in more.code.code_units(in_dev, "x") if u.name == "dev_code")
    (dev / "corpus.jsonl").write_text(json.dumps({"_id": "d0", "title": "", "text": dev_unit.code}) + "\n")
    old = more.code.code_units(existing, "x")
    v4.write_pairs(out / "code/code-docstring.jsonl.gz", [(u.query, u.code) for u in old])
    v4.write_pairs(out / "code/code-docstring-ident.jsonl.gz", [])
    more.step_more_code(out, cache)
    return cache, {"fresh": fresh, "twin": twin}


def test_step_more_code(tmp_path, monkeypatch):
    out = tmp_path / "out"
    cache, sources = build(tmp_path, monkeypatch, out)
    pairs = read_pairs(out / "code-more/code-docstring.jsonl.gz")
    # alpha comes first (sorted): its twin wins, gamma's copy is a duplicate; the dev code, the held-out
    # query, the existing pair, vendored, test and held-out-named folders and beta (MPL) give nothing
    assert sorted(q for q, _ in pairs) == [
        "Add up all the values in the list.",
        "Compute the arithmetic mean of all items.",
    ]
    assert all('"""' not in code for _, code in pairs)
    summary = json.loads((out / "code-more/per-package.json").read_text())
    assert [(r["package"], r["licence"], r["pairs"]) for r in summary["packages"]] == [("alpha", "MIT", 2), ("gamma", "BSD-3-Clause", 0)]  # fmt: skip
    assert summary["skipped"] == [{"package": "beta", "version": "1.0", "licence": "MPL-2.0 AND MIT", "reason": "names a copyleft licence"}]  # fmt: skip
    assert summary["dropped"] == {"held_out_query": 1, "held_out_or_existing_code": 2, "duplicate_code": 1}
    ident = read_pairs(out / "code-more/code-docstring-ident.jsonl.gz")
    assert ("Compute the arithmetic mean of all items.", "def mean of(items):\n    n = len(items)\n    return sum(items) / n") in ident  # fmt: skip
    # a second run into another folder is byte-identical
    again = tmp_path / "again"
    for name in ["dev", "code"]:
        (again / name).parent.mkdir(parents=True, exist_ok=True)
        (again / name).symlink_to(out / name)
    more.step_more_code(again, cache)
    for name in more.OUTPUTS:
        assert (again / "code-more" / name).read_bytes() == (out / "code-more" / name).read_bytes()


def test_manifest_keeps_code_more_apart(tmp_path, monkeypatch):
    out = tmp_path / "out"
    build(tmp_path, monkeypatch, out)
    v4.write_manifest(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert not any(name.startswith("code-more/") for name in manifest["files"])
    assert list(manifest) == ["files", "code_pairs_per_package", "settings", "sources", "code_more"]
    assert manifest["code_more"]["files"] == {"code-more/code-docstring-ident.jsonl.gz": 2, "code-more/code-docstring.jsonl.gz": 2}  # fmt: skip
