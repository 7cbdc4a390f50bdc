"""A small HTTP/1.1 server on 127.0.0.1 in a background thread, the base of the fakes.

Real sockets, real HTTP: what the code under test sends is what a real server would receive. A
thread (not the test's event loop) serves it, so sync and async clients can both talk to it.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    """One request as the server received it."""

    method: str
    path: str
    """The raw path, percent-escapes and all, without the query string."""
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Header names lowercased."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Response:
    status: int = 200
    body: Any = None
    """Serialised as JSON unless ``bytes``; ``None`` sends no body."""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]


def chance(seed: int, *key: object) -> float:
    """A number in [0, 1) fixed by ``seed`` and ``key``: a fault decided by what is asked (a path
    and how many times it was asked), not by when, so a seeded run injects the same faults
    whatever order concurrent requests arrive in."""
    digest = hashlib.blake2b(repr((seed, *key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class LoopbackServer:
    """Serves ``handle(request)`` on an ephemeral port of 127.0.0.1 until closed.

    Use it as a context manager, or call :meth:`start` and :meth:`close`. Every request is kept in
    :attr:`requests`, in arrival order.
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.refusals: list[float] = []
        """The length of every spell of refused connections, in seconds."""
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._refusing = threading.Event()
        self._reopen: threading.Timer | None = None

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    @property
    def url(self) -> str:
        if self._port is None:
            msg = f"{type(self).__name__} is not started"
            raise RuntimeError(msg)
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> Self:
        self._listen(self._port or 0)
        return self

    def refuse_connections(self, seconds: float) -> None:
        """Stop listening for ``seconds``, as a service restarting would: new connections are
        refused and kept-alive ones dropped unanswered; then listen again on the same port. Call
        it from the test, not from inside a request."""
        with self._lock:
            if self._server is None or self._refusing.is_set():
                return
            self._refusing.set()
            self.refusals.append(seconds)
        self._stop_listening()
        self._reopen = threading.Timer(seconds, self._listen_again)
        self._reopen.daemon = True
        self._reopen.start()

    def close(self) -> None:
        with self._lock:
            if self._reopen is not None:
                self._reopen.cancel()
            self._refusing.clear()
            self._port = None
        self._stop_listening()

    def _listen(self, port: int) -> None:
        server = _Server(("127.0.0.1", port), _handler_class(self))
        self._server = server
        self._port = server.server_port
        self._thread = threading.Thread(
            target=server.serve_forever,
            # close() waits for the thread's next look at the socket: 5 ms at most, not 50, for
            # each server a test closes (hundreds in a suite)
            kwargs={"poll_interval": 0.005},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()

    def _listen_again(self) -> None:
        with self._lock:
            if self._port is not None and self._refusing.is_set():
                self._listen(self._port)
            self._refusing.clear()

    def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _record(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
        return self.handle(request)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    """Listen backlog. The default, 5, drops connections when a test opens dozens at once, and
    the client's retransmission wait (a second or more) then reads as a slow CRM."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout, a closed pool) is the fault being tested, not news.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _handler_class(owner: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real APIs do
        disable_nagle_algorithm = True  # headers and body go out in two writes

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if owner._refusing.is_set():  # "restarting": drop the connection unanswered
                self.close_connection = True
                return
            split = urlsplit(self.path)
            request = Request(
                method=self.command,
                path=split.path,
                query=parse_qs(split.query),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
            )
            try:
                response = owner._record(request)
            except Exception as error:  # a fake's bug should read as a 500, not a hang
                response = Response(500, {"message": f"fake server error: {error!r}"})
            self._send(response)

        def _send(self, response: Response) -> None:
            if response.body is None:
                payload = b""
            elif isinstance(response.body, bytes):
                payload = response.body
            else:
                payload = json.dumps(response.body).encode()
            self.send_response(response.status, HTTPStatus(response.status).phrase)
            if payload and "Content-Type" not in response.headers:
                self.send_header("Content-Type", "application/json")
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: tests read :attr:`LoopbackServer.requests` instead."""

    return _Handler
