"""The report model (pipeline/core/report_model.py): pure aggregation, no I/O, no Beam."""

import pickle
import random

import pytest

from pipeline.core import report_model as rm
from pipeline.core.findings import VERIFIED_FIELDS, Kind, finding
from pipeline.core.summary import Tally, build_summary, format_summary, sum_tallies

BUCKET = "artifacts.p.appspot.com"
REPO = "gcr.io/p/app"


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def obj(n: int) -> str:
    return f"containers/images/{digest(n)}"


def verified_row(n: int, size: int, created: str | None = None) -> dict:
    row = dict.fromkeys(VERIFIED_FIELDS)  # every schema key, whatever the schema's age
    row.update(bucket=BUCKET, object=obj(n), generation=n, size=size, crc32c="AAAAAA==", sha256=f"{n:064x}")
    if created:
        row["time_created"] = created
    return row


def summary_of(findings, verified_rows, *, listed=None, **extra):
    """summary.json as the pipeline builds it from the same rows (pipeline/core/summary.py)."""
    tally = sum_tallies(
        [Tally.of_finding(r) for r in findings]
        + [Tally.of_verified(r) for r in verified_rows]
        + [Tally.of_listed(size) for size in (listed if listed is not None else _listed_sizes(findings, verified_rows))]
    )
    summary = build_summary(
        tally,
        run_id="r1",
        started_at="2026-11-27T12:00:00Z",
        ended_at="2026-11-27T12:05:00Z",
        config={"source": {"buckets": [BUCKET]}, "scan": {"mode": "both"}},
        report_location="/reports/r1",
    )
    # Reclaim proven (its rule is pipeline/core/reclaim.py's, tested there); tests that need it blocked say so.
    summary["reclaimable_bytes"] = sum(r["size"] or 0 for r in findings if r["kind"] == Kind.UNREFERENCED_BLOB.value)
    # Per-bucket verdicts (reclaim, decommission, the fleet): only where a test gives them.
    for key in ("reclaim_by_bucket", "reclaim_blocked_by", "decommission", "fleet"):
        summary.pop(key, None)
    summary.update(extra)
    return summary


def _listed_sizes(findings, verified_rows):
    objects = [r for r in findings if r["kind"] in rm.OBJECT_FINDING_KINDS]
    return [r["size"] or 0 for r in objects + list(verified_rows)]


def test_unaccounted_objects_make_an_error_verdict():
    summary = summary_of([], [verified_row(1, 10)], listed=[10, 20])
    assert rm.verdict(summary)["headline"] == "Errors: 1 listed object(s) ended in no report row"
    summary = summary_of([], [verified_row(1, 10)], listed=[])
    assert rm.verdict(summary)["headline"] == "Errors: 1 more report row(s) than listed objects"


def sample_rows():
    findings = [
        finding(
            Kind.DIGEST_MISMATCH,
            bucket=BUCKET,
            object=obj(1),
            generation=1,
            digest=digest(1),
            expected=digest(1),
            actual=digest(99),
            size=1000,
            crc32c_match=False,
            images=[f"{REPO}@{digest(500)}"],
            tags=[f"{REPO}:v1"],
        ),
        finding(Kind.READ_ERROR, bucket=BUCKET, object=obj(2), digest=digest(2), size=300, http_status=503),
        finding(Kind.MALFORMED_NAME, bucket=BUCKET, object="containers/images/stray.tmp", size=5),
        finding(Kind.UNREFERENCED_BLOB, bucket=BUCKET, object=obj(3), digest=digest(3), size=4000, generation=3),
        finding(Kind.UNREFERENCED_BLOB, bucket=BUCKET, object=obj(4), digest=digest(4), size=7000, generation=4),
        finding(
            Kind.MISSING_BLOB,
            bucket=BUCKET,
            digest=digest(5),
            expected=digest(5),
            images=[f"{REPO}@{digest(501)}"],
            tags=[f"{REPO}:v2"],
        ),
    ]
    verified_rows = [verified_row(10, 2000, "2026-11-27T01:00:00Z"), verified_row(11, 500, "2024-01-01T00:00:00.5Z")]
    verified_rows.append(verified_row(3, 4000))  # the unreferenced blob is also intact
    verified_rows.append(verified_row(4, 7000, "2019-06-01T00:00:00Z"))
    return findings, verified_rows


