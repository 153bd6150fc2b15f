"""The embedded default: local emulated GCR buckets with demo images and planted problems.

``registry-scrub demo`` starts ``gcp-storage-emulator`` on a free loopback port,
seeds ``artifacts.demo-project.appspot.com`` with the blobs of a few real images
and the problems below, and ``eu.artifacts.demo-project.appspot.com`` with images
whose manifests are all known plus two orphans (the reclaim plan's), scans both
with the local runner, and leaves the report under the current directory. Then it changes the
bucket (a blob rewritten, one pushed, one deleted) and scans it again incrementally, against
the first run as its ledger, so the second summary shows what changed (docs/incremental.md).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jobs import interrupt
from jobs.emulator import Emulator
from jobs.images import Image, make_image, random_layer, sha256_digest
from pipeline.adapters import gcs
from pipeline.config import load_config
from pipeline.core.findings import Kind
from pipeline.core.summary import format_summary

log = logging.getLogger(__name__)

DEMO_BUCKET = "artifacts.demo-project.appspot.com"
PREFIX = "containers/images/"
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "config" / "local.yaml"


@dataclass(frozen=True)
class Planted:
    """A problem the demo plants, and the finding kind a scan must report for it."""

    object: str
    kind: Kind
    story: str


def demo_images() -> list[Image]:
    """Three small images (OCI and Docker media types), about 3 MB of blobs in all."""
    base = random_layer(seed=1, size=900_000)
    return [
        make_image([base, random_layer(seed=2, size=600_000)], oci=True, label="web"),
        make_image([base, random_layer(seed=3, size=500_000)], oci=False, label="worker"),
        make_image([random_layer(seed=4, size=700_000), random_layer(seed=5, size=40_000)], oci=True, label="batch"),
    ]


def blob_name(digest: str) -> str:
    return PREFIX + digest


def seed_demo(emulator: Emulator, bucket: str = DEMO_BUCKET) -> list[Planted]:
    """Upload the demo blobs and plant one of each object-level problem; returns what was planted."""
    client = gcs.make_client(emulator.endpoint)
    target = client.bucket(bucket)
    if not target.exists():
        target = client.create_bucket(bucket)

    images = demo_images()
    blobs: dict[str, bytes] = {}
    for image in images:
        blobs.update(image.blobs)
    for digest, content in blobs.items():
        target.blob(blob_name(digest)).upload_from_string(content)

    planted: list[Planted] = []
    flipped_layer = images[0].layers[1]
    truncated_layer = images[1].layers[1]
    misnamed_layer = images[2].layers[0]

    # Damage after the write: GCS's stored crc32c no longer matches the bytes.
    path = emulator.object_path(bucket, blob_name(flipped_layer.digest))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    planted.append(
        Planted(
            blob_name(flipped_layer.digest),
            Kind.DIGEST_MISMATCH,
            "one bit flipped on disk after upload (crc32c disagrees)",
        )
    )

    # A bad write: the truncated bytes were uploaded, so the crc32c agrees with them.
    target.blob(blob_name(truncated_layer.digest)).upload_from_string(truncated_layer.blob[:-1000])
    planted.append(
        Planted(
            blob_name(truncated_layer.digest),
            Kind.DIGEST_MISMATCH,
            "uploaded truncated by 1,000 bytes (crc32c agrees: written wrong)",
        )
    )

    # A gzipped layer stored under its uncompressed digest, a classic mix-up.
    target.blob(blob_name(misnamed_layer.diff_id)).upload_from_string(misnamed_layer.blob)
    planted.append(
        Planted(
            blob_name(misnamed_layer.diff_id),
            Kind.DIGEST_MISMATCH,
            "gzipped layer stored under its uncompressed (diff_id) digest",
        )
    )

    empty_under = sha256_digest(b"not empty")
    target.blob(blob_name(empty_under)).upload_from_string(b"")
    planted.append(
        Planted(blob_name(empty_under), Kind.DIGEST_MISMATCH, "zero-byte object under a non-empty digest name")
    )

    for name, story in (
        (PREFIX + "upload-in-progress.tmp", "a stray temporary file"),
        (PREFIX + "sha256:" + "AB" * 32, "upper-case hex digest"),
    ):
        target.blob(name).upload_from_string(b"stray")
        planted.append(Planted(name, Kind.MALFORMED_NAME, story))

    # Manifest problems (README.md, "Manifest cross-check"): manifest files in the emulator, and legacy metadata.
    from jobs.demo_manifests import plant_legacy, plant_manifests, plant_reclaimable

    def upload_blob(digest: str, content: bytes) -> None:
        target.blob(blob_name(digest)).upload_from_string(content)

    planted += plant_manifests(client, images, upload_blob, Planted)
    from jobs.demo_recovery import plant_recovery  # docs/recovery.md: a lost image, a successor registry

    planted += plant_recovery(client, images[1], upload_blob, Planted)
    planted += plant_legacy(target, images, Planted)
    planted += plant_reclaimable(client, Planted)
    from jobs.demo_recovery import plant_verdicts  # docs/recovery.md, "Read the verdict"

    for expectation in plant_verdicts(client):
        log.info("demo: seeded %s", expectation)
    return planted


def run_demo(
    config_path: str | None, overrides: dict[str, tuple[Any, str]], beam_args: list[str], keep_dir: str | None = None
) -> dict[str, Any]:
    from jobs.launcher import run_scan

    config_file = config_path or DEFAULT_CONFIG
    with tempfile.TemporaryDirectory(prefix="registry-scrub-demo-") as scratch:
        # os._exit on an interrupt skips the cleanup of this with-block.
        token = interrupt.on_interrupt("the demo's emulator data", lambda: shutil.rmtree(scratch, ignore_errors=True))
        with Emulator(keep_dir or scratch) as emulator:
            overrides = {"source.emulator_endpoint": (emulator.endpoint, "the demo's emulator"), **overrides}
            config = load_config(config_file, overrides)
            log.info("demo: gcp-storage-emulator on %s, seeding gs://%s", emulator.endpoint, DEMO_BUCKET)
            planted = seed_demo(emulator)
            for item in planted:
                log.info("demo: planted %s -> expect %s (%s)", item.object, item.kind.value, item.story)
            try:
                first = run_scan(config, beam_args)
                if first is None:  # a dry run: nothing ran, nothing to compare
                    return first
                print(format_summary(first), flush=True)
                return rescan(emulator, config, first, beam_args)
            finally:
                interrupt.done(token)


def change_demo_bucket(emulator: Emulator, bucket: str = DEMO_BUCKET) -> list[str]:
    """Between the demo's two runs, change the bucket as time does: one blob rewritten (a new
    generation), one pushed, one deleted that an image still needs. Returns what was done."""
    client = gcs.make_client(emulator.endpoint)
    target = client.bucket(bucket)
    images = demo_images()
    rewritten = images[0].config_digest
    target.blob(blob_name(rewritten)).upload_from_string(images[0].config)
    pushed = random_layer(seed=6, size=300_000)
    target.blob(blob_name(pushed.digest)).upload_from_string(pushed.blob)
    deleted = images[2].layers[1]
    target.blob(blob_name(deleted.digest)).delete()
    return [
        f"rewrote {blob_name(rewritten)} (same bytes, a new generation)",
        f"pushed {blob_name(pushed.digest)} (a new layer no manifest names)",
        f"deleted {blob_name(deleted.digest)} (a layer the batch image still needs)",
    ]


def rescan(emulator: Emulator, config, first: dict[str, Any], beam_args: list[str]) -> dict[str, Any]:
    """The demo's second run: incremental against the first (report.ledger auto), after changing the bucket.

    Unchanged blobs are carried over without a read; the summary says what changed since the first run.
    """
    from jobs.launcher import run_scan

    for change in change_demo_bucket(emulator):
        log.info("demo: %s", change)
    second = replace(
        config,
        # recover_images reads every layer, which an incremental scan does not.
        scan=replace(config.scan, incremental=True, recover_images=False),
        report=replace(config.report, ledger="auto", run_id=f"{first['run_id']}-rescan"),
    )
    log.info("demo: scanning again, incrementally, against run %s", first["run_id"])
    return run_scan(second, beam_args)
