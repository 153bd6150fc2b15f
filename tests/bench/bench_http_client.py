"""Benchmark: the media reads' HTTP client (pipeline/adapters/media_http.py) against h11 and urllib3.

Not collected by pytest; ``python tests/bench/bench_http_client.py --help``.

The read path's client CPU is what bounds a scan of small blobs, so this measures one thing:
the CPU seconds this process spends per GET of a 1 KiB object, and per GB of large ones,
reading each body to its end in ``chunk_size`` pieces on kept-alive connections (a new one
per GET against gcp-storage-emulator, which closes them), against both local servers. The
servers run in processes of their own; only the client's CPU is counted
(``time.process_time``), one GET after another in one thread.

Clients:
- media_http: ``pipeline.adapters.media_http.MediaConnections``, what the scanner uses;
- h11: the same pool and socket handling with python-hyper/h11 doing the HTTP/1.1 framing
  (``tests/bench/h11_media.py``), the library that would replace the hand-written parsing;
- urllib3: ``urllib3.PoolManager``, what requests uses underneath (the previous read path).

Every client reads every object of a workload once per round; the order of the clients
rotates each round, the figures are medians over the rounds, and each ratio to media_http is
taken within a round. Every body goes through SHA-256 and is checked, as the scanner does,
so every client carries the same hashing; the hashing alone is printed for reference.

``--whole-run`` also runs the whole CLI (tests/bench/bench_scan.py's registry-scrub variant)
on 5,000 x 1 KiB and 40 x 25 MiB from this tree and from a copy of it whose read path uses
the h11 client, alternated, and prints the wall and CPU of each with their per-round ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

os.environ.setdefault("NO_GCE_CHECK", "true")
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import h11  # noqa: E402
import urllib3  # noqa: E402

from pipeline.adapters.media_http import MediaConnections  # noqa: E402
from tests.bench import bench_scan  # noqa: E402
from tests.bench.h11_media import H11Connections  # noqa: E402
from tests.bench.servers import SERVERS  # noqa: E402

PREFIX = "containers/images/"
MiB = 1024 * 1024
CHUNK = 1 * MiB  # the scanner's default chunk_size


# ---------------------------------------------------------------- the measured loops


def read_all(open_response: Callable[[str], object], paths: list[str], sha256s: list[str]) -> int:
    """GET every path, read its body in CHUNK pieces through SHA-256, and check the digest."""
    total = 0
    for path, expected in zip(paths, sha256s, strict=True):
        digest = hashlib.sha256()
        with open_response(path) as response:
            assert response.status == 200, response.status
            while data := response.read1(CHUNK, decode_content=False):
                digest.update(data)
                total += len(data)
        assert digest.hexdigest() == expected, path
    return total


def media_http_client(host: str, port: int):
    pool = MediaConnections("http", host, port, 4, None, 10.0)
    return (lambda path: pool.get(path, {"Accept-Encoding": "gzip"}, 30.0)), pool.close


def h11_client(host: str, port: int):
    pool = H11Connections("http", host, port, 4, None, 10.0)
    return (lambda path: pool.get(path, {"Accept-Encoding": "gzip"}, 30.0)), pool.close


class _Urllib3Response:
    def __init__(self, response):
        self._response = response
        self.status = response.status

    def read1(self, amount: int, decode_content: bool = False) -> bytes:
        return self._response.read1(amount, decode_content=decode_content)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._response.release_conn()


def urllib3_client(host: str, port: int):
    manager = urllib3.PoolManager(maxsize=4, retries=False)
    base = f"http://{host}:{port}"

    def open_response(path: str):
        response = manager.request(
            "GET", base + path, headers={"Accept-Encoding": "gzip"}, preload_content=False, decode_content=False
        )
        return _Urllib3Response(response)

    return open_response, manager.clear


CLIENTS = {"media_http": media_http_client, "h11": h11_client, "urllib3": urllib3_client}


def measure(client: str, endpoint: str, paths: list[str], sha256s: list[str]) -> tuple[float, float, int]:
    parts = urlsplit(endpoint)
    open_response, close = CLIENTS[client](parts.hostname, parts.port)
    try:
        read_all(open_response, paths[:3], sha256s[:3])  # connect and warm up outside the clock
        wall, cpu = time.perf_counter(), time.process_time()
        size = read_all(open_response, paths, sha256s)
        return time.perf_counter() - wall, time.process_time() - cpu, size
    finally:
        close()


def hashing_alone(contents: list[bytes]) -> float:
    cpu = time.process_time()
    for content in contents:
        digest = hashlib.sha256()
        view = memoryview(content)
        for start in range(0, len(content), CHUNK):
            digest.update(view[start : start + CHUNK])
        digest.hexdigest()
    return time.process_time() - cpu


# ---------------------------------------------------------------- whole runs: this tree against an h11 copy

MEDIA_IMPORT = "from pipeline.adapters.media_http import MediaConnections\n"
H11_IMPORT = "from tests.bench.h11_media import H11Connections as MediaConnections\n"


def h11_tree(scratch: Path) -> Path:
    """A copy of this tree's files (uncommitted edits included) whose read path uses the h11 client."""
    tree = scratch / "h11-tree"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)
    gcs = tree / "pipeline" / "adapters" / "gcs.py"
    text = gcs.read_text()
    assert text.count(MEDIA_IMPORT) == 1, "pipeline/adapters/gcs.py no longer imports MediaConnections as expected"
    gcs.write_text(text.replace(MEDIA_IMPORT, H11_IMPORT))
    check = "import pipeline.adapters.gcs as g; print(g.MediaConnections.__module__)"
    used = subprocess.run([sys.executable, "-c", check], cwd=tree, capture_output=True, text=True, check=True)
    assert used.stdout.strip() == "tests.bench.h11_media", used.stdout
    return tree


