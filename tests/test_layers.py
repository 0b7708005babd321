"""The layers hold: the installed package's import graph, read from its modules' own import
statements (those inside functions too), has no cycle and no import from a lower layer to a higher
one. Kernel (card, errors, registry, files) <- runtime <- models, export <- CLI and the commands'
orchestration. The same holds at every folder: inside each package, its modules and its
sub-packages (each taken whole, as one room) import each other in no circle, so no arrow between
two rooms of one folder runs back up."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

# the modules and packages of the top layer that live in edgekit/ beside the kernel
ORCHESTRATION = ("edgekit.benchmark", "edgekit.evaluate_file", "edgekit.quickstart", "edgekit.remote")
LAYERS = {0: "kernel", 1: "runtime", 2: "models/export", 3: "CLI"}


def layer(module: str) -> int:
    if module.startswith("edgekit.cli") or any(
        module == o or module.startswith(o + ".") for o in ORCHESTRATION
    ):
        return 3
    if module.startswith(("edgekit.models", "edgekit.export")):
        return 2
    if module.startswith("edgekit.runtime"):
        return 1
    return 0


# the installed namespace maps these folders into one package (pyproject's package-dir), so each
# is walked from its own path
ROOTS = ("edgekit", "edgekit.runtime", "edgekit.models", "edgekit.export")


def package_modules() -> dict[str, Path]:
    """Every module of the installed `edgekit` package, by name, with its source file."""
    found: dict[str, Path] = {}
    for root in ROOTS:
        package = importlib.import_module(root)
        found[root] = Path(package.__file__)
        for info in pkgutil.walk_packages(package.__path__, f"{root}."):
            spec = importlib.util.find_spec(info.name)
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                found[info.name] = Path(spec.origin)
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `name` imports (a `from X import y` of a submodule counts as X.y)."""
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            # `import edgekit.runtime.x` also imports its parents; the module itself is what counts
            if target in known and target != name:
                out.add(target)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read_from_the_installed_package(graph):
    # the scan must see the package as installed, its registries' modules included
    assert {"edgekit.runtime.tasks.detect", "edgekit.models.recipes.mnist", "edgekit.cli.run"} <= set(graph)
    assert "edgekit.runtime.backends" in graph["edgekit.runtime.backends.tflite"]


def test_no_import_cycles(graph):
    assert cycles(graph) == []


def test_no_import_runs_up_a_layer(graph):
    upward = sorted(
        f"{a} ({LAYERS[layer(a)]}) imports {b} ({LAYERS[layer(b)]})"
        for a, deps in graph.items()
        for b in deps
        if layer(b) > layer(a)
    )
    assert upward == []


def room(module: str, folder: str, packages: set[str]) -> str | None:
    """The room of `folder` that `module` is in: a module of the folder itself, or the sub-package
    (taken whole) that holds it; None when it is outside the folder (or is the folder's face)."""
    if not module.startswith(folder + "."):
        return None
    child = folder + "." + module[len(folder) + 1 :].split(".")[0]
    return child


def folder_graphs(graph: dict[str, set[str]]) -> dict[str, dict[str, set[str]]]:
    """For every package: its rooms (modules and sub-packages) and the imports between them."""
    packages = {m for m in graph if any(other.startswith(m + ".") for other in graph)}
    out: dict[str, dict[str, set[str]]] = {}
    for folder in sorted(packages):
        rooms: dict[str, set[str]] = {}
        for a, deps in graph.items():
            ra = room(a, folder, packages)
            if ra is None:
                continue
            rooms.setdefault(ra, set())
            for b in deps:
                rb = room(b, folder, packages)
                if rb is not None and rb != ra:
                    rooms[ra].add(rb)
        for deps in list(rooms.values()):
            for b in deps:
                rooms.setdefault(b, set())
        out[folder] = rooms
    return out


def test_no_folder_has_rooms_in_a_circle(graph):
    # the installed root `edgekit` maps four folders of the repository; its rooms are those folders
    found = {folder: cycles(rooms) for folder, rooms in folder_graphs(graph).items()}
    assert {f: c for f, c in found.items() if c} == {}


def test_the_checks_catch_a_cycle_and_an_upward_import():
    g = {"edgekit.a": {"edgekit.b"}, "edgekit.b": {"edgekit.a"}, "edgekit.runtime.x": {"edgekit.cli.y"}}
    g["edgekit.cli.y"] = set()
    assert cycles(g) == [["edgekit.a", "edgekit.b"]]
    assert layer("edgekit.cli.y") > layer("edgekit.runtime.x")
    # two folders whose modules import each other are a circle of rooms, though no module is in one
    folders = {
        "edgekit.runtime.tasks.detect": {"edgekit.runtime.formats.yolo"},
        "edgekit.runtime.formats.yolo": {"edgekit.runtime.tasks.options"},
        "edgekit.runtime.tasks.options": set(),
        "edgekit.runtime.tasks": set(),
        "edgekit.runtime.formats": set(),
        "edgekit.runtime": set(),
    }
    assert cycles(folders) == []
    rooms = folder_graphs(folders)["edgekit.runtime"]
    assert cycles(rooms) == [["edgekit.runtime.formats", "edgekit.runtime.tasks"]]
