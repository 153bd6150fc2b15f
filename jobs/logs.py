"""Console logging for local runs: our progress lines, including those of worker processes.

The FnApiRunner relays every worker log entry to the launcher's root logger as the
text of a ``LogEntry`` proto. This filter turns ours back into plain lines and
drops the worker chatter of Beam itself below ERROR.
"""

from __future__ import annotations

import logging
import sys

from google.protobuf import text_format

OUR_LOGGERS = ("registry-scrub", "jobs", "pipeline")
_OUR_SOURCES = ("/pipeline/", "/jobs/")
WORKER_FORMAT = "Worker: %s"  # how Beam's local job service relays a worker's LogEntry


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


def configure(quiet: bool, verbose: bool = False) -> None:
    level = logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    handler.addFilter(ConsoleFilter(level, tracebacks=verbose))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # The root must let INFO through: that is how worker entries arrive.
    root.setLevel(logging.INFO)
