"""The relay's network edge: the `websockets` asyncio server, `/ws` and the HTTP ops routes.

`/ws` upgrades to a WebSocket once the relay is ready (503 before); `/healthz`, `/readyz` and
`/metrics` answer plain HTTP on the same port, and so does the 호가창 page at `/` (relay/web.py).
Each connection has one reader (this handler: it parses requests, limits their rate and counts
refusals) and one writer task that drains the client's queue, what is queued in one socket write of
up to the write limit at a time, so a client that does not read only ever blocks its own writer.
Market data for a client with nothing queued skips the writer: at the end of a feed batch the hub
hands over runs of messages and ``_write_runs`` writes each such client's frames in one go (at most
one batch beyond the write limit, after which the client is back on its bounded queue).
Messages are compact JSON text frames, sent uncompressed: the same bytes go to every subscriber,
and per-connection compression would redo the work for each.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import logging
import socket
import time
from collections import deque
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State

from relay.hub import Client, Message, Run
from relay.protocol import CloseCode, ErrorCode, ProtocolError
from relay.web import CONFIG_PATH, PAGE_HEADERS, page_config, web_file
from runtime.metrics import exposition
from runtime.ratelimit import RateLimiter

if TYPE_CHECKING:
    from relay.app import Relay
    from relay.metrics import RelayMetrics

__all__ = ["CloseCode", "port_of", "start", "stop"]

log = logging.getLogger("relay.server")

WS_PATH = "/ws"
# A client that does not answer the closing handshake is cut off after this.
CLOSE_TIMEOUT_S = 2.0
# Frames a connection buffers before it stops reading its socket (requests are small and few).
INCOMING_FRAMES = 16
# Bytes the kernel may not take yet before a send waits: the writer then feels the client's pace.
WRITE_LIMIT = 64 * 1024
WRITER_CLOSE_S = CLOSE_TIMEOUT_S + 1.0
_ids = itertools.count(1)


async def start(relay: Relay) -> Server:
    """Listen on the relay's host and port (0: any free port)."""
    settings = relay.settings
    relay.hub.write_now = functools.partial(_write_runs, relay.metrics)

    async def handler(connection: ServerConnection) -> None:
        await _serve_client(relay, connection)

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        return _route(relay, connection, request)

    return await serve(
        handler,
        settings.relay_host,
        settings.relay_port,
        process_request=process_request,
        max_size=settings.relay_max_frame_bytes,
        max_queue=INCOMING_FRAMES,
        write_limit=WRITE_LIMIT,
        close_timeout=CLOSE_TIMEOUT_S,
        compression=None,
        # The workers of one pod listen on the same port; the kernel spreads the connections.
        reuse_port=settings.relay_workers > 1,
    )


def port_of(server: Server) -> int:
    return int(next(iter(server.sockets)).getsockname()[1])


async def stop(server: Server) -> None:
    """Close every connection (1001, going away) and stop listening."""
    server.close(close_connections=True)
    await server.wait_closed()


def _route(relay: Relay, connection: ServerConnection, request: Request) -> Response | None:
    path = urlsplit(request.path).path
    if path == WS_PATH:
        ready, reason = relay.health.readiness()
        return None if ready else connection.respond(503, f"not ready: {reason}\n")
    if path in ("/healthz", "/readyz"):
        ok, reason = relay.health.liveness() if path == "/healthz" else relay.health.readiness()
        return connection.respond(200 if ok else 503, reason + "\n")
    if path == "/metrics":
        body, content_type = exposition(relay.metrics.exposed)
        return _respond(connection, 200, content_type, body)
    if path == CONFIG_PATH:
        remote = str(connection.remote_address[0]) if connection.remote_address else ""
        found = page_config(relay.settings.relay_page_config, remote, request.headers.get("Host", ""))
        # The page config holds a key: never kept by a browser cache or a proxy.
        return _respond(
            connection, found.status, found.content_type, found.body, {"Cache-Control": "no-store"}
        )
    if request.headers.get("Upgrade") is not None:
        return connection.respond(404, "not found\n")
    found = web_file(path)
    return _respond(connection, found.status, found.content_type, found.body, PAGE_HEADERS)


def _respond(
    connection: ServerConnection,
    status: int,
    content_type: str,
    body: bytes,
    extra: dict[str, str] | None = None,
) -> Response:
    """An HTTP response with exactly one Content-Type and Content-Length."""
    response = connection.respond(status, "")
    headers = {"Content-Type": content_type, "Content-Length": str(len(body)), **(extra or {})}
    for name, value in headers.items():
        if name in response.headers:  # a multi-valued mapping: setting a name adds a second value
            del response.headers[name]
        response.headers[name] = value
    return dataclasses.replace(response, body=body)


