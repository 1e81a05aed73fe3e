"""App servers over one PostgreSQL keep no state of their own that matters: two long-lived
processes, each with its own DocStack and its own DOCSTACK_HOME (as two compose replicas, minus
the shared volume), see each other's ingests, removals and new collections at their next call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHARED_MODELS

# One app server: reads [command, argument] lines, answers each with one JSON line.
APP = """
import json, sys
from docstack import DocStack, Settings
ds = DocStack(Settings())
for line in sys.stdin:
    command, arg = json.loads(line)
    if command == "ingest":
        out = ds.ingest([arg]).files
    elif command == "remove":
        out = len(ds.remove([arg]))
    elif command == "search":
        out = [h.source for h in ds.search(arg, k=3)]
    elif command == "documents":
        out = sorted(d.source for d in ds.documents())
    elif command == "create":
        out = ds.create_collection(arg)
    else:
        out = sorted(ds.collections())
    print(json.dumps(out), flush=True)
"""


class App:
    def __init__(self, url: str, home: Path):
        env = {**os.environ, "DOCSTACK_HOME": str(home), "DOCSTACK_MODELS_DIR": str(SHARED_MODELS),
               "DOCSTACK_INDEX_URL": url, "DOCSTACK_SAFETY": "false"}
        self.proc = subprocess.Popen([sys.executable, "-c", APP], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)

    def __call__(self, command: str, arg: str = ""):
        self.proc.stdin.write(json.dumps([command, arg]) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the app process died on {command}"
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) == 0


@pytest.fixture
def apps(postgres_url, tmp_path):
    pair = [App(postgres_url, tmp_path / f"home-{n}") for n in ("a", "b")]
    yield pair
    for app in pair:
        app.close()


def test_two_app_processes_see_each_others_ingests_at_once(apps, tmp_path):
    a, b = apps
    pump, canteen = tmp_path / "pump.md", tmp_path / "canteen.md"
    pump.write_text("# Pump\n\nThe Zephyr-9 pump is serviced every 42 days.\n")
    canteen.write_text("# Canteen\n\nThe canteen serves soup on Fridays.\n")

    assert a("ingest", str(pump)) == 1
    assert b("documents") == [str(pump)]  # b opened nothing before: it finds the collection
    assert b("ingest", str(canteen)) == 1
    assert a("search", "soup on Fridays")[0] == str(canteen)  # a's open collection sees b's write
    assert a("documents") == sorted([str(pump), str(canteen)])

    assert b("remove", str(pump)) == 1
    assert a("documents") == [str(canteen)]
    assert str(pump) not in a("search", "Zephyr pump service interval")

    a("create", "handbook")
    assert b("collections") == ["default", "handbook"]
