"""Generation through the Llama Stack server, and nothing else: the app never calls a model server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import cached_property

from docstack.console import AuthError, DocstackError

log = logging.getLogger(__name__)


class ModelFailed(DocstackError):
    """The stack answered, but the model behind it failed, timed out or is missing: another model
    may still answer (the router falls back)."""


class StackClient:
    def __init__(self, base_url: str, timeout: float = 300.0, token: str | None = None):
        self.base_url = base_url
        self.timeout = timeout
        self.token = token  # a signed-in user's ID token, sent as a bearer token (stacks with server.auth)

    def with_token(self, token: str | None) -> StackClient:
        """A client that calls the stack on behalf of the user whose token this is."""
        return StackClient(self.base_url, self.timeout, token)

    @cached_property
    def _client(self):
        # Made on first use: importing llama_stack_client costs about 0.3 s, which commands that
        # never talk to the stack (ingest, search) should not pay.
        from llama_stack_client import LlamaStackClient

        return LlamaStackClient(base_url=self.base_url, timeout=self.timeout, max_retries=0, api_key=self.token)

    def _reset(self) -> None:
        """Drop pooled connections: Llama Stack 0.7.3 closes its side after a failed stream, and the
        next request on the pooled connection would fail as if the stack were down."""
        self.__dict__.pop("_client").close()

    def _unreachable(self, exc: Exception) -> DocstackError:
        return DocstackError(f"no Llama Stack server answers at {self.base_url}; start one with `docstack up`")

    def _refused(self) -> AuthError:
        return AuthError(f"the Llama Stack server at {self.base_url} refused the token (401): "
                         + ("sign in again" if self.token else "it needs a signed-in user's token (DOCSTACK_TOKEN)"))

    def models(self) -> list[str]:
        from llama_stack_client import APIConnectionError, AuthenticationError

        try:
            return [m.id for m in self._client.models.list()]
        except APIConnectionError as exc:
            raise self._unreachable(exc) from exc
        except AuthenticationError as exc:
            raise self._refused() from exc

    def shields(self) -> list[str]:
        from llama_stack_client import APIConnectionError

        try:
            return [s.identifier for s in self._client.shields.list()]
        except APIConnectionError as exc:
            raise self._unreachable(exc) from exc

    def run_shield(self, shield_id: str, messages: list[dict]):
        """The stack's safety API (`POST /v1/safety/run-shield`): the violation, or None."""
        from llama_stack_client import APIConnectionError, APIStatusError

        try:
            return self._client.safety.run_shield(shield_id=shield_id, messages=messages).violation
        except APIConnectionError as exc:
            raise DocstackError(f"no Llama Stack server answers at {self.base_url} for the shield '{shield_id}'") \
                from exc
        except APIStatusError as exc:
            raise DocstackError(f"the stack's shield '{shield_id}' failed: {str(exc)[:200]}") from exc

    def chat_stream(self, model: str, messages: list[dict], max_tokens: int, temperature: float,
                    timeout: float | None = None) -> ChatStream:
        """The reply's text as it streams. `timeout` bounds each wait for the next piece, so a
        model that does not start answering in time raises ModelFailed."""
        return ChatStream(self, model, messages, max_tokens, temperature, timeout)


class ChatStream:
    """One streamed chat completion: iterate for the text; `finish_reason` is set once it ends.

    A stream that ends without a finish reason was cut off by the server (llama-cpp-python's
    server did that to every answer in progress when another request came in), and one that ends
    without any text failed: both raise ModelFailed, so neither passes for an abstention."""

    def __init__(self, client: StackClient, model: str, messages: list[dict], max_tokens: int, temperature: float,
                 timeout: float | None):
        self.client, self.model, self.messages = client, model, messages
        self.max_tokens, self.temperature, self.timeout = max_tokens, temperature, timeout
        self.finish_reason: str | None = None

    def __iter__(self) -> Iterator[str]:
        from llama_stack_client import APIConnectionError, APIError, APIStatusError, APITimeoutError

        client, model, timeout = self.client, self.model, self.timeout
        api = client._client.with_options(timeout=timeout) if timeout else client._client
        wrote = False
        try:
            stream = api.chat.completions.create(model=model, messages=self.messages, max_tokens=self.max_tokens,
                                                 temperature=self.temperature, stream=True)
            for chunk in stream:
                for choice in chunk.choices or []:
                    if choice.finish_reason:
                        self.finish_reason = choice.finish_reason
                    if choice.delta and choice.delta.content:
                        wrote = wrote or bool(choice.delta.content.strip())
                        yield choice.delta.content
        except APITimeoutError as exc:
            client._reset()
            raise ModelFailed(f"{model} did not answer within {timeout or 0:.0f}s") from exc
        except APIConnectionError as exc:
            raise client._unreachable(exc) from exc
        except APIStatusError as exc:
            message = getattr(exc, "message", "") or str(exc)
            client._reset()
            if exc.status_code == 401:  # not the model's fault: no other model would take the token either
                raise client._refused() from exc
            raise ModelFailed(f"the stack refused the request for model {model}: {message[:200]}") from exc
        except APIError as exc:  # an error event in the middle of the stream
            client._reset()
            raise ModelFailed(f"{model} failed while answering: {str(exc)[:200]}") from exc
        if self.finish_reason is None:
            raise ModelFailed(f"{model} stopped answering mid-way (its stream ended without finishing)")
        if not wrote:
            raise ModelFailed(f"{model} returned an empty answer (finish reason: {self.finish_reason})")
