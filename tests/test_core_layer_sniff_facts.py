"""What a recovered row keeps of an image config or a stored manifest: bounded text, history lines,
media type; and the edges of streaming a gzip layer that only small, chosen inputs reach.

Small inputs only, so these run in milliseconds.
"""

import gzip
import hashlib
import json
import zlib

import pytest

from pipeline.core.layer_sniff import CONFIG, MANIFEST, OUTPUT_STEP, LayerSniffer, parse_config_facts

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


def sniffed(chunks, **kwargs):
    sniffer = LayerSniffer(**kwargs)
    for chunk in chunks:
        sniffer.update(chunk)
    return sniffer.result()


def _split_where_output_waits(compressed: bytes) -> int:
    """The first cut after which a full output step comes out with every input byte taken,
    so more output waits inside inflate with nothing left to feed it."""
    for cut in range(1, len(compressed)):
        inflate = zlib.decompressobj(31)
        if len(inflate.decompress(compressed[:cut], OUTPUT_STEP)) == OUTPUT_STEP and not inflate.unconsumed_tail:
            return cut
    raise AssertionError("no such cut")


def test_output_waiting_inside_inflate_is_drained_before_the_next_chunk():
    tar = bytes(4 * 1024 * 1024)  # zeros: a few kB of gzip inflate to many output steps
    compressed = gzip.compress(tar, mtime=0)
    cut = _split_where_output_waits(compressed)
    result = sniffed([compressed[:cut], compressed[cut:]])
    assert result.problem is None and result.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()


def test_a_next_member_whose_magic_is_split_across_chunks_is_read():
    first, second = gzip.compress(b"a" * 5000, mtime=0), gzip.compress(b"b" * 7000, mtime=0)
    blob = first + second
    result = sniffed([blob[: len(first) + 1], blob[len(first) + 1 :]])
    assert result.problem is None
    assert result.diff_id == "sha256:" + hashlib.sha256(b"a" * 5000 + b"b" * 7000).hexdigest()


@pytest.mark.parametrize(
    "tail, problem",
    [
        (b"\x1f\x8b", "the gzip stream ends before its last member is complete (truncated)"),
        (b"\0\0", "2+ bytes after the end of the gzip stream are not another gzip member"),
        (b"\0", "1 stray byte(s) after the end of the gzip stream"),
    ],
)
def test_bytes_after_the_last_member_are_named_for_what_they_are(tail, problem):
    result = sniffed([gzip.compress(b"x" * 100, mtime=0) + tail])
    assert result.diff_id is None and result.problem == problem


def test_output_of_exactly_the_cap_is_still_a_layer():
    data = bytes(range(256)) * 4
    result = sniffed([gzip.compress(data, mtime=0)], max_output_bytes=len(data))
    assert result.problem is None and result.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()


def test_a_config_of_exactly_the_cap_in_one_chunk_is_a_config():
    data = config(os="linux")
    assert sniffed([data], config_cap=len(data)).kind == CONFIG
