"""The core's HTTP/1.1 transport against real sockets: a scripted server on 127.0.0.1 answers each
request as the test says, so keep-alive, stale connections, timeouts and broken servers are all
real."""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import respx

from genesys_enrich.http_transport import AsyncioTransport, api_client
from genesys_enrich.testing.respx_support import register_with_respx

DATA = Path(__file__).with_name("data")

Reply = Callable[[asyncio.StreamWriter, bytes], Awaitable[bool]]
"""Writes the answer to one request (given its body); returns whether to keep the connection."""


def answer(
    status: int = 200,
    body: bytes = b"{}",
    *,
    close: bool = False,
    chunked: bool = False,
    headers: tuple[str, ...] = (),
) -> Reply:
    async def reply(writer: asyncio.StreamWriter, request_body: bytes) -> bool:
        head = [f"HTTP/1.1 {status} OK", "Content-Type: application/json", *headers]
        if close:
            head.append("Connection: close")
        if chunked:
            head.append("Transfer-Encoding: chunked")
            half = len(body) // 2
            parts = (body[:half], body[half:])
            payload = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in parts)
            payload += b"0\r\n\r\n"
        else:
            head.append(f"Content-Length: {len(body)}")
            payload = body
        writer.write("\r\n".join(head).encode() + b"\r\n\r\n" + payload)
        await writer.drain()
        return not close

    return reply


def echo() -> Reply:
    """Answers with the request's body."""

    async def reply(writer: asyncio.StreamWriter, request_body: bytes) -> bool:
        return await answer(body=request_body)(writer, request_body)

    return reply


def hang() -> Reply:
    async def reply(writer: asyncio.StreamWriter, request_body: bytes) -> bool:
        await asyncio.Event().wait()
        return False

    return reply


def hang_up() -> Reply:
    """Closes the connection without answering."""

    async def reply(writer: asyncio.StreamWriter, request_body: bytes) -> bool:
        return False

    return reply


class Server:
    """Answers requests with the scripted replies, in order; counts connections."""

    def __init__(self, *replies: Reply) -> None:
        self.replies: deque[Reply] = deque(replies)
        self.connections = 0
        self.heads: list[bytes] = []
        """Each request's request line and headers, in order."""
        self.closed = asyncio.Event()
        """Set each time the server closes a connection."""
        self._server: asyncio.Server | None = None

    async def start(self, tls: ssl.SSLContext | None = None) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        port = self._server.sockets[0].getsockname()[1]
        return f"{'https' if tls else 'http'}://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.replies:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                body = await _read_body(reader, head)
                if not await self.replies.popleft()(writer, body):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.closed.set()


async def _read_body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:] if line)
    }
    if b"content-length" in headers:
        return await reader.readexactly(int(headers[b"content-length"]))
    body = b""
    if headers.get(b"transfer-encoding") == b"chunked":
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        await reader.readexactly(2)
    return body


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[tuple[Server, str]]]]:
    servers: list[Server] = []

    async def start(*replies: Reply, tls: ssl.SSLContext | None = None) -> tuple[Server, str]:
        server = Server(*replies)
        servers.append(server)
        return server, await server.start(tls)

    yield start
    for server in servers:
        await server.stop()


async def test_requests_in_turn_share_one_connection(serve) -> None:
    server, url = await serve(echo(), answer(body=b'{"n": 2}'), answer(201, chunked=True))
    transport = AsyncioTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        first = await client.post(f"{url}/echo", json={"customer": "CUST-1001"})
        second = await client.get(f"{url}/two")
        third = await client.get(f"{url}/three")

    assert first.json() == {"customer": "CUST-1001"}
    assert second.json() == {"n": 2}
    assert (third.status_code, third.json()) == (201, {})
    assert server.connections == 1
    assert transport.pool.opened == 1


async def test_the_shared_client_sends_no_cookie_it_was_given(serve) -> None:
    """A CRM's cookie from one customer's lookup never rides along with the next lookup."""
    server, url = await serve(answer(headers=("Set-Cookie: session=cust-1001; Path=/",)), answer())
    async with api_client(AsyncioTransport(), timeout=httpx.Timeout(5), headers={}) as client:
        await client.get(f"{url}/customers/CUST-1001")
        await client.get(f"{url}/customers/CUST-2002")

    assert len(server.heads) == 2
    assert b"cookie" not in server.heads[1].lower()
    assert not client.cookies


