"""``registry-scrub export``: a recovered image, exported as an OCI layout, pushed with skopeo to a real
docker-registry and pulled back with the same config and layer digests as the image that was lost."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from jobs.cli import main
from jobs.export import REF_NAME
from jobs.images import make_image, random_layer
from jobs.launcher import run_scan
from pipeline.adapters import gcs
from pipeline.config import parse_config
from pipeline.core.recovery import OCI_MANIFEST
from tests.registry_fixtures import Registry

BEAM_ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
PREFIX = "containers/images/"


def skopeo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("skopeo"), *args], capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def lost_image_run(tmp_path_factory, emulator):
    """A bucket with the blobs of an image whose manifest is gone, scanned with --recover-images."""
    work = tmp_path_factory.mktemp("export")
    image = make_image([random_layer(4001, 6000), random_layer(4002, 3000)], oci=False, label="keep me")
    client = gcs.make_client(emulator.endpoint)
    bucket = client.lookup_bucket("export-test.appspot.com") or client.create_bucket("export-test.appspot.com")
    for digest, data in image.blobs.items():
        bucket.blob(PREFIX + digest).upload_from_string(data)
    config = parse_config(
        {
            "source": {"buckets": [bucket.name], "emulator_endpoint": emulator.endpoint},
            "scan": {"read_concurrency": 2, "recover_images": True},
            "report": {"output": str(work / "out"), "run_id": "run"},
        },
        "test",
    )
    run_scan(config, BEAM_ARGS)
    return image, bucket, work / "out" / "run", work


def test_export_push_pull_keeps_every_digest(lost_image_run, tmp_path, capsys):
    image, _, run_dir, _ = lost_image_run
    layout = tmp_path / "layout"
    assert main(["export", str(run_dir), image.config_digest, "--to", str(layout), "--tag", "v1"]) == 0
    assert "every blob re-verified" in capsys.readouterr().out
    for digest, data in image.blobs.items():
        assert (layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes() == data
    with Registry(tmp_path / "registry") as registry:
        target = f"docker://{registry.host}/recovered/app:v1"
        skopeo("copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:v1", target)
        pulled = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", target).stdout)
        skopeo("copy", "--quiet", "--src-tls-verify=false", target, f"dir:{tmp_path / 'pulled'}")
    assert pulled["config"]["digest"] == image.config_digest
    assert [layer["digest"] for layer in pulled["layers"]] == [layer.digest for layer in image.layers]
    for digest, data in image.blobs.items():
        copy = (tmp_path / "pulled" / digest.split(":")[1]).read_bytes()
        assert hashlib.sha256(copy).hexdigest() == digest.split(":")[1] and copy == data


def test_a_blob_damaged_since_the_scan_is_refused_and_not_kept(lost_image_run, tmp_path, capsys):
    image, bucket, run_dir, _ = lost_image_run
    layer = image.layers[1]
    damaged = bytearray(layer.blob)
    damaged[100] ^= 0x01
    blob = bucket.blob(PREFIX + layer.digest)
    blob.upload_from_string(bytes(damaged))
    try:
        layout = tmp_path / "layout"
        assert main(["export", str(run_dir), image.config_digest, "--to", str(layout)]) == 1
        err = capsys.readouterr().err
        assert f"{layer.digest}: its bytes hash to sha256:{hashlib.sha256(damaged).hexdigest()}" in err
        assert not (layout / "blobs" / "sha256" / layer.digest.split(":")[1]).exists()
        assert not list((layout / "blobs" / "sha256").glob("*.partial"))
        assert not (layout / "index.json").exists()
    finally:
        blob.upload_from_string(layer.blob)


@pytest.mark.parametrize(
    "digest, message",
    [
        ("sha256:" + "0" * 64, "no recovered image has the config sha256:" + "0" * 64),
        ("abc", "CONFIG_DIGEST: expected sha256:<64 lowercase hex>, got 'abc'"),
    ],
)
def test_an_unknown_config_is_unusable_input(lost_image_run, tmp_path, capsys, digest, message):
    _, _, run_dir, _ = lost_image_run
    assert main(["export", str(run_dir), digest, "--to", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err


def test_a_folder_that_is_not_a_layout_is_not_overwritten(lost_image_run, tmp_path, capsys):
    image, _, run_dir, _ = lost_image_run
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["export", str(run_dir), image.config_digest, "--to", str(tmp_path)]) == 2
    assert "is not empty and is not an OCI layout" in capsys.readouterr().err
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["notes.txt"]


def test_a_run_without_recovery_says_so(tmp_path, capsys):
    (tmp_path / "summary.json").write_text("{}")
    assert main(["export", str(tmp_path), "sha256:" + "1" * 64, "--to", str(tmp_path / "x")]) == 2
    assert "was the run made with --recover-images?" in capsys.readouterr().err


def test_a_run_dir_that_does_not_exist_is_named_as_such(tmp_path, capsys):
    """Issue 18: it was asked whether the run was made with --recover-images."""
    absent = tmp_path / "no-such-run"
    assert main(["export", str(absent), "sha256:" + "1" * 64, "--to", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert f"{absent}: not a run folder (no summary.json)" in err and "--recover-images" not in err
    assert not (tmp_path / "x").exists()


def _layout_tagging(layout: Path, tag: str, digest: str) -> str:
    """An OCI layout whose index gives ``tag`` to another image (``digest``); its index text."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    entry = {"mediaType": OCI_MANIFEST, "digest": digest, "size": 2, "annotations": {REF_NAME: tag}}
    text = json.dumps({"schemaVersion": 2, "manifests": [entry]}, indent=2) + "\n"
    (layout / "index.json").write_text(text)
    return text


