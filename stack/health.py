"""`python -m docstack.stack.health`: whether every service that `docstack up` started on this host
(the llama.cpp model server, the Llama Stack server, the web app) is running and answers its
health check. Exit 0 when all do, 1 otherwise, with one line per service: the health check of a
container that runs `docstack up` (docker-compose.yml's `stack`), or a load balancer's script."""

from __future__ import annotations

import sys

from docstack.settings import Settings
from docstack.stack import profiles
from docstack.stack.services import ServiceManager, ServiceState


def check(settings: Settings) -> list[ServiceState]:
    """The state of each service started here; none at all is unhealthy too (nothing was started)."""
    manager = ServiceManager(settings.run_dir, settings.log_dir)
    marker = settings.run_dir / "profile"  # the profile `docstack up` ran, which may differ from the setting
    if marker.is_file():
        settings = settings.model_copy(update={"profile": marker.read_text().strip()})
    return [manager.state(service) for service in profiles.services(settings, with_ui=True, resolve=False)
            if manager.started_here(service.name)]


def main() -> int:
    states = check(Settings())
    for state in states:
        word = "healthy" if state.healthy else ("not answering" if state.running else "not running")
        print(f"{state.name}: {word} ({state.url})")
    if not states:
        print("nothing started here: run `docstack up`")
    return 0 if states and all(s.healthy for s in states) else 1


if __name__ == "__main__":
    sys.exit(main())
