"""``registry-scrub``: scan buckets (``scan``, the default) or run the embedded demo (``demo``).

Our flags override the YAML config. Every other argument must be one of Apache Beam's
registered pipeline options (``--runner``, ``--project``, ``--region``,
``--direct_num_workers`` …), checked against Beam's own parser; anything else is
refused with the closest known flag, because a misspelt flag that is dropped makes
an audit run with settings nobody asked for. docs/cli.md describes every flag.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from typing import Any

from jobs import interrupt, logs, output
from pipeline.config import Config, ConfigError, load_config
from pipeline.core.summary import EXIT_RUN_FAILED, EXIT_UNUSABLE_INPUT, format_summary
from pipeline.values import human_size

PROG = "registry-scrub"

# flag -> (config key, parser); repeated flags collect into a list.
OVERRIDES: dict[str, tuple[str, Any]] = {
    "--bucket": ("source.buckets", "append"),
    "--scan-project": ("source.projects", "append"),
    "--scan-org": ("source.organizations", "append"),
    "--scan-folder": ("source.folders", "append"),
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
    "--recover-images": ("scan.recover_images", "flag"),
    "--accept-losing": ("reclaim.accept_losing", "append"),
    "--ledger": ("report.ledger", str),
    "--incremental": ("scan.incremental", "flag"),
    "--reverify-after": ("scan.reverify_after", str),
    "--reverify-sample": ("scan.reverify_sample", "number_or_text"),  # 0.01 as a number, 1% as text
}

# flag -> (metavar, meaning, default); a default of None is read from the config's own default.
FLAG_HELP: dict[str, tuple[str, str, str | None]] = {
    "--bucket": ("NAME", "a bucket to scan, without gs://; repeat for more", "none"),
    "--scan-project": (
        "PROJECT",
        "scan the [us.|eu.|asia.]artifacts.PROJECT.appspot.com buckets of this project; repeat for more",
        "none",
    ),
    "--scan-org": (
        "ORG_ID",
        "scan every GCR bucket Cloud Asset Inventory finds in this organization (its number); repeat for more",
        "none",
    ),
    "--scan-folder": (
        "FOLDER_ID",
        "scan every GCR bucket Cloud Asset Inventory finds in this folder (its number); repeat for more",
        "none",
    ),
    "--prefix": ("PREFIX", "the folder of blobs inside each bucket", None),
    "--emulator-endpoint": (
        "URL",
        "a local GCS emulator, http://HOST:PORT, used with anonymous credentials",
        "$STORAGE_EMULATOR_HOST if set, else Cloud Storage",
    ),
    "--output": ("DIR|gs://BUCKET/PATH", "the report root; each run writes its own folder <root>/<run id>/", None),
    "--run-id": ("ID", "the run's folder name; a rerun with the same id replaces it", "the UTC start time"),
    "--bigquery-dataset": ("[PROJECT:]DATASET", "also load findings and the summary into BigQuery", "none"),
    "--shard-count": ("N", "listings per bucket: 16, 256 or 4096", None),
    "--chunk-size": ("SIZE", "bytes per read, e.g. 256KiB or 4MiB (4KiB to 256MiB)", None),
    "--read-concurrency": ("N", "reads in flight per worker process (1 to 512)", None),
    "--max-attempts": ("N", "attempts per object on transient errors (1 to 20)", None),
    "--read-timeout": (
        "SECONDS",
        "time allowed per read attempt, plus the object's size at --min-read-rate",
        None,
    ),
    "--min-read-rate": ("RATE", "the slowest read still waited for, bytes/s (e.g. 1MiB)", "1MiB"),
    "--mode": (
        "{names,manifests,both}",
        "names: hash every blob; manifests: cross-check blobs with manifests without hashing; both: the two",
        "both with a manifest source, else names",
    ),
    "--recover-images": (
        "",
        "also rebuild images from blobs alone and check every manifest's diff_ids (docs/recovery.md)",
        "on whenever a reclaim plan could be written (--mode both, not --incremental), else off",
    ),
    "--accept-losing": (
        "all|CONFIG_DIGEST",
        "let reclaim-plan.txt include the blobs of this image (its config digest, sha256:HEX; repeat the flag or "
        "separate several by commas), although the bucket itself shows it complete; all: every such image",
        "none",
    ),
    "--ledger": (
        "auto|RUN_DIR|bq:PROJECT.DATASET.TABLE",
        "the earlier run to compare with (and trust with --incremental): auto takes the newest trusted run "
        "under --output (docs/incremental.md)",
        "none",
    ),
    "--incremental": (
        "",
        "carry over objects the ledger verified recently (same generation and crc32c) instead of reading them",
        "off",
    ),
    "--reverify-after": (
        "DURATION",
        "with --incremental, read an object again once the ledger's verification of it is this old "
        "(each object after a fixed share of it, from half to all), e.g. 7d, 12h, 2w",
        "30d",
    ),
    "--reverify-sample": (
        "FRACTION",
        "with --incremental, the share of carried-over objects read again every run to check the ledger, "
        "from 0 to 1 or a percentage, e.g. 0.01 or 1%",
        "1%",
    ),
}

_EPILOG = """\
Any other argument must be an Apache Beam pipeline option, e.g. --runner=DataflowRunner
--project=P --region=R --temp_location=gs://B/tmp; anything else is refused.
Exit status: 0 clean, 1 findings of severity error, 2 unusable input (nothing was scanned),
3 the run failed, 130/143 interrupted (SIGINT/SIGTERM). Every flag: docs/cli.md."""


VERSION_HELP = "print the versions of registry-scrub, Apache Beam and Python, and exit"


def number_or_text(value: str) -> float | str:
    """A flag value as a number when it is one (``0.01``), else as given (``1%``) for the config to judge."""
    try:
        return float(value)
    except ValueError:
        return value


class UsageError(Exception):
    """Arguments that cannot be understood (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        # `registry-scrub --help` is scan's help; report and export have their own.
        command = self.prog.split()[-1]
        helper = self.prog if command in ("demo", "report", "export") else PROG
        raise UsageError(f"{message}; see {helper} --help")


def version_text() -> str:
    def version_of(distribution: str) -> str:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            return "unknown"

    python = ".".join(map(str, sys.version_info[:3]))
    return f"{PROG} {version_of('registry-scrub')} (Apache Beam {version_of('apache-beam')}, Python {python})"


def default_text(flag: str) -> str:
    key, _ = OVERRIDES[flag]
    given = FLAG_HELP.get(flag, ("", "", None))[2]
    if given is not None:
        return given
    section, field = key.split(".")
    value = getattr(getattr(Config(), section), field)
    if field == "chunk_size":
        return human_size(value)
    return "none" if value in (None, ()) else str(value)


def _add_scan_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="a YAML config file, local or gs:// (see config/example.yaml); the flags below override its keys "
        "(default: none, the flags alone)",
    )
    for flag, (key, kind) in OVERRIDES.items():
        metavar, meaning, _ = FLAG_HELP.get(flag, ("VALUE", f"sets {key}", None))
        text = f"{meaning} (default: {default_text(flag)}; config key {key})".replace("%", "%%")
        dest = key.replace(".", "__")
        if kind == "append":
            parser.add_argument(flag, dest=dest, action="append", metavar=metavar, help=text)
        elif kind == "flag":
            parser.add_argument(flag, dest=dest, action="store_const", const=True, help=text)
        elif kind == "number_or_text":
            parser.add_argument(flag, dest=dest, type=number_or_text, metavar=metavar, help=text)
        else:
            parser.add_argument(flag, dest=dest, type=kind, metavar=metavar, help=text)
    talk = parser.add_mutually_exclusive_group()
    talk.add_argument(
        "-q", "--quiet", action="store_true", help="no progress lines, only the summary and errors (default: off)"
    )
    talk.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="the full error, traceback included, when a run cannot start or fails (default: off, one line)",
    )
    parser.add_argument("--version", action="version", version=version_text(), help=VERSION_HELP)


