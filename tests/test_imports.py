"""The package's import graph, built from the source with ``ast``: no circles, and only downward imports.

The layers are the list in the docstring of ``kcolors/__init__.py``; every import
counts, at module level or inside a function, except those under ``if TYPE_CHECKING:``,
which never run: a type checker's names (a Palette in a Quantization's annotations)
may come from any layer.
"""

import ast
from pathlib import Path

import pytest

import kcolors

ROOT = Path(kcolors.__file__).resolve().parent


def module_name(path):
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_submodule(package, name):
    """``package.name`` is a module: a .py file, a subpackage or a compiled extension (its .c source)."""
    folder = ROOT.parent.joinpath(*package.split("."))
    return any((folder / f"{name}{ending}").exists() for ending in (".py", "/__init__.py", ".c"))


def typing_only(tree):
    """The nodes under ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``) blocks: imported for annotations only."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return skipped


def imports_of(path, name):
    """The kcolors modules that the file imports (``from . import x`` names module x where it is one), those
    for annotations only (under ``if TYPE_CHECKING:``) left out."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    tree = ast.parse(path.read_text(), str(path))
    skipped = typing_only(tree)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if is_submodule(target, alias.name) else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {module for module in found if module.split(".")[0] == "kcolors" and module != name}


def import_graph():
    files = {module_name(path): path for path in ROOT.rglob("*.py")}
    return {name: {m for m in imports_of(path, name) if m in files} for name, path in files.items()}


def find_cycle(graph):
    """One import circle as a list of modules (first == last), or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def layers():
    """{top-level module name: layer number} from the "Layers:" list of the package docstring."""
    lines = kcolors.__doc__.split("Layers:\n", 1)[1].splitlines()
    table = {}
    for number, line in enumerate(lines):
        if not line.strip():
            break
        names = line.strip().split("  ", 1)[0]
        table.update({name.strip(): number for name in names.split(",")})
    return table


def layer_of(module, table):
    parts = module.split(".")
    return table[parts[1] if len(parts) > 1 else "kcolors"]


def in_one_subpackage(a, b):
    """Both in one subpackage (kcolors.batch, kcolors.web, ...): they may import each other, without circles."""
    return a.split(".")[:2] == b.split(".")[:2] and (ROOT / a.split(".")[1]).is_dir() if "." in a else False


def test_find_cycle_finds_a_circle_and_none_where_there_is_none():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.slow
def test_imports_are_read_from_the_source():
    graph = import_graph()
    assert {"kcolors.histogram", "kcolors.errors"} <= graph["kcolors.io"]  # module-level imports
    assert "kcolors.kernels" in graph["kcolors.remap"]  # `from . import kernels`
    assert "kcolors.batch" in graph["kcolors.commands.palette"]  # an import inside a function


def test_imports_for_annotations_only_are_left_out(tmp_path):
    source = tmp_path / "quantize.py"
    source.write_text("from typing import TYPE_CHECKING\nfrom .io import load_image\n"
                      "if TYPE_CHECKING:\n    from .sweep import sweep\n    from . import batch\n"
                      "def f():\n    from .palette import Palette\n")
    found = imports_of(source, "kcolors.quantize")
    assert {"kcolors.io", "kcolors.palette"} <= found
    assert not {"kcolors.sweep", "kcolors.batch"} & found


@pytest.mark.slow
def test_no_import_circles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def upward_imports(graph, table):
    """Imports that do not go down a layer, as "a imports b" lines."""
    return [f"{module} imports {target}" for module, imported in sorted(graph.items()) for target in sorted(imported)
            if not in_one_subpackage(module, target) and layer_of(target, table) >= layer_of(module, table)]


def test_upward_imports_are_found():
    table = {"io": 0, "quantize": 1, "batch": 2}
    assert upward_imports({"kcolors.io": {"kcolors.quantize"}, "kcolors.quantize": {"kcolors.io"}}, table) == [
        "kcolors.io imports kcolors.quantize"]
    assert upward_imports({"kcolors.batch.run": {"kcolors.batch.tasks", "kcolors.quantize"}}, table) == []


@pytest.mark.slow
def test_every_module_has_a_layer_and_imports_only_below_it():
    upward = upward_imports(import_graph(), layers())
    assert not upward, "imports that do not go down a layer: " + "; ".join(upward)
