"""Recovery core: configs joined to layers by diff_id, reconstructed manifests, orphans, diff_id checks."""

import json
from collections import Counter, defaultdict

import zstandard

from jobs.images import DOCKER_MANIFEST, OCI_MANIFEST, Layer, make_image, make_index, random_layer, sha256_digest
from pipeline.core import crosscheck as cc
from pipeline.core import recovery as rc
from pipeline.core.layer_sniff import LayerSniffer
from pipeline.core.manifests import parse_manifest

BUCKET = "artifacts.p.appspot.com"


def fact_of(data: bytes):
    sniffer = LayerSniffer()
    sniffer.update(data)
    digest = sha256_digest(data)
    if sniffer.result() is None:
        return None, None  # neither a config nor a layer: the transform emits nothing for it
    return rc.sniffed_fact(BUCKET, f"containers/images/{digest}", digest, len(data), sniffer.result())


def facts_of(blobs: dict[str, bytes]):
    configs, layers = [], []
    for data in blobs.values():
        role, fact = fact_of(data)
        if fact is None:
            continue
        (configs if role == rc.CONFIG_ROLE else layers).append(fact)
    return configs, layers


def recover(configs, layers, images=()):
    """The transform's joins, done in plain Python: by diff_id, then by config digest."""
    wants, by_diff = defaultdict(list), defaultdict(list)
    for config in configs:
        for diff_id, want in rc.config_wants(config):
            wants[diff_id].append(want)
    for layer in layers:
        by_diff[layer["diff_id"]].append(layer)
    placed, orphans = defaultdict(list), []
    for diff_id in set(wants) | set(by_diff):
        pairs, candidates = rc.place_layers(diff_id, wants[diff_id], by_diff[diff_id])
        for config_digest, part in pairs:
            placed[config_digest].append(part)
        referenced = {d for image in images for d in image["layers"]}
        orphans += [rc.orphan_row(layer) for layer in candidates if layer["digest"] not in referenced]
    in_registry = defaultdict(list)
    for image in images:
        in_registry[image["config"]].append(image["image"])
    results = {c["digest"]: rc.recover_image(c, placed[c["digest"]], in_registry[c["digest"]]) for c in configs}
    return results, orphans


def image_row(image, repository="team/app", tags=("team/app:v1",)):
    record = cc.new_record(repository, image.digest, tags=tags)
    cc.evaluate(record, image.manifest, image.media_type)
    return rc.image_of_record(record)


def test_a_lost_image_is_rebuilt_from_its_config_and_layers():
    layers = [random_layer(seed=i, size=20_000) for i in range(3)]
    image = make_image(layers, oci=False, label="lost")
    configs, found = facts_of(image.blobs)
    results, orphans = recover(configs, found)
    row, manifest = results[image.config_digest]
    assert orphans == []
    assert row["complete"] is True and row["missing_diff_ids"] == []
    assert (row["layer_count"], row["layers_found"]) == (3, 3)
    assert row["total_size"] == sum(len(layer.blob) for layer in layers)
    assert row["labels"] == {"org.registry-scrub.demo": "lost"}
    assert (row["os"], row["architecture"], row["in_registry"]) == ("linux", "amd64", None)
    parsed = parse_manifest(manifest)
    # gzip layers from a GCR bucket: Docker schema 2, exactly as the original was pushed.
    assert parsed.media_type == DOCKER_MANIFEST == row["manifest_media_type"]
    assert row["manifest_digest"] == sha256_digest(manifest)
    original = parse_manifest(image.manifest)
    assert [(d.role, d.digest, d.size, d.media_type) for d in parsed.blobs] == [
        (d.role, d.digest, d.size, d.media_type) for d in original.blobs
    ]


def test_an_incomplete_image_lists_the_missing_diff_ids_and_gets_no_manifest():
    layers = [random_layer(seed=i, size=5_000) for i in range(3)]
    image = make_image(layers)
    configs, found = facts_of({d: b for d, b in image.blobs.items() if d != layers[1].digest})
    row, manifest = recover(configs, found)[0][image.config_digest]
    assert manifest is None
    assert (row["complete"], row["missing_diff_ids"], row["layers_found"]) == (False, [layers[1].diff_id], 2)
    assert row["manifest_digest"] is None


