"""A loopback OpenAI-compatible chat server for tests and benchmarks: fixed latency and injected faults.

It answers ``POST /v1/chat/completions`` with whatever ``responder(request_body)`` returns as the
assistant's content. A seeded share of requests gets a fault instead: HTTP 429, HTTP 500 (whose body
echoes the request's Authorization header, as a careless proxy might, so key scrubbing is tested),
a hang past the client's timeout, a response body that is broken JSON, or a well-formed response
whose content is not the JSON the client asked for. Like ``transformers serve DIR``, it can be
pinned to one model name and answer 400 to any other. Every request and fault is counted.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[dict[str, Any]], str]
FAULTS = ("429", "500", "hang", "broken_body", "malformed_content")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default of 5 refuses bursts of concurrent connections


class FakeOpenAI:
    def __init__(
        self,
        responder: Responder,
        *,
        latency_s: float = 0.0,
        fault_rate: float = 0.0,
        faults: tuple[str, ...] = FAULTS,
        hang_s: float = 2.0,
        seed: int = 0,
        model: str | None = None,
    ) -> None:
        self.responder = responder
        self.model = model
        self.latency_s = latency_s
        self.fault_rate = fault_rate
        self.faults = faults
        self.hang_s = hang_s
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.authorizations: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _pick_fault(self) -> str | None:
        with self._lock:
            if self._rng.random() < self.fault_rate:
                return self._rng.choice(self.faults)
            return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:
                if self.path.endswith("/stats"):
                    with fake._lock:
                        stats = {**fake.counts, "max_in_flight": fake.max_in_flight}
                    self._send(200, json.dumps(stats).encode())
                    return
                self._send(200, b'{"status":"ok"}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                auth = self.headers.get("Authorization", "")
                with fake._lock:
                    fake.counts["requests"] += 1
                    fake.authorizations.append(auth)
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    self._answer(body, auth)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

            def _answer(self, body: dict[str, Any], auth: str) -> None:
                if fake.model is not None and body.get("model") != fake.model:
                    message = f"Server is pinned to {fake.model!r}; requested {body.get('model')!r}."
                    self._send(400, json.dumps({"detail": message}).encode())
                    return
                if fake.latency_s:
                    time.sleep(fake.latency_s)
                fault = fake._pick_fault()
                if fault:
                    with fake._lock:
                        fake.counts[fault] += 1
                if fault == "429":
                    self._send(429, b'{"error":{"message":"rate limited"}}', {"Retry-After": "0"})
                    return
                if fault == "500":
                    message = f"upstream failed for request with header Authorization: {auth}"
                    self._send(500, json.dumps({"error": {"message": message}}).encode())
                    return
                if fault == "hang":
                    time.sleep(fake.hang_s)
                    self._send(504, b'{"error":{"message":"too late"}}')
                    return
                if fault == "broken_body":
                    self._send(200, b'{"id": "x", "choices": [{"message": {"content": "tru')
                    return
                content = "Sorry, I cannot help with that." if fault == "malformed_content" else None
                if content is None:
                    content = fake.responder(body)
                    with fake._lock:
                        fake.counts["ok"] += 1
                prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
                reply = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "fake"),
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": content},
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": len(content.split()),
                        "total_tokens": prompt_tokens + len(content.split()),
                    },
                }
                self._send(200, json.dumps(reply).encode())

        return Handler


def main() -> None:
    """Serve fixed replies with a fixed latency in a process of its own (for benchmarks): prints the
    base URL, then serves until killed."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    server = FakeOpenAI(lambda body: "ok", latency_s=args.latency)
    print(server.base_url, flush=True)
    server._server.serve_forever()


if __name__ == "__main__":
    main()
