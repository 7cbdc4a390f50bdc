"""An HTTP/1.1 transport for ``httpx.AsyncClient`` on asyncio: keep-alive connections pooled per
origin, the protocol spoken by h11.

httpx's default transport (httpcore on anyio) scans every pooled connection, asking each socket
whether it is still readable, whenever a request starts or ends, so its CPU cost per request grows
with the requests in flight (encode/httpx#3215). This one keeps a stack of idle connections per
origin and hears from the event loop when a server closes one, so a request costs the same at 1 or
256 in flight, and importing it pulls in neither httpcore nor anyio.

It keeps httpx's contract: the ``connect``, ``read``, ``write`` and ``pool`` timeouts of each
request, httpx's exceptions (``ConnectError``, ``ReadTimeout``, ``PoolTimeout``,
``RemoteProtocolError``...), streamed bodies both ways. It speaks HTTP/1.1 only; the client's
proxies, when the environment names any, are still httpx's own transports.

:class:`ConnectionPool` takes and returns requests and responses shaped as httpcore's (``method``,
``url.target``, ``status``, ``stream``, ``extensions``) without importing httpcore, so respx's
default mocker can stand in for it as it does for httpcore's pool: ``genesys_enrich.testing``
registers it with respx.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from functools import cache
from http.cookiejar import CookieJar
from typing import Any

import h11
import httpx

_DEFAULT_PORTS = {b"http": 80, b"https": 443}
_READ_SIZE = 64 * 1024

Origin = tuple[bytes, str, int]


def api_client(
    transport: AsyncioTransport, *, timeout: httpx.Timeout, headers: dict[str, str]
) -> httpx.AsyncClient:
    """The client the core and its plugins share, over ``transport``. It keeps no cookies: a
    cookie one customer's lookup was given must not ride along with the next customer's, and
    parsing ``Set-Cookie`` on every answer costs a few per cent of an event's CPU."""
    client = httpx.AsyncClient(timeout=timeout, transport=transport, headers=headers)
    client.cookies.jar = _NoCookies()
    return client


class _NoCookies(CookieJar):
    def extract_cookies(self, response: Any, request: Any) -> None:
        return None  # the answer's Set-Cookie headers are ignored


@cache
def verifying_tls() -> ssl.SSLContext:
    """The process's verifying TLS context, built at its first HTTPS connection: one is enough,
    and building one (loading the trusted roots) costs tens of milliseconds."""
    return httpx.create_ssl_context()


class AsyncioTransport(httpx.AsyncBaseTransport):
    """Sends requests over pooled HTTP/1.1 connections; the arguments are the pool's."""

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_idle: int = 20,
        idle_expiry: float = 5.0,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.pool = ConnectionPool(
            max_connections=max_connections,
            max_idle=max_idle,
            idle_expiry=idle_expiry,
            verify=verify,
        )

    def __repr__(self) -> str:
        return f"AsyncioTransport({self.pool!r})"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.pool.handle_async_request(PoolRequest(request))
        return httpx.Response(
            response.status,
            headers=response.headers,
            stream=response.stream,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.pool.aclose()

    def drop_idle_connections(self) -> None:
        """See :meth:`ConnectionPool.drop_idle_connections`."""
        self.pool.drop_idle_connections()


class PoolRequest:
    """An httpx request as the pool (and respx's httpcore mocker) reads it."""

    __slots__ = ("extensions", "headers", "method", "request", "stream", "url")

    def __init__(self, request: httpx.Request) -> None:
        self.request = request
        self.method = request.method.encode("ascii")
        self.url = PoolURL(request.url)
        self.headers = request.headers.raw
        self.stream: Any = request.stream
        self.extensions = request.extensions


class PoolURL:
    __slots__ = ("host", "port", "scheme", "target")

    def __init__(self, url: httpx.URL) -> None:
        self.scheme = url.raw_scheme
        self.host = url.raw_host
        self.port = url.port
        self.target = url.raw_path


class PoolResponse:
    __slots__ = ("extensions", "headers", "status", "stream")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        stream: httpx.AsyncByteStream,
        extensions: dict[str, Any],
    ) -> None:
        self.status = status
        self.headers = headers
        self.stream = stream
        self.extensions = extensions


