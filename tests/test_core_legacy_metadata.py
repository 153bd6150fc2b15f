"""Pre-2017 GCR metadata: which legacy objects are v1 forms that cannot hide a sha256 reference."""

import pytest

from pipeline.core.legacy_metadata import is_v1_metadata, legacy_tag_detail

V1_ID = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "name",
    ["json", "_index_images", "_private", "tag1.0_json", "taglatest_json", "tag__json"],
)
def test_the_v1_registrys_repository_files_are_v1_metadata(name):
    assert is_v1_metadata(name) is True


@pytest.mark.parametrize(
    "name",
    [
        # May be a damaged manifest: these stay invalid_manifest.
        "manifest.json",
        "tag_json",  # the v2 tag "json" (tag_<tag>), not a v1 tag's JSON
        "tag_latest",
        "xjson",
        "json.bak",
        "index_images",
        "private",
        "tag1.0_json.bak",
        "mytag1.0_json",
        "",
    ],
)
def test_other_names_are_not_v1_metadata(name):
    assert is_v1_metadata(name) is False


def test_a_tag_naming_a_v1_image_id_says_where_its_layers_live():
    assert legacy_tag_detail(V1_ID) == (
        f"legacy tag names v1 image id {V1_ID} (pre-2017 v1 registry): its layers live under "
        f"containers/images/{V1_ID}/, never as a sha256 blob; not a manifest"
    )


@pytest.mark.parametrize(
    "target",
    ["", "latest", V1_ID[:-1], V1_ID + "0", V1_ID.upper(), "sha1:" + V1_ID[:40], " " + V1_ID],
)
def test_a_tag_naming_nothing_known_says_it_names_no_blob(target):
    assert legacy_tag_detail(target) == (
        "legacy tag object holds neither a sha256 digest nor a v1 image id; it names no blob "
        "(manifests are read from their own objects)"
    )