def test_a_tag_the_layout_gives_another_image_is_kept_unless_replace_tag(lost_image_run, tmp_path, capsys):
    """Issue 18: an existing --tag was silently replaced, dropping the other image from the index."""
    image, _, run_dir, _ = lost_image_run
    layout, other = tmp_path / "layout", "sha256:" + "e" * 64
    before = _layout_tagging(layout, "v1", other)
    assert main(["export", str(run_dir), image.config_digest, "--to", str(layout), "--tag", "v1"]) == 2
    err = capsys.readouterr().err
    assert f"the layout already tags another image 'v1' ({other}); choose another --tag, or pass --replace-tag" in err
    assert (layout / "index.json").read_text() == before
    assert sorted((layout / "blobs" / "sha256").iterdir()) == []  # refused before any blob was read
    # Another tag sits beside it; --replace-tag takes the tag over; the same image again is no conflict.
    assert main(["export", str(run_dir), image.config_digest, "--to", str(layout), "--tag", "v2"]) == 0
    assert main(["export", str(run_dir), image.config_digest, "--to", str(layout), "--tag", "v2"]) == 0
    args = ["export", str(run_dir), image.config_digest, "--to", str(layout), "--tag", "v1", "--replace-tag"]
    assert main(args) == 0
    entries = json.loads((layout / "index.json").read_text())["manifests"]
    tags = {entry["annotations"][REF_NAME]: entry["digest"] for entry in entries}
    assert set(tags) == {"v1", "v2"} and tags["v1"] == tags["v2"] != other


def test_a_failed_export_leaves_no_blob_without_an_index(lost_image_run, tmp_path, capsys):
    """Issue 18: the config and first layer stayed in blobs/ with no index.json naming them."""
    image, bucket, run_dir, _ = lost_image_run
    layer = image.layers[1]  # the last blob read: the config and the first layer were copied before it
    blob = bucket.blob(PREFIX + layer.digest)
    blob.upload_from_string(layer.blob[:-1] + bytes([layer.blob[-1] ^ 1]))
    try:
        fresh = tmp_path / "fresh"
        assert main(["export", str(run_dir), image.config_digest, "--to", str(fresh)]) == 1
        assert not fresh.exists()
        existing = tmp_path / "existing"
        before = _layout_tagging(existing, "old", "sha256:" + "e" * 64)
        (existing / "blobs" / "sha256" / ("e" * 64)).write_bytes(b"{}")
        assert main(["export", str(run_dir), image.config_digest, "--to", str(existing)]) == 1
        assert (existing / "index.json").read_text() == before
        assert [p.name for p in (existing / "blobs" / "sha256").iterdir()] == ["e" * 64]
    finally:
        blob.upload_from_string(layer.blob)
    capsys.readouterr()
