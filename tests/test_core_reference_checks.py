"""Checks on a manifest's place in the graph (pipeline/core/reference_checks.py): index chains cut at
the depth cap or at a loop, every index above a manifest, and references no sha256 object can prove.
"""

from __future__ import annotations

import pytest

from pipeline.core import crosscheck as cc
from pipeline.core import manifests as m
from pipeline.core.reference_checks import ancestors, stop_deep_or_cyclic_chain, unverifiable_findings

D = ["sha256:" + str(i) * 64 for i in range(10)]
SHA512 = "sha512:" + "ab" * 64


def _index(digest: str, parents: list[str], chain: list[str] | None = None) -> dict:
    record = cc.new_record("r", digest, parents=parents)
    record.update(status=cc.OK, children=[["x", 1, None, m.OCI_MANIFEST]])
    if chain is not None:
        record["chain"] = chain
    return record


# --- the depth cap ---------------------------------------------------------------------------


def test_an_index_three_levels_down_keeps_its_children():
    record = _index(D[9], D[1:4])
    before = dict(record)
    stop_deep_or_cyclic_chain(record, [D[5]])
    assert record == before


@pytest.mark.parametrize(
    "children, unread",
    [
        ([], "none"),
        (D[5:6], D[5]),
        (D[:5], ", ".join(D[:5])),
        (D[:6], ", ".join(D[:5]) + " and 1 more"),
        (D[:8], ", ".join(D[:5]) + " and 3 more"),
    ],
)
def test_an_index_four_levels_down_names_at_most_five_unread_children(children, unread):
    parents = ["sha256:" + c * 64 for c in "abcd"]
    record = _index("sha256:" + "e" * 64, parents)
    stop_deep_or_cyclic_chain(record, children)
    assert record["status"] == cc.INVALID and record["children"] == [] and record["chain_cut"] is True
    assert record["detail"] == (
        f"index chain deeper than 4 levels: {' → '.join([*parents, 'sha256:' + 'e' * 64])}; "
        f"its {len(children)} child manifest(s) are not read: {unread}"
    )


def test_the_chain_is_shown_in_the_order_it_was_walked_when_known():
    walked = [D[4], D[2], D[3], D[1], D[9]]  # root first, not sorted
    record = _index(D[9], sorted(walked[:-1]), chain=walked)
    stop_deep_or_cyclic_chain(record, [D[5]])
    assert record["detail"].startswith(f"index chain deeper than 4 levels: {' → '.join(walked)}; ")


def test_an_empty_walked_chain_falls_back_to_the_parents():
    record = _index(D[9], D[1:5], chain=[])
    stop_deep_or_cyclic_chain(record, [D[5]])
    assert record["detail"].startswith(f"index chain deeper than 4 levels: {' → '.join([*D[1:5], D[9]])}; ")


# --- loops -----------------------------------------------------------------------------------


def test_an_index_that_lists_itself_is_a_loop():
    record = _index(D[2], [])
    stop_deep_or_cyclic_chain(record, [D[3], D[2]])
    assert (record["status"], record["children"], record["chain_cut"]) == (cc.INVALID, [], True)
    assert record["detail"] == f"index chain loops: {D[2]} → {D[2]}; not followed further"


def test_a_loop_names_the_first_child_that_closes_it_and_outranks_the_depth_cap():
    walked = [D[1], D[2], D[3], D[4], D[5]]
    record = _index(D[5], sorted(walked[:-1]), chain=walked)
    stop_deep_or_cyclic_chain(record, [D[6], D[3], D[1]])
    assert record["detail"] == f"index chain loops: {' → '.join(walked)} → {D[3]}; not followed further"
    assert record["chain_cut"] is True


def test_a_cut_chain_outweighs_the_same_index_read_whole_when_merged():
    cut = _index(D[2], [D[1]])
    stop_deep_or_cyclic_chain(cut, [D[1]])
    whole = _index(D[2], [])
    for order in ([cut, whole], [whole, cut]):
        merged = cc.merge_records(order)
        assert merged["status"] == cc.INVALID and merged["detail"].startswith("index chain loops: ")


# --- ancestors -------------------------------------------------------------------------------


def test_ancestors_are_every_index_above_through_each_path():
    parents_of = {
        D[1]: set(),
        D[2]: {D[1]},
        D[3]: {D[1]},
        D[4]: {D[2], D[3]},
        D[5]: {D[4], D[9]},  # D[9] was never read itself
    }
    assert ancestors(parents_of) == {
        D[1]: set(),
        D[2]: {D[1]},
        D[3]: {D[1]},
        D[4]: {D[1], D[2], D[3]},
        D[5]: {D[1], D[2], D[3], D[4], D[9]},
    }


def test_a_cycle_neither_hangs_nor_makes_a_manifest_its_own_ancestor():
    parents_of = {D[1]: {D[3]}, D[2]: {D[1]}, D[3]: {D[2]}, D[4]: {D[3], D[4]}}
    assert ancestors(parents_of) == {
        D[1]: {D[2], D[3]},
        D[2]: {D[1], D[3]},
        D[3]: {D[1], D[2]},
        D[4]: {D[1], D[2], D[3]},
    }


def test_a_manifest_met_again_on_its_own_walk_does_not_end_the_walk():
    # Lists fix the walk order: D[2]'s walk meets D[2] itself (through D[3]) before D[1].
    parents_of = {D[2]: [D[3]], D[3]: [D[1], D[2]], D[1]: []}
    assert ancestors(parents_of)[D[2]] == {D[1], D[3]}


# --- unverifiable references -------------------------------------------------------------------


def test_an_unverifiable_reference_in_full():
    record = cc.new_record("gcr.io/p/app", D[1], tags=["gcr.io/p/app:v1"], parents=[D[2]], source="gs://b/m.json")
    record.update(status=cc.OK, unverifiable=[SHA512])
    (row,) = unverifiable_findings(record)
    assert {k: v for k, v in row.items() if v is not None} == {
        "kind": "unverifiable_digest",
        "severity": "warning",
        "object": "gs://b/m.json",
        "repository": "gcr.io/p/app",
        "manifest_digest": D[1],
        "digest": SHA512,
        "images": [f"gcr.io/p/app@{D[1]}", f"gcr.io/p/app@{D[2]}"],
        "tags": ["gcr.io/p/app:v1"],
        "detail": "referenced by a sha512 digest: the bucket names blobs by sha256, so no object can be "
        "matched with it (not counted as missing)",
    }


@pytest.mark.parametrize(
    "digest, algorithm",
    [("blake3:" + "c" * 64, "'blake3'"), ("multihash+base58:Qm", "'multihash+base58'"), ("not a digest", "None")],
)
def test_an_unregistered_algorithm_is_named_in_the_finding(digest, algorithm):
    record = cc.new_record("r", D[1])
    record.update(status=cc.OK, unverifiable=[digest])
    (row,) = unverifiable_findings(record)
    assert row["detail"] == (
        f"digest algorithm {algorithm} is not registered in the image-spec (sha256, sha512): "
        "the content cannot be verified (not read, not counted as missing)"
    )
