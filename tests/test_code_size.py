"""Every room of `src/rvernet_hf` is one a reader takes in one sitting (issue 20): a module up to 750 lines, a class up
to 300, a function or method up to 100; an entry point's argument-parser builder or its one linear job function
(`build_parser`, `main`, `run`, `_run`, `run_demo`) up to 200."""

import ast
from pathlib import Path

import pytest


PACKAGE = Path(__file__).resolve().parents[1] / "src" / "rvernet_hf"
MODULE_LINES, CLASS_LINES, FUNCTION_LINES, ENTRY_POINT_LINES = 750, 300, 100, 200
ENTRY_POINTS = {"build_parser", "main", "run", "_run", "run_demo"}


def oversized(path: Path) -> list[str]:
    text = path.read_text()
    found = []
    lines = text.count("\n") + 1
    if lines > MODULE_LINES:
        found.append(f"{path.name}: {lines} lines (module limit {MODULE_LINES})")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
            size = node.end_lineno - first + 1
            if isinstance(node, ast.ClassDef):
                limit = CLASS_LINES
            else:
                limit = ENTRY_POINT_LINES if node.name in ENTRY_POINTS else FUNCTION_LINES
            if size > limit:
                found.append(f"{path.name}:{node.lineno} {node.name}: {size} lines (limit {limit})")
    return found


def test_the_package_is_found():
    assert len(list(PACKAGE.rglob("*.py"))) > 20


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_room_is_too_big(path):
    assert oversized(path) == []


def test_the_check_finds_a_big_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(101))
    big = tmp_path / "big.py"
    big.write_text(f"def f():\n{body}\n")
    assert oversized(big) == ["big.py:1 f: 102 lines (limit 100)"]
