"""The media reads' HTTP/1.1 client (pipeline/adapters/media_http.py): framing and connection reuse.

GCS and both local emulators frame a media body with Content-Length (the emulator behind the
fault proxy is read in tests/test_gcs_adapter.py and tests/test_read_transport.py). Chunked
bodies, idle connections the server drops, and a chunked body cut short have no local server
that sends them on demand, so a stdlib ``http.server`` here does, and says which it sent.
"""

from __future__ import annotations

import time

import pytest

from pipeline.adapters.media_http import HeadDeadlinePassed, HttpProtocolError, MediaConnections
from tests.support.http_server import BODY, RecordingHandler, serving


class Handler(RecordingHandler):
    def do_GET(self) -> None:
        self.record()
        if self.path == "/chunked":
            self.send_chunked(BODY, extension=b";ext=1", trailers=b"X-Trailer: t\r\n")
        elif self.path == "/chunked-cut":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n%s" % (len(BODY), BODY[:100]))
            self.close_connection = True
        elif self.path.startswith("/split-head"):
            # The head in pieces, a line cut mid-way, each piece flushed after a pause.
            pause = float(self.path.rpartition("=")[2])
            head = b"HTTP/1.1 200 OK\r\nX-Long: " + b"v" * 300 + b"\r\nContent-Length: %d\r\n\r\n" % len(BODY)
            for start in range(0, len(head), 40):
                self.wfile.write(head[start : start + 40])
                self.wfile.flush()
                time.sleep(pause)
            self.wfile.write(BODY)
        elif self.path == "/close":
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(BODY)
            self.close_connection = True
        else:
            self.send_response(404 if self.path == "/missing" else 200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)


@pytest.fixture
def server():
    with serving(Handler) as httpd:
        yield httpd


def fetch(pool: MediaConnections, path: str, chunk: int = 4096) -> tuple[int, bytes]:
    with pool.get(path, {"Accept-Encoding": "gzip"}, 5.0) as response:
        parts = []
        while data := response.read1(chunk):
            parts.append(data)
        return response.status, b"".join(parts)


def pool_for(server) -> MediaConnections:
    host, port = server.server_address
    return MediaConnections("http", host, port, 2, None, 5.0)


def test_chunked_and_length_framed_bodies_read_whole_on_one_kept_alive_connection(server):
    pool = pool_for(server)
    assert fetch(pool, "/chunked") == (200, BODY)
    assert fetch(pool, "/plain", chunk=1000) == (200, BODY)
    assert fetch(pool, "/missing") == (404, BODY)
    pool.close()
    assert [path for path, _ in Handler.peers] == ["/chunked", "/plain", "/missing"]
    assert len({port for _, port in Handler.peers}) == 1


def test_a_connection_the_server_closes_is_not_reused(server):
    pool = pool_for(server)
    assert fetch(pool, "/close") == (200, BODY)
    assert fetch(pool, "/plain") == (200, BODY)
    pool.close()
    assert len({port for _, port in Handler.peers}) == 2


def test_a_body_left_unread_closes_its_connection(server):
    pool = pool_for(server)
    with pool.get("/plain", {}, 5.0) as response:
        assert response.read1(10) == BODY[:10]
    assert fetch(pool, "/plain") == (200, BODY)
    pool.close()
    assert len({port for _, port in Handler.peers}) == 2


def test_a_chunked_body_cut_short_is_a_connection_error_not_an_end(server):
    pool = pool_for(server)
    with pool.get("/chunked-cut", {}, 5.0) as response:
        assert response.read1(len(BODY)) == BODY[:100]
        with pytest.raises(HttpProtocolError, match="body bytes still to come"):
            response.read1(len(BODY))
    assert issubclass(HttpProtocolError, ConnectionError)  # the read protocol retries it
    pool.close()


def test_an_unreachable_server_is_a_connection_error():
    pool = MediaConnections("http", "127.0.0.1", 9, 1, None, 5.0)
    with pytest.raises(ConnectionRefusedError):
        pool.get("/x", {}, 5.0)


def test_a_head_in_pieces_is_read_whole_within_the_deadline(server):
    pool = pool_for(server)
    with pool.get("/split-head?pause=0.01", {}, 5.0, deadline=time.monotonic() + 5) as response:
        assert response.status == 200 and response.headers.get("x-long") == "v" * 300
        assert response.read(len(BODY) + 1) == BODY


def test_a_head_still_arriving_at_the_deadline_is_abandoned_there(server):
    """Each piece comes well within the 5 s read timeout; the deadline for the whole head is 0.3 s."""
    pool = pool_for(server)
    started = time.monotonic()
    with pytest.raises(TimeoutError) as err:
        pool.get("/split-head?pause=0.1", {}, 5.0, deadline=time.monotonic() + 0.3)
    assert time.monotonic() - started < 1.5
    assert isinstance(err.value, HeadDeadlinePassed) or "timed out" in str(err.value)
