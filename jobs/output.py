"""``--format json``: what ``scan``, ``report`` and ``export`` print for scripts.

With ``--format json`` standard output carries one JSON document and nothing else (the
run's summary, or export's result); the lines for people go to standard error, as the
progress and log lines always do. Exit statuses do not change. On a failure (exit status
2, 3, 130 or 143) standard output stays empty: the status and the one line on standard
error say what happened (docs/cli.md, "Output for scripts").
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

FORMATS = ("text", "json")


def add_format_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        metavar="text|json",
        help="json: print the result as one JSON document on standard output and the text for people "
        "on standard error (default: text)",
    )


def emit(args: argparse.Namespace, document: dict[str, Any], text: str | None) -> None:
    """Print ``text`` for people, and with ``--format json`` ``document`` for scripts."""
    if getattr(args, "format", "text") == "json":
        if text:
            print(text, file=sys.stderr, flush=True)
        print(json.dumps(document, indent=2, ensure_ascii=False, default=str), flush=True)
    elif text:
        print(text)
