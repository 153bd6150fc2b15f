"""report.html rendering (pipeline/report_html) and its pipeline step (pipeline/transforms/html_report.py)."""

import re
from html.parser import HTMLParser

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that

from pipeline.core import report_model as rm
from pipeline.core.findings import VERIFIED_FIELDS, Kind, finding
from pipeline.core.summary import Tally, build_summary, sum_tallies
from pipeline.report_html import esc, human_bytes, render, usd
from pipeline.runner import local_runner
from pipeline.transforms.html_report import ReportModel
from tests.support import decommission as dc

BUCKET = "artifacts.p.appspot.com"
HOSTILE = [
    'containers/images/<script>alert("x")</script>',
    "containers/images/a\"onmouseover='alert(1)'",
    "containers/images/\udc80\udcff-not-utf8",
    "containers/images/evil\u202etxt.exe",
    "containers/images/nul\x00and\x1bescape",
    "containers/images/</textarea><img src=x onerror=alert(1)>",
]


def page_for(findings, verified_rows, images=(), **summary_fields):
    tally = sum_tallies(
        [Tally.of_finding(r) for r in findings]
        + [Tally.of_verified(r) for r in verified_rows]
        + [Tally.of_listed(r["size"] or 0) for r in verified_rows]
        + [Tally.of_listed(r["size"] or 0) for r in findings if r["kind"] in rm.OBJECT_FINDING_KINDS]
    )
    summary = build_summary(
        tally,
        run_id="run-<1>",
        started_at="2026-11-27T12:00:00Z",
        ended_at="2026-11-27T12:01:00Z",
        config={"source": {"buckets": [BUCKET]}, "scan": {"mode": "both"}},
        report_location="/r/run-1",
    )
    summary["reclaimable_bytes"] = sum(r["size"] or 0 for r in findings if r["kind"] == Kind.UNREFERENCED_BLOB.value)
    # Per-bucket verdicts (reclaim, decommission, the fleet): only where a test gives them.
    for key in ("reclaim_by_bucket", "reclaim_blocked_by", "decommission", "fleet"):
        summary.pop(key, None)
    summary.update(summary_fields)
    model = rm.build_model(summary, rm.accumulate(findings, verified_rows, images))
    return render(model), model


def verified(**fields):
    row = dict.fromkeys(VERIFIED_FIELDS)  # every schema key, whatever the schema's age
    row.update(fields)
    return row


def hostile_rows():
    findings = [
        finding(Kind.MALFORMED_NAME, bucket=BUCKET, object=name, size=3, actual=name, detail=name) for name in HOSTILE
    ]
    findings.append(
        finding(
            Kind.UNREFERENCED_BLOB,
            bucket=BUCKET,
            object=HOSTILE[0],
            size=10,
            images=[HOSTILE[1]],
            tags=[HOSTILE[5]],
        )
    )
    return findings


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.scripts, self.data = [], [], [], []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend((tag, k, v) for k, v in attrs)
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.data).append(data)

    @classmethod
    def of(cls, page: str) -> "Collector":
        parsed = cls()
        parsed.feed(page)
        return parsed


LOADING_ATTRIBUTES = ("src", "href", "srcset", "action", "data", "poster", "background")


def loading_attributes(parsed: Collector) -> list[tuple]:
    """Attributes that would make the browser fetch something. The contents bar's ``href="#section"`` links
    stay on the page, so they are allowed, but only where that section exists."""
    ids = {value for _, key, value in parsed.attrs if key == "id"}
    return [
        (tag, key, value)
        for tag, key, value in parsed.attrs
        if key in LOADING_ATTRIBUTES and not (tag == "a" and key == "href" and value[:1] == "#" and value[1:] in ids)
    ]


