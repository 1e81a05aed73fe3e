"""Starts, watches and stops the processes behind a profile: the model server, the Llama Stack
server and the UI. PIDs go to ``$DOCSTACK_HOME/run``, logs to ``$DOCSTACK_HOME/logs``."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from docstack.console import DocstackError

log = logging.getLogger(__name__)


@dataclass
class Service:
    name: str
    host: str
    port: int
    health_path: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    url: str = ""

    @property
    def health_url(self) -> str:
        return f"http://{self.host}:{self.port}{self.health_path}"


@dataclass
class ServiceState:
    name: str
    url: str
    pid: int | None
    running: bool
    healthy: bool
    log: str

    def to_json(self) -> dict:
        return {"url": self.url, "pid": self.pid, "running": self.running, "healthy": self.healthy, "log": self.log}


class ServiceManager:
    def __init__(self, run_dir: Path, log_dir: Path, startup_timeout: float = 120.0):
        self.run_dir = run_dir
        self.log_dir = log_dir
        self.startup_timeout = startup_timeout

    def start(self, service: Service) -> bool:
        """Start `service` unless it already runs healthy; True if it was started now."""
        if self.state(service).healthy:
            return False
        self.stop(service.name)
        if _port_in_use(service.host, service.port):
            raise DocstackError(
                f"port {service.port} on {service.host} is already in use; stop what runs there "
                f"or set DOCSTACK_{service.name.upper()}_PORT"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        logfile = self._log(service.name)
        with open(logfile, "ab") as out:
            proc = subprocess.Popen(
                service.command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **service.env}, start_new_session=True,
            )
        self._pidfile(service.name).write_text(str(proc.pid))
        self._wait_healthy(service, proc.poll)
        log.info("%s up at %s (pid %d)", service.name, service.url, proc.pid)
        return True

    def stop(self, name: str, timeout: float = 10.0) -> bool:
        pid = self._pid(name)
        self._pidfile(name).unlink(missing_ok=True)
        if pid is None or not _alive(pid):
            return False
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
        return True

    def died(self, name: str) -> Path | None:
        """The log of service `name` if this machine started it and it has stopped since; else None."""
        pid = self._pid(name)
        return self._log(name) if pid is not None and not _alive(pid) else None

    def state(self, service: Service) -> ServiceState:
        pid = self._pid(service.name)
        running = pid is not None and _alive(pid)
        healthy = running and _healthy(service.health_url)
        return ServiceState(service.name, service.url, pid if running else None, running, healthy,
                            str(self._log(service.name)))

    def started_here(self, name: str) -> bool:
        """Whether `docstack up` on this host started the service (and has not stopped it)."""
        return self._pid(name) is not None

    def _wait_healthy(self, service: Service, exit_code: Callable[[], int | None]) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if exit_code() is not None:
                raise DocstackError(
                    f"{service.name} exited at start-up: {self._last_line(service.name)} "
                    f"(log: {self._log(service.name)})"
                )
            if _healthy(service.health_url):
                return
            time.sleep(0.25)
        self.stop(service.name)
        raise DocstackError(
            f"{service.name} did not become healthy within {self.startup_timeout:.0f}s "
            f"(log: {self._log(service.name)})"
        )

    def _last_line(self, name: str) -> str:
        lines = [line for line in self._log(name).read_text(errors="replace").splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower()]
        return (errors or lines or ["no output"])[-1].strip()[:200]

    def _pid(self, name: str) -> int | None:
        try:
            return int(self._pidfile(name).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    # Named by host: a process id means something only in the PID namespace that wrote it, and
    # app replicas (compose's `deploy.replicas`) share one DOCSTACK_HOME; with one `ui.pid`, a
    # second replica read the first one's pid as its own and, finding it unhealthy, killed that
    # number in its own namespace.
    def _pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}@{socket.gethostname()}.pid"

    def _log(self, name: str) -> Path:
        return self.log_dir / f"{name}@{socket.gethostname()}.log"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); it counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return True


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False