def test_verdicts_follow_the_summary_exit_status_and_severities():
    clean = summary_of([], [verified_row(1, 10)])
    assert rm.verdict(clean) == {
        "state": "clean",
        "exit_status": 0,
        "exit_meaning": "clean",
        "headline": "Clean: no finding of severity error or warning",
    }
    warned = summary_of([finding(Kind.MALFORMED_NAME, bucket=BUCKET, object="x", size=1)], [])
    assert rm.verdict(warned)["state"] == "warnings"
    assert rm.verdict(warned)["exit_status"] == 0
    findings, verified_rows = sample_rows()
    errors = rm.verdict(summary_of(findings, verified_rows))
    assert errors["state"] == "errors" and errors["exit_status"] == 1
    assert errors["headline"] == "Errors: 3 finding(s) of severity error"
    # Info alone (an unreferenced blob) keeps a run clean.
    info = summary_of([finding(Kind.UNREFERENCED_BLOB, bucket=BUCKET, object=obj(3), size=4)], [])
    assert rm.verdict(info)["state"] == "clean"


def test_a_run_that_listed_nothing_is_never_clean():
    """Issue 18: `--prefix ../` listed 0 objects and the page said Clean."""
    nothing = summary_of([], [])
    assert nothing["objects_listed"] == 0
    assert rm.verdict(nothing) == {
        "state": "warnings",
        "exit_status": 0,
        "exit_meaning": "no finding, but nothing was listed to check",
        "headline": "Nothing checked: no object was listed under the prefix",
    }


def test_page_counts_are_the_summary_counts():
    findings, verified_rows = sample_rows()
    summary = summary_of(findings, verified_rows)
    model = rm.build_model(summary, rm.accumulate(findings, verified_rows))
    assert model["findings_by_kind"] == summary["findings_by_kind"]
    assert model["findings_by_severity"] == {"error": 3, "warning": 1, "info": 2}
    assert model["totals"]["bytes_verified"] == summary["bytes_verified"] == 13500
    totals = {section["kind"]: section["total"] for section in model["findings"]}
    assert totals == {
        "digest_mismatch": 1,
        "missing_blob": 1,
        "read_error": 1,
        "malformed_name": 1,
        "unreferenced_blob": 2,
    }
    # Errors first, then warnings, then info.
    assert [s["severity"] for s in model["findings"]] == ["error", "error", "error", "warning", "info"]


def test_bytes_by_state():
    findings, verified_rows = sample_rows()
    summary = summary_of(findings, verified_rows, listed=[1000, 300, 5, 2000, 500, 4000, 7000, 123])
    states = {s["state"]: s["bytes"] for s in rm.bytes_by_state(summary, rm.accumulate(findings, verified_rows))}
    assert states == {
        "intact": 13500,
        "damaged": 1000,
        "unreadable": 300,
        "unreferenced": 11000,
        "reclaimable": 11000,
        # listed 14928 - intact 13500 - damaged 1000 - unreadable 300
        "not checked": 128,
    }


def test_reclaim_blocked_when_the_summary_says_so():
    findings, verified_rows = sample_rows()
    reasons = ["source 0 (registry http://r): a catalog walk cannot see untagged manifests"]
    summary = summary_of(findings, verified_rows, reclaim_blocked_by=reasons)
    summary["reclaimable_bytes"] = None
    model = rm.build_model(summary, rm.accumulate(findings, verified_rows))
    reclaim = model["reclaim"]
    assert reclaim["blocked"] is True and reclaim["blocked_by"] == reasons
    assert reclaim["unreferenced_objects"] == 2 and reclaim["unreferenced_bytes"] == 11000
    assert {s["state"]: s["bytes"] for s in model["bytes_by_state"]}["reclaimable"] is None


