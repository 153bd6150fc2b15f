"""Run one command and measure it: wall time, the CPU seconds of its whole process tree, and
the peak RSS of each of its processes.

CPU is taken two ways and the larger kept: the kernel's rusage of children this process
has waited for (the command, and every descendant it waited for itself), and psutil samples
of every live descendant every 50 ms (which catches workers nobody waits for, to within
their last 50 ms).
"""

from __future__ import annotations

import resource
import subprocess
import threading
import time
from dataclasses import dataclass, field

import psutil

SAMPLE_S = 0.05


@dataclass
class Run:
    wall: float
    cpu: float
    returncode: int
    stdout: str
    stderr: str
    # pid -> (command line head, peak RSS in MiB), root first.
    peak_rss_mib: dict[int, tuple[str, float]] = field(default_factory=dict)
    root_pid: int = 0

    @property
    def worker_peak_mib(self) -> float:
        """The largest peak among the processes the command started (Beam's SDK workers), else its own."""
        children = [rss for pid, (_, rss) in self.peak_rss_mib.items() if pid != self.root_pid]
        return max(children) if children else self.peak_rss_mib.get(self.root_pid, ("", 0.0))[1]

    @property
    def root_peak_mib(self) -> float:
        return self.peak_rss_mib.get(self.root_pid, ("", 0.0))[1]


def _peak_rss_mib(process: psutil.Process) -> float | None:
    try:
        with open(f"/proc/{process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def run(command: list[str], env: dict[str, str] | None = None, cwd: str | None = None, timeout: float = 3600) -> Run:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    root = psutil.Process(process.pid)
    sampled_cpu: dict[int, float] = {}
    peaks: dict[int, tuple[str, float]] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                tree = []
            for proc in tree:
                try:
                    times = proc.cpu_times()
                    sampled_cpu[proc.pid] = times.user + times.system
                    peak = _peak_rss_mib(proc)
                    if peak is not None:
                        name = peaks.get(proc.pid, (None, 0))[0] or " ".join(proc.cmdline()[:4])
                        peaks[proc.pid] = (name, max(peak, peaks.get(proc.pid, ("", 0.0))[1]))
                except psutil.Error:
                    pass
            stop.wait(SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        stop.set()
        sampler.join()
        if process.poll() is None:
            process.kill()
            process.wait()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    waited = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    ordered = dict(sorted(peaks.items(), key=lambda item: item[0] != process.pid))
    return Run(
        wall=wall,
        cpu=max(waited, sum(sampled_cpu.values())),
        returncode=process.returncode,
        stdout=stdout,
        stderr=stderr,
        peak_rss_mib=ordered,
        root_pid=process.pid,
    )