def test_hostile_names_are_text_never_markup():
    page, _ = page_for(hostile_rows(), [])
    page.encode("utf-8")  # lone surrogates became escapes; the page is valid UTF-8
    parsed = Collector()
    parsed.feed(page)
    assert parsed.tags.count("script") == 1  # ours, and only ours
    assert "img" not in parsed.tags and "textarea" not in parsed.tags
    assert not [a for a in parsed.attrs if a[1].startswith("on")]
    text = "".join(parsed.data)
    assert 'containers/images/<script>alert("x")</script>' in text
    assert "containers/images/\\udc80\\udcff-not-utf8" in text
    assert "evil\\u202etxt.exe" in text and "\u202e" not in page
    assert "nul\\u0000and\\u001bescape" in text and "\x00" not in page


def test_escape_function():
    assert esc('<a href="x">\'') == "&lt;a href=&quot;x&quot;&gt;&#x27;"
    assert esc("\udcff") == "\\udcff"
    assert esc(None) == ""
    assert esc(12) == "12"
    assert [usd(x) for x in (1234.5, 0.0034, 0.000006, 0, 1e-9)] == [
        "1,234.50",
        "0.0034",
        "0.000006",
        "0.00",
        "less than 0.000001",
    ]


def test_the_page_fetches_nothing():
    page, _ = page_for(hostile_rows(), [])
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';' in page
    parsed = Collector()
    parsed.feed(page)
    assert loading_attributes(parsed) == []
    assert ("a", "href", "#decommission") in parsed.attrs  # the contents bar's links are on the page
    assert loading_attributes(Collector.of('<a href="#nowhere">x</a><a href="x.html#run" id="run">y</a>')) == [
        ("a", "href", "#nowhere"),
        ("a", "href", "x.html#run"),
    ]
    assert not [tag for tag in parsed.tags if tag in ("link", "img", "iframe", "object", "embed", "base", "form")]
    assert not re.search(r"https?://|url\(|@import|//[a-z0-9.-]+\.[a-z]{2,}/", page, re.IGNORECASE)
    assert not re.search(r"fetch\(|XMLHttpRequest|import\(|\.src\s*=", "".join(parsed.scripts))


def test_sections_verdict_tables_and_charts():
    rows = [
        finding(
            Kind.DIGEST_MISMATCH,
            bucket=BUCKET,
            object="containers/images/sha256:" + "1" * 64,
            size=10,
            expected="sha256:" + "1" * 64,
            actual="sha256:" + "2" * 64,
            crc32c_match=False,
        ),
        finding(Kind.READ_ERROR, bucket=BUCKET, object="containers/images/sha256:" + "3" * 64, size=5, http_status=503),
    ]
    good = [verified(bucket=BUCKET, object="o", generation=1, size=2_500_000, crc32c="x", sha256="0" * 64)]
    image = rm.image_row(
        "gcr.io/p/web@sha256:" + "9" * 64,
        [],
        [item for _, item in rm.image_evidence({**rows[0], "images": ["gcr.io/p/web@sha256:" + "9" * 64]})],
    )
    page, model = page_for(rows, good, [image])
    parsed = Collector()
    parsed.feed(page)
    text = " ".join(parsed.data)
    assert "Errors: 2 finding(s) of severity error" in text
    assert model["verdict"]["state"] == "errors"
    assert 'class="verdict errors"' in page and 'id="exit-status">1<' in page
    assert "damaged after the write: the bytes differ from the crc32c GCS stored" in text
    assert "503" in text
    assert page.count("<svg ") == 2
    assert 'aria-label="bytes by state"' in page and 'aria-label="objects by age"' in page
    assert re.search(r'<tr data-status="broken"><td>gcr\.io/p/web</td>', page)
    for table in ("kinds", "images", "buckets", "findings"):
        assert f'<table id="{table}">' in page
    assert '<button type="button" data-kind="read_error" aria-pressed="false">read_error (1)</button>' in page
    assert human_bytes(2_500_000) == "2.5 MB" and human_bytes(999) == "999 B" and human_bytes(None) == "n/a"


