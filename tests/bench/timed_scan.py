"""Where the time of a scan goes: the CLI run in this process, with a clock at each phase.

``python tests/bench/timed_scan.py PHASES.json START_EPOCH -- SCAN ARGUMENTS…`` runs
``registry-scrub scan …`` exactly as the CLI does (same ``main``, same arguments), with
timers wrapped around the launcher's own steps and around each bundle Beam's FnApiRunner
runs, and writes them to PHASES.json as it exits. START_EPOCH is ``time.time()`` in the
parent just before it started this process, so the interpreter's own start shows too; the
parent adds the exit (the time from the last phase to the process's end) from its own clock.
bench_scan.py runs its one-object scan this way in every round, bench_scale.py its scale run.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import sys
import time

STARTED = time.time()
os.environ.setdefault("NO_GCE_CHECK", "true")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

# (phase, seconds) in the order they ran; the wrapped steps record their own span.
phases: list[tuple[str, float]] = []
_last = [time.time()]


def _mark(phase: str) -> None:
    now = time.time()
    phases.append((phase, now - _last[0]))
    _last[0] = now


def _timed(module, name: str, phase: str) -> None:
    """Wrap ``module.name``: what ran before it is "other", its own span is ``phase``."""
    inner = getattr(module, name)

    def wrapper(*args, **kwargs):
        _mark("other")
        try:
            return inner(*args, **kwargs)
        finally:
            _mark(phase)

    setattr(module, name, wrapper)


# (stage, seconds) for every bundle the runner ran: a stage is named by the composites fused into it.
bundles: list[tuple[str, float]] = []


def stage_label(fused_name: str) -> str:
    """``ListObjects+HashObjects+WriteReport``: the top-level transforms a fused stage runs."""
    names = re.findall(r"ref_AppliedPTransform_([A-Za-z]+)-|\(([A-Za-z]+)/", fused_name)
    return "+".join(dict.fromkeys(a or b for a, b in names)) or fused_name[:60]


def _time_bundles() -> None:
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    inner = fn_runner.FnApiRunner._execute_bundle

    def execute_bundle(self, context, bundle_manager, bundle_input):
        started = time.perf_counter()
        try:
            return inner(self, context, bundle_manager, bundle_input)
        finally:
            bundles.append((stage_label(bundle_manager.stage.name), time.perf_counter() - started))

    fn_runner.FnApiRunner._execute_bundle = execute_bundle


def main() -> None:
    out, parent_start = sys.argv[1], float(sys.argv[2])
    argv = sys.argv[sys.argv.index("--") + 1 :]
    phases.append(("interpreter start", STARTED - parent_start))
    _last[0] = STARTED
    import contextlib

    import jobs.cli

    # The CLI's main imports Beam and the launcher with the garbage collector paused: so here.
    with getattr(jobs.cli, "collector_paused", contextlib.nullcontext)():
        import jobs.launcher as launcher  # noqa: I001  (the order is the CLI's own)
        import apache_beam.pipeline as beam_pipeline

    _mark("imports (jobs.cli, jobs.launcher, apache_beam)")
    _timed(launcher, "plan_run", "preflight (buckets, output probe, bucket facts)")
    _timed(launcher, "local_options_for", "execution mode (size estimate)")
    _timed(launcher, "build_pipeline", "pipeline construction")
    _timed(beam_pipeline.Pipeline, "run", "Beam run (translation, fusion, every stage)")
    _time_bundles()

    def write() -> None:
        _mark("summary, printing and the rest")
        # What the interpreter does after this (gc, module teardown) the parent times.
        with open(out, "w") as stream:
            json.dump({"phases": phases, "bundles": bundles, "ended": time.time()}, stream)

    atexit.register(write)  # registered before the runner's own: runs after it (LIFO)
    sys.exit(jobs.cli.main(argv, handle_signals=False))


if __name__ == "__main__":
    main()
