"""The media reads' own HTTP/1.1 client: one GET at a time per connection, kept alive, pooled.

A 1 KiB blob costs GCS one GET, and the read path's client CPU is what bounds a scan
of small blobs. Through urllib3 (what requests uses) each GET cost about 250 µs of
CPU on this machine, most of it in ``http.client`` parsing headers with the ``email``
package and in urllib3's per-request bookkeeping; this client does the same GET in
about 40 µs (``tests/bench``; docs/performance.md). It does only what the read path
needs: a GET with headers, a status line, headers, and a body framed by
``Content-Length``, ``Transfer-Encoding: chunked`` or the connection's close, never
decoded. Retries are the read protocol's (pipeline/adapters/gcs.py), not the client's.

A connection goes back to its pool only when its response was read to its end and the
server keeps it open; any error, timeout or unread body closes it.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable

MAX_HEADER_LINE = 65536
MAX_HEADERS = 100
# A read of at least this many bytes goes straight to the socket, not through the buffer.
BUFFER_SIZE = 64 * 1024


class HttpProtocolError(ConnectionError):
    """The server's answer is not HTTP as this client reads it: the connection is unusable."""


@contextlib.contextmanager
def _as_connection_errors():
    """Socket and TLS failures other than timeouts and resets (a name that does not resolve,
    an unreachable host, a TLS alert) as ``ConnectionError``: the read protocol retries those.

    The per-line and per-chunk reads catch the same with a bare ``try`` and ``_protocol_error``:
    entering a generator-based context manager costs more than reading a header line."""
    try:
        yield
    except (TimeoutError, ConnectionError):
        raise
    except OSError as err:
        raise _protocol_error(err) from err


def _protocol_error(err: OSError) -> HttpProtocolError:
    return HttpProtocolError(f"{type(err).__name__}: {err}")


class Headers(dict):
    """Header name (lower case) -> value; repeated headers joined with ``", "``."""

    def get(self, name: str, default=None):  # type: ignore[override]
        return super().get(name.lower(), default)


class _Connection:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.file = sock.makefile("rb", buffering=BUFFER_SIZE)

    def close(self) -> None:
        try:
            self.file.close()
        finally:
            self.sock.close()

    def dropped(self) -> bool:
        """An idle connection with something to read has been closed (or spoken to) by the server."""
        try:
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True


