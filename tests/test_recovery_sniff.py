"""LayerSniffer: configs and layers recognised from the chunks of one read, diff_ids computed on the fly."""

import gzip
import hashlib
import io
import json
import tarfile
import tracemalloc
import zlib

import pytest
import zstandard

from jobs.images import make_image, make_layer, random_layer
from pipeline.core.layer_sniff import (
    CONFIG,
    GZIP,
    LAYER,
    MANIFEST,
    ZSTD,
    LayerSniffer,
    parse_config_facts,
)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sniff(data: bytes, chunk: int = 4096, **kwargs):
    sniffer = LayerSniffer(**kwargs)
    for start in range(0, len(data), chunk):
        sniffer.update(data[start : start + chunk])
    return sniffer.result()


def tar_of(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return raw.getvalue()


def inflaters():
    out = [pytest.param(zlib.decompressobj, id="zlib")]
    for module, attribute in (("isal.isal_zlib", "decompressobj"), ("zlib_ng.zlib_ng", "decompressobj")):
        try:
            imported = __import__(module, fromlist=[attribute])
        except ImportError:
            continue
        out.append(pytest.param(getattr(imported, attribute), id=module.split(".")[0]))
    return out


@pytest.mark.parametrize("decompressobj", inflaters())
@pytest.mark.parametrize("chunk", [1, 7, 4096, 10**9])
def test_gzip_layer_yields_the_diff_id_the_config_lists(chunk, decompressobj):
    # Fed a few bytes at a time, a smaller layer tries the same code: 300 kB took 8 s under mutmut.
    layer = random_layer(seed=3, size=20_000 if chunk < 4096 else 300_000)
    result = sniff(layer.blob, chunk, decompressobj=decompressobj)
    assert result.kind == LAYER and result.compression == GZIP
    assert result.diff_id == layer.diff_id
    assert result.problem is None
    assert result.uncompressed_size == len(gzip.decompress(layer.blob))


def test_multi_member_gzip_is_read_to_its_last_member():
    tar = tar_of({"a": b"x" * 5000, "b": b"y" * 7000})
    blob = gzip.compress(tar[:3000], mtime=0) + gzip.compress(tar[3000:], mtime=0)
    assert sniff(blob, 1000).diff_id == sha(tar)


@pytest.mark.parametrize("chunk", [3, 4096])
def test_zstd_layer_over_several_frames(chunk):
    tar = tar_of({"a": b"x" * 50_000, "b": bytes(range(256)) * 300})
    blob = zstandard.ZstdCompressor().compress(tar[:20_000]) + zstandard.ZstdCompressor().compress(tar[20_000:])
    result = sniff(blob, chunk)
    assert (result.kind, result.compression, result.diff_id) == (LAYER, ZSTD, sha(tar))
    assert result.uncompressed_size == len(tar)


def test_uncompressed_tar_is_a_layer_whose_diff_id_is_its_own_digest():
    result = sniff(tar_of({"etc/hostname": b"box\n"}))
    assert (result.kind, result.compression, result.diff_id, result.problem) == (LAYER, None, None, None)


def test_config_facts_are_kept_and_bounded():
    layers = [make_layer({"a": b"1"}), make_layer({"b": b"2"})]
    image = make_image(layers, architecture="arm64", label="kept")
    document = json.loads(image.config)
    document["created"] = "2024-05-01T10:00:00Z"
    document["variant"] = "v8"
    document["history"] = [{"created_by": f"RUN step {i}"} for i in range(10)] + [{"created_by": "x" * 1000}]
    data = b"\n  " + json.dumps(document).encode()
    result = sniff(data, 5)
    assert result.kind == CONFIG
    facts = result.config
    assert facts.diff_ids == tuple(layer.diff_id for layer in layers)
    assert (facts.os, facts.architecture, facts.variant, facts.created) == (
        "linux",
        "arm64",
        "v8",
        "2024-05-01T10:00:00Z",
    )
    assert facts.labels == {"org.registry-scrub.demo": "kept"}
    assert facts.history_head == ("RUN step 0", "RUN step 1", "RUN step 2")
    assert facts.history_tail[:2] == ("RUN step 8", "RUN step 9")
    assert len(facts.history_tail[2]) == 300 and facts.history_tail[2].endswith("…")
    assert facts.history_count == 11


@pytest.mark.parametrize(
    "data, why",
    [
        (b'{"schemaVersion": 2, "layers": []}', "no rootfs.diff_ids list"),
        (b'{"rootfs": {"diff_ids": ["sha256:ABC"]}}', "rootfs.diff_ids[0] is not sha256:<64 lowercase hex>"),
        (b'{"rootfs": {"diff_ids": [' + b"1" * 5000 + b"]}}", "not valid JSON (ValueError)"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON (RecursionError)"),
        (b'{"rootfs": \xff}', "not UTF-8 text"),
        (b"[1, 2]", "not a JSON object"),
    ],
)
def test_json_that_is_not_an_image_config_is_refused_with_a_reason(data, why):
    assert parse_config_facts(data) == (None, why)


def test_json_is_not_buffered_beyond_the_cap():
    document = {"rootfs": {"diff_ids": []}, "pad": "x" * 5000}
    data = json.dumps(document).encode()
    assert sniff(data, 100, config_cap=len(data)).kind == CONFIG
    assert sniff(data, 100, config_cap=len(data) - 1) is None


@pytest.mark.parametrize("data", [b"", b"\x1f", b"hello world", bytes(range(256)) * 40, b" " * 1000 + b"{}"])
def test_other_objects_are_neither(data):
    assert sniff(data, 64) is None


def test_reset_starts_over_as_a_read_from_byte_0_does():
    layer = random_layer(seed=5, size=100_000)
    sniffer = LayerSniffer()
    sniffer.update(layer.blob[:50_000])
    sniffer.update(b"garbage that a failed attempt left behind")
    sniffer.reset()
    for start in range(0, len(layer.blob), 8192):
        sniffer.update(layer.blob[start : start + 8192])
    assert sniffer.result().diff_id == layer.diff_id
    assert sniffer.result() is sniffer.result()  # asked twice, computed once


def test_reset_after_a_config_head_forgets_it():
    layer = random_layer(seed=6, size=10_000)
    sniffer = LayerSniffer()
    sniffer.update(b'{"rootfs": ')
    sniffer.reset()
    sniffer.update(layer.blob)
    assert sniffer.result().diff_id == layer.diff_id


def test_truncated_corrupt_and_trailing_gzip_are_layers_with_a_problem():
    blob = random_layer(seed=7, size=50_000).blob
    truncated = sniff(blob[:-100])
    assert truncated.kind == LAYER and truncated.diff_id is None
    assert truncated.problem == "the gzip stream ends before its last member is complete (truncated)"

    corrupt = bytearray(blob)
    corrupt[5000] ^= 0xFF
    bad = sniff(bytes(corrupt))
    assert bad.diff_id is None and bad.problem.startswith("not a valid gzip stream: ")

    trailing = sniff(blob + b"\x00" * 10)
    assert trailing.diff_id is None
    assert trailing.problem == "10+ bytes after the end of the gzip stream are not another gzip member"
    stray = sniff(blob + b"\x1f")
    assert stray.problem == "1 stray byte(s) after the end of the gzip stream"


def test_corrupt_zstd_is_a_layer_with_a_problem():
    # With a content checksum (as zstd writes by default on the command line) damage is detected.
    blob = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(bytes(range(256)) * 1000))
    blob[20] ^= 0xFF
    result = sniff(bytes(blob))
    assert result.kind == LAYER and result.diff_id is None
    assert result.problem.startswith("not a valid zstd stream: ")


@pytest.mark.parametrize("compress", [lambda d: gzip.compress(d, mtime=0), zstandard.ZstdCompressor().compress])
def test_a_bomb_holds_no_output_and_stops_at_the_cap(compress):
    bomb = compress(b"\0" * (64 * 1024 * 1024))
    tracemalloc.start()
    try:
        full = sniff(bomb, 64 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert full.diff_id == sha(b"\0" * (64 * 1024 * 1024))
    # 64 MiB of output went through, never more than a few 256 KiB steps of it at once.
    assert peak < 2 * 1024 * 1024
    capped = sniff(bomb, 64 * 1024, max_output_bytes=10 * 1024 * 1024)
    assert capped.diff_id is None
    assert capped.problem == "decompresses to more than 10,485,760 bytes; diff_id not computed"


def test_the_default_inflate_is_zlib_ng_when_installed_else_zlib(monkeypatch):
    import sys

    from pipeline.core.layer_sniff import default_inflate

    name, factory = default_inflate()
    assert name == "zlib-ng"  # the test extra installs it
    layer = random_layer(seed=9, size=20_000)
    assert sniff(layer.blob, decompressobj=factory).diff_id == layer.diff_id
    monkeypatch.setitem(sys.modules, "zlib_ng", None)  # as if not installed
    assert default_inflate() == ("zlib", zlib.decompressobj)


@pytest.mark.parametrize("chunk", [1, 64, 10**9])
def test_a_manifest_stored_as_a_blob_is_recognised_with_what_it_names(chunk):
    """Reclaim's second guard (pipeline/core/protection.py): the strict parser reads it in the same read."""
    image = make_image([random_layer(301, 2000), random_layer(302, 1000)], oci=True)
    sniffed = sniff(image.manifest, chunk)
    assert sniffed.kind == MANIFEST and sniffed.manifest.config == image.config_digest
    assert set(sniffed.manifest.references) == set(image.blobs)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest)},
            ],
        }
    ).encode()
    listed = sniff(index, chunk)
    assert listed.kind == MANIFEST and listed.manifest.config is None
    assert listed.manifest.references == (image.digest,)


