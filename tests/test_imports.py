"""Imports go one way: every module imports, the graph of dashboard.* imports has no cycle,
and the lower layers never reach up into the web layer (nor scenario workers into Flask)."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "dashboard"
WEB = {
    "dashboard.app",
    "dashboard.extension",
    "dashboard.api",
    "dashboard.events",
    "dashboard.lab",
    "dashboard.heaps",
    "dashboard.keep",
    "dashboard.metrics",
    "dashboard.__main__",
    "dashboard.cli",
    "dashboard.cli.serve",
    "dashboard.cli.run",
    "dashboard.cli.startup",
    "dashboard.cli.open",
}
WEB_LIBRARIES = {"flask", "flask_socketio", "socketio", "engineio", "werkzeug"}


def module_files() -> dict[str, object]:
    """Every Python module of the dashboard package, by dotted name. Directories without an
    ``__init__.py`` are not packages (scenarios/node is JavaScript; reporters/python is put
    on another program's path) and are left out."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        folders = [ROOT.joinpath(*parts[:i]) for i in range(1, len(parts))]
        if not all((folder / "__init__.py").is_file() for folder in folders):
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = module_files()


def imports_of(name: str, path) -> tuple[set[str], set[str]]:
    """(dashboard modules, other top-level packages) that ``name`` imports, at module level
    or inside functions, so an import moved into a function to dodge a cycle still counts.
    The one exception: a package ``__init__``'s PEP 562 ``__getattr__``, whose lazy imports
    run only after the package has loaded (dashboard.create_app, so workers skip Flask)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    lazy = {
        id(node)
        for fn in ast.walk(tree)
        if is_package and isinstance(fn, ast.FunctionDef) and fn.name == "__getattr__"
        for node in ast.walk(fn)
    }
    ours, others = set(), set()
    for node in ast.walk(tree):
        if id(node) in lazy:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # "from pkg import mod" imports the module pkg.mod; "from pkg import name", pkg.
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == "dashboard":
                while target not in MODULES:  # "import dashboard.x.y" of a name: its module
                    target = target.rpartition(".")[0]
                if target != name:
                    ours.add(target)
            else:
                others.add(target.split(".")[0])
    return ours, others


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def closure(name: str) -> set[str]:
    """Every dashboard module ``name`` reaches through its imports."""
    seen, todo = set(), [name]
    while todo:
        for nxt in GRAPH[todo.pop()][0]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_modules_are_found():
    # The walk must see the layers this file reasons about, or the checks below are empty.
    assert WEB | {"dashboard", "dashboard.memory", "dashboard.sampler", "dashboard.workers"} <= set(
        MODULES
    )
    assert "dashboard.scenarios.unbounded_cache" in MODULES
    assert not any(".node" in name for name in MODULES)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    importlib.import_module(name)


def test_the_import_graph_has_no_cycle():
    # Depth-first search; a module met again while still on the path closes a cycle.
    on_path: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in on_path:
            cycle = on_path[on_path.index(name) :] + [name]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        on_path.append(name)
        for nxt in sorted(GRAPH[name][0]):
            visit(nxt)
        on_path.pop()
        done.add(name)

    for name in sorted(GRAPH):
        visit(name)


@pytest.mark.parametrize(
    "name", ["dashboard.memory", "dashboard.history", "dashboard.sampler", "dashboard.workers"]
)
def test_lower_layers_import_nothing_from_the_web_layer(name):
    reached = closure(name) | {name}
    assert not reached & WEB, f"{name} reaches {sorted(reached & WEB)}"
    libraries = set().union(*(GRAPH[m][1] for m in reached))
    assert not libraries & WEB_LIBRARIES, f"{name} reaches {sorted(libraries & WEB_LIBRARIES)}"


def test_scenario_workers_do_not_import_flask():
    # Each worker is a process of its own: Flask would cost it ~40 MB and a quarter second.
    code = (
        "import sys, dashboard.scenarios.unbounded_cache, dashboard.scenarios._worker;"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(WEB_LIBRARIES)!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