def build_parser() -> argparse.ArgumentParser:
    common = {"formatter_class": argparse.RawDescriptionHelpFormatter, "epilog": _EPILOG, "allow_abbrev": False}
    parser = _Parser(
        prog=PROG,
        description="Verify the blobs of GCR-layout Cloud Storage buckets against their SHA-256 names.",
        **common,
    )
    parser.add_argument("--version", action="version", version=version_text(), help=VERSION_HELP)
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    scan = commands.add_parser(
        "scan",
        help="scan buckets as configured (the default command)",
        description="Scan buckets and write the report (the default command).",
        **common,
    )
    _add_scan_flags(scan)
    scan.add_argument(
        "--plan-only",
        action="store_true",
        help="find the buckets, list their sizes and estimate the scan's time and Dataflow cost, then stop "
        "without reading any blob (default: off; docs/fleet.md)",
    )
    demo = commands.add_parser(
        "demo",
        help="seed a local emulated bucket with demo images and scan it, then rescan it incrementally",
        description="Start a local GCS emulator, seed it with demo images and planted problems, and scan it; "
        "then rewrite, push and delete a blob and scan again incrementally, printing what changed.",
        **common,
    )
    _add_scan_flags(demo)
    demo.add_argument(
        "--keep-emulator-data",
        metavar="DIR",
        help="keep the emulator's data in DIR (default: a temporary folder, removed at the end)",
    )
    report = commands.add_parser(
        "report",
        help="re-render report.html from an existing run folder",
        description="Re-render report.html from the summary and rows of a finished run.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, local or gs://BUCKET/PATH/<run_id>")
    report.add_argument(
        "--emulator-endpoint",
        metavar="URL",
        help="a gs:// RUN_DIR on a local storage emulator, http://HOST:PORT (default: Cloud Storage)",
    )
    talk = report.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="print only the page's path (default: a summary)")
    talk.add_argument(
        "-v", "--verbose", action="store_true", help="the full error when rendering fails (default: off, one line)"
    )
    from jobs import export

    parser.commands = {"scan": scan, "demo": demo, "report": report, "export": export.add_parser(commands)}
    # `registry-scrub --help` is scan's help: it names the other commands, or nobody finds them.
    others = "\n".join(
        f"  {PROG} {action.dest} --help".ljust(32) + action.help
        for action in commands._choices_actions
        if action.dest != "scan"
    )
    scan.description += f"\n\nOther commands, each with its own --help:\n{others}"
    for command in ("scan", "report", "export"):  # jobs/output.py: one JSON document on standard output
        output.add_format_flag(parser.commands[command])
    return parser