def test_capped_findings_point_to_the_jsonl():
    rows = [finding(Kind.MALFORMED_NAME, bucket=BUCKET, object=f"x{n:04d}", size=1) for n in range(1005)]
    page, model = page_for(rows, [])
    (section,) = model["findings"]
    assert (section["total"], len(section["rows"]), section["omitted"]) == (1005, 1000, 5)
    assert "malformed_name: 1,005 finding(s) (1,000 shown; 5 more in findings-*.jsonl)" in page
    assert page.split('<table id="findings">')[1].count('<tr data-kind="malformed_name">') == 1000


def test_blocked_reclaim_is_explained():
    rows = [finding(Kind.UNREFERENCED_BLOB, bucket=BUCKET, object="containers/images/sha256:" + "4" * 64, size=9)]
    page, _ = page_for(
        rows, [], reclaim_blocked_by=["manifest source 0 is a catalog walk <untagged unseen>"], reclaimable_bytes=None
    )
    assert "Not reclaimable as a whole: 1 unreferenced blob(s), 9 B" in page
    assert "<li>manifest source 0 is a catalog walk &lt;untagged unseen&gt;</li>" in page
    assert "blocked (see Reclaim)" in page  # the chart draws no number for null
    assert "The 20 largest unreferenced blobs" in page
    reclaimable, _ = page_for(rows, [])
    assert "Reclaimable: <b>9 B</b> in 1 unreferenced blob(s).</p>" in reclaimable
    assert "blocked (see Reclaim)" not in reclaimable and "The 20 largest reclaimable blobs" in reclaimable


def test_report_model_combine_on_a_beam_runner_equals_the_direct_fold():
    """The pipeline's CombineGlobally and a plain fold produce the same accumulator (FnApiRunner, in memory)."""
    # GCS names are valid UTF-8, and Beam's str coder refuses lone surrogates: those stay out here.
    findings = [row for row in hostile_rows() if "\udc80" not in row["object"]] * 3
    good = [
        verified(bucket=BUCKET, object=f"o{n}", generation=n, size=n, crc32c="x", sha256="0" * 64) for n in range(20)
    ]
    expected = rm.accumulate(findings, good)

    def check(accumulators):
        (got,) = accumulators
        assert got == expected, "the combined accumulator differs from the direct fold"

    options = PipelineOptions(["--direct_running_mode=in_memory", "--direct_num_workers=1"])
    # Our offline FnApiRunner: a bare DirectRunner would first try to download Prism (DESIGN.md section 5).
    with beam.Pipeline(runner=local_runner(options), options=options) as p:
        f = p | "Findings" >> beam.Create(findings)
        v = p | "Verified" >> beam.Create(good)
        assert_that((f, v) | ReportModel(), check)


