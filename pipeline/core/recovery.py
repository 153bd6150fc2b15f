"""Image recovery from blobs alone, and the diff_id check of every manifest (pure: no I/O, no Beam).

The inputs are plain dicts, built from what ``layer_sniff`` saw in verified reads:

* a layer fact: ``{bucket, object, digest, size, compression, diff_id, uncompressed_size, problem}``
  (``compression`` None: an uncompressed tar, whose diff_id is its own digest);
* a config fact: ``{bucket, object, digest, size, facts: ConfigFacts}``;
* an image: ``{image, repository, manifest_digest, tags, config, layers}``, one per image
  manifest a manifest source served (``image_of_record``).

Recovery joins configs to layers by diff_id and, per config, reconstructs the image
manifest that the registry lost. Which media types it writes (the rule, documented in
docs/recovery.md): Docker schema 2 unless a layer is zstd-compressed, because the
gzip layers in a GCR bucket were pushed by ``docker push`` (or ``gcloud builds``),
which writes Docker schema 2; Docker schema 2 has no zstd layer type, so any zstd
layer makes it an OCI image manifest. The blobs and their digests are the same either way.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from pipeline.core import media_types
from pipeline.core.findings import Kind, finding
from pipeline.core.layer_sniff import GZIP, LAYER, MANIFEST, ZSTD, ConfigFacts, Sniffed
from pipeline.core.manifests import INDEX_TYPES, sha256_of
from pipeline.core.media_types import DOCKER_CONFIG, DOCKER_MANIFEST, OCI_CONFIG, OCI_MANIFEST

Row = dict[str, Any]

DOCKER_LAYER = {GZIP: media_types.DOCKER_LAYER_GZIP, None: media_types.DOCKER_LAYER}
OCI_LAYER = {GZIP: media_types.OCI_LAYER_GZIP, ZSTD: media_types.OCI_LAYER_ZSTD, None: media_types.OCI_LAYER}
# Images a recovered row names when several manifests share its config.
IMAGES_KEPT = 20

CONFIG_ROLE = "config"
LAYER_ROLE = "layer"
MANIFEST_ROLE = "manifest"  # a manifest stored as a blob: evidence for reclaim's second guard, not recovery


# --- from what the read saw -------------------------------------------------------------


def sniffed_fact(bucket: str, object_name: str, digest: str, size: int, sniffed: Sniffed) -> tuple[str, Row]:
    """``(kind, fact)`` for an object whose read verified its digest; kind is ``config``, ``layer`` or ``manifest``."""
    base = {"bucket": bucket, "object": object_name, "digest": digest, "size": size}
    if sniffed.kind == MANIFEST:
        facts = sniffed.manifest
        return MANIFEST_ROLE, {
            **base,
            "media_type": facts.media_type,
            "config": facts.config,
            "references": list(facts.references),
        }
    if sniffed.kind == LAYER:
        return LAYER_ROLE, {
            **base,
            "compression": sniffed.compression,
            # An uncompressed layer is its own diff: the digest the read just verified.
            "diff_id": sniffed.diff_id if sniffed.compression else digest,
            "uncompressed_size": sniffed.uncompressed_size if sniffed.compression else size,
            "problem": sniffed.problem,
        }
    return CONFIG_ROLE, {**base, "facts": sniffed.config}


def image_of_record(record: dict[str, Any]) -> Row | None:
    """The image a parsed manifest record describes: its config and its layers in order (None for an index)."""
    if record.get("status") != "ok" or record.get("media_type") in INDEX_TYPES:
        return None
    configs = [digest for role, digest, _, _ in record["blobs"] if role == CONFIG_ROLE]
    if len(configs) != 1:
        return None  # schema 1 names no config
    return {
        "image": f"{record['repository']}@{record['digest']}",
        "repository": record["repository"],
        "manifest_digest": record["digest"],
        "tags": list(record["tags"]),
        "config": configs[0],
        "layers": [digest for role, digest, _, _ in record["blobs"] if role == LAYER_ROLE],
        # From a `role: successor` source: a registry that keeps its own copies of the blobs.
        "successor": bool(record.get("successor")),
    }


# --- recovery: configs joined to layers by diff_id ---------------------------------------


def config_wants(config: Row) -> list[tuple[str, tuple[str, int]]]:
    """``(diff_id, (config digest, index))`` for every layer the config lists."""
    return [(diff_id, (config["digest"], index)) for index, diff_id in enumerate(config["facts"].diff_ids)]


def choose_layer(layers: Iterable[Row]) -> Row | None:
    """One blob for a diff_id: several blobs (compressed differently) may hold the same diff.
    gzip first, so that the image stays expressible as Docker schema 2; then the lowest digest."""
    usable = [layer for layer in layers if layer["diff_id"] and not layer["problem"]]
    if not usable:
        return None
    return min(usable, key=lambda layer: (layer["compression"] == ZSTD, layer["digest"]))


def place_layers(
    diff_id: str, wants: Iterable[tuple[str, int]], layers: Iterable[Row]
) -> tuple[list[tuple[str, tuple[int, str, Row | None]]], list[Row]]:
    """One diff_id's join: ``(config digest, (index, diff_id, layer or None))`` for every config
    that wants it, and the layers no config wants (candidate orphans)."""
    wants, layers = list(wants), list(layers)
    chosen = choose_layer(layers)
    placed = [(config_digest, (index, diff_id, chosen)) for config_digest, index in wants]
    return placed, [] if wants else layers


def manifest_format(layers: Iterable[Row]) -> str:
    """``docker`` or ``oci`` for a recovered image (see the module docstring)."""
    return "oci" if any(layer["compression"] == ZSTD for layer in layers) else "docker"


def build_manifest(config_digest: str, config_size: int, layers: list[Row], form: str) -> bytes:
    """The image manifest for a config and its layers, in ``form`` (``docker`` or ``oci``)."""
    oci = form == "oci"
    layer_types = OCI_LAYER if oci else DOCKER_LAYER
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
        "config": {"mediaType": OCI_CONFIG if oci else DOCKER_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [
            {"mediaType": layer_types[layer["compression"]], "digest": layer["digest"], "size": layer["size"]}
            for layer in layers
        ],
    }
    return (json.dumps(document, indent=3) + "\n").encode()


def as_oci(manifest: bytes) -> bytes:
    """The same image as an OCI image manifest (same blobs, OCI media types): what an OCI layout holds."""
    document = json.loads(manifest)
    if document.get("mediaType") == OCI_MANIFEST:
        return manifest
    compression = {v: k for k, v in DOCKER_LAYER.items()}
    document["mediaType"] = OCI_MANIFEST
    document["config"]["mediaType"] = OCI_CONFIG
    for layer in document["layers"]:
        layer["mediaType"] = OCI_LAYER[compression[layer["mediaType"]]]
    return (json.dumps(document, indent=3) + "\n").encode()


def recover_image(
    config: Row,
    placed: Iterable[tuple[int, str, Row | None]],
    registry_images: Iterable[str] = (),
    successor_images: Iterable[str] = (),
) -> tuple[Row, bytes | None]:
    """The recovered row for one config, and its reconstructed manifest when every layer was found."""
    facts: ConfigFacts = config["facts"]
    by_index = {index: layer for index, _, layer in placed}
    layers = [by_index.get(index) for index in range(len(facts.diff_ids))]
    found = [layer for layer in layers if layer is not None]
    missing = [diff_id for diff_id, layer in zip(facts.diff_ids, layers, strict=True) if layer is None]
    images = sorted(set(registry_images))
    kept_elsewhere = sorted(set(successor_images))
    manifest = None
    row: Row = {
        "config_digest": config["digest"],
        "bucket": config["bucket"],
        "object": config["object"],
        "config_size": config["size"],
        "os": facts.os,
        "architecture": facts.architecture,
        "variant": facts.variant,
        "created": facts.created,
        "history_head": list(facts.history_head),
        "history_tail": list(facts.history_tail),
        "history_count": facts.history_count,
        "labels": dict(facts.labels),
        "layer_count": len(facts.diff_ids),
        "layers_found": len(found),
        "total_size": sum(layer["size"] for layer in found),
        "uncompressed_size": sum(layer["uncompressed_size"] or 0 for layer in found),
        "complete": not missing,
        "missing_diff_ids": missing,
        "in_registry": images[0] if images else None,
        "in_registry_images": images[:IMAGES_KEPT],
        # Only a successor keeps its own copies of the blobs: the image outlives the bucket there.
        "in_successor": kept_elsewhere[0] if kept_elsewhere else None,
        "manifest_media_type": None,
        "manifest_digest": None,
        "layers": [
            {key: layer[key] for key in ("digest", "size", "bucket", "object", "compression", "diff_id")}
            for layer in found
        ],
    }
    if not missing:
        form = manifest_format(found)
        manifest = build_manifest(config["digest"], config["size"], found, form)
        row["manifest_media_type"] = OCI_MANIFEST if form == "oci" else DOCKER_MANIFEST
        row["manifest_digest"] = sha256_of(manifest)
    return row, manifest


def orphan_row(layer: Row) -> Row:
    """A layer whose diff_id no config lists and whose digest no manifest names: no image can use it."""
    return {
        "bucket": layer["bucket"],
        "object": layer["object"],
        "digest": layer["digest"],
        "size": layer["size"],
        "compression": layer["compression"],
        "diff_id": layer["diff_id"],
        "detail": "true orphan: no config in the scanned buckets lists its diff_id and no manifest names it",
    }


# --- diff_id consistency (what ``crane validate`` checks) ----------------------------------


def _named(images: list[Row]) -> dict[str, Any]:
    named: dict[str, Any] = {
        "images": sorted({i["image"] for i in images}),
        "tags": sorted({t for i in images for t in i["tags"]}),
    }
    owners = {(i["repository"], i["manifest_digest"]) for i in images}
    if len(owners) == 1:
        named["repository"], named["manifest_digest"] = next(iter(owners))
    return named


def diff_id_expectations(
    config_digest: str, configs: Iterable[Row], images: Iterable[Row]
) -> tuple[list[tuple[str, Row]], list[Row]]:
    """For the images whose config is in the bucket: ``(layer digest, expectation)`` per layer,
    and a ``diff_id_mismatch`` for each image whose layer count differs from the config's."""
    configs, images = list(configs), list(images)
    if not configs or not images:
        return [], []
    diff_ids = configs[0]["facts"].diff_ids
    expectations, rows = [], []
    for image in images:
        if len(image["layers"]) != len(diff_ids):
            rows.append(
                finding(
                    Kind.DIFF_ID_MISMATCH,
                    bucket=configs[0]["bucket"],
                    object=configs[0]["object"],
                    digest=config_digest,
                    expected=str(len(diff_ids)),
                    actual=str(len(image["layers"])),
                    **_named([image]),
                    detail=f"{image['image']} has {len(image['layers'])} layer(s); "
                    f"its config {config_digest} lists {len(diff_ids)} diff_id(s)",
                )
            )
            continue
        for index, (layer, diff_id) in enumerate(zip(image["layers"], diff_ids, strict=True)):
            expectations.append((layer, {**image, "index": index, "expected": diff_id, "config": config_digest}))
    return expectations, rows