def beam_option_parser() -> argparse.ArgumentParser:
    """Beam's own parser of every registered pipeline option, built as PipelineOptions builds it."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    parser = _BeamArgumentParser(allow_abbrev=False)
    parser.error = _Parser.error.__get__(parser)  # a bad value of a Beam option: one line too, not its usage
    classes: dict[str, type] = {}
    for cls in PipelineOptions.__subclasses__():
        classes.setdefault(str(cls), cls)
    for cls in classes.values():
        cls._add_argparse_args(parser)
    return parser


def _known_flags(parser: argparse.ArgumentParser) -> list[str]:
    return [flag for flag in parser._option_string_actions if flag.startswith("--")]


def check_beam_arguments(beam_args: list[str], ours: argparse.ArgumentParser) -> None:
    """Refuse arguments that are neither ours nor Beam's, naming the closest known flag."""
    beam = beam_option_parser()
    _, unknown = beam.parse_known_args(beam_args)
    if not unknown:
        return
    known = _known_flags(ours) + _known_flags(beam)
    named = []
    for i, arg in enumerate(unknown):
        if arg.startswith("-"):
            flag = arg.split("=", 1)[0]
            close = difflib.get_close_matches(flag, known, n=1, cutoff=0.75)
            named.append(f"{flag} (did you mean {close[0]}?)" if close else flag)
        elif i == 0 or not unknown[i - 1].startswith("-") or "=" in unknown[i - 1]:
            named.append(repr(arg))  # not the value of an unknown flag: a stray word
    plural = "s" if len(named) > 1 else ""
    raise UsageError(f"unknown argument{plural} {', '.join(named)}; see {PROG} --help")


