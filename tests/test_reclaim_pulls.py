"""Pull after reclaim: each scenario's ``reclaim-plan.txt`` is carried out, then every image is pulled again.

Issue 17 C. The same images live in the real docker-registry (distribution 2.8.2) and, as GCR
keeps them, in an emulated bucket (``containers/images/<digest>``: the configs and layers of
the registry's own storage). For each way a user might "prove" reclaim, a scan writes its plan;
its objects are deleted from the bucket (pinned to the listed generations, as ``gcloud storage
rm -I`` would) and from a copy of the registry's storage; a registry started on that copy must
still serve every tag and every digest in full (``skopeo copy --all`` fetches every blob).
Nothing is a stand-in: the registry, skopeo, the emulator, the scan and distribution's own
garbage collector (``garbage-collect --dry-run``, the peer where the source is truly complete).

The images (the issue's setup): 7 tags, two of them indexes over two platforms, and an image
that a later push untagged but that is still pullable by digest: 12 pulls. Beside them, the
debris the collector would delete: two images deleted through the API (whole in the bucket,
config and every layer) and a layer a failed push left behind.
"""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from jobs.images import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Image,
    make_image,
    random_layer,
    write_oci_layout,
)
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
from tests.support.buckets import PREFIX, listed_generations, seed_bucket
from tests.support.scans import scan

BUCKET = "artifacts.pull-after-reclaim.appspot.com"
TAGGED = ("web", "api", "worker", "db", "cli", "multi", "tools")
# The repositories an OCI layout exported by one team holds: 3 of the 7.
IN_LAYOUT = ("web", "api", "multi")
_seed = iter(range(9000, 9100))


@dataclass
class Estate:
    """The registry, its mirror bucket, and what the peers say of them before any deletion."""

    registry: Registry
    images: dict[str, Image]
    indexes: dict[str, bytes]
    configs_and_layers: dict[str, Path]  # what the bucket holds, by digest, from the registry's disk
    collectable: set[str]  # configs and layers ``garbage-collect --dry-run`` would delete
    whole_unused: set[str]  # of those, the blobs of the two deleted images, which the bucket shows whole
    pulls: list[str]  # every tag and every digest a client can pull


def own_layer(size: int = 1200):
    return random_layer(next(_seed), size)


@pytest.fixture(scope="module")
def estate(tmp_path_factory, emulator):
    work = tmp_path_factory.mktemp("pull-after-reclaim")
    base, shared_by_deleted = random_layer(next(_seed), 2000), random_layer(next(_seed), 1500)
    images = {
        "web-old": make_image([base, own_layer()], oci=False, label="web-old"),
        "web": make_image([base, own_layer()], oci=False, label="web"),
        "api": make_image([base, own_layer()], label="api"),
        "worker": make_image([own_layer(), own_layer()], oci=False, label="worker"),
        "db": make_image([own_layer()], label="db"),
        "cli": make_image([base, own_layer()], oci=False, label="cli"),
        "multi-amd64": make_image([own_layer()], label="multi-amd64"),
        "multi-arm64": make_image([own_layer()], architecture="arm64", label="multi-arm64"),
        "tools-amd64": make_image([own_layer()], oci=False, label="tools-amd64"),
        "tools-arm64": make_image([own_layer()], oci=False, architecture="arm64", label="tools-arm64"),
        "gone": make_image([base, shared_by_deleted], label="gone"),
        "retired": make_image([shared_by_deleted, own_layer()], oci=False, label="retired"),
    }
    reg = Registry(work / "registry").start()
    try:
        reg.push(images["web-old"], "team/web", "v1")
        reg.push(images["web"], "team/web", "v1")  # web-old stays a revision: untagged, pullable by digest
        for name in ("api", "worker", "db", "cli"):
            reg.push(images[name], f"team/{name}", "v1")
        reg.push(images["gone"], "team/api", "v2")
        reg.push(images["retired"], "team/old", "v1")
        indexes = {
            name: reg.push_index(
                [(images[f"{name}-amd64"], "linux", "amd64"), (images[f"{name}-arm64"], "linux", "arm64")],
                f"team/{name}",
                "v1",
                oci=oci,
            )
            for name, oci in (("multi", True), ("tools", False))
        }
        for repo, name in (("team/api", "gone"), ("team/old", "retired")):
            deleted = requests.delete(f"{reg.url}/v2/{repo}/manifests/{images[name].digest}", timeout=10)
            assert deleted.status_code == 202, f"DELETE {repo}@{images[name].digest}: {deleted.status_code}"
        stray = own_layer(1800)
        upload_without_manifest(reg, "team/api", stray.blob)

        configs_and_layers, _ = split_storage(reg)
        collectable = garbage_collect_dry_run(reg) & set(configs_and_layers)
        kept = {d for name, image in images.items() if name not in ("gone", "retired") for d in image.blobs}
        whole_unused = (set(images["gone"].blobs) | set(images["retired"].blobs)) - kept
        assert collectable == whole_unused | {stray.digest}  # the collector sees what we built
        assert len(manifest_revisions(reg)) == 12  # 7 tagged (2 of them indexes), web-old, 4 children
        pulls = [f"team/{name}:v1" for name in TAGGED] + [
            f"team/{repo}@{images[name].digest}"
            for repo, name in [("web", "web-old")] + [(i, f"{i}-{a}") for i in indexes for a in ("amd64", "arm64")]
        ]
        assert len(pulls) == 12
        seed_bucket(emulator, BUCKET, configs_and_layers)
        estate = Estate(reg, images, indexes, configs_and_layers, collectable, whole_unused, pulls)
        assert lost_pulls(estate, reg, work / "before") == [], "every pull works before anything is deleted"
        yield estate
    finally:
        reg.stop()