def check_diff_ids(
    layer_digest: str, expectations: Iterable[Row], layers: Iterable[Row], blobs: Iterable[Row]
) -> list[Row]:
    """``diff_id_mismatch`` rows for one layer blob: what it decompresses to against what each config expects.

    Only for a blob that was read intact: a missing or damaged blob is already its own finding.
    A blob that is not gzip or zstd is its own diff (an uncompressed layer).
    """
    expectations, layers = list(expectations), list(layers)
    intact = [blob for blob in blobs if blob.get("intact")]
    if not expectations or not intact:
        return []
    layer = layers[0] if layers else None
    actual = layer["diff_id"] if layer else layer_digest
    where = layer or intact[0]
    groups: dict[str, list[Row]] = {}
    for expectation in expectations:
        if expectation["expected"] not in (actual, layer_digest):
            groups.setdefault(expectation["expected"], []).append(expectation)
    rows = []
    for expected, group in sorted(groups.items()):
        places = sorted({f"layer {e['index']} of {e['image']}" for e in group})
        if layer and layer["problem"]:
            what = f"cannot be decompressed ({layer['problem']})"
        else:
            what = f"decompresses to {actual}"
        rows.append(
            finding(
                Kind.DIFF_ID_MISMATCH,
                bucket=where["bucket"],
                object=where["object"],
                digest=layer_digest,
                size=where["size"],
                expected=expected,
                actual=actual,
                **_named(group),
                detail=f"{'; '.join(places[:5])}{' …' if len(places) > 5 else ''}: the blob {what}; "
                f"config {group[0]['config']} lists {expected}",
            )
        )
    return rows