def test_reclaim_plan_and_soft_delete_pass_through():
    findings, verified_rows = sample_rows()
    plan = {"objects": 2, "bytes": 11000, "file": "reclaim-plan.txt"}
    summary = summary_of(findings, verified_rows, reclaim_plan=plan, soft_delete={"retention_seconds": 604800})
    reclaim = rm.build_model(summary, rm.accumulate(findings, verified_rows))["reclaim"]
    assert reclaim["plan"] == {
        "file": "reclaim-plan.txt",
        "objects": 2,
        "bytes": 11000,
        "buckets": [],
        "usd_per_month": None,
        "unpriced_bytes": None,
        "price_date": None,
        "price_basis": None,
    }
    assert reclaim["blocked"] is False and reclaim["largest_reclaimable"] is True
    assert reclaim["soft_delete"] == {"soft_delete": '{"retention_seconds":604800}'}


def test_reclaim_per_bucket_blockers_plan_cost_and_largest_of_proven_buckets():
    """The summary shape of per-bucket reclaim (reclaim_by_bucket, blocker dicts, a priced plan)."""
    other = "eu.artifacts.p.appspot.com"
    findings = [
        finding(Kind.UNREFERENCED_BLOB, bucket=BUCKET, object=obj(1), size=900, generation=1),
        finding(Kind.UNREFERENCED_BLOB, bucket=other, object=obj(2), size=50, generation=2),
        finding(Kind.UNREFERENCED_BLOB, bucket=other, object=obj(3), size=70, generation=3),
    ]
    blocker = {
        "bucket": BUCKET,
        "code": "incomplete_source",
        "source": "registry http://127.0.0.1:5000 (catalog walk)",
        "reason": "a catalog walk cannot see untagged manifests",
        "manifests": [f"m{n}" for n in range(7)],
        "manifests_total": 12,
    }
    summary = summary_of(
        findings,
        [],
        reclaim_blocked_by=[blocker],
        reclaim_by_bucket={
            BUCKET: {"reclaim_proven": False, "reclaimable_bytes": None, "unreferenced_objects": 1,
                     "soft_delete": "unknown: the bucket's metadata was not read"},
            other: {"reclaim_proven": True, "reclaimable_bytes": 120, "unreferenced_objects": 2,
                    "soft_delete": "deleted objects stay restorable, and billed, for 7 day(s) (soft delete)"},
        },
        reclaim_plan={
            "file": "reclaim-plan.txt", "objects": 2, "bytes": 120, "buckets": [other],
            "monthly_cost": {"usd_per_month": 0.000003, "unpriced_bytes": 0, "price_date": "2026-09-20",
                             "basis": "list prices"},
        },
        unreferenced_objects=3,
        unreferenced_bytes=1020,
    )  # fmt: skip
    summary["reclaimable_bytes"] = None
    model = rm.build_model(summary, rm.accumulate(findings, []))
    reclaim = model["reclaim"]
    assert reclaim["blocked"] is True and reclaim["proven_buckets"] == [other] and reclaim["proven_bytes"] == 120
    assert reclaim["blocked_by"] == [
        f"{BUCKET}: a catalog walk cannot see untagged manifests (source: registry http://127.0.0.1:5000 "
        "(catalog walk)); manifests: m0, m1, m2, m3, m4 and 7 more"
    ]
    assert reclaim["largest_reclaimable"] is True
    assert [b["object"] for b in reclaim["largest"]] == [obj(3), obj(2)]  # the blocked bucket's blob is not listed
    assert reclaim["plan"]["usd_per_month"] == 0.000003 and reclaim["plan"]["price_date"] == "2026-09-20"
    assert reclaim["soft_delete"] == {
        f"soft delete, {BUCKET}": "unknown: the bucket's metadata was not read",
        f"soft delete, {other}": "deleted objects stay restorable, and billed, for 7 day(s) (soft delete)",
    }
    assert {b["bucket"]: b["reclaim"] for b in model["buckets"]} == {BUCKET: "blocked", other: 120}
    assert (reclaim["unreferenced_objects"], reclaim["unreferenced_bytes"]) == (3, 1020)


