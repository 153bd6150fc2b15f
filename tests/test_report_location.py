"""The report location on ``gs://``: written through Beam's own filesystem, against the real emulator.

Beam's ``gs://`` filesystem would first search for Google credentials for about 25 s in
each process; ``pipeline.adapters.report.anonymous_gcs_for_emulator`` settles that to the
anonymous client an emulator needs, so these scans take seconds.
"""

from __future__ import annotations

import hashlib
import json

from jobs.launcher import run_scan
from pipeline.adapters import gcs
from pipeline.config import parse_config

IN_MEMORY = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
PREFIX = "containers/images/"


def _bucket(client, name):
    bucket = client.lookup_bucket(name) or client.create_bucket(name)
    for blob in client.list_blobs(name):
        blob.delete()
    return bucket


def test_a_gs_rerun_with_the_same_run_id_clears_the_old_files(emulator):
    client = gcs.make_client(emulator.endpoint)
    scanned = _bucket(client, "artifacts.gs-report.appspot.com")
    for i in range(3):
        content = f"blob {i}".encode()
        scanned.blob(PREFIX + "sha256:" + hashlib.sha256(content).hexdigest()).upload_from_string(content)
    scanned.blob(PREFIX + "stray.tmp").upload_from_string(b"x")
    reports = _bucket(client, "scrub-reports-gs")
    stale = ["root/run/findings-00003-of-00009.jsonl", "root/run/reclaim-plan.txt", "root/run/old/leftover.txt"]
    kept = ["root/run-2/summary.json", "root/run.txt"]  # neighbours that share the name's prefix
    for name in stale + kept:
        reports.blob(name).upload_from_string(b'{"stale": true}\n')

    config = parse_config(
        {
            "source": {"buckets": [scanned.name], "emulator_endpoint": emulator.endpoint},
            "report": {"output": "gs://scrub-reports-gs/root", "run_id": "run"},
        },
        "test",
    )
    summary = run_scan(config, IN_MEMORY)

    def names():
        return sorted(blob.name for blob in client.list_blobs("scrub-reports-gs"))

    first = names()
    assert not set(stale) & set(first), "the earlier run's files are gone"
    assert set(kept) <= set(first), "nothing outside the run's own folder is touched"
    run_files = [n for n in first if n.startswith("root/run/")]
    assert "root/run/summary.json" in run_files
    assert summary["report_location"] == "gs://scrub-reports-gs/root/run"
    assert json.loads(reports.blob("root/run/summary.json").download_as_bytes()) == summary
    rows = [
        json.loads(line)
        for name in run_files
        if name.startswith("root/run/findings-")
        for line in reports.blob(name).download_as_bytes().decode().splitlines()
    ]
    assert [(r["run_id"], r["kind"], r["object"]) for r in rows] == [("run", "malformed_name", PREFIX + "stray.tmp")]

    run_scan(config, IN_MEMORY)
    assert names() == first, "a second run with the same id leaves exactly one run's files"
