"""Console logging for local runs: our own lines, the workers' lines, and one progress line.

The FnApiRunner relays every worker log entry to the launcher's root logger as the
text of a ``LogEntry`` proto. This filter turns ours back into plain lines and
drops the worker chatter of Beam itself below ERROR.

Each worker process reports its own progress, and each listing what it found
(``pipeline/transforms/progress.py``). The console sums the latest line of every worker
into one, with an ETA once every listing has reported: on a terminal it is redrawn in
place; piped or redirected, it is printed every few seconds.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from google.protobuf import text_format

from pipeline.core import eta
from pipeline.transforms import progress

OUR_LOGGERS = ("registry-scrub", "jobs", "pipeline")
_OUR_SOURCES = ("/pipeline/", "/jobs/")
WORKER_FORMAT = "Worker: %s"  # how Beam's local job service relays a worker's LogEntry
TTY_INTERVAL_S = 1.0  # how often workers report when the line is redrawn in place
_CLEAR_LINE = "\r\x1b[K"


class ProgressBoard:
    """The latest progress of each worker, summed into one line, against what the listings found.

    The rates are the sums of the workers' own rates (each over its own time since it
    started hashing), so the launcher's clock and the workers' start-up play no part.
    Each listing reports its objects and bytes once; when all of them have, the totals
    are known and the line gains an ETA (``pipeline/core/eta.py``).
    """

    def __init__(self):
        # (pid, instance) -> (objects, MB, MB/s, objects/s, objects carried over, MB carried over)
        self._workers: dict[tuple[str, str | None], tuple[int, float, float, float, int, float]] = {}
        self._listed: dict[tuple[str, str], tuple[int, int]] = {}  # (bucket, range) -> (objects, bytes)
        self._listings: int | None = None  # how many listings the scan runs

    def update(self, message: str) -> bool:
        """Take a worker's progress or listing line; False if ``message`` is neither."""
        match = progress.LINE.search(message)
        if match is not None:
            self._workers[match["pid"], match["instance"]] = (
                int(match["objects"]),
                float(match["mb"]),
                float(match["mb_per_s"]),
                float(match["objects_per_s"]),
                int(match["carried"] or 0),
                float(match["carried_mb"] or 0),
            )
            return True
        match = progress.LISTED_LINE.search(message)
        if match is not None:
            # A listing retried after a failed bundle reports again: the same key, counted once.
            self._listed[match["bucket"], match["range"]] = (int(match["objects"]), int(match["bytes"]))
            self._listings = int(match["listings"])
            return True
        return False

    @property
    def listing_complete(self) -> bool:
        return self._listings is not None and len(self._listed) >= self._listings

    def line(self) -> str:
        listed_objects = sum(objects for objects, _ in self._listed.values())
        listed_mb = sum(size for _, size in self._listed.values()) / 1e6
        if not self._workers:
            if not self._listed:
                return "progress: no worker has reported yet"
            return (
                f"progress: listing: {len(self._listed):,} of {self._listings:,} listings done, "
                f"{listed_objects:,} objects, {listed_mb:,.1f} MB so far"
            )
        objects, megabytes, mb_per_s, objects_per_s, carried, carried_mb = (
            sum(column) for column in zip(*self._workers.values(), strict=True)
        )
        processes = len({pid for pid, _ in self._workers})
        # An incremental scan carries objects over without reading them: done, but not to read.
        carried_text = f" ({carried:,} carried over)" if carried else ""
        if self.listing_complete:
            # Bytes read, not a share of the listed bytes: a read retried from byte 0 counts twice.
            done = (
                f"{objects + carried:,} of {listed_objects:,} objects{carried_text}, {megabytes:,.1f} MB read "
                f"of {listed_mb - carried_mb:,.1f} MB {'to read' if carried else 'listed'}"
            )
            seconds = eta.eta_seconds(
                listed_objects=listed_objects,
                listed_bytes=round((listed_mb - carried_mb) * 1e6),
                done_objects=objects + carried,
                done_bytes=round(megabytes * 1e6),
                objects_per_s=objects_per_s,
                bytes_per_s=mb_per_s * 1e6,
            )
        else:
            done, seconds = f"{objects + carried:,} objects{carried_text}, {megabytes:,.1f} MB read", None
        return (
            f"progress: {done}, {mb_per_s:,.1f} MB/s, {objects_per_s:,.1f} objects/s, "
            f"{eta.eta_text(self.listing_complete, seconds)} ({processes} worker process(es))"
        )


