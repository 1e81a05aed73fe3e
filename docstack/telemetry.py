"""OpenTelemetry traces and metrics, exported over OTLP/HTTP when an endpoint is configured
(DOCSTACK_OTEL_ENDPOINT or the standard OTEL_EXPORTER_OTLP_ENDPOINT) and off otherwise.

Off, `span()` hands out one shared do-nothing object and the metric calls return at once:
nothing of OpenTelemetry is imported (bench/bench_telemetry.py measures what on costs). On, the
providers are docstack's own, not the global ones, so a library that sets up its own
OpenTelemetry is not overridden; spans still nest through OpenTelemetry's context.

    telemetry.configure(settings.otel_endpoint)          # once per process (DocStack does it)
    with telemetry.span("docstack.retrieve", **{"docstack.k": 5}) as span:
        span.set_attribute("docstack.hits", 3)
    telemetry.record_request("search", seconds=0.02, outcome="ok")

A span that outlives the call that opens it (a streamed answer ends when its reader is done) is
started with `start()` and ended by hand; `span(..., parent=that)` hangs later stages under it.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

SERVICE_NAME = "docstack"
# Metrics go out every 15 s (the SDK's default is 60 s) and when the process exits.
EXPORT_INTERVAL_MS = 15_000


class _NoSpan:
    """What every span is while telemetry is off."""

    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def set_attributes(self, attributes: dict) -> None:
        pass

    def fail(self, error: BaseException | str) -> None:
        pass

    def end(self) -> None:
        pass

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc) -> None:
        pass


NO_SPAN = _NoSpan()


class _Span:
    """An OpenTelemetry span with `fail()`: an error status and the error's one line."""

    def __init__(self, span):
        self.span = span

    def set_attribute(self, key: str, value: Any) -> None:
        if value is not None:
            self.span.set_attribute(key, value)

    def set_attributes(self, attributes: dict) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def fail(self, error: BaseException | str) -> None:
        from opentelemetry.trace import Status, StatusCode

        if isinstance(error, BaseException):
            self.span.record_exception(error)
        self.span.set_status(Status(StatusCode.ERROR, str(error)[:200]))

    def end(self) -> None:
        self.span.end()


class _Telemetry:
    def __init__(self, endpoint: str):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        base = endpoint.rstrip("/")
        # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, where set, win over the default name;
        # the exporters read OTEL_EXPORTER_OTLP_HEADERS, _CERTIFICATE, _TIMEOUT themselves.
        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME})
        self.endpoint = base
        # Shut down (sending what is buffered) by this module's own exit hook, once, whichever
        # providers are current then: theirs would also run for providers replaced meanwhile.
        self.tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        self.tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
        reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{base}/v1/metrics"),
                                               export_interval_millis=EXPORT_INTERVAL_MS)
        self.meter_provider = MeterProvider(metric_readers=[reader], resource=resource, shutdown_on_exit=False)
        self.tracer = self.tracer_provider.get_tracer("docstack")
        meter = self.meter_provider.get_meter("docstack")
        self.requests = meter.create_counter("docstack.requests", "{request}", "requests by action and outcome")
        self.duration = meter.create_histogram("docstack.request.duration", "s", "time to serve a request")
        self.tokens = meter.create_counter("gen_ai.client.token.usage", "{token}",
                                           "prompt tokens, and streamed answer pieces (a token each)")
        self.blocked = meter.create_counter("docstack.safety.blocked", "{request}", "requests a shield blocked")

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


_state: _Telemetry | None = None
_lock = threading.Lock()


def configure(endpoint: str | None) -> bool:
    """Export to `endpoint` (the OTLP/HTTP base URL, e.g. http://collector:4318) from now on, or
    turn telemetry off with None. Returns whether it is on. OTEL_SDK_DISABLED=true keeps it off."""
    global _state
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        endpoint = None
    with _lock:
        if _state is not None and endpoint and _state.endpoint == endpoint.rstrip("/"):
            return True
        if _state is not None:
            _state.shutdown()
            _state = None
        if endpoint:
            _state = _Telemetry(endpoint)
            log.info("telemetry: OTLP/HTTP to %s", _state.endpoint)
    return _state is not None


@atexit.register
def _at_exit() -> None:
    configure(None)


def enabled() -> bool:
    return _state is not None


def flush() -> None:
    """Send what is buffered now (tests; the exporters also send at exit)."""
    if _state is not None:
        _state.tracer_provider.force_flush()
        _state.meter_provider.force_flush()


def start(name: str, parent: _Span | _NoSpan | None = None, **attributes) -> _Span | _NoSpan:
    """A span to end by hand, under `parent` or the current span."""
    state = _state
    if state is None:
        return NO_SPAN
    return _Span(state.tracer.start_span(name, context=_context(parent), attributes=_clean(attributes)))


def span(name: str, parent: _Span | _NoSpan | None = None, **attributes):
    """A span around a `with` block, current inside it (spans opened within nest under it); an
    exception leaving the block marks it failed. Off, the shared NO_SPAN, and no generator is made
    (a span then costs 0.6 us with its attributes, 1.3 us through a generator: bench_telemetry.py)."""
    state = _state
    if state is None:
        return NO_SPAN
    return _current_span(state, name, parent, attributes)


@contextmanager
def _current_span(state: _Telemetry, name: str, parent: _Span | _NoSpan | None, attributes: dict):
    with state.tracer.start_as_current_span(name, context=_context(parent), attributes=_clean(attributes),
                                            record_exception=False, set_status_on_exception=False) as inner:
        wrapped = _Span(inner)
        try:
            yield wrapped
        except BaseException as exc:
            wrapped.fail(exc)
            raise


@contextmanager
def current(parent: _Span | _NoSpan):
    """Make `parent` the current span inside the block (stages run later under a request's span)."""
    if _state is None or not isinstance(parent, _Span):
        yield
        return
    from opentelemetry import context, trace

    token = context.attach(trace.set_span_in_context(parent.span))
    try:
        yield
    finally:
        context.detach(token)


def record_request(action: str, seconds: float, outcome: str) -> None:
    if _state is not None:
        attributes = {"docstack.action": action, "docstack.outcome": outcome}
        _state.requests.add(1, attributes)
        _state.duration.record(seconds, attributes)


def record_tokens(model: str, prompt: int, output: int) -> None:
    if _state is not None:
        _state.tokens.add(prompt, {"gen_ai.token.type": "input", "gen_ai.request.model": model})
        _state.tokens.add(output, {"gen_ai.token.type": "output", "gen_ai.request.model": model})


def record_blocked(stage: str | None, category: str | None) -> None:
    if _state is not None:
        _state.blocked.add(1, {"docstack.safety.stage": stage or "", "docstack.safety.category": category or ""})


def _context(parent: _Span | _NoSpan | None):
    if not isinstance(parent, _Span):
        return None
    from opentelemetry import trace

    return trace.set_span_in_context(parent.span)


def _clean(attributes: dict) -> dict:
    return {key: value for key, value in attributes.items() if value is not None}
