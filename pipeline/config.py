"""The scan's configuration: YAML on the launcher, typed and validated once.

Every error names where the value came from (the file or the command-line flag),
the key, what was found and what is expected. Unknown keys are errors, because a
misspelt key that is silently ignored makes an audit scan the wrong thing.
Workers never see this module's input, only the plain values it produces.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from pipeline.core.incremental import DEFAULT_REVERIFY_AFTER_S, DEFAULT_REVERIFY_SAMPLE
from pipeline.core.ledger import parse_ledger
from pipeline.core.protection import check_accept_losing
from pipeline.core.read_verdict import DEFAULT_MIN_READ_RATE, DEFAULT_READ_TIMEOUT_S
from pipeline.core.shards import SHARD_COUNTS
from pipeline.manifest_config import (
    MANIFESTS_SCHEMA,
    ManifestsConfig,
    check_bool,
    check_mode,
    check_mode_against_sources,
    effective_mode,
)
from pipeline.values import BUCKET_RE, GCR_BUCKET_PATTERN, size_in, whole_number_in

DEFAULT_PREFIX = "containers/images/"
DEFAULT_OUTPUT = "./scrub-reports"
DEFAULT_SHARD_COUNT = 16
DEFAULT_CHUNK_SIZE = 1024 * 1024
# GCS answers a read in tens of milliseconds before the first byte; 32 reads in
# flight keep a core busy hashing small blobs while bounding memory to 32 chunks.
DEFAULT_READ_CONCURRENCY = 32
DEFAULT_MAX_ATTEMPTS = 5

_PROJECT_RE = re.compile(r"(?:[a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]")
_RESOURCE_NUMBER_RE = re.compile(r"[1-9][0-9]{0,29}")
_RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ENDPOINT_RE = re.compile(r"https?://[A-Za-z0-9.\[\]:-]+(?::[0-9]{1,5})?/?")
# [PROJECT:|PROJECT.]DATASET; without a project, the job's own --project.
_BQ_DATASET_RE = re.compile(r"(?:(?:[a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9][:.])?[A-Za-z0-9_]{1,1024}")


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message says where and how to fix it."""


@dataclass(frozen=True)
class SourceConfig:
    buckets: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    # Resource Manager numbers whose GCR buckets Cloud Asset Inventory finds (docs/fleet.md).
    organizations: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()
    prefix: str = DEFAULT_PREFIX
    emulator_endpoint: str | None = None


@dataclass(frozen=True)
class ScanConfig:
    shard_count: int = DEFAULT_SHARD_COUNT
    chunk_size: int = DEFAULT_CHUNK_SIZE
    read_concurrency: int = DEFAULT_READ_CONCURRENCY
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    # Each read attempt may take read_timeout + size / min_read_rate seconds in all (docs/reliability.md).
    read_timeout: float = DEFAULT_READ_TIMEOUT_S
    min_read_rate: int = DEFAULT_MIN_READ_RATE
    # names | manifests | both; None: both when manifests.sources is set, else names.
    mode: str | None = None
    # Rebuild images from blobs alone and check diff_ids, in the same single read (docs/recovery.md).
    # None (unset): on whenever a reclaim plan could be written (with_recovery_for_reclaim); an
    # explicit false keeps it off, and then no plan is written (reclaim's second guard needs it).
    recover_images: bool | None = None
    # docs/incremental.md: carry over what report.ledger verified recently instead of reading it,
    # and re-read a sample of it each run.
    incremental: bool = False
    reverify_after: float = DEFAULT_REVERIFY_AFTER_S  # seconds
    reverify_sample: float = DEFAULT_REVERIFY_SAMPLE  # a fraction, 0 to 1


@dataclass(frozen=True)
class ReportConfig:
    output: str = DEFAULT_OUTPUT
    run_id: str | None = None
    # Optional: also load findings and the summary into BigQuery tables here.
    bigquery_dataset: str | None = None
    # docs/incremental.md: the earlier run to compare with (and, with scan.incremental, to trust):
    # "auto", a run folder, or bq:PROJECT.DATASET.TABLE. None: no comparison.
    ledger: str | None = None


@dataclass(frozen=True)
class ReclaimConfig:
    # Images (by config digest) whose blobs the plan may include although the bucket itself shows
    # them complete, or "all" (pipeline/core/protection.py, docs/report.md "Reclaim").
    accept_losing: tuple[str, ...] | str = ()