def whole_runs(args, scratch: Path) -> None:
    workloads = [bench_scan.Workload("small", 5000, 1024), bench_scan.Workload("large", 40, 25 * MiB)]
    trees = {"media_http": REPO, "h11": h11_tree(scratch)}
    samples: dict[tuple[str, str, str], list] = {}
    for server_name in args.servers.split(","):
        server = SERVERS[server_name](scratch)
        for index, w in enumerate(workloads):
            server.seed(w.bucket, bench_scan.corpus(w, seed=index))
        server.start()
        try:
            for round_index in range(args.rounds):
                order = list(trees) if round_index % 2 == 0 else list(reversed(trees))
                for w in workloads:
                    for client in order:
                        sample = bench_scan.registry_scrub(
                            server.endpoint,
                            w,
                            scratch / "reports",
                            None,
                            [],
                            f"{client}-{round_index}",
                            tree=trees[client],
                        )
                        samples.setdefault((server_name, w.name, client), []).append(sample)
                print(f"  whole runs, {server_name}: round {round_index + 1} of {args.rounds}", flush=True)
        finally:
            server.stop()
    print("\nwhole CLI runs, this tree's read path (media_http) against the same tree with h11's (medians)")
    for (server_name, name, client), rows in samples.items():
        base = samples[(server_name, name, "media_http")]
        wall_ratio = statistics.median(r.wall / b.wall for r, b in zip(rows, base, strict=True))
        cpu_ratio = statistics.median(r.cpu / b.cpu for r, b in zip(rows, base, strict=True))
        print(
            f"  {server_name:<22} {name:<6} {client:<11} wall {statistics.median(r.wall for r in rows):6.2f} s "
            f"(rounds {', '.join(f'{r.wall:.2f}' for r in rows)}), "
            f"CPU {statistics.median(r.cpu for r in rows):6.2f} s; "
            f"x media_http: wall {wall_ratio:.2f}, CPU {cpu_ratio:.2f}"
        )


# ---------------------------------------------------------------- main


