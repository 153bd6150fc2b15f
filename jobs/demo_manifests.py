"""The demo's manifest sources: manifest files in the emulator (no registry needed) with planted problems.

``config/local.yaml`` points ``manifests.sources`` at two folders of ``gs://demo-manifests/``:
one folder per repository, each manifest named by its digest, tags in ``tags.json``.

* ``gcr.io/demo-project/`` for ``artifacts.demo-project.appspot.com``: the planted problems.
  It is *not* complete (an index's arm64 child manifest is not among the files), and some
  of its manifests cannot be verified, so no blob of that bucket is proven reclaimable.
* ``eu.gcr.io/demo-project/`` for ``eu.artifacts.demo-project.appspot.com``: every manifest
  whose blobs that bucket holds, untagged ones included, all intact. The config marks it
  ``complete: true``, which is true of what is planted, so its orphans go into reclaim-plan.txt.

A pre-2017 metadata folder (``containers/repositories/``) is planted in the demo bucket too.
"""

from __future__ import annotations

import json

from jobs.images import (
    Image,
    canonical_json,
    make_image,
    make_index,
    random_layer,
    sha256_digest,
    with_layer_size,
)
from pipeline.core.findings import Kind

MANIFEST_BUCKET = "demo-manifests"
REGISTRY = "gcr.io/demo-project"
ROOT = f"{REGISTRY}/"
EU_BUCKET = "eu.artifacts.demo-project.appspot.com"
EU_REGISTRY = "eu.gcr.io/demo-project"


def plant_manifests(client, images: list[Image], upload_blob, planted_cls) -> list:
    """Write the demo's manifest files and the blobs they need; returns the Planted problems.

    ``images`` are the demo's three images (web, worker, batch) whose blobs are already
    in the bucket; ``upload_blob(digest, bytes)`` adds a blob to the demo bucket.
    """
    bucket = client.lookup_bucket(MANIFEST_BUCKET) or client.create_bucket(MANIFEST_BUCKET)
    web, worker, batch = images
    planted = []

    def put(repo: str, data: bytes, digest: str | None = None, tags: tuple[str, ...] = ()) -> str:
        digest = digest or sha256_digest(data)
        bucket.blob(f"{ROOT}{repo}/{digest}").upload_from_string(data)
        if tags:
            bucket.blob(f"{ROOT}{repo}/tags.json").upload_from_string(json.dumps({tag: digest for tag in tags}))
        return digest

    # Healthy images: their blobs are all in the bucket (some damaged by the object-level demo).
    put("worker", worker.manifest, tags=("v1",))
    put("batch", batch.manifest, tags=("nightly",))

    # A tampered manifest: stored under web's digest, but one byte of the label differs.
    tampered = web.manifest.replace(b'{"config"', b'{"annotations":{"org.example.edited":"yes"},"config"', 1)
    assert tampered != web.manifest
    put("web", tampered, digest=web.digest, tags=("latest",))
    planted.append(
        planted_cls(
            f"{REGISTRY}/web@{web.digest}",
            Kind.MANIFEST_DIGEST_MISMATCH,
            "manifest edited after it was pushed (bytes no longer hash to its digest)",
        )
    )

    # A missing layer: the image's second layer was never uploaded.
    api = make_image([web.layers[0], random_layer(seed=21, size=300_000)], oci=True, label="api")
    for digest, data in api.blobs.items():
        if digest != api.layers[1].digest:
            upload_blob(digest, data)
    put("api", api.manifest, tags=("v2",))
    planted.append(
        planted_cls(
            f"{REGISTRY}/api@{api.digest}", Kind.MISSING_BLOB, f"layer {api.layers[1].digest[:19]}… was never uploaded"
        )
    )

    # A size mismatch: the manifest declares 100 bytes more than the layer has.
    cron_base = make_image([random_layer(seed=22, size=200_000)], oci=False, label="cron")
    cron = with_layer_size(cron_base, 0, len(cron_base.layers[0].blob) + 100)
    for digest, data in cron.blobs.items():
        upload_blob(digest, data)
    put("cron", cron.manifest, tags=("v1",))
    planted.append(
        planted_cls(
            f"{REGISTRY}/cron@{cron.digest}",
            Kind.SIZE_MISMATCH,
            "manifest declares the layer 100 bytes larger than it is",
        )
    )

    # An index with a missing child: the arm64 manifest is not among the files.
    amd64 = make_image([random_layer(seed=23, size=150_000)], oci=True, architecture="amd64", label="multi")
    arm64 = make_image([random_layer(seed=24, size=150_000)], oci=True, architecture="arm64", label="multi")
    index = make_index([(amd64, "linux", "amd64"), (arm64, "linux", "arm64")], oci=True)
    for digest, data in {**amd64.blobs, **arm64.blobs}.items():
        upload_blob(digest, data)
    put("multi", amd64.manifest)
    put("multi", index, tags=("latest",))
    planted.append(
        planted_cls(
            f"{REGISTRY}/multi@{arm64.digest}",
            Kind.MANIFEST_UNAVAILABLE,
            f"child of index {sha256_digest(index)[:19]}… (linux/arm64) is missing",
        )
    )

    # Orphans: blobs no manifest references. Not reclaimable here: this folder is not complete.
    for seed, size in ((31, 250_000), (32, 120_000)):
        layer = random_layer(seed=seed, size=size)
        upload_blob(layer.digest, layer.blob)
        planted.append(
            planted_cls(
                f"containers/images/{layer.digest}",
                Kind.UNREFERENCED_BLOB,
                f"orphan layer, {len(layer.blob):,} bytes; blocked: this bucket's manifest folder is incomplete",
            )
        )
    return planted


