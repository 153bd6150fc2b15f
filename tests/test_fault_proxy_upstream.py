"""The fault proxy's upstream side (tests/support/proxy.py): kept-alive connections reused,
chunked bodies forwarded whole, and ``upstream_connections`` capping requests at the server.

gcp-storage-emulator, which the other proxy tests sit in front of, speaks HTTP/1.0 and closes
every connection, so it can show none of this; fake-gcs-server keeps connections alive but
cannot hold a request open on demand. A stdlib HTTP/1.1 ``http.server`` here does both, and
records what it saw.
"""

from __future__ import annotations

import http.client
import http.server
import threading
import time

import pytest

from tests.support.http_server import BODY, RecordingHandler, serving
from tests.support.proxy import FaultyProxy


class Handler(RecordingHandler):
    lock = threading.Lock()
    holding = 0  # requests inside /hold right now
    peak = 0
    release = threading.Event()

    def do_GET(self) -> None:
        self.record()
        if self.path == "/chunked":
            self.send_chunked(BODY)
            return
        if self.path == "/hold":
            with Handler.lock:
                Handler.holding += 1
                Handler.peak = max(Handler.peak, Handler.holding)
            Handler.release.wait(10)
            with Handler.lock:
                Handler.holding -= 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


@pytest.fixture
def server():
    Handler.holding, Handler.peak = 0, 0
    Handler.release = threading.Event()
    with serving(Handler) as httpd:
        yield httpd
        Handler.release.set()


def get(port: int, paths: list[str]) -> list[tuple[int, bytes]]:
    """GETs in turn on one kept-alive client connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        answers = []
        for path in paths:
            connection.request("GET", path)
            response = connection.getresponse()
            answers.append((response.status, response.read()))
        return answers
    finally:
        connection.close()


def test_a_kept_alive_upstream_connection_is_reused_and_chunked_bodies_arrive_whole(server):
    with FaultyProxy(server.server_address[1]) as proxy:
        assert get(proxy.port, ["/chunked", "/plain", "/chunked", "/plain"]) == [(200, BODY)] * 4
    assert [path for path, _ in Handler.peers] == ["/chunked", "/plain", "/chunked", "/plain"]
    assert len({port for _, port in Handler.peers}) == 1  # one upstream connection for all four
    assert [record.answered is not None for record in proxy.stats.log] == [True] * 4


def test_upstream_connections_caps_the_requests_at_the_server_and_the_rest_wait(server):
    answers: list = []
    with FaultyProxy(server.server_address[1], upstream_connections=2) as proxy:
        clients = [threading.Thread(target=lambda: answers.extend(get(proxy.port, ["/hold"]))) for _ in range(6)]
        for client in clients:
            client.start()
        deadline = time.monotonic() + 10
        while proxy.stats.requests < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # room for a third request to reach the server, were the cap not holding it
        assert (proxy.stats.requests, Handler.holding) == (6, 2)
        Handler.release.set()
        for client in clients:
            client.join(10)
    assert answers == [(200, BODY)] * 6
    assert Handler.peak == 2
