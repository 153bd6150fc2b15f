"""Recovery facts: what one verified read contributes (config, layer, manifest), and the image a record names."""

import pytest

from pipeline.core import recovery as rc
from pipeline.core.layer_sniff import CONFIG, LAYER, MANIFEST, ConfigFacts, ManifestFacts, Sniffed

BUCKET = "artifacts.p.appspot.com"
D = {n: "sha256:" + n * 64 for n in "abcf"}
BASE = {"bucket": BUCKET, "object": "containers/images/" + D["a"], "digest": D["a"], "size": 512}


def fact(sniffed: Sniffed):
    return rc.sniffed_fact(BUCKET, "containers/images/" + D["a"], D["a"], 512, sniffed)


def test_a_manifest_stored_as_a_blob_is_a_fact_naming_what_it_references():
    manifest = ManifestFacts(
        media_type="application/vnd.oci.image.manifest.v1+json", config=D["c"], references=(D["c"], D["b"])
    )
    assert fact(Sniffed(MANIFEST, manifest=manifest)) == (
        "manifest",
        {**BASE, "media_type": manifest.media_type, "config": D["c"], "references": [D["c"], D["b"]]},
    )


def test_a_compressed_layer_fact_keeps_what_decompression_found():
    sniffed = Sniffed(LAYER, compression="zstd", diff_id=D["f"], uncompressed_size=4096, problem=None)
    assert fact(sniffed) == (
        "layer",
        {**BASE, "compression": "zstd", "diff_id": D["f"], "uncompressed_size": 4096, "problem": None},
    )
    broken = Sniffed(LAYER, compression="gzip", problem="truncated")
    assert fact(broken)[1] == {
        **BASE,
        "compression": "gzip",
        "diff_id": None,
        "uncompressed_size": None,
        "problem": "truncated",
    }


def test_a_config_fact_carries_its_parsed_facts():
    facts = ConfigFacts(diff_ids=(D["b"],), os="linux")
    assert fact(Sniffed(CONFIG, config=facts)) == ("config", {**BASE, "facts": facts})


RECORD = {
    "status": "ok",
    "media_type": "application/vnd.docker.distribution.manifest.v2+json",
    "blobs": [("config", D["c"], 9, None), ("layer", D["a"], 10, None), ("layer", D["b"], 11, None)],
    "repository": "team/app",
    "digest": D["f"],
    "tags": ["team/app:v1"],
}


@pytest.mark.parametrize("successor, kept", [(True, True), (None, False), (False, False)])
def test_an_image_record_is_whole_and_says_whether_a_successor_keeps_it(successor, kept):
    record = RECORD if successor is None else {**RECORD, "successor": successor}
    assert rc.image_of_record(record) == {
        "image": f"team/app@{D['f']}",
        "repository": "team/app",
        "manifest_digest": D["f"],
        "tags": ["team/app:v1"],
        "config": D["c"],
        "layers": [D["a"], D["b"]],
        "successor": kept,
    }


def test_a_manifest_without_exactly_one_config_is_no_image():
    layers_only = {**RECORD, "blobs": [("layer", D["a"], 10, None)]}
    assert rc.image_of_record(layers_only) is None
    two = {**RECORD, "blobs": [("config", D["c"], 9, None), ("config", D["b"], 9, None)]}
    assert rc.image_of_record(two) is None


@pytest.mark.parametrize(
    "successors, named",
    [(["b/app@x", "a/app@y", "b/app@x"], "a/app@y"), (["b/app@x"], "b/app@x"), ([], None)],
)
def test_a_recovered_image_names_the_first_successor_that_keeps_it(successors, named):
    config = {"digest": D["c"], "bucket": BUCKET, "object": "o", "size": 9, "facts": ConfigFacts(diff_ids=())}
    row, _ = rc.recover_image(config, [], successor_images=successors)
    assert (row["in_successor"], row["in_registry"]) == (named, None)
