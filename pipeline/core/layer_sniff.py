"""Recognise image configs and layers in the bytes of one read, and compute each layer's diff_id.

A ``LayerSniffer`` is fed the same chunks the read loop hashes (no second download):

* a gzip (``1f 8b``) or zstd (``28 b5 2f fd``) stream is a candidate layer; it is
  decompressed as it arrives and the SHA-256 of the output is its diff_id. Output is
  produced in steps of at most ``OUTPUT_STEP`` bytes and hashed at once, so memory
  stays bounded whatever the ratio; a decompression bomb costs CPU linear in its
  output, and ``max_output_bytes`` caps even that;
* an uncompressed tar (``ustar`` at offset 257) is a layer whose diff_id is its own
  digest, which the read already computes;
* a JSON object whose first bytes fit in ``config_cap`` is buffered and, at the end,
  kept when it has ``rootfs.diff_ids``: an image config; otherwise, when the strict manifest
  parser (``pipeline.core.manifests``) accepts it, a manifest or index stored as a blob, with the
  digests it names (the second guard of reclaim, ``pipeline.core.protection``).

Everything else is dropped after its first few hundred bytes. Hostile input never
raises: it ends as ``None`` or as a layer with a ``problem``.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import zstandard

from pipeline.core.digests import is_digest

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
TAR_MAGIC = b"ustar"
TAR_MAGIC_AT = 257
# Bytes needed to tell every recognised format apart.
HEAD_BYTES = TAR_MAGIC_AT + len(TAR_MAGIC)
# Image configs are a few KiB; a JSON object above this is not worth parsing here.
CONFIG_CAP = 1024 * 1024
# The most decompressed output held at once.
OUTPUT_STEP = 256 * 1024
# What a recovered row keeps of a config: enough to recognise the image, bounded in size.
HISTORY_KEPT = 3
TEXT_KEPT = 300
LABELS_KEPT = 50
JSON_WHITESPACE = b" \t\r\n"

GZIP = "gzip"
ZSTD = "zstd"
CONFIG = "config"
LAYER = "layer"
MANIFEST = "manifest"


def _text(value: Any, limit: int = TEXT_KEPT) -> str | None:
    if not isinstance(value, str):
        return None
    return value if len(value) <= limit else value[: limit - 1] + "…"


@dataclass(frozen=True)
class ConfigFacts:
    """What recovery needs from an image config: its layers in order, and what identifies the image."""

    diff_ids: tuple[str, ...]
    os: str | None = None
    architecture: str | None = None
    variant: str | None = None
    created: str | None = None
    history_head: tuple[str, ...] = ()
    history_tail: tuple[str, ...] = ()
    history_count: int = 0
    labels: dict[str, str] = field(default_factory=dict)


def parse_config_facts(data: bytes) -> tuple[ConfigFacts | None, str | None]:
    """``(facts, None)`` for an image config; ``(None, why not)`` for anything else."""
    try:
        document = json.loads(bytes(data).decode("utf-8"))
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    except (ValueError, RecursionError) as err:  # JSONDecodeError, over-long integers, deep nesting
        return None, f"not valid JSON ({type(err).__name__})"
    if not isinstance(document, dict):
        return None, "not a JSON object"
    rootfs = document.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        return None, "no rootfs.diff_ids list"
    for index, diff_id in enumerate(diff_ids):
        if not is_digest(diff_id):
            return None, f"rootfs.diff_ids[{index}] is not sha256:<64 lowercase hex>"
    history = document.get("history")
    created_by = []
    if isinstance(history, list):
        for entry in history:
            line = _text(entry.get("created_by")) if isinstance(entry, dict) else None
            created_by.append(line or "")
    inner = document.get("config")
    labels_in = inner.get("Labels") if isinstance(inner, dict) else None
    labels = {}
    if isinstance(labels_in, dict):
        for key in sorted(labels_in)[:LABELS_KEPT]:
            value = _text(labels_in[key])
            if value is not None:
                labels[_text(key)] = value
    head = created_by[:HISTORY_KEPT]
    # The last lines whatever the count: they overlap the head when there are fewer than twice
    # HISTORY_KEPT, and `.history_tail[-1]` is the last step even for a one-line history.
    tail = created_by[-HISTORY_KEPT:]
    return (
        ConfigFacts(
            diff_ids=tuple(diff_ids),
            os=_text(document.get("os"), 64),
            architecture=_text(document.get("architecture"), 64),
            variant=_text(document.get("variant"), 64),
            created=_text(document.get("created"), 64),
            history_head=tuple(head),
            history_tail=tuple(tail),
            history_count=len(created_by),
            labels=labels,
        ),
        None,
    )


@dataclass(frozen=True)
class ManifestFacts:
    """A manifest or index found stored as a blob: its type, its config (image manifests) and every
    sha256 digest it names (config, layers, blobSums, child manifests)."""

    media_type: str
    config: str | None
    references: tuple[str, ...]


def parse_manifest_facts(data: bytes) -> ManifestFacts | None:
    """The strict parser's reading of a JSON blob as a manifest; None for anything it refuses."""
    from pipeline.core.manifests import parse_manifest

    try:
        manifest = parse_manifest(bytes(data))
    except Exception:  # ManifestError, and whatever hostile JSON makes the parser refuse
        return None
    named = [d for d in (*manifest.blobs, *manifest.children) if d.algorithm == "sha256" and is_digest(d.digest)]
    configs = [d.digest for d in named if d.role == "config"]
    return ManifestFacts(
        media_type=manifest.media_type,
        config=configs[0] if len(configs) == 1 else None,
        references=tuple(dict.fromkeys(d.digest for d in named)),
    )


