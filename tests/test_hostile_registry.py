"""A registry's JSON answers are input too: read with the same bounded, strict reader as manifests.

A lone surrogate in a repository or tag name would otherwise travel into the pipeline and
kill the run when Beam encodes it; a 5,000-digit integer or 100,000 nested brackets would
raise from ``json.loads``. These check the adapter's parsing of an answer directly: no
registry on this machine serves such bodies (distribution validates its names).
"""

from __future__ import annotations

import pytest

from pipeline.adapters.registry import Answer, RegistryError, _json_or_raise


@pytest.mark.parametrize(
    "body, reason",
    [
        (b'{"repositories": ["\\udc80"]}', "a lone surrogate is not a Unicode character"),
        (b'{"name": "app", "tags": ["v1", "\\ud800x"]}', "a lone surrogate is not a Unicode character"),
        (b'{"repositories": [' + b"9" * 5000 + b"]}", "an integer of 5000 digits is beyond int64"),
        (b'{"repositories": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "JSON nested more than 32 levels deep"),
        (b'{"repositories": [], "repositories": ["x"]}', "key 'repositories' appears twice"),
        (b'{"repositories": NaN}', "NaN is not JSON"),
        (b"\xff\xfe{}", "not UTF-8 text"),
    ],
)
def test_hostile_catalog_answers_are_refused_with_a_reason(body, reason):
    with pytest.raises(RegistryError) as err:
        _json_or_raise(Answer(200, {}, body), "catalog")
    assert err.value.status == 200
    assert err.value.reason.startswith("catalog: the answer is not JSON we accept: ") and reason in err.value.reason
    err.value.reason.encode("utf-8")  # the reason lands in a finding: it must be writable


def test_a_plain_catalog_answer_still_reads():
    assert _json_or_raise(Answer(200, {}, b'{"repositories": ["library/app"]}'), "catalog") == {
        "repositories": ["library/app"]
    }
