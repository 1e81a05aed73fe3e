"""A throwaway Ray head for tests: `ray start --head --block` on 127.0.0.1 and a free port.

With --block the `ray start` process stays in the foreground and, on SIGTERM, stops the GCS,
raylet and workers it started, so stopping it by its pid leaves nothing behind. Its temporary
folder is a short path under /tmp: Ray's Unix sockets live there, and a socket path is limited
to 107 bytes, which pytest's tmp folders exceed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.conftest import free_port

# Measured here: the head is up in about 5 s on two cores; allow for a busy machine.
START_TIMEOUT = 60


class CannotStart(RuntimeError):
    """Why no Ray head could be started here (the tests that need one are skipped with it)."""


class RayHead:
    """`start()` then `address`; `stop()` ends it and removes its folder."""

    def __init__(self, cpus: int = 2):
        self.cpus = cpus
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.root = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
        self.process: subprocess.Popen | None = None

    def start(self) -> RayHead:
        ray = Path(sys.executable).with_name("ray")
        if not ray.exists():
            raise CannotStart("Ray is not installed; pip install -e '.[dev]'")
        log = open(self.root / "ray-start.log", "w")
        self.process = subprocess.Popen(
            [str(ray), "start", "--head", "--block", f"--num-cpus={self.cpus}", "--object-store-memory=500000000",
             "--include-dashboard=false", f"--port={self.port}", "--disable-usage-stats",
             "--node-ip-address=127.0.0.1", f"--temp-dir={self.root}"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
        self._wait(log.name)
        return self

    def _wait(self, log: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if "Ray runtime started" in Path(log).read_text():
                return
            if self.process.poll() is not None:
                self.stop()
                raise CannotStart(f"ray start exited: {Path(log).read_text()[-300:]}")
            time.sleep(0.2)
        self.stop()
        raise CannotStart(f"the Ray head was not up within {START_TIMEOUT} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)
