"""A small real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

It serves ``POST /v1/chat/completions``, Azure's
``POST /openai/deployments/{deployment}/chat/completions?api-version=...`` and ``GET /v1/models``
(any path prefix is accepted), and records every request with its headers and body.

What it answers is scriptable:

* ``server.script(marker, *behaviours)`` — requests whose last user message contains ``marker``
  get these behaviours in order (one per request, retries included); once used up, the default.
* ``server.queue(*behaviours)`` — the next requests without a scripted marker get these, in order.
* otherwise the default: an answer after ``latency_s``.

Behaviours: :func:`answer`, :func:`status` (429 with ``Retry-After``, 500...), :func:`hang` (no
reply until the client gives up), :func:`malformed` (invalid JSON), :func:`no_choices`,
:func:`content_filter`.

Run it standalone (for ``bench/``): ``python tests/openai_server.py --latency 0.1`` prints
``PORT <n>`` and serves until killed; ``GET /_stats`` returns request counts and the maximum
number of requests in flight.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_AZURE_PATH = re.compile(r"/openai/deployments/(?P<deployment>[^/]+)/chat/completions$")


@dataclass(frozen=True)
class Behaviour:
    """What the server does with one request.

    Attributes:
        kind: ``answer``, ``status``, ``hang``, ``malformed``, ``no_choices``, ``content_filter``.
        delay_s: Wait before replying.
        status: HTTP status for ``status``.
        retry_after: ``Retry-After`` header value, if any.
        text: Answer text (default: from the server's ``answers``).
    """

    kind: str
    delay_s: float = 0.0
    status: int = 200
    retry_after: str | None = None
    text: str | None = None


def answer(text: str | None = None, delay_s: float = 0.0) -> Behaviour:
    return Behaviour("answer", delay_s=delay_s, text=text)


def status(code: int, retry_after: float | str | None = None, delay_s: float = 0.0) -> Behaviour:
    ra = None if retry_after is None else str(retry_after)
    return Behaviour("status", delay_s=delay_s, status=code, retry_after=ra)


def hang(seconds: float = 30.0) -> Behaviour:
    return Behaviour("hang", delay_s=seconds)


def malformed() -> Behaviour:
    return Behaviour("malformed")


def no_choices() -> Behaviour:
    return Behaviour("no_choices")


def content_filter() -> Behaviour:
    return Behaviour("content_filter")


@dataclass
class Recorded:
    """One request as the server saw it (times from ``time.monotonic()``)."""

    index: int
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes
    body: Any
    started: float
    finished: float = 0.0  # when the reply was handed to the socket (0.0: no reply yet)
    behaviour: str = ""
    status: int = 0
    deployment: str | None = None

    @property
    def prompt(self) -> str:
        """The last user message ('' if none)."""
        messages = self.body.get("messages", []) if isinstance(self.body, dict) else []
        users = [m.get("content", "") for m in messages if m.get("role") == "user"]
        return users[-1] if users else ""


Answers = Callable[[list[dict[str, Any]]], str]


@dataclass
class OpenAITestServer:
    """The server; use as a context manager or call :meth:`start` / :meth:`stop`.

    Args:
        latency_s: Delay of the default answer.
        answers: ``{substring of the prompt: answer}`` or ``f(messages) -> answer``
            (default: ``"echo: <prompt>"``).
        api_key: If set, requests must carry it (``Authorization: Bearer`` or Azure's ``api-key``).
        model: The model name listed by ``/v1/models``.
    """

    latency_s: float = 0.0
    answers: dict[str, str] | Answers | None = None
    api_key: str | None = None
    model: str = "test-model"
    requests: list[Recorded] = field(default_factory=list)
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, list[Behaviour]] = {}
        self._queue: list[Behaviour] = []
        self._in_flight = 0
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- scripting ---------------------------------------------------------------------------
    def script(self, marker: str, *behaviours: Behaviour) -> None:
        with self._lock:
            self._scripts[marker] = list(behaviours)

    def queue(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self._queue.extend(behaviours)

    def _next_behaviour(self, prompt: str) -> Behaviour:
        with self._lock:
            for marker, todo in self._scripts.items():
                if marker in prompt:
                    if todo:
                        return todo.pop(0)
                    break
            else:
                if self._queue:
                    return self._queue.pop(0)
        return answer(delay_s=self.latency_s)

    def answer_text(self, messages: list[dict[str, Any]]) -> str:
        prompt = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
        if callable(self.answers):
            return self.answers(messages)
        for key, value in (self.answers or {}).items():
            if key in prompt:
                return value
        return f"echo: {prompt}"

    # -- queries -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def chat_requests(self, marker: str | None = None) -> list[Recorded]:
        """Recorded chat requests (optionally only those whose prompt contains ``marker``)."""
        with self._lock:
            done = [r for r in self.requests if r.path.endswith("/chat/completions")]
        return [r for r in done if marker is None or marker in r.prompt]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.max_in_flight = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> OpenAITestServer:
        handler = type("Handler", (_Handler,), {"server_state": self})
        httpd = _Server(("127.0.0.1", 0), handler)
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="openai-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # releases hanging handlers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # the default backlog (5) drops connects at high concurrency


def _words(text: str) -> int:
    return len(text.split())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: OpenAITestServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    # -- plumbing ----------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        # Replies go out in one write; no Nagle delay either (else the client's delayed ACK
        # adds ~40 ms to every keep-alive request, which real servers do not).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, code: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        # Stamp before writing: once the bytes are out the client may return (and a test read
        # the record) before this thread runs again.
        rec = getattr(self, "_rec", None)
        if rec is not None and not rec.finished:
            rec.finished = time.monotonic()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self._headers_buffer.append(b"\r\n" + payload)  # headers + body in one write
            self.flush_headers()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            self.close_connection = True

    def _json(self, code: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(code, json.dumps(obj).encode(), headers)

    def _error(self, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        err = {"error": {"message": message, "type": "test_server_error", "code": str(code)}}
        self._json(code, err, headers)

    def _record(self, body_bytes: bytes) -> Recorded:
        s = self.server_state
        parts = urlsplit(self.path)
        try:
            body = json.loads(body_bytes) if body_bytes else None
        except ValueError:
            body = None
        m = _AZURE_PATH.search(parts.path)
        with s._lock:
            rec = Recorded(
                index=len(s.requests), method=self.command, path=parts.path,
                query=dict(parse_qsl(parts.query)),
                headers={k.lower(): v for k, v in self.headers.items()},
                raw=body_bytes, body=body, started=time.monotonic(),
                deployment=m["deployment"] if m else None,
            )
            s.requests.append(rec)
        self._rec = rec
        return rec

    # -- routes ------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - http.server API
        s = self.server_state
        path = urlsplit(self.path).path
        if path == "/_stats":
            with s._lock:
                chats = sum(1 for r in s.requests if r.path.endswith("/chat/completions"))
                self._json(200, {"chat_requests": chats, "max_in_flight": s.max_in_flight})
            return
        rec = self._record(b"")
        if path.endswith("/models"):
            rec.status = 200
            self._json(200, {"object": "list", "data": [
                {"id": s.model, "object": "model", "created": 0, "owned_by": "aliasgate-tests"}]})
        else:
            rec.status = 404
            self._error(404, f"no route {path}")
        rec.finished = rec.finished or time.monotonic()

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        s = self.server_state
        length = int(self.headers.get("Content-Length") or 0)
        rec = self._record(self.rfile.read(length) if length else b"")
        if not rec.path.endswith("/chat/completions"):
            rec.status = 404
            self._error(404, f"no route {rec.path}")
            rec.finished = rec.finished or time.monotonic()
            return
        with s._lock:
            s._in_flight += 1
            s.max_in_flight = max(s.max_in_flight, s._in_flight)
        try:
            self._chat(rec)
        finally:
            with s._lock:
                s._in_flight -= 1
            rec.finished = rec.finished or time.monotonic()

    def _authorised(self, rec: Recorded) -> bool:
        key = self.server_state.api_key
        if key is None:
            return True
        if rec.deployment is not None:
            return rec.headers.get("api-key") == key
        return rec.headers.get("authorization") == f"Bearer {key}"

    def _chat(self, rec: Recorded) -> None:
        s = self.server_state
        rid = {"x-request-id": f"req_{rec.index}"}
        if not isinstance(rec.body, dict) or not isinstance(rec.body.get("messages"), list):
            rec.behaviour, rec.status = "bad_request", 400
            self._error(400, "body must be JSON with a 'messages' list", rid)
            return
        if not self._authorised(rec):
            rec.behaviour, rec.status = "unauthorised", 401
            self._error(401, "invalid api key", rid)
            return
        b = s._next_behaviour(rec.prompt)
        rec.behaviour = b.kind
        if b.kind == "hang":
            s._stop.wait(b.delay_s)
            rec.status = 0
            self.close_connection = True
            return
        if b.delay_s:
            s._stop.wait(b.delay_s)
        if b.kind == "status":
            rec.status = b.status
            headers = dict(rid)
            if b.retry_after is not None:
                headers["Retry-After"] = b.retry_after
            self._error(b.status, f"scripted HTTP {b.status}", headers)
            return
        rec.status = 200
        if b.kind == "malformed":
            self._send(200, b'{"id": "chatcmpl-x", "choices": [{"message": ', rid)
            return
        body = rec.body
        model = body.get("model") or s.model
        created = int(time.time())
        prompt_tokens = sum(_words(str(m.get("content", ""))) for m in body["messages"])
        base = {"id": f"chatcmpl-{rec.index}", "object": "chat.completion", "created": created,
                "model": model}
        if b.kind == "no_choices":
            self._json(200, {**base, "usage": {"prompt_tokens": prompt_tokens,
                                               "completion_tokens": 0,
                                               "total_tokens": prompt_tokens}}, rid)
            return
        if b.kind == "content_filter":
            choice = {"index": 0, "message": {"role": "assistant", "content": None},
                      "finish_reason": "content_filter"}
            self._json(200, {**base, "choices": [choice]}, rid)
            return
        text = b.text if b.text is not None else s.answer_text(body["messages"])
        finish = "stop"
        for stop in body.get("stop") or []:
            if stop and stop in text:
                text = text[: text.index(stop)]
        cap = body.get("max_tokens") or body.get("max_completion_tokens")
        if cap is not None and _words(text) > int(cap):
            text = " ".join(text.split()[: int(cap)])
            finish = "length"
        completion_tokens = _words(text)
        self._json(200, {
            **base,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }, rid)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    args = ap.parse_args(argv)
    server = OpenAITestServer(latency_s=args.latency).start()
    print(f"PORT {server.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        sys.exit(0)


if __name__ == "__main__":
    main()
