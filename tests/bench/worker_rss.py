"""Peak memory of one scanning worker while it hashes a single object.

Runs in a fresh process so that its peak RSS is its own: ``python -m
tests.bench.worker_rss ENDPOINT BUCKET OBJECT MODE`` prints a JSON line.
MODE ``scan`` runs registry-scrub's HashObjectsFn; ``download_as_bytes`` is
the naive alternative, for contrast.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("NO_GCE_CHECK", "true")


def peak_rss_mib() -> float:
    """This process's own peak (VmHWM); getrusage's ru_maxrss would carry the parent's peak across exec."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(endpoint: str, bucket: str, name: str, mode: str) -> None:
    from pipeline.adapters import gcs
    from pipeline.core.shards import KeyRange
    from pipeline.transforms.hashing import HashObjectsFn

    client = gcs.make_client(endpoint)
    (obj,) = list(gcs.list_range(client, bucket, KeyRange(name)))
    baseline = peak_rss_mib()
    start = time.perf_counter()
    if mode == "scan":
        fn = HashObjectsFn("containers/images/", endpoint, chunk_size=1024 * 1024, read_concurrency=32, max_attempts=3)
        fn.setup()
        fn.start_bundle()
        outputs = list(fn.process(obj)) + list(fn.finish_bundle())
        fn.teardown()
        assert len(outputs) == 2, outputs
    else:
        import hashlib

        hashlib.sha256(client.bucket(bucket).blob(name).download_as_bytes(raw_download=True)).hexdigest()
    print(
        json.dumps(
            {
                "mode": mode,
                "size": obj.size,
                "seconds": time.perf_counter() - start,
                "baseline_rss_mib": baseline,
                "peak_rss_mib": peak_rss_mib(),
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:5])
