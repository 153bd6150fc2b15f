"""Benchmark: what ``scan.recover_images`` costs per GB on top of the plain scan, and which inflate to use.

Not collected by pytest; run ``.venv/bin/python tests/bench/bench_recovery.py``.
One process, one core, bytes already in memory: this is the CPU each read loop spends,
the part recovery adds (the download is the same single read either way).

The corpus is a real-looking layer: files from this Python's own standard library
(text and shared objects, as most image layers hold) plus a quarter of random bytes
(already-compressed files), tarred, then gzip -6 (what ``docker push`` writes) and zstd -3.

Printed, per GB of stored (compressed) bytes, the best of ``--repeat`` runs:
- plain scan: SHA-256 + crc32c of the stored bytes (what every scan does);
- recovery with each inflate installed (zlib, python-isal, zlib-ng) and for the zstd layer:
  the plain scan's work plus LayerSniffer (decompress + SHA-256 of the output).

With ``--pipeline``, also the whole scan on the default local runner (one worker per core)
against a real gcp-storage-emulator holding ``--layers`` gzip layers cut from that corpus,
without and with ``scan.recover_images``: wall time, MB/s of stored bytes, and the ratio.
The emulator shares the 2 cores, so compare the ratio, not the figures.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import random
import sys
import sysconfig
import tarfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import google_crc32c  # noqa: E402
import zstandard  # noqa: E402

from pipeline.core.layer_sniff import LayerSniffer  # noqa: E402

os.environ.setdefault("NO_GCE_CHECK", "true")
PREFIX = "containers/images/"

MiB = 1024 * 1024
CHUNK = MiB  # scan.chunk_size's default


def layer_tar(size: int, seed: int = 1) -> bytes:
    """About ``size`` bytes of tar: stdlib files until three quarters full, then random bytes."""
    raw = io.BytesIO()
    rng = random.Random(seed)
    total = 0
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*")):
            if total >= size * 3 // 4:
                break
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                info = tarfile.TarInfo(str(path.relative_to("/")))
                info.size, info.mtime = len(data), 0
                tar.addfile(info, io.BytesIO(data))
                total += len(data)
        blob = rng.randbytes(size - total) if size > total else b""
        info = tarfile.TarInfo("opt/app/random.bin")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    return raw.getvalue()


def plain_scan(stored: bytes) -> None:
    sha, crc = hashlib.sha256(), google_crc32c.Checksum()
    for start in range(0, len(stored), CHUNK):
        chunk = stored[start : start + CHUNK]
        sha.update(chunk)
        crc.update(chunk)


def scan_with_recovery(stored: bytes, decompressobj=None, expected: str | None = None) -> None:
    sha, crc = hashlib.sha256(), google_crc32c.Checksum()
    sniffer = LayerSniffer(decompressobj=decompressobj)
    for start in range(0, len(stored), CHUNK):
        chunk = stored[start : start + CHUNK]
        sha.update(chunk)
        crc.update(chunk)
        sniffer.update(chunk)
    result = sniffer.result()
    if expected and result.diff_id != expected:
        raise SystemExit(f"wrong diff_id: {result}")


def best_of(repeat: int, work) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return min(times)


def inflates():
    out = [("zlib " + zlib.ZLIB_RUNTIME_VERSION, zlib.decompressobj)]
    try:
        from isal import isal_zlib

        out.append(("python-isal", isal_zlib.decompressobj))
    except ImportError:
        print("python-isal not installed: pip install isal")
    try:
        from zlib_ng import zlib_ng

        out.append(("zlib-ng", zlib_ng.decompressobj))
    except ImportError:
        print("zlib-ng not installed: pip install zlib-ng")
    return out


def bench_pipeline(tar: bytes, layers: int) -> None:
    """The whole scan, plain and with recovery, over ``layers`` gzip layers seeded into an emulator."""
    import tempfile

    from jobs import logs
    from jobs.emulator import Emulator, bulk_seed
    from jobs.launcher import run_scan
    from pipeline.config import parse_config

    logs.configure(quiet=True, verbose=False)
    step = max(1, len(tar) // layers)
    objects = []
    for index in range(layers):
        part = tar[index * step : (index + 1) * step] + index.to_bytes(4, "big")
        blob = gzip.compress(part, compresslevel=6, mtime=0)
        objects.append((PREFIX + "sha256:" + hashlib.sha256(blob).hexdigest(), blob))
    stored = sum(len(blob) for _, blob in objects)
    bucket = "bench-recovery.appspot.com"
    with tempfile.TemporaryDirectory() as scratch:
        bulk_seed(Path(scratch) / "gcs", bucket, objects)
        with Emulator(Path(scratch) / "gcs") as emulator:
            figures = {}
            for recover in (False, True):
                config = parse_config(
                    {
                        "source": {"buckets": [bucket], "emulator_endpoint": emulator.endpoint},
                        "scan": {"recover_images": recover},
                        "report": {"output": str(Path(scratch) / "out"), "run_id": f"recover-{recover}"},
                    },
                    "bench",
                )
                start = time.perf_counter()
                summary = run_scan(config, [])
                figures[recover] = time.perf_counter() - start
                assert summary["objects_verified"] == layers, summary
    print(f"\nwhole scan, default local runner: {layers} gzip layers, {stored / 1e6:.0f} MB stored")
    for recover, seconds in figures.items():
        label = "scan + recovery" if recover else "plain scan"
        print(f"  {label:<20} {seconds:7.2f} s  {stored / 1e6 / seconds:7.1f} MB/s  {seconds / figures[False]:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=128, help="uncompressed layer size (default 128)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pipeline", action="store_true", help="also time whole scans against an emulator")
    parser.add_argument("--layers", type=int, default=32, help="layers seeded for --pipeline (default 32)")
    args = parser.parse_args()

    tar = layer_tar(args.size_mib * MiB)
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    gz = gzip.compress(tar, compresslevel=6, mtime=0)
    zst = zstandard.ZstdCompressor(level=3).compress(tar)
    print(f"cpu: {os.cpu_count()} cores, one used; python {sys.version.split()[0]}")
    print(
        f"layer: {len(tar) / MiB:.0f} MiB tar; gzip -6 {len(gz) / MiB:.1f} MiB "
        f"(ratio {len(tar) / len(gz):.2f}); zstd -3 {len(zst) / MiB:.1f} MiB (ratio {len(tar) / len(zst):.2f})"
    )
    gb = 1e9
    rows = [("plain scan (sha256 + crc32c)", "gzip", best_of(args.repeat, lambda: plain_scan(gz)), len(gz))]
    for name, factory in inflates():
        seconds = best_of(args.repeat, lambda f=factory: scan_with_recovery(gz, f, diff_id))
        rows.append((f"scan + recovery, {name}", "gzip", seconds, len(gz)))
    rows.append(("plain scan (sha256 + crc32c)", "zstd", best_of(args.repeat, lambda: plain_scan(zst)), len(zst)))
    seconds = best_of(args.repeat, lambda: scan_with_recovery(zst, None, diff_id))
    rows.append((f"scan + recovery, zstandard {zstandard.__version__}", "zstd", seconds, len(zst)))

    print(f"\n{'':44} {'layer':>5} {'CPU s/GB stored':>16} {'MB/s stored':>12} {'x plain':>8}")
    plain = {}
    for name, kind, seconds, size in rows:
        per_gb = seconds / (size / gb)
        plain.setdefault(kind, per_gb)
        print(f"{name:44} {kind:>5} {per_gb:16.2f} {size / 1e6 / seconds:12.0f} {per_gb / plain[kind]:8.2f}")
    print("\nRecovery's extra cost is the difference to the plain scan of the same layer.")
    if args.pipeline:
        bench_pipeline(tar, args.layers)


if __name__ == "__main__":
    main()
