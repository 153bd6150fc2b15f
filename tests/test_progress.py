"""Progress: counted per worker (pipeline/transforms/progress.py), summed into one console line (jobs/logs.py).

The unit tests run on a fake clock and never wait; the last two run the command line
against the real emulator, on a pseudo-terminal and piped.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pty
import re
import subprocess

import pytest

from jobs import logs
from pipeline.core.shards import plan_ranges
from pipeline.transforms import progress
from pipeline.transforms.progress import LINE as PROGRESS_LINE
from pipeline.transforms.progress import PROGRESS_ENV, Progress
from tests.support.proxy import FaultyProxy
from tests.support.terminal import read_until_closed
from tests.test_cli import CLI, cli_env


class Clock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_objects_carried_over_count_as_done_but_not_in_the_rate(caplog):
    clock = Clock()
    progress = Progress(clock=clock, environ={PROGRESS_ENV: "5"})
    with caplog.at_level(logging.DEBUG, logger="pipeline.transforms.progress"):
        progress.carried_over(3_000_000)
        progress.carried_over(1_000_000)
        clock.now = 110.0
        progress.flush()
    (message,) = caplog.messages
    assert message.endswith("): 0 objects, 0.0 MB hashed (0.0 MB/s, 0.0 objects/s); 2 objects, 4.0 MB carried over")
    assert PROGRESS_LINE.search(message)["carried"] == "2"


def test_worker_progress_reports_objects_bytes_and_rate_every_interval(caplog):
    clock = Clock()
    progress = Progress(clock=clock, environ={PROGRESS_ENV: "5"})
    assert progress.level == logging.INFO
    with caplog.at_level(logging.DEBUG, logger="pipeline.transforms.progress"):
        progress.add_bytes(20_000_000)
        clock.now = 104.9
        progress.object_done()
        assert caplog.messages == []  # not due yet
        clock.now = 110.0
        progress.add_bytes(30_000_000)
        clock.now = 112.0
        progress.object_done()  # 2 s after the last line: not due
    (message,) = caplog.messages
    assert re.fullmatch(
        rf"progress \(pid {os.getpid()} #\d+\): 1 objects, 50\.0 MB hashed \(5\.0 MB/s, 0\.1 objects/s\)", message
    )
    assert caplog.records[0].levelno == logging.INFO


def test_the_rate_runs_from_the_first_byte_not_from_setup(caplog):
    """A worker set up long before the listing ends must not report its wait as a slow rate."""
    clock = Clock(100.0)
    progress = Progress(clock=clock, environ={PROGRESS_ENV: "5"})
    with caplog.at_level(logging.DEBUG, logger="pipeline.transforms.progress"):
        clock.now = 160.0
        progress.add_bytes(10_000_000)  # the first byte, a minute after setup: no line yet
        clock.now = 165.0
        progress.object_done()
    (message,) = caplog.messages
    assert message.endswith("): 1 objects, 10.0 MB hashed (2.0 MB/s, 0.2 objects/s)")


def test_a_bundle_ends_with_the_latest_counts_once(caplog):
    """However short the scan, the console's last line holds every object: each bundle ends with a line."""
    clock = Clock()
    progress = Progress(clock=clock, environ={PROGRESS_ENV: "5"})
    with caplog.at_level(logging.DEBUG, logger="pipeline.transforms.progress"):
        progress.flush()  # nothing counted yet: nothing to say
        progress.add_bytes(1_000_000)
        progress.object_done()
        clock.now = 101.0
        progress.flush()
        progress.flush()  # unchanged since: no second line
    (message,) = caplog.messages
    assert message.endswith("): 1 objects, 1.0 MB hashed (1.0 MB/s, 1.0 objects/s)")


def test_each_hashing_instance_in_a_process_reports_under_its_own_number():
    first, second = Progress(environ={}), Progress(environ={})
    ids = [progress.LINE.search(p.line())["instance"] for p in (first, second)]
    assert ids[0] != ids[1]