def test_largest_reclaimable_blobs_are_the_twenty_largest_in_order():
    sizes = list(range(1, 31))
    random.Random(4).shuffle(sizes)
    rows = [finding(Kind.UNREFERENCED_BLOB, bucket=BUCKET, object=obj(s), size=s * 100, generation=s) for s in sizes]
    largest = rm.build_model(summary_of(rows, []), rm.accumulate(rows))["reclaim"]["largest"]
    assert [b["size"] for b in largest] == [s * 100 for s in range(30, 10, -1)]
    assert largest[0]["object"] == obj(30) and largest[0]["generation"] == "30"


def test_age_histogram_bins_by_creation_day_relative_to_the_run_start():
    findings, verified_rows = sample_rows()
    summary = summary_of(findings, verified_rows)
    model = rm.build_model(summary, rm.accumulate(findings, verified_rows))
    bins = {b["label"]: (b["objects"], b["bytes"]) for b in model["age_histogram"]}
    assert bins["< 1 day"] == (1, 2000)
    assert bins["2-5 years"] == (1, 500)  # 2024-01-01 to 2026-11-27: 1061 days
    assert bins["> 5 years"] == (1, 7000)  # 2019-06-01
    # Rows without time_created (older runs; findings) are "unknown", never dropped.
    assert bins["unknown"] == (4, 4000 + 1000 + 300 + 5)
    assert sum(objects for objects, _ in bins.values()) == len(verified_rows) + 3


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-11-27T12:00:00.123Z", "2026-11-27"),
        (1764201600, "2025-11-27"),
        (1764201600000, "2025-11-27"),
        ("yesterday", None),
        ("2026-13-45T00:00:00Z", None),
        (None, None),
        (True, None),
    ],
)
def test_created_date_reads_rfc3339_and_epoch(value, expected):
    created = rm.created_date(value)
    assert (created.isoformat() if created else None) == expected


def test_detail_rows_are_capped_per_kind_deterministically():
    rows = [finding(Kind.READ_ERROR, bucket=BUCKET, object=obj(n), size=1, http_status=500) for n in range(50)]
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    acc = rm.accumulate(shuffled, detail_cap=5)
    summary = summary_of(rows, [])
    section = rm.build_model(summary, acc)["findings"][0]
    assert section["total"] == 50 and section["omitted"] == 45
    assert [r["object"] for r in section["rows"]] == [obj(n) for n in range(5)]


def test_accumulators_merge_in_any_order_to_the_same_model():
    findings, verified_rows = sample_rows()
    findings = findings * 3
    images = [
        rm.image_row(f"{REPO}@{digest(600 + i)}", [rm.image_info(f"{REPO}@{digest(600 + i)}", [])], [])
        for i in range(7)
    ]
    summary = summary_of(findings, verified_rows)
    whole = rm.build_model(summary, rm.accumulate(findings, verified_rows, images, detail_cap=2, image_cap=3))

    tagged = [("f", r) for r in findings] + [("v", r) for r in verified_rows] + [("i", r) for r in images]
    for seed in range(3):
        random.Random(seed).shuffle(tagged)
        parts = [rm.ReportAccumulator(detail_cap=2, image_cap=3) for _ in range(4)]
        for n, (tag, row) in enumerate(tagged):
            part = parts[n % 4]
            {"f": part.add_finding, "v": part.add_verified, "i": part.add_image}[tag](row)
        # Through pickle, as Beam ships accumulators between workers.
        parts = [pickle.loads(pickle.dumps(p)) for p in parts]
        merged = parts[3].merge(parts[1]).compact().merge(parts[0].merge(parts[2]))
        assert rm.build_model(summary, merged) == whole