def parse_arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our flags and Beam's arguments; ``UsageError`` for anything else, SystemExit for --help/--version."""
    argv = list(argv)
    if not argv or argv[0] not in ("scan", "demo", "report", "export", "--version"):
        argv.insert(0, "scan")  # also for -h: the default command's flags are the ones to explain
    parser = build_parser()
    args, beam_args = parser.parse_known_args(argv)
    if args.command in ("report", "export") and beam_args:  # these run no pipeline: no Beam option applies
        raise UsageError(f"{args.command}: unrecognised arguments: {' '.join(beam_args)}")
    check_beam_arguments(beam_args, parser.commands[args.command])
    return args, beam_args


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


_imports_frozen = False


@contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection while Beam and the scanner are imported, and what they made frozen after.

    An import allocates objects that live until the process ends, about 180,000 for Beam
    and its Google clients, and every few hundred allocations the collector walks the young
    ones and, now and then, all of them, for no garbage: about 0.1 s of a one-object scan.
    Pausing alone would only defer that walk to the first collection after; ``gc.freeze()``
    moves those objects out of the collector's sight instead (once per process, as
    ``pipeline.runner.prepare_launcher_process`` does). The collector's state is restored.
    """
    global _imports_frozen
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if not _imports_frozen:
            _imports_frozen = True
            gc.freeze()
        if was_enabled:
            gc.enable()


def main(argv: list[str] | None = None, *, handle_signals: bool | None = None) -> int:
    """The command. Run as ``registry-scrub`` (no ``argv``), SIGINT and SIGTERM stop the run
    (jobs/interrupt.py); a caller that passes ``argv`` in its own process keeps its signals."""
    if handle_signals if handle_signals is not None else argv is None:
        interrupt.install()  # first: before Beam's imports start threads of their own
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with collector_paused():  # the first import of Beam: its options' parser
            args, beam_args = parse_arguments(argv)
    except UsageError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return EXIT_UNUSABLE_INPUT
    except SystemExit as stop:  # --help and --version have printed what was asked
        return stop.code if isinstance(stop.code, int) else 0
    logs.configure(args.quiet, args.verbose)
    if args.command == "report":
        from jobs.report import main as report_main

        return report_main(args)
    if args.command == "export":
        from jobs.export import main as export_main

        return export_main(args)

    with collector_paused():
        from jobs.launcher import UnusableInput, emulator_from_environment, run_scan

    try:
        if args.command == "demo":
            from jobs.demo import run_demo

            summary = run_demo(args.config, overrides_from(args), beam_args, args.keep_emulator_data)
        else:
            config = emulator_from_environment(load_config(args.config, overrides_from(args)), os.environ)
            if args.plan_only:
                from jobs.launcher import plan_scan
                from pipeline.core.scan_plan import format_plan

                plan = plan_scan(config)
                logs.finish()
                print(format_plan(plan))
                return 0
            summary = run_scan(config, beam_args)
    except (ConfigError, UnusableInput) as err:
        logs.finish()
        if args.verbose:
            traceback.print_exc()
        print(f"{PROG}: {err}", file=sys.stderr)
        return EXIT_UNUSABLE_INPUT
    except Exception as err:  # the pipeline failed: say why in one line, not Beam's page of frames
        logs.finish()
        if args.verbose:
            traceback.print_exc()
        print(f"{PROG}: the run failed before its report was complete: {failure_line(err)}", file=sys.stderr)
        if not args.verbose:
            print(f"{PROG}: rerun with --verbose for the full error", file=sys.stderr)
        return EXIT_RUN_FAILED
    logs.finish()
    if summary is None:  # a dry run: the graph was built and checked, nothing ran
        return 0
    output.emit(args, summary, format_summary(summary))
    return summary["exit_status"]


if __name__ == "__main__":
    sys.exit(main())
