"""``registry-scrub``: scan buckets (``scan``, the default) or run the embedded demo (``demo``).

Our flags override the YAML config; every other argument goes to Beam untouched
(``--runner``, ``--project``, ``--region``, ``--direct_num_workers`` …).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Any

from jobs import logs
from pipeline.config import ConfigError, load_config
from pipeline.core.summary import EXIT_RUN_FAILED, EXIT_UNUSABLE_INPUT, format_summary

# flag -> (config key, parser); repeated flags collect into a list.
OVERRIDES: dict[str, tuple[str, Any]] = {
    "--bucket": ("source.buckets", "append"),
    "--scan-project": ("source.projects", "append"),
    "--prefix": ("source.prefix", str),
    "--emulator-endpoint": ("source.emulator_endpoint", str),
    "--output": ("report.output", str),
    "--run-id": ("report.run_id", str),
    "--bigquery-dataset": ("report.bigquery_dataset", str),
    "--shard-count": ("scan.shard_count", int),
    "--chunk-size": ("scan.chunk_size", str),
    "--read-concurrency": ("scan.read_concurrency", int),
    "--max-attempts": ("scan.max_attempts", int),
    "--read-timeout": ("scan.read_timeout", str),
    "--min-read-rate": ("scan.min_read_rate", str),
    "--mode": ("scan.mode", str),
}

FLAG_HELP = {
    "--read-timeout": "overrides scan.read_timeout: seconds per read attempt, plus the size at --min-read-rate",
    "--min-read-rate": "overrides scan.min_read_rate: slowest read still waited for, bytes/s (e.g. 1MiB)",
}


def _add_scan_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML config file (see config/example.yaml)")
    for flag, (key, kind) in OVERRIDES.items():
        dest = key.replace(".", "__")
        if kind == "append":
            parser.add_argument(
                flag, dest=dest, action="append", metavar="NAME", help=f"overrides {key}; repeat for more"
            )
        else:
            parser.add_argument(flag, dest=dest, type=kind, help=FLAG_HELP.get(flag, f"overrides {key}"))
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines, only the summary")
    parser.add_argument("-v", "--verbose", action="store_true", help="the full error when a run fails")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="registry-scrub",
        description="Verify the blobs of GCR-layout Cloud Storage buckets against their SHA-256 names.",
        epilog="Arguments not listed here are passed to Apache Beam (e.g. --runner=DataflowRunner).",
    )
    commands = parser.add_subparsers(dest="command")
    _add_scan_flags(commands.add_parser("scan", help="scan buckets as configured (the default)"))
    demo = commands.add_parser("demo", help="seed a local emulated bucket with demo images and scan it")
    _add_scan_flags(demo)
    demo.add_argument(
        "--keep-emulator-data", metavar="DIR", help="keep the emulator's data in DIR instead of a temporary folder"
    )
    return parser


def overrides_from(args: argparse.Namespace) -> dict[str, tuple[Any, str]]:
    overrides = {}
    for flag, (key, _) in OVERRIDES.items():
        value = getattr(args, key.replace(".", "__"), None)
        if value is not None:
            overrides[key] = (value, f"command line {flag}")
    return overrides


def failure_line(err: BaseException) -> str:
    """The last line of an error: Beam wraps a worker's exception in its whole traceback."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("scan", "demo", "-h", "--help"):
        argv.insert(0, "scan")
    args, beam_args = build_parser().parse_known_args(argv)
    logs.configure(args.quiet, args.verbose)

    from jobs.launcher import UnusableInput, run_scan

    try:
        if args.command == "demo":
            from jobs.demo import run_demo

            summary = run_demo(args.config, overrides_from(args), beam_args, args.keep_emulator_data)
        else:
            config = load_config(args.config, overrides_from(args))
            summary = run_scan(config, beam_args)
    except (ConfigError, UnusableInput) as err:
        print(f"registry-scrub: {err}", file=sys.stderr)
        return EXIT_UNUSABLE_INPUT
    except Exception as err:  # the pipeline failed: say why in one line, not Beam's page of frames
        if args.verbose:
            traceback.print_exc()
        print(f"registry-scrub: the run failed before its report was complete: {failure_line(err)}", file=sys.stderr)
        if not args.verbose:
            print("registry-scrub: rerun with --verbose for the full error", file=sys.stderr)
        return EXIT_RUN_FAILED
    print(format_summary(summary))
    return summary["exit_status"]


if __name__ == "__main__":
    sys.exit(main())
