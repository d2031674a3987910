"""The floors of ``lab``, read from the source with ``ast``: each package imports only from the floors below it
(or from itself), and no module imports, directly or through others, a module that imports it.

Every import counts: at the top of a module or inside a function (a lazy import is still a dependency), except
those under ``if TYPE_CHECKING:``, which never run.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parent.parent / "lab"

# bottom to top; a package may import from its own floor's package and from every floor below
FLOORS = [
    {"formats", "seeds"},  # leaf modules: one number formatter, the run's random streams
    {"data"},
    {"engine"},
    {"theory", "worked"},
    {"report", "store"},
    {"experiments"},
    {"serving"},
    {"lessons"},
    {"cli", "api"},  # the two front doors: the command line and the notebook API, over the same floors
]
FLOOR = {part: level for level, parts in enumerate(FLOORS) for part in parts}
# the rule the issue states in so many words, spelled out so that a change to FLOORS cannot quietly drop it
NEVER = {"engine": {"report", "store", "serving", "cli", "experiments"},
         "theory": {"report", "store", "serving", "cli", "experiments"}}


def module_name(path: Path) -> str:
    parts = path.relative_to(LAB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _body_nodes(body):
    return {n for stmt in body for n in ast.walk(stmt)}


def imports_in(source: str, name: str, package: str) -> set[str]:
    """The lab modules that module ``name`` (in ``package``) imports; a name imported from a package counts as its
    module when it is one (``from lab.theory import meanfield`` is ``lab.theory.meanfield``)."""
    tree = ast.parse(source)
    skipped = {n for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
               for n in _body_nodes(node.body)}
    found = set()
    for node in ast.walk(tree):
        if node in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name == "lab" or a.name.startswith("lab.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                target = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "lab" or target.startswith("lab."):
                found |= {f"{target}.{a.name}" if _is_module(f"{target}.{a.name}") else target for a in node.names}
    return found - {name}


def _is_module(dotted: str) -> bool:
    path = LAB.parent / dotted.replace(".", "/")
    return path.with_suffix(".py").exists() or path.is_dir()


def imports_of(path: Path) -> set[str]:
    name = module_name(path)
    return imports_in(path.read_text(), name, name if path.name == "__init__.py" else name.rpartition(".")[0])


def floor_breaks(module: str, imported: set[str]) -> list[str]:
    """The imports of ``module`` that reach up a floor, sideways to another package, or into what NEVER forbids."""
    here = part(module)
    return sorted(t for t in imported if part(t) and part(t) != here
                  and (FLOOR[part(t)] >= FLOOR[here] or part(t) in NEVER.get(here, ())))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state, stack, found = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == "open":
                found.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m)
    return found


MODULES = {module_name(p): p for p in sorted(LAB.rglob("*.py"))}
GRAPH = {name: {t for t in imports_of(path) if t in MODULES} for name, path in MODULES.items()}


def part(module: str) -> str | None:
    """The floor part a module belongs to: 'engine' for lab.engine.model, 'formats' for lab.formats."""
    bits = module.split(".")
    return bits[1] if len(bits) > 1 and not bits[1].startswith("__") else None


def test_every_module_of_lab_has_a_floor():
    assert {part(m) for m in MODULES} - {None} <= set(FLOOR), "a new package or top-level module needs a floor"
    assert len(MODULES) > 40 and GRAPH["lab.engine.training"] >= {"lab.engine.model", "lab.engine.recorder"}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if part(m)))
def test_a_module_imports_only_its_own_floor_and_those_below(module):
    wrong = floor_breaks(module, GRAPH[module])
    assert not wrong, f"{module} (floor {FLOOR[part(module)]}) imports {wrong}"


def test_there_is_no_import_cycle():
    found = cycles(GRAPH)
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_the_checks_catch_an_engine_that_imports_the_report_and_a_cycle():
    """The two tests above can fail: the engine's model with one more line, and a made-up circle of three."""
    source = MODULES["lab.engine.model"].read_text() + "\n\ndef f():\n    from ..report import charts\n"
    assert floor_breaks("lab.engine.model", imports_in(source, "lab.engine.model", "lab.engine")) == ["lab.report.charts"]
    typing_only = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lab.store import runstore\n"
    assert imports_in(typing_only, "lab.engine.model", "lab.engine") == set()
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_lab_never_imports_streamlit_or_the_pages():
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        assert not roots & {"streamlit", "pages"}, name
