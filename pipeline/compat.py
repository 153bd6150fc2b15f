"""What Python 3.11 added that the project uses, for Python 3.10 too.

Beam 2.77 supports Python 3.10 to 3.13 and so does ``pyproject.toml``; the Dataflow image
runs 3.11. Each name here is the standard library's own where it exists, so on 3.11 and
later nothing changes; on 3.10 it is the smallest equivalent. ``tests/test_compat.py``
checks the equivalents against what 3.11 does, on every version ``make test-pythons`` runs.
"""

from __future__ import annotations

import enum
import os
import re
import sys
import warnings
from datetime import datetime, timezone

UTC = timezone.utc  # datetime.UTC (3.11) is this same object

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:

    class StrEnum(str, enum.Enum):
        """enum.StrEnum: members are str, and ``str()``/``format()`` give the value, not ``Class.NAME``."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return format(str(self.value), spec)

        @staticmethod
        def _generate_next_value_(name, start, count, last_values):
            return name.lower()


# What 3.10's fromisoformat refuses and 3.11's reads, in an RFC 3339 timestamp: a trailing Z
# and a fraction of other than 3 or 6 digits (GCS writes milliseconds; others write 1 to 9).
_RFC3339 = re.compile(r"(?P<head>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(?:\.(?P<fraction>\d+))?(?P<zone>Z|[+-]\d\d:\d\d)?")


def parse_iso_datetime(text: str) -> datetime:
    """``datetime.fromisoformat`` as Python 3.11 reads RFC 3339 timestamps (``…T…Z``, any fraction).

    Raises ``ValueError`` for text that is not a timestamp, as ``fromisoformat`` does.
    """
    if sys.version_info >= (3, 11) or not isinstance(text, str):
        return datetime.fromisoformat(text)
    match = _RFC3339.fullmatch(text)
    if match is None:
        if "Z" in text:  # 3.10 would read "…Z+00:00"; 3.11 refuses it
            raise ValueError(f"Invalid isoformat string: {text!r}")
        return datetime.fromisoformat(text)  # a date alone, or what it refuses anyway
    fraction = "." + (match["fraction"] + "000000")[:6] if match["fraction"] else ""
    zone = {None: "", "Z": "+00:00"}.get(match["zone"], match["zone"])
    return datetime.fromisoformat(match["head"] + fraction + zone)


# google-api-core warns at import, once per Google client library (five lines a run), when
# Python's end of life has passed: "You are using a non-supported Python version …". It says
# nothing about this run; docs/runners.md ("Python versions") says it for 3.10.
_GOOGLE_SUPPORT_WARNING = ("ignore", FutureWarning, "google.api_core._python_version_support")


def quiet_python_support_warnings(environ: dict[str, str] | None = None) -> None:
    """Silence that warning here and in the worker processes the local runner starts."""
    action, category, module = _GOOGLE_SUPPORT_WARNING
    warnings.filterwarnings(action, category=category, module=re.escape(module))
    environ = os.environ if environ is None else environ
    entry = f"{action}::{category.__name__}:{module}"
    present = [part for part in environ.get("PYTHONWARNINGS", "").split(",") if part]
    if entry not in present:
        environ["PYTHONWARNINGS"] = ",".join([*present, entry])
