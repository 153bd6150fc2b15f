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
"""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import threading
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
    ):
        self.upstream_port = upstream_port
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

    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._thread.join(5)

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop.call_soon(self._loop.stop)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
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
                self.stats.log.append(
                    RequestRecord(path, headers.get("range"), connection, fault and fault.label, headers)
                )
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
                keep_alive = await self._forward(head, body, writer)
                if not keep_alive or headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _forward(self, head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            up_writer.write(head + body)
            await up_writer.drain()
            status_and_headers = await up_reader.readuntil(b"\r\n\r\n")
            lines = status_and_headers.decode("latin-1").split("\r\n")
            status_line = lines[0].replace("HTTP/1.0", "HTTP/1.1", 1)
            kept = [line for line in lines[1:] if line and not line.lower().startswith("connection:")]
            length = _content_length(kept)
            connection = "keep-alive" if length is not None else "close"
            writer.write(_head(status_line, [*kept, f"Connection: {connection}"]))
            sent = 0
            while length is None or sent < length:
                chunk = await up_reader.read(256 * 1024)
                if not chunk:
                    break
                writer.write(chunk)
                sent += len(chunk)
                await writer.drain()
            return length is not None
        finally:
            up_writer.close()

    async def _fetch(self, head: bytes, body: bytes) -> tuple[str, list[str], bytes]:
        """The whole upstream response, read before any of it goes out."""
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            up_writer.write(head + body)
            await up_writer.drain()
            lines = (await up_reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            kept = [line for line in lines[1:] if line and not line.lower().startswith("connection:")]
            length = _content_length(kept)
            content = await (up_reader.readexactly(length) if length is not None else up_reader.read())
            return lines[0].replace("HTTP/1.0", "HTTP/1.1", 1), kept, content
        finally:
            up_writer.close()

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
        writer.write(_head(status_line, [*kept, "Connection: close"]))
        await writer.drain()
        stop = next(
            (n for n in (fault.cut_after, fault.close_after, fault.reset_after, fault.stall_after) if n is not None),
            len(content),
        )
        if fault.drip_every is not None:
            for index in range(len(content)):
                if reader.at_eof() or writer.is_closing():
                    return
                writer.write(content[index : index + 1])
                await writer.drain()
                await asyncio.sleep(fault.drip_every)
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
