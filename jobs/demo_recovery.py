"""The demo's post-shutdown cases (docs/recovery.md): a lost image and a migrated one.

* A lost-manifest image: its config and layers are in the demo bucket, and no manifest
  source knows it. Recovery (``scan.recover_images``) rebuilds it; its blobs are
  ``unreferenced_blob`` in the findings.
* The successor registry: manifest files as Artifact Registry serves them, under
  ``gs://demo-manifests/us-docker.pkg.dev/demo-project/gcr/`` (a source with
  ``role: successor``). One image was migrated (its blobs are in the bucket); a newer
  one was pushed after the migration, so its blobs never were: ``in_registry_only``,
  info, not ``missing_blob``.
"""

from __future__ import annotations

import json

from jobs.images import Image, make_image, random_layer, sha256_digest
from pipeline.core.findings import Kind

MANIFEST_BUCKET = "demo-manifests"
SUCCESSOR = "us-docker.pkg.dev/demo-project/gcr"


def lost_image() -> Image:
    return make_image(
        [random_layer(seed=41, size=200_000), random_layer(seed=42, size=60_000)], oci=False, label="lost"
    )


def plant_recovery(client, migrated: Image, upload_blob, planted_cls) -> list:
    """Plant both cases; ``migrated`` is a demo image whose blobs are already in the bucket."""
    planted = []
    # Found by recovery, not by a finding: recovered-*.jsonl has its row (lost_config_digest()).
    for digest, data in lost_image().blobs.items():
        upload_blob(digest, data)

    newer = make_image([random_layer(seed=43, size=80_000)], oci=False, label="pushed after the migration")
    bucket = client.lookup_bucket(MANIFEST_BUCKET) or client.create_bucket(MANIFEST_BUCKET)
    folder = f"{SUCCESSOR}/worker"
    for image in (migrated, newer):
        bucket.blob(f"{folder}/{image.digest}").upload_from_string(image.manifest)
    tags = {"v1": migrated.digest, "v2": newer.digest}
    bucket.blob(f"{folder}/tags.json").upload_from_string(json.dumps(tags))
    for digest in newer.blobs:  # no object in the bucket: the finding is found by its digest
        planted.append(
            planted_cls(
                digest,
                Kind.IN_REGISTRY_ONLY,
                f"blob of {SUCCESSOR}/worker:v2, pushed after the migration: only the successor holds it",
            )
        )
    return planted


def lost_config_digest() -> str:
    return sha256_digest(lost_image().config)


# --- the decommission verdict (docs/recovery.md, "Read the verdict") ------------------------------

ASIA_BUCKET = "asia.artifacts.demo-project.appspot.com"  # every image migrated: safe_to_delete
US_BUCKET = "us.artifacts.demo-project.appspot.com"  # one image only here: would_lose_images
ASIA_SUCCESSOR = "asia-docker.pkg.dev/demo-project/gcr"
US_SUCCESSOR = "us-docker.pkg.dev/demo-project/us-gcr"


def only_here_image() -> Image:
    return make_image([random_layer(seed=63, size=70_000)], oci=False, label="reports, never migrated")


def plant_verdicts(client) -> list[str]:
    """Two more buckets, each beside its successor's manifests: one whose every image was migrated
    (safe to delete), one that also holds an image no registry has (deleting it would lose that image).
    Returns what a person should expect of each."""
    manifests = client.lookup_bucket(MANIFEST_BUCKET) or client.create_bucket(MANIFEST_BUCKET)
    billing = make_image([random_layer(seed=61, size=90_000)], oci=True, label="billing")
    reports = make_image([random_layer(seed=62, size=50_000)], oci=False, label="reports")
    for bucket_name, successor, migrated, extra in (
        (ASIA_BUCKET, ASIA_SUCCESSOR, billing, None),
        (US_BUCKET, US_SUCCESSOR, reports, only_here_image()),
    ):
        bucket = client.lookup_bucket(bucket_name) or client.create_bucket(bucket_name)
        for image in (migrated, extra):
            for digest, data in image.blobs.items() if image else ():
                bucket.blob(f"containers/images/{digest}").upload_from_string(data)
        manifests.blob(f"{successor}/app/{migrated.digest}").upload_from_string(migrated.manifest)
        manifests.blob(f"{successor}/app/tags.json").upload_from_string(json.dumps({"v1": migrated.digest}))
    return [
        f"{ASIA_BUCKET}: every image is in {ASIA_SUCCESSOR}: expect verdict safe_to_delete",
        f"{US_BUCKET}: image {sha256_digest(only_here_image().config)} is in no registry: "
        "expect verdict would_lose_images",
    ]
