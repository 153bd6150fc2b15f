"""What the manifest cross-check joins on: each listed object keyed by the digest its name claims."""

import pytest

from pipeline.core.blobs import ListedObject
from pipeline.core.classify import blob_fact

DIGEST = "sha256:" + "ab" * 32
OBJ = ListedObject(
    "artifacts.p.appspot.com",
    "containers/images/" + DIGEST,
    17,
    42,
    "crc=",
    storage_class="COLDLINE",
    time_created="2026-01-02T03:04:05Z",
)


@pytest.mark.parametrize("intact", [True, False, None])
def test_a_blob_fact_is_the_listing_keyed_by_digest_with_whether_its_bytes_hashed_to_it(intact):
    assert blob_fact(DIGEST, OBJ, intact) == (
        DIGEST,
        {
            "bucket": "artifacts.p.appspot.com",
            "object": "containers/images/" + DIGEST,
            "generation": 17,
            "size": 42,
            "crc32c": "crc=",
            "storage_class": "COLDLINE",
            "time_created": "2026-01-02T03:04:05Z",
            "intact": intact,
        },
    )
