"""Small servers that speak the real wire protocols of model servers that cannot run here:
Ollama's HTTP API (`/api/*` and its OpenAI-compatible `/v1/*`) and OpenAI's (`/v1/models`,
`/v1/chat/completions` with server-sent events). They answer from the prompt itself: the first
sentence of excerpt [1], so a grounded answer and its citation can be checked; a Llama Guard
model answers as Llama Guard 3 does (`safe`, or `unsafe` and hazard codes).

Each model can be made slow (`delay` before the first byte), failing (HTTP 500), missing, cut off
(its stream ends after the first word without a finish reason, as llama-cpp-python's server cuts
an answer short when another request arrives) or empty (it finishes without a word)."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FakeModel:
    name: str
    delay: float = 0.0
    fail: bool = False
    cut: bool = False
    empty: bool = False
    parameters: dict = field(default_factory=dict)


# What the fake Llama Guard treats as unsafe, with Llama Guard 3's hazard codes.
HAZARDS = [(re.compile(r"pipe bomb|nerve gas|explosive", re.I), "S9"),
           (re.compile(r"poison (?:someone|him|her)", re.I), "S1")]
_CONVERSATION = re.compile(r"<BEGIN CONVERSATION>(.*)<END CONVERSATION>", re.S)


def guard_verdict(prompt: str) -> str:
    """Llama Guard 3's answer: `safe`, or `unsafe` and the hazard codes on the next line."""
    found = _CONVERSATION.search(prompt)
    conversation = found.group(1) if found else prompt
    codes = [code for pattern, code in HAZARDS if pattern.search(conversation)]
    return f"unsafe\n{','.join(codes)}" if codes else "safe"


def prompt_text(messages: list[dict]) -> str:
    return "\n".join(m["content"] if isinstance(m["content"], str) else
                     " ".join(p.get("text", "") for p in m["content"]) for m in messages)


def reply_for(messages: list[dict], model: str) -> str:
    """A Llama Guard model's verdict; otherwise the first sentence of excerpt [1] in the system
    message, else a fixed line."""
    if "llama-guard" in model.lower():
        return guard_verdict(prompt_text(messages))
    system = next((m["content"] for m in messages if m.get("role") == "system"), "")
    found = re.search(r"\[1\]\s*(.+?[.!?])(\s|$)", system if isinstance(system, str) else "", re.S)
    return f"{found.group(1).strip()}" if found else f"{model} has no excerpts to answer from."