def plant_legacy(target, images: list[Image], planted_cls) -> list:
    """Pre-2017 metadata in the demo bucket: a schema 1 manifest, and v1 objects that are not manifests."""
    batch = images[2]
    schema1 = canonical_json(
        {
            "schemaVersion": 1,
            "name": "demo-project/legacy",
            "tag": "2016",
            "architecture": "amd64",
            "fsLayers": [{"blobSum": layer.digest} for layer in reversed(batch.layers)],
            "history": [{"v1Compatibility": "{}"} for _ in batch.layers],
        }
    )
    digest = sha256_digest(schema1)
    target.blob(f"containers/repositories/legacy/manifests/{digest}").upload_from_string(schema1)
    target.blob("containers/repositories/legacy/tags/2016").upload_from_string(digest)
    v1_index = "containers/repositories/legacy/_index_images"
    target.blob(v1_index).upload_from_string(b'[{"id": "5d2a..."')
    v1_tag = "containers/repositories/legacy/tag_2015"
    target.blob(v1_tag).upload_from_string("5d2a" * 16)
    damaged = "containers/repositories/legacy/manifests/2016-rc"
    target.blob(damaged).upload_from_string(b'{"schemaVersion": 2, "config": {"digest": "sha256:')
    return [
        planted_cls(damaged, Kind.INVALID_MANIFEST, "damaged pre-2017 manifest: it may hide references"),
        planted_cls(v1_index, Kind.LEGACY_METADATA_UNPARSED, "pre-2017 v1 image index: names v1 ids, not a manifest"),
        planted_cls(v1_tag, Kind.LEGACY_METADATA_UNPARSED, "pre-2017 v1 tag holding a v1 image id"),
    ]


def plant_reclaimable(client, planted_cls) -> list:
    """The EU bucket: two images, one of them untagged, every manifest in a complete folder, and two orphans.

    The untagged image's blobs must stay protected (referenced); only the orphans are
    reclaimable, and only because the folder is complete and every manifest in it is intact.
    """
    bucket = client.lookup_bucket(EU_BUCKET) or client.create_bucket(EU_BUCKET)
    manifests = client.lookup_bucket(MANIFEST_BUCKET) or client.create_bucket(MANIFEST_BUCKET)
    shop = make_image([random_layer(seed=41, size=300_000), random_layer(seed=42, size=90_000)], oci=True, label="shop")
    shop_old = make_image([random_layer(seed=43, size=200_000)], oci=False, label="shop-old")
    for image in (shop, shop_old):
        for digest, data in image.blobs.items():
            bucket.blob(f"containers/images/{digest}").upload_from_string(data)
        manifests.blob(f"{EU_REGISTRY}/shop/{image.digest}").upload_from_string(image.manifest)
    manifests.blob(f"{EU_REGISTRY}/shop/tags.json").upload_from_string(json.dumps({"v2": shop.digest}))
    planted = []
    for seed, size in ((44, 180_000), (45, 60_000)):
        layer = random_layer(seed=seed, size=size)
        bucket.blob(f"containers/images/{layer.digest}").upload_from_string(layer.blob)
        planted.append(
            planted_cls(
                f"containers/images/{layer.digest}",
                Kind.UNREFERENCED_BLOB,
                f"orphan layer in {EU_BUCKET}, {len(layer.blob):,} bytes, proven reclaimable",
            )
        )
    return planted