@pytest.mark.parametrize(
    "data",
    [
        b'{"schemaVersion": 2, "config": {}}',  # the strict parser refuses it
        b'{"schemaVersion": 2, "layers": [], "config": {"digest": "sha256:' + b"0" * 64 + b'", "size": -1}}',
        b'{"anything": "else"}',
    ],
)
def test_json_that_is_neither_config_nor_manifest_is_dropped(data):
    assert sniff(data, 16) is None


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5])
def test_a_short_history_still_has_its_last_step_in_the_tail(count):
    """Issue 18: with 3 lines or fewer the tail was [], and docs/recovery.md's `.history_tail[-1]` gave null."""
    document = json.loads(make_image([random_layer(1, 100)]).config)
    document["history"] = [{"created_by": f"RUN step {i}"} for i in range(count)]
    result = sniff(json.dumps(document).encode(), 1)
    assert result.kind == CONFIG
    facts = result.config
    assert facts.history_tail[-1] == f"RUN step {count - 1}"
    assert facts.history_tail == tuple(f"RUN step {i}" for i in range(max(0, count - 3), count))
    assert facts.history_head == tuple(f"RUN step {i}" for i in range(min(count, 3)))


def test_the_output_cap_is_64_mib_or_1100_times_the_stored_size():
    from pipeline.core.layer_sniff import output_cap

    assert output_cap(0) == output_cap(61_000) == 64 * 1024 * 1024
    assert output_cap(1_000_000) == 1_100_000_000