def test_image_info_sums_distinct_blobs_and_an_index_covers_its_children():
    index, child = f"{REPO}@{digest(700)}", f"{REPO}@{digest(701)}"
    refs = [
        (digest(701), {"role": "manifest", "size": None, "images": [child, index], "tags": [f"{REPO}:v1"]}),
        (digest(1), {"role": "config", "size": 100, "images": [child, index], "tags": [f"{REPO}:v1"]}),
        (digest(2), {"role": "layer", "size": 5000, "images": [child, index], "tags": [f"{REPO}:v1"]}),
        (digest(2), {"role": "layer", "size": 5000, "images": [child, index], "tags": [f"{REPO}:v1"]}),
    ]
    parts: dict[str, list] = {}
    for d, ref in refs:
        for image, part in rm.image_refs(d, ref):
            parts.setdefault(image, []).append(part)
    info = rm.image_info(child, parts[child])
    assert info == {
        "image": child,
        "repository": REPO,
        "manifest_digest": digest(701),
        "tags": [f"{REPO}:v1"],
        "size": 5100,
        "blobs": 2,
    }
    assert rm.image_info(index, parts[index])["size"] == 5100
    # A schema 1 manifest declares no sizes: unknown, not zero.
    assert rm.image_info(child, [{"tags": [], "blob": digest(3), "size": None}])["size"] is None


def test_image_row_names_the_blobs_that_broke_it():
    findings, _ = sample_rows()
    image = f"{REPO}@{digest(500)}"
    evidence = [item for row in findings for img, item in rm.image_evidence(row) if img == image]
    row = rm.image_row(
        image, [rm.image_info(image, [{"tags": [f"{REPO}:v1"], "blob": digest(1), "size": 1000}])], evidence
    )
    assert row["status"] == "broken" and row["error_findings"] == 1 and row["size"] == 1000
    assert row["broken_by"] == [{"kind": "digest_mismatch", "digest": digest(1), "object": obj(1), "size": 1000}]
    intact = rm.image_row(f"{REPO}@{digest(9)}", [rm.image_info(f"{REPO}@{digest(9)}", [])], [])
    assert intact["status"] == "intact" and intact["broken_by"] == []
    # A manifest finding breaks the image without naming a blob.
    manifest = finding(Kind.MANIFEST_DIGEST_MISMATCH, repository=REPO, digest=digest(9), images=[f"{REPO}@{digest(9)}"])
    ((_, item),) = rm.image_evidence(manifest)
    assert rm.image_row(f"{REPO}@{digest(9)}", [], [item])["broken_by"] == [
        {"kind": "manifest_digest_mismatch", "digest": None, "object": None, "size": None}
    ]


def test_images_from_findings_alone_and_most_affected_order():
    findings, verified_rows = sample_rows()
    extra = finding(Kind.SIZE_MISMATCH, bucket=BUCKET, digest=digest(8), images=[f"{REPO}@{digest(501)}"])
    rows = rm.image_rows_from_findings(findings + [extra])
    assert [(r["image"], r["status"], r["size"]) for r in rows] == [
        (f"{REPO}@{digest(500)}", "broken", None),
        (f"{REPO}@{digest(501)}", "broken", None),
    ]
    acc = rm.accumulate(findings + [extra], verified_rows, rows)
    top = rm.most_affected_images(acc)
    assert [(t["image"], t["error_findings"]) for t in top] == [
        (f"{REPO}@{digest(501)}", 2),
        (f"{REPO}@{digest(500)}", 1),
    ]
    page_rows = rm.build_model(summary_of(findings + [extra], verified_rows), acc)["images"]["rows"]
    assert page_rows[0]["tags"] == ["v2"]  # the repository is its own column


