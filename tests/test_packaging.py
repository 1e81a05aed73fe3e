"""The wheel: `pip install .` (not editable) must carry every module and data file the product
uses: run configs, catalogue, policy, red-team sets, the stack's safety provider, the web app,
the samples `docstack demo` ingests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.test_architecture import source_modules

# Files in the package folders that are records of measurements, not part of the product.
NOT_SHIPPED = ("eval/redteam/results/",)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the files a fresh clone has (a build/ folder left by an earlier build
    would otherwise fill in what pyproject.toml forgets)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    for relative in listed:
        if (ROOT / relative).is_file():
            (source / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, source / relative)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(source)], check=True, capture_output=True, timeout=300)
    [built] = out.glob("docstack-*.whl")
    return built


def shipped_files() -> dict[str, str]:
    """Every tracked file under the package folders, by its path inside the wheel."""
    folders = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    tracked = subprocess.run(["git", "ls-files", *folders.values()], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    files = {}
    for relative in tracked:
        if relative.startswith(NOT_SHIPPED) or not (ROOT / relative).is_file():
            continue
        package, folder = max(((p, f) for p, f in folders.items() if relative.startswith(f + "/")),
                              key=lambda pf: len(pf[1]))
        files["/".join([*package.split("."), relative.removeprefix(folder + "/")])] = relative
    return files


def test_the_wheel_holds_every_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(path for path in shipped_files() if path not in names)
    assert missing == []
    modules = {name.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for name in names
               if name.endswith(".py")}
    assert set(source_modules()) <= modules
    # What the run configs load by name: the providers Llama Stack imports from docstack (shields;
    # on-prem also the collections and the llama.cpp adapter).
    configs = [n for n in names if n.endswith("/run.yaml")]
    assert len(configs) == 5
    for config in configs:
        providers = yaml.safe_load(zipfile.ZipFile(wheel).read(config))["providers"]
        for entry in (e for group in providers.values() for e in group if e.get("module")):
            assert entry["module"] in modules, (config, entry["module"])


def test_the_installed_wheel_runs_without_the_source_tree(wheel, tmp_path):
    """Installed into a fresh virtual environment (its dependencies taken from this one's
    site-packages, not the editable docstack), docstack ingests its own samples, searches them
    and imports the stack's safety provider, from the installed files only."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    # A plain path entry: the dependencies, without the editable install's import hook (.pth files
    # in a directory added this way are not run).
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    env = {**os.environ, "DOCSTACK_HOME": str(tmp_path / "home"), "PYTHONPATH": ""}
    where = subprocess.run(
        [str(python), "-c", "import docstack, docstack.safety.stack_provider.impl, docstack.cli as cli; "
                            "print(docstack.__file__); print(cli.SAMPLES)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert where.returncode == 0, where.stderr
    package, samples = where.stdout.split()
    assert package.startswith(str(site)) and Path(samples).is_dir()
    ingest = subprocess.run([str(venv / "bin" / "docstack"), "ingest", samples, "--collection", "samples", "--json"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["files"] == len(list(Path(samples).iterdir()))
    search = subprocess.run([str(venv / "bin" / "docstack"), "search", "Where are vectors stored?", "--collection",
                             "samples", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert search.returncode == 0 and json.loads(search.stdout), search.stderr