def test_remote_workers_log_progress_at_debug_only(caplog):
    """On Dataflow the launcher's environment never reaches the workers: Beam counters are the progress."""
    clock = Clock()
    progress = Progress(clock=clock, environ={})
    assert progress.level == logging.DEBUG
    with caplog.at_level(logging.DEBUG, logger="pipeline.transforms.progress"):
        clock.now = 200.0
        progress.object_done()
        clock.now = 204.0  # the default interval, 3 s, later
        progress.object_done()
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert Progress(environ={PROGRESS_ENV: "soon"}).level == logging.DEBUG


def test_board_sums_the_latest_line_of_each_worker():
    board = logs.ProgressBoard()
    assert not board.update("scanning 1 bucket(s)")
    assert board.update("[worker] progress (pid 11 #1): 3 objects, 10.0 MB hashed (1.0 MB/s, 1.0 objects/s)")
    assert board.update("[worker] progress (pid 12 #1): 1 objects, 5.0 MB hashed (2.5 MB/s, 4.0 objects/s)")
    assert board.update("[worker] progress (pid 11 #1): 7 objects, 30.0 MB hashed (3.0 MB/s, 2.0 objects/s)")
    # Two hashing instances in one process: both count, in one process.
    assert board.update("[worker] progress (pid 11 #2): 2 objects, 1.0 MB hashed (0.5 MB/s, 0.5 objects/s)")
    assert board.line() == (
        "progress: 10 objects, 36.0 MB read, 6.0 MB/s, 6.5 objects/s, ETA: listing… (2 worker process(es))"
    )


def listed(bucket: str, key_range: str, objects: int, size: int, listings: int = 2) -> str:
    return "[worker] " + progress.listed_line(bucket, key_range, objects, size, listings)


def test_board_knows_the_totals_once_every_listing_reported_and_then_gives_an_eta():
    board = logs.ProgressBoard()
    assert board.update(listed("b", "containers/images/sha256:0", 30, 20_000_000))
    assert board.line() == "progress: listing: 1 of 2 listings done, 30 objects, 20.0 MB so far"
    assert board.update("progress (pid 11 #1): 10 objects, 5.0 MB hashed (1.0 MB/s, 2.0 objects/s)")
    assert not board.listing_complete
    assert board.line() == (
        "progress: 10 objects, 5.0 MB read, 1.0 MB/s, 2.0 objects/s, ETA: listing… (1 worker process(es))"
    )
    # A listing retried after a failed bundle reports again: counted once.
    assert board.update(listed("b", "[containers/images/sha256:8, …)", 70, 80_000_000))
    assert board.update(listed("b", "[containers/images/sha256:8, …)", 70, 80_000_000))
    assert board.listing_complete
    # 90 objects left at 2/s = 45 s; 95 MB left at 1 MB/s = 95 s: bytes decide.
    assert board.line() == (
        "progress: 10 of 100 objects, 5.0 MB read of 100.0 MB listed, "
        "1.0 MB/s, 2.0 objects/s, ETA 1m35s (1 worker process(es))"
    )
    assert board.update("progress (pid 11 #1): 100 objects, 100.0 MB hashed (1.0 MB/s, 2.0 objects/s)")
    assert board.line() == (
        "progress: 100 of 100 objects, 100.0 MB read of 100.0 MB listed, "
        "1.0 MB/s, 2.0 objects/s, ETA 0s (1 worker process(es))"
    )


