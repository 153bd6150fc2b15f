"""Hostile ledgers, flaky re-checks and the CLI's reverify flags: what the ledger refuses (docs/incremental.md).

Run folders are real folders on disk (FIFOs, symlinks and bytes that are not UTF-8 included); the
scans run against the real gcp-storage-emulator behind the fault proxy (tests/support/proxy.py),
which fails the re-check sample's reads the way a flaky network does.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from jobs import cli
from jobs.emulator import Emulator
from jobs.launcher import UnusableInput, run_scan
from pipeline.adapters import gcs
from pipeline.adapters import ledger as adapter
from pipeline.adapters.ledger import LINE_MAX_BYTES, read_lines
from pipeline.config import load_config
from pipeline.core import incremental as rule
from pipeline.core import ledger as core
from pipeline.core import run_diff
from pipeline.core.blobs import ListedObject
from pipeline.transforms.ledger import parse_line
from tests.support.proxy import Fault, FaultyProxy
from tests.test_incremental import BUCKET, IN_PROCESS, PREFIX, blob, config_for, rows

UTC = timezone.utc  # noqa: UP017 (datetime.UTC is 3.11+)
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
NAME = "containers/images/sha256:" + "a" * 64


def summary(**changes) -> dict:
    document = {
        "run_id": "r1",
        "started_at": "2026-11-26T03:00:00Z",
        "unaccounted_objects": 0,
        "exit_status": 0,
        "config": {"source": {"buckets": ["b-one"], "prefix": "containers/images/"}, "scan": {"mode": "names"}},
        "files": ["verified-00000-of-00001.jsonl"],
    }
    return {**document, **changes}


def write_run(root: Path, run_id: str = "r1", **changes) -> Path:
    run_dir = root / run_id
    run_dir.mkdir(parents=True)
    row = {"bucket": "b-one", "object": NAME, "generation": 1, "size": 3, "crc32c": "x", "sha256": "a" * 64}
    (run_dir / "verified-00000-of-00001.jsonl").write_text(json.dumps(row) + "\n")
    (run_dir / "summary.json").write_text(json.dumps(summary(run_id=run_id, **changes)))
    return run_dir


def refusal(run_dir: Path, tmp_path: Path) -> str:
    with pytest.raises(adapter.LedgerUnusable) as caught:
        adapter.resolve(str(run_dir), str(tmp_path), "now", str(tmp_path / "now"))
    return str(caught.value)


# --- run folders that are not what their run wrote -------------------------------------------------


def test_a_well_formed_run_folder_is_taken_with_its_checked_row_files(tmp_path):
    run_dir = write_run(tmp_path)
    previous, _ = adapter.resolve(str(run_dir), str(tmp_path), "now", str(tmp_path / "now"))
    assert previous.run_id == "r1"
    assert previous.files == (str(run_dir / "verified-00000-of-00001.jsonl"),)


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda d: (d / "summary.json").write_text("{not json"), "summary.json is not valid JSON"),
        (lambda d: (d / "summary.json").write_bytes(b'{"run_id": "\xff"}'), "summary.json is not valid JSON"),
        (
            lambda d: (d / "summary.json").write_text('{"unaccounted_objects": ' + "9" * 5000 + "}"),
            "summary.json is not valid JSON",
        ),
        (lambda d: (d / "summary.json").write_text("[" * 100_000 + "]" * 100_000), "summary.json is not valid JSON"),
        (lambda d: _fifo(d / "summary.json"), "summary.json is not a regular file"),
        (lambda d: _fifo(d / "verified-00000-of-00001.jsonl"), "verified-00000-of-00001.jsonl is not a regular file"),
        (lambda d: _link_out(d, "verified-00000-of-00001.jsonl"), "is a link out of the run folder"),
        (lambda d: _link_out(d, "summary.json"), "summary.json is a link out of the run folder"),
        (
            lambda d: (d / "verified-00000-of-00001.jsonl").unlink(),
            "verified-00000-of-00001.jsonl, listed in its summary.json, is missing",
        ),
        (
            lambda d: (d / "verified-99999-of-99999.jsonl").write_text(""),
            "verified-99999-of-99999.jsonl is not among the files its summary.json lists",
        ),
        (lambda d: _cut_short(d / "verified-00000-of-00001.jsonl"), "ends in the middle of a row: it was cut short"),
    ],
    ids=[
        "invalid-json",
        "not-utf8",
        "huge-integer",
        "deep-nesting",
        "fifo-summary",
        "fifo-rows",
        "link-out-rows",
        "link-out-summary",
        "missing-row-file",
        "unlisted-row-file",
        "cut-short",
    ],
)
def test_a_run_folder_whose_files_are_not_what_the_run_wrote_is_refused(tmp_path, spoil, reason):
    run_dir = write_run(tmp_path)
    spoil(run_dir)
    message = refusal(run_dir, tmp_path)
    assert message.startswith(f"report.ledger {run_dir}: cannot be trusted as a ledger: ")
    assert reason in message


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _link_out(run_dir: Path, name: str) -> None:
    outside = run_dir.parent / f"outside-{name}"
    shutil.move(run_dir / name, outside)
    (run_dir / name).symlink_to(outside)


def _cut_short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10])


def test_a_summary_over_16_mb_is_refused_unread_and_a_folder_name_with_glob_characters_is_no_problem(tmp_path):
    run_dir = write_run(tmp_path / "reports[1]")
    previous, _ = adapter.resolve(str(run_dir), str(tmp_path), "now", str(tmp_path / "now"))
    assert previous.run_id == "r1"
    (run_dir / "summary.json").write_bytes(b" " * (adapter.SUMMARY_MAX_BYTES + 1))
    assert "summary.json is over 16777216 bytes" in refusal(run_dir, tmp_path)


def test_a_link_inside_the_run_folder_is_read_like_the_file(tmp_path):
    run_dir = write_run(tmp_path)
    (run_dir / "verified-00000-of-00001.jsonl").rename(run_dir / "rows.txt")
    (run_dir / "verified-00000-of-00001.jsonl").symlink_to(run_dir / "rows.txt")
    previous, _ = adapter.resolve(str(run_dir), str(tmp_path), "now", str(tmp_path / "now"))
    assert previous.run_id == "r1"


def test_auto_passes_over_a_hostile_folder_and_names_it(tmp_path):
    write_run(tmp_path, "20261101T030000Z", started_at="2026-11-01T03:00:00Z", files=["verified-00000-of-00001.jsonl"])
    newer = write_run(tmp_path, "20261102T030000Z", started_at="2026-11-02T03:00:00Z")
    _fifo(newer / "verified-00000-of-00001.jsonl")
    previous, lines = adapter.resolve("auto", str(tmp_path), "now", str(tmp_path / "now"))
    assert previous.run_id == "20261101T030000Z"
    assert lines[1] == "ledger auto: skipped run 20261102T030000Z: verified-00000-of-00001.jsonl is not a regular file"


def test_a_ledger_path_that_is_no_folder_or_the_runs_own_folder_through_a_link_is_refused(tmp_path):
    file = tmp_path / "a-file"
    file.write_text("x")
    with pytest.raises(adapter.LedgerUnusable, match="not a folder"):
        adapter.resolve(str(file), str(tmp_path), "now", str(tmp_path / "now"))
    with pytest.raises(adapter.LedgerUnusable, match="no such folder"):
        adapter.resolve(str(tmp_path / "missing"), str(tmp_path), "now", str(tmp_path / "now"))
    own = write_run(tmp_path, "now")
    (tmp_path / "alias").symlink_to(own)
    with pytest.raises(adapter.LedgerUnusable, match="this is the run's own folder"):
        adapter.resolve(str(tmp_path / "alias"), str(tmp_path), "now", str(own))


# --- clocks -------------------------------------------------------------------------------------------


def test_a_run_that_started_in_the_future_is_not_trusted():
    assert core.trust_problem(summary(started_at="2026-11-27T12:59:00Z"), NOW) is None
    problem = core.trust_problem(summary(started_at="2030-01-01T00:00:00Z"), NOW)
    assert problem == (
        "it says it started at 2030-01-01T00:00:00Z, after now (2026-11-27T12:00:00Z): "
        "a clock that cannot be trusted to date its verifications"
    )


def test_a_future_run_cannot_win_auto_for_ever():
    runs = [
        core.Candidate("/r/skewed", "skewed", summary(run_id="skewed", started_at="2030-01-01T00:00:00Z")),
        core.Candidate("/r/r1", "r1", summary(started_at="2026-11-26T03:00:00Z")),
    ]
    choice = core.choose_auto(runs, "now", NOW)
    assert choice.taken.run_id == "r1"
    assert [run for run, _ in choice.skipped] == ["skewed"]


def test_a_row_verified_after_its_run_started_proves_nothing_about_when():
    row = {"bucket": "b", "object": NAME, "verified_at": "2026-11-27T00:00:00Z"}
    assert core.ledger_row(row, "r1", "2026-11-26T03:00:00Z")["verified_at"] is None
    older = {**row, "verified_at": "2026-11-20T00:00:00Z"}  # carried over by r1: kept
    assert core.ledger_row(older, "r1", "2026-11-26T03:00:00Z")["verified_at"] == "2026-11-20T00:00:00Z"


def test_a_chain_of_incremental_runs_cannot_extend_trust():
    """r3's ledger is r2, which carried the object over from r1 (read 40 days ago): r2's recent start
    does not make the verification recent; the object is due and read."""
    carried_by_r2 = ledger_row(verified_at="2026-10-18T03:00:00Z", run_id="r1")
    row = core.ledger_row(carried_by_r2, "r2", "2026-11-26T03:00:00Z")
    assert row["verified_at"] == "2026-10-18T03:00:00Z" and row["run_id"] == "r1"
    decision = rule.decide(
        listed(), [row], prefix=PREFIX, run_id="r3", run_started_at=NOW, reverify_after_s=30 * 86400, sample_rate=0
    )
    assert decision == rule.Decision(rule.READ, "last verified 2026-10-18T03:00:00Z: due again (scan.reverify_after)")
    carried = rule.carried_row(listed(), {**row, "verified_at": "2026-11-20T03:00:00Z"})
    assert carried["verified_at"] == "2026-11-20T03:00:00Z" and carried["ledger_run_id"] == "r1"


# --- rows ---------------------------------------------------------------------------------------------


def test_unreadable_lines_are_dropped_not_fatal():
    assert list(parse_line(b'{"bucket": "b"}')) == [{"bucket": "b"}]
    assert list(parse_line(b'{"bucket": "\xff\xfe"}')) == []
    assert list(parse_line(b'{"n": ' + b"9" * 5000 + b"}")) == []
    assert list(parse_line(b"[" * 100_000)) == []
    assert list(parse_line(b'{"x": "' + b"a" * LINE_MAX_BYTES + b'"}')) == []
    assert list(parse_line(b"[1, 2]")) == []


def test_a_line_far_too_long_is_skipped_without_holding_it(tmp_path):
    path = tmp_path / "verified-00000-of-00001.jsonl"
    path.write_bytes(b'{"a": 1}\n' + b"x" * (3 * LINE_MAX_BYTES) + b'\n{"b": 2}\r\n' + b'{"c": 3}')
    assert list(read_lines(str(path))) == [b'{"a": 1}', b'{"b": 2}', b'{"c": 3}']


def listed(generation=1) -> ListedObject:
    return ListedObject(bucket="b", name=NAME, generation=generation, size=3, crc32c="x")


def ledger_row(sha256="a" * 64, **changes) -> dict:
    row = {"bucket": "b", "object": NAME, "generation": 1, "size": 3, "crc32c": "x", "sha256": sha256}
    return {**row, "verified_at": "2026-11-26T03:00:00Z", "run_id": "r1", **changes}


@pytest.mark.parametrize("forged_first", [True, False])
def test_rows_that_disagree_about_one_generation_are_never_carried_over(forged_first):
    rows_ = [ledger_row("0" * 64), ledger_row()] if forged_first else [ledger_row(), ledger_row("0" * 64)]
    decision = rule.decide(
        listed(), rows_, prefix=PREFIX, run_id="r2", run_started_at=NOW, reverify_after_s=30 * 86400, sample_rate=0
    )
    assert decision == rule.Decision(rule.READ, "the ledger holds rows for this generation that disagree")


def test_identical_duplicate_rows_still_carry_over():
    decision = rule.decide(
        listed(),
        [ledger_row(), ledger_row()],
        prefix=PREFIX,
        run_id="r2",
        run_started_at=NOW,
        reverify_after_s=30 * 86400,
        sample_rate=0,
    )
    assert decision.action == rule.CARRY


@pytest.mark.parametrize("junk_first", [True, False])
def test_a_junk_duplicate_row_does_not_make_an_object_look_changed(junk_first):
    now = {"bucket": "b", "object": NAME, "generation": 7}
    good, junk = {**now, "run_id": "r1"}, {**now, "generation": None, "run_id": "r1"}
    previous = [junk, good] if junk_first else [good, junk]
    assert run_diff.object_changes([now], previous) == []
    changed = run_diff.object_changes([{**now, "generation": 8}], previous)
    assert [(c["change"], c["previous_generation"]) for c in changed] == [("changed_object", 7)]


# --- against the emulator -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    names = [blob(200 + seed) for seed in range(3)]
    output = tmp_path_factory.mktemp("hostile-reports")
    with Emulator(tmp_path_factory.mktemp("hostile-gcs")) as emulator:
        bucket = gcs.make_client(emulator.endpoint).create_bucket(BUCKET)
        for name, content in names:
            bucket.blob(name).upload_from_string(content)
        with FaultyProxy(emulator.port) as proxy:
            run_scan(config_for(proxy.endpoint, output, "r1"), IN_PROCESS)
        yield {"emulator": emulator, "output": output, "names": [name for name, _ in names]}


def hostile_copy(first_run, label: str) -> Path:
    folder = first_run["output"].parent / f"{first_run['output'].name}-{label}"
    shutil.copytree(first_run["output"] / "r1", folder)
    return folder


def test_hostile_rows_are_read_around_and_a_conflict_is_read(first_run):
    """Lines that are not UTF-8, not JSON, far too long, or about another bucket, and a second row for one
    object that claims other bytes: the run completes, the conflicted object is read, the rest carried over."""
    folder = hostile_copy(first_run, "rows")
    (path,) = folder.glob("verified-*.jsonl")
    lines = path.read_bytes().splitlines(keepends=True)
    first = json.loads(lines[0])
    forged = {**first, "sha256": "0" * 64}
    other_bucket = {**first, "bucket": "artifacts.other.appspot.com"}
    hostile = [
        json.dumps(forged).encode() + b"\n",
        b'{"bucket": "\xff\xfe", "object": "x"}\n',
        b'{"truncated": \n',
        b'{"x": "' + b"a" * (LINE_MAX_BYTES + 1) + b'"}\n',
        json.dumps(other_bucket).encode() + b"\n",
        json.dumps({**first, "object": 5, "generation": "many"}).encode() + b"\n",
    ]
    path.write_bytes(b"".join(hostile[:3] + lines + hostile[3:]))
    # A forger who also fixes the count: 3 rows, the forged one, another bucket's, the junk one.
    document = json.loads((folder / "summary.json").read_text())
    (folder / "summary.json").write_text(json.dumps({**document, "objects_verified": 6}))
    emulator, output = first_run["emulator"], first_run["output"]
    with FaultyProxy(emulator.port) as proxy:
        config = config_for(proxy.endpoint, output, "rows", incremental=True, reverify_sample=0, ledger=str(folder))
        summary = run_scan(config, IN_PROCESS)
        reads = [record.path for record in proxy.stats.media_reads()]
    assert summary["exit_status"] == 0 and summary["unaccounted_objects"] == 0
    assert summary["verified_from_ledger"] == 2 and summary["objects_verified"] == 3
    assert len(reads) == 1 and first["sha256"] in reads[0]
    assert summary["changes"]["objects"] == {"new": 0, "changed": 0, "vanished": 0}
    (read_row,) = [r for r in rows(output / "rows", "verified") if r["object"] == first["object"]]
    assert read_row["verified_by"] == "read" and read_row["sha256"] == first["sha256"]


def test_a_ledger_in_a_folder_named_with_glob_characters_is_read_as_it_is(first_run):
    folder = first_run["output"].parent / "glob[1]" / "r1"
    shutil.copytree(first_run["output"] / "r1", folder)
    emulator, output = first_run["emulator"], first_run["output"]
    config = config_for(emulator.endpoint, output, "glob", incremental=True, reverify_sample=0, ledger=str(folder))
    summary = run_scan(config, IN_PROCESS)
    assert summary["verified_from_ledger"] == 3 and summary["changes"]["withheld"] is None


@pytest.mark.parametrize("damage", ["unreadable", "deleted", "added"])
def test_a_ledger_whose_rows_are_not_what_its_summary_counts_is_not_used(first_run, damage, capsys):
    """A row lost to damage would make its object look new and a forged row could be carried over:
    such a ledger carries nothing over and reports no change, and says why."""
    folder = hostile_copy(first_run, f"damaged-{damage}")
    (path,) = folder.glob("verified-*.jsonl")
    lines = path.read_bytes().splitlines(keepends=True)
    if damage == "unreadable":
        lines[1] = lines[1][:20] + b"\xff" + lines[1][21:]
    elif damage == "deleted":
        del lines[1]
    else:
        lines.append(lines[0].replace(b'"sha256":"', b'"sha256":"0'))
    path.write_bytes(b"".join(lines))
    emulator, output = first_run["emulator"], first_run["output"]
    run_id = f"damaged-{damage}"
    with FaultyProxy(emulator.port) as proxy:
        config = config_for(proxy.endpoint, output, run_id, incremental=True, reverify_sample=0, ledger=str(folder))
        summary = run_scan(config, IN_PROCESS)
        reads = proxy.stats.media_reads()
    read_rows = 4 if damage == "added" else 2
    assert summary["exit_status"] == 0 and summary["verified_from_ledger"] == 0 and len(reads) == 3
    assert summary["changes"]["withheld"] == (
        f"its row files hold {read_rows} readable verified row(s) and 0 finding row(s), "
        "but its summary.json counts 3 and 0: the rows are damaged or were edited"
    )
    assert summary["changes"]["objects"] == {"new": 0, "changed": 0, "vanished": 0}
    assert rows(output / run_id, "changes") == []
    withheld = summary["changes"]["withheld"]
    assert run_diff.change_lines(summary["changes"]) == [f"since run r1: not compared: {withheld}"]


@pytest.mark.parametrize(
    ("fault", "kinds", "agreed"),
    [
        (Fault(status=503, times=2), {}, 1),  # transient: retried, and the retry agrees with the ledger
        (Fault(reset_after=100, times=20), {"read_error": 1}, 0),  # every attempt cut: a read_error
        (Fault(cut_after=1000, times=20), {}, 1),  # every body cut short: resumed from where it stopped
        (Fault(status=500, times=50), {"read_error": 1}, 0),  # fails every attempt: a read_error
    ],
    ids=["retried", "reset", "short-bodies-resumed", "always-500"],
)
def test_a_flaky_recheck_read_is_never_called_a_ledger_disagreement(first_run, fault, kinds, agreed, request):
    emulator, output = first_run["emulator"], first_run["output"]
    target = first_run["names"][1]
    fault.path_contains = target[-64:]
    with FaultyProxy(emulator.port, faults=[fault]) as proxy:
        run_id = "flaky-" + request.node.callspec.id
        config = config_for(
            proxy.endpoint, output, run_id, incremental=True, reverify_sample=1, ledger=str(output / "r1")
        )
        summary = run_scan(config, IN_PROCESS)
    assert {kind: n for kind, n in summary["findings_by_kind"].items() if n} == kinds
    assert summary["reverified_from_ledger"] == 2 + agreed
    findings = rows(output / run_id, "findings")
    assert [(f["kind"], f["object"]) for f in findings] == [(kind, target) for kind in kinds]


def test_a_future_dated_ledger_is_refused_with_exit_status_2(first_run, capsys):
    folder = hostile_copy(first_run, "future")
    document = json.loads((folder / "summary.json").read_text())
    (folder / "summary.json").write_text(json.dumps({**document, "started_at": "2099-01-01T00:00:00Z"}))
    emulator, output = first_run["emulator"], first_run["output"]
    config = config_for(emulator.endpoint, output, "future", incremental=True, ledger=str(folder))
    with pytest.raises(UnusableInput, match="it says it started at 2099-01-01T00:00:00Z, after now"):
        run_scan(config, IN_PROCESS)


# --- the CLI's reverify flags ------------------------------------------------------------------------------


def test_the_reverify_flags_set_the_config_and_say_their_default(capsys):
    args, _ = cli.parse_arguments(["--bucket", "b-one", "--reverify-after", "7d", "--reverify-sample", "0.05"])
    config = load_config(None, cli.overrides_from(args))
    assert config.scan.reverify_after == 7 * 86400 and config.scan.reverify_sample == 0.05
    args, _ = cli.parse_arguments(["--bucket", "b-one", "--reverify-sample", "2.5%"])
    assert load_config(None, cli.overrides_from(args)).scan.reverify_sample == pytest.approx(0.025)
    assert cli.main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--reverify-after DURATION with --incremental, read an object again once" in text
    assert "(default: 30d; config key scan.reverify_after)" in text
    assert "(default: 1%; config key scan.reverify_sample)" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--reverify-sample", "abc"], "command line --reverify-sample: expected a fraction from 0 to 1"),
        (["--reverify-sample", "nan"], "command line --reverify-sample: expected a fraction from 0 to 1"),
        (["--reverify-sample", "1.5"], "got 1.5"),
        (["--reverify-sample=-0.1"], "got -0.1"),
        (["--reverify-sample", "150%"], "got '150%'"),
        (["--reverify-after", "0s"], "command line --reverify-after: expected a duration from 1s to 3650d"),
        (["--reverify-after=-1d"], "command line --reverify-after: expected a duration with its unit"),
        (["--reverify-after", "30"], "expected a duration with its unit (s, m, h, d or w)"),
        (["--reverify-after", "9999d"], "expected a duration from 1s to 3650d, got '9999d'"),
    ],
)
def test_bad_reverify_flags_are_refused_with_exit_status_2(argv, message, capsys):
    assert cli.main(["--bucket", "b-one", "--incremental", *argv]) == 2
    assert message in capsys.readouterr().err