# --- what the summary says ----------------------------------------------------------------

RECOVERY_COLUMNS = (
    "configs",
    "complete",
    "not_in_registry",
    "not_in_registry_complete",
    "not_in_registry_bytes",
    "orphan_layers",
    "orphan_bytes",
)


def recovered_counts(row: Row) -> Counter:
    """One recovered row's share of the summary's ``recovery`` counts."""
    lost = row["in_registry"] is None
    return Counter(
        {
            "configs": 1,
            "complete": int(row["complete"]),
            "not_in_registry": int(lost),
            "not_in_registry_complete": int(lost and row["complete"]),
            "not_in_registry_bytes": row["total_size"] + row["config_size"] if lost else 0,
        }
    )


def orphan_counts(row: Row) -> Counter:
    return Counter({"orphan_layers": 1, "orphan_bytes": row["size"] or 0})


def recovery_table(counts: Counter) -> dict[str, int]:
    return {column: counts[column] for column in RECOVERY_COLUMNS}


def recovery_lines(table: dict[str, int]) -> list[str]:
    """The terminal summary's lines for a run with ``scan.recover_images``."""
    if not table or not (table.get("configs") or table.get("orphan_layers")):
        return []
    return [
        f"recovery: {table['configs']} image config(s), {table['complete']} with every layer; "
        f"{table['not_in_registry']} in no manifest source ({table['not_in_registry_complete']} complete, "
        f"{table['not_in_registry_bytes'] / 1e6:.1f} MB): lost if the bucket goes, see recovered-*.jsonl",
        f"  {table['orphan_layers']} true orphan layer(s), {table['orphan_bytes'] / 1e6:.1f} MB: in no config, "
        "no manifest",
    ]


