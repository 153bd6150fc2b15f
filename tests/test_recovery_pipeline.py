"""Recovery in a whole scan: the real Beam runner, the real GCS emulator, a real docker-registry.

The bucket holds the blobs of images that live on in the registry, of one whose
manifest was lost, of one that lost a layer too, a layer no image uses, and the
blobs of a registry image whose manifest lists its layers in the wrong order.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zstandard

from jobs.images import Image, Layer, canonical_json, make_image, random_layer, sha256_digest
from jobs.launcher import run_scan
from pipeline.config import ConfigError, parse_config
from pipeline.core.manifests import DOCKER_MANIFEST, OCI_MANIFEST, parse_manifest
from tests.registry_fixtures import Registry, copy_blobs_to_bucket

BEAM_ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
PREFIX = "containers/images/"


def rows(run_dir: Path, prefix: str) -> list[dict]:
    return [
        json.loads(line) for path in sorted(run_dir.glob(f"{prefix}-*.jsonl")) for line in path.read_text().splitlines()
    ]


def layers_reversed(image: Image) -> Image:
    """The same config and blobs, with a manifest that lists the layers in the wrong order."""
    document = json.loads(image.manifest)
    document["layers"] = document["layers"][::-1]
    return Image(image.config, image.layers, canonical_json(document), image.media_type, dict(image.blobs))


@pytest.fixture(scope="module")
def recovery_scan(tmp_path_factory, emulator):
    from pipeline.adapters import gcs

    work = tmp_path_factory.mktemp("recovery")
    images = {
        "kept": make_image([random_layer(3001, 3000), random_layer(3002, 2000)], oci=False, label="kept"),
        "liar": layers_reversed(make_image([random_layer(3003, 3000), random_layer(3004, 2000)], oci=False)),
        "lost": make_image([random_layer(3005, 5000), random_layer(3006, 1000)], oci=False, label="lost"),
        "partial": make_image([random_layer(3007, 1000), random_layer(3008, 1000)], oci=False),
    }
    tar = b"zstd layer content " * 200
    zstd_layer = Layer(blob=zstandard.ZstdCompressor().compress(tar), diff_id=sha256_digest(tar))
    images["lost_zstd"] = make_image([random_layer(3009, 1000), zstd_layer], oci=True)
    orphan = random_layer(3010, 1500)

    client = gcs.make_client(emulator.endpoint)
    bucket = client.lookup_bucket("recovery-test.appspot.com") or client.create_bucket("recovery-test.appspot.com")
    with Registry(work / "registry") as registry:
        registry.push(images["kept"], "app/kept", "v1")
        registry.push(images["liar"], "app/liar", "v1")
        copy_blobs_to_bucket(registry, bucket)
        planted = dict(images["lost"].blobs) | images["lost_zstd"].blobs | {orphan.digest: orphan.blob}
        planted |= {d: b for d, b in images["partial"].blobs.items() if d != images["partial"].layers[1].digest}
        for digest, data in planted.items():
            bucket.blob(PREFIX + digest).upload_from_string(data)
        config = parse_config(
            {
                "source": {"buckets": [bucket.name], "emulator_endpoint": emulator.endpoint},
                "scan": {"read_concurrency": 4, "recover_images": True},
                "report": {"output": str(work / "out"), "run_id": "run"},
                "manifests": {"sources": [{"registry": registry.url}], "requests_per_second": 500},
            },
            "test",
        )
        summary = run_scan(config, BEAM_ARGS)
    return images, orphan, summary, work / "out" / "run"


def test_every_config_gets_a_row_and_a_lost_image_is_rebuilt(recovery_scan):
    images, _, _, run_dir = recovery_scan
    recovered = {row["config_digest"]: row for row in rows(run_dir, "recovered")}
    assert set(recovered) == {image.config_digest for image in images.values()}
    lost = recovered[images["lost"].config_digest]
    assert (lost["complete"], lost["in_registry"], lost["labels"]) == (True, None, {"org.registry-scrub.demo": "lost"})
    assert lost["total_size"] == sum(len(layer.blob) for layer in images["lost"].layers)
    manifest = (run_dir / "recovered" / (images["lost"].config_digest.split(":")[1] + ".json")).read_bytes()
    assert sha256_digest(manifest) == lost["manifest_digest"]
    parsed, original = parse_manifest(manifest), parse_manifest(images["lost"].manifest)
    assert parsed.media_type == DOCKER_MANIFEST
    assert [(d.digest, d.size, d.media_type) for d in parsed.blobs] == [
        (d.digest, d.size, d.media_type) for d in original.blobs
    ]
    zstd = recovered[images["lost_zstd"].config_digest]
    assert zstd["complete"] is True and zstd["manifest_media_type"] == OCI_MANIFEST


def test_images_that_live_on_name_their_registry_manifest(recovery_scan):
    images, _, _, run_dir = recovery_scan
    recovered = {row["config_digest"]: row for row in rows(run_dir, "recovered")}
    host_repo = recovered[images["kept"].config_digest]["in_registry"]
    assert host_repo.endswith(f"app/kept@{images['kept'].digest}")
    assert recovered[images["kept"].config_digest]["complete"] is True


def test_an_image_missing_a_layer_says_which(recovery_scan):
    images, _, _, run_dir = recovery_scan
    partial = {row["config_digest"]: row for row in rows(run_dir, "recovered")}[images["partial"].config_digest]
    assert (partial["complete"], partial["missing_diff_ids"]) == (False, [images["partial"].layers[1].diff_id])
    assert not (run_dir / "recovered" / (images["partial"].config_digest.split(":")[1] + ".json")).exists()


def test_only_the_layer_no_config_and_no_manifest_uses_is_a_true_orphan(recovery_scan):
    _, orphan, _, run_dir = recovery_scan
    assert [(row["digest"], row["diff_id"]) for row in rows(run_dir, "orphan-layers")] == [
        (orphan.digest, orphan.diff_id)
    ]


def test_layers_out_of_order_are_diff_id_mismatches_naming_the_image(recovery_scan):
    images, _, summary, run_dir = recovery_scan
    liar = images["liar"]
    mismatches = [row for row in rows(run_dir, "findings") if row["kind"] == "diff_id_mismatch"]
    assert sorted((row["digest"], row["expected"], row["actual"]) for row in mismatches) == sorted(
        [
            (liar.layers[1].digest, liar.layers[0].diff_id, liar.layers[1].diff_id),
            (liar.layers[0].digest, liar.layers[1].diff_id, liar.layers[0].diff_id),
        ]
    )
    assert all(row["images"][0].endswith(f"app/liar@{liar.digest}") for row in mismatches)
    assert summary["findings_by_kind"]["diff_id_mismatch"] == 2
    assert summary["exit_status"] == 1


def test_recovery_needs_the_objects_read():
    with pytest.raises(ConfigError, match="scan.recover_images needs the objects read"):
        parse_config(
            {
                "source": {"buckets": ["b-x.appspot.com"]},
                "scan": {"mode": "manifests", "recover_images": True},
                "manifests": {"sources": [{"directory": "/tmp"}]},
            },
            "test",
        )


def test_recovery_and_the_migration_audit_build_for_dataflow_with_no_side_input():
    """The graph as Dataflow would receive it (offline, --dry_run): recovery and the migration
    audit join by CoGroupByKey, and none of their steps reads a side input."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

    from pipeline.build import RunPlan, build_pipeline
    from tests.test_dataflow_graph import DATAFLOW_ARGS, _by_name, _side_inputs

    config = parse_config(
        {
            "source": {"buckets": ["artifacts.p-prod.appspot.com"]},
            "scan": {"recover_images": True},
            "report": {"output": "gs://my-audit-reports/registry-scrub"},
            "manifests": {"sources": [{"registry": "https://gcr.io", "gcr_projects": ["p-prod"], "role": "successor"}]},
        },
        "test",
    )
    plan = RunPlan(
        ("artifacts.p-prod.appspot.com",), "r1", "gs://my-audit-reports/registry-scrub/r1", "2025-01-01T00:00:00Z"
    )
    options = PipelineOptions(DATAFLOW_ARGS)
    options.view_as(SetupOptions).save_main_session = False
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, config, plan)
    pipeline.run()
    transforms = _by_name(pipeline.runner.proto_pipeline)
    for join in ("JoinByConfig", "JoinByDiffId", "JoinParts", "JoinOrphans", "JoinExpectations"):
        assert f"RecoverImages/{join}" in transforms
    assert "MigrationAudit/JoinByDigest" in transforms
    ours = [t for name, t in transforms.items() if name.startswith(("RecoverImages/", "MigrationAudit/"))]
    with_side_inputs = sorted(t.unique_name for t in ours if _side_inputs(t))
    # Only Beam's own bookkeeping (WriteToText's finalisation, CombineGlobally's empty default) and
    # the tallies that take the names of the files written, so that the summary waits for them.
    small = ("/WriteImpl/", "/InjectDefault", "RecoverImages/RecoveryTally", "MigrationAudit/SuccessorTally")
    assert ours and [n for n in with_side_inputs if not any(part in n for part in small)] == []


def test_report_html_lists_the_images_no_source_knows(recovery_scan):
    images, _, _, run_dir = recovery_scan
    page = (run_dir / "report.html").read_text()
    section = page.split('<h2 id="recovery">Recoverable images</h2>', 1)[1].split("</table>", 1)[0]
    for name in ("lost", "lost_zstd", "partial"):
        assert images[name].config_digest in section
    for name in ("kept", "liar"):  # in the registry: not lost
        assert images[name].config_digest not in section
    assert "1 layer(s) missing" in section
