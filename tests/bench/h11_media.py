"""The media reads' client with python-hyper/h11 doing the HTTP/1.1: what would replace the
hand-written parsing of pipeline/adapters/media_http.py, kept here to measure it against it
(tests/bench/bench_http_client.py; docs/performance.md, "The HTTP client").

Connecting, TLS and pooling are ``MediaConnections``' own; h11 writes the request, reads the
status line, headers and body framing, and decides whether the connection can be reused.
Its framing errors are the same ``HttpProtocolError`` (a transport fault, never damage).
"""

from __future__ import annotations

import socket

import h11

from pipeline.adapters import media_http
from pipeline.adapters.media_http import HttpProtocolError, MediaConnections

CHUNK = 1024 * 1024  # the scanner's default chunk_size


class _H11Connection:
    # Into one reused buffer, as large as a read1 of the scanner asks for: h11 copies what it
    # is given into its own buffer anyway, and a fresh bytes object per recv would cost more.
    RECV_SIZE = CHUNK

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=media_http.MAX_HEADER_LINE)
        self._buffer = bytearray(self.RECV_SIZE)
        self._view = memoryview(self._buffer)

    dropped = media_http._Connection.dropped

    def close(self) -> None:
        self.sock.close()

    def next_event(self):
        """The next h11 event, reading from the socket as h11 asks for data."""
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as err:
                raise HttpProtocolError(str(err)) from err
            if event is not h11.NEED_DATA:
                return event
            try:
                size = self.sock.recv_into(self._buffer)
            except (TimeoutError, ConnectionError):
                raise
            except OSError as err:
                raise media_http._protocol_error(err) from err
            try:
                self.h11.receive_data(self._view[:size])
            except h11.RemoteProtocolError as err:
                raise HttpProtocolError(str(err)) from err


class H11Connections(MediaConnections):
    """``MediaConnections`` with h11 reading and writing the HTTP: connect, TLS and pooling unchanged."""

    def _connect(self):
        connection = super()._connect()
        connection.file.close()  # h11 reads the socket itself
        return _H11Connection(connection.sock)

    def get(self, path_and_query: str, headers: dict[str, str], read_timeout: float):
        connection = self._take()
        try:
            connection.sock.settimeout(read_timeout)
            request = h11.Request(
                method="GET", target=path_and_query, headers=[("Host", self._host_header), *headers.items()]
            )
            with media_http._as_connection_errors():
                connection.sock.sendall(connection.h11.send(request) + connection.h11.send(h11.EndOfMessage()))
            return H11Response(self, connection)
        except BaseException:
            connection.close()
            raise


class H11Response:
    def __init__(self, pool: H11Connections, connection: _H11Connection):
        self._pool = pool
        self.connection = connection
        event = connection.next_event()
        while isinstance(event, h11.InformationalResponse):
            event = connection.next_event()
        if not isinstance(event, h11.Response):
            raise HttpProtocolError(f"no response: {event!r}")
        self.status = event.status_code
        self.reason = event.reason.decode("latin-1")
        self.headers = media_http.Headers()
        for name, value in event.headers:
            key, text = name.decode("latin-1"), value.decode("latin-1")
            self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text
        self._pending = b""  # body bytes h11 handed over beyond what a read1 asked for
        self._done = False

    def read1(self, amount: int, decode_content: bool = False) -> bytes:
        if amount <= 0:
            return b""
        if not self._pending:
            if self._done:
                return b""
            event = self.connection.next_event()
            if isinstance(event, h11.EndOfMessage):
                self._done = True
                return b""
            if not isinstance(event, h11.Data):
                raise HttpProtocolError(f"unexpected {event!r}")
            self._pending = event.data
        data, self._pending = self._pending[:amount], self._pending[amount:]
        return bytes(data)

    # An error's body (read1 until the limit), and release() when the response is left: as ours does.
    read = media_http.MediaResponse.read
    __enter__ = media_http.MediaResponse.__enter__
    __exit__ = media_http.MediaResponse.__exit__

    def release(self) -> None:
        connection, self.connection = self.connection, None
        if connection is None:
            return
        state = connection.h11
        if self._done and not self._pending and state.our_state is h11.DONE and state.their_state is h11.DONE:
            state.start_next_cycle()
            self._pool._give_back(connection)
        else:
            connection.close()