def test_an_incremental_scan_is_done_when_read_and_carried_objects_make_the_listed_total():
    board = logs.ProgressBoard()
    board.update(listed("b", "containers/images/sha256:0", 60, 60_000_000, listings=1))
    carried = "; 50 objects, 50.0 MB carried over"
    board.update("progress (pid 11 #1): 0 objects, 0.0 MB hashed (0.0 MB/s, 0.0 objects/s)" + carried)
    board.update("progress (pid 11 #2): 4 objects, 4.0 MB hashed (1.0 MB/s, 1.0 objects/s)")
    # 6 objects (6 MB) left to read at 1 object and 1 MB a second.
    assert board.line() == (
        "progress: 54 of 60 objects (50 carried over), 4.0 MB read of 10.0 MB to read, "
        "1.0 MB/s, 1.0 objects/s, ETA 6s (1 worker process(es))"
    )
    board.update("progress (pid 11 #2): 10 objects, 10.0 MB hashed (1.0 MB/s, 1.0 objects/s)")
    assert "60 of 60 objects (50 carried over)" in board.line() and "ETA 0s" in board.line()


def test_listing_lines_follow_the_progress_level(caplog, monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    with caplog.at_level(logging.DEBUG, logger="pipeline.transforms.progress"):
        progress.log_listed("b", "containers/images/", 3, 30, 16)  # Dataflow: at DEBUG, counters only
        monkeypatch.setenv(PROGRESS_ENV, "1.0")
        progress.log_listed("b", "[containers/images/sha256:8, …)", 4, 40, 16)  # a local console shows it
        progress.log_listed("b", "containers/images/", 3, 30, None)  # no total known: never on the console
    assert [r.levelno for r in caplog.records] == [logging.DEBUG, logging.INFO, logging.DEBUG]
    assert progress.LISTED_LINE.fullmatch(caplog.records[1].getMessage()).groupdict() == {
        "bucket": "b",
        "range": "[containers/images/sha256:8, …)",
        "objects": "4",
        "bytes": "40",
        "listings": "16",
    }


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("pipeline.x", logging.INFO, __file__, 1, message, None, None)


def test_on_a_terminal_the_line_is_redrawn_in_place():
    out = io.StringIO()
    clock = Clock(0.0)
    handler = logs.ConsoleHandler(out, in_place=True, clock=clock)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.emit(_record(progress.listed_line("b", "containers/images/", 4, 8_000_000, 1)))
    handler.emit(_record("progress (pid 1 #1): 1 objects, 1.0 MB hashed (1.0 MB/s, 1.0 objects/s)"))
    clock.now = 1.0
    handler.emit(_record("progress (pid 1 #1): 2 objects, 3.0 MB hashed (1.0 MB/s, 1.0 objects/s)"))
    handler.emit(_record("a warning"))
    handler.final_line()  # nothing drawn since the warning: no stray newline
    assert out.getvalue() == (
        "\r\x1b[Kprogress: listing: 1 of 1 listings done, 4 objects, 8.0 MB so far"
        "\r\x1b[Kprogress: 1 of 4 objects, 1.0 MB read of 8.0 MB listed, "
        "1.0 MB/s, 1.0 objects/s, ETA 7s (1 worker process(es))"
        "\r\x1b[Kprogress: 2 of 4 objects, 3.0 MB read of 8.0 MB listed, "
        "1.0 MB/s, 1.0 objects/s, ETA 5s (1 worker process(es))"
        "\na warning\n"
    )


def test_piped_the_line_is_printed_every_interval():
    out = io.StringIO()
    clock = Clock(0.0)
    handler = logs.ConsoleHandler(out, in_place=False, interval=3.0, clock=clock)
    for second in range(7):  # one report a second
        clock.now = float(second)
        handler.emit(_record(f"progress (pid 1): {second} objects, {second}.0 MB hashed (1.0 MB/s, 1 objects/s)"))
    handler.final_line()  # the last counts, held back by the interval
    handler.final_line()  # and only once
    lines = out.getvalue().splitlines()
    assert [line.split(" INFO ", 1)[1].split(",")[0] for line in lines] == [
        "progress: 0 objects",
        "progress: 3 objects",
        "progress: 6 objects",
    ]
    assert "\r" not in out.getvalue()


def test_piped_the_last_counts_are_printed_before_the_summary():
    out = io.StringIO()
    clock = Clock(0.0)
    handler = logs.ConsoleHandler(out, in_place=False, interval=3.0, clock=clock)
    handler.emit(_record("progress (pid 1 #1): 1 objects, 1.0 MB hashed (1.0 MB/s, 1.0 objects/s)"))
    clock.now = 1.0
    handler.emit(_record("progress (pid 1 #1): 2 objects, 2.0 MB hashed (1.0 MB/s, 1.0 objects/s)"))
    handler.final_line()
    handler.final_line()
    lines = out.getvalue().splitlines()
    shown = [line.split(" INFO ", 1)[1].split(",")[0] for line in lines]
    assert shown == ["progress: 1 objects", "progress: 2 objects"]


@pytest.mark.parametrize("quiet, tty, expected", [(False, True, "1.0"), (False, False, "3.0"), (True, True, None)])
def test_configure_tells_local_workers_how_often_to_report(monkeypatch, quiet, tty, expected):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    stream = io.StringIO()
    stream.isatty = lambda: tty
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        handler = logs.configure(quiet, stream=stream)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    assert os.environ.get(PROGRESS_ENV) == expected
    assert handler._in_place is tty


# --- the command line against the real emulator, on a pseudo-terminal and piped ---

OBJECTS, OBJECT_SIZE = 12, 10_000
FINAL = re.compile(
    rf"progress: {OBJECTS + 1} of {OBJECTS + 1} objects, 0\.1 MB read of 0\.1 MB listed, "
    r"[0-9.]+ MB/s, [0-9.]+ objects/s, "
    r"ETA 0s \(1 worker process\(es\)\)"
)
LISTINGS = len(plan_ranges("containers/images/", 16))  # the default --shard-count's ranges
# Locally the listing feeds the reads directly (pipeline.runner.spreads_listed_objects), so
# objects are read while listings are still running: then the line has no total and no ETA yet.
DRAWING = re.compile(
    rf"progress: (?:listing: \d+ of {LISTINGS} listings done, \d+ objects, [0-9.]+ MB so far"
    r"|\d+ objects, [0-9.]+ MB read, [0-9.]+ MB/s, [0-9.]+ objects/s, ETA: listing… \(1 worker process\(es\)\)"
    r"|\d+ of 13 objects, [0-9.]+ MB read of 0\.1 MB listed, [0-9.]+ MB/s, [0-9.]+ objects/s, "
    r"ETA \w+ \(1 worker process\(es\)\))"
)


@pytest.fixture
def progress_bucket(storage_client):
    """12 blobs and one object with a malformed name: listed, counted as done, never read."""
    name = "artifacts.progress-1234.appspot.com"
    bucket = storage_client.lookup_bucket(name) or storage_client.create_bucket(name)
    for i in range(OBJECTS):
        content = i.to_bytes(2, "big") * (OBJECT_SIZE // 2)
        bucket.blob("containers/images/sha256:" + hashlib.sha256(content).hexdigest()).upload_from_string(content)
    bucket.blob("containers/images/notes.txt").upload_from_string(b"hi")
    return bucket


def run_cli(bucket, proxy, tmp_path, run_id, stdout, stderr, *extra):
    """The scan, slowed by the proxy so that workers report while objects are left (one read at a time)."""
    return subprocess.Popen(
        [CLI, "--bucket", bucket.name, "--emulator-endpoint", proxy.endpoint, "--output", str(tmp_path)]
        + ["--run-id", run_id, "--read-concurrency", "1", "--mode", "names", *extra],
        cwd=tmp_path,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
    )


def test_on_a_terminal_one_line_shows_objects_bytes_rate_and_eta(emulator, progress_bucket, tmp_path):
    controller, terminal = pty.openpty()
    with FaultyProxy(emulator.port, latency=0.1) as proxy:
        proc = run_cli(progress_bucket, proxy, tmp_path, "tty", terminal, terminal)
        os.close(terminal)
        screen = read_until_closed(controller).decode()
        assert proc.wait(timeout=120) == 0  # the malformed name is a warning
    drawings = screen.split("\r\x1b[K")[1:]
    assert drawings, screen
    # Every drawing is the listing's count or the hashing line with its ETA; the last one ends its line.
    *before, last = drawings
    assert all(DRAWING.fullmatch(d) for d in before), before
    final, rest = last.split("\r\n", 1)
    assert FINAL.fullmatch(final), final
    assert "listed gs://" not in screen and "INFO progress" not in screen  # never a line per report
    assert "\r\x1b[K" not in rest and f"\r\nrun tty: {OBJECTS + 1} objects listed, {OBJECTS} verified" in rest


def test_piped_a_line_every_interval_and_the_last_counts_before_the_summary(emulator, progress_bucket, tmp_path):
    with FaultyProxy(emulator.port, latency=0.1) as proxy, open(tmp_path / "stderr", "w") as err:
        proc = run_cli(progress_bucket, proxy, tmp_path, "piped", subprocess.PIPE, err)
        stdout, _ = proc.communicate(timeout=120)
    log = (tmp_path / "stderr").read_text()
    assert "\r" not in log and "\x1b" not in log
    shown = [line.split(" INFO ", 1)[1] for line in log.splitlines() if " INFO progress: " in line]
    assert shown and all(DRAWING.fullmatch(line) for line in shown[:-1]), shown
    assert FINAL.fullmatch(shown[-1]), shown[-1]
    assert "listed gs://" not in log
    assert f"run piped: {OBJECTS + 1} objects listed, {OBJECTS} verified" in stdout.decode()


def test_an_incremental_rescan_ends_with_every_object_read_or_carried_over(emulator, progress_bucket, tmp_path):
    with FaultyProxy(emulator.port, latency=0.1) as proxy:
        for run_id in ("first", "second"):
            with open(tmp_path / f"{run_id}.err", "w") as err:
                proc = run_cli(progress_bucket, proxy, tmp_path, run_id, subprocess.PIPE, err, "--incremental")
                proc.communicate(timeout=120)
            assert proc.returncode == 0, (tmp_path / f"{run_id}.err").read_text()
    shown = [line for line in (tmp_path / "second.err").read_text().splitlines() if " INFO progress: " in line]
    # The malformed name is read (classified) each time; every blob the first run verified is carried over.
    assert re.search(rf"progress: {OBJECTS + 1} of {OBJECTS + 1} objects \({OBJECTS} carried over\), ", shown[-1])
    assert shown[-1].endswith("ETA 0s (1 worker process(es))")


def test_a_second_scan_in_the_same_process_counts_only_its_own_objects(
    emulator, progress_bucket, tmp_path, monkeypatch
):
    """Issue 18: the demo's incremental rescan runs in the demo's process, and its console summed the
    first run's workers with its own: "62 of 31 objects". Each scan starts the board afresh."""
    from jobs.launcher import run_scan
    from pipeline.config import parse_config

    stream = io.StringIO()
    monkeypatch.setattr(logs, "_handler", None)
    logs.configure(False, stream=stream)
    try:
        for run_id in ("first", "second"):
            config = parse_config(
                {
                    "source": {"buckets": [progress_bucket.name], "emulator_endpoint": emulator.endpoint},
                    "scan": {"mode": "names"},
                    "report": {"output": str(tmp_path), "run_id": run_id},
                },
                "test",
            )
            run_scan(config, ["--direct_running_mode=in_memory"])
            logs.finish()
            stream.write(f"--- end of {run_id}\n")
    finally:
        logging.getLogger().handlers[:] = []
        os.environ.pop(PROGRESS_ENV, None)
    second = stream.getvalue().split("--- end of first\n", 1)[1]
    shown = [line.split(" INFO ", 1)[1] for line in second.splitlines() if " INFO progress: " in line]
    assert shown and FINAL.fullmatch(shown[-1]), shown
