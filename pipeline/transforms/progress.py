"""Progress of the hashing workers: counted in each worker process, shown only on a local console.

On Dataflow, Beam's counters (``scan/objects_hashed``, ``scan/bytes_hashed``) are the
progress: the console shows them live, and a line from every DoFn instance every few
seconds would only fill Cloud Logging. So a worker logs its progress at DEBUG unless
the command line that started it asks for lines: it sets ``REGISTRY_SCRUB_PROGRESS``
to the seconds between lines, and local workers inherit the launcher's environment
(Dataflow workers never see it). The launcher's console sums the workers' lines into
one (``jobs/logs.py``).

Each listing logs what it found the same way (:func:`log_listed`), so the console knows
the objects and bytes to do, and from them an ETA (``pipeline/core/eta.py``).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

PROGRESS_ENV = "REGISTRY_SCRUB_PROGRESS"
DEFAULT_INTERVAL_S = 3.0
# The lines a worker logs; jobs/logs.py reads them back to sum the workers.
LINE = re.compile(
    r"progress \(pid (?P<pid>\d+)(?: #(?P<instance>\d+))?\): (?P<objects>\d+) objects, (?P<mb>[0-9.]+) MB hashed "
    r"\((?P<mb_per_s>[0-9.]+) MB/s, (?P<objects_per_s>[0-9.]+) objects/s\)"
    r"(?:; (?P<carried>\d+) objects, (?P<carried_mb>[0-9.]+) MB carried over)?"
)
LISTED_LINE = re.compile(
    r"listed gs://(?P<bucket>\S+) (?P<range>.+): (?P<objects>\d+) objects, (?P<bytes>\d+) bytes "
    r"\(one of (?P<listings>\d+) listings\)$"
)
# Several DoFn instances can hash in one process (one per bundle processor): each reports its own.
_instances = itertools.count(1)


def shown_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between progress lines when a console shows them, else None (log at DEBUG)."""
    value = (os.environ if environ is None else environ).get(PROGRESS_ENV, "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds > 0 else None


def level(environ: Mapping[str, str] | None = None) -> int:
    """INFO where a console shows progress (a local run), DEBUG elsewhere (Dataflow: counters only)."""
    return logging.INFO if shown_interval(environ) is not None else logging.DEBUG


def listed_line(bucket: str, key_range: str, objects: int, size: int, listings: int | None) -> str:
    return f"listed gs://{bucket} {key_range}: {objects} objects, {size} bytes (one of {listings} listings)"


def log_listed(bucket: str, key_range: str, objects: int, size: int, listings: int | None) -> None:
    """What one listing found, for the console's totals (which need to know how many listings there are)."""
    shown = level() if listings is not None else logging.DEBUG
    log.log(shown, listed_line(bucket, key_range, objects, size, listings))


class Progress:
    """Objects and bytes hashed in this worker process, logged every ``interval`` seconds."""

    def __init__(self, interval: float | None = None, clock=time.monotonic, environ: Mapping[str, str] | None = None):
        shown = shown_interval(environ)
        self.level = level(environ)
        self._interval = interval or shown or DEFAULT_INTERVAL_S
        self._clock = clock
        self._lock = threading.Lock()
        self._last = clock()
        # The rate runs from the first byte, not from setup(): a worker set up early waits for the listing.
        self._start: float | None = None
        self._instance = next(_instances)
        self._shown = (0, 0, 0)  # objects, bytes and carried objects in the last line logged
        self.objects = 0
        self.bytes = 0
        # An incremental scan's objects the ledger vouches for: done without a read (docs/incremental.md).
        self.carried = 0
        self.carried_bytes = 0

    def add_bytes(self, n: int) -> None:
        # Also called mid-object, so a single huge object still shows progress.
        with self._lock:
            self._started()
            self.bytes += n
            line = self._due_line()
        if line:
            log.log(self.level, line)

    def object_done(self) -> None:
        with self._lock:
            self._started()
            self.objects += 1
            line = self._due_line()
        if line:
            log.log(self.level, line)

    def flush(self) -> None:
        """Log the counts now if they changed since the last line (at the end of a bundle): the
        console's last line then holds every object, however short the scan."""
        with self._lock:
            line = None if self._shown == self._counts() else self._line_now(self._clock())
        if line:
            log.log(self.level, line)

    def carried_over(self, size: int) -> None:
        """An object done without a read; it counts towards the objects done, never towards the rate."""
        with self._lock:
            self.carried += 1
            self.carried_bytes += size

    def _started(self) -> None:
        if self._start is None:
            self._start = self._last = self._clock()

    def _due_line(self) -> str | None:
        now = self._clock()
        if now - self._last < self._interval:
            return None
        return self._line_now(now)

    def _line_now(self, now: float) -> str:
        self._last = now
        self._shown = self._counts()
        return self.line(now)

    def _counts(self) -> tuple[int, int, int]:
        return self.objects, self.bytes, self.carried

    def line(self, now: float | None = None) -> str:
        now = self._clock() if now is None else now
        elapsed = max(now - (now if self._start is None else self._start), 1e-9)
        carried = f"; {self.carried} objects, {self.carried_bytes / 1e6:.1f} MB carried over" if self.carried else ""
        return (
            f"progress (pid {os.getpid()} #{self._instance}): {self.objects} objects, {self.bytes / 1e6:.1f} MB hashed "
            f"({self.bytes / 1e6 / elapsed:.1f} MB/s, {self.objects / elapsed:.1f} objects/s){carried}"
        )
