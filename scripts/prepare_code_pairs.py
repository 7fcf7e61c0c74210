"""Pair builders for code and AWS documentation (issue 24); pure functions, used by prepare_v4_data.py.

- Python source -> code units (functions, methods, classes) with the docstring removed, and
  (docstring summary -> code) pairs;
- whole packages held out as a BEIR-layout code-search development set;
- botocore service models -> (operation -> documentation) and (field -> documentation) pairs;
- awscli example pages -> ("To ..." title -> example prose and command) pairs.

Standard library only.
"""

from __future__ import annotations

import ast
import html
import json
import random
import re
import textwrap
from dataclasses import dataclass

MIN_QUERY_WORDS = 4
MIN_STATEMENTS = 2
MAX_QUERY_WORDS = 60
MAX_POSITIVE_CHARS = 2000
MAX_CODE_LINES = 80
SKIP_PARTS = {"test", "tests", "testing", "idle_test", "_vendor", "vendor", "site-packages", "__pycache__"}

_ROLE = re.compile(r":[\w:.+-]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
_SIGNATURE = re.compile(r"^[\w.]+\(.*\)\s*(->.*)?$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(`\"'])")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SNAKE = re.compile(r"(?<=[A-Za-z0-9])_+(?=[A-Za-z0-9])")
_TAG = re.compile(r"<[^>]+>")
# a first paragraph that is a doctest, a directive, a field list or a numpydoc/Google section header
_SECTION = re.compile(r"\s*(>>>|\.\. |:\w+[ :]|\w+( \w+)?:\s*$|\w+( \w+)?:\n|\w+( \w+)?\s*\n\s*-{3,})")


@dataclass(frozen=True)
class CodeUnit:
    """One function, method or class: where it is, its docstring summary (or "") and its code."""

    id: str
    query: str
    code: str
    statements: int
    name: str


def words(text: str) -> int:
    return len(text.split())


def squash(text: str) -> str:
    return " ".join(text.split())


def cap_text(text: str, limit: int = MAX_POSITIVE_CHARS) -> str:
    """Cut TEXT to at most LIMIT characters, at a sentence end where there is one in the second half."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind(".\n"))
    return cut[: end + 1] if end > limit // 2 else cut.rsplit(None, 1)[0]


def clean_rst(text: str) -> str:
    """Plain text of a reStructuredText fragment: roles, literals and emphasis reduced to their text."""
    text = _ROLE.sub(lambda m: m.group(1).split(".")[-1] if m.group(0).count("~") else m.group(1), text)
    text = re.sub(r"`([^`<]*?)\s*<[^>]*>`_{1,2}", r"\1", text)
    return squash(re.sub(r"``|`|\*\*|(?<!\w)\*(?=\w)|(?<=\w)\*(?!\w)", "", text))


def docstring_query(doc: str | None) -> str:
    """The query a docstring gives: its first paragraph (its first sentence if that paragraph is long)."""
    if not doc:
        return ""
    paragraphs = [p for p in re.split(r"\n\s*\n", doc.strip()) if p.strip()]
    if paragraphs and _SIGNATURE.match(squash(paragraphs[0])):
        paragraphs = paragraphs[1:]  # "name(args) -> result" first lines describe nothing
    if not paragraphs or _SECTION.match(paragraphs[0]):
        return ""
    text = clean_rst(paragraphs[0])
    if words(text) > MAX_QUERY_WORDS:
        text = _SENTENCE_END.split(text, 1)[0]
    return text if MIN_QUERY_WORDS <= words(text) <= MAX_QUERY_WORDS else ""


def split_identifiers(text: str) -> str:
    """snake_case and camelCase identifiers written as separate words ("getUserName" -> "get User Name")."""
    return _SNAKE.sub(" ", _CAMEL.sub(" ", text))


def _statements(nodes: list[ast.stmt]) -> int:
    return sum(isinstance(n, ast.stmt) for body in nodes for n in ast.walk(body))


def _has_docstring(node: ast.AST) -> bool:
    body = getattr(node, "body", [])
    return bool(body) and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)


def unit_code(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> str:
    """Source of NODE (decorators included) without its docstring; a class keeps only its methods' signatures."""
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    drop: set[int] = set()
    if _has_docstring(node) and node.body[0].lineno > node.lineno:
        drop.update(range(node.body[0].lineno, node.body[0].end_lineno + 1))
    if isinstance(node, ast.ClassDef):
        for child in node.body:
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and child.body[0].lineno > child.lineno:
                drop.update(range(child.body[0].lineno, child.end_lineno + 1))
    kept = [lines[i - 1] for i in range(start, node.end_lineno + 1) if i not in drop]
    text = textwrap.dedent("\n".join(kept))
    text = re.sub(r"\n\s*\n+", "\n", text).strip("\n")
    kept = text.split("\n")[:MAX_CODE_LINES]
    return cap_text("\n".join(kept).rstrip())


def code_units(source: str, prefix: str) -> list[CodeUnit]:
    """Functions, methods and classes of a module (not functions nested in functions), in source order."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    lines = source.split("\n")
    units: list[CodeUnit] = []

    def visit(body: list[ast.stmt], scope: str) -> None:
        for node in body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            qualname = f"{scope}{node.name}"
            rest = node.body[1:] if _has_docstring(node) else node.body
            code = unit_code(lines, node)
            query = docstring_query(ast.get_docstring(node, clean=True))
            units.append(CodeUnit(f"{prefix}::{qualname}:{node.lineno}", query, code, _statements(rest), node.name))
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{qualname}.")

    visit(tree.body, "")
    return units


def skip_path(path: str) -> bool:
    """Tests, vendored copies and non-Python files are not read."""
    parts = path.split("/")
    name = parts[-1]
    return (
        not name.endswith(".py")
        or bool(SKIP_PARTS.intersection(parts[:-1]))
        or name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
    )


def trainable(unit: CodeUnit) -> bool:
    """A unit whose docstring makes a query worth training on: no dunders, tests or trivial bodies."""
    name = unit.name
    return (
        bool(unit.query)
        and unit.statements >= MIN_STATEMENTS
        and not (name.startswith("__") and name.endswith("__"))
        and not name.lower().startswith("test")
        and words(unit.code) >= 5
    )


def code_pairs(units: list[CodeUnit]) -> list[tuple[str, str]]:
    return [(u.query, u.code) for u in units if trainable(u)]


def ident_variant(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Pairs whose text changes when identifiers are split, with both sides split."""
    out = []
    for query, positive in pairs:
        split = (split_identifiers(query), split_identifiers(positive))
        if split != (query, positive):
            out.append(split)
    return out


def dev_set(
    units: list[CodeUnit], max_queries: int, seed: int = 0
) -> tuple[list[dict], list[dict], list[tuple[str, str]]]:
    """BEIR corpus (every unit), queries (trainable docstrings, at most MAX_QUERIES) and qrels.

    A query text shared by several units is one query judged relevant to all of them."""
    corpus = [{"_id": u.id, "title": "", "text": u.code} for u in units if u.code.strip()]
    by_query: dict[str, list[str]] = {}
    for u in units:
        if trainable(u):
            by_query.setdefault(u.query, []).append(u.id)
    texts = sorted(by_query)
    if len(texts) > max_queries:
        texts = sorted(random.Random(seed).sample(texts, max_queries))
    queries = [{"_id": f"q{i}", "text": t} for i, t in enumerate(texts)]
    qrels = [(q["_id"], doc) for q in queries for doc in by_query[q["text"]]]
    return corpus, queries, qrels


def strip_html(text: str) -> str:
    text = re.sub(r"<(/p|br\s*/?|/li|/note)>", " ", text or "")
    return squash(html.unescape(_TAG.sub("", text)))


def botocore_pairs(service_json: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(operation -> documentation) and (structure field -> documentation) pairs of one service model."""
    model = json.loads(service_json)
    meta = model.get("metadata", {})
    service = meta.get("serviceAbbreviation") or meta.get("serviceFullName") or meta.get("serviceId", "")
    operations = []
    for name, op in sorted(model.get("operations", {}).items()):
        doc = cap_text(strip_html(op.get("documentation", "")))
        if words(doc) >= 8:
            operations.append((f"{split_identifiers(name)} ({service})", doc))
    fields = []
    for shape_name, shape in sorted(model.get("shapes", {}).items()):
        for member, spec in sorted(shape.get("members", {}).items()) if shape.get("type") == "structure" else []:
            doc = cap_text(strip_html(spec.get("documentation", "")))
            if words(doc) >= 8:
                owner = split_identifiers(re.sub(r"(Request|Input)$", "", shape_name))
                fields.append((f"{split_identifiers(member)} of {owner} ({service})", doc))
    return operations, fields


def awscli_pairs(rst: str) -> list[tuple[str, str]]:
    """(example title, mostly "To ..." -> prose and commands) pairs of one awscli example page; outputs are dropped."""
    pairs = []
    for block in re.split(r"(?m)^(?=\*\*[^*\n]+\*\*\s*$)", rst):
        head, _, body = block.partition("\n")
        title = re.sub(r"^Example\s*\d+\s*[:.]\s*", "", head.strip().strip("*").strip()).rstrip(":. ")
        if words(title) < 3 or title.endswith("::"):
            continue
        parts: list[str] = []
        literal, keep = False, None
        for line in body.split("\n"):
            if literal and (not line.strip() or line[:1].isspace()):
                if line.strip() and keep is None:
                    keep = line.strip().startswith("aws ")
                if keep and line.strip():
                    parts.append(line.strip().rstrip("\\").strip())
                continue
            literal = line.rstrip().endswith("::")
            if literal:
                keep, line = None, line.rstrip()[:-2]
            label = re.fullmatch(r"\s*(output|command|)\s*:?\s*", line, re.IGNORECASE)
            if not label and not (literal and re.match(r"\s*contents of", line, re.IGNORECASE)):
                parts.append(line)
        text = re.sub(r"`([^`<]*?)\s*<[^>]*>`_{1,2}", r"\1", " ".join(parts))
        text = re.sub(r"``|(?<!\w)\*+(?=\w)|(?<=[\w.)])\*+(?!\w)", "", text)
        text = cap_text(squash(text))
        if words(text) >= 8:
            pairs.append((title, text))
    return pairs
