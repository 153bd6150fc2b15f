"""Progress: counted per worker (pipeline/transforms/progress.py), summed into one console line (jobs/logs.py).

Every test runs on a fake clock; none waits.
"""

from __future__ import annotations

import io
import logging
import os

import pytest

from jobs import logs
from pipeline.transforms.progress import PROGRESS_ENV, Progress


class Clock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


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
    assert message == f"progress (pid {os.getpid()}): 1 objects, 50.0 MB hashed (5.0 MB/s, 0 objects/s)"
    assert caplog.records[0].levelno == logging.INFO


def test_remote_workers_log_progress_at_debug_only(caplog):
    """On Dataflow the launcher's environment never reaches the workers: Beam counters are the progress."""
    clock = Clock()
    progress = Progress(clock=clock, environ={})
    assert progress.level == logging.DEBUG
    with caplog.at_level(logging.DEBUG, logger="pipeline.transforms.progress"):
        clock.now = 200.0
        progress.object_done()
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert Progress(environ={PROGRESS_ENV: "soon"}).level == logging.DEBUG


def test_board_sums_the_latest_line_of_each_worker():
    board = logs.ProgressBoard()
    assert not board.update("scanning 1 bucket(s)")
    assert board.update("[worker] progress (pid 11): 3 objects, 10.0 MB hashed (1.0 MB/s, 1 objects/s)")
    assert board.update("[worker] progress (pid 12): 1 objects, 5.0 MB hashed (2.5 MB/s, 4 objects/s)")
    assert board.update("[worker] progress (pid 11): 7 objects, 30.0 MB hashed (3.0 MB/s, 2 objects/s)")
    assert board.line() == "progress: 8 objects, 35.0 MB hashed, 5.5 MB/s, 6 objects/s (2 worker process(es))"


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("pipeline.x", logging.INFO, __file__, 1, message, None, None)


def test_on_a_terminal_the_line_is_redrawn_in_place():
    out = io.StringIO()
    clock = Clock(0.0)
    handler = logs.ConsoleHandler(out, in_place=True, clock=clock)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.emit(_record("progress (pid 1): 1 objects, 1.0 MB hashed (1.0 MB/s, 1 objects/s)"))
    clock.now = 1.0
    handler.emit(_record("progress (pid 1): 2 objects, 3.0 MB hashed (1.0 MB/s, 1 objects/s)"))
    handler.emit(_record("a warning"))
    handler.finish_line()  # nothing drawn since the warning: no stray newline
    assert out.getvalue() == (
        "\r\x1b[Kprogress: 1 objects, 1.0 MB hashed, 1.0 MB/s, 1 objects/s (1 worker process(es))"
        "\r\x1b[Kprogress: 2 objects, 3.0 MB hashed, 1.0 MB/s, 1 objects/s (1 worker process(es))"
        "\na warning\n"
    )


def test_piped_the_line_is_printed_every_interval():
    out = io.StringIO()
    clock = Clock(0.0)
    handler = logs.ConsoleHandler(out, in_place=False, interval=3.0, clock=clock)
    for second in range(7):  # one report a second
        clock.now = float(second)
        handler.emit(_record(f"progress (pid 1): {second} objects, {second}.0 MB hashed (1.0 MB/s, 1 objects/s)"))
    lines = out.getvalue().splitlines()
    assert [line.split(" INFO ", 1)[1].split(",")[0] for line in lines] == [
        "progress: 0 objects",
        "progress: 3 objects",
        "progress: 6 objects",
    ]
    assert "\r" not in out.getvalue()


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