def pull(registry: Registry, reference: str, into: Path) -> str | None:
    """None when ``reference`` pulls in full (every manifest and blob fetched), else skopeo's reason."""
    command = [shutil.which("skopeo"), "copy", "--quiet", "--all", "--src-tls-verify=false"]
    done = subprocess.run(
        [*command, f"docker://{registry.host}/{reference}", f"dir:{into}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return None if done.returncode == 0 else (done.stderr.strip().splitlines() or ["(no message)"])[-1]


def lost_pulls(estate: Estate, registry: Registry, work: Path) -> list[str]:
    """``reference: reason`` of every pull that fails against ``registry``."""
    work.mkdir(parents=True)
    with ThreadPoolExecutor(max_workers=4) as pool:
        reasons = pool.map(lambda i: pull(registry, estate.pulls[i], work / f"pull-{i}"), range(len(estate.pulls)))
        return [f"{ref}: {why}" for ref, why in zip(estate.pulls, reasons, strict=True) if why is not None]


def planned_digests(run_dir: Path, listed: dict[str, int]) -> dict[str, int]:
    """``{digest: generation}`` of the plan's lines, each checked to name one listed object of the
    bucket at the generation the listing returned. Other lines (a header) are not objects."""
    plan = run_dir / PLAN_FILE
    lines = [line for line in plan.read_text().splitlines() if line.startswith("gs://")] if plan.exists() else []
    planned = {}
    for line in lines:
        where, _, generation = line.removeprefix(f"gs://{BUCKET}/").rpartition("#")
        assert where.startswith(PREFIX) and listed.get(where) == int(generation), f"not a listed object: {line}"
        planned[where.removeprefix(PREFIX)] = int(generation)
    return planned


@dataclass
class Outcome:
    summary: dict
    planned: set[str]
    lost: list[str]


def carry_out_and_pull(estate: Estate, emulator, work: Path, sources: list[dict], **sections) -> Outcome:
    """Scan, delete the plan from the bucket and from a copy of the registry's storage, pull again."""
    summary, _, run_dir = scan(emulator, BUCKET, work / "out", sources, sections=sections)
    planned = planned_digests(run_dir, listed_generations(emulator, BUCKET))
    bucket = gcs.make_client(emulator.endpoint).bucket(BUCKET)
    copy = work / "after"
    shutil.copytree(estate.registry.root, copy / "storage")
    try:
        for digest, generation in planned.items():
            bucket.delete_blob(PREFIX + digest, generation=generation)
            blob_folder = copy / "storage" / estate.registry.blob_data(digest).relative_to(estate.registry.root).parent
            shutil.rmtree(blob_folder)
        left = set(listed_generations(emulator, BUCKET))
        assert left == {PREFIX + d for d in estate.configs_and_layers if d not in planned}
        with Registry(copy) as after:
            lost = lost_pulls(estate, after, work / "pulls")
    finally:  # the next scenario scans the whole bucket again
        for digest in planned:
            bucket.blob(PREFIX + digest).upload_from_filename(str(estate.configs_and_layers[digest]))
    print(f"{work.name}: {len(planned)} objects planned, {len(lost)} of {len(estate.pulls)} pulls lost")
    return Outcome(summary, set(planned), lost)


def assert_nothing_lost(outcome: Outcome, estate: Estate) -> None:
    assert outcome.lost == [], (
        f"{len(outcome.lost)} of {len(estate.pulls)} pulls lost after deleting the {len(outcome.planned)} "
        f"objects of {PLAN_FILE}: {outcome.lost}"
    )
    # The collector reads every revision on the registry's disk: what it keeps, something needs.
    assert outcome.planned <= estate.collectable, (
        f"planned, and kept by the collector: {outcome.planned - estate.collectable}"
    )


def every_revision(estate: Estate, folder: Path, *, leave_out: frozenset[str] = frozenset()) -> dict:
    directory = complete_directory_source(estate.registry, folder, leave_out=leave_out)
    return {"directory": str(directory), "repository": estate.registry.host, "bucket": BUCKET, "complete": True}


def partial_layout(estate: Estate, folder: Path) -> dict:
    """An OCI layout a team exported: the tagged images of 3 of the 7 repositories, blobs and all."""
    entries, blobs = [], {}
    for name in IN_LAYOUT:
        if name in estate.indexes:
            children = [estate.images[f"{name}-{arch}"] for arch in ("amd64", "arm64")]
            entries.append((estate.indexes[name], OCI_INDEX, f"{name}-v1"))
            blobs.update({child.digest: child.manifest for child in children})
            blobs.update({d: b for child in children for d, b in child.blobs.items()})
        else:
            image = estate.images[name]
            entries.append((image.manifest, image.media_type, f"{name}-v1"))
            blobs.update(image.blobs)
    assert {media_type for _, media_type, _ in entries} == {DOCKER_MANIFEST, OCI_MANIFEST, OCI_INDEX}
    write_oci_layout(folder, entries, blobs)
    return {"oci_layout": str(folder), "repository": estate.registry.host}


# --- the scenarios -------------------------------------------------------------------------


@pytest.mark.slow
def test_a_complete_directory_plans_what_the_collector_deletes_less_the_images_the_bucket_shows_whole(
    estate, emulator, tmp_path
):
    outcome = carry_out_and_pull(estate, emulator, tmp_path, [every_revision(estate, tmp_path / "manifests")])
    assert_nothing_lost(outcome, estate)
    # Where we differ from the collector, by design: the two deleted images are still whole in
    # the bucket (config and every layer), so their blobs stay until the user names them.
    assert outcome.planned == estate.collectable - estate.whole_unused


@pytest.mark.slow
def test_a_complete_directory_that_accepts_losing_the_deleted_images_plans_exactly_what_the_collector_deletes(
    estate, emulator, tmp_path
):
    accepted = [estate.images["gone"].config_digest, estate.images["retired"].config_digest]
    outcome = carry_out_and_pull(
        estate,
        emulator,
        tmp_path,
        [every_revision(estate, tmp_path / "manifests")],
        reclaim={"accept_losing": accepted},
    )
    assert_nothing_lost(outcome, estate)
    assert outcome.planned == estate.collectable


@pytest.mark.slow
def test_a_directory_that_misses_the_untagged_image_but_claims_complete_loses_no_pull(estate, emulator, tmp_path):
    """The user's word is wrong; the untagged image's config and layers in the bucket are evidence."""
    leave_out = frozenset({estate.images["web-old"].digest})
    outcome = carry_out_and_pull(
        estate, emulator, tmp_path, [every_revision(estate, tmp_path / "manifests", leave_out=leave_out)]
    )
    assert_nothing_lost(outcome, estate)


@pytest.mark.slow
def test_a_partial_oci_layout_proves_nothing_for_the_bucket(estate, emulator, tmp_path):
    """One bucket scanned, no ``bucket:``, no ``complete:``: a layout holds only what was put in it."""
    outcome = carry_out_and_pull(estate, emulator, tmp_path, [partial_layout(estate, tmp_path / "layout")])
    assert_nothing_lost(outcome, estate)
    assert outcome.summary["reclaim_plan"] is None


@pytest.mark.slow
def test_a_partial_oci_layout_wrongly_claimed_complete_for_the_bucket_loses_no_pull(estate, emulator, tmp_path):
    source = {**partial_layout(estate, tmp_path / "layout"), "complete": True, "bucket": BUCKET}
    outcome = carry_out_and_pull(estate, emulator, tmp_path, [source])
    assert_nothing_lost(outcome, estate)


@pytest.mark.slow
def test_a_catalog_walk_plans_nothing(estate, emulator, tmp_path):
    """It cannot see web-old (untagged), so it can prove no blob unused."""
    outcome = carry_out_and_pull(estate, emulator, tmp_path, [{"registry": estate.registry.url}])
    assert_nothing_lost(outcome, estate)
    assert outcome.summary["reclaim_plan"] is None


@pytest.mark.slow
def test_a_successor_only_scan_loses_no_pull(estate, emulator, tmp_path):
    source = {"registry": estate.registry.url, "role": "successor"}
    outcome = carry_out_and_pull(estate, emulator, tmp_path, [source])
    assert_nothing_lost(outcome, estate)