def test_a_page_that_cannot_be_written_leaves_the_audit_standing(tmp_path, caplog):
    from pipeline.transforms.html_report import WriteHtmlFn

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    summary = {"run_id": "r", "exit_status": 0, "findings_by_severity": {}, "findings_by_kind": {}}
    fn = WriteHtmlFn(str(blocker / "run"))
    assert list(fn.process((summary, rm.ReportAccumulator()))) == [summary]
    assert f"report.html could not be written to {blocker / 'run' / 'report.html'}" in caplog.text
    written = WriteHtmlFn(str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    assert list(written.process((summary, rm.ReportAccumulator()))) == [summary]
    assert "Clean: no finding of severity error or warning" in (tmp_path / "run" / "report.html").read_text()


# --- the verdict per bucket and the fleet (summary["decommission"], summary["fleet"]) -----------------------

OTHER = "eu.artifacts.p.appspot.com"
THIRD = "artifacts.q.appspot.com"


def fleet_summary_fields(run_dir="/r/run-1"):
    """Three buckets, one of each kind a platform lead meets, as docs/report.md shapes them."""
    decommission = {
        BUCKET: dc.entry(
            BUCKET,
            "would_lose_images",
            objects=31,
            size=2_100_000,
            usd=0.05,
            headline="Deleting loses 3 images: sha256:00000000… and 2 more. Export them first.",
            reasons=["3 complete images in the bucket are in no role: successor source", "every object was read"],
            images_only_here=[dc.image_only_here(1, run_dir), dc.image_only_here(2, run_dir)],
            images_only_here_total=3,
        ),
        OTHER: dc.entry(
            OTHER,
            "safe_to_delete",
            objects=5,
            size=900_000_000_000,
            usd=23.4,
            headline="Safe to delete: nothing lives only here. Saves $23.40 a month.",
        ),
        THIRD: dc.entry(
            THIRD,
            "in_use",
            objects=2,
            size=10,
            usd=None,
            unpriced_reason="the bucket's location type is unknown",
            headline="In use: a registry still serves 1 image from this bucket.",
            images_in_use=[dc.image_in_use("gcr.io/q/web", "gcr.io/q/web:latest", "v2"), dc.image_in_use("gcr.io/q/x")],
        ),
    }
    return {"decommission": decommission, "fleet": dc.fleet_of(decommission)}


def section_ids(page: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)">', page)


def test_the_verdict_per_bucket_comes_first_in_the_fleets_order():
    fields = fleet_summary_fields()
    page, model = page_for([], [], **fields)
    assert model["decommission"] == fields["decommission"] and model["fleet"] == fields["fleet"]
    assert section_ids(page)[0] == "decommission"
    first = page.split('<section id="decommission">', 1)[1].split("</section>", 1)[0]
    assert page.index('<section id="decommission">') < page.index('id="verdict"')
    # Cost descending; the unpriced bucket last.
    assert re.findall(
        r'<article class="card v-[a-z_]+" id="bucket-\d" data-verdict="[a-z_]+" data-bucket="([^"]+)"', first
    ) == [
        OTHER,
        BUCKET,
        THIRD,
    ]
    assert re.findall(r'<td class="mono"><a href="#(bucket-\d)">([^<]+)</a>', first) == [
        ("bucket-1", OTHER),
        ("bucket-2", BUCKET),
        ("bucket-3", THIRD),
    ]
    text = " ".join(first.split())
    assert (
        '<p class="fleet-headline" id="fleet-headline">1 bucket safe to delete, saving $23.40 a month; '
        "1 would lose 3 images; 1 in use</p>" in text
    )
    assert (
        '<div class="tile v-safe_to_delete" data-verdict="safe_to_delete"><b>1</b><span>safe to delete; $23.40 a month'
        in text
    )
    assert '<div class="tile v-cannot_tell none" data-verdict="cannot_tell"><b>0</b>' in text
    # The headline verbatim, reasons, bytes, cost, soft delete.
    assert "Safe to delete: nothing lives only here. Saves $23.40 a month." in text
    assert "<li>3 complete images in the bucket are in no role: successor source</li>" in text
    assert "<dd>900.0 GB in 5 object(s)</dd>" in text and "<b>$23.40</b> a month" in text
    assert "unpriced: the bucket&#x27;s location type is unknown" in text
    assert "for 7 day(s) (soft delete)" in text
    # Images only here: short digest (full one in the title), facts, and the export command to copy.
    digest = "sha256:" + "0" * 63 + "1"
    assert (
        f'<span class="mono" title="{digest}">sha256:000000000000\u2026</span> · 1.0 MB · '
        "created 2019-03-01T10:00:00Z · linux/amd64" in text
    )
    assert f'<pre class="cmd"><code>registry-scrub export /r/run-1 {digest} --to ./exported/1</code></pre>' in text
    assert 'labels: <span class="mono">git-sha=' in text and 'last step: <span class="mono">/bin/sh -c #(nop)' in text
    assert (
        "Images only here (3): export them before deleting" in text and "and 1 more image(s) not listed here." in text
    )
    # Images in use: repository and tags.
    assert '<td class="mono">gcr.io/q/web</td><td class="mono">latest, v2</td>' in text  # not gcr.io/q/web:latest
    assert '<td class="mono">gcr.io/q/x</td><td class="mono">(untagged)</td>' in text


def test_an_older_run_says_it_predates_the_verdict():
    page, model = page_for([], [])
    assert model["decommission"] is None and model["fleet"] is None and model["units"] is None
    assert section_ids(page)[0] == "decommission"
    assert '<p class="note" id="no-verdict">This run predates the per-bucket verdict' in page
    assert "<article" not in page
    page, _ = page_for([], [], decommission={}, fleet=dc.fleet_of({}))  # a run that scanned no bucket
    assert '<p class="muted" id="no-verdict">No bucket was scanned in this run.</p>' in page


def test_the_contents_bar_links_every_section_and_only_those():
    page, _ = page_for(hostile_rows(), [], **fleet_summary_fields())
    nav = page.split('<nav id="contents" aria-label="contents">', 1)[1].split("</nav>", 1)[0]
    links = re.findall(r'<a href="#([^"]+)">', nav)
    assert links == section_ids(page)
    assert links[:2] == ["decommission", "run"] and links[-1] == "finding-list"
    assert "since-previous" not in links and "recoverable" not in links  # this run has neither


def test_every_table_scrolls_inside_its_own_box():
    page, _ = page_for(hostile_rows(), [], **fleet_summary_fields())
    assert page.count("<table") == page.count('<div class="table-wrap"><table') > 5


def test_verdict_text_is_escaped():
    fields = fleet_summary_fields()
    entry = fields["decommission"][BUCKET]
    entry["headline"] = HOSTILE[0]
    entry["reasons"] = [HOSTILE[5]]
    entry["images_only_here"][0]["export_command"] = "registry-scrub export '<r>' \"x\""
    page, _ = page_for([], [], **fields)
    parsed = Collector()
    parsed.feed(page)
    assert parsed.tags.count("script") == 1 and "img" not in parsed.tags
    assert "<code>registry-scrub export &#x27;&lt;r&gt;&#x27; &quot;x&quot;</code>" in page


def test_the_reclaim_section_shows_what_the_second_guard_protects_and_the_users_choice():
    """Reclaim's second guard carries its evidence on the page too: each image the bucket shows whole,
    how it is shown, and what reclaim.accept_losing let into the plan (summary.json's reclaim_protected)."""
    image = {
        "config_digest": "sha256:" + "c" * 64,
        "bucket": BUCKET,
        "bytes": 261110,
        "created": "2019-03-01T10:00:00Z",
        "os": "linux",
        "architecture": "amd64",
        "labels": {"team": "<payments>"},
        "last_history": 'CMD ["serve"]',
        "via": "config and every layer in the bucket",
    }
    protected = {"accept_losing": [], "objects": 3, "bytes": 261110, "accepted_objects": 0, "accepted_bytes": 0,
                 "images": [image], "images_total": 4}  # fmt: skip
    page, _ = page_for([], [], reclaim_protected=protected)
    text = " ".join(page.split())
    assert '<h3 id="protected">Protected by the bucket\'s own evidence</h3>' in text
    assert "3 unreferenced blob(s), 261.1 kB, belong to 4 image(s) the bucket itself shows whole" in text
    assert "Accepted for deletion: none (<code>reclaim.accept_losing</code> is empty)." in text
    row = text.split('<table id="protected-images">', 1)[1].split("</table>", 1)[0]
    assert f'title="sha256:{"c" * 64}"' in row and "linux/amd64" in row and "team=&lt;payments&gt;" in row
    assert "config and every layer in the bucket" in row and "2019-03-01T10:00:00Z" in row
    assert "and 3 more in summary.json (reclaim_protected)" in text
    accepted = {**protected, "accept_losing": "all", "accepted_objects": 3, "accepted_bytes": 261110}
    text = " ".join(page_for([], [], reclaim_protected=accepted)[0].split())
    assert (
        "every such image (<code>reclaim.accept_losing: all</code>); 3 blob(s), 261.1 kB of those are in the plan."
        in text
    )
    assert 'id="protected"' not in page_for([], [])[0]  # a run before the guard, or with nothing protected
