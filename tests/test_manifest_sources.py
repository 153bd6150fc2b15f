"""Manifest files (local folder, gs:// prefix, OCI layout, legacy bucket metadata) and the config keys."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from jobs.images import make_image, make_index, random_layer, write_oci_layout
from pipeline.adapters import gcs
from pipeline.adapters.manifest_files import (
    REF_NAME as REF,
)
from pipeline.adapters.manifest_files import (
    DirectoryStore,
    LegacyStore,
    OciLayoutStore,
    Unavailable,
    digest_from_name,
    legacy_repository_prefix,
)
from pipeline.config import ConfigError, parse_config
from pipeline.core import crosscheck as cc
from pipeline.core.manifests import OCI_INDEX, sha256_of
from pipeline.manifest_config import effective_mode
from pipeline.transforms.manifests import FetchManifestsFn, open_store

IMG = make_image([random_layer(41, 600)], oci=True)
IMG2 = make_image([random_layer(42, 600)], oci=False)


def _all(store):
    return [item for unit in store.units() for item in store.enumerate(unit)]


def test_digest_names():
    hex64 = "a" * 64
    for name in (f"sha256:{hex64}", f"sha256-{hex64}", f"sha256_{hex64}.json"):
        assert digest_from_name(name) == f"sha256:{hex64}"
    assert digest_from_name("manifest.json") is None and digest_from_name(f"sha256:{hex64[:-1]}") is None


def test_directory_store(tmp_path):
    app = tmp_path / "root" / "team" / "app"
    app.mkdir(parents=True)
    (app / IMG.digest.replace(":", "-")).write_bytes(IMG.manifest)
    (app / "current.json").write_bytes(IMG2.manifest)
    (app / "current.json.digest").write_text(IMG2.digest + "\n")
    (app / "tags.json").write_text(json.dumps({"v1": IMG.digest}))
    (app / "README").write_text("notes")
    store = DirectoryStore(0, str(tmp_path / "root"), "reg.example/p", None)
    items = _all(store)
    findings = [i for i in items if "kind" in i]
    requests = {i["digest"]: i for i in items if "kind" not in i}
    assert [f["kind"] for f in findings] == ["invalid_manifest"] and findings[0]["object"].endswith("team/app/README")
    assert requests[IMG.digest]["repository"] == "reg.example/p/team/app"
    assert requests[IMG.digest]["tags"] == ["reg.example/p/team/app:v1"]
    assert requests[IMG2.digest]["location"] == "team/app/current.json"
    assert store.fetch("reg.example/p/team/app", IMG2.digest, None)[0] == IMG2.manifest
    with pytest.raises(Unavailable) as err:
        store.fetch("reg.example/p/team/app", sha256_of(b"x"), None)
    assert err.value.status is None  # a digest the folder never held: no HTTP answer to report


def _fetch_fn_over_layout(layout) -> FetchManifestsFn:
    """The fetch step, set up as a worker would, over one OCI layout source for ``reg/app``."""
    spec = parse_config(
        {
            "source": {"buckets": ["b-b-b"]},
            "manifests": {"sources": [{"oci_layout": str(layout), "repository": "reg/app"}]},
        },
        "t",
    ).manifests
    fn = FetchManifestsFn(spec.sources, spec, None)
    fn.setup()
    return fn


def test_oci_layout_store_and_fetch_recurses_into_children(tmp_path):
    kid = make_image([random_layer(43, 500)], oci=True, architecture="arm64")
    index = make_index([(IMG, "linux", "amd64"), (kid, "linux", "arm64")])
    # The arm64 child is absent from the layout: the index names it, nothing holds it.
    write_oci_layout(
        tmp_path / "layout",
        [(index, OCI_INDEX, "latest"), (IMG2.manifest, IMG2.media_type, None)],
        {**IMG.blobs, IMG.digest: IMG.manifest},
    )
    store = OciLayoutStore(0, str(tmp_path / "layout"), "reg/app", None)
    requests = _all(store)
    assert {r["digest"]: r["tags"] for r in requests} == {sha256_of(index): ["reg/app:latest"], IMG2.digest: []}

    fn = _fetch_fn_over_layout(tmp_path / "layout")
    request = next(r for r in requests if r["digest"] == sha256_of(index))
    records = list(fn.process(request))
    assert [(r["digest"], r["status"]) for r in records] == [
        (sha256_of(index), "ok"),
        (IMG.digest, "ok"),
        (kid.digest, "unavailable"),
    ]
    assert records[2]["parents"] == [sha256_of(index)] and records[2]["tags"] == ["reg/app:latest"]


def test_oci_layout_without_index(tmp_path):
    (tmp_path / "empty").mkdir()
    marker, row = _all(OciLayoutStore(0, str(tmp_path / "empty"), None, None))
    assert marker["kind"] == "invalid_manifest" and marker["object"].endswith("empty/oci-layout")
    assert "the oci-layout file cannot be read" in marker["detail"]
    assert row["kind"] == "manifest_unavailable" and row["repository"] == "empty"


def test_gcs_directory_and_legacy_metadata(emulator, bucket):
    client = gcs.make_client(emulator.endpoint)
    bucket.blob(f"manifests/app/{IMG.digest}").upload_from_string(IMG.manifest)
    store = DirectoryStore(0, f"gs://{bucket.name}/manifests/", "gcr.io/p", None, lambda: client)
    (request,) = _all(store)
    assert request["repository"] == "gcr.io/p/app"
    assert store.fetch(request["repository"], request["digest"], request["location"])[0] == IMG.manifest

    legacy = "containers/repositories/"
    bucket.blob(f"{legacy}library/web/manifests/{IMG2.digest}").upload_from_string(IMG2.manifest)
    bucket.blob(f"{legacy}library/web/tags/stable").upload_from_string(IMG2.digest)
    bucket.blob(f"{legacy}library/web/tag_old").upload_from_string("9f" * 32)  # a v1 image id
    bucket.blob(f"{legacy}library/web/json").upload_from_string(b"\x00\x01")  # v1 repository JSON
    bucket.blob(f"{legacy}library/web/_index_images").upload_from_string(b'[{"id": "9f')  # v1 image index
    bucket.blob(f"{legacy}library/web/manifest_latest").upload_from_string(b"\x00")  # may be a damaged manifest
    items = _all(LegacyStore(0, bucket.name, lambda: client))
    prefix = legacy_repository_prefix(bucket.name)
    (request,) = [i for i in items if "kind" not in i and i["digest"]]
    assert request["repository"] == f"{prefix}/library/web" and request["tags"] == [f"{prefix}/library/web:stable"]
    assert request["bucket"] == bucket.name
    unknown = [i for i in items if "kind" not in i and not i["digest"]]
    assert [u["location"] for u in unknown] == ["library/web/manifest_latest"]  # tried as a manifest when fetched
    # The v1 forms name v1 image ids only: their own info kind, not invalid_manifest (issue 17).
    v1 = sorted((i["object"], i["kind"], i["severity"]) for i in items if "kind" in i)
    assert v1 == [
        (f"{legacy}library/web/{name}", "legacy_metadata_unparsed", "info")
        for name in ("_index_images", "json", "tag_old")
    ]
    (tag,) = [i for i in items if "kind" in i and i["object"].endswith("tag_old")]
    assert "v1 image id " + "9f" * 32 in tag["detail"]


def test_legacy_repository_prefix():
    assert legacy_repository_prefix("artifacts.my-proj.appspot.com") == "gcr.io/my-proj"
    assert legacy_repository_prefix("eu.artifacts.my-proj.appspot.com") == "eu.gcr.io/my-proj"
    assert legacy_repository_prefix("other-bucket") == "gs://other-bucket"


# --- config -----------------------------------------------------------------------------------


def _parse(manifests=None, scan=None):
    raw = {"source": {"buckets": ["artifacts.p.appspot.com"]}}
    if manifests is not None:
        raw["manifests"] = manifests
    if scan is not None:
        raw["scan"] = scan
    return parse_config(raw, "scan.yaml")


def test_config_sources_and_modes():
    config = _parse(
        {
            "sources": [
                {"registry": "https://gcr.io", "gcr_projects": ["my-project"]},
                {
                    "registry": "http://127.0.0.1:5000",
                    "repositories": ["library/alpine"],
                    "auth": "anonymous",
                    "tls_verify": False,
                    "bucket": "artifacts.p.appspot.com",
                },
                {"directory": "gs://b-b/manifests/", "repository": "gcr.io/p"},
                {"oci_layout": "./layout"},
            ],
            "requests_per_second": 5,
            "max_manifest_size": "1MiB",
        }
    )
    kinds = [s.kind for s in config.manifests.sources]
    assert kinds == ["registry", "registry", "directory", "oci_layout"]
    assert config.manifests.sources[0].gcr_projects == ("my-project",)
    assert config.manifests.max_manifest_size == 1024 * 1024
    assert effective_mode(config.scan.mode, config.manifests) == "both"
    assert effective_mode(_parse().scan.mode, _parse().manifests) == "names"
    assert _parse(scan={"mode": "manifests"}).scan.mode == "manifests"  # legacy metadata alone


@pytest.mark.parametrize(
    "manifests, scan, message",
    [
        (
            {"sources": [{"registry": "https://gcr.io", "password": "x"}]},
            None,
            "scan.yaml: manifests.sources: item 0: password: secrets never go in the config file; "
            "set REGISTRY_SCRUB_USERNAME",
        ),
        ({"sources": [{"registry": "gcr.io"}]}, None, "registry: expected http(s)://HOST[:PORT]"),
        ({"sources": [{"registry": "https://x.io", "directory": "/d"}]}, None, "exactly one of"),
        ({"sources": [{"directory": "/d", "gcr_projects": ["p"]}]}, None, "unknown key(s) gcr_projects"),
        ({"sources": [{"registry": "https://x.io", "auth": "magic"}]}, None, "auth: expected one of"),
        (
            {"sources": [{"registry": "https://x.io", "token_realm": "elsewhere"}]},
            None,
            "scan.yaml: manifests.sources: item 0: token_realm: expected one of any_host, same_host",
        ),
        ({"sources": [{"directory": "/d", "token_realm": "same_host"}]}, None, "unknown key(s) token_realm"),
        (
            {"sources": [{"oci_layout": "/l", "complete": "yes"}]},
            None,
            "item 0: complete: expected true (the layout holds",
        ),
        ({"sources": [{"registry": "https://x.io", "credentials_env": "lower"}]}, None, "credentials_env"),
        ({"sources": {"registry": "https://x.io"}}, None, "expected a list of sources"),
        ({"requests_per_second": 0}, None, "manifests.requests_per_second: expected requests per second"),
        ({"legacy_metadata": False}, {"mode": "both"}, "scan.mode: 'both' needs a manifest source"),
        (None, {"mode": "hashes"}, "scan.yaml: scan.mode: expected one of names, manifests, both"),
    ],
)
def test_config_errors_name_the_key(manifests, scan, message):
    with pytest.raises(ConfigError) as err:
        _parse(manifests, scan)
    assert message in str(err.value)


def test_open_store_for_every_kind(tmp_path):
    spec = _parse(
        {"sources": [{"registry": "http://127.0.0.1:9"}, {"directory": str(tmp_path)}, {"oci_layout": str(tmp_path)}]}
    ).manifests
    stores = [open_store(i, s, spec, None) for i, s in enumerate(spec.sources)]
    assert [type(s).__name__ for s in stores] == ["RegistryStore", "DirectoryStore", "OciLayoutStore"]


def test_fetch_compares_each_index_child_with_its_descriptor(tmp_path):
    """The index says one size and type per child; the bytes fetched for that child must agree."""
    kid = make_image([random_layer(44, 500)], oci=True, architecture="arm64")
    document = json.loads(make_index([(IMG, "linux", "amd64"), (kid, "linux", "arm64")]))
    document["manifests"][0]["size"] += 7  # the amd64 child is 7 bytes shorter than declared
    document["manifests"][1]["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json"
    index = json.dumps(document).encode()
    write_oci_layout(
        tmp_path / "layout",
        [(index, OCI_INDEX, "latest")],
        {**IMG.blobs, **kid.blobs, IMG.digest: IMG.manifest, kid.digest: kid.manifest},
    )
    fn = _fetch_fn_over_layout(tmp_path / "layout")
    (request,) = _all(OciLayoutStore(0, str(tmp_path / "layout"), "reg/app", None))
    rows = [row for record in fn.process(request) for row in cc.record_findings(record)]
    assert sorted((r["kind"], r["digest"]) for r in rows) == sorted(
        [("size_mismatch", IMG.digest), ("invalid_manifest", kid.digest)]
    )
    size_row = next(r for r in rows if r["kind"] == "size_mismatch")
    assert size_row["expected"] == str(len(IMG.manifest) + 7) and size_row["actual"] == str(len(IMG.manifest))


def test_one_unreadable_file_does_not_hide_the_rest_of_a_directory(tmp_path):
    """A dangling symlink (or a sidecar that cannot be read) is reported on its own; the other manifests still count."""
    root = tmp_path / "root"
    root.mkdir()
    (root / IMG.digest.replace(":", "-")).write_bytes(IMG.manifest)
    (root / ("sha256-" + "e" * 64)).symlink_to(tmp_path / "gone")
    (root / "current.json").write_bytes(IMG2.manifest)
    (root / "current.json.digest").symlink_to(tmp_path / "gone-too")
    items = _all(DirectoryStore(0, str(root), "reg/p", None))
    requests = sorted(i["digest"] for i in items if "kind" not in i)
    assert IMG.digest in requests
    problems = [i for i in items if "kind" in i]
    assert any(p["object"].endswith("current.json") for p in problems)


# --- hostile trees: special files, escaping links, names that are not UTF-8 ---------------


def _kinds_by_object(items) -> dict[str, tuple[str, str]]:
    return {i["object"].rsplit("/root/", 1)[1]: (i["kind"], i["detail"]) for i in items if "kind" in i}


def test_directory_refuses_special_files_escaping_links_and_undecodable_names(tmp_path):
    import socket

    root = tmp_path / "root"
    (root / "app").mkdir(parents=True)
    (tmp_path / "outside").write_bytes(IMG2.manifest)
    (root / "app" / IMG.digest.replace(":", "-")).write_bytes(IMG.manifest)
    os.mkfifo(root / "app" / ("sha256-" + "f" * 64))
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "app" / "sock"))  # AF_UNIX paths are short
    (root / "app" / IMG2.digest.replace(":", "-")).symlink_to(tmp_path / "outside")
    (root / "escape").symlink_to(tmp_path)
    (root / "inner").symlink_to(root / "app")
    (root / "app" / "loop").symlink_to(root / "app" / "loop")
    undecodable = os.fsdecode(b"caf\xe9-\xff.json")
    (root / "app" / undecodable).write_bytes(IMG.manifest)
    os.mkdir(root / os.fsdecode(b"dir-\xfe"))

    items = _all(DirectoryStore(0, str(root), "reg/p", None))
    requests = [(i["repository"], i["digest"]) for i in items if "kind" not in i]
    assert requests == [("reg/p/app", IMG.digest)]
    problems = _kinds_by_object(items)
    assert problems == {
        "app/sha256-" + "f" * 64: ("invalid_manifest", "a FIFO, not a regular file; never opened"),
        "app/sock": ("invalid_manifest", "a socket, not a regular file; never opened"),
        "app/" + IMG2.digest.replace(":", "-"): (
            "invalid_manifest",
            "symbolic link resolves outside the source root; refused",
        ),
        "escape": ("invalid_manifest", "symbolic link resolves outside the source root; refused"),
        "inner": (
            "invalid_manifest",
            "symbolic link to a folder; not followed (the folder is read under its own path)",
        ),
        "app/loop": ("invalid_manifest", "symbolic link cannot be followed: Too many levels of symbolic links"),
        "app/caf\\xe9-\\xff.json": ("invalid_manifest", "name is not valid UTF-8; not read"),
        "dir-\\xfe": ("invalid_manifest", "name is not valid UTF-8; not read"),
    }
    for row in items:
        json.dumps(row, ensure_ascii=False).encode("utf-8")  # every row can be written out as UTF-8


def test_local_reads_never_open_a_fifo_or_leave_the_root(tmp_path):
    from pipeline.adapters.manifest_files import LocalTree

    root = tmp_path / "root"
    (root / "blobs").mkdir(parents=True)
    os.mkfifo(root / "fifo")
    (tmp_path / "secret").write_text("x")
    (root / "blobs" / "sha256").symlink_to(tmp_path)
    (root / "ok").symlink_to(root / "blobs")
    tree = LocalTree(str(root))
    with pytest.raises(Unavailable, match="fifo is a FIFO, not a regular file; never opened"):
        tree.read("fifo", 100)
    with pytest.raises(Unavailable, match="blobs/sha256/secret resolves outside the source root; refused"):
        tree.read("blobs/sha256/secret", 100)
    with pytest.raises(Unavailable, match="ok is a folder, not a regular file"):
        tree.read("ok", 100)
    with pytest.raises(Unavailable) as err:
        tree.read("absent", 100)
    assert err.value.status is None  # a local file: no HTTP was involved


def test_directory_takes_bare_hex_names_as_sha256(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / IMG.digest.split(":")[1]).write_bytes(IMG.manifest)
    (root / (IMG2.digest.split(":")[1] + ".json")).write_bytes(IMG2.manifest)
    (root / ("A" * 64)).write_bytes(b"{}")  # upper-case hex is not a digest
    (root / ("a" * 63 + ".json")).write_bytes(b"{}")  # nor are 63 digits
    items = _all(DirectoryStore(0, str(root), "reg/p", None))
    assert sorted(i["digest"] for i in items if "kind" not in i) == sorted([IMG.digest, IMG2.digest])
    assert sorted(i["object"].rsplit("/", 1)[1] for i in items if "kind" in i) == ["A" * 64, "a" * 63 + ".json"]
    assert digest_from_name("b" * 64) == "sha256:" + "b" * 64
    assert digest_from_name("b" * 64 + ".json") == "sha256:" + "b" * 64
    assert digest_from_name("b" * 65) is None and digest_from_name("sha512-" + "b" * 64) is None


@pytest.mark.parametrize(
    "content, detail",
    [
        (b"[" * 100 + b"]" * 100, "JSON nested more than 32 levels deep"),
        (b'{"v1": "sha256:' + b"a" * 63 + b'"}', "entry 'v1': expected a sha256 digest"),
        (b'{"v1": "' + IMG.digest.encode() + b'", "v1": "' + IMG.digest.encode() + b'"}', "appears twice"),
        (b'{"bad tag": "' + IMG.digest.encode() + b'"}', "entry 'bad tag': not a tag"),
        (b'{"\\udc80": "' + IMG.digest.encode() + b'"}', "a lone surrogate is not a Unicode character"),
        (b'["v1"]', "expected an object of tag -> digest"),
        (b"\xff", "not UTF-8 text"),
    ],
)
def test_a_bad_tags_file_loses_only_its_tags(tmp_path, content, detail):
    root = tmp_path / "root"
    root.mkdir()
    (root / IMG.digest.replace(":", "-")).write_bytes(IMG.manifest)
    (root / "tags.json").write_bytes(content)
    items = _all(DirectoryStore(0, str(root), "reg/p", None))
    (request,) = [i for i in items if "kind" not in i]
    assert request["digest"] == IMG.digest and request["tags"] == []
    (problem,) = [i for i in items if "kind" in i]
    assert problem["object"].endswith("root/tags.json") and problem["kind"] == "invalid_manifest"
    assert "tags file not understood, its tags are not used" in problem["detail"] and detail in problem["detail"]


# --- OCI layouts: the marker, the index's rules, sizes, escapes -----------------------------


def _layout(tmp_path, entries=None, marker=b'{"imageLayoutVersion":"1.0.0"}'):
    root = tmp_path / "root"
    write_oci_layout(root, [(IMG.manifest, IMG.media_type, "v1")], {})
    if marker is None:
        (root / "oci-layout").unlink()
    else:
        (root / "oci-layout").write_bytes(marker)
    if entries is not None:
        (root / "index.json").write_bytes(json.dumps({"schemaVersion": 2, "manifests": entries}).encode())
    return root


def _entry(**over):
    return {"mediaType": IMG.media_type, "digest": IMG.digest, "size": len(IMG.manifest), **over}


@pytest.mark.parametrize(
    "marker, detail",
    [
        (None, "OCI layout: the oci-layout file cannot be read: oci-layout not found"),
        (b"{}", "OCI layout: image-spec layout: oci-layout must hold imageLayoutVersion"),
        (b'{"imageLayoutVersion": 1}', "imageLayoutVersion must be a string (got a number)"),
        (b"[]", "oci-layout must be a JSON object (got a list)"),
        (b"not json", "OCI layout: the oci-layout file is not valid: not valid JSON"),
    ],
)
def test_oci_layout_marker_is_checked(tmp_path, marker, detail):
    items = _all(OciLayoutStore(0, str(_layout(tmp_path, marker=marker)), "reg/app", None))
    assert [i["digest"] for i in items if "kind" not in i] == [IMG.digest]  # the manifests are still read
    (problem,) = [i for i in items if "kind" in i]
    assert problem["object"].endswith("root/oci-layout") and problem["kind"] == "invalid_manifest"
    assert detail in problem["detail"]


def test_oci_layout_index_size_is_checked_against_the_blob(tmp_path):
    root = _layout(tmp_path, [_entry(size=len(IMG.manifest) + 3, annotations={REF: "v1"})])
    items = _all(OciLayoutStore(0, str(root), "reg/app", None))
    (problem,) = [i for i in items if "kind" in i]
    assert (problem["kind"], problem["digest"]) == ("size_mismatch", IMG.digest)
    assert (problem["expected"], problem["actual"]) == (str(len(IMG.manifest) + 3), str(len(IMG.manifest)))
    assert problem["object"].endswith("root/blobs/sha256/" + IMG.digest.split(":")[1])
    assert problem["images"] == [f"reg/app@{IMG.digest}"] and problem["tags"] == ["reg/app:v1"]
    assert [i["digest"] for i in items if "kind" not in i] == [IMG.digest]


@pytest.mark.parametrize(
    "entry, detail, read",
    [
        (_entry(size=-1), "manifests[0].size: image-spec descriptor: size must be an int64 ≥ 0 (got -1)", True),
        (_entry(size="12"), "manifests[0].size: image-spec descriptor: size must be an int64 ≥ 0", True),
        (_entry(mediaType=None), "manifests[0].mediaType: image-spec descriptor: mediaType is required", True),
        (_entry(annotations={REF: 5}), f"the value of '{REF}' must be a string", True),
        (_entry(annotations={REF: "\udc80"}), "'\\udc80' holds a lone surrogate", True),
        (_entry(annotations={REF: "bad tag!"}), "does not follow the image-spec ref grammar; not used as a tag", True),
        (_entry(platform={"os": "linux"}), "platform.architecture: image-spec index platform", True),
        (_entry(urls="x"), "manifests[0].urls: image-spec descriptor: urls must be a list of strings", True),
        (_entry(digest="sha256:" + "A" * 64), "a sha256 digest must be 64 lowercase hex digits", False),
        (_entry(digest=None), "manifests[0].digest: image-spec descriptor: digest is required", False),
        (_entry(digest="blake3:" + "a" * 64), "'blake3' is not registered in the image-spec (sha256, sha512)", False),
        ("sha256:abc", "manifests[0]: image-spec descriptor: a descriptor must be a JSON object", False),
    ],
)
def test_oci_layout_index_entries_follow_the_image_spec(tmp_path, entry, detail, read):
    if isinstance(entry, dict):
        entry = {k: v for k, v in entry.items() if v is not None}
    root = _layout(tmp_path, [entry])
    (root / "index.json").write_bytes(
        json.dumps({"schemaVersion": 2, "manifests": [entry]}, ensure_ascii=True).encode()
    )
    items = _all(OciLayoutStore(0, str(root), "reg/app", None))
    problems = [i for i in items if "kind" in i]
    kind = "unverifiable_digest" if "not registered" in detail else "invalid_manifest"
    assert [p["kind"] for p in problems] == [kind] and detail in problems[0]["detail"], problems
    assert problems[0]["object"].endswith("root/index.json")
    requests = [i for i in items if "kind" not in i]
    assert [(r["digest"], r["tags"]) for r in requests] == ([(IMG.digest, [])] if read else [])
    json.dumps(problems[0], ensure_ascii=False).encode("utf-8")


def test_oci_layout_blobs_folder_linked_outside_is_refused(tmp_path):
    root = _layout(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    (root / "blobs" / "sha256").rename(elsewhere)
    (root / "blobs" / "sha256").symlink_to(elsewhere)
    store = OciLayoutStore(0, str(root), "reg/app", None)
    items = _all(store)
    (problem,) = [i for i in items if "kind" in i]
    assert problem["object"].endswith("root/blobs/sha256")
    assert problem["detail"] == "symbolic link resolves outside the source root; refused"
    (request,) = [i for i in items if "kind" not in i]
    with pytest.raises(Unavailable, match="resolves outside the source root; refused"):
        store.fetch(request["repository"], request["digest"], request["location"])


def test_oci_layout_fifo_blob_is_never_opened(tmp_path):
    root = _layout(tmp_path)
    blob = root / "blobs" / "sha256" / IMG.digest.split(":")[1]
    blob.unlink()
    os.mkfifo(blob)
    os.mkfifo(root / "blobs" / "stray-fifo")
    store = OciLayoutStore(0, str(root), "reg/app", None)
    items = _all(store)
    assert _kinds_by_object(items) == {
        "blobs/stray-fifo": ("invalid_manifest", "a FIFO, not a regular file; never opened")
    }
    (request,) = [i for i in items if "kind" not in i]
    fn = _fetch_fn_over_layout(root)
    (record,) = fn.process(request)
    assert record["status"] == "unavailable" and "is a FIFO, not a regular file; never opened" in record["detail"]


def test_oci_layout_sha512_entries_are_read_and_hashed_with_sha512(tmp_path):
    import hashlib

    root = _layout(tmp_path)
    digest = "sha512:" + hashlib.sha512(IMG.manifest).hexdigest()
    (root / "blobs" / "sha512").mkdir()
    (root / "blobs" / "sha512" / digest.split(":")[1]).write_bytes(IMG.manifest)
    (root / "index.json").write_bytes(json.dumps({"schemaVersion": 2, "manifests": [_entry(digest=digest)]}).encode())
    (request,) = _all(OciLayoutStore(0, str(root), "reg/app", None))
    assert request["location"] == "blobs/sha512/" + digest.split(":")[1]
    (record,) = _fetch_fn_over_layout(root).process(request)
    assert (record["digest"], record["status"], record["mismatch"]) == (digest, "ok", None)


def _index_over(child: bytes, child_type: str) -> bytes:
    from jobs.images import canonical_json

    entry = {"mediaType": child_type, "digest": sha256_of(child), "size": len(child)}
    return canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]})


@pytest.mark.parametrize("levels", [5, 6])
def test_an_index_chain_past_the_cap_ends_in_a_finding_naming_it(tmp_path, levels):
    chain, blobs, child, child_type = [], {**IMG.blobs, IMG.digest: IMG.manifest}, IMG.manifest, IMG.media_type
    for _ in range(levels):
        child, child_type = _index_over(child, child_type), OCI_INDEX
        blobs[sha256_of(child)] = child
        chain.insert(0, sha256_of(child))
    write_oci_layout(tmp_path / "layout", [(child, OCI_INDEX, "deep")], blobs)
    (request,) = _all(OciLayoutStore(0, str(tmp_path / "layout"), "reg/app", None))
    records = list(_fetch_fn_over_layout(tmp_path / "layout").process(request))
    assert [r["digest"] for r in records] == chain[:5]
    assert [r["status"] for r in records] == ["ok"] * 4 + ["invalid"]
    unread = chain[5] if levels == 6 else IMG.digest
    assert records[-1]["detail"] == (
        f"index chain deeper than 4 levels: {' → '.join(chain[:5])}; its 1 child manifest(s) are not read: {unread}"
    )


def _fetch_fn_over_directory(root):
    """A set-up FetchManifestsFn over one directory source, and the requests its listing makes."""
    spec = parse_config(
        {"source": {"buckets": ["b-b-b"]}, "manifests": {"sources": [{"directory": str(root)}]}}, "t"
    ).manifests
    fn = FetchManifestsFn(spec.sources, spec, None)
    fn.setup()
    return fn, _all(DirectoryStore(0, str(root), "reg/p", None))


def test_a_directory_file_whose_index_lists_its_own_name_stops_as_a_loop(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    name = "sha256:" + "c" * 64
    looping = _index_over(b"", OCI_INDEX).replace(sha256_of(b"").encode(), name.encode())
    (root / name.replace(":", "-")).write_bytes(looping)
    fn, (request,) = _fetch_fn_over_directory(root)
    (record,) = fn.process(request)
    assert (
        record["status"] == "invalid"
        and record["detail"] == f"index chain loops: {name} → {name}; not followed further"
    )
    assert record["mismatch"]["actual"] == sha256_of(looping)


def test_a_fifo_swapped_in_after_the_check_still_cannot_block_the_read(tmp_path, monkeypatch):
    """The belt behind the stat check: open with O_NONBLOCK, then refuse what fstat says is not a file."""
    from pipeline.adapters.manifest_files import LocalTree

    root = tmp_path / "root"
    root.mkdir()
    os.mkfifo(root / "swapped")
    tree = LocalTree(str(root))
    # As if the path was a regular file when checked and became a FIFO just before open().
    monkeypatch.setattr(tree, "_regular", lambda rel: (root / rel, os.stat(root / rel)))
    outcome = []

    def read():
        try:
            tree.read("swapped", 100)
        except Unavailable as err:
            outcome.append(err.reason)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=60)  # a guard against a hang (a blocking open never returns), not a speed check
    assert outcome == ["swapped is not a regular file; not read"]


def test_indexes_sharing_a_child_fetch_it_once_and_keep_every_path(tmp_path):
    """root -> left, right -> middle -> image: the shared index and its image are fetched once,
    and the image still names every index above it, through both paths."""
    middle = _index_over(IMG.manifest, IMG.media_type)

    def side(name: str) -> bytes:
        document = json.loads(_index_over(middle, OCI_INDEX))
        document["annotations"] = {"side": name}
        return json.dumps(document).encode()

    left, right = side("left"), side("right")
    root_index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_INDEX, "digest": sha256_of(d), "size": len(d)} for d in (left, right)],
        }
    ).encode()
    blobs = {sha256_of(d): d for d in (left, right, middle)} | {IMG.digest: IMG.manifest}
    write_oci_layout(tmp_path / "layout", [(root_index, OCI_INDEX, "v1")], blobs)
    (request,) = _all(OciLayoutStore(0, str(tmp_path / "layout"), "reg/app", None))
    records = list(_fetch_fn_over_layout(tmp_path / "layout").process(request))
    by_digest = {r["digest"]: r for r in records}
    assert len(records) == len(by_digest) == 5  # one fetch each
    assert all(r["status"] == "ok" for r in records)
    assert by_digest[IMG.digest]["parents"] == sorted(sha256_of(d) for d in (root_index, left, right, middle))
    assert by_digest[sha256_of(middle)]["parents"] == sorted(sha256_of(d) for d in (root_index, left, right))
    assert sorted(d[0] for d in by_digest[sha256_of(middle)]["declared"]) == sorted([sha256_of(left), sha256_of(right)])
    assert by_digest[IMG.digest]["tags"] == ["reg/app:v1"]
    assert [row for r in records for row in cc.record_findings(r)] == []


def test_ancestors_follow_every_path_and_survive_a_cycle():
    from pipeline.core.reference_checks import ancestors

    parents_of = {"g": {"x"}, "x": {"l", "r"}, "l": {"root"}, "r": {"root"}, "y": {"z"}, "z": {"y"}}
    above = ancestors(parents_of)
    assert above["g"] == {"x", "l", "r", "root"} and above["x"] == {"l", "r", "root"}
    assert above["y"] == {"z"} and above["z"] == {"y"}


@pytest.mark.slow
@pytest.mark.parametrize("levels", [3, 5, 6])
def test_an_image_above_a_chain_cut_at_the_cap_never_reads_as_intact(emulator, bucket, tmp_path, levels):
    """Issue 18: a directory holds every file of the chain, and each file is read as a root too.
    Past the cap, the same index read whole from its own file used to outweigh the cut, so the
    chain's root was an image with no blob and no finding: `intact, blobs: 0`."""
    from jobs.launcher import run_scan

    files = {IMG.digest: IMG.manifest}
    child, child_type = IMG.manifest, IMG.media_type
    for _ in range(levels):
        child, child_type = _index_over(child, child_type), OCI_INDEX
        files[sha256_of(child)] = child
    folder = tmp_path / "manifests"
    folder.mkdir()
    for digest, data in files.items():
        (folder / digest.replace(":", "-")).write_bytes(data)
    (folder / "tags.json").write_text(json.dumps({"deep": sha256_of(child)}))
    bucket.blob("containers/images/notes.txt").upload_from_string(b"no blob of the image is here")
    config = parse_config(
        {
            "source": {"buckets": [bucket.name], "emulator_endpoint": emulator.endpoint},
            "report": {"output": str(tmp_path / "out"), "run_id": "chain"},
            "manifests": {
                "legacy_metadata": False,
                "sources": [{"directory": str(folder), "repository": "gcr.io/chain-1234", "bucket": bucket.name}],
            },
        },
        "test",
    )
    run_scan(config, ["--direct_running_mode=in_memory"])
    rows = [json.loads(line) for p in (tmp_path / "out" / "chain").glob("images-*.jsonl") for line in p.open()]
    status = {row["manifest_digest"]: row["status"] for row in rows}
    assert len(status) == levels + 1 and set(status.values()) == {"broken"}, status
    root = next(row for row in rows if row["manifest_digest"] == sha256_of(child))
    kinds = {item["kind"] for item in root["broken_by"]}
    assert kinds == ({"missing_blob"} if levels <= 4 else {"invalid_manifest"})


