"""Progress of the hashing workers: counted in each worker process, shown only on a local console.

On Dataflow, Beam's counters (``scan/objects_hashed``, ``scan/bytes_hashed``) are the
progress: the console shows them live, and a line from every DoFn instance every few
seconds would only fill Cloud Logging. So a worker logs its progress at DEBUG unless
the command line that started it asks for lines: it sets ``REGISTRY_SCRUB_PROGRESS``
to the seconds between lines, and local workers inherit the launcher's environment
(Dataflow workers never see it). The launcher's console sums the workers' lines into
one (``jobs/logs.py``).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

PROGRESS_ENV = "REGISTRY_SCRUB_PROGRESS"
DEFAULT_INTERVAL_S = 3.0
# The line a worker logs; jobs/logs.py reads it back to sum the workers.
LINE = re.compile(
    r"progress \(pid (?P<pid>\d+)\): (?P<objects>\d+) objects, (?P<mb>[0-9.]+) MB hashed "
    r"\((?P<mb_per_s>[0-9.]+) MB/s, (?P<objects_per_s>\d+) objects/s\)"
)


def shown_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between progress lines when a console shows them, else None (log at DEBUG)."""
    value = (os.environ if environ is None else environ).get(PROGRESS_ENV, "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds > 0 else None


class Progress:
    """Objects and bytes hashed in this worker process, logged every ``interval`` seconds."""

    def __init__(self, interval: float | None = None, clock=time.monotonic, environ: Mapping[str, str] | None = None):
        shown = shown_interval(environ)
        self.level = logging.INFO if shown is not None else logging.DEBUG
        self._interval = interval or shown or DEFAULT_INTERVAL_S
        self._clock = clock
        self._lock = threading.Lock()
        self._start = self._last = clock()
        self.objects = 0
        self.bytes = 0

    def add_bytes(self, n: int) -> None:
        # Also called mid-object, so a single huge object still shows progress.
        with self._lock:
            self.bytes += n
            line = self._due_line()
        if line:
            log.log(self.level, line)

    def object_done(self) -> None:
        with self._lock:
            self.objects += 1
            line = self._due_line()
        if line:
            log.log(self.level, line)

    def _due_line(self) -> str | None:
        now = self._clock()
        if now - self._last < self._interval:
            return None
        self._last = now
        return self.line(now)

    def line(self, now: float | None = None) -> str:
        elapsed = max((self._clock() if now is None else now) - self._start, 1e-9)
        return (
            f"progress (pid {os.getpid()}): {self.objects} objects, {self.bytes / 1e6:.1f} MB hashed "
            f"({self.bytes / 1e6 / elapsed:.1f} MB/s, {self.objects / elapsed:.0f} objects/s)"
        )
