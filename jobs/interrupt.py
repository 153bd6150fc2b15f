"""Ctrl-C and SIGTERM stop a local run at once: workers ended, partial report removed, status 130/143.

The stop does not unwind through Beam: Beam's cleanup joins the threads that wait
on its worker processes, and would wait as long as they run. Instead it kills every
process this one started (the SDK workers, an emulator), removes the half-written
report folder, says so in one line and leaves with ``os._exit``. See ``install``
for how each signal reaches it.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable

EXIT_SIGINT = 128 + signal.SIGINT  # 130, what a shell reports for Ctrl-C
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143
_KILL_WAIT_S = 3.0

# What to remove when interrupted, registered while it is pending: (what, action).
_cleanups: dict[int, tuple[str, Callable[[], None]]] = {}


def descendants(pid: int | None = None) -> list[int]:
    """Every live process below ``pid`` (default: this one), children first, from /proc."""
    pid = os.getpid() if pid is None else pid
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue  # exited while we looked
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
        fields = stat[stat.rindex(b")") + 2 :].split()
        if fields[0] != b"Z":
            parents.setdefault(int(fields[1]), []).append(int(entry))
    found, frontier = [], [pid]
    while frontier:
        children = parents.get(frontier.pop(), [])
        found.extend(children)
        frontier.extend(children)
    return found


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a killed child no one has reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2 :].split()[0] != b"Z"


def kill_descendants() -> int:
    """SIGKILL every process below this one and wait (bounded) until they are gone; returns how many."""
    pids = descendants()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + _KILL_WAIT_S
    for pid in pids:
        try:  # reap our own children; a grandchild is reaped by whoever inherits it
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        while is_running(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    return len(pids)


def on_interrupt(what: str, remove: Callable[[], None]) -> int:
    """Register ``remove`` (of ``what``) to run if the run is interrupted; returns a token for ``done``."""
    token = id(remove)
    _cleanups[token] = (what, remove)
    return token


def done(token: int) -> None:
    _cleanups.pop(token, None)


def remove_partial_report(run_dir: str) -> Callable[[], None]:
    """An action that deletes a run folder the interrupted run left half written."""

    def remove() -> None:
        if run_dir.startswith("gs://"):
            from apache_beam.io.filesystems import FileSystems

            matched = FileSystems.match([run_dir.rstrip("/") + "/**"])[0].metadata_list
            if matched:
                FileSystems.delete([m.path for m in matched])
        else:
            for attempt in range(3):  # a thread of this process may still be writing a file there
                try:
                    shutil.rmtree(run_dir)
                    return
                except FileNotFoundError:
                    return
                except OSError:
                    if attempt == 2:
                        raise
                    time.sleep(0.1)

    return remove


def _say(text: str) -> None:
    # os.write, not logging or print: the main thread may hold their locks where the signal hit it.
    start = "\n" if sys.stderr.isatty() else ""  # below a progress line drawn in place
    os.write(sys.stderr.fileno(), f"{start}registry-scrub: {text}\n".encode(errors="replace"))


_once = threading.Lock()


def _stop(signum: int) -> None:
    if not _once.acquire(blocking=False):
        while True:  # the first signal's cleanup is under way and ends the process
            time.sleep(60)
    name = signal.Signals(signum).name
    # The workers' last words (relayed log entries) and Beam's threads that watch them die
    # would bury the one line that matters under pages of frames.
    logging.disable(logging.CRITICAL)
    threading.excepthook = lambda args: None
    stopped = kill_descendants()
    notes = [f"stopped {stopped} child process(es)"]
    for what, remove in list(_cleanups.values()):
        try:
            remove()
            notes.append(f"removed {what}")
        except Exception as err:  # say what is left behind rather than fail the exit
            notes.append(f"could not remove {what} ({type(err).__name__}: {err})")
    _say(f"interrupted by {name}; {'; '.join(notes)}; no summary.json was written")
    os._exit(EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM)


def _wait_for_sigint() -> None:
    signal.sigwait({signal.SIGINT})
    _stop(signal.SIGINT)


def install() -> None:
    """Make SIGINT and SIGTERM stop the run. Call once, from the main thread, before any other starts.

    SIGINT is blocked and taken by a thread of its own. A terminal's Ctrl-C goes to the whole
    process group, and the SDK workers must not react to it (each would print a traceback
    before we end it), so SIGINT is also set to be ignored: exec keeps an ignored signal
    ignored, and Python then installs no KeyboardInterrupt in the workers. Linux still
    queues a signal that is blocked, ignored or not, so ``sigwait`` receives it here.
    SIGTERM, usually sent to this process alone, interrupts the main thread's wait.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    threading.Thread(target=_wait_for_sigint, name="registry-scrub-interrupt", daemon=True).start()
    signal.signal(signal.SIGTERM, lambda signum, frame: _stop(signum))