def corpus(count: int, size: int, seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    objects = []
    for _ in range(count):
        content = rng.randbytes(size)
        objects.append((PREFIX + "sha256:" + hashlib.sha256(content).hexdigest(), content))
    return objects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--small", type=int, default=2000, help="1 KiB objects")
    parser.add_argument("--large", type=int, default=16, help="25 MiB objects")
    parser.add_argument("--whole-run", action="store_true", help="also whole CLI runs, this tree against an h11 copy")
    parser.add_argument("--only-whole-run", action="store_true", help="only the whole CLI runs")
    args = parser.parse_args()
    if args.only_whole_run:
        with tempfile.TemporaryDirectory(prefix="registry-scrub-http-bench-") as scratch:
            whole_runs(args, Path(scratch))
        return
    clients = args.clients.split(",")
    workloads = {
        "small": corpus(args.small, 1024, seed=1),
        "large": corpus(args.large, 25 * MiB, seed=2),
    }
    print(
        f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; python {sys.version.split()[0]}; "
        f"h11 {h11.__version__}, urllib3 {urllib3.__version__}; {args.rounds} rounds; "
        f"started {time.strftime('%H:%M:%S', time.gmtime())} UTC"
    )
    # (server, workload, client) -> [(wall, cpu)] per round
    samples: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    hashing = {name: [hashing_alone([c for _, c in objects]) for _ in range(3)] for name, objects in workloads.items()}
    with tempfile.TemporaryDirectory(prefix="registry-scrub-http-bench-") as scratch:
        for server_name in args.servers.split(","):
            server = SERVERS[server_name](Path(scratch))
            for name, objects in workloads.items():
                server.seed(f"http-{name}.appspot.com", objects)
            server.start()
            try:
                for round_index in range(args.rounds):
                    order = clients[round_index % len(clients) :] + clients[: round_index % len(clients)]
                    for name, objects in workloads.items():
                        bucket = f"http-{name}.appspot.com"
                        paths = [
                            f"/download/storage/v1/b/{bucket}/o/{n.replace('/', '%2F')}?alt=media" for n, _ in objects
                        ]
                        sha256s = [n.rsplit(":", 1)[1] for n, _ in objects]
                        for client in order:
                            wall, cpu, size = measure(client, server.endpoint, paths, sha256s)
                            assert size == sum(len(c) for _, c in objects)
                            samples.setdefault((server_name, name, client), []).append((wall, cpu))
                    print(f"  {server_name}: round {round_index + 1} of {args.rounds}", flush=True)
            finally:
                server.stop()
    for server_name in args.servers.split(","):
        print(f"\n== {server_name} ==")
        for name, objects in workloads.items():
            count, total = len(objects), sum(len(c) for _, c in objects)
            hash_cpu = statistics.median(hashing[name])
            print(
                f"  {count:,} x {len(objects[0][1]):,} B  (SHA-256 alone: {hash_cpu / count * 1e6:.1f} µs per object, "
                f"{hash_cpu / (total / 1e9):.2f} CPU-s per GB)"
            )
            print(f"    {'client':<12} {'wall':>8} {'µs CPU/GET':>11} {'CPU-s/GB':>9} {'CPU x media_http':>17}")
            base = samples[(server_name, name, "media_http")]
            for client in clients:
                rows = samples[(server_name, name, client)]
                cpu = statistics.median(c for _, c in rows)
                ratio = statistics.median(c / b[1] for (_, c), b in zip(rows, base, strict=True))
                print(
                    f"    {client:<12} {statistics.median(w for w, _ in rows):7.2f}s {cpu / count * 1e6:11.1f} "
                    f"{cpu / (total / 1e9):9.2f} {ratio:16.2f}x"
                )
    if args.whole_run:
        with tempfile.TemporaryDirectory(prefix="registry-scrub-http-bench-") as scratch:
            whole_runs(args, Path(scratch))
    print(f"\nfinished {time.strftime('%H:%M:%S', time.gmtime())} UTC")


if __name__ == "__main__":
    main()
