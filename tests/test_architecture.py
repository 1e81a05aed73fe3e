"""Dependencies run one way: ui and cli -> the docstack API -> rag -> index, stack, safety;
ingest -> index; nothing imports ui; no loops between rooms.

Read from the source with `ast` (every import, those inside functions too), over the folders
pyproject.toml installs as docstack.*. import-linter cannot see this layout: its graph is built
from the `docstack` folder alone, and here the rooms are top-level folders mapped into it."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from tests.conftest import ROOT

CORE = {"docstack.settings", "docstack.console", "docstack.hashing", "docstack.text", "docstack.jsonlog",
        "docstack.telemetry", "docstack.oidc"}
API = {"docstack.api", "docstack.library", "docstack.evidence", "docstack.requests"}

# room -> the rooms it may import from (besides itself)
ALLOWED = {
    "cli": {"root", "core", "eval"},
    "ui": {"root"},  # the web app sees only what `docstack` exports
    "eval": {"root", "api", "analysis", "rag", "ingest", "safety", "core"},
    "root": {"api", "access", "analysis", "rag", "ingest", "index", "stack", "safety", "core"},  # the exports
    "api": {"access", "analysis", "rag", "ingest", "index", "stack", "safety", "core"},
    # docstack's collections served by Llama Stack (vector_io provider): what docstack exports, as
    # the stack's signed-in user
    "vector_io": {"root", "core"},
    # identities and the rule on collections: nothing below it knows who asks
    "access": {"core"},
    # long-document analysis: the index, the model through the stack, citing (rag), and the
    # structure ingest stored (ingest.structure)
    "analysis": {"rag", "ingest", "index", "stack", "core"},
    "rag": {"index", "stack", "safety", "core"},
    "ingest": {"index", "core"},
    "safety": {"stack", "index", "core"},
    "stack": {"core"},
    "index": {"core"},
    "core": set(),
}


def room(module: str) -> str | None:
    if module == "docstack":
        return "root"
    if module in CORE:
        return "core"
    if module in API:
        return "api"
    if module == "docstack.cli":
        return "cli"
    parts = module.split(".")
    if parts[0] == "docstack" and len(parts) > 1 and parts[1] in ALLOWED:
        return parts[1]
    return None


def source_modules() -> dict[str, Path]:
    """docstack's modules by name, from the package folders pyproject.toml maps."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    modules = {}
    for package, folder in config["package-dir"].items():
        for path in (ROOT / folder).glob("*.py"):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            modules[name] = path
        for sub in (ROOT / folder).glob("*/**/*.py"):
            relative = sub.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in relative.parts if p != "__init__"]
            modules[".".join([package, *parts])] = sub
    return modules


def imports(module: str, path: Path) -> set[str]:
    found = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package
                anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "docstack" or name.startswith("docstack.")}


def violations(modules: dict[str, Path]) -> list[str]:
    problems = []
    for module, path in sorted(modules.items()):
        source = room(module)
        assert source is not None, f"{module} belongs to no room: add it to test_architecture"
        for target in sorted(imports(module, path)):
            if target not in modules and target != "docstack":
                continue  # a name imported from a module (from docstack.x import Name)
            destination = room(target)
            if destination != source and destination not in ALLOWED[source]:
                problems.append(f"{module} ({source}) imports {target} ({destination})")
    return problems


def test_dependencies_run_one_way():
    assert violations(source_modules()) == []


def test_the_check_sees_every_room_and_catches_a_wrong_import(tmp_path):
    modules = source_modules()
    assert {room(m) for m in modules} == set(ALLOWED)
    # The index importing the answer engine, even inside a function, would be a loop.
    wrong = tmp_path / "wrong.py"
    wrong.write_text("def f():\n    from docstack.rag.retrieve import Hit\n")
    ui = tmp_path / "peek.py"
    ui.write_text("from docstack.index.base import Filters\n")
    found = violations({**modules, "docstack.index.wrong": wrong, "docstack.ui.peek": ui})
    assert found == ["docstack.index.wrong (index) imports docstack.rag.retrieve (rag)",
                     "docstack.ui.peek (ui) imports docstack.index.base (index)"]