class ConnectionPool:
    """Keep-alive HTTP/1.1 connections, a stack of idle ones per origin.

    Args:
        max_connections: requests in flight at once, over all origins; more wait for a free slot
            (up to the request's ``pool`` timeout).
        max_idle: idle connections kept per origin for the next requests.
        idle_expiry: seconds an idle connection is kept before it is closed.
        verify: TLS verification: ``True`` (certifi's roots, or ``SSL_CERT_FILE`` /
            ``SSL_CERT_DIR``), ``False``, or an ``ssl.SSLContext``. Built at the first HTTPS
            connection, not before.
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        max_idle: int = 20,
        idle_expiry: float = 5.0,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.max_connections = max_connections
        self.max_idle = max_idle
        self.idle_expiry = idle_expiry
        self._verify = verify
        self._ssl: ssl.SSLContext | None = verify if isinstance(verify, ssl.SSLContext) else None
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[Origin, list[_Connection]] = {}
        self._closed = False
        self.opened = 0
        """Connections opened so far: a number worth watching (reuse keeps it low)."""

    def __repr__(self) -> str:
        return f"ConnectionPool(max_connections={self.max_connections})"

    async def handle_async_request(self, request: PoolRequest) -> PoolResponse:
        """Send one request and return its response, whose body is read from the connection."""
        original = request.request
        if self._closed:
            msg = "the connection pool is closed"
            raise RuntimeError(msg)
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        await self._take_slot(timeouts.get("pool"), original)
        try:
            connection = self._idle_connection(_origin(original.url))
            if connection is None:
                connection = await self._connect(original, timeouts.get("connect"))
            try:
                head = await connection.send(original, request.stream, timeouts)
            except BaseException:
                connection.close()
                raise
        except BaseException:
            self._slots.release()
            raise
        return PoolResponse(
            head.status_code,
            head.headers.raw_items(),
            _Body(self, connection, original, timeouts.get("read")),
            {"http_version": b"HTTP/1.1", "reason_phrase": head.reason},
        )

    async def aclose(self) -> None:
        self._closed = True
        self.drop_idle_connections()

    def drop_idle_connections(self) -> None:
        """Close every idle connection, so the next requests open new ones (after a snapshot is
        restored, for instance, when the old sockets are gone)."""
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def _take_slot(self, seconds: float | None, request: httpx.Request) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # free: returns at once
            return
        try:
            async with asyncio.timeout(seconds):
                await self._slots.acquire()
        except TimeoutError:
            msg = f"no free connection within {seconds} s ({self.max_connections} in use)"
            raise httpx.PoolTimeout(msg, request=request) from None

    def _idle_connection(self, origin: Origin) -> _Connection | None:
        stack = self._idle.get(origin)
        now = time.monotonic()
        while stack:
            connection = stack.pop()  # the most recently used: the least likely to be stale
            if connection.reusable(now - self.idle_expiry):
                return connection
            connection.close()
        return None

    async def _connect(self, request: httpx.Request, seconds: float | None) -> _Connection:
        url = request.url
        origin = _origin(url)
        tls = self._ssl_context() if origin[0] == b"https" else None
        try:
            async with asyncio.timeout(seconds):
                reader, writer = await asyncio.open_connection(
                    origin[1],
                    origin[2],
                    ssl=tls,
                    server_hostname=origin[1] if tls else None,
                    limit=_READ_SIZE,
                )
        except TimeoutError:
            msg = f"connecting to {url.host}:{origin[2]} took more than {seconds} s"
            raise httpx.ConnectTimeout(msg, request=request) from None
        except (OSError, ssl.SSLError) as error:
            raise httpx.ConnectError(str(error) or type(error).__name__, request=request) from error
        self.opened += 1
        return _Connection(origin, reader, writer)

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = verifying_tls() if self._verify else httpx.create_ssl_context(verify=False)
        return self._ssl

    def _release(self, connection: _Connection, *, reusable: bool) -> None:
        self._slots.release()
        if not reusable or self._closed:
            connection.close()
            return
        stack = self._idle.setdefault(connection.origin, [])
        if len(stack) >= self.max_idle:
            stack.pop(0).close()  # the oldest goes
        connection.idle_since = time.monotonic()
        stack.append(connection)


def _origin(url: httpx.URL) -> Origin:
    scheme = url.raw_scheme
    port = url.port or _DEFAULT_PORTS.get(scheme)
    if port is None:
        msg = f"unsupported URL scheme {url.scheme!r}"
        raise httpx.UnsupportedProtocol(msg)
    return scheme, url.host, port


class _Connection:
    """One HTTP/1.1 connection: its socket streams and its h11 state."""

    __slots__ = ("h11", "idle_since", "origin", "reader", "writer")

    def __init__(
        self, origin: Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.origin = origin
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0

    def reusable(self, expired_before: float) -> bool:
        """Still open at both ends, and idle since after ``expired_before``."""
        return (
            self.idle_since > expired_before
            and not self.reader.at_eof()
            and not self.writer.is_closing()
        )

    def close(self) -> None:
        self.writer.close()

    async def send(
        self, request: httpx.Request, body: Any, timeouts: dict[str, float | None]
    ) -> h11.Response:
        """Send the request and read the response's head."""
        connection = self.h11
        try:
            data = connection.send(
                h11.Request(
                    method=request.method,
                    target=request.url.raw_path,
                    headers=request.headers.raw,
                )
            )
            assert data is not None
            buffer = bytearray(data)
            async for chunk in body:
                buffer += connection.send(h11.Data(data=chunk)) or b""
                if len(buffer) >= _READ_SIZE:
                    await self._write(bytes(buffer), request, timeouts.get("write"))
                    buffer.clear()
            buffer += connection.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as error:
            raise httpx.LocalProtocolError(str(error), request=request) from error
        await self._write(bytes(buffer), request, timeouts.get("write"))
        while True:
            event = await self.next_event(request, timeouts.get("read"))
            if isinstance(event, h11.Response):
                return event
            if isinstance(event, h11.ConnectionClosed):
                msg = "the server closed the connection without sending a response"
                raise httpx.RemoteProtocolError(msg, request=request)
            # an InformationalResponse (1xx): the final answer follows

    async def _write(self, data: bytes, request: httpx.Request, seconds: float | None) -> None:
        try:
            self.writer.write(data)
            if self.writer.transport.get_write_buffer_size():
                async with asyncio.timeout(seconds):
                    await self.writer.drain()
        except TimeoutError:
            msg = f"sending the request took more than {seconds} s"
            raise httpx.WriteTimeout(msg, request=request) from None
        except OSError as error:
            raise httpx.WriteError(str(error) or type(error).__name__, request=request) from error

    async def next_event(self, request: httpx.Request, seconds: float | None) -> Any:
        """The next h11 event of the response, reading from the socket as needed."""
        connection = self.h11
        while True:
            try:
                event = connection.next_event()
            except h11.RemoteProtocolError as error:
                raise httpx.RemoteProtocolError(str(error), request=request) from error
            if event is not h11.NEED_DATA:
                return event
            try:
                async with asyncio.timeout(seconds):
                    data = await self.reader.read(_READ_SIZE)
            except TimeoutError:
                msg = f"no answer within {seconds} s"
                raise httpx.ReadTimeout(msg, request=request) from None
            except OSError as error:
                reason = str(error) or type(error).__name__
                raise httpx.ReadError(reason, request=request) from error
            try:
                connection.receive_data(data)  # b"" tells h11 the server closed its end
            except h11.RemoteProtocolError as error:
                raise httpx.RemoteProtocolError(str(error), request=request) from error


class _Body(httpx.AsyncByteStream):
    """A response body read from its connection, which goes back to the pool once the body has
    been read to its end (or is closed early, when it is closed instead)."""

    def __init__(
        self,
        pool: ConnectionPool,
        connection: _Connection,
        request: httpx.Request,
        read_timeout: float | None,
    ) -> None:
        self._pool = pool
        self._connection = connection
        self._request = request
        self._timeout = read_timeout
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._done:
            return
        connection = self._connection
        try:
            while True:
                event = await connection.next_event(self._request, self._timeout)
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
        except BaseException:
            self._finish(reusable=False)
            raise
        state = connection.h11
        reusable = state.our_state is h11.DONE and state.their_state is h11.DONE
        if reusable:
            state.start_next_cycle()
        self._finish(reusable=reusable)

    async def aclose(self) -> None:
        self._finish(reusable=False)  # a body closed before its end leaves the connection unusable

    def _finish(self, *, reusable: bool) -> None:
        if not self._done:
            self._done = True
            self._pool._release(self._connection, reusable=reusable)
