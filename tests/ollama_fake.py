"""A stand-in for an Ollama server that serves Llama Guard, speaking Ollama's HTTP protocol (the
native /api routes Llama Stack's ollama provider probes, and the OpenAI-compatible /v1 routes it
generates through). It answers as Llama Guard 3 does: `safe`, or `unsafe` and the hazard codes on
the next line. Only the verdict is faked; everything between docstack and here is real."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "llama-guard3:1b"
# What this fake treats as unsafe, with Llama Guard 3's hazard code.
HAZARDS = [(re.compile(r"pipe bomb|nerve gas|explosive", re.I), "S9"), (re.compile(r"poison (?:someone|him|her)", re.I), "S1")]
_CONVERSATION = re.compile(r"<BEGIN CONVERSATION>(.*)<END CONVERSATION>", re.S)


def judge(prompt: str) -> str:
    found = _CONVERSATION.search(prompt)
    conversation = found.group(1) if found else prompt
    codes = [code for pattern, code in HAZARDS if pattern.search(conversation)]
    return f"unsafe\n{','.join(codes)}" if codes else "safe"


class _Handler(BaseHTTPRequestHandler):
    server: OllamaFake

    def log_message(self, *args) -> None:
        pass

    def _json(self, body: dict, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        now = int(time.time())
        if self.path == "/api/ps":
            self._json({"models": []})
        elif self.path == "/api/tags":
            self._json({"models": [{"name": MODEL, "model": MODEL, "modified_at": "2025-01-01T00:00:00Z", "size": 1,
                                    "digest": "0" * 64, "details": {"family": "llama", "parameter_size": "1.5B"}}]})
        elif self.path == "/api/version":
            self._json({"version": "0.12.6"})
        elif self.path == "/v1/models":
            self._json({"object": "list", "data": [{"id": MODEL, "object": "model", "created": now, "owned_by": "library"}]})
        else:
            self._json({"error": "not found"}, 404)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path != "/v1/chat/completions":
            self._json({"error": "not found"}, 404)
            return
        if body.get("model") != MODEL:
            self._json({"error": {"message": f"model \"{body.get('model')}\" not found, try pulling it first"}}, 404)
            return
        prompt = "\n".join(m["content"] if isinstance(m["content"], str) else
                           " ".join(p.get("text", "") for p in m["content"]) for m in body["messages"])
        verdict = judge(prompt)
        self.server.requests.append({"prompt": prompt, "verdict": verdict})
        self._json({
            "id": f"chatcmpl-{len(self.server.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": MODEL, "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": verdict}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 2, "total_tokens": len(prompt.split()) + 2},
        })


class OllamaFake(ThreadingHTTPServer):
    def __init__(self, port: int = 0):
        super().__init__(("127.0.0.1", port), _Handler)
        self.requests: list[dict] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> OllamaFake:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