def test_evidence_of_a_finding_keeps_expected_actual_crc32c_and_http_status():
    row = finding(
        Kind.DIGEST_MISMATCH,
        bucket=BUCKET,
        object=obj(1),
        expected=digest(1),
        actual=digest(2),
        size=10,
        crc32c_match=True,
    )
    row.update(crc32c="yZRlqg==", expected_size=12, reads=[{"sha256": digest(2)}, {"sha256": digest(2)}])
    detail = rm.detail_row(row)
    assert detail["expected"] == digest(1) and detail["actual"] == digest(2)
    assert detail["crc32c_diagnosis"] == "written wrong: the bytes match the crc32c GCS stored"
    assert detail["crc32c"] == "yZRlqg==" and detail["expected_size"] == 12
    assert detail["reads"] == f'[{{"sha256":"{digest(2)}"}},{{"sha256":"{digest(2)}"}}]'
    error = rm.detail_row(finding(Kind.READ_ERROR, bucket=BUCKET, object="x", http_status=503))
    assert error["http_status"] == "503" and error["crc32c_diagnosis"] is None
    # Lists where the other helper's rows name several repositories.
    several = rm.detail_row(finding(Kind.MISSING_BLOB, repository=["gcr.io/a", "gcr.io/b"]))
    assert several["repositories"] == ["gcr.io/a", "gcr.io/b"]


def test_long_values_are_bounded_on_the_page():
    long_name = "containers/images/" + "x" * 5000
    detail = rm.detail_row(finding(Kind.MALFORMED_NAME, bucket=BUCKET, object=long_name, size=1))
    assert len(detail["object"]) == rm.MAX_TEXT and detail["object"].endswith("\u2026")
    many = rm.detail_row(finding(Kind.MISSING_BLOB, images=[f"{REPO}@{digest(n)}" for n in range(40)]))
    assert len(many["images"]) == rm.NAMES_PER_ROW and many["image_count"] == 40


def test_bucket_table_counts_objects_once():
    findings, verified_rows = sample_rows()
    (bucket,) = rm.bucket_table(rm.accumulate(findings, verified_rows))
    assert bucket == {
        "bucket": BUCKET,
        "objects": 4 + 3,  # verified rows + digest_mismatch, read_error, malformed_name
        "bytes": 13500 + 1000 + 300 + 5,
        "intact_objects": 4,
        "intact_bytes": 13500,
        "damaged_bytes": 1000,
        "unreadable_bytes": 300,
        "unreferenced_objects": 2,
        "unreferenced_bytes": 11000,
        "errors": 3,
        "warnings": 1,
        "reclaim": None,
    }


def test_compact_keeps_only_what_the_caps_allow():
    rows = [finding(Kind.READ_ERROR, bucket=BUCKET, object=obj(n), size=n) for n in reversed(range(15))]
    acc = rm.accumulate(rows, detail_cap=10)
    assert len(acc.details["read_error"].entries) == 15  # trimmed lazily, past twice the cap
    acc.compact()
    assert len(acc.details["read_error"].entries) == 10
    assert [r["object"] for r in acc.details["read_error"].items()] == [obj(n) for n in range(10)]


def test_terminal_summary_names_the_most_affected_images_and_the_page():
    findings, verified_rows = sample_rows()
    rows = rm.image_rows_from_findings(findings)
    acc = rm.accumulate(findings, verified_rows, rows)
    summary = summary_of(findings, verified_rows, report_html="/reports/r1/report.html")
    summary["images_affected"] = 2
    summary["most_affected_images"] = rm.most_affected_images(acc)
    lines = format_summary(summary).splitlines()
    start = lines.index("most affected images (2 of 2):")
    assert lines[start + 1 : start + 3] == [
        f"  {REPO}@{digest(500)}  (1 error finding(s), 1 broken part(s))",
        f"  {REPO}@{digest(501)}  (1 error finding(s), 1 broken part(s))",
    ]
    assert lines[start + 3] == "report: /reports/r1"
    assert lines[start + 4] == "page:   /reports/r1/report.html"
    # A summary from before the page existed prints as it did.
    del summary["most_affected_images"], summary["report_html"]
    assert not [line for line in format_summary(summary).splitlines() if "most affected" in line or "page:" in line]


# --- the verdict per bucket: the page's units add up ---------------------------------------------------------

