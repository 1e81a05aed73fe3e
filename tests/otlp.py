"""A real OTLP/HTTP receiver for the telemetry tests: an HTTP server on 127.0.0.1 that takes what
an OpenTelemetry collector takes (POST /v1/traces and /v1/metrics, protobuf bodies, gzip or not)
and decodes it with the OTLP protobuf definitions (opentelemetry-proto)."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (ExportMetricsServiceRequest,
                                                                          ExportMetricsServiceResponse)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                      ExportTraceServiceResponse)

SIGNALS = {"/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
           "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse)}


def _value(any_value):
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def attributes(items) -> dict:
    return {item.key: _value(item.value) for item in items}


class OtlpReceiver:
    def __init__(self):
        self.requests: list[tuple[str, object]] = []  # (path, decoded request), in arrival order
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path not in SIGNALS or self.headers.get("Content-Type") != "application/x-protobuf":
                    self.send_response(404)
                    self.end_headers()
                    return
                request, response = SIGNALS[self.path]
                received.append((self.path, request.FromString(body)))
                reply = response().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def spans(self) -> list[dict]:
        """Every span received: name, ids, parent, attributes, status, and its resource's attributes."""
        found = []
        for path, request in self.requests:
            if path != "/v1/traces":
                continue
            for resource_spans in request.resource_spans:
                resource = attributes(resource_spans.resource.attributes)
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        found.append({"name": span.name, "trace": span.trace_id.hex(), "id": span.span_id.hex(),
                                      "parent": span.parent_span_id.hex(), "attributes": attributes(span.attributes),
                                      "status": span.status.code, "resource": resource})
        return found

    def metrics(self) -> dict[str, list[tuple[dict, float]]]:
        """Each metric's data points, (attributes, value): a sum's value, or a histogram's count."""
        found: dict[str, list[tuple[dict, float]]] = {}
        for path, request in self.requests:
            if path != "/v1/metrics":
                continue
            for resource_metrics in request.resource_metrics:
                for scope in resource_metrics.scope_metrics:
                    for metric in scope.metrics:
                        kind = metric.WhichOneof("data")
                        for point in getattr(metric, kind).data_points:
                            value = point.count if kind == "histogram" else (point.as_int or point.as_double)
                            found.setdefault(metric.name, []).append((attributes(point.attributes), value))
        return found
