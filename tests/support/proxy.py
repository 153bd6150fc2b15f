"""A loopback HTTP proxy that adds latency and injects faults in front of a real server.

GCS answers every read after tens of milliseconds and sometimes fails (429, 503,
a connection cut mid-body); the local emulator does neither. This proxy adds
exactly that, and nothing else: every byte it returns comes from the real
emulator behind it. It is asyncio, so concurrent clients overlap their waits as
they would against GCS, while the single-threaded emulator serves one at a time.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field


@dataclass
class Fault:
    """Applies to the first ``times`` requests whose path contains ``path_contains``."""

    path_contains: str
    times: int = 1
    status: int | None = None  # answer with this status instead of forwarding
    cut_after: int | None = None  # forward, but close the connection after this many body bytes
    retry_after: str | None = None


@dataclass
class ProxyStats:
    requests: int = 0
    faults_injected: int = 0
    paths: list[str] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)  # Range headers seen, in order


class FaultyProxy:
    """``with FaultyProxy(upstream_port, latency=0.03) as proxy:`` then use ``proxy.endpoint``."""

    def __init__(self, upstream_port: int, latency: float = 0.0, faults: list[Fault] | None = None):
        self.upstream_port = upstream_port
        self.latency = latency
        self.faults = list(faults or [])
        self.stats = ProxyStats()
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

    def _take_fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.path_contains in path:
                fault.times -= 1
                self.stats.faults_injected += 1
                return fault
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
                fault = self._take_fault(path)
                if fault and fault.status:
                    extra = f"Retry-After: {fault.retry_after}\r\n" if fault.retry_after else ""
                    message = b'{"error":{"code":%d,"message":"injected by test proxy"}}' % fault.status
                    writer.write(
                        f"HTTP/1.1 {fault.status} Injected\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(message)}\r\n{extra}\r\n".encode()
                        + message
                    )
                    await writer.drain()
                    continue
                # The emulator speaks HTTP/1.0 and closes; the client keeps its side alive
                # whenever the body has a length.
                keep_alive = await self._forward(head, body, writer, fault.cut_after if fault else None)
                if not keep_alive or headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError, _Cut):
            pass
        finally:
            writer.close()

    async def _forward(self, head: bytes, body: bytes, writer: asyncio.StreamWriter, cut_after: int | None) -> bool:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            up_writer.write(head + body)
            await up_writer.drain()
            status_and_headers = await up_reader.readuntil(b"\r\n\r\n")
            lines = status_and_headers.decode("latin-1").split("\r\n")
            status_line = lines[0].replace("HTTP/1.0", "HTTP/1.1", 1)
            kept = [line for line in lines[1:] if line and not line.lower().startswith("connection:")]
            length = next(
                (int(line.split(":", 1)[1]) for line in kept if line.lower().startswith("content-length:")), None
            )
            connection = "keep-alive" if length is not None else "close"
            out_head = "\r\n".join([status_line, *kept, f"Connection: {connection}", "", ""]).encode("latin-1")
            writer.write(out_head)
            sent = 0
            while length is None or sent < length:
                chunk = await up_reader.read(256 * 1024)
                if not chunk:
                    break
                if cut_after is not None and sent + len(chunk) > cut_after:
                    writer.write(chunk[: max(0, cut_after - sent)])
                    await writer.drain()
                    raise _Cut()
                writer.write(chunk)
                sent += len(chunk)
                await writer.drain()
            return length is not None
        finally:
            up_writer.close()


class _Cut(Exception):
    """The injected fault: the connection closes before the promised body is sent."""
