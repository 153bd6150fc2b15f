"""Console logging for local runs: our own lines, the workers' lines, and one progress line.

The FnApiRunner relays every worker log entry to the launcher's root logger as the
text of a ``LogEntry`` proto. This filter turns ours back into plain lines and
drops the worker chatter of Beam itself below ERROR.

Each worker process reports its own progress (``pipeline/transforms/progress.py``).
The console sums the latest line of every worker into one: on a terminal it is
redrawn in place; piped or redirected, it is printed every few seconds.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from google.protobuf import text_format

from pipeline.transforms import progress

OUR_LOGGERS = ("registry-scrub", "jobs", "pipeline")
_OUR_SOURCES = ("/pipeline/", "/jobs/")
WORKER_FORMAT = "Worker: %s"  # how Beam's local job service relays a worker's LogEntry
TTY_INTERVAL_S = 1.0  # how often workers report when the line is redrawn in place
_CLEAR_LINE = "\r\x1b[K"


class ProgressBoard:
    """The latest progress of each worker process, summed into one line.

    The rates are the sums of the workers' own rates (each over its own time since it
    started hashing), so the launcher's clock and the workers' start-up play no part.
    """

    def __init__(self):
        self._workers: dict[str, tuple[int, float, float, int]] = {}  # pid -> (objects, MB, MB/s, objects/s)

    def update(self, message: str) -> bool:
        """Take a worker's progress line; False if ``message`` is not one."""
        match = progress.LINE.search(message)
        if match is None:
            return False
        self._workers[match["pid"]] = (
            int(match["objects"]),
            float(match["mb"]),
            float(match["mb_per_s"]),
            int(match["objects_per_s"]),
        )
        return True

    def line(self) -> str:
        if not self._workers:
            return "progress: no worker has reported yet"
        objects, megabytes, mb_per_s, objects_per_s = (
            sum(column) for column in zip(*self._workers.values(), strict=True)
        )
        return (
            f"progress: {objects:,} objects, {megabytes:,.1f} MB hashed, "
            f"{mb_per_s:,.1f} MB/s, {objects_per_s:,} objects/s ({len(self._workers)} worker process(es))"
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
                return
            self._last_shown = now
            self.stream.write(f"{time.strftime('%H:%M:%S')} INFO {self.board.line()}\n")
        self.flush()

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
    if not quiet:  # inherited by local worker processes only; Dataflow's workers keep logging at DEBUG
        os.environ[progress.PROGRESS_ENV] = str(interval)
    global _handler
    _handler = handler
    return handler


def finish() -> None:
    """Before the summary: end the progress line a terminal shows in place."""
    if _handler is not None:
        _handler.finish_line()