async def test_a_chunked_body_arrives_whole(serve) -> None:
    _, url = await serve(answer(body=b'{"tier": "Platinum", "points": 1200}', chunked=True))
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        response = await client.get(url)
    assert response.json() == {"tier": "Platinum", "points": 1200}


async def test_a_streamed_request_body_is_sent_whole(serve) -> None:
    _, url = await serve(echo())

    async def parts() -> AsyncIterator[bytes]:
        for part in (b'{"a": ', b"1}"):
            yield part

    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        response = await client.post(url, content=parts())
    assert response.json() == {"a": 1}


async def test_a_connection_the_server_said_to_close_is_not_reused(serve) -> None:
    server, url = await serve(answer(close=True), answer())
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        assert (await client.get(url)).status_code == 200
        assert (await client.get(url)).status_code == 200
    assert server.connections == 2


async def test_an_idle_connection_the_server_closed_is_replaced(serve) -> None:
    """A keep-alive connection the server dropped while idle is noticed, not written to."""
    server, url = await serve(answer())
    transport = AsyncioTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(url)).status_code == 200
        await server.closed.wait()  # the script ran out: the server hung up
        for _ in range(100):  # let the event loop deliver the end of the stream
            if all(c.reader.at_eof() for s in transport.pool._idle.values() for c in s):
                break
            await asyncio.sleep(0)
        server.replies.append(answer(body=b'{"again": true}'))
        response = await client.get(url)
    assert response.json() == {"again": True}
    assert server.connections == 2


async def test_a_server_that_hangs_up_gives_a_remote_protocol_error(serve) -> None:
    _, url = await serve(hang_up())
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(url)


async def test_a_silent_server_gives_a_read_timeout(serve) -> None:
    _, url = await serve(hang())
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(url, timeout=httpx.Timeout(5.0, read=0.05))


async def test_a_closed_port_gives_a_connect_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")


async def test_no_free_connection_in_time_gives_a_pool_timeout(serve) -> None:
    _, url = await serve(hang())
    async with httpx.AsyncClient(transport=AsyncioTransport(max_connections=1)) as client:
        stuck = asyncio.ensure_future(client.get(url))
        await asyncio.sleep(0.01)  # let it take the one connection
        with pytest.raises(httpx.PoolTimeout):
            await client.get(url, timeout=httpx.Timeout(5.0, pool=0.05))
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck


async def test_a_cancelled_request_frees_its_connection_slot(serve) -> None:
    _, stuck_url = await serve(hang())
    _, url = await serve(answer(body=b'{"ok": true}'))
    async with httpx.AsyncClient(transport=AsyncioTransport(max_connections=1)) as client:
        stuck = asyncio.ensure_future(client.get(stuck_url))
        await asyncio.sleep(0.01)
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        response = await client.get(url, timeout=httpx.Timeout(5.0, pool=1.0))
    assert response.json() == {"ok": True}


async def test_a_body_closed_before_its_end_does_not_go_back_to_the_pool(serve) -> None:
    server, url = await serve(answer(body=b"x" * 200_000), answer())
    transport = AsyncioTransport(max_connections=1)
    async with httpx.AsyncClient(transport=transport) as client:
        async with client.stream("GET", url) as response:
            async for _ in response.aiter_raw():
                break  # read a little, then give up on the rest
        assert (await client.get(url, timeout=httpx.Timeout(5.0, pool=1.0))).status_code == 200
    assert server.connections == 2


async def test_https_is_verified_against_the_given_roots(serve) -> None:
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(DATA / "loopback-cert.pem", DATA / "loopback-key.pem")
    _, url = await serve(answer(body=b'{"secure": true}'), tls=served)
    trusted = ssl.create_default_context(cafile=DATA / "loopback-cert.pem")

    async with httpx.AsyncClient(transport=AsyncioTransport(verify=trusted)) as client:
        assert (await client.get(url)).json() == {"secure": True}
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(url)


async def test_respx_routes_apply_to_the_transport(serve) -> None:
    """The testing package registers the pool with respx: routes answer, pass_through() reaches
    the real server."""
    assert register_with_respx()
    _, url = await serve(answer(body=b'{"real": true}'))
    async with httpx.AsyncClient(transport=AsyncioTransport()) as client:
        with respx.mock:
            respx.get("https://crm.example.com/customers/1").respond(json={"mocked": True})
            respx.route(host="127.0.0.1").pass_through()
            mocked = await client.get("https://crm.example.com/customers/1")
            real = await client.get(url)
    assert mocked.json() == {"mocked": True}
    assert real.json() == {"real": True}