@dataclass(frozen=True)
class Config:
    source: SourceConfig = field(default_factory=SourceConfig)
    scan: ScanConfig = field(default_factory=ScanConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    manifests: ManifestsConfig = field(default_factory=ManifestsConfig)
    reclaim: ReclaimConfig = field(default_factory=ReclaimConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for ``summary.json``; nothing here is secret."""
        return asdict(self)


# --- value checkers: each returns the clean value or raises ValueError("expected ...") ---


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value.strip()


def _pattern(regex: re.Pattern, what: str, hint: str = "") -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = _string(value)
        if not regex.fullmatch(text):
            raise ValueError(f"expected {what}{hint}")
        return text

    return check


def _bucket(value: Any) -> str:
    text = _string(value)
    if text.startswith("gs://"):
        raise ValueError("expected a bare bucket name; drop the 'gs://'")
    if "/" in text:
        raise ValueError("expected a bare bucket name without '/'; set the path under source.prefix")
    if not BUCKET_RE.fullmatch(text):
        raise ValueError("expected a GCS bucket name (3-222 characters: a-z 0-9 . _ -)")
    return text


def _list_of(item: Callable[[Any], str]) -> Callable[[Any], tuple[str, ...]]:
    def check(value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            raise ValueError('expected a list, e.g. ["' + value + '"]')
        if not isinstance(value, list):
            raise ValueError("expected a list")
        out = []
        for index, element in enumerate(value):
            try:
                out.append(item(element))
            except ValueError as err:
                raise ValueError(f"item {index} ({element!r}): {err}") from None
        if len(set(out)) != len(out):
            raise ValueError("expected each entry once; remove the duplicates")
        return tuple(out)

    return check


def _resource_number(what: str, example: str, lister: str) -> Callable[[Any], str]:
    """An organisation or folder number, as ``gcloud`` lists it: digits only (a YAML int is taken too)."""

    def check(value: Any) -> str:
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else _string(value)
        if not _RESOURCE_NUMBER_RE.fullmatch(text):
            raise ValueError(f"expected {what} number, digits only, e.g. {example} (`{lister}` shows it)")
        return text

    return check


def _prefix(value: Any) -> str:
    text = _string(value)
    if text.startswith("/") or not text.endswith("/"):
        raise ValueError("expected a folder-like prefix that ends with '/' and does not start with it")
    # Object names have no '.', '..' or empty folders: such a prefix lists nothing, and would read as clean.
    if any(part in ("", ".", "..") for part in text[:-1].split("/")):
        raise ValueError(
            f"expected a folder path such as containers/images/, got {text!r}: "
            "a '.', '..' or empty ('//') folder cannot be right (GCR's blobs are under containers/images/)"
        )
    return text


def _output(value: Any) -> str:
    text = _string(value)
    if text.startswith("gs://"):
        if not BUCKET_RE.fullmatch(text[5:].split("/", 1)[0]):
            raise ValueError("expected gs://BUCKET[/PATH] with a valid bucket name")
        return text.rstrip("/")
    if "://" in text:
        raise ValueError("expected a local directory or gs://BUCKET/PATH")
    return text


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else check(value)


def _shard_count(value: Any) -> int:
    if isinstance(value, bool) or value not in SHARD_COUNTS:
        raise ValueError(f"expected one of {', '.join(map(str, SHARD_COUNTS))} (16 per hex digit)")
    return value


# Bytes from an int or a string such as "256KiB" or "1 MiB".
parse_size = size_in(4 * 1024, 256 * 1024**2, "1MiB or 262144")
# Bytes per second, the same way: the slowest read that is still waited for.
parse_read_rate = size_in(1024, 10 * 1024**3, "1MiB (per second)")
_SECONDS_RE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*s?\s*")


def _seconds(low: float, high: float) -> Callable[[Any], float]:
    """Seconds from a number or a string such as ``"60"``, ``"2.5"`` or ``"60s"``, within ``[low, high]``."""

    def check(value: Any) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str) and (match := _SECONDS_RE.fullmatch(value)):
            seconds = float(match.group(1))
        else:
            raise ValueError(f"expected a number of seconds, e.g. 60 or 2.5, got {value!r}")
        if not low <= seconds <= high:
            raise ValueError(f"expected a number of seconds from {low:g} to {high:g}, got {seconds:g}")
        return seconds

    return check


_DURATION_RE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw])\s*")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _duration(low_s: float, high_s: float) -> Callable[[Any], float]:
    """Seconds from a duration with its unit, such as ``"30d"``, ``"12h"``, ``"90m"`` or ``"2w"``."""

    def check(value: Any) -> float:
        match = _DURATION_RE.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"expected a duration with its unit (s, m, h, d or w), e.g. 30d or 12h, got {value!r}")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        if not low_s <= seconds <= high_s:
            raise ValueError(f"expected a duration from {low_s:g}s to {high_s / 86400:g}d, got {value!r}")
        return seconds

    return check


def _fraction(value: Any) -> float:
    """A share from 0 to 1, as a number (``0.01``) or a percentage (``"1%"``)."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            share = float(value.strip()[:-1]) / 100
        except ValueError:
            share = None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        share = float(value)
    else:
        share = None
    if share is None or not 0 <= share <= 1:
        raise ValueError(f"expected a fraction from 0 to 1 (e.g. 0.01) or a percentage (e.g. 1%), got {value!r}")
    return share


def _ledger(value: Any) -> str:
    text = _string(value)
    parse_ledger(text)
    return text.rstrip("/") if text != "auto" and not text.startswith("bq:") else text


SCHEMA: dict[str, dict[str, Callable[[Any], Any]]] = {
    "source": {
        "buckets": _list_of(_bucket),
        "projects": _list_of(_pattern(_PROJECT_RE, "a Google Cloud project id")),
        "organizations": _list_of(_resource_number("an organization", "123456789012", "gcloud organizations list")),
        "folders": _list_of(
            _resource_number("a folder", "987654321098", "gcloud resource-manager folders list --organization=ORG_ID")
        ),
        "prefix": _prefix,
        "emulator_endpoint": _optional(
            _pattern(_ENDPOINT_RE, "an http(s)://HOST:PORT endpoint", ", e.g. http://127.0.0.1:9023")
        ),
    },
    "scan": {
        "shard_count": _shard_count,
        "chunk_size": parse_size,
        "read_concurrency": whole_number_in(1, 512),
        "max_attempts": whole_number_in(1, 20),
        "read_timeout": _seconds(0.1, 3600),
        "min_read_rate": parse_read_rate,
        "mode": _optional(check_mode),
        "recover_images": _optional(check_bool),
        "incremental": check_bool,
        "reverify_after": _duration(1, 3650 * 86400),
        "reverify_sample": _fraction,
    },
    "report": {
        "output": _output,
        "run_id": _optional(_pattern(_RUN_ID_RE, "letters, digits, '.', '_' or '-' (up to 128, no '/')")),
        "bigquery_dataset": _optional(
            _pattern(_BQ_DATASET_RE, "a BigQuery dataset", ", e.g. my-project:registry_audit or registry_audit")
        ),
        "ledger": _optional(_ledger),
    },
    "manifests": MANIFESTS_SCHEMA,
    "reclaim": {"accept_losing": check_accept_losing},
}
_SECTION_TYPES = {
    "source": SourceConfig,
    "scan": ScanConfig,
    "report": ReportConfig,
    "manifests": ManifestsConfig,
    "reclaim": ReclaimConfig,
}


def parse_config(raw: Any, origin: str, overrides: dict[str, tuple[Any, str]] | None = None) -> Config:
    """Validate a YAML document (already parsed) plus command-line overrides.

    ``overrides`` maps ``"section.key"`` to ``(value, flag)``; a bad override is
    reported against its flag, not against the file.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: expected a mapping of sections ({', '.join(SCHEMA)}), got {type(raw).__name__}")
    unknown = set(raw) - set(SCHEMA)
    if unknown:
        raise ConfigError(
            f"{origin}: unknown section(s) {', '.join(sorted(map(str, unknown)))}; expected only {', '.join(SCHEMA)}"
        )
    overrides = overrides or {}
    sections = {}
    for section, checks in SCHEMA.items():
        body = raw.get(section)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ConfigError(f"{origin}: {section}: expected a mapping of keys, got {type(body).__name__}")
        unknown = set(body) - set(checks)
        if unknown:
            raise ConfigError(
                f"{origin}: {section}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                f"valid keys are {', '.join(checks)}"
            )
        values = {}
        for key, check in checks.items():
            dotted = f"{section}.{key}"
            if dotted in overrides:
                value, where = overrides[dotted]
            elif key in body:
                value, where = body[key], f"{origin}: {dotted}"
            else:
                continue
            try:
                values[key] = check(value)
            except ValueError as err:
                raise ConfigError(f"{where}: {err}") from None
        sections[section] = _SECTION_TYPES[section](**values)
    config = Config(**sections)
    if config.scan.incremental and not config.report.ledger:
        # An incremental scan with no ledger named trusts the newest trusted run under report.output.
        config = Config(**{**sections, "report": replace(config.report, ledger="auto")})
    source = config.source
    if not (source.buckets or source.projects or source.organizations or source.folders):
        raise ConfigError(
            f"{origin}: source: nothing to scan; set source.buckets, source.projects, source.organizations "
            "and/or source.folders (or pass --bucket / --scan-project / --scan-org / --scan-folder)"
        )
    if source.buckets and (source.organizations or source.folders):
        # Ambiguous: narrow the organisation to these buckets, or add them to it? The fleet's
        # totals claim to answer for the organisation, so neither guess is safe (docs/fleet.md).
        raise ConfigError(
            f"{origin}: source.buckets cannot be combined with source.organizations or source.folders "
            "(--bucket with --scan-org / --scan-folder): the fleet answers for every GCR bucket the "
            "organisation or folder holds; scan named buckets in a run of their own"
        )
    problem = check_mode_against_sources(config.scan.mode, config.manifests)
    if problem:
        raise ConfigError(f"{origin}: {problem}")
    if config.scan.recover_images and config.scan.mode == "manifests":
        raise ConfigError(f"{origin}: scan.recover_images needs the objects read; use mode both or names")
    problem = incremental_problem(config)
    if problem:
        raise ConfigError(f"{origin}: {problem}")
    return config


def with_recovery_for_reclaim(config: Config) -> Config | None:
    """The config with scan.recover_images on when it is unset and a reclaim plan could be written, else None.

    Reclaim's second guard (pipeline/core/protection.py) needs the images the bucket itself shows,
    which recovery's single read finds at a cost in CPU, not reads. A plan could be written when
    manifests are cross-checked with objects that are read: scan.mode both, not incremental (an
    incremental scan skips reads, and there the plan is refused instead, docs/report.md)."""
    scan = config.scan
    if scan.recover_images is not None or scan.incremental or effective_mode(scan.mode, config.manifests) != "both":
        return None
    return replace(config, scan=replace(scan, recover_images=True))


def incremental_problem(config: Config) -> str | None:
    """scan.incremental needs a ledger to trust, and objects that are read at all (docs/incremental.md)."""
    scan = config.scan
    if not scan.incremental:
        return None
    if scan.mode == "manifests":
        return "scan.incremental: scan.mode manifests reads no object, so there is nothing to skip; use names or both"
    if scan.recover_images:
        return (
            "scan.incremental: scan.recover_images needs every layer read, which an incremental scan skips; "
            "turn one of them off"
        )
    return None


def load_config(path: str | Path | None, overrides: dict[str, tuple[Any, str]] | None = None) -> Config:
    """Read and validate a YAML file (a local path or ``gs://``); with no path, the overrides alone."""
    if path is None:
        return parse_config({}, "command line", overrides)
    text = _read_text(str(path))
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except DuplicateKey as err:
        raise ConfigError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{path}: not valid YAML at {where}: {problem}") from None
    return parse_config(raw, str(path), overrides)


class DuplicateKey(yaml.YAMLError):
    """A key given twice in one mapping: YAML parsers keep the last one without a word."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load``, refusing a mapping that names a key twice (a second ``source:`` would
    silently replace the first, and the error that followed would be about something else)."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class says so
                break
            if repeated:
                mark = key_node.start_mark
                raise DuplicateKey(
                    f"key {key!r} appears twice in one mapping (again at line {mark.line + 1}, "
                    f"column {mark.column + 1}); keep one"
                )
        return super().construct_mapping(node, deep=deep)


def _read_text(path: str) -> str:
    try:
        if path.startswith("gs://"):
            # A Flex Template launch reads its config from GCS, through the same FileSystems as the report.
            from apache_beam.io.filesystems import FileSystems

            with FileSystems.open(path, mime_type="text/yaml") as handle:
                return handle.read().decode("utf-8")
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the config file ({getattr(err, 'strerror', None) or err})") from None
    except Exception as err:  # Beam's BeamIOError and GCS errors: not worth importing here
        raise ConfigError(f"{path}: cannot read the config file ({err})") from None


def is_gcr_bucket(name: str) -> bool:
    """True for ``artifacts.P.appspot.com`` and its ``us.``/``eu.``/``asia.`` variants."""
    return GCR_BUCKET_PATTERN.fullmatch(name) is not None
