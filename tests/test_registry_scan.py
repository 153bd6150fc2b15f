"""Against a real registry (docker-registry 2.8.2, images pushed with skopeo) and the real GCS emulator.

The blobs are copied into an emulated bucket in GCR layout, damage is made on the
bucket or on the registry's disk, and whole scans (the real Beam runner, in memory)
must report each problem with the right kind and the affected image named.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from jobs.images import make_image, make_index, random_layer
from jobs.launcher import run_scan
from pipeline.adapters import gcs
from pipeline.adapters import registry as registry_mod
from pipeline.adapters.registry import RegistryClient, RegistryError
from pipeline.config import parse_config
from pipeline.core.manifests import OCI_MANIFEST, sha256_of
from tests.registry_fixtures import Registry, copy_blobs_to_bucket

BEAM_ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
_seed = iter(range(1000, 2000))


def image(oci: bool, arch: str = "amd64"):
    """A small image with layers of its own (no blob shared with another test image)."""
    return make_image([random_layer(next(_seed), 4000), random_layer(next(_seed), 2500)], oci=oci, architecture=arch)


def scan(emulator, bucket_name: str, out: Path, registry_url: str, **scan_keys):
    config = parse_config(
        {
            "source": {"buckets": [bucket_name], "emulator_endpoint": emulator.endpoint},
            "scan": {"read_concurrency": 4, **scan_keys},
            "report": {"output": str(out), "run_id": "run"},
            "manifests": {"sources": [{"registry": registry_url}], "requests_per_second": 500},
        },
        "test",
    )
    summary = run_scan(config, BEAM_ARGS)
    rows = [
        json.loads(line)
        for path in sorted((out / "run").glob("findings-*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    return summary, rows


def new_bucket(emulator, name: str):
    client = gcs.make_client(emulator.endpoint)
    return client.lookup_bucket(name) or client.create_bucket(name)


def test_client_reads_a_real_registry(registry, monkeypatch):
    oci, docker = image(True), image(False)
    registry.push(oci, "app/oci", "v1")
    registry.push(docker, "app/docker", "v1")
    registry.push(image(True), "app/third", "v1")
    monkeypatch.setattr(registry_mod, "CATALOG_PAGE", 2)  # make the registry paginate with Link
    client = RegistryClient(registry.url, requests_per_second=1000)
    assert list(client.catalog()) == ["app/docker", "app/oci", "app/third"]
    assert client.tags_list("app/oci")["tags"] == ["v1"]
    assert client.resolve("app/oci", "v1") == oci.digest
    fetched = client.fetch_manifest("app/oci", oci.digest)
    assert fetched.data == oci.manifest and fetched.header_digest == oci.digest
    assert fetched.media_type == OCI_MANIFEST
    assert client.fetch_manifest("app/docker", docker.digest).data == docker.manifest
    with pytest.raises(RegistryError) as err:
        client.fetch_manifest("app/oci", sha256_of(b"nothing"))
    assert err.value.status == 404 and "MANIFEST_UNKNOWN" in err.value.reason


@pytest.mark.slow
def test_clean_registry_yields_no_error_findings(registry, emulator, tmp_path):
    registry.push(image(True), "clean/oci", "v1")
    registry.push(image(False), "clean/docker", "v1")
    registry.push_index(
        [(image(True), "linux", "amd64"), (image(True, "arm64"), "linux", "arm64")],
        "clean/oci-multi",
        "latest",
        oci=True,
    )
    registry.push_index(
        [(image(False), "linux", "amd64"), (image(False, "arm64"), "linux", "arm64")],
        "clean/docker-multi",
        "latest",
        oci=False,
    )
    bucket = new_bucket(emulator, "artifacts.clean-project.appspot.com")
    copied = copy_blobs_to_bucket(registry, bucket)
    summary, rows = scan(emulator, bucket.name, tmp_path, registry.url)
    assert [r for r in rows if r["severity"] == "error"] == []
    assert [r for r in rows if r["kind"] == "unreferenced_blob"] == []
    assert (
        summary["exit_status"] == 0 and summary["objects_verified"] == len(copied) == 18
    )  # 6 images x (config + 2 layers)
    assert summary["manifests_scanned"] == 8  # 2 images + 2 indexes + 4 children
    assert summary["images_affected"] == 0
    assert set(summary["repositories"]) == {
        f"{registry.host}/clean/{r}" for r in ("oci", "docker", "oci-multi", "docker-multi")
    }


@pytest.fixture(scope="module")
def damaged(tmp_path_factory, emulator):
    """One registry and bucket with four planted problems, shared by the scans of this module."""
    work = tmp_path_factory.mktemp("damaged")
    with Registry(work / "registry") as reg:
        healthy, missing, corrupt, edited = image(True), image(True), image(False), image(True)
        kids = [image(True), image(True, "arm64")]
        docker_kids = [image(False), image(False, "arm64")]
        reg.push(healthy, "ok/app", "v1")
        reg.push(missing, "bad/missing-layer", "v1")
        reg.push(corrupt, "bad/corrupt-layer", "v1")
        reg.push(edited, "bad/edited-manifest", "v1")
        index = reg.push_index(
            [(kids[0], "linux", "amd64"), (kids[1], "linux", "arm64")], "bad/missing-child", "latest", oci=True
        )
        reg.push_index(
            [(docker_kids[0], "linux", "amd64"), (docker_kids[1], "linux", "arm64")],
            "ok/docker-multi",
            "latest",
            oci=False,
        )
        bucket = new_bucket(emulator, "artifacts.damaged-project.appspot.com")
        copy_blobs_to_bucket(reg, bucket)

        # 1. A layer removed from the bucket.
        bucket.blob(f"containers/images/{missing.layers[0].digest}").delete()
        # 2. A layer corrupted in the bucket behind GCS's back (same size, one bit flipped).
        path = emulator.object_path(bucket.name, f"containers/images/{corrupt.layers[1].digest}")
        data = bytearray(path.read_bytes())
        data[100] ^= 0x10
        path.write_bytes(bytes(data))
        # 3. A manifest edited on the registry's disk (it never re-hashes what it serves).
        blob = reg.blob_data(edited.digest)
        blob.write_bytes(blob.read_bytes().replace(b'"layers":[', b'"layers": [', 1))
        # 4. A child manifest of an index missing from its repository.
        shutil.rmtree(reg.revision_link("bad/missing-child", kids[1].digest))

        yield {
            "registry": reg,
            "bucket": bucket.name,
            "healthy": healthy,
            "missing": missing,
            "corrupt": corrupt,
            "edited": edited,
            "kids": kids,
            "index": sha256_of(index),
            "work": work,
        }


def _one(rows, kind, **match):
    found = [r for r in rows if r["kind"] == kind and all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (kind, match, [(r["kind"], r["digest"]) for r in rows])
    return found[0]


@pytest.mark.slow
def test_damage_is_reported_with_the_affected_image(damaged, emulator):
    reg = damaged["registry"]
    host = reg.host
    summary, rows = scan(emulator, damaged["bucket"], damaged["work"] / "both", reg.url)

    missing = damaged["missing"]
    row = _one(rows, "missing_blob", digest=missing.layers[0].digest)
    assert row["images"] == [f"{host}/bad/missing-layer@{missing.digest}"]
    assert row["tags"] == [f"{host}/bad/missing-layer:v1"]
    assert row["size"] == len(missing.layers[0].blob)

    corrupt = damaged["corrupt"]
    row = _one(rows, "digest_mismatch", digest=corrupt.layers[1].digest)
    assert row["images"] == [f"{host}/bad/corrupt-layer@{corrupt.digest}"]
    assert row["crc32c_match"] is False and "breaks 1 image(s)" in row["detail"]
    # The one manifest that needs the damaged blob is named, with the object as listed.
    assert row["repository"] == f"{host}/bad/corrupt-layer" and row["manifest_digest"] == corrupt.digest
    assert row["tags"] == [f"{host}/bad/corrupt-layer:v1"] and row["generation"] and row["crc32c"]

    edited = damaged["edited"]
    row = _one(rows, "manifest_digest_mismatch", manifest_digest=edited.digest)
    assert row["repository"] == f"{host}/bad/edited-manifest" and row["expected"] == edited.digest
    assert row["actual"] != edited.digest

    child = damaged["kids"][1]
    row = _one(rows, "manifest_unavailable", manifest_digest=child.digest)
    assert row["http_status"] == 404
    assert row["images"] == sorted(
        [f"{host}/bad/missing-child@{child.digest}", f"{host}/bad/missing-child@{damaged['index']}"]
    )
    assert row["tags"] == [f"{host}/bad/missing-child:latest"]

    # Nothing else is an error: the healthy images and the Docker manifest list are clean.
    errors = [r for r in rows if r["severity"] == "error"]
    assert len(errors) == 4
    assert not any("/ok/" in image for r in errors for image in r["images"] or [])
    # The missing child's blobs look unreferenced; nothing is reclaimable, and the summary says why.
    orphans = {r["digest"] for r in rows if r["kind"] == "unreferenced_blob"}
    assert orphans == set(child.blobs)
    assert summary["unreferenced_bytes"] == sum(map(len, child.blobs.values()))
    assert summary["reclaimable_bytes"] is None and summary["reclaim_plan"] is None
    codes = {b["code"]: b for b in summary["reclaim_blocked_by"]}
    assert sorted(codes) == ["incomplete_source", "unread_manifests"]
    assert codes["unread_manifests"]["manifests"] == sorted(
        [f"{host}/bad/edited-manifest@{edited.digest}", f"{host}/bad/missing-child@{child.digest}"]
    )
    assert summary["images_affected"] == 5 and summary["exit_status"] == 1
    assert summary["repositories"][f"{host}/bad/missing-layer"]["missing_blob"] == 1


@pytest.mark.slow
def test_manifests_only_mode_checks_existence_and_size_without_hashing(damaged, emulator):
    reg = damaged["registry"]
    summary, rows = scan(emulator, damaged["bucket"], damaged["work"] / "manifests", reg.url, mode="manifests")
    kinds = sorted(r["kind"] for r in rows if r["severity"] == "error")
    # No hashing: the corrupt layer (same size) goes unnoticed; everything manifest-side is found.
    assert kinds == ["manifest_digest_mismatch", "manifest_unavailable", "missing_blob"]
    assert summary["objects_verified"] == 0
    assert summary["objects_not_hashed"] == summary["objects_listed"] > 0
    assert summary["unaccounted_objects"] == 0
    assert summary["config"]["scan"]["mode"] == "manifests"


def test_index_declaring_a_wrong_child_size_is_reported(registry):
    """distribution accepts an index whose descriptor misstates a child's size; the scan must not."""
    import requests

    from pipeline.core import crosscheck as cc
    from pipeline.transforms.manifests import FetchManifestsFn

    kid = image(True)
    registry.push(kid, "lies/index", "kid")
    document = json.loads(make_index([(kid, "linux", "amd64")]))
    document["manifests"][0]["size"] += 7
    index = json.dumps(document).encode()
    answer = requests.put(
        f"{registry.url}/v2/lies/index/manifests/latest",
        data=index,
        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
        timeout=10,
    )
    assert answer.status_code == 201
    settings = parse_config(
        {
            "source": {"buckets": ["b-b-b"]},
            "manifests": {"sources": [{"registry": registry.url, "repositories": ["lies/index"]}]},
        },
        "test",
    ).manifests
    fn = FetchManifestsFn(settings.sources, settings, None)
    fn.setup()
    store = fn.store(0)
    requests_ = [r for unit in store.units() for r in store.enumerate(unit)]
    records = [record for request in requests_ for record in fn.process(request)]
    merged = {}
    for record in records:
        merged.setdefault((record["repository"], record["digest"]), []).append(record)
    rows = [row for group in merged.values() for row in cc.record_findings(cc.merge_records(group))]
    (row,) = rows
    assert row["kind"] == "size_mismatch" and row["digest"] == kid.digest
    assert row["expected"] == str(len(kid.manifest) + 7) and row["actual"] == str(len(kid.manifest))
    assert f"{registry.host}/lies/index@{sha256_of(index)}" in row["images"]
    assert row["tags"] == sorted([f"{registry.host}/lies/index:kid", f"{registry.host}/lies/index:latest"])