async def _serve_client(relay: Relay, connection: ServerConnection) -> None:
    hub, settings = relay.hub, relay.settings
    client = Client(next(_ids), settings.relay_client_queue)
    client.abort = connection.transport.abort
    client.write = connection.transport.write
    client.writable = functools.partial(_writable, client, connection)
    _bound_send_buffer(connection, settings.relay_socket_send_bytes)
    hub.connect(client)
    writer = asyncio.create_task(_write(connection, client, relay))
    limiter = RateLimiter(settings.relay_rate_per_s, settings.relay_rate_burst)
    refused = 0
    try:
        async for frame in connection:
            if limiter.admit("", time.monotonic()) > 0:
                hub.drop(client, CloseCode.POLICY, "FLOOD: too many requests")
            elif isinstance(frame, bytes):
                hub.refuse(client, ProtocolError(ErrorCode.BINARY_FRAME, "requests are JSON text frames"))
                refused += 1
            elif not hub.handle(client, frame):
                refused += 1
            if refused >= settings.relay_max_errors:
                hub.drop(client, CloseCode.POLICY, "TOO_MANY_ERRORS: too many refused requests")
            if client.close_code is not None:
                break
    except ConnectionClosed:
        pass
    finally:
        hub.disconnect(client)
        if client.close_code is None:
            writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, TimeoutError):
            await asyncio.wait_for(writer, WRITER_CLOSE_S)


def _writable(client: Client, connection: ServerConnection) -> bool:
    """Whether messages may be written to the connection now without overtaking or piling up: nothing
    queued, no send of its writer under way, open, and its buffer below the write limit."""
    if client.queue or client.sending_since is not None or client.close_code is not None:
        return False
    if connection.protocol.state is not State.OPEN or connection.send_in_progress is not None:
        return False
    return connection.transport.get_write_buffer_size() < WRITE_LIMIT


def _write_runs(metrics: RelayMetrics, runs: list[Run]) -> None:
    """Each run's messages as text frames, in one socket write per client.

    A message's frame is made once (the server's frames are unmasked and uncompressed, so every
    connection would make the same bytes: websockets' own serializer, as its send does), and so is
    the joined run; per client only the write is left. The hub hands over only clients that are open
    with nothing else on its way (``_writable``, just before), so nothing is overtaken.
    """
    frames: dict[int, bytes] = {}  # id(message) -> its frame (the messages live through this call)
    messages = sent_bytes = 0
    for clients, run in runs:
        data = b"".join(_frame_of(message, frames) for message in run)
        for client in clients:
            client.write(data)
        messages += len(run) * len(clients)
        sent_bytes += sum(map(len, run)) * len(clients)
    metrics.messages_sent.inc(messages)
    metrics.bytes_sent.inc(sent_bytes)


def _frame_of(message: bytes, frames: dict[int, bytes]) -> bytes:
    frame = frames.get(id(message))
    if frame is None:
        frame = frames[id(message)] = _text_frame(message)
    return frame


def _bound_send_buffer(connection: ServerConnection, size: int) -> None:
    """Fix the kernel's send buffer of the connection: without a bound it grows to megabytes per
    client, which hides a slow client from the relay's own queue for that long (and costs memory)."""
    sock = connection.transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


async def _write(connection: ServerConnection, client: Client, relay: Relay) -> None:
    """Send the client's queue in order; close the connection when the hub closed the client.

    What is queued when the writer wakes goes out in one socket write of up to the write limit, then
    the writer waits for the socket to take it (the client's pace): a client that fell behind catches
    up in few writes, not one send and one task switch per message.
    """
    metrics = relay.metrics
    try:
        while True:
            await client.wake.wait()
            client.wake.clear()
            while client.queue and client.close_code is None:
                if connection.protocol.state is not State.OPEN:
                    return  # closing: the reader ends the connection
                messages = _take(client.queue, WRITE_LIMIT)
                client.sending_since = time.monotonic()
                connection.transport.write(b"".join(_text_frame(data) for data, _ in messages))
                await connection.drain()
                client.sending_since = None
                _count_sent(metrics, messages)
            if client.close_code is not None:
                await connection.close(client.close_code, client.close_reason[:120])
                return
    except (ConnectionClosed, OSError):
        return


def _take(queue: deque[Message], limit: int) -> list[Message]:
    """Messages from the front of ``queue``: at least one, and no more once ``limit`` bytes are taken."""
    taken, size = [], 0
    while queue and size < limit:
        message = queue.popleft()
        taken.append(message)
        size += len(message[0])
    return taken


def _text_frame(message: bytes) -> bytes:
    """The message as an unmasked, uncompressed text frame (websockets' own serializer)."""
    return Frame(Opcode.TEXT, message).serialize(mask=False, extensions=[])


def _count_sent(metrics: RelayMetrics, messages: list[Message]) -> None:
    metrics.messages_sent.inc(len(messages))
    metrics.bytes_sent.inc(sum(len(data) for data, _ in messages))
    now = time.time_ns()
    for _, ts_ns in messages:
        if ts_ns:
            metrics.delivery_lag.observe(max(now - ts_ns, 0) / 1e9)
