"""A loopback HTTP proxy that adds latency and injects faults in front of a real server.

GCS answers every read after tens of milliseconds and sometimes fails (429, 503,
a connection cut mid-body); the local emulator does neither. This proxy adds
exactly that, and nothing else: every byte it returns comes from the real
emulator behind it, at most with one byte flipped or a header changed when a
fault says so. It is asyncio, so concurrent clients overlap their waits as
they would against GCS, while the single-threaded emulator serves one at a time.

Faults come from a list (each for the first ``times`` matching requests) or from
a ``choose(path, headers)`` callable, which a seeded test uses to fault a share
of reads at random. ``stats.log`` records every request, the connection it came
on, and the fault it got, so a test can account for each read.

Upstream, the proxy reuses a connection the server keeps alive (fake-gcs-server does;
gcp-storage-emulator speaks HTTP/1.0 and closes each), and ``upstream_connections``
caps the requests it has at the server at once. The emulator is an
``http.server.HTTPServer`` with a listen backlog of 5: a hundred reads connecting at
once overflow it, and the kernel drops their SYNs, which the proxy resends after 1 s,
3 s … (``nstat TcpExtListenDrops``). The emulator serves one request at a time anyway,
so a cap of a few costs it nothing; the waits the proxy adds still overlap, since they
come before the cap. The tests leave it unset: one connection per request, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Fault:
    """Applies to the first ``times`` requests whose path contains ``path_contains``.

    At most one way of failing per fault; body faults buffer the upstream response
    first, so a stalled client never holds the single-threaded emulator.
    """

    path_contains: str = "alt=media"
    times: int = 1
    status: int | None = None  # answer with this status instead of forwarding
    retry_after: str | None = None  # with ``status``: a Retry-After header
    message: bytes | None = None  # with ``status``: this body instead of a JSON error
    cut_after: int | None = None  # close after this many body bytes, Content-Length kept (a truncated stream)
    close_after: int | None = None  # no Content-Length, clean close after this many body bytes (a short body)
    reset_after: int | None = None  # TCP reset after this many body bytes
    flip_at: int | None = None  # invert one body byte at this offset (corruption in transit)
    stall_after: int | None = None  # send this many body bytes, then nothing, connection open
    drip_every: float | None = None  # send the body one byte at a time, this many seconds apart
    drip_head_every: float | None = None  # send the status line and headers one byte at a time, then the body
    range_as_200: str | None = None  # to a ranged read, 200 without Content-Range: "tail" (the asked bytes) or "whole"
    content_range_shift: int | None = None  # a 206 whose Content-Range claims a start off by this much
    hash_header: str | None = None  # replace x-goog-hash with this value
    only_ranged: bool = False  # match only requests that carry a Range header

    @property
    def label(self) -> str:
        for name in (
            "status",
            "cut_after",
            "close_after",
            "reset_after",
            "flip_at",
            "stall_after",
            "drip_every",
            "drip_head_every",
            "range_as_200",
            "content_range_shift",
            "hash_header",
        ):
            value = getattr(self, name)
            if value is not None:
                return f"{name}={value}"
        return "none"

    @property
    def changes_body(self) -> bool:
        return self.status is None and self.label != "none"


@dataclass
class RequestRecord:
    path: str
    range: str | None
    connection: int  # the client connection it came on, numbered from 1 in order of arrival
    fault: str | None  # Fault.label, None when forwarded untouched
    headers: dict[str, str] = field(default_factory=dict)  # the request's headers, names in lower case
    received: float = 0.0  # time.monotonic() when its head arrived
    answered: float | None = None  # time.monotonic() when a forwarded response was sent in full


@dataclass
class ProxyStats:
    requests: int = 0
    faults_injected: int = 0
    paths: list[str] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)  # Range headers seen, in order
    log: list[RequestRecord] = field(default_factory=list)

    def media_reads(self) -> list[RequestRecord]:
        """The object reads (``alt=media`` GETs), in order."""
        return [record for record in self.log if "alt=media" in record.path]


class FaultyProxy:
    """``with FaultyProxy(upstream_port, latency=0.03) as proxy:`` then use ``proxy.endpoint``."""

    def __init__(
        self,
        upstream_port: int,
        latency: float = 0.0,
        faults: list[Fault] | None = None,
        choose: Callable[[str, dict[str, str]], Fault | None] | None = None,
        upstream_connections: int | None = None,
    ):
        self.upstream_port = upstream_port
        self.upstream_connections = upstream_connections
        self.latency = latency
        self.faults = list(faults or [])
        self.choose = choose
        self.stats = ProxyStats()
        self._connections = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port: int | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """CPU time of the proxy's own thread (its event loop) so far."""
        return time.clock_gettime(time.pthread_getcpuclockid(self._thread.ident))

    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._thread.join(5)

    async def _shutdown(self) -> None:
        self._server.close()
        self._upstream.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop.call_soon(self._loop.stop)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._upstream = _Upstream(self.upstream_port, self.upstream_connections)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    def _take_fault(self, path: str, headers: dict[str, str]) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.path_contains in path and (not fault.only_ranged or "range" in headers):
                fault.times -= 1
                return fault
        return self.choose(path, headers) if self.choose else None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        connection = self._connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                received = time.monotonic()
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                headers = dict(
                    (k.strip().lower(), v.strip())
                    for k, v in (line.split(":", 1) for line in header_lines if ":" in line)
                )
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                path = request_line.split(" ")[1]
                self.stats.requests += 1
                self.stats.paths.append(path)
                if "range" in headers:
                    self.stats.ranges.append(headers["range"])
                if self.latency:
                    await asyncio.sleep(self.latency)
                fault = self._take_fault(path, headers)
                record = RequestRecord(path, headers.get("range"), connection, fault and fault.label, headers, received)
                self.stats.log.append(record)
                if fault:
                    self.stats.faults_injected += 1
                if fault and fault.status:
                    extra = f"Retry-After: {fault.retry_after}\r\n" if fault.retry_after else ""
                    message = fault.message
                    if message is None:
                        message = b'{"error":{"code":%d,"message":"injected by test proxy"}}' % fault.status
                    writer.write(
                        f"HTTP/1.1 {fault.status} Injected\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(message)}\r\n{extra}\r\n".encode()
                        + message
                    )
                    await writer.drain()
                    continue
                if fault and fault.changes_body:
                    await self._faulty_response(head, body, headers, fault, reader, writer)
                    break
                # The emulator speaks HTTP/1.0 and closes; the client keeps its side alive
                # whenever the body has a length.
                keep_alive = await self._forward(head, body, request_line.startswith("HEAD "), writer)
                record.answered = time.monotonic()
                if not keep_alive or headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _forward(self, head: bytes, body: bytes, no_body: bool, writer: asyncio.StreamWriter) -> bool:
        async with self._upstream.exchange(head + body, no_body) as response:
            status_line = response.status_line.replace("HTTP/1.0", "HTTP/1.1", 1)
            connection = "keep-alive" if response.framed else "close"
            writer.write(_head(status_line, [*response.header_lines, f"Connection: {connection}"]))
            async for piece in response.body(decode_chunks=False):
                writer.write(piece)
                await writer.drain()
            await writer.drain()
            return response.framed

    async def _fetch(self, head: bytes, body: bytes) -> tuple[str, list[str], bytes]:
        """The whole upstream response, read before any of it goes out (a chunked body unchunked)."""
        async with self._upstream.exchange(head + body, no_body=False) as response:
            content = b"".join([piece async for piece in response.body(decode_chunks=True)])
            kept = response.header_lines
            if response.chunked:
                kept = [*_without(kept, "transfer-encoding"), f"Content-Length: {len(content)}"]
            return response.status_line.replace("HTTP/1.0", "HTTP/1.1", 1), kept, content

    async def _faulty_response(
        self,
        head: bytes,
        body: bytes,
        headers: dict[str, str],
        fault: Fault,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        if fault.range_as_200 == "whole":
            head = re.sub(rb"(?im)^range:[^\r\n]*\r\n", b"", head)
        status_line, kept, content = await self._fetch(head, body)
        if fault.range_as_200 and status_line.split(" ")[1] in ("200", "206"):
            status_line = "HTTP/1.1 200 OK"
            kept = _without(kept, "content-range")
        if fault.content_range_shift is not None:
            kept = [_shift_content_range(line, fault.content_range_shift) for line in kept]
        if fault.hash_header is not None:
            kept = [*_without(kept, "x-goog-hash"), f"X-Goog-Hash: {fault.hash_header}"]
        if fault.flip_at is not None and fault.flip_at < len(content):
            flipped = bytearray(content)
            flipped[fault.flip_at] ^= 0xFF
            content = bytes(flipped)
        if fault.close_after is not None:
            kept = _without(kept, "content-length")
        head_bytes = _head(status_line, [*kept, "Connection: close"])
        if fault.drip_head_every is not None:
            if not await _drip(head_bytes, fault.drip_head_every, reader, writer):
                return
        else:
            writer.write(head_bytes)
        await writer.drain()
        stop = next(
            (n for n in (fault.cut_after, fault.close_after, fault.reset_after, fault.stall_after) if n is not None),
            len(content),
        )
        if fault.drip_every is not None:
            await _drip(content, fault.drip_every, reader, writer)
            return
        writer.write(content[:stop])
        await writer.drain()
        if fault.reset_after is not None:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        elif fault.stall_after is not None:
            # Hold the connection open and silent until the client gives up (or the proxy stops).
            while not reader.at_eof():
                await asyncio.sleep(0.05)


async def _drip(data: bytes, every: float, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Send ``data`` one byte at a time, ``every`` seconds apart; False if the client went away first."""
    for index in range(len(data)):
        if reader.at_eof() or writer.is_closing():
            return False
        writer.write(data[index : index + 1])
        await writer.drain()
        await asyncio.sleep(every)
    return True


class _UpstreamResponse:
    """A response head from the server behind the proxy; ``body()`` reads the rest, framed as the server framed it."""

    def __init__(self, reader: asyncio.StreamReader, head: bytes, no_body: bool):
        self._reader = reader
        lines = head.decode("latin-1").split("\r\n")
        self.status_line = lines[0]
        connection = ", ".join(
            line.split(":", 1)[1].strip().lower() for line in lines[1:] if line.lower().startswith("connection:")
        )
        self.header_lines = [line for line in lines[1:] if line and not line.lower().startswith("connection:")]
        status = self.status_line.split(" ")[1] if " " in self.status_line else ""
        encoding = next(
            (
                line.split(":", 1)[1].strip().lower()
                for line in self.header_lines
                if line.lower().startswith("transfer-encoding:")
            ),
            "",
        )
        self.no_body = no_body or status in ("204", "304") or status.startswith("1")
        self.chunked = not self.no_body and encoding.endswith("chunked")
        self.length = None if self.no_body or self.chunked else _content_length(self.header_lines)
        self.framed = self.no_body or self.chunked or self.length is not None
        if self.status_line.startswith("HTTP/1.1"):
            self.keep_alive = self.framed and "close" not in connection
        else:
            self.keep_alive = self.framed and "keep-alive" in connection
        self.finished = False

    async def body(self, decode_chunks: bool):
        """The body in pieces as they arrive; with ``decode_chunks`` False a chunked body keeps its framing."""
        read = self._reader
        if self.chunked:
            while True:
                size_line = await read.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if not decode_chunks:
                    yield size_line
                if size == 0:
                    while (trailer := await read.readuntil(b"\r\n")) != b"\r\n":
                        if not decode_chunks:
                            yield trailer
                    if not decode_chunks:
                        yield trailer
                    break
                async for piece in _exactly(read, size):
                    yield piece
                crlf = await read.readexactly(2)
                if not decode_chunks:
                    yield crlf
        elif self.length is not None:
            async for piece in _exactly(read, self.length):
                yield piece
        elif not self.no_body:
            while piece := await read.read(256 * 1024):
                yield piece
        self.finished = True


async def _exactly(reader: asyncio.StreamReader, size: int):
    while size > 0:
        piece = await reader.read(min(size, 256 * 1024))
        if not piece:
            raise asyncio.IncompleteReadError(b"", size)
        size -= len(piece)
        yield piece


class _Upstream:
    """Connections to the server behind the proxy: idle kept-alive ones reused, at most
    ``limit`` requests at the server at once (None: no cap)."""

    def __init__(self, port: int, limit: int | None):
        self._port = port
        self._slots = asyncio.Semaphore(limit) if limit else None
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()

    @contextlib.asynccontextmanager
    async def exchange(self, request: bytes, no_body: bool):
        """Send ``request`` and yield the response; its connection is kept only if the body was read to its end."""
        async with self._slots if self._slots is not None else contextlib.nullcontext():
            reader, writer, response = await self._send(request, no_body)
            try:
                yield response
            except BaseException:
                writer.close()
                raise
            if response.finished and response.keep_alive:
                self._idle.append((reader, writer))
            else:
                writer.close()

    async def _send(self, request: bytes, no_body: bool):
        while self._idle:
            reader, writer = self._idle.pop()
            if reader.at_eof() or writer.is_closing():
                writer.close()
                continue
            try:
                writer.write(request)
                await writer.drain()
                return reader, writer, _UpstreamResponse(reader, await reader.readuntil(b"\r\n\r\n"), no_body)
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()  # the server closed it while idle: a new connection below
        reader, writer = await asyncio.open_connection("127.0.0.1", self._port)
        try:
            writer.write(request)
            await writer.drain()
            return reader, writer, _UpstreamResponse(reader, await reader.readuntil(b"\r\n\r\n"), no_body)
        except BaseException:
            writer.close()
            raise


def _content_length(header_lines: list[str]) -> int | None:
    return next(
        (int(line.split(":", 1)[1]) for line in header_lines if line.lower().startswith("content-length:")), None
    )


def _without(header_lines: list[str], name: str) -> list[str]:
    return [line for line in header_lines if not line.lower().startswith(name + ":")]


def _shift_content_range(line: str, shift: int) -> str:
    match = re.fullmatch(r"(?i)(content-range:\s*bytes\s+)([0-9]+)(-.*)", line)
    return f"{match.group(1)}{int(match.group(2)) + shift}{match.group(3)}" if match else line


def _head(status_line: str, header_lines: list[str]) -> bytes:
    return "\r\n".join([status_line, *header_lines, "", ""]).encode("latin-1")
