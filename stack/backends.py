"""The model servers behind a profile's Llama Stack: what they serve, checked before the stack
starts so an unreachable server is one clear line at `docstack up`, not a 500 on the first ask.

The app never generates through these; answers always go through the Llama Stack server."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from docstack.console import DocstackError
from docstack.stack.catalogue import ModelSpec

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 5.0


@dataclass
class PullProgress:
    model: str
    status: str
    completed: int | None = None
    total: int | None = None


class OllamaBackend:
    """An Ollama server: lists, pulls and sizes models through its HTTP API (`/api/*`)."""

    def __init__(self, url: str, timeout: float = PROBE_TIMEOUT):
        import ollama

        self.url = url.rstrip("/").removesuffix("/v1")
        self._client = ollama.Client(host=self.url, timeout=timeout)
        self._pull_client = ollama.Client(host=self.url, timeout=None)  # pulls take minutes

    def _call(self, what: str, fn: Callable):
        import ollama

        try:
            return fn()
        except (httpx.HTTPError, ConnectionError) as exc:
            raise DocstackError(f"no Ollama server answers at {self.url} (OLLAMA_URL): {what} failed") from exc
        except ollama.ResponseError as exc:
            raise DocstackError(f"Ollama at {self.url}: {what} failed: {exc.error}") from exc

    def models(self) -> set[str]:
        listed = self._call("listing models", self._client.list)
        return {m.model for m in listed.models if m.model}

    def context_length(self, model: str) -> int | None:
        """The `num_ctx` the model runs with, if one is set in its parameters."""
        shown = self._call(f"showing {model}", lambda: self._client.show(model))
        for line in (shown.parameters or "").splitlines():
            name, _, value = line.strip().partition(" ")
            if name == "num_ctx" and value.strip().isdigit():
                return int(value.strip())
        return None

    def pull(self, spec: ModelSpec, on_progress: Callable[[PullProgress], None]) -> None:
        """Pull the model's library tag, then create docstack's variant of it with its window set,
        because Ollama's own default window silently cuts long prompts."""
        source = spec.pull or spec.provider_model_id
        for part in self._call(f"pulling {source}", lambda: self._pull_client.pull(source, stream=True)):
            on_progress(PullProgress(source, part.status or "", part.completed, part.total))
        if source != spec.provider_model_id:
            self._call(f"creating {spec.provider_model_id}", lambda: self._client.create(
                model=spec.provider_model_id, from_=source, parameters={"num_ctx": spec.context}))
            on_progress(PullProgress(spec.provider_model_id, f"created with num_ctx {spec.context}"))


class OpenAIBackend:
    """An OpenAI-compatible server (vLLM, a hosted provider): lists models with `/v1/models`."""

    def __init__(self, url: str, api_key: str | None, label: str, timeout: float = PROBE_TIMEOUT):
        self.url = url.rstrip("/")
        self.label = label
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout

    def models(self) -> set[str]:
        try:
            response = httpx.get(f"{self.url}/models", headers=self._headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise DocstackError(f"no {self.label} server answers at {self.url}") from exc
        if response.status_code in (401, 403):
            raise DocstackError(f"{self.label} at {self.url} refused the API key (HTTP {response.status_code})")
        if response.status_code >= 400:
            raise DocstackError(f"{self.label} at {self.url}: listing models failed (HTTP {response.status_code})")
        body = response.json()
        # OpenAI's shape is {"data": [...]}; some hosted providers (Together) return the bare list.
        entries = body.get("data", []) if isinstance(body, dict) else body
        return {e["id"] for e in entries if isinstance(e, dict) and "id" in e}
