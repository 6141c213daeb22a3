"""The package layout is the pipeline: imports point one way and nothing imports Lava early.

Order (a module may import modules of its own level or of earlier levels, never of later ones):

    spikeclip  <  export.nir  <  hardware.ir  <  hardware.lower  <  hardware.simulate
      <  hardware.quantize  <  hardware.fidelity  <  hardware.mapping, hardware.energy
      <  export.lava, export.onnx  <  export.cli

The graph is read with ``ast`` from the source files, function-level imports included, so an
import hidden inside a function to dodge a cycle is found too.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
from _paths import REPO

PACKAGES = ("spikeclip", "export", "hardware")
LEVELS: tuple[tuple[str, int], ...] = (  # longest prefix wins
    ("spikeclip", 0),
    ("export", 1),  # the package's own __init__ (imports nothing)
    ("export.nir", 1),
    ("hardware", 2),  # the package's own __init__ (imports nothing)
    ("hardware.ir", 2),
    ("hardware.lower", 3),
    ("hardware.simulate", 4),
    ("hardware.quantize", 5),
    ("hardware.fidelity", 6),
    ("hardware.mapping", 7),
    ("hardware.energy", 7),
    ("export.lava", 8),
    ("export.onnx", 8),
    ("export.cli", 9),
)


def _modules() -> dict[str, str]:
    """Dotted module name → source text, for every module of the three packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path.read_text(encoding="utf-8")
    return out


def _imports(name: str, source: str, known: set[str]) -> set[str]:
    """The project modules ``name`` imports anywhere in its body (``from P import m`` counts
    as importing ``P.m`` when that is a module, else ``P``)."""
    found = set()
    package = name if name in known and any(k.startswith(name + ".") for k in known) else None
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = (package or name).split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, source, known) for name, source in modules.items()}


def _level(module: str) -> int:
    best = max((p for p, _ in LEVELS if module == p or module.startswith(p + ".")), key=len)
    return dict(LEVELS)[best]


def test_every_module_has_a_level() -> None:
    for module in _graph():
        assert any(module == p or module.startswith(p + ".") for p, _ in LEVELS), module


def test_no_import_points_up_the_pipeline() -> None:
    upward = sorted(
        f"{src} (level {_level(src)}) imports {dst} (level {_level(dst)})"
        for src, targets in _graph().items()
        for dst in targets
        if _level(dst) > _level(src)
    )
    assert upward == []


def test_no_import_cycles() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert cycles == []


def test_the_checker_sees_function_level_and_upward_imports() -> None:
    """The walker itself: an import inside a function, and an upward one, are both edges."""
    known = {"hardware.ir.fixed", "hardware.simulate.engine", "export.cli.export"}
    source = "def f():\n    from export.cli.export import main\n"
    assert _imports("hardware.ir.fixed", source, known) == {"export.cli.export"}
    assert _level("export.cli.export") > _level("hardware.ir.fixed")


@pytest.mark.timeout(120)
def test_importing_hardware_and_export_nir_loads_no_lava() -> None:
    """Every module of ``hardware`` and ``export.nir`` (and ``spikeclip``) imported in a fresh
    interpreter: no ``lava`` module is loaded and no Lava import hook is installed."""
    names = sorted(m for m in _graph()
                   if m.split(".")[0] in ("hardware", "spikeclip") or m.startswith("export.nir"))
    script = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "lava = sorted(m for m in sys.modules if m == 'lava' or m.startswith('lava.'))\n"
        "hooks = [type(f).__name__ for f in sys.meta_path if 'Lava' in type(f).__name__]\n"
        "print('LAVA', lava, 'HOOKS', hooks)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=110)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LAVA [] HOOKS []" in done.stdout, done.stdout