@dataclass(frozen=True)
class Sniffed:
    """What one object turned out to be.

    ``kind`` is ``config`` (``config`` set), ``manifest`` (``manifest`` set) or ``layer``. A layer's ``compression`` is
    ``gzip``, ``zstd`` or None (an uncompressed tar, whose diff_id is its own digest and
    is left None here: the read's digest is it). ``diff_id`` is None when ``problem``
    says why it could not be computed.
    """

    kind: str
    compression: str | None = None
    diff_id: str | None = None
    uncompressed_size: int | None = None
    problem: str | None = None
    config: ConfigFacts | None = None
    manifest: ManifestFacts | None = None


class _TooLarge(Exception):
    pass


class _Output:
    """SHA-256 and size of decompressed output, refusing more than ``limit`` bytes."""

    def __init__(self, limit: int | None):
        self.sha256 = hashlib.sha256()
        self.size = 0
        self._limit = limit

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self._limit is not None and self.size > self._limit:
            raise _TooLarge
        self.sha256.update(data)
        return len(data)


class _Gunzip:
    """Streaming gzip over every member (as Go's ``gzip.Reader`` reads layers), bounded output."""

    name = GZIP

    def __init__(self, output: _Output, decompressobj: Callable[[int], Any]):
        self._output = output
        self._decompressobj = decompressobj
        self._stream = decompressobj(31)
        self._between = b""  # bytes after a member's end, until they show a next member
        self.problem: str | None = None

    def feed(self, data: bytes) -> None:
        while data:
            if self._stream is None:
                self._between += data
                if len(self._between) < len(GZIP_MAGIC):
                    return
                if not self._between.startswith(GZIP_MAGIC):
                    raise ValueError(
                        f"{len(self._between)}+ bytes after the end of the gzip stream are not another gzip member"
                    )
                data, self._between = self._between, b""
                self._stream = self._decompressobj(31)
            stream = self._stream
            out = stream.decompress(data, OUTPUT_STEP)
            self._output.write(out)
            # A full step may leave output inside the decompressor with no input pending.
            while len(out) == OUTPUT_STEP and not stream.unconsumed_tail and not stream.eof:
                out = stream.decompress(b"", OUTPUT_STEP)
                self._output.write(out)
            if stream.eof:
                data = stream.unused_data
                self._stream = None
            else:
                data = stream.unconsumed_tail

    def finish(self) -> None:
        if self._stream is not None:
            raise ValueError("the gzip stream ends before its last member is complete (truncated)")
        if self._between:
            raise ValueError(f"{len(self._between)} stray byte(s) after the end of the gzip stream")


class _Unzstd:
    """Streaming zstd over every frame; the writer hands output on in ``OUTPUT_STEP`` pieces."""

    name = ZSTD

    def __init__(self, output: _Output):
        self._writer = zstandard.ZstdDecompressor().stream_writer(output, write_size=OUTPUT_STEP)

    def feed(self, data: bytes) -> None:
        self._writer.write(data)

    def finish(self) -> None:
        self._writer.flush()


def default_inflate() -> tuple[str, Callable[[int], Any]]:
    """zlib-ng when installed (the ``recovery`` extra), else zlib.

    tests/bench/bench_recovery.py on a gzip -6 layer: zlib-ng's inflate takes a third less
    CPU than zlib's for the whole recovery read, and beats python-isal too (docs/recovery.md).
    """
    try:
        from zlib_ng import zlib_ng
    except ImportError:
        return "zlib", zlib.decompressobj
    return "zlib-ng", zlib_ng.decompressobj