class ConsoleFilter(logging.Filter):
    def __init__(self, level: int, tracebacks: bool = False):
        super().__init__()
        self._level = level
        self._tracebacks = tracebacks

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.split(".")[0] in OUR_LOGGERS:
            return record.levelno >= self._level
        if record.msg == WORKER_FORMAT and record.args:
            return self._worker_record(record, str(record.args[0]))
        if record.levelno >= logging.WARNING and not self._tracebacks:
            # Beam logs a failed bundle with a page of frames; the CLI says why in one line.
            record.exc_info, record.exc_text = None, None
        return record.levelno >= logging.WARNING

    def _worker_record(self, record: logging.LogRecord, text: str) -> bool:
        from apache_beam.portability.api import beam_fn_api_pb2

        entry = beam_fn_api_pb2.LogEntry()
        try:
            text_format.Parse(text, entry, allow_unknown_field=True)
        except text_format.ParseError:
            return record.levelno >= logging.WARNING
        ours = any(part in entry.log_location for part in _OUR_SOURCES)
        if not (ours and record.levelno >= self._level) and record.levelno < logging.ERROR:
            return False
        record.msg, record.args = f"[worker] {entry.message}", None
        return True


class ConsoleHandler(logging.StreamHandler):
    """Prints log lines; progress lines are summed over the workers and shown as one line."""

    def __init__(self, stream, in_place: bool, interval: float = progress.DEFAULT_INTERVAL_S, clock=time.monotonic):
        super().__init__(stream)
        self.board = ProgressBoard()
        self._in_place = in_place
        self._interval = interval
        self._clock = clock
        self._last_shown: float | None = None
        self._drawn = False  # a progress line is on screen without its newline
        self._unshown = False  # piped: the board changed since its last line

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.board.update(record.getMessage()):
                self._show_progress()
                return
            self.finish_line()
            super().emit(record)
        except Exception:
            self.handleError(record)

    def _show_progress(self) -> None:
        if self._in_place:
            self.stream.write(_CLEAR_LINE + self.board.line())
            self._drawn = True
        else:
            now = self._clock()
            if self._last_shown is not None and now - self._last_shown < self._interval:
                self._unshown = True
                return
            self._last_shown = now
            self._print_progress()
        self.flush()

    def _print_progress(self) -> None:
        self.stream.write(f"{time.strftime('%H:%M:%S')} INFO {self.board.line()}\n")
        self._unshown = False

    def final_line(self) -> None:
        """At the end of the run: piped, print the counts held back since the last line; on a terminal, end the line."""
        if not self._in_place and self._unshown:
            self._print_progress()
            self.flush()
        self.finish_line()

    def finish_line(self) -> None:
        """End a progress line drawn in place, so that what follows starts on a line of its own."""
        if self._drawn:
            self.stream.write("\n")
            self.flush()
            self._drawn = False


_handler: ConsoleHandler | None = None


def configure(quiet: bool, verbose: bool = False, stream=None) -> ConsoleHandler:
    """Console logging for a local run; also tells local workers how often to report progress."""
    stream = sys.stderr if stream is None else stream
    level = logging.WARNING if quiet else logging.INFO
    in_place = stream.isatty()
    interval = TTY_INTERVAL_S if in_place else progress.DEFAULT_INTERVAL_S
    handler = ConsoleHandler(stream, in_place=in_place, interval=interval)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    handler.addFilter(ConsoleFilter(level, tracebacks=verbose))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # The root must let INFO through: that is how worker entries arrive.
    root.setLevel(logging.INFO)
    # google-auth warns of each credential source it tried; the launcher names the problem itself.
    logging.getLogger("google.auth._default").setLevel(logging.ERROR)
    # urllib3 warns of each retry of a connection it makes for google-auth (a token fetch with no
    # network: dozens of lines); the read protocol and the launcher report their own failures.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    if not quiet:  # inherited by local worker processes only; Dataflow's workers keep logging at DEBUG
        os.environ[progress.PROGRESS_ENV] = str(interval)
    global _handler
    _handler = handler
    return handler


def new_run() -> None:
    """A scan starts: the console's progress sums this run's workers and listings only. A second
    scan in the same process (the demo's incremental rescan) would otherwise add its workers'
    counts to the first run's, against its own listing: "62 of 31 objects"."""
    if _handler is not None:
        # A console closed under it (an embedding caller's captured stream) has nothing left to end.
        if not getattr(_handler.stream, "closed", False):
            _handler.final_line()
        _handler.board = ProgressBoard()


def finish() -> None:
    """Before the summary: the last progress counts, and end the line a terminal shows in place."""
    if _handler is not None:
        _handler.final_line()
