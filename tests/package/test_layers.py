"""The package's shape (docs/architecture.md): imports run downward only, and no package uses
another package's private names. Read from the source with `ast`, so a new upward import fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import m2vsearch

ROOT = Path(m2vsearch.__file__).parent
# Lower layers first; a module may import its own package and any lower layer, never a higher one.
LAYERS = [
    {"errors", "text", "settings", "jsonl", "progress", "safe_io"},
    {"ingest", "model"},
    {"model.train"},
    {"storage"},
    {"folder"},
    {"search"},
    {"index"},
    {"distributed"},
    {"eval", "integrations", "cli"},
]


def package_of(module: str) -> str:
    """'m2vsearch.model.train.pairs' -> 'model.train'; 'm2vsearch.errors' -> 'errors'."""
    parts = module.split(".")[1:]
    if parts[:2] == ["model", "train"]:
        return "model.train"
    return parts[0] if parts else ""


def layer_of(package: str) -> int:
    return next(number for number, names in enumerate(LAYERS) if package in names)


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every m2vsearch import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("m2vsearch"):
            names = [alias.name for alias in node.names]
            submodules = [f"{node.module}.{name}" for name in names if (ROOT.parent / f"{node.module}.{name}".replace(".", "/")).exists()
                          or (ROOT.parent / (f"{node.module}.{name}".replace(".", "/") + ".py")).exists()]  # fmt: skip
            found += [(module, [], node.lineno) for module in submodules] or [(node.module, names, node.lineno)]
        elif isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names if alias.name.startswith("m2vsearch")]
    return found


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[0] != "models":
            found.append((".".join(("m2vsearch", *parts)).removesuffix(".__init__"), path))
    return found


def test_imports_run_downward_only() -> None:
    upward = []
    for name, path in modules():
        if name == "m2vsearch":
            continue  # the top-level facade re-exports from every layer (lazily)
        here = layer_of(package_of(name))
        for module, _, line in imports(path):
            target = package_of(module)
            if target and target != package_of(name) and layer_of(target) > here:
                upward.append(f"{path.relative_to(ROOT.parent)}:{line} imports {module}")
    assert not upward, "\n".join(upward)


def test_no_package_takes_another_packages_private_names() -> None:
    private = []
    for name, path in modules():
        for module, names, line in imports(path):
            if package_of(module) != package_of(name):
                private += [
                    f"{path.relative_to(ROOT.parent)}:{line} takes {module}.{n}" for n in names if n.startswith("_")
                ]
                if module.rsplit(".", 1)[-1].startswith("_") and not module.endswith("__init__"):
                    private.append(f"{path.relative_to(ROOT.parent)}:{line} imports {module}")
    assert not private, "\n".join(private)


def test_library_code_never_prints() -> None:
    printing = []
    for name, path in modules():
        if package_of(name) == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                printing.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}")
            if isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr") and isinstance(node.value, ast.Name) \
                    and node.value.id == "sys":  # fmt: skip
                printing.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} uses sys.{node.attr}")
    assert not printing, "\n".join(printing)
