"""The app's import graph, read from the source (nothing is imported): cycles between modules and
between packages, and imports that go against the layers. `python scripts/import_graph.py` prints
them; tests/test_layers.py asserts there are none."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bottom up; a package may import only its own layer's peers listed here or lower layers
LAYERS = [
    {"core"},
    {"parsers", "presets"},
    {"wrappers", "backends"},
    {"flow"},
    {"scoreboard"},
    {"workbench", "cli", "api", "endpoint", "ui"},  # the faces
    {"app"},
]
FACES = {"cli", "api", "endpoint", "ui", "workbench"}
PAGE = {"ui", "workbench"}  # one face in two halves: Gradio wiring and its plain logic


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.glob("*.py")) + sorted(ROOT.glob("*/**/*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {"tests", "bench", "scripts", "docs"}:
            continue
        name = ".".join(rel.with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The app modules `name` imports at module level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(p for p in [*parts, base] if p)
            # `from pkg import sub` imports the submodule; `from pkg import name` imports pkg itself
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def package_edges(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    top = {}
    for a, bs in edges.items():
        pa = a.split(".")[0]
        top.setdefault(pa, set()).update(b.split(".")[0] for b in bs if b.split(".")[0] != pa)
    return top


def layer_of(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def layer_violations(edges: dict[str, set[str]]) -> list[str]:
    problems = []
    for a, bs in package_edges(edges).items():
        for b in bs:
            if layer_of(b) > layer_of(a):
                problems.append(f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})")
            elif a in FACES and b in FACES and not {a, b} <= PAGE:
                problems.append(f"face {a} imports face {b}")
    return sorted(problems)


def main() -> int:
    edges = graph()
    module_cycles, package_cycles = cycles(edges), cycles(package_edges(edges))
    violations = layer_violations(edges)
    print(f"{len(edges)} modules; module cycles: {len(module_cycles)}; package cycles: {len(package_cycles)}; "
          f"layer violations: {len(violations)}")
    for c in module_cycles:
        print("  module cycle:", " <-> ".join(c))
    for c in package_cycles:
        print("  package cycle:", " <-> ".join(c))
    for v in violations:
        print("  layer:", v)
    return 1 if module_cycles or package_cycles or violations else 0


if __name__ == "__main__":
    sys.exit(main())
