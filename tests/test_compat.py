"""pipeline/compat.py: what Python 3.11 added, equal on 3.10 (``make test-pythons`` runs this on each version)."""

from __future__ import annotations

import enum
import json
import os
import re
import subprocess
import sys
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pipeline.compat import UTC, StrEnum, parse_iso_datetime, quiet_python_support_warnings


class Colour(StrEnum):
    RED = "red"
    DARK_BLUE = enum.auto()


def test_str_enum_members_are_their_values_as_text():
    assert isinstance(Colour.RED, str)
    assert Colour.RED == "red"
    assert str(Colour.RED) == "red"
    assert f"{Colour.RED}" == "red"
    assert f"[{Colour.RED:>5}]" == "[  red]"
    assert "%s" % Colour.RED == "red"  # noqa: UP031 - the old formatting path too
    assert json.dumps({"kind": Colour.RED}) == '{"kind": "red"}'
    assert Colour("red") is Colour.RED
    assert Colour.DARK_BLUE == "dark_blue"  # auto() is the lower-cased name, as in 3.11
    assert {Colour.RED: 1}["red"] == 1


def test_utc_is_the_utc_timezone():
    assert UTC is timezone.utc
    assert datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).isoformat() == "2026-01-02T03:04:05+00:00"


@pytest.mark.parametrize(
    "text, expected",
    [
        # GCS writes milliseconds and a Z.
        ("2024-02-03T04:05:06.789Z", datetime(2024, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)),
        ("2024-02-03T04:05:06Z", datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC)),
        ("2024-02-03T04:05:06.7Z", datetime(2024, 2, 3, 4, 5, 6, 700000, tzinfo=UTC)),
        # More than 6 fraction digits are cut to microseconds, as 3.11 does.
        ("2024-02-03T04:05:06.123456789Z", datetime(2024, 2, 3, 4, 5, 6, 123456, tzinfo=UTC)),
        ("2024-02-03T04:05:06.5+02:00", datetime(2024, 2, 3, 4, 5, 6, 500000, tzinfo=timezone(timedelta(hours=2)))),
        ("2024-02-03T04:05:06", datetime(2024, 2, 3, 4, 5, 6)),
        ("2024-02-03", datetime(2024, 2, 3)),
    ],
)
def test_parse_iso_datetime_reads_rfc3339_as_python_311_does(text, expected):
    parsed = parse_iso_datetime(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2024-02-30T00:00:00Z", "2024-02-03T04:05:06ZZ", "2024-02-03T04:05:06Z+00:00"]
)
def test_parse_iso_datetime_refuses_what_is_not_a_timestamp(text):
    with pytest.raises(ValueError):
        parse_iso_datetime(text)


def test_parse_iso_datetime_refuses_a_non_string():
    with pytest.raises(TypeError):
        parse_iso_datetime(None)


def _warn_from(module: str) -> None:
    warnings.warn_explicit("You are using a non-supported Python version", FutureWarning, "x.py", 1, module=module)


def test_google_python_support_warning_is_silenced_here_and_in_child_processes():
    environ = {"PYTHONWARNINGS": "default::DeprecationWarning"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_python_support_warnings(environ)
        quiet_python_support_warnings(environ)  # idempotent: one entry, not two
        _warn_from("google.api_core._python_version_support")
        _warn_from("google.api_core.other")
    assert [str(w.message) for w in caught] == ["You are using a non-supported Python version"]
    assert environ["PYTHONWARNINGS"] == (
        "default::DeprecationWarning,ignore::FutureWarning:google.api_core._python_version_support"
    )
    # A worker process started with that environment ignores it too, and only it.
    for module, printed in [("google.api_core._python_version_support", False), ("google.api_core.other", True)]:
        child = subprocess.run(
            [sys.executable, "-c", f"from tests.test_compat import _warn_from; _warn_from({module!r})"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": environ["PYTHONWARNINGS"]},
            cwd=Path(__file__).parent.parent,
            check=True,
        )
        assert ("non-supported Python version" in child.stderr) is printed, child.stderr


def test_every_claimed_python_is_listed_with_what_ran_and_every_listed_one_is_claimed():
    """Never claim a version that was not installed and run: docs/runners.md, "Python versions"."""
    from packaging.specifiers import SpecifierSet

    repo = Path(__file__).parent.parent
    pyproject = (repo / "pyproject.toml").read_text()
    (requires,) = re.findall(r'^requires-python = "([^"]+)"', pyproject, re.MULTILINE)
    claimed = {f"3.{minor}" for minor in range(6, 20) if f"3.{minor}" in SpecifierSet(requires)}
    section = (repo / "docs" / "runners.md").read_text().split("## Python versions", 1)[1]
    row = re.compile(r"^\| (3\.\d+)\.\d+ \([^)]+\) \| [^|]+ \| all passed \| \d{4}-\d\d-\d\d \|$", re.MULTILINE)
    rows = row.findall(section)
    assert sorted(rows) == sorted(claimed)