# --- what report.html shows -----------------------------------------------------------------

PAGE_ROWS = 50


def page_section(summary: Row, recovered: Iterable[Row], limit: int = PAGE_ROWS) -> Row | None:
    """The page's recovery section: the summary's counts and the images that would be lost, largest
    complete ones first, at most ``limit`` (streamed: never more than ``limit`` rows held)."""
    table = summary.get("recovery") or {}
    if not table.get("configs") and not table.get("orphan_layers"):
        return None
    import heapq

    kept: list = []
    for index, row in enumerate(recovered):
        if row.get("in_registry") is not None:
            continue
        key = (bool(row.get("complete")), row.get("total_size") or 0, -index)
        shown = {
            "config_digest": row.get("config_digest"),
            "created": row.get("created"),
            "platform": "/".join(str(row[k]) for k in ("os", "architecture", "variant") if row.get(k)),
            "complete": bool(row.get("complete")),
            "missing": len(row.get("missing_diff_ids") or ()),
            "layers": row.get("layer_count"),
            "size": row.get("total_size") or 0,
            "last_step": (row.get("history_tail") or row.get("history_head") or [None])[-1],
            "labels": sorted(f"{k}={v}" for k, v in (row.get("labels") or {}).items())[:3],
        }
        if len(kept) < limit:
            heapq.heappush(kept, (key, index, shown))
        else:
            heapq.heappushpop(kept, (key, index, shown))
    rows = [shown for _, _, shown in sorted(kept, reverse=True)]
    return {"counts": dict(table), "rows": rows, "omitted": max((table.get("not_in_registry") or 0) - len(rows), 0)}
