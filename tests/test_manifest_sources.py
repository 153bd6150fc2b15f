"""Manifest files (local folder, gs:// prefix, OCI layout, legacy bucket metadata) and the config keys."""

from __future__ import annotations

import json

import pytest

from jobs.images import make_image, make_index, random_layer, write_oci_layout
from pipeline.adapters import gcs
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
    assert err.value.status == 404


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
    (row,) = _all(OciLayoutStore(0, str(tmp_path / "empty"), None, None))
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
    bucket.blob(f"{legacy}library/web/json").upload_from_string(b"\x00\x01")
    items = _all(LegacyStore(0, bucket.name, lambda: client))
    prefix = legacy_repository_prefix(bucket.name)
    (request,) = [i for i in items if "kind" not in i and i["digest"]]
    assert request["repository"] == f"{prefix}/library/web" and request["tags"] == [f"{prefix}/library/web:stable"]
    assert request["bucket"] == bucket.name
    unknown = [i for i in items if "kind" not in i and not i["digest"]]
    assert [u["location"] for u in unknown] == ["library/web/json"]  # tried as a manifest when fetched
    assert [i["kind"] for i in items if "kind" in i] == ["invalid_manifest"]  # the v1 tag


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
