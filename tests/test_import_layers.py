"""The package's modules import downhill (issue 31): no two modules import each other, directly or in a loop, and no
module imports one of a layer above its own. Read from the code with `ast` (imports at module level and inside
functions alike: a lazy import is still a dependency)."""

import ast
from pathlib import Path

import pytest


PACKAGE = Path(__file__).resolve().parents[1] / "src" / "rvernet_hf"

# The layers, bottom first. The uploaded files (`*_rvernet.py`: read by the Hub's remote-code loader next to the
# weights) import nothing of the rest of the package; the library (data, training, evaluation, Hub) none of the app
# or the command line; the app none of the command line.
LAYERS = ("remote code", "library", "app", "command line")


def layer_of(module: str) -> str:
    name = module.split(".")[1] if "." in module else ""
    if name.endswith("_rvernet"):
        return "remote code"
    if name == "app":
        return "app"
    if name in ("commands", "cli", "__main__"):
        return "command line"
    return "library"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `path` imports (`from . import x` counts as module `x`); the package's face
    (`rvernet_hf/__init__.py`, imported only for `__version__`) is left out."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in modules else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {target for target in found if target in modules and target not in (module, "rvernet_hf")}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    return {module_name(path): package_imports(path, modules) for path in paths}


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read(graph):
    assert "rvernet_hf.pipeline_rvernet" in graph["rvernet_hf.app.api"]
    assert "rvernet_hf.prompts_rvernet" in graph["rvernet_hf.image_processing_rvernet"]
    assert len(graph) > 30


def test_no_modules_import_each_other(graph):
    assert loops(graph) == []


def test_no_module_imports_a_layer_above_its_own(graph):
    upward = [
        f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
        for module, targets in graph.items()
        for target in targets
        if LAYERS.index(layer_of(target)) > LAYERS.index(layer_of(module))
    ]
    assert upward == []


def test_the_checks_find_a_loop_and_an_upward_import():
    assert loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert loops({"a": {"b"}, "b": set()}) == []
    assert LAYERS.index(layer_of("rvernet_hf.cli")) > LAYERS.index(layer_of("rvernet_hf.hub"))
    assert layer_of("rvernet_hf.prompts_rvernet") == "remote code" and layer_of("rvernet_hf.app.page") == "app"
