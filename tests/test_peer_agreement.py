"""Peer agreement: registry-scrub's verdicts next to the tools users already trust, on the same images.

* distribution's garbage collector (Debian ``docker-registry garbage-collect --dry-run``) against
  our reclaim verdict: the same blobs, read from the registry's own disk, seeded into the
  emulated GCR bucket.
* ``crane validate`` (go-containerregistry) against our ``diff_id_mismatch``.
* ``skopeo inspect``, ``crane validate --tarball`` (and ``oci-image-tool validate``, where it can
  be installed) against ``registry-scrub export``.

Every peer is the real tool: the Debian packages (tests/system-deps.sh), and the Go tools built
by tests/install-peers.sh into ``~/.cache/registry-scrub/bin`` (``make test`` runs it; the
fixture runs it too when a binary is missing). Where the peers legitimately differ from us is
said at the assertion and in docs/reliability.md ("Checked against peer tools").
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import requests

from jobs.cli import main
from jobs.images import Image, Layer, canonical_json, make_image, random_layer, sha256_digest
from pipeline.adapters import gcs
from pipeline.core.reclaim import PLAN_FILE
from tests.registry_fixtures import (
    Registry,
    complete_directory_source,
    garbage_collect_dry_run,
    manifest_revisions,
    split_storage,
    upload_without_manifest,
)
from tests.support.buckets import PREFIX, fresh_bucket, seed_bucket
from tests.support.scans import scan

REPO = Path(__file__).resolve().parents[1]
INSTALL_PEERS = REPO / "tests" / "install-peers.sh"
_seed = iter(range(7000, 8000))


# --- the peers ------------------------------------------------------------------------------


def peers_bin_dir() -> Path:
    """The folder tests/install-peers.sh fills (it prints it); built on first use, then cached."""
    given = os.environ.get("REGISTRY_SCRUB_PEERS_BIN")
    if given:
        return Path(given)
    done = subprocess.run(["bash", str(INSTALL_PEERS)], capture_output=True, text=True, timeout=1200, check=False)
    assert done.returncode == 0, f"tests/install-peers.sh failed (make test runs it):\n{done.stderr}"
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def crane() -> str:
    binary = peers_bin_dir() / "crane"
    assert binary.is_file(), f"{binary} is missing after tests/install-peers.sh"
    return str(binary)


@pytest.fixture(scope="module")
def oci_image_tool() -> str:
    folder = peers_bin_dir()
    binary = folder / "oci-image-tool"
    if not binary.is_file():
        why = folder / "oci-image-tool.unavailable"
        reason = why.read_text().strip() if why.exists() else "tests/install-peers.sh did not install it"
        pytest.skip(f"oci-image-tool cannot be installed here, so its view is not checked: {reason}")
    return str(binary)


def run_tool(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(list(command), capture_output=True, text=True, timeout=300, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done


def skopeo(*args: str) -> subprocess.CompletedProcess:
    return run_tool(shutil.which("skopeo"), *args)


# --- 1. distribution's garbage collector against our reclaim verdict -------------------------


@pytest.fixture(scope="module")
def collected_registry(tmp_path_factory):
    """A registry after a season of pushes and deletes, before its garbage collector has run.

    * team/web: ``old`` pushed as v1, then ``new`` pushed as v1: ``old`` is untagged but still a
      revision (pullable by digest), so the collector keeps its blobs.
    * team/api: ``keep`` (v1) shares its base layer with ``gone`` (v2); ``gone`` is deleted
      through the API, so its own layer and config are eligible, the shared base is not.
    * team/old: ``retired`` (v1), deleted; it shares a layer with ``gone``: eligible, since
      nothing kept needs it.
    * team/multi: an OCI index over two platforms, then the index alone is deleted: its
      children stay revisions, untagged, and their blobs are kept.
    * a layer uploaded to team/api by a push that never sent its manifest.
    """
    work = tmp_path_factory.mktemp("gc")
    base, shared_by_deleted = random_layer(next(_seed), 3000), random_layer(next(_seed), 2500)
    images = {
        "old": make_image([base, random_layer(next(_seed), 1500)], oci=False, label="old"),
        "new": make_image([base, random_layer(next(_seed), 1500)], oci=False, label="new"),
        "keep": make_image([base, random_layer(next(_seed), 1200)], label="keep"),
        "gone": make_image([base, shared_by_deleted], label="gone"),
        "retired": make_image([shared_by_deleted, random_layer(next(_seed), 1800)], oci=False, label="retired"),
        "amd64": make_image([random_layer(next(_seed), 1000)], label="amd64"),
        "arm64": make_image([random_layer(next(_seed), 1000)], architecture="arm64", label="arm64"),
    }
    reg = Registry(work / "registry").start()
    try:
        reg.push(images["old"], "team/web", "v1")
        reg.push(images["new"], "team/web", "v1")
        reg.push(images["keep"], "team/api", "v1")
        reg.push(images["gone"], "team/api", "v2")
        reg.push(images["retired"], "team/old", "v1")
        index = reg.push_index(
            [(images["amd64"], "linux", "amd64"), (images["arm64"], "linux", "arm64")], "team/multi", "v1", oci=True
        )
        for repo, digest in [
            ("team/api", images["gone"].digest),
            ("team/old", images["retired"].digest),
            ("team/multi", sha256_digest(index)),
        ]:
            deleted = requests.delete(f"{reg.url}/v2/{repo}/manifests/{digest}", timeout=10)
            assert deleted.status_code == 202, f"DELETE {repo}@{digest}: {deleted.status_code} {deleted.text}"
        stray = random_layer(next(_seed), 2200)
        upload_without_manifest(reg, "team/api", stray.blob)
        yield reg, images, sha256_digest(index), stray.digest
    finally:
        reg.stop()


def deleted_images_own_blobs(images: dict[str, Image], stray: str) -> set[str]:
    """What the collector should delete, from how the images were built: gone's and retired's
    configs and their own layers, and the stray upload; not the base layer gone shares with
    keep, old and new."""
    gone, retired = images["gone"], images["retired"]
    return {gone.config_digest, retired.config_digest, gone.layers[1].digest, retired.layers[1].digest, stray}


def untagged_images_own_blobs(images: dict[str, Image]) -> set[str]:
    """The blobs only untagged manifests need: team/web's old and team/multi's two children."""
    untagged = {d for name in ("amd64", "arm64") for d in images[name].blobs}
    return untagged | (set(images["old"].blobs) - set(images["new"].blobs))


@pytest.mark.slow
def test_a_complete_source_reclaims_exactly_what_the_garbage_collector_deletes(collected_registry, emulator, tmp_path):
    reg, images, index_digest, stray = collected_registry
    layers_and_configs, manifests = split_storage(reg)
    everything_pushed = {image.digest for image in images.values()} | {index_digest}
    assert manifests == everything_pushed  # deleted manifests keep their blob until a collection
    eligible = garbage_collect_dry_run(reg)

    # The collector also names the blobs of the three deleted manifests. They are not in a GCR
    # bucket (GCR keeps manifests in its database), so the comparison is over configs and layers.
    assert eligible & manifests == {images["gone"].digest, images["retired"].digest, index_digest}
    gc_layers = eligible & set(layers_and_configs)
    assert gc_layers == deleted_images_own_blobs(images, stray)
    assert eligible == gc_layers | (eligible & manifests)

    bucket, generations = seed_bucket(emulator, "artifacts.gc-agree.appspot.com", layers_and_configs)
    directory = complete_directory_source(reg, tmp_path / "manifests")
    source = {"directory": str(directory), "repository": reg.host, "bucket": bucket.name, "complete": True}
    summary, rows, run_dir = scan(emulator, bucket.name, tmp_path / "out", [source])

    assert summary["findings_by_severity"]["error"] == 0
    assert summary["manifests_scanned"] == len(manifest_revisions(reg)) == 5  # old, new, keep, 2 children
    assert {r["digest"] for r in rows if r["kind"] == "unreferenced_blob"} == gc_layers
    assert summary["reclaim_blocked_by"] == []
    # Where we differ by design (issue 17): the deleted manifests' images are still whole in the
    # bucket (config and every layer), and nothing tells a deliberate deletion from a lost manifest.
    # The second guard keeps them out of the plan and names them; the stray upload is no image.
    gone, retired = images["gone"], images["retired"]
    held = {gone.config_digest, gone.layers[1].digest, retired.config_digest, retired.layers[1].digest}
    protected = summary["reclaim_protected"]
    assert {i["config_digest"] for i in protected["images"]} == {gone.config_digest, retired.config_digest}
    assert protected["objects"] == len(held)
    plan = (run_dir / PLAN_FILE).read_text().splitlines()
    assert sorted(plan) == [f"gs://{bucket.name}/{PREFIX}{stray}#{generations[PREFIX + stray]}"]

    # Named as accepted losses, the plan is exactly the collector's.
    summary, rows, run_dir = scan(
        emulator, bucket.name, tmp_path / "accepted", [source], sections={"reclaim": {"accept_losing": "all"}}
    )
    assert summary["reclaimable_bytes"] == sum(layers_and_configs[d].stat().st_size for d in gc_layers)
    plan = (run_dir / PLAN_FILE).read_text().splitlines()
    assert sorted(plan) == sorted(f"gs://{bucket.name}/{PREFIX}{d}#{generations[PREFIX + d]}" for d in gc_layers)

    # Where we legitimately differ: ``--delete-untagged`` also deletes untagged manifests, and
    # with them the blobs only they need. They are still pullable by digest until someone
    # deletes them, and our source holds them, so we keep those blobs.
    with_untagged = garbage_collect_dry_run(reg, "--delete-untagged") & set(layers_and_configs)
    assert with_untagged - gc_layers == untagged_images_own_blobs(images)


@pytest.mark.slow
def test_a_catalog_walk_refuses_to_reclaim_what_the_garbage_collector_would_delete(
    collected_registry, emulator, tmp_path
):
    """By design, not a disagreement to fix: the collector reads the registry's own storage, where
    every revision is visible; the registry API cannot list untagged manifests, so a catalog walk
    cannot tell "referenced by nothing" from "referenced by a manifest I cannot see". Here it
    cannot see team/web's ``old`` nor team/multi's two children, which the collector keeps."""
    reg, images, _, stray = collected_registry
    layers_and_configs, _ = split_storage(reg)
    eligible = garbage_collect_dry_run(reg) & set(layers_and_configs)
    assert eligible == deleted_images_own_blobs(images, stray)  # the collector would delete these

    bucket, _ = seed_bucket(emulator, "artifacts.gc-catalog.appspot.com", layers_and_configs)
    summary, rows, run_dir = scan(emulator, bucket.name, tmp_path / "out", [{"registry": reg.url}])

    invisible = untagged_images_own_blobs(images)
    unreferenced = {r["digest"] for r in rows if r["kind"] == "unreferenced_blob"}
    assert unreferenced == eligible | invisible
    assert not invisible & garbage_collect_dry_run(reg)  # what only we list, the collector keeps
    # ... so nothing is called reclaimable, not even the blobs both tools would delete.
    assert summary["reclaimable_bytes"] is None and summary["reclaim_plan"] is None
    assert not (run_dir / PLAN_FILE).exists()
    assert {b["code"] for b in summary["reclaim_blocked_by"]} == {"incomplete_source"}
    assert summary["reclaim_by_bucket"][bucket.name]["reclaim_proven"] is False


# --- 2. crane validate against our diff_id check ---------------------------------------------


def with_diff_ids(image: Image, diff_ids: list[str]) -> Image:
    """The same layers under a config that lists ``diff_ids`` (so a new config and manifest)."""
    config_doc = json.loads(image.config)
    config_doc["rootfs"]["diff_ids"] = diff_ids
    config = canonical_json(config_doc)
    manifest_doc = json.loads(image.manifest)
    manifest_doc["config"].update(digest=sha256_digest(config), size=len(config))
    blobs = {d: b for d, b in image.blobs.items() if d != image.config_digest}
    blobs[sha256_digest(config)] = config
    return Image(config, image.layers, canonical_json(manifest_doc), image.media_type, blobs)


@pytest.mark.slow
def test_crane_validate_and_our_diff_id_check_flag_the_same_images(crane, registry, emulator, tmp_path):
    healthy = make_image([random_layer(next(_seed), 2000), random_layer(next(_seed), 1500)], oci=False)
    layers = [random_layer(next(_seed), 2000), random_layer(next(_seed), 1500)]
    stranger = random_layer(next(_seed), 1000)
    # layer 1 decompresses to something else than the config says
    wrong = with_diff_ids(make_image(layers, oci=False), [layers[0].diff_id, stranger.diff_id])
    # the config lists one diff_id more than the manifest has layers
    extra_layers = [random_layer(next(_seed), 1800)]
    extra = with_diff_ids(make_image(extra_layers), [extra_layers[0].diff_id, stranger.diff_id])
    # a gzip stream cut in half, stored (and named) as it is: it decompresses to nothing whole
    whole = random_layer(next(_seed), 4000)
    cut = make_image([Layer(blob=whole.blob[: len(whole.blob) // 2], diff_id=whole.diff_id)], oci=False)
    # a whole gzip stream of bytes that are no tar archive, with the right diff_id: consistent
    # digests, but no filesystem a runtime could unpack
    noise = random.Random(next(_seed)).randbytes(3000)
    not_tar = make_image([Layer(blob=gzip.compress(noise, mtime=0), diff_id=sha256_digest(noise))], oci=False)
    # Go's gzip reader, like ours, reads every member of a stream, and refuses bytes after the
    # last member that do not start another one.
    tar = gzip.decompress(random_layer(next(_seed), 3000).blob)
    members = gzip.compress(tar[:1000], mtime=0) + gzip.compress(tar[1000:], mtime=0)
    two_members = make_image([Layer(blob=members, diff_id=sha256_digest(tar))], oci=False)
    padded = make_image([Layer(blob=gzip.compress(tar, mtime=0) + bytes(512), diff_id=sha256_digest(tar))], oci=False)
    pushed = {
        "app/healthy": healthy,
        "app/members": two_members,
        "app/wrong": wrong,
        "app/extra": extra,
        "app/cut": cut,
        "app/padded": padded,
        "app/notar": not_tar,
    }
    for repo, image in pushed.items():
        registry.push(image, repo, "v1")

    crane_errors = {}
    for repo in pushed:
        done = run_tool(crane, "validate", "--insecure", "--remote", f"{registry.host}/{repo}:v1", check=False)
        if done.returncode != 0:
            crane_errors[f"{registry.host}/{repo}@{pushed[repo].digest}"] = done.stdout + done.stderr
    in_registry = {digest: registry.blob_data(digest) for digest in registry.layer_digests()}
    bucket, _ = seed_bucket(emulator, "artifacts.crane-agree.appspot.com", in_registry)
    summary, rows, _ = scan(emulator, bucket.name, tmp_path / "out", [{"registry": registry.url}], recover_images=True)

    mismatches = [r for r in rows if r["kind"] == "diff_id_mismatch"]
    flagged = {image for r in mismatches for image in r["images"]}
    expected = {
        f"{registry.host}/app/{name}@{image.digest}"
        for name, image in [("wrong", wrong), ("extra", extra), ("cut", cut), ("padded", padded)]
    }
    assert flagged == expected
    # Where crane goes further: it also reads each layer as a tar archive (and refuses duplicate
    # paths). Our check is about digests: the layer decompresses to its diff_id, so it passes.
    not_tar_ref = f"{registry.host}/app/notar@{not_tar.digest}"
    assert set(crane_errors) == expected | {not_tar_ref}
    assert "validating layers: archive/tar: invalid tar header" in crane_errors[not_tar_ref]
    assert summary["findings_by_kind"]["diff_id_mismatch"] == 4
    (padded_row,) = [r for r in mismatches if r["repository"] == f"{registry.host}/app/padded"]
    assert (padded_row["digest"], padded_row["actual"]) == (padded.layers[0].digest, None)
    assert "bytes after the end of the gzip stream are not another gzip member" in padded_row["detail"]
    assert "validating layers: gzip: invalid header" in crane_errors[f"{registry.host}/app/padded@{padded.digest}"]
    # The broken stream: crane cannot gunzip it, we cannot either (no diff_id to compare).
    (cut_row,) = [r for r in mismatches if r["repository"] == f"{registry.host}/app/cut"]
    assert (cut_row["digest"], cut_row["expected"], cut_row["actual"]) == (cut.layers[0].digest, whole.diff_id, None)
    assert "cannot be decompressed (the gzip stream ends before its last member is complete" in cut_row["detail"]
    # crane words it as a short read: gunzip hit the end of the stored bytes before the stream's end.
    assert "undersized layer[0] content" in crane_errors[f"{registry.host}/app/cut@{cut.digest}"]
    # The same layer, the same claimed diff_id, the same real one.
    (layer_row,) = [r for r in mismatches if r["repository"] == f"{registry.host}/app/wrong"]
    assert (layer_row["digest"], layer_row["expected"], layer_row["actual"]) == (
        layers[1].digest,
        stranger.diff_id,
        layers[1].diff_id,
    )
    said = crane_errors[f"{registry.host}/app/wrong@{wrong.digest}"]
    assert f"mismatched layer[1] diffid: DiffID()={stranger.diff_id}, " in said
    assert f"SHA256(Gunzip(Compressed()))={layers[1].diff_id}" in said
    # The same counts: 2 diff_ids for 1 layer.
    (count_row,) = [r for r in mismatches if r["repository"] == f"{registry.host}/app/extra"]
    assert (count_row["digest"], count_row["expected"], count_row["actual"]) == (extra.config_digest, "2", "1")
    said = crane_errors[f"{registry.host}/app/extra@{extra.digest}"]
    assert "mismatched fs layers (1) and diff ids (2)" in said


# --- 3. skopeo and oci-image-tool on our export ----------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory, emulator):
    """A lost image (blobs in the bucket, no manifest anywhere), recovered and exported."""
    work = tmp_path_factory.mktemp("peer-export")
    image = make_image([random_layer(next(_seed), 5000), random_layer(next(_seed), 2500)], oci=False, label="peer")
    bucket = fresh_bucket(gcs.make_client(emulator.endpoint), "artifacts.peer-export.appspot.com")
    for digest, data in image.blobs.items():
        bucket.blob(PREFIX + digest).upload_from_string(data)
    summary, _, run_dir = scan(emulator, bucket.name, work / "out", [], recover_images=True)
    assert summary["recovery"]["complete"] == 1
    (row,) = [json.loads(line) for p in run_dir.glob("recovered-*.jsonl") for line in p.read_text().splitlines()]
    layout = work / "layout"
    assert main(["export", str(run_dir), row["config_digest"], "--to", str(layout), "--tag", "v1"]) == 0
    return image, row, layout


def test_skopeo_reads_our_export_with_the_digests_we_computed(exported):
    """test_export.py pushes the export through a registry; this is skopeo's own reading of
    the layout on disk, compared with the recovered row (what we computed from the bucket)."""
    image, row, layout = exported
    raw = json.loads(skopeo("inspect", "--raw", f"oci:{layout}:v1").stdout)
    inspected = json.loads(skopeo("inspect", f"oci:{layout}:v1").stdout)
    config = skopeo("inspect", "--config", "--raw", f"oci:{layout}:v1").stdout.encode()
    assert raw["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert raw["config"]["digest"] == sha256_digest(config) == row["config_digest"] == image.config_digest
    ours = [layer["digest"] for layer in row["layers"]]
    assert ours == [layer.digest for layer in image.layers]
    assert [layer["digest"] for layer in raw["layers"]] == inspected["Layers"] == ours
    assert json.loads(config)["rootfs"]["diff_ids"] == [layer["diff_id"] for layer in row["layers"]]


@pytest.mark.slow
def test_crane_validates_our_export_in_full(exported, crane, tmp_path):
    """crane validate reads a ``docker save`` tarball, not an OCI layout: skopeo converts the
    layout (it stores layers decompressed, with the same config), and crane checks every
    digest and every diff_id of it against the config we exported."""
    image, row, layout = exported
    tarball = tmp_path / "image.tar"
    skopeo("copy", "--quiet", f"oci:{layout}:v1", f"docker-archive:{tarball}:recovered/peer:v1")
    done = run_tool(crane, "validate", "--tarball", str(tarball))
    assert done.stdout.startswith(f"PASS: {tarball}")
    with tarfile.open(tarball) as archive:
        (entry,) = json.load(archive.extractfile("manifest.json"))
        config = archive.extractfile(entry["Config"]).read()
    assert sha256_digest(config) == row["config_digest"] == image.config_digest
    assert json.loads(config)["rootfs"]["diff_ids"] == [layer.diff_id for layer in image.layers]
    # skopeo stored the layers decompressed, named by the diff_ids we computed
    assert entry["Layers"] == [layer["diff_id"].split(":", 1)[1] + ".tar" for layer in row["layers"]]


def test_oci_image_tool_validates_our_export(exported, oci_image_tool):
    _, _, layout = exported
    done = run_tool(oci_image_tool, "validate", "--type", "imageLayout", "--ref", "v1", str(layout), check=False)
    assert done.returncode == 0, done.stdout + done.stderr
