"""A stdlib HTTP/1.1 server for the tests that need a response no local server sends on demand
(chunked bodies, held requests, dropped connections): each test's handler says what to send."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

BODY = bytes(range(256)) * 40  # 10,240 bytes


def send_json(handler: http.server.BaseHTTPRequestHandler, status: int, body: object) -> None:
    """A JSON answer with its length, as Google's APIs and token endpoints send one."""
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1, silent, and recording each request's (path, client port) in ``peers``: a port
    seen twice is a connection reused."""

    protocol_version = "HTTP/1.1"
    peers: list = []

    def log_message(self, *args) -> None:
        pass

    def record(self) -> None:
        type(self).peers.append((self.path, self.client_address[1]))

    def send_chunked(self, body: bytes, extension: bytes = b"", trailers: bytes = b"") -> None:
        """``body`` in chunks of 3,000 bytes, each size line with ``extension``, then ``trailers``."""
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(body), 3000):
            part = body[start : start + 3000]
            self.wfile.write(b"%x%s\r\n%s\r\n" % (len(part), extension, part))
        self.wfile.write(b"0\r\n" + trailers + b"\r\n")


@contextmanager
def serving(handler: type[RecordingHandler]) -> Iterator[http.server.ThreadingHTTPServer]:
    handler.peers = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
