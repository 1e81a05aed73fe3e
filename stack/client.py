"""Generation through the Llama Stack server, and nothing else: the app never calls a model server."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from docstack.console import DocstackError

log = logging.getLogger(__name__)


class StackClient:
    def __init__(self, base_url: str, timeout: float = 300.0):
        from llama_stack_client import LlamaStackClient

        self.base_url = base_url
        self._client = LlamaStackClient(base_url=base_url, timeout=timeout, max_retries=0)

    def _unreachable(self, exc: Exception) -> DocstackError:
        return DocstackError(f"no Llama Stack server answers at {self.base_url}; start one with `docstack up`")

    def models(self) -> list[str]:
        from llama_stack_client import APIConnectionError

        try:
            return [m.id for m in self._client.models.list()]
        except APIConnectionError as exc:
            raise self._unreachable(exc) from exc

    def chat_stream(self, model: str, messages: list[dict], max_tokens: int, temperature: float) -> Iterator[str]:
        from llama_stack_client import APIConnectionError, APIStatusError

        try:
            stream = self._client.chat.completions.create(
                model=model, messages=messages, max_tokens=max_tokens, temperature=temperature, stream=True
            )
            for chunk in stream:
                for choice in chunk.choices or []:
                    if choice.delta and choice.delta.content:
                        yield choice.delta.content
        except APIConnectionError as exc:
            raise self._unreachable(exc) from exc
        except APIStatusError as exc:
            message = getattr(exc, "message", "") or str(exc)
            raise DocstackError(f"the stack refused the request for model {model}: {message[:200]}") from exc
