"""What the scan knows about one object: as listed, and as read."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.compat import StrEnum


@dataclass(frozen=True)
class ListedObject:
    """An object as the bucket listing described it. ``crc32c`` is GCS's base64 form;
    ``time_created`` and ``updated`` are RFC 3339 text as GCS writes them."""

    bucket: str
    name: str
    generation: int | None
    size: int
    crc32c: str | None = None
    storage_class: str | None = None
    time_created: str | None = None
    updated: str | None = None


class ReadFailure(StrEnum):
    VANISHED = "vanished"
    UNREADABLE = "unreadable"
    # Complete reads that disagreed with each other, none matching the name.
    UNSTABLE = "unstable"


@dataclass(frozen=True)
class ReadResult:
    """The outcome of streaming one object through SHA-256 and crc32c.

    On success ``sha256`` (hex) and ``crc32c`` (base64, as GCS writes it) describe
    the ``size`` bytes of a complete read: one that hashed to the object's name,
    or one confirmed by a second complete read that agreed with it. On failure
    ``failure`` says how, ``http_status`` and ``reason`` say why. ``attempts``
    counts requests, ``reads`` the complete reads among them; ``server_crc32c``
    is the crc32c of an ``x-goog-hash`` header that came with the bytes.
    """

    sha256: str | None = None
    crc32c: str | None = None
    size: int = 0
    failure: ReadFailure | None = None
    http_status: int | None = None
    reason: str | None = None
    attempts: int = 1
    reads: int = 0
    server_crc32c: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None
