"""The package's layers (docs/architecture.md): no module imports a layer above its own, and no
two modules import each other, directly or in a circle.

Imports are read with ``ast`` from the source files, including those inside functions (a lazy
import is still a dependency); ``if TYPE_CHECKING:`` blocks are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "emotrace"

#: layer of each top-level module or package, from the ground floor up (docs/architecture.md)
LAYERS = {
    "_version": 0, "config": 0, "errors": 0, "fileio": 0, "metrics": 0, "recipes": 0,
    "data": 1,
    "models": 2,
    "train": 3,
    "run": 4,
    "kinds": 5,
    "api": 6,
    "workflows": 7,
    "cli": 8, "demo": 8, "__main__": 8,
}
#: beside the chain: what each may import (besides itself)
BESIDE = {
    # an adapter may extract features (Stress-Predict's E4 signals → HRV, EDA, ...)
    "datasets": {"_version", "config", "errors", "fileio", "metrics", "data", "features"},
    "labels": {"_version", "config", "errors", "fileio", "metrics", "data"},
    "features": {"_version", "config", "errors", "fileio", "metrics", "data"},
    "report": {"_version", "config", "errors", "fileio", "metrics", "data", "models", "train",
               "run"},
    "streaming": {"_version", "config", "errors", "fileio", "metrics", "data", "models", "train",
                  "run"},
    "export": {"_version", "config", "errors", "fileio", "metrics", "data", "models", "train",
               "run", "streaming"},
}
#: the CLI (top floor) may use every part; the package face imports lazily by name
TOP = {"cli", "demo", "__main__"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        out[".".join(["emotrace", *parts])] = path
    return out


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports(path: Path, module: str) -> set[str]:
    """The ``emotrace.*`` modules that ``path`` imports (absolute, resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _type_checking(node)
            for n in ast.walk(node)}
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "emotrace"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if is_pkg else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - node.level + 1]
                base = ".".join([*pkg, *([base] if base else [])])
            if base.split(".")[0] != "emotrace":
                continue
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    mods = _modules()
    return {m for m in found if m in mods and m != module}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


GRAPH = {m: imports(p, m) for m, p in _modules().items()}


def test_every_module_has_a_layer():
    tops = {_top(m) for m in GRAPH} - {""}
    assert tops <= set(LAYERS) | set(BESIDE), sorted(tops - set(LAYERS) - set(BESIDE))


def violations(module: str, deps: set[str]) -> list[str]:
    """The imports of ``module`` that go above its layer, or sideways out of it."""
    src = _top(module)
    bad = []
    for dep in sorted(deps):
        dst = _top(dep)
        if dst == src or dst == "":
            continue
        if src in BESIDE:
            ok = dst in BESIDE[src]
        elif dst in BESIDE:
            ok = False  # the chain never reaches into the side parts
        else:
            ok = LAYERS[dst] <= LAYERS[src]  # same layer: the ground floor's modules
        if not ok:
            bad.append(dep)
    return bad


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if _top(m) not in TOP | {""}))
def test_no_import_goes_up_or_sideways(module):
    bad = violations(module, GRAPH[module])
    assert not bad, f"{module} imports {bad}, above or beside its layer (docs/architecture.md)"


def test_no_import_cycles():
    """Tarjan's strongly connected components over the module graph; package ``__init__``
    re-exports of their own submodules are not edges back."""
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in GRAPH.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_an_upward_import(tmp_path):
    """The checker itself: a data module importing the API is found."""
    f = tmp_path / "muse.py"
    f.write_text("from emotrace.api import fit\n\ndef g():\n    from emotrace import run\n")
    got = imports(f, "emotrace.data.muse")
    assert {"emotrace.api", "emotrace.run"} <= got
    assert violations("emotrace.data.muse", got) == ["emotrace.api", "emotrace.run"]
    assert violations("emotrace.labels.gold", {"emotrace.train.loop"}) == ["emotrace.train.loop"]
    assert violations("emotrace.kinds.fused", {"emotrace.train.loop", "emotrace.run"}) == []