OTHER = "eu.artifacts.p.appspot.com"


def two_bucket_run():
    """Rows of two buckets (reclaim proven in one), their summary, and docs/report.md's verdict built from the same
    listing: what the cards, the Reclaim section and the charts all draw."""
    from tests.support import decommission as dc

    verified_rows = [verified_row(1, 100), verified_row(2, 200), verified_row(3, 300)]
    verified_rows += [{**verified_row(n, size), "bucket": OTHER} for n, size in ((5, 70), (6, 30), (7, 400))]
    findings = [
        finding(Kind.DIGEST_MISMATCH, bucket=BUCKET, object=obj(4), size=50, expected=digest(4), actual=digest(9)),
        finding(Kind.UNREFERENCED_BLOB, bucket=BUCKET, object=obj(3), size=300, generation=3),
        finding(Kind.UNREFERENCED_BLOB, bucket=OTHER, object=obj(5), size=70, generation=5),
        finding(Kind.UNREFERENCED_BLOB, bucket=OTHER, object=obj(6), size=30, generation=6),
    ]
    decommission = {
        BUCKET: dc.entry(BUCKET, "cannot_tell", objects=4, size=650, usd=0.00001),
        OTHER: dc.entry(OTHER, "safe_to_delete", objects=3, size=500, usd=0.00002),
    }
    summary = summary_of(
        findings,
        verified_rows,
        reclaim_by_bucket={
            BUCKET: {"reclaim_proven": False, "reclaimable_bytes": None, "unreferenced_objects": 1,
                     "unreferenced_bytes": 300},
            OTHER: {"reclaim_proven": True, "reclaimable_bytes": 100, "unreferenced_objects": 2,
                    "unreferenced_bytes": 100},
        },
        reclaim_blocked_by=[{"bucket": BUCKET, "code": "incomplete_source", "reason": "a catalog walk"}],
        reclaim_plan={"file": "reclaim-plan.txt", "objects": 2, "bytes": 100, "buckets": [OTHER]},
        decommission=decommission,
        fleet=dc.fleet_of(decommission),
    )  # fmt: skip
    summary["reclaimable_bytes"] = None  # one bucket is blocked
    return summary, rm.build_model(summary, rm.accumulate(findings, verified_rows))


def test_the_cards_the_reclaim_section_and_the_charts_add_up():
    summary, model = two_bucket_run()
    states = {s["state"]: s for s in model["bytes_by_state"]}
    units, reclaim = model["units"], model["reclaim"]
    # Bytes: the cards hold every listed byte, which the chart's disjoint states split.
    disjoint = sum(states[s]["bytes"] for s in ("intact", "damaged", "unreadable", "not checked"))
    assert units["bytes"] == disjoint == summary["bytes_listed"] == 1150
    assert units["objects"] == summary["objects_listed"] == 7 and units["agrees"] is True
    assert {b["bucket"]: (b["objects"], b["bytes"]) for b in model["buckets"]} == {
        bucket: (entry["objects"], entry["bytes"]) for bucket, entry in summary["decommission"].items()
    }
    # Blobs and bytes proven reclaimable: one figure in the chart, the Reclaim section, the plan and the cards' line.
    # (The chart once drew "blocked" here while the Reclaim section gave the proven bucket's bytes.)
    assert states["reclaimable"]["bytes"] == reclaim["proven_bytes"] == units["reclaim"]["bytes"] == 100
    assert states["reclaimable"]["note"] == "in 1 of 2 buckets"
    assert reclaim["proven_objects"] == units["reclaim"]["objects"] == summary["reclaim_plan"]["objects"] == 2
    assert units["unreferenced_objects"] == reclaim["unreferenced_objects"] == 3
    assert units["unreferenced_bytes"] == reclaim["unreferenced_bytes"] == states["unreferenced"]["bytes"] == 400
    # Images: the fleet's totals are the cards' totals.
    assert units["images_only_here"] == sum(v["images_only_here"] for v in summary["fleet"]["by_verdict"].values())


