"""Pre-2017 GCR metadata under ``containers/repositories/``: which objects are not manifests (pure).

Before 2017 GCR stored the v1 registry's layout (docker-registry 0.x, its ``tag_path``,
``index_images_path`` and ``repository_json_path``) in the bucket, then v2 manifests and tags:

* ``…/<repo>/tag_<tag>``: a v1 tag holds a v1 image id (64 hex, no ``sha256:``); a v2 tag holds
  the manifest's ``sha256:`` digest;
* ``…/<repo>/_index_images`` (a JSON list of ``{"id": v1 id}``), ``…/<repo>/json``,
  ``…/<repo>/tag<tag>_json`` and ``…/<repo>/_private``: v1 repository metadata;
* the v1 images themselves under ``containers/images/<v1 id>/{json,layer,ancestry,_checksum}``,
  which the listing reports as ``malformed_name`` (never planned for deletion).

None of the v1 forms can name a ``sha256:`` blob, and a tag only adds a name to a manifest that is
read from its own object, so none of them can hide a reference: they are
``legacy_metadata_unparsed`` (info), not ``invalid_manifest``, and do not block reclaim. Any other
object that does not parse may be a damaged manifest, and stays ``invalid_manifest``.
"""

from __future__ import annotations

import re

# What the v1 registry (docker-registry 0.x, whose storage layout pre-2017 GCR kept under
# containers/) wrote beside its tags: repository JSON, the v1 image index, the private flag.
# Each names v1 image ids (containers/images/<id>/{json,layer,ancestry}), never a sha256 blob.
_V1_FILES = frozenset({"json", "_index_images", "_private"})
_V1_TAG_JSON = re.compile(r"tag.+_json")
_V1_IMAGE_ID = re.compile(r"[0-9a-f]{64}")


def is_v1_metadata(name: str) -> bool:
    return name in _V1_FILES or _V1_TAG_JSON.fullmatch(name) is not None


def legacy_tag_detail(target: str) -> str:
    """Why a legacy tag object that names no sha256 digest cannot hide a reference: manifests are
    enumerated from their own objects, so a tag only adds a name to one."""
    if _V1_IMAGE_ID.fullmatch(target):
        return (
            f"legacy tag names v1 image id {target} (pre-2017 v1 registry): its layers live under "
            f"containers/images/{target}/, never as a sha256 blob; not a manifest"
        )
    return (
        "legacy tag object holds neither a sha256 digest nor a v1 image id; it names no blob "
        "(manifests are read from their own objects)"
    )
