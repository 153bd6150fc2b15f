"""What a recovered row keeps of an image config or a stored manifest: bounded text, history lines, media type.

Small JSON documents only (no layer is decompressed), so these run in milliseconds.
"""

import json

import pytest

from pipeline.core.layer_sniff import MANIFEST, LayerSniffer, parse_config_facts

D = {n: "sha256:" + n * 64 for n in "abc"}


def config(**fields) -> bytes:
    return json.dumps({"rootfs": {"type": "layers", "diff_ids": [D["a"]]}, **fields}).encode()


@pytest.mark.parametrize("field", ["os", "architecture", "variant", "created"])
@pytest.mark.parametrize(
    "length, kept",
    [(64, "x" * 64), (65, "x" * 63 + "…")],  # at most 64 characters, the cut marked
)
def test_identifying_fields_are_kept_up_to_64_characters(field, length, kept):
    facts, why = parse_config_facts(config(**{field: "x" * length}))
    assert why is None and getattr(facts, field) == kept


@pytest.mark.parametrize("length, kept", [(300, "R" * 300), (301, "R" * 299 + "…")])
def test_a_history_line_is_kept_up_to_300_characters(length, kept):
    facts, _ = parse_config_facts(config(history=[{"created_by": "R" * length}]))
    assert (facts.history_head, facts.history_tail) == ((kept,), (kept,))


def test_history_entries_without_a_command_are_empty_lines_that_still_count():
    # An empty layer's entry, an entry that is not an object, and a command that is not text.
    history = [{"empty_layer": True}, "RUN not an object", {"created_by": 7}, {"created_by": "CMD run"}]
    facts, _ = parse_config_facts(config(history=history))
    assert facts.history_head == ("", "", "")
    assert facts.history_tail == ("", "", "CMD run")
    assert facts.history_count == 4


def test_a_manifest_blob_keeps_its_media_type():
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": D["c"], "size": 9},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": D["a"], "size": 10}],
    }
    sniffer = LayerSniffer()
    sniffer.update(json.dumps(manifest).encode())
    result = sniffer.result()
    assert result.kind == MANIFEST
    assert (result.manifest.media_type, result.manifest.config, result.manifest.references) == (
        "application/vnd.docker.distribution.manifest.v2+json",
        D["c"],
        (D["c"], D["a"]),
    )
