"""Incremental rescans and run-to-run differences, end to end against the real gcp-storage-emulator.

Four runs over one bucket, each on Beam's in-process runner, every object GET counted by the
loopback proxy in front of the emulator (it only forwards: every byte is the emulator's):

1. ``r1``: a full scan, the ledger of what follows.
2. Between runs the bucket changes the way real buckets do: one object is rewritten (same bytes,
   a new generation), one is added, one deleted, and one is damaged *at rest*: a byte flipped in
   the emulator's data directory, behind its back, so its generation and stored crc32c still
   match the ledger: the silent corruption that only a re-read can find.
3. ``r2``: incremental (ledger ``auto``, no re-check sample): unchanged objects are carried over
   without a GET (the damaged one too: the risk the sample exists for), the rewritten and the
   new one are read, and the diff names the new, changed and vanished objects.
4. ``r3``: incremental with a sample of 100 %: every carried-over object is read again, and the
   damaged one contradicts the ledger: ``ledger_disagrees``, with both sides' evidence.
5. ``r4``: ``reverify_after: 1s`` against ``r2``: every verification has expired, so every
   object is read again (the damaged one is then an ordinary ``digest_mismatch``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from jobs.emulator import Emulator
from jobs.launcher import run_scan
from pipeline.adapters import gcs
from pipeline.config import parse_config
from pipeline.core.findings import FINDING_FIELDS, VERIFIED_FIELDS
from tests.support.proxy import FaultyProxy

PREFIX = "containers/images/"
BUCKET = "artifacts.incremental-test.appspot.com"
IN_PROCESS = ["--direct_running_mode=in_memory"]


def blob(seed: int, size: int = 3000) -> tuple[str, bytes]:
    content = hashlib.sha256(f"seed {seed}".encode()).digest() * (size // 32)
    return PREFIX + "sha256:" + hashlib.sha256(content).hexdigest(), content


def config_for(endpoint: str, output: Path, run_id: str, **scan_and_report):
    report = {"output": str(output), "run_id": run_id}
    for key in ("ledger",):
        if key in scan_and_report:
            report[key] = scan_and_report.pop(key)
    raw = {
        "source": {"buckets": [BUCKET], "emulator_endpoint": endpoint},
        "scan": {"read_concurrency": 4, **scan_and_report},
        "report": report,
    }
    return parse_config(raw, "test")


def rows(run_dir: Path, prefix: str) -> list[dict]:
    found = []
    for path in sorted(run_dir.glob(f"{prefix}-*.jsonl")):
        found += [json.loads(line) for line in path.read_text().splitlines() if line]
    return found


def scan(proxy: FaultyProxy, config) -> tuple[dict, list[str]]:
    """One run; returns its summary and the objects it GET."""
    before = len(proxy.stats.media_reads())
    summary = run_scan(config, IN_PROCESS)
    paths = [record.path for record in proxy.stats.media_reads()[before:]]
    return summary, paths


def got(paths: list[str], name: str) -> int:
    from urllib.parse import quote

    return sum(1 for path in paths if f"/o/{quote(name, safe='')}?" in path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    names = {label: blob(seed) for seed, label in enumerate(["kept", "rewritten", "deleted", "damaged", "also_kept"])}
    added = blob(99)
    stray = PREFIX + "upload-in-progress.tmp"
    output = tmp_path_factory.mktemp("reports")
    with Emulator(tmp_path_factory.mktemp("gcs")) as emulator, FaultyProxy(emulator.port) as proxy:
        client = gcs.make_client(emulator.endpoint)
        bucket = client.create_bucket(BUCKET)
        for name, content in names.values():
            bucket.blob(name).upload_from_string(content)
        bucket.blob(stray).upload_from_string(b"stray")
        generations = {label: bucket.get_blob(name).generation for label, (name, _) in names.items()}

        r1 = scan(proxy, config_for(proxy.endpoint, output, "r1"))

        name, content = names["rewritten"]
        bucket.blob(name).upload_from_string(content)  # the same bytes again: a new generation
        bucket.blob(added[0]).upload_from_string(added[1])
        bucket.blob(names["deleted"][0]).delete()
        path = emulator.object_path(BUCKET, names["damaged"][0])
        data = bytearray(path.read_bytes())
        data[100] ^= 0x20
        path.write_bytes(bytes(data))
        generations["rewritten_now"] = bucket.get_blob(name).generation

        r2 = scan(proxy, config_for(proxy.endpoint, output, "r2", incremental=True, reverify_sample=0))
        r3 = scan(proxy, config_for(proxy.endpoint, output, "r3", incremental=True, reverify_sample=1))
        time.sleep(1.1)  # r2's verifications are then more than reverify_after old
        r4 = scan(
            proxy,
            config_for(proxy.endpoint, output, "r4", incremental=True, reverify_after="1s", ledger=str(output / "r2")),
        )
        # A forged ledger: r2's folder with the recorded sha256 of one object edited by hand.
        forged = output / "forged"
        forged.mkdir()
        for path in (output / "r2").iterdir():
            text = path.read_text()
            if path.name.startswith("verified-"):
                recorded = '"sha256":"' + hashlib.sha256(names["kept"][1]).hexdigest() + '"'
                assert recorded in text
                text = text.replace(recorded, '"sha256":"' + "0" * 64 + '"')
            (forged / path.name).write_text(text)
        r5 = scan(
            proxy, config_for(proxy.endpoint, output, "r5", incremental=True, reverify_sample=0, ledger=str(forged))
        )
    return {
        "names": {label: name for label, (name, _) in names.items()},
        "added": added[0],
        "stray": stray,
        "generations": generations,
        "output": output,
        "r1": r1,
        "r2": r2,
        "r3": r3,
        "r4": r4,
        "r5": r5,
    }


def test_the_first_run_reads_every_object_and_names_no_ledger(runs):
    summary, paths = runs["r1"]
    assert len(paths) == 5  # five blobs; the stray name is a finding without a read
    assert summary["objects_verified"] == 5 and summary["verified_from_ledger"] == 0
    assert summary["ledger"] is None and summary["changes"] is None
    for row in rows(runs["output"] / "r1", "verified"):
        assert tuple(row) == ("run_id", *VERIFIED_FIELDS)
        assert row["verified_by"] == "read" and row["ledger_run_id"] is None
        assert row["verified_at"] == summary["started_at"]


def test_unchanged_objects_are_carried_over_without_a_read(runs):
    summary, paths = runs["r2"]
    names = runs["names"]
    # Only the rewritten and the new object are read: 2 GETs where a full scan makes 5.
    assert got(paths, names["rewritten"]) == 1 and got(paths, runs["added"]) == 1
    assert len(paths) == 2
    verified = {row["object"]: row for row in rows(runs["output"] / "r2", "verified")}
    carried = {n for n, row in verified.items() if row["verified_by"] == "ledger"}
    assert carried == {names["kept"], names["damaged"], names["also_kept"]}
    r1_started = runs["r1"][0]["started_at"]
    for name in carried:
        assert verified[name]["ledger_run_id"] == "r1"
        assert verified[name]["verified_at"] == r1_started, "a carried-over row keeps the time of the read"
    assert verified[runs["added"]]["verified_by"] == "read"
    assert verified[names["rewritten"]]["generation"] == runs["generations"]["rewritten_now"]
    assert summary["verified_from_ledger"] == 3
    assert summary["bytes_from_ledger"] == sum(verified[n]["size"] for n in carried)
    assert summary["objects_listed"] == 6 and summary["objects_verified"] == 5
    assert summary["unaccounted_objects"] == 0
    assert summary["ledger"]["run_id"] == "r1" and summary["ledger"]["chosen_by"] == "auto"
    assert summary["exit_status"] == 0


def test_the_diff_names_new_changed_and_vanished_objects_and_the_findings(runs):
    summary, _ = runs["r2"]
    names, generations = runs["names"], runs["generations"]
    changes = summary["changes"]
    assert changes["previous_run_id"] == "r1"
    assert changes["objects"] == {"new": 1, "changed": 1, "vanished": 1}
    assert changes["findings"] == {"new": 0, "gone": 0, "persisting": 1}
    assert changes["findings_by_kind"] == {"malformed_name": {"new": 0, "gone": 0, "persisting": 1}}
    lines = rows(runs["output"] / "r2", "changes")
    by_change = {}
    for row in lines:
        by_change.setdefault(row["change"], []).append(row)
    assert [r["object"] for r in by_change["new_object"]] == [runs["added"]]
    (changed,) = by_change["changed_object"]
    assert changed["object"] == names["rewritten"]
    assert (changed["previous_generation"], changed["generation"]) == (
        generations["rewritten"],
        generations["rewritten_now"],
    )
    (vanished,) = by_change["vanished_object"]
    assert vanished["object"] == names["deleted"] and vanished["previous_generation"] == generations["deleted"]
    assert [r["object"] for r in by_change["persisting_finding"]] == [runs["stray"]]
    assert len(lines) == 4
    assert changes["examples"]["changed_object"] == [changed]
    assert "changes-00000-of-00001.jsonl" in summary["files"]
    page = (runs["output"] / "r2" / "report.html").read_text()
    assert 'id="changes"' in page and names["deleted"] in page


def test_the_recheck_sample_finds_damage_the_ledger_cannot_see(runs):
    summary, paths = runs["r3"]
    names = runs["names"]
    findings = rows(runs["output"] / "r3", "findings")
    (disagreement,) = [row for row in findings if row["kind"] == "ledger_disagrees"]
    assert tuple(disagreement) == ("run_id", *FINDING_FIELDS)
    damaged = names["damaged"]
    assert disagreement["object"] == damaged and disagreement["severity"] == "error"
    r2_row = {row["object"]: row for row in rows(runs["output"] / "r2", "verified")}[damaged]
    # The ledger's side: what r2 carried over from r1; the read's side: the bytes as they are now.
    assert disagreement["ledger_run_id"] == "r2"
    assert disagreement["ledger_sha256"] == r2_row["sha256"] and disagreement["ledger_crc32c"] == r2_row["crc32c"]
    assert disagreement["expected"] == damaged[len(PREFIX) :]
    assert disagreement["actual"] != disagreement["expected"] and disagreement["actual"].startswith("sha256:")
    assert disagreement["crc32c_match"] is False, "the flipped byte no longer matches the stored crc32c"
    assert "ledger run r2 verified it" in disagreement["detail"]
    # Every object the ledger vouched for was read again (the damaged one twice, to confirm it).
    assert got(paths, damaged) == 2 and len(paths) == 6
    verified = rows(runs["output"] / "r3", "verified")
    assert {row["verified_by"] for row in verified} == {"read"}
    assert {row["ledger_run_id"] for row in verified} == {"r2"}
    assert summary["reverified_from_ledger"] == 4 and summary["verified_from_ledger"] == 0
    assert summary["findings_by_kind"]["ledger_disagrees"] == 1
    assert summary["unaccounted_objects"] == 0 and summary["exit_status"] == 1
    assert summary["changes"]["findings"]["new"] == 1


def test_verifications_older_than_reverify_after_are_read_again(runs):
    summary, paths = runs["r4"]
    assert summary["ledger"]["run_id"] == "r2" and summary["ledger"]["chosen_by"] == "explicit"
    assert summary["verified_from_ledger"] == 0
    assert len(paths) == 5 + 1  # every blob, and the damaged one a second time to confirm it
    kinds = [row["kind"] for row in rows(runs["output"] / "r4", "findings")]
    assert sorted(kinds) == ["digest_mismatch", "malformed_name"]


def test_bytes_read_drop_with_the_ledger(runs):
    assert runs["r2"][0]["bytes_verified"] - runs["r2"][0]["bytes_from_ledger"] < runs["r1"][0]["bytes_verified"]


def test_every_row_file_of_the_run_is_listed_once(runs):
    run_dir = runs["output"] / "r3"
    summary = runs["r3"][0]
    assert sorted(summary["files"]) == sorted(p.name for p in run_dir.glob("*.jsonl"))
    assert os.path.exists(run_dir / "summary.json")


def test_a_ledger_on_gcs_is_found_and_read_as_dataflow_would(storage_client, bucket, emulator, monkeypatch):
    """Report and ledger under gs:// on the emulator: auto finds the run there, and the rows are read from it."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator.endpoint)
    for seed in range(3):
        name, content = blob(100 + seed)
        bucket.blob(name).upload_from_string(content)
    reports = storage_client.lookup_bucket("incremental-reports") or storage_client.create_bucket("incremental-reports")
    output = f"gs://{reports.name}/scrub"

    def run(run_id, **scan_and_report):
        config = config_for(emulator.endpoint, output, run_id, **scan_and_report)
        config = replace(config, source=replace(config.source, buckets=(bucket.name,)))
        return run_scan(config, IN_PROCESS)

    first = run("g1")
    second = run("g2", incremental=True, reverify_sample=0)
    assert first["verified_from_ledger"] == 0
    assert second["ledger"]["location"] == f"{output}/g1" and second["ledger"]["chosen_by"] == "auto"
    assert second["verified_from_ledger"] == 3 and second["objects_verified"] == 3
    assert second["changes"]["objects"] == {"new": 0, "changed": 0, "vanished": 0}
    assert reports.get_blob("scrub/g2/changes-00000-of-00001.jsonl") is not None


def test_a_ledger_row_that_contradicts_the_name_is_read_and_refuted(runs):
    """Whatever the sample, a ledger row whose sha256 is not the name's digest is checked, never carried over."""
    summary, paths = runs["r5"]
    kept = runs["names"]["kept"]
    assert got(paths, kept) == 1 and len(paths) == 1, "only the contradicted object is read"
    (row,) = [r for r in rows(runs["output"] / "r5", "findings") if r["kind"] == "ledger_disagrees"]
    assert row["object"] == kept and row["ledger_sha256"] == "0" * 64
    assert row["expected"] == "sha256:" + "0" * 64 and row["actual"] == kept[len(PREFIX) :]
    assert "the bytes hash to their name, but not to what the ledger recorded" in row["detail"]
    assert summary["verified_from_ledger"] == 4 and summary["exit_status"] == 1