class _Server:
    """A threaded HTTP server on a free loopback port, stopped with `close()`."""

    def __init__(self) -> None:
        self.models: dict[str, FakeModel] = {}
        self.requests: list[tuple[str, dict]] = []
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._httpd.handle_error = lambda request, address: None  # clients that hang up (timeout tests)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def add(self, name: str, **kwargs) -> FakeModel:
        self.models[name] = FakeModel(name, **kwargs)
        return self.models[name]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def handle(self, h: _Handler, method: str, path: str, body: dict) -> None:  # overridden
        h.send_json(404, {"error": f"{path} not found"})

    # OpenAI's protocol, shared by both fakes.
    def openai_models(self, h: _Handler) -> None:
        h.send_json(200, {"object": "list", "data": [
            {"id": name, "object": "model", "created": 1700000000, "owned_by": "fake"} for name in self.models]})

    def openai_chat(self, h: _Handler, body: dict) -> None:
        model = self.models.get(body.get("model", ""))
        if model is None:
            h.send_json(404, {"error": {"message": f"model '{body.get('model')}' not found", "type": "not_found"}})
            return
        time.sleep(model.delay)
        if model.fail:
            h.send_json(500, {"error": {"message": "the model crashed", "type": "server_error"}})
            return
        text = "" if model.empty else reply_for(body.get("messages", []), model.name)
        created, ident = int(time.time()), f"chatcmpl-{time.time_ns()}"
        if not body.get("stream"):
            h.send_json(200, {"id": ident, "object": "chat.completion", "created": created, "model": model.name,
                              "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                           "finish_reason": "stop"}],
                              "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})
            return
        h.start_stream("text/event-stream")
        words = re.findall(r"\S+\s*", text)
        for i, word in enumerate(words[:1] if model.cut else words):
            delta = {"role": "assistant", "content": word} if i == 0 else {"content": word}
            h.send_event({"id": ident, "object": "chat.completion.chunk", "created": created, "model": model.name,
                          "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        if model.cut:
            h.write(b"data: [DONE]\n\n")
            h.end_stream()
            return
        h.send_event({"id": ident, "object": "chat.completion.chunk", "created": created, "model": model.name,
                      "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        h.write(b"data: [DONE]\n\n")
        h.end_stream()


class FakeOllama(_Server):
    """Ollama's `/api/tags`, `/api/show`, `/api/ps`, `/api/pull`, `/api/create`, `/api/chat`,
    `/api/version`, and its OpenAI-compatible `/v1/models` and `/v1/chat/completions`."""

    def __init__(self, library: tuple[str, ...] = ("llama3.2:1b", "llama3.2:3b", "llama-guard3:1b")):
        super().__init__()
        self.library = set(library)  # what `pull` can fetch

    def handle(self, h, method, path, body):
        routes = {
            ("GET", "/api/version"): lambda: h.send_json(200, {"version": "0.12.6"}),
            ("GET", "/api/tags"): lambda: h.send_json(200, {"models": [self._tag(m) for m in self.models.values()]}),
            ("GET", "/api/ps"): lambda: h.send_json(200, {"models": []}),
            ("POST", "/api/show"): lambda: self._show(h, body),
            ("POST", "/api/pull"): lambda: self._pull(h, body),
            ("POST", "/api/create"): lambda: self._create(h, body),
            ("POST", "/api/chat"): lambda: self._chat(h, body),
            ("GET", "/v1/models"): lambda: self.openai_models(h),
            ("POST", "/v1/chat/completions"): lambda: self.openai_chat(h, body),
        }
        route = routes.get((method, path))
        if route is None:
            h.send_json(404, {"error": f"{method} {path} not found"})
        else:
            route()

    @staticmethod
    def _tag(m: FakeModel) -> dict:
        return {"name": m.name, "model": m.name, "modified_at": "2026-11-01T00:00:00Z", "size": 1_321_098_329,
                "digest": "a80c4f17acd5" + "0" * 52,
                "details": {"format": "gguf", "family": "llama", "parameter_size": "1.2B",
                            "quantization_level": "Q8_0"}}

    def _show(self, h, body):
        m = self.models.get(body.get("model", ""))
        if m is None:
            h.send_json(404, {"error": f"model '{body.get('model')}' not found"})
            return
        parameters = "\n".join(f"{k:<30} {v}" for k, v in m.parameters.items())
        h.send_json(200, {"modelfile": f"FROM {m.name}\n", "parameters": parameters, "template": "{{ .Prompt }}",
                          "details": self._tag(m)["details"], "model_info": {"llama.context_length": 131072},
                          "capabilities": ["completion"]})

    def _pull(self, h, body):
        name = body.get("model", "")
        if name not in self.library:
            h.send_json(500, {"error": "pull model manifest: file does not exist"})
            return
        h.start_stream("application/x-ndjson")
        h.send_line({"status": "pulling manifest"})
        total = 1_000_000
        for done in (0, 250_000, 750_000, total):
            h.send_line({"status": "pulling a80c4f17acd5", "digest": "sha256:a80c4f17acd5", "total": total,
                         "completed": done})
        for status in ("verifying sha256 digest", "writing manifest", "success"):
            h.send_line({"status": status})
        h.end_stream()
        self.add(name)

    def _create(self, h, body):
        source = body.get("from", "")
        if source not in self.models:
            h.send_json(404, {"error": f"model '{source}' not found"})
            return
        self.add(body["model"], parameters=dict(body.get("parameters") or {}))
        if body.get("stream", True):
            h.start_stream("application/x-ndjson")
            for status in ("using existing layer", "writing manifest", "success"):
                h.send_line({"status": status})
            h.end_stream()
        else:
            h.send_json(200, {"status": "success"})

    def _chat(self, h, body):
        m = self.models.get(body.get("model", ""))
        if m is None:
            h.send_json(404, {"error": f"model '{body.get('model')}' not found, try pulling it first"})
            return
        time.sleep(m.delay)
        text = reply_for(body.get("messages", []), m.name)
        h.start_stream("application/x-ndjson")
        for word in re.findall(r"\S+\s*", text):
            h.send_line({"model": m.name, "created_at": "2026-11-25T00:00:00Z",
                         "message": {"role": "assistant", "content": word}, "done": False})
        h.send_line({"model": m.name, "created_at": "2026-11-25T00:00:00Z", "message": {"role": "assistant",
                     "content": ""}, "done": True, "done_reason": "stop", "prompt_eval_count": 10, "eval_count": 5})
        h.end_stream()


class FakeOpenAI(_Server):
    """An OpenAI-compatible server (vLLM, a hosted provider), optionally checking a bearer key."""

    def __init__(self, api_key: str | None = None):
        super().__init__()
        self.api_key = api_key

    def handle(self, h, method, path, body):
        if self.api_key and h.headers.get("Authorization") != f"Bearer {self.api_key}":
            h.send_json(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
        elif (method, path) == ("GET", "/v1/models"):
            self.openai_models(h)
        elif (method, path) == ("POST", "/v1/chat/completions"):
            self.openai_chat(h, body)
        else:
            h.send_json(404, {"error": {"message": f"{method} {path} not found"}})


class _Handler(BaseHTTPRequestHandler):
    fake: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw.strip() else {}
        path = self.path.split("?")[0]
        self.fake.requests.append((path, body))
        try:
            self.fake.handle(self, method, path, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def send_json(self, status: int, data: dict) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._streaming = True

    def write(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")  # the chunked body's end
        self.wfile.flush()

    def send_line(self, data: dict) -> None:
        self.write(json.dumps(data).encode() + b"\n")

    def send_event(self, data: dict) -> None:
        self.write(b"data: " + json.dumps(data).encode() + b"\n\n")
