"""Generation through the Llama Stack server, and nothing else: the app never calls a model server."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from docstack.console import DocstackError

log = logging.getLogger(__name__)


class ModelFailed(DocstackError):
    """The stack answered, but the model behind it failed, timed out or is missing: another model
    may still answer (the router falls back)."""


class StackClient:
    def __init__(self, base_url: str, timeout: float = 300.0):
        from llama_stack_client import LlamaStackClient

        self.base_url = base_url
        self._connect = lambda: LlamaStackClient(base_url=base_url, timeout=timeout, max_retries=0)
        self._client = self._connect()

    def _reset(self) -> None:
        """Drop pooled connections: Llama Stack 0.7.3 closes its side after a failed stream, and the
        next request on the pooled connection would fail as if the stack were down."""
        self._client.close()
        self._client = self._connect()

    def _unreachable(self, exc: Exception) -> DocstackError:
        return DocstackError(f"no Llama Stack server answers at {self.base_url}; start one with `docstack up`")

    def models(self) -> list[str]:
        from llama_stack_client import APIConnectionError

        try:
            return [m.id for m in self._client.models.list()]
        except APIConnectionError as exc:
            raise self._unreachable(exc) from exc

    def shields(self) -> list[str]:
        from llama_stack_client import APIConnectionError

        try:
            return [s.identifier for s in self._client.shields.list()]
        except APIConnectionError as exc:
            raise self._unreachable(exc) from exc

    def chat_stream(self, model: str, messages: list[dict], max_tokens: int, temperature: float,
                    timeout: float | None = None) -> Iterator[str]:
        """The reply's text as it streams. `timeout` bounds each wait for the next piece, so a
        model that does not start answering in time raises ModelFailed."""
        from llama_stack_client import APIConnectionError, APIError, APIStatusError, APITimeoutError

        client = self._client.with_options(timeout=timeout) if timeout else self._client
        try:
            stream = client.chat.completions.create(
                model=model, messages=messages, max_tokens=max_tokens, temperature=temperature, stream=True
            )
            for chunk in stream:
                for choice in chunk.choices or []:
                    if choice.delta and choice.delta.content:
                        yield choice.delta.content
        except APITimeoutError as exc:
            self._reset()
            raise ModelFailed(f"{model} did not answer within {timeout or 0:.0f}s") from exc
        except APIConnectionError as exc:
            raise self._unreachable(exc) from exc
        except APIStatusError as exc:
            message = getattr(exc, "message", "") or str(exc)
            self._reset()
            raise ModelFailed(f"the stack refused the request for model {model}: {message[:200]}") from exc
        except APIError as exc:  # an error event in the middle of the stream
            self._reset()
            raise ModelFailed(f"{model} failed while answering: {str(exc)[:200]}") from exc