def test_the_page_says_the_same_numbers_in_each_place():
    from pipeline.report_html import render

    _, model = two_bucket_run()
    page = " ".join(render(model).split())
    assert "These 2 bucket(s) hold 7 object(s), 1.1 kB: everything the scan listed" in page
    assert "of 3 (400 B), 2 of them (100 B) are proven unused in 1 of 2 bucket(s)." in page
    assert "100 B (in 1 of 2 buckets)</text>" in page  # the chart's reclaimable bar
    assert "Proven reclaimable in 1 bucket(s): <b>100 B</b> in 2 unreferenced blob(s)" in page


def test_a_verdict_that_covers_other_objects_than_the_scan_listed_is_said_so():
    from pipeline.report_html import render

    summary, _ = two_bucket_run()
    summary["decommission"][OTHER]["bytes"] = 499
    model = rm.build_model(summary, rm.ReportAccumulator())
    assert model["units"]["agrees"] is False
    assert "The verdicts cover 7 object(s), 1.1 kB, but the scan listed 7, 1.1 kB:" in " ".join(render(model).split())
    summary["decommission"][OTHER]["bytes"] = None  # its listing failed: cannot_tell, size unknown
    model = rm.build_model(summary, rm.ReportAccumulator())
    assert model["units"]["unknown_size"] == 1 and model["units"]["bytes"] == 650
    assert "but the scan listed 7, 1.1 kB (1 bucket(s) of unknown size):" in " ".join(render(model).split())


def test_the_model_carries_both_blocks_unchanged_and_orders_cards_by_cost():
    summary, model = two_bucket_run()
    assert model["decommission"] == summary["decommission"] and model["fleet"] == summary["fleet"]
    assert model["card_order"] == [OTHER, BUCKET] == [row["bucket"] for row in summary["fleet"]["rows"]]
    # Without the fleet (a summary written before it): the same rule, cost descending, unpriced last, then name.
    entries = {
        "c": {"monthly_cost": {"usd_per_month": None}},
        "b": {"monthly_cost": {"usd_per_month": 2.0}},
        "a": {"monthly_cost": {"usd_per_month": 2.0}},
        "d": {"monthly_cost": {"usd_per_month": 0}},
    }
    assert rm.card_order(entries, None) == ["a", "b", "d", "c"]
    assert rm.card_order(entries, {"rows": [{"bucket": "c"}, {"bucket": "gone"}]}) == ["c", "a", "b", "d"]
    assert rm.card_order(None, None) == []


def test_top_k_equality_is_its_cap_and_its_items():
    a, b = rm.TopK(2), rm.TopK(2)
    for key in (3, 1, 2):
        a.add((key,), f"i{key}")
    for key in (2, 1):
        b.add((key,), f"i{key}")
    assert a == b and a.items() == ["i1", "i2"]
    assert a != rm.TopK(3, list(b.entries)) and a != b.items()
    b.add((0,), "i0")
    assert a != b


def test_a_blocker_reads_as_one_sentence():
    assert rm.blocker_text("a plain reason") == "a plain reason"
    assert rm.blocker_text({}) == "all buckets: blocked"
    assert rm.blocker_text({"bucket": "b", "code": "legacy_not_read"}) == "b: legacy_not_read"
    names = [f"r@sha256:{n}" for n in range(7)]
    blocker = {"bucket": "b", "code": "c", "source": "s", "reason": "r", "manifests": names, "manifests_total": 1234}
    assert rm.blocker_text(blocker) == (
        "b: r (source: s); manifests: r@sha256:0, r@sha256:1, r@sha256:2, r@sha256:3, r@sha256:4 and 1,229 more"
    )
    assert rm.blocker_text({**blocker, "manifests": names[:2], "manifests_total": 0}) == (
        "b: r (source: s); manifests: r@sha256:0, r@sha256:1"
    )
    assert rm.blocker_text({**blocker, "manifests": names[:6], "manifests_total": None}).endswith(" and 1 more")
