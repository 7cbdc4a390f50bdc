"""A small HTTP/1.1 server on 127.0.0.1 in a background thread, the base of the fakes.

Real sockets, real HTTP: what the code under test sends is what a real server would receive. A
thread (not the test's event loop) serves it, so sync and async clients can both talk to it.
"""

from __future__ import annotations

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


class LoopbackServer:
    """Serves ``handle(request)`` on an ephemeral port of 127.0.0.1 until closed.

    Use it as a context manager, or call :meth:`start` and :meth:`close`. Every request is kept in
    :attr:`requests`, in arrival order.
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    @property
    def url(self) -> str:
        if self._server is None:
            msg = f"{type(self).__name__} is not started"
            raise RuntimeError(msg)
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> Self:
        server = _Server(("127.0.0.1", 0), _handler_class(self))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

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