class MediaConnections:
    """Up to ``size`` idle connections to one ``scheme://host:port``, shared by threads."""

    def __init__(
        self, scheme: str, host: str, port: int, size: int, ssl_context: ssl.SSLContext | None, connect_timeout: float
    ):
        if scheme not in ("http", "https"):
            raise ValueError(f"media reads speak http or https, not {scheme!r}")
        self.scheme, self.host, self.port = scheme, host, port
        self._size = max(1, size)
        self._ssl = ssl_context if scheme == "https" else None
        self._connect_timeout = connect_timeout
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        default_port = 443 if scheme == "https" else 80
        self._host_header = host if port == default_port else f"{host}:{port}"

    def _take(self) -> _Connection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                return self._connect()
            if connection.dropped():
                connection.close()
                continue
            return connection

    def _connect(self) -> _Connection:
        with _as_connection_errors():
            sock = socket.create_connection((self.host, self.port), timeout=self._connect_timeout)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self._ssl is not None:
                    sock = self._ssl.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
        return _Connection(sock)

    def _give_back(self, connection: _Connection) -> None:
        with self._lock:
            if len(self._idle) < self._size:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def get(
        self,
        path_and_query: str,
        headers: dict[str, str],
        read_timeout: float,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> MediaResponse:
        """Send a GET and read the response's head; the body is the caller's to read (``read1``).

        ``deadline`` (on ``clock``) bounds the whole head, not just each socket read: a server
        that sends its headers a byte at a time would otherwise reset ``read_timeout`` for ever.
        """
        connection = self._take()
        try:
            connection.sock.settimeout(read_timeout if deadline is None else _wait(read_timeout, deadline, clock))
            lines = [f"GET {path_and_query} HTTP/1.1", f"Host: {self._host_header}"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            with _as_connection_errors():
                connection.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
                return MediaResponse(self, connection, read_timeout, deadline, clock)
        except BaseException:
            connection.close()
            raise


class HeadDeadlinePassed(TimeoutError):
    """The attempt's deadline passed while the server was still sending the response's head."""


def _wait(read_timeout: float, deadline: float, clock: Callable[[], float]) -> float:
    """How long the next socket read may wait: ``read_timeout``, and never past ``deadline``."""
    left = deadline - clock()
    if left <= 0:
        raise HeadDeadlinePassed("the attempt's deadline passed before the response's headers had arrived")
    return min(read_timeout, left)


class MediaResponse:
    """A response being read: ``status``, ``reason``, ``headers``, then ``read1`` until ``b""``.

    Use it as a context manager: leaving it returns the connection to its pool only when
    the body was read to its end and the server keeps the connection open.
    """

    def __init__(
        self,
        pool: MediaConnections,
        connection: _Connection,
        read_timeout: float | None = None,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._pool = pool
        self.connection = connection
        self._file = connection.file
        # While the head is read: each line's socket reads share the attempt's deadline, unless the
        # first socket read brought the whole head (the usual case), which readline then splits
        # from the buffer without another read, at a third of the cost of reading line by line.
        self._head_deadline = None
        self._drained = False  # get() set the socket's timeout for the first read
        if deadline is not None and read_timeout is not None and not self._head_buffered():
            self._head_deadline = (read_timeout, deadline, clock)
        self.version, self.status, self.reason = self._status_line()
        self.headers = self._headers()
        token = (self.headers.get("connection") or "").lower()
        self._keep_alive = "close" not in token if self.version >= 11 else "keep-alive" in token
        encoding = (self.headers.get("transfer-encoding") or "").lower()
        self._chunked = encoding.endswith("chunked")
        self._remaining: int | None = None  # bytes left in the body (or in the current chunk)
        self._done = False
        if self.status in (204, 304) or 100 <= self.status < 200:
            self._done = True
        elif not self._chunked:
            length = self.headers.get("content-length")
            if length is not None:
                try:
                    self._remaining = int(length)
                except ValueError:
                    raise HttpProtocolError(f"invalid Content-Length {length!r}") from None
                if self._remaining < 0:
                    raise HttpProtocolError(f"invalid Content-Length {length!r}")
                self._done = self._remaining == 0
            else:
                self._keep_alive = False  # the body ends when the server closes

    def _line(self) -> bytes:
        try:
            if self._head_deadline is not None:
                line = self._line_by_deadline(*self._head_deadline)
            else:
                line = self._file.readline(MAX_HEADER_LINE + 1)
        except (TimeoutError, ConnectionError):
            raise
        except OSError as err:
            raise _protocol_error(err) from err
        if len(line) > MAX_HEADER_LINE:
            raise HttpProtocolError("header line too long")
        if not line:
            raise HttpProtocolError("the server closed the connection before it answered")
        return line

    def _head_buffered(self) -> bool:
        """Whether the whole head has arrived: one socket read at most (``peek``), bounded by get()."""
        try:
            peeked = self._file.peek(1)
        except (TimeoutError, ConnectionError):
            raise
        except OSError as err:
            raise _protocol_error(err) from err
        return b"\r\n\r\n" in peeked or b"\n\n" in peeked

    def _line_by_deadline(self, read_timeout: float, deadline: float, clock: Callable[[], float]) -> bytes:
        """One line of the head, each socket read bounded by what is left of the deadline.

        ``readline`` would loop over socket reads on its own; ``peek`` does at most one when
        the buffer is empty, so the deadline is checked before each. A head that arrived in
        one packet (the usual case) is split from the buffer without a system call.
        """
        file = self._file
        parts: list[bytes] = []
        size = 0
        while True:
            if self._drained:  # the next peek reads the socket: no longer than the deadline allows
                self.connection.sock.settimeout(_wait(read_timeout, deadline, clock))
            peeked = file.peek(1)
            if not peeked:  # the server closed: what came so far is the line (empty: no answer)
                return b"".join(parts)
            end = peeked.find(b"\n", 0, MAX_HEADER_LINE + 1 - size) + 1
            take = end or min(len(peeked), MAX_HEADER_LINE + 1 - size)
            self._drained = take == len(peeked)
            if end and not parts:
                return file.read(take)
            parts.append(file.read(take))
            size += take
            if end or size > MAX_HEADER_LINE:
                return b"".join(parts)

    def _status_line(self) -> tuple[int, int, str]:
        line = self._line().decode("latin-1").rstrip("\r\n")
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not code.isdigit():
            raise HttpProtocolError(f"not an HTTP status line: {line[:100]!r}")
        return (11 if version == "HTTP/1.1" else 10), int(code), reason.strip()

    def _headers(self) -> Headers:
        headers = Headers()
        for _ in range(MAX_HEADERS + 1):
            line = self._line()
            if line in (b"\r\n", b"\n"):
                self._head_deadline = None  # the body's reads are bounded by the caller (gcs._stream)
                return headers
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon:
                raise HttpProtocolError(f"not a header line: {line[:100]!r}")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        raise HttpProtocolError(f"more than {MAX_HEADERS} headers")

    def _next_chunk(self) -> None:
        if self._remaining == 0:  # the CRLF after the chunk just read
            if self._line() not in (b"\r\n", b"\n"):
                raise HttpProtocolError("chunk not followed by CRLF")
        size = self._line().split(b";", 1)[0].strip()
        try:
            self._remaining = int(size, 16)
        except ValueError:
            raise HttpProtocolError(f"invalid chunk size {size[:20]!r}") from None
        if self._remaining == 0:
            while self._line() not in (b"\r\n", b"\n"):  # trailers
                pass
            self._done = True

    def read1(self, amount: int, decode_content: bool = False) -> bytes:
        """Up to ``amount`` body bytes after at most one socket read; ``b""`` once the body ended.

        A body cut short before its ``Content-Length`` or its last chunk raises
        ``HttpProtocolError``; a body without either ends cleanly with the connection.
        """
        if self._done or amount <= 0:
            return b""
        if self._chunked and not self._remaining:
            self._next_chunk()
            if self._done:
                return b""
        if self._remaining is not None:
            amount = min(amount, self._remaining)
        try:
            data = self._file.read1(amount)
        except (TimeoutError, ConnectionError):
            raise
        except OSError as err:
            raise _protocol_error(err) from err
        if not data:
            if self._remaining is None:
                self._done = True
                return b""
            raise HttpProtocolError(f"connection closed with {self._remaining} body bytes still to come")
        if self._remaining is not None:
            self._remaining -= len(data)
            if self._remaining == 0 and not self._chunked:
                self._done = True
        return data

    def read(self, limit: int, decode_content: bool = True) -> bytes:
        """At most ``limit`` body bytes (an error's message), decompressed if the server gzipped it."""
        parts, size = [], 0
        while size < limit:
            data = self.read1(limit - size)
            if not data:
                break
            parts.append(data)
            size += len(data)
        body = b"".join(parts)
        if decode_content and (self.headers.get("content-encoding") or "").lower() == "gzip":
            try:
                body = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body, limit)
            except zlib.error:
                pass
        return body

    def __enter__(self) -> MediaResponse:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        connection, self.connection = self.connection, None
        if connection is None:
            return
        if self._done and self._keep_alive:
            self._pool._give_back(connection)
        else:
            connection.close()
