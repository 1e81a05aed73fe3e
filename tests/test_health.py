"""Health checks per service: `python -m docstack.stack.health` over what `docstack up` started on
this host (the compose `stack` container's check), and the compose file's checks for every
service (validated by the real Docker Compose binary, as in test_profiles.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT, free_port, run_cli
from tests.test_profiles import compose_binary


def health(home, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "docstack.stack.health"], capture_output=True, text=True,
                          env={**os.environ, "DOCSTACK_HOME": str(home), **env}, timeout=60)


def test_the_health_check_follows_the_services_started_here(tmp_path):
    env = {"DOCSTACK_UI_PORT": str(free_port())}
    before = health(tmp_path, **env)
    assert before.returncode == 1 and "nothing started here" in before.stdout
    started = run_cli(["up", "--only", "ui"], tmp_path, **env)
    try:
        assert started.returncode == 0, started.stderr
        up = health(tmp_path, **env)
        assert up.returncode == 0, up.stdout
        assert up.stdout.splitlines() == [f"ui: healthy (http://127.0.0.1:{env['DOCSTACK_UI_PORT']})"]
        # The web app dies without `docstack down`: its container must turn unhealthy.
        [pidfile] = (tmp_path / "run").glob("ui@*.pid")
        os.killpg(int(pidfile.read_text()), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while (down := health(tmp_path, **env)).returncode == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert down.returncode == 1 and down.stdout.startswith("ui: not running")
    finally:
        run_cli(["down"], tmp_path, **env)


def test_every_long_running_compose_service_has_a_health_check():
    result = subprocess.run([str(compose_binary()), "--profile", "ollama", "config", "--format", "json"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    one_shot = {"ollama-pull"}
    assert {name for name, s in services.items() if "healthcheck" not in s} == one_shot
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert "/_stcore/health" in " ".join(services["ui"]["healthcheck"]["test"])  # each app replica
    # The stack container runs the model server too: its check covers both (docstack.stack.health).
    assert services["stack"]["healthcheck"]["test"][-3:] == ["python", "-m", "docstack.stack.health"]
    # The proxy: the load balancer's address, healthy while a replica answers behind it.
    assert "http://127.0.0.1:8501/healthz" in " ".join(services["proxy"]["healthcheck"]["test"])
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "location = /healthz" in nginx and "proxy_pass http://docstack_ui/_stcore/health;" in nginx