class ChunkObserver(Protocol):
    """What a read loop feeds: every chunk it hashes, and ``reset()`` when it restarts from byte 0."""

    def update(self, chunk: bytes) -> None: ...

    def reset(self) -> None: ...


def output_cap(stored_size: int) -> int:
    """The most output worth decompressing for one object: gzip never expands more than about
    1032:1, so no honest gzip layer reaches 1100x; zstd bombs (far higher ratios) stop there."""
    return max(64 * 1024 * 1024, 1100 * stored_size)


_UNDECIDED, _CONFIG, _LAYER, _DONE = range(4)


class LayerSniffer:
    """Fed by one read: ``update(chunk)`` per chunk hashed, ``reset()`` when the read restarts
    from byte 0, ``result()`` at the end (None: neither a config nor a layer)."""

    def __init__(
        self,
        *,
        max_output_bytes: int | None = None,
        config_cap: int = CONFIG_CAP,
        decompressobj: Callable[[int], Any] | None = None,
    ):
        self._max_output = max_output_bytes
        self._config_cap = config_cap
        self._decompressobj = decompressobj or default_inflate()[1]
        self.reset()

    def reset(self) -> None:
        self._state = _UNDECIDED
        self._buffer = bytearray()
        self._decoder: _Gunzip | _Unzstd | None = None
        self._output: _Output | None = None
        self._outcome: Sniffed | None = None
        self._finished = False

    def update(self, chunk: bytes) -> None:
        if self._state == _DONE or not chunk:
            return
        if self._state == _UNDECIDED:
            self._buffer += chunk
            if len(self._buffer) >= HEAD_BYTES:
                self._decide()
            return
        if self._state == _CONFIG:
            if len(self._buffer) + len(chunk) > self._config_cap:
                self._drop()
            else:
                self._buffer += chunk
            return
        self._decode(chunk)

    def result(self) -> Sniffed | None:
        if self._finished:
            return self._outcome
        self._finished = True
        if self._state == _UNDECIDED:
            self._decide()
        if self._state == _CONFIG:
            facts, _ = parse_config_facts(self._buffer)
            if facts:
                self._outcome = Sniffed(CONFIG, config=facts)
            else:
                manifest = parse_manifest_facts(self._buffer)
                self._outcome = Sniffed(MANIFEST, manifest=manifest) if manifest else None
            self._drop()
        elif self._state == _LAYER:
            try:
                self._decoder.finish()
            except Exception as err:
                self._fail(err)
            if self._state == _LAYER:
                self._outcome = Sniffed(
                    LAYER,
                    compression=self._decoder.name,
                    diff_id="sha256:" + self._output.sha256.hexdigest(),
                    uncompressed_size=self._output.size,
                )
                self._state = _DONE
        return self._outcome

    # --- internals -----------------------------------------------------------------------

    def _decide(self) -> None:
        head = bytes(self._buffer[:HEAD_BYTES])
        if head.startswith(GZIP_MAGIC) or head.startswith(ZSTD_MAGIC):
            self._output = _Output(self._max_output)
            if head.startswith(GZIP_MAGIC):
                self._decoder = _Gunzip(self._output, self._decompressobj)
            else:
                self._decoder = _Unzstd(self._output)
            self._state = _LAYER
            buffered, self._buffer = bytes(self._buffer), bytearray()
            self._decode(buffered)
        elif head.lstrip(JSON_WHITESPACE).startswith(b"{") and len(self._buffer) <= self._config_cap:
            self._state = _CONFIG
        elif head[TAR_MAGIC_AT:HEAD_BYTES] == TAR_MAGIC:
            self._outcome = Sniffed(LAYER)
            self._drop()
        else:
            self._drop()

    def _decode(self, data: bytes) -> None:
        try:
            self._decoder.feed(data)
        except Exception as err:
            self._fail(err)

    def _fail(self, err: Exception) -> None:
        if isinstance(err, _TooLarge):
            problem = f"decompresses to more than {self._max_output:,} bytes; diff_id not computed"
        elif isinstance(err, ValueError):  # ours: truncated, or stray bytes after the stream
            problem = str(err)
        else:  # zlib.error, isal's and zstandard's errors: the bytes are not a valid stream
            problem = f"not a valid {self._decoder.name} stream: {err}"
        self._outcome = Sniffed(LAYER, compression=self._decoder.name, problem=problem)
        self._drop()

    def _drop(self) -> None:
        self._state = _DONE
        self._buffer = bytearray()
        self._decoder = None
