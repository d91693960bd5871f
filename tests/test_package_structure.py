"""The package's shape: every module imports on its own, no import cycles, the pipeline only wires.

The import graph is read from the source (``ast``), function-level (lazy) imports included: a cycle
hidden behind a lazy import is still two modules that cannot be understood one without the other.
Imports under ``if TYPE_CHECKING:`` (annotations only) and the implicit import of a parent
package's ``__init__`` (every submodule import has it) are not edges.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "align3r"

#: What the rest of the package may take from ``align3r.pipeline``: the names that run a
#: reconstruction. Helpers live with the stage that owns them.
PIPELINE_API = {"PipelineConfig", "PipelineResult", "PreparedInput", "StageTimer", "prepare_input",
                "align_views", "run_pipeline", "reconstruct"}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except what sits under ``if TYPE_CHECKING:`` (never executed)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _imports(module: str) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import statement of ``module``, at any depth."""
    path = MODULES[module]
    found = []
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub, []) if sub in MODULES else (base, [alias.name]))
    return found


def _import_graph() -> dict[str, set[str]]:
    return {m: {target for target, _ in _imports(m) if target in MODULES and target != m} for m in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert _cycles(_import_graph()) == []


def test_every_module_imports_on_its_own():
    """Each module imported into an interpreter holding no other align3r module (torch stays
    loaded, so this takes seconds): a module that works only after some other was imported fails."""
    script = (
        "import importlib, sys, traceback\n"
        "import torch, numpy\n"
        "failed = []\n"
        f"for name in {sorted(MODULES)!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'align3r' or m.startswith('align3r.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        failed.append(name + ': ' + traceback.format_exc().strip().splitlines()[-1])\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]


def test_pipeline_is_imported_only_to_run_reconstructions():
    misuse = []
    for module in MODULES:
        for target, names in _imports(module):
            if target == "align3r.pipeline" and module != "align3r.pipeline":
                extra = set(names) - PIPELINE_API
                if extra or not names:
                    misuse.append(f"{module}: {sorted(extra) or 'import align3r.pipeline'}")
    assert misuse == []


def test_pipeline_only_wires_stages():
    lines = MODULES["align3r.pipeline"].read_text(encoding="utf-8").count("\n")
    assert lines <= 350, f"align3r/pipeline.py has {lines} lines: a rule has moved in that belongs to a stage"