def test_a_file_gone_from_a_local_folder_is_unavailable_without_an_http_status(tmp_path):
    """Issue 18: the manifest_unavailable row said http_status 404, though no HTTP was involved."""
    root = tmp_path / "root"
    root.mkdir()
    (root / IMG.digest.replace(":", "-")).write_bytes(IMG.manifest)
    fn, (request,) = _fetch_fn_over_directory(root)
    (root / IMG.digest.replace(":", "-")).unlink()  # listed, then gone before it was read
    (record,) = fn.process(request)
    assert record["status"] == "unavailable" and record["http_status"] is None
    (row,) = cc.record_findings(record)
    assert row["kind"] == "manifest_unavailable" and row["http_status"] is None
    assert "not found in" in row["detail"]


def test_a_gs_folder_is_read_from_the_endpoint_asked_not_from_the_stored_media_link(tmp_path):
    """Issue 18 (docs/recovery.md, step 5 of the demo): the emulator keeps each object's mediaLink with
    the port it was started on; restarted on another port over the same data, every read went to the
    dead port and was retried for minutes. The read must use the endpoint the client was given."""
    from jobs.emulator import Emulator
    from pipeline.adapters.manifest_files import GcsTree

    data = tmp_path / "gcs"
    with Emulator(data) as first:
        client = gcs.make_client(first.endpoint)
        client.create_bucket("moved-manifests").blob("repo/" + IMG.digest).upload_from_string(IMG.manifest)
    with Emulator(data) as second:
        assert second.port != first.port
        tree = GcsTree("moved-manifests", "repo/", gcs.make_client(second.endpoint))
        started = time.monotonic()
        assert tree.read(IMG.digest, 1 << 20) == IMG.manifest
        assert time.monotonic() - started < 10