def test_a_zstd_layer_makes_it_an_oci_manifest():
    tar = b"a" * 3000
    zstd_layer = Layer(blob=zstandard.ZstdCompressor().compress(tar), diff_id=sha256_digest(tar))
    image = make_image([random_layer(seed=1, size=1000), zstd_layer])
    configs, found = facts_of(image.blobs)
    row, manifest = recover(configs, found)[0][image.config_digest]
    document = json.loads(manifest)
    assert document["mediaType"] == OCI_MANIFEST
    assert [layer["mediaType"] for layer in document["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
    ]
    assert [layer["compression"] for layer in row["layers"]] == ["gzip", "zstd"]


def test_in_registry_names_the_images_that_share_the_config():
    image = make_image([random_layer(seed=1, size=1000)], oci=False)
    configs, found = facts_of(image.blobs)
    results, _ = recover(configs, found, [image_row(image, "b/app"), image_row(image, "a/app")])
    row, _ = results[image.config_digest]
    assert row["in_registry"] == f"a/app@{image.digest}"
    assert row["in_registry_images"] == [f"a/app@{image.digest}", f"b/app@{image.digest}"]


def test_true_orphans_are_layers_no_config_lists_and_no_manifest_names():
    kept = make_image([random_layer(seed=1, size=1000)])
    named = random_layer(seed=2, size=1000)
    stray = random_layer(seed=3, size=1000)
    configs, found = facts_of({**kept.blobs, named.digest: named.blob, stray.digest: stray.blob})
    other = make_image([named])  # its manifest names the layer; its config is not in the bucket
    _, orphans = recover(configs, found, [image_row(other)])
    assert [row["digest"] for row in orphans] == [stray.digest]
    assert orphans[0]["diff_id"] == stray.diff_id


def test_of_two_blobs_with_one_diff_id_gzip_and_then_the_lowest_digest_is_chosen():
    blobs = [
        {"digest": "sha256:" + "b" * 64, "compression": "gzip", "diff_id": "d", "problem": None},
        {"digest": "sha256:" + "a" * 64, "compression": "zstd", "diff_id": "d", "problem": None},
        {"digest": "sha256:" + "c" * 64, "compression": "gzip", "diff_id": "d", "problem": None},
        {"digest": "sha256:" + "0" * 64, "compression": "gzip", "diff_id": None, "problem": "truncated"},
    ]
    assert rc.choose_layer(blobs)["digest"] == "sha256:" + "b" * 64
    assert rc.choose_layer(blobs[3:]) is None


def test_a_layer_that_could_not_be_decompressed_is_never_chosen_even_with_a_diff_id():
    # The sniffer leaves diff_id None on a problem; choose_layer must not rely on it.
    broken = {"digest": "sha256:" + "0" * 64, "compression": "gzip", "diff_id": "d", "problem": "truncated"}
    sound = {"digest": "sha256:" + "f" * 64, "compression": "zstd", "diff_id": "d", "problem": None}
    assert rc.choose_layer([broken, sound]) == sound
    assert rc.choose_layer([broken]) is None


def test_as_oci_keeps_every_digest_and_size():
    image = make_image([random_layer(seed=1, size=1000)], oci=False)
    configs, found = facts_of(image.blobs)
    _, manifest = recover(configs, found)[0][image.config_digest]
    oci = parse_manifest(rc.as_oci(manifest))
    assert oci.media_type == OCI_MANIFEST
    assert [(d.digest, d.size) for d in oci.blobs] == [(d.digest, d.size) for d in parse_manifest(manifest).blobs]
    assert rc.as_oci(rc.as_oci(manifest)) == rc.as_oci(manifest)


def test_image_of_record_reads_config_and_layer_order_and_skips_indexes():
    layers = [random_layer(seed=i, size=500) for i in range(2)]
    image = make_image(layers)
    row = image_row(image)
    assert row["config"] == image.config_digest and row["layers"] == [layer.digest for layer in layers]
    assert row["image"] == f"team/app@{image.digest}"
    index = make_index([(image, "linux", "amd64")])
    record = cc.new_record("team/app", sha256_digest(index))
    cc.evaluate(record, index, None)
    assert rc.image_of_record(record) is None


def check(image, manifest_image, blobs, intact=True):
    """Run the diff_id check of ``manifest_image`` (whose config is ``image``'s) over ``blobs``."""
    configs, layers = facts_of(blobs)
    config = next(c for c in configs if c["digest"] == image.config_digest)
    expectations, rows = rc.diff_id_expectations(config["digest"], [config], [image_row(manifest_image)])
    by_layer = defaultdict(list)
    for digest, expectation in expectations:
        by_layer[digest].append(expectation)
    sniffed = {layer["digest"]: layer for layer in layers}
    for digest, group in by_layer.items():
        facts = [{"bucket": BUCKET, "object": "o", "size": 1, "intact": intact}] if digest in blobs else []
        rows += rc.check_diff_ids(digest, group, [sniffed[digest]] if digest in sniffed else [], facts)
    return rows


def test_a_consistent_image_passes_the_diff_id_check():
    image = make_image([random_layer(seed=i, size=2000) for i in range(2)])
    assert check(image, image, image.blobs) == []


def test_layers_in_the_wrong_order_are_diff_id_mismatches_naming_the_image():
    layers = [random_layer(seed=i, size=2000) for i in range(2)]
    image = make_image(layers)
    swapped = make_image(layers[::-1])
    document = json.loads(swapped.manifest)
    document["config"] = json.loads(image.manifest)["config"]
    liar = make_image(layers[::-1])
    liar.manifest = json.dumps(document).encode()
    rows = check(image, liar, image.blobs)
    assert sorted((r["kind"], r["severity"], r["digest"], r["expected"], r["actual"]) for r in rows) == sorted(
        [
            ("diff_id_mismatch", "error", layers[1].digest, layers[0].diff_id, layers[1].diff_id),
            ("diff_id_mismatch", "error", layers[0].digest, layers[1].diff_id, layers[0].diff_id),
        ]
    )
    assert all(r["images"] == [f"team/app@{liar.digest}"] and r["repository"] == "team/app" for r in rows)
    assert "layer 0 of team/app@" in sorted(r["detail"] for r in rows)[0]


def test_a_layer_count_that_differs_from_the_config_is_a_diff_id_mismatch():
    layers = [random_layer(seed=i, size=2000) for i in range(2)]
    image = make_image(layers)
    shorter = make_image(layers[:1])
    document = json.loads(shorter.manifest)
    document["config"] = json.loads(image.manifest)["config"]
    shorter.manifest = json.dumps(document).encode()
    [row] = check(image, shorter, image.blobs)
    assert (row["kind"], row["digest"], row["expected"], row["actual"]) == (
        "diff_id_mismatch",
        image.config_digest,
        "2",
        "1",
    )


def test_an_undecompressable_layer_is_a_mismatch_and_damaged_or_absent_blobs_are_left_to_their_findings():
    layer = random_layer(seed=1, size=5000)
    broken = Layer(blob=layer.blob[:-50], diff_id=layer.diff_id)
    image = make_image([broken])
    [row] = check(image, image, image.blobs)
    assert row["actual"] is None and "cannot be decompressed (the gzip stream ends" in row["detail"]
    assert check(image, image, image.blobs, intact=False) == []
    absent = {d: b for d, b in image.blobs.items() if d != broken.digest}
    assert check(image, image, absent) == []


def test_an_uncompressed_layer_is_its_own_diff_id():
    tar_bytes = b"not really a tar, but stored uncompressed"
    plain = Layer(blob=tar_bytes, diff_id=sha256_digest(tar_bytes))
    image = make_image([plain])
    assert check(image, image, image.blobs) == []


def test_the_summary_counts_what_would_be_lost():
    kept = make_image([random_layer(seed=51, size=1000)], oci=False)
    lost = make_image([random_layer(seed=52, size=1000)], oci=False)
    stray = random_layer(seed=53, size=1000)
    configs, found = facts_of({**kept.blobs, **lost.blobs, stray.digest: stray.blob})
    results, orphans = recover(configs, found, [image_row(kept)])
    counts = Counter()
    for row, _ in results.values():
        counts += rc.recovered_counts(row)
    for row in orphans:
        counts += rc.orphan_counts(row)
    table = rc.recovery_table(counts)
    lost_bytes = sum(len(b) for b in lost.blobs.values())
    assert table == {
        "configs": 2,
        "complete": 2,
        "not_in_registry": 1,
        "not_in_registry_complete": 1,
        "not_in_registry_bytes": lost_bytes,
        "orphan_layers": 1,
        "orphan_bytes": len(stray.blob),
    }
    assert rc.recovery_lines(table)[0].startswith("recovery: 2 image config(s), 2 with every layer; 1 in no manifest")
    assert rc.recovery_lines(rc.recovery_table(Counter())) == []


def test_the_page_shows_the_largest_lost_images_first_and_holds_no_more_than_its_limit():
    rows = [
        {"config_digest": f"c{i}", "in_registry": None, "complete": i % 2 == 0, "total_size": i * 10} for i in range(10)
    ]
    rows.append({"config_digest": "kept", "in_registry": "r@sha256:x", "complete": True, "total_size": 10**9})
    summary = {"recovery": {"configs": 11, "not_in_registry": 10, "orphan_layers": 0}}
    section = rc.page_section(summary, iter(rows), limit=3)
    assert [r["config_digest"] for r in section["rows"]] == ["c8", "c6", "c4"]
    assert section["omitted"] == 7
    assert rc.page_section({"recovery": {"configs": 0, "orphan_layers": 0}}, rows) is None


# --- diff_id checks on plain rows: every field of what they return --------------------------

D = {n: "sha256:" + n * 64 for n in "abcdef0123"}


def an_image(name, layers, tags=()):
    return {"image": f"{name}@{D['f']}", "repository": name, "manifest_digest": D["f"], "tags": list(tags),
            "config": D["c"], "layers": layers}  # fmt: skip


def test_diff_id_expectations_are_whole_and_a_layer_count_mismatch_is_a_whole_row():
    from pipeline.core.findings import Kind, finding
    from pipeline.core.layer_sniff import ConfigFacts

    config = {"digest": D["c"], "bucket": BUCKET, "object": "containers/images/" + D["c"], "size": 9,
              "facts": ConfigFacts(diff_ids=("d0", "d1"))}  # fmt: skip
    good = an_image("team/app", [D["a"], D["b"]], tags=["team/app:v1"])
    short = an_image("team/short", [D["a"]], tags=["team/short:v1", "team/short:latest"])
    expectations, rows = rc.diff_id_expectations(D["c"], [config], [good, short])
    assert expectations == [
        (D["a"], {**good, "index": 0, "expected": "d0", "config": D["c"]}),
        (D["b"], {**good, "index": 1, "expected": "d1", "config": D["c"]}),
    ]
    assert rows == [
        finding(
            Kind.DIFF_ID_MISMATCH,
            bucket=BUCKET,
            object="containers/images/" + D["c"],
            digest=D["c"],
            expected="2",
            actual="1",
            images=[f"team/short@{D['f']}"],
            tags=["team/short:latest", "team/short:v1"],
            repository="team/short",
            manifest_digest=D["f"],
            detail=f"team/short@{D['f']} has 1 layer(s); its config {D['c']} lists 2 diff_id(s)",
        )
    ]
    assert rc.diff_id_expectations(D["c"], [], [good]) == ([], [])
    assert rc.diff_id_expectations(D["c"], [config], []) == ([], [])


def expectation(image, index, expected):
    return {**image, "index": index, "expected": expected, "config": D["c"]}


def test_check_diff_ids_is_a_whole_row_per_expected_diff_id_naming_every_image():
    from pipeline.core.findings import Kind, finding

    one, two = an_image("team/one", [D["a"]], tags=["team/one:v1"]), an_image("team/two", [D["a"]])
    layer = {"diff_id": "got", "problem": None, "bucket": BUCKET, "object": "o", "size": 7}
    blob = {"bucket": BUCKET, "object": "blob-object", "size": 8, "intact": True}
    rows = rc.check_diff_ids(
        D["a"], [expectation(one, 0, "want"), expectation(two, 3, "want"), expectation(one, 1, "got")], [layer], [blob]
    )
    assert rows == [
        finding(
            Kind.DIFF_ID_MISMATCH,
            bucket=BUCKET,
            object="o",
            digest=D["a"],
            size=7,
            expected="want",
            actual="got",
            images=[f"team/one@{D['f']}", f"team/two@{D['f']}"],
            tags=["team/one:v1"],
            detail=f"layer 0 of team/one@{D['f']}; layer 3 of team/two@{D['f']}: the blob decompresses to got; "
            f"config {D['c']} lists want",
        )
    ]


def test_check_diff_ids_of_an_undecompressable_or_uncompressed_blob_and_of_many_images():
    broken = {"diff_id": None, "problem": "truncated", "bucket": BUCKET, "object": "o", "size": 7}
    blob = {"bucket": BUCKET, "object": "blob-object", "size": 8, "intact": True}
    image = an_image("team/one", [D["a"]])
    (row,) = rc.check_diff_ids(D["a"], [expectation(image, 0, "want")], [broken], [blob])
    assert row["actual"] is None and "the blob cannot be decompressed (truncated)" in row["detail"]
    # No layer fact: an uncompressed blob is its own diff_id, and the row names the blob read.
    (row,) = rc.check_diff_ids(D["a"], [expectation(image, 0, "want")], [], [blob])
    assert (row["actual"], row["object"], row["size"]) == (D["a"], "blob-object", 8)
    assert rc.check_diff_ids(D["a"], [expectation(image, 0, D["a"])], [], [blob]) == []
    # Six images: five are named, then an ellipsis.
    many = [expectation(an_image(f"team/i{n}", [D["a"]]), 0, "want") for n in range(6)]
    (row,) = rc.check_diff_ids(D["a"], many, [], [blob])
    assert row["detail"].count("layer 0 of") == 5 and row["detail"].startswith("layer 0 of team/i0@")
    assert f"layer 0 of team/i4@{D['f']} …: the blob decompresses to {D['a']}" in row["detail"]
    # Nothing to check: no expectation, or no intact blob.
    assert rc.check_diff_ids(D["a"], [], [], [blob]) == []
    assert rc.check_diff_ids(D["a"], many, [], [{**blob, "intact": False}]) == []


def _layer(digest, compression, size, uncompressed, diff_id="d"):
    return {
        "bucket": BUCKET,
        "object": "containers/images/" + digest,
        "digest": digest,
        "size": size,
        "compression": compression,
        "diff_id": diff_id,
        "uncompressed_size": uncompressed,
        "problem": None,
    }


def _config(diff_ids):
    from pipeline.core.layer_sniff import ConfigFacts

    facts = ConfigFacts(
        diff_ids=tuple(diff_ids), os="linux", architecture="arm64", variant="v8", created="2026-01-02T03:04:05Z",
        history_head=("FROM scratch",), history_tail=("CMD x",), history_count=4, labels={"k": "v"},
    )  # fmt: skip
    return {"digest": D["c"], "bucket": BUCKET, "object": "containers/images/" + D["c"], "size": 99, "facts": facts}


def test_a_recovered_row_is_whole_and_its_manifest_is_byte_for_byte_the_built_one():
    from pipeline.core import media_types as mt

    gz, zs = _layer(D["a"], "gzip", 10, 100, "d0"), _layer(D["b"], "zstd", 20, None, "d1")
    row, manifest = rc.recover_image(_config(["d0", "d1"]), [(1, "d1", zs), (0, "d0", gz)], ["r@x", "q@y", "r@x"])
    expected_manifest = rc.build_manifest(D["c"], 99, [gz, zs], "oci")
    assert manifest == expected_manifest
    assert json.loads(manifest) == {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": D["c"], "size": 99},
        "layers": [
            {"mediaType": mt.OCI_LAYER_GZIP, "digest": D["a"], "size": 10},
            {"mediaType": mt.OCI_LAYER_ZSTD, "digest": D["b"], "size": 20},
        ],
    }
    assert manifest == (json.dumps(json.loads(manifest), indent=3) + "\n").encode()
    assert row == {
        "in_successor": None,
        "config_digest": D["c"],
        "bucket": BUCKET,
        "object": "containers/images/" + D["c"],
        "config_size": 99,
        "os": "linux",
        "architecture": "arm64",
        "variant": "v8",
        "created": "2026-01-02T03:04:05Z",
        "history_head": ["FROM scratch"],
        "history_tail": ["CMD x"],
        "history_count": 4,
        "labels": {"k": "v"},
        "layer_count": 2,
        "layers_found": 2,
        "total_size": 30,
        "uncompressed_size": 100,
        "complete": True,
        "missing_diff_ids": [],
        "in_registry": "q@y",
        "in_registry_images": ["q@y", "r@x"],
        "manifest_media_type": mt.OCI_MANIFEST,
        "manifest_digest": sha256_digest(manifest),
        "layers": [
            {k: gz[k] for k in ("digest", "size", "bucket", "object", "compression", "diff_id")},
            {k: zs[k] for k in ("digest", "size", "bucket", "object", "compression", "diff_id")},
        ],
    }


def test_an_image_of_gzip_layers_is_docker_schema_2_and_one_missing_a_layer_has_no_manifest():
    from pipeline.core import media_types as mt

    gz = _layer(D["a"], "gzip", 10, 100, "d0")
    row, manifest = rc.recover_image(_config(["d0"]), [(0, "d0", gz)])
    assert row["manifest_media_type"] == mt.DOCKER_MANIFEST and row["in_registry"] is None
    assert json.loads(manifest)["config"]["mediaType"] == mt.DOCKER_CONFIG
    assert json.loads(manifest)["layers"][0]["mediaType"] == mt.DOCKER_LAYER_GZIP
    oci = json.loads(rc.as_oci(manifest))
    assert oci["mediaType"] == mt.OCI_MANIFEST and oci["config"]["mediaType"] == mt.OCI_CONFIG
    assert oci["layers"] == [{"mediaType": mt.OCI_LAYER_GZIP, "digest": D["a"], "size": 10}]
    assert rc.as_oci(manifest) == (json.dumps(oci, indent=3) + "\n").encode()
    row, manifest = rc.recover_image(_config(["d0", "d1"]), [(0, "d0", gz), (1, "d1", None)])
    assert manifest is None and row["complete"] is False and row["missing_diff_ids"] == ["d1"]
    assert (row["manifest_media_type"], row["manifest_digest"], row["layers_found"]) == (None, None, 1)


def test_an_orphan_row_is_whole():
    layer = _layer(D["a"], "gzip", 10, 100, "d0")
    assert rc.orphan_row(layer) == {
        "bucket": BUCKET,
        "object": "containers/images/" + D["a"],
        "digest": D["a"],
        "size": 10,
        "compression": "gzip",
        "diff_id": "d0",
        "detail": "true orphan: no config in the scanned buckets lists its diff_id and no manifest names it",
    }


def test_an_uncompressed_layer_is_its_own_diff_id_and_size():
    from pipeline.core.layer_sniff import LAYER, Sniffed

    role, fact = rc.sniffed_fact(BUCKET, "o", D["a"], 512, Sniffed(LAYER))
    assert (role, fact["diff_id"], fact["uncompressed_size"], fact["compression"]) == ("layer", D["a"], 512, None)
    role, fact = rc.sniffed_fact(BUCKET, "o", D["a"], 512, Sniffed(LAYER, "gzip", "d", 2048))
    assert (fact["diff_id"], fact["uncompressed_size"]) == ("d", 2048)
    assert rc.manifest_format([{"compression": "gzip"}, {"compression": None}]) == "docker"


def test_a_page_row_is_whole_and_ties_keep_the_first_seen():
    row = {
        "config_digest": "c0",
        "in_registry": None,
        "created": "2026-01-02T03:04:05Z",
        "os": "linux",
        "architecture": "arm",
        "variant": "v7",
        "complete": False,
        "missing_diff_ids": ["d1", "d2"],
        "layer_count": 3,
        "total_size": 40,
        "history_head": ["FROM scratch"],
        "history_tail": ["RUN a", "CMD b"],
        "labels": {"z": "1", "a": "2", "m": "3", "b": "4"},
    }
    summary = {"recovery": {"configs": 0, "orphan_layers": 2, "not_in_registry": 1}}
    section = rc.page_section(summary, [row])
    assert section == {
        "counts": {"configs": 0, "orphan_layers": 2, "not_in_registry": 1},
        "rows": [
            {
                "config_digest": "c0",
                "created": "2026-01-02T03:04:05Z",
                "platform": "linux/arm/v7",
                "complete": False,
                "missing": 2,
                "layers": 3,
                "size": 40,
                "last_step": "CMD b",
                "labels": ["a=2", "b=4", "m=3"],
            }
        ],
        "omitted": 0,
    }
    bare = rc.page_section(summary, [{"config_digest": "c1", "history_head": ["FROM x"], "os": "linux"}])["rows"][0]
    assert (bare["platform"], bare["last_step"], bare["size"], bare["missing"], bare["labels"]) == (
        "linux",
        "FROM x",
        0,
        0,
        [],
    )
    assert rc.page_section(summary, [{"config_digest": "c2"}])["rows"][0]["last_step"] is None
    # Equal keys: the earlier row ranks first, whatever the limit.
    same = [{"config_digest": f"s{i}", "complete": True, "total_size": 5} for i in range(4)]
    assert [r["config_digest"] for r in rc.page_section(summary, same, limit=2)["rows"]] == ["s0", "s1"]
    assert [r["config_digest"] for r in rc.page_section(summary, same)["rows"]] == ["s0", "s1", "s2", "s3"]
    assert rc.page_section({"recovery": {"configs": 3, "not_in_registry": 0}}, same, limit=1)["omitted"] == 0
    assert rc.page_section({}, same) is None


def test_recovery_lines_in_full():
    table = {
        "configs": 3,
        "complete": 2,
        "not_in_registry": 1,
        "not_in_registry_complete": 1,
        "not_in_registry_bytes": 1_250_000,
        "orphan_layers": 0,
        "orphan_bytes": 0,
    }
    assert rc.recovery_lines(table) == [
        "recovery: 3 image config(s), 2 with every layer; 1 in no manifest source (1 complete, 1.2 MB): "
        "lost if the bucket goes, see recovered-*.jsonl",
        "  0 true orphan layer(s), 0.0 MB: in no config, no manifest",
    ]
    orphans_only = {**table, "configs": 0, "orphan_layers": 2, "orphan_bytes": 2_500_000}
    assert rc.recovery_lines(orphans_only)[1] == "  2 true orphan layer(s), 2.5 MB: in no config, no manifest"


def test_only_a_readable_image_manifest_is_an_image():
    blobs = [("config", D["c"], 9, None), ("layer", D["a"], 10, None)]
    record = {"status": "ok", "media_type": "application/vnd.oci.image.manifest.v1+json", "blobs": blobs,
              "repository": "r", "digest": D["f"], "tags": []}  # fmt: skip
    assert rc.image_of_record(record)["layers"] == [D["a"]]
    assert rc.image_of_record({**record, "status": "invalid"}) is None
    assert rc.image_of_record({**record, "media_type": "application/vnd.oci.image.index.v1+json"}) is None


def test_a_short_image_does_not_stop_the_others_and_five_places_take_no_ellipsis():
    from pipeline.core.layer_sniff import ConfigFacts

    config = {"digest": D["c"], "bucket": BUCKET, "object": "o", "size": 9, "facts": ConfigFacts(diff_ids=("d0",))}
    short, good = an_image("team/short", []), an_image("team/good", [D["a"]])
    expectations, rows = rc.diff_id_expectations(D["c"], [config], [short, good])
    assert [layer for layer, _ in expectations] == [D["a"]] and len(rows) == 1
    blob = {"bucket": BUCKET, "object": "blob-object", "size": 8, "intact": True}
    five = [expectation(an_image(f"team/i{n}", [D["a"]]), 0, "want") for n in range(5)]
    (row,) = rc.check_diff_ids(D["a"], five, [], [blob])
    assert row["detail"].count("layer 0 of") == 5 and "…" not in row["detail"]


def test_an_orphan_of_unknown_size_counts_no_bytes():
    assert rc.orphan_counts({"size": None}) == Counter({"orphan_layers": 1, "orphan_bytes": 0})


def test_the_page_reads_past_images_in_a_registry_and_ranks_unknown_sizes_as_zero():
    summary = {"recovery": {"configs": 3}}
    rows = [
        {"config_digest": "kept", "in_registry": "r@x", "complete": True, "total_size": 9},
        {"config_digest": "zero", "complete": False, "total_size": 0},
        {"config_digest": "unknown", "complete": False, "total_size": None},
        {"config_digest": "whole", "complete": True, "total_size": 1},
    ]
    section = rc.page_section(summary, rows)
    assert [r["config_digest"] for r in section["rows"]] == ["whole", "zero", "unknown"]
    assert section["rows"][0]["complete"] is True and section["omitted"] == 0
    assert rc.page_section(summary, [])["omitted"] == 0


def test_recovery_lines_round_megabytes_to_one_decimal():
    table = dict.fromkeys(("configs", "complete", "not_in_registry", "not_in_registry_complete"), 1)
    table.update(not_in_registry_bytes=1_050_000, orphan_layers=1, orphan_bytes=1_050_000)
    lines = rc.recovery_lines(table)
    assert "(1 complete, 1.1 MB)" in lines[0] and "1 true orphan layer(s), 1.1 MB" in lines[1]


def test_an_unknown_size_ranks_below_one_byte():
    rows = [{"config_digest": "unknown", "total_size": None}, {"config_digest": "one", "total_size": 1}]
    section = rc.page_section({"recovery": {"configs": 2}}, rows)
    assert [r["config_digest"] for r in section["rows"]] == ["one", "unknown"]
