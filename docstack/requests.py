"""Each public call of the Python API as a request: timed, traced and counted (docstack.telemetry),
and written to the request audit (docstack.access.audit) when identity is on. One line per method:

    @request("search")
    def search(self, query, collection=None, ...): ...

The question (`question`, `query` or `term`) and the collection are read from the call's
arguments; the cited chunks, the model and the safety decision from what it returns. A streamed
answer is recorded when its reader is done with it (or stops, or it fails)."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable

import docstack.telemetry as telemetry
from docstack.access.audit import RequestAudit
from docstack.access.identity import Principal
from docstack.rag.answer import Answer, AnswerStream
from docstack.rag.retrieve import Hit

QUESTION_ARGUMENTS = ("question", "query", "term")
# action, or a function of the call's arguments that names it (ingest with sync=True is a "sync")
Action = str | Callable[[dict], str]


def request(action: Action):
    def wrap(method):
        signature = inspect.signature(method)

        @functools.wraps(method)
        def call(ds, *args, **kwargs):
            bound = signature.bind(ds, *args, **kwargs)
            bound.apply_defaults()
            arguments = bound.arguments
            name = action(arguments) if callable(action) else action
            return _Request(ds, name, arguments).run(method, ds, args, kwargs)

        return call

    return wrap


class _Request:
    def __init__(self, ds, action: str, arguments: dict):
        self.settings = ds.settings
        self.action = action
        self.principal: Principal = ds.principal
        self.collection = arguments.get("collection") or (self.settings.collection if "collection" in arguments
                                                          else None)
        self.question = next((arguments[k] for k in QUESTION_ARGUMENTS if isinstance(arguments.get(k), str)), None)
        self.started = time.perf_counter()
        self.span = telemetry.start(f"docstack.{action}", **{
            "docstack.collection": self.collection,
            "enduser.id": self.principal.user if self.settings.identity else None})

    def run(self, method, ds, args, kwargs):
        try:
            with telemetry.current(self.span):
                result = method(ds, *args, **kwargs)
        except BaseException as exc:
            self.done(None, exc)
            raise
        if isinstance(result, AnswerStream):
            return result.observe(self.done)
        self.done(result, None)
        return result

    def done(self, result, error: BaseException | None) -> None:
        seconds = time.perf_counter() - self.started
        outcome = "ok" if error is None else ("cancelled" if isinstance(error, GeneratorExit) else "error")
        if error is not None:
            self.span.fail(error if outcome == "error" else outcome)
        telemetry.record_request(self.action, seconds, outcome)
        self.span.end()
        if self.settings.identity and self.settings.audit:
            chunk_ids, model, safety = _details(result)
            RequestAudit(self.settings.log_dir).record(
                self.principal, self.action, self.collection, self.question, chunk_ids, model, seconds, safety,
                error=None if error is None else (str(error) or type(error).__name__)[:300])


def _details(result) -> tuple[list[int], str | None, dict | None]:
    """What a result says for the audit: the chunks it cites, the model, the safety decision."""
    if isinstance(result, Answer):
        return [c.chunk_id for c in result.citations], result.model, result.safety.summary()
    if isinstance(result, list) and all(isinstance(hit, Hit) for hit in result):
        return [hit.chunk_id for hit in result], None, None
    return [], None, None
