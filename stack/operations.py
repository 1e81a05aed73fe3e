"""Running a profile: start and stop its services, say what runs, which models can answer and
why not, fetch the models it needs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from docstack.console import DocstackError
from docstack.settings import Settings
from docstack.stack import profiles, ui_auth
from docstack.stack.backends import OllamaBackend, PullProgress
from docstack.stack.catalogue import ModelSpec
from docstack.stack.served import ServedModels
from docstack.stack.services import ServiceManager, ServiceState


@dataclass
class ModelStatus:
    spec: ModelSpec
    usable: bool
    reason: str

    def to_json(self) -> dict:
        return {**self.spec.model_dump(), "stack_id": self.spec.stack_id, "usable": self.usable, "reason": self.reason}


@dataclass
class Services:
    """What runs for the profile last started (`docstack up`), by service name."""

    profile: str
    states: dict[str, ServiceState]


class Operations:
    def __init__(self, settings: Settings, served: ServedModels):
        self.settings = settings
        self.served = served
        self.services = ServiceManager(settings.run_dir, settings.log_dir, settings.startup_timeout)

    def up(self, with_ui: bool = True, only: Iterable[str] | None = None) -> list[ServiceState]:
        """Start the profile's services (or `only` these), each once it answers its health check."""
        started = []
        wanted = set(only or ())
        # A UI-only start (compose runs the stack in its own container) has no model server to check.
        resolve = not wanted or bool(wanted & {"model", "stack"})
        for service in profiles.services(self.settings, with_ui=with_ui or "ui" in wanted, resolve=resolve):
            if wanted and service.name not in wanted:
                continue
            if service.name == "ui" and self.settings.identity:
                ui_auth.write_secrets(self.settings)
            self.services.start(service)
            started.append(self.services.state(service))
        (self.settings.run_dir / "profile").write_text(self.settings.profile)
        self.served.forget()
        return started

    def down(self) -> list[str]:
        stopped = [name for name in ("ui", "stack", "model") if self.services.stop(name)]
        self.served.forget()
        return stopped

    def running(self) -> Services:
        marker = self.settings.run_dir / "profile"
        profile = marker.read_text().strip() if marker.is_file() else self.settings.profile
        running = self.settings.model_copy(update={"profile": profile})
        services = profiles.services(running, with_ui=True, resolve=False)
        return Services(profile, {s.name: self.services.state(s) for s in services})

    def models(self) -> list[ModelStatus]:
        """Every catalogue model of the profile, and whether it can answer now (or why not)."""
        specs = profiles.models(self.settings, role=None)
        try:
            registered, stack_error = self.served.ids(), None
        except DocstackError:
            registered, stack_error = frozenset(), "the stack is not running (`docstack up`)"
        try:
            on_server, server_error = {m.id for m in profiles.served(self.settings)}, None
        except DocstackError as exc:
            on_server, server_error = set(), str(exc)
        statuses = []
        for spec in specs:
            if server_error:
                reason = server_error
            elif spec.id not in on_server:
                reason = "not on the model server" + self._pull_hint()
            elif stack_error:
                reason = stack_error
            elif spec.stack_id not in registered:
                reason = "on the model server but not registered in the running stack (restart it: `docstack up`)"
            else:
                reason = "ready"
            statuses.append(ModelStatus(spec, reason == "ready", reason))
        return statuses

    def pull_models(self, on_progress: Callable[[PullProgress], None]) -> list[str]:
        """Fetch what the profile's models need: Ollama pulls, or the embedded GGUF assembled."""
        if self.settings.profile == "embedded":
            return [str(profiles.model_file(self.settings, alias)) for alias in profiles.embedded_aliases(self.settings)]
        server = profiles.backend(self.settings)
        if not isinstance(server, OllamaBackend):
            raise DocstackError(f"the {self.settings.profile} profile's server manages its own models; nothing to pull")
        specs = profiles.models(self.settings, role=None)
        for spec in specs:
            server.pull(spec, on_progress)
        return [spec.provider_model_id for spec in specs]

    def _pull_hint(self) -> str:
        return " (`docstack models pull`)" if self.settings.profile == "ollama" else ""
