"""Real container images built with plain Python: gzipped tar layers, config blobs, manifests.

The demo seeds a bucket with them, and the tests push them to a real registry.
Everything is deterministic for a given seed, so digests are stable across runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
import zlib
from dataclasses import dataclass, field

from pipeline.core.media_types import (  # noqa: F401  (re-exported: the tests build images with them)
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Layer:
    blob: bytes  # the gzipped tar, as stored in a registry
    diff_id: str  # digest of the uncompressed tar, as the config's rootfs lists it

    @property
    def digest(self) -> str:
        return sha256_digest(self.blob)


@dataclass
class Image:
    """One single-platform image: its config, layers and manifest bytes."""

    config: bytes
    layers: list[Layer]
    manifest: bytes
    media_type: str
    blobs: dict[str, bytes] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def config_digest(self) -> str:
        return sha256_digest(self.config)


def make_layer(files: dict[str, bytes]) -> Layer:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return Layer(blob=gzip_bytes(tar_bytes), diff_id=sha256_digest(tar_bytes))


def gzip_bytes(data: bytes) -> bytes:
    """A gzip stream whose bytes, and so whose digest, are the same on every supported Python:
    gzip.compress writes its own header on 3.10 and 3.12+ but zlib's on 3.11, so the demo's
    digests (and the incremental sample they draw) would differ with the Python that made them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip wrapper with mtime 0, written by zlib
    return packer.compress(data) + packer.flush()


def random_layer(seed: int, size: int, files: int = 3) -> Layer:
    """A layer of incompressible files adding up to about ``size`` bytes."""
    rng = random.Random(seed)
    per_file = max(1, size // files)
    return make_layer({f"app/data-{seed}-{i}.bin": rng.randbytes(per_file) for i in range(files)})


def make_image(
    layers: list[Layer], *, oci: bool = True, architecture: str = "amd64", os_name: str = "linux", label: str = ""
) -> Image:
    config = canonical_json(
        {
            "architecture": architecture,
            "os": os_name,
            "config": {"Labels": {"org.registry-scrub.demo": label}} if label else {},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        }
    )
    layer_type = OCI_LAYER_GZIP if oci else DOCKER_LAYER_GZIP
    media_type = OCI_MANIFEST if oci else DOCKER_MANIFEST
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {
                "mediaType": OCI_CONFIG if oci else DOCKER_CONFIG,
                "digest": sha256_digest(config),
                "size": len(config),
            },
            "layers": [{"mediaType": layer_type, "digest": layer.digest, "size": len(layer.blob)} for layer in layers],
        }
    )
    blobs = {sha256_digest(config): config, **{layer.digest: layer.blob for layer in layers}}
    return Image(config=config, layers=layers, manifest=manifest, media_type=media_type, blobs=blobs)


def make_index(images: list[tuple[Image, str, str]], *, oci: bool = True) -> bytes:
    """An index (OCI) or manifest list (Docker) over ``(image, os, architecture)``."""
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX if oci else DOCKER_MANIFEST_LIST,
            "manifests": [
                {
                    "mediaType": image.media_type,
                    "digest": image.digest,
                    "size": len(image.manifest),
                    "platform": {"os": os_name, "architecture": arch},
                }
                for image, os_name, arch in images
            ],
        }
    )


def with_layer_size(image: Image, index: int, size: int) -> Image:
    """The same image whose manifest declares layer ``index`` with a wrong ``size`` (a new manifest digest)."""
    document = json.loads(image.manifest)
    document["layers"][index]["size"] = size
    return Image(
        config=image.config,
        layers=image.layers,
        manifest=canonical_json(document),
        media_type=image.media_type,
        blobs=dict(image.blobs),
    )


def write_oci_layout(path, manifests: list[tuple[bytes, str, str | None]], blobs: dict[str, bytes]) -> None:
    """An OCI image layout: ``index.json`` over ``(manifest bytes, media type, tag)`` plus every blob.

    Manifests named in ``blobs`` too (index children) are written as blobs but not listed.
    """
    from pathlib import Path

    root = Path(path)
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    entries = []
    for data, media_type, tag in manifests:
        blobs = {**blobs, sha256_digest(data): data}
        entry = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
        if tag:
            entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
        entries.append(entry)
    for digest, data in blobs.items():
        (root / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data)
    (root / "index.json").write_bytes(canonical_json({"schemaVersion": 2, "manifests": entries}))


def write_dir_layout(path, manifest: bytes, blobs: dict[str, bytes], instances: dict[str, bytes] | None = None) -> None:
    """A skopeo ``dir:`` layout: ``manifest.json``, blobs named by hex, and for a manifest list
    each instance's manifest as ``<hex>.manifest.json``. Use it for Docker media types,
    which skopeo cannot read from an ``oci:`` layout."""
    from pathlib import Path

    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    (root / "version").write_text("Directory Transport Version: 1.1\n")
    (root / "manifest.json").write_bytes(manifest)
    for digest, data in blobs.items():
        (root / digest.split(":", 1)[1]).write_bytes(data)
    for digest, data in (instances or {}).items():
        (root / f"{digest.split(':', 1)[1]}.manifest.json").write_bytes(data)
