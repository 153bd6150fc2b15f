"""The demo's report.html in a real browser (headless Chromium, networking disabled), and its re-rendering.

Chromium is Debian's ``chromium`` package (tests/system-deps.sh installs it). It loads
the page from disk with a proxy that points nowhere and background networking off, so
anything the page tried to fetch would fail; the assertions are on the DOM after the
page's script ran.
"""

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from tests.support.chromium import CHROMIUM_FLAGS
from tests.test_cli import run_cli

RUN_ID = "demo-html"


def chromium_binary() -> str:
    binary = shutil.which("chromium")
    if binary is None:
        pytest.fail("chromium is not installed; run tests/system-deps.sh (apt-get install chromium)")
    return binary


def dump_dom(url: str, profile) -> str:
    proc = subprocess.run(
        [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


class Rows(HTMLParser):
    """The text of each ``<tr>`` of one table, with the row's attributes."""

    def __init__(self, table_id: str):
        super().__init__()
        self.table_id, self.rows = table_id, []
        self._depth, self._row = 0, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == self.table_id:
            self._depth = 1
        elif tag == "table" and self._depth:
            self._depth += 1
        elif tag == "tr" and self._depth:
            self._row = {"attrs": attrs, "text": []}

    def handle_endtag(self, tag):
        if tag == "table" and self._depth:
            self._depth -= 1
        elif tag == "tr" and self._row is not None:
            self._row["text"] = " ".join(" ".join(self._row["text"]).split())
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._row is not None:
            self._row["text"].append(data)


def table_rows(dom: str, table_id: str) -> list[dict]:
    parser = Rows(table_id)
    parser.feed(dom)
    return parser.rows


def visible_text(dom: str) -> str:
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", dom, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """``registry-scrub demo`` once, as a user runs it: its stdout, summary and run folder."""
    cwd = tmp_path_factory.mktemp("demo-html")
    proc = run_cli("demo", "--run-id", RUN_ID, cwd=cwd)
    assert proc.returncode == 1, proc.stderr
    run_dir = cwd / "scrub-reports" / RUN_ID
    return proc, json.loads((run_dir / "summary.json").read_text()), run_dir


def test_chromium_renders_the_demo_page_offline(demo_run, tmp_path):
    _, summary, run_dir = demo_run
    dom = dump_dom((run_dir / "report.html").as_uri(), tmp_path / "profile")
    assert 'data-script="ran"' in dom  # the page's own script ran in the browser
    text = visible_text(dom)
    errors = summary["findings_by_severity"]["error"]
    assert errors == 9
    assert f"Errors: {errors} finding(s) of severity error" in text
    assert "exit status 1 (findings of severity error)" in text
    assert f"error: {errors} warning: {summary['findings_by_severity']['warning']}" in text
    kinds = {row["attrs"]["data-kind"]: row["text"] for row in table_rows(dom, "kinds")[1:]}
    assert kinds["digest_mismatch"] == "digest_mismatch error 4"
    images = [row for row in table_rows(dom, "images") if "gcr.io/demo-project/web " in row["text"] + " "]
    web = [row for row in images if row["attrs"].get("data-status") == "broken"]
    assert len(web) == 1
    assert re.match(
        r"gcr\.io/demo-project/web latest sha256:[0-9a-f]{64} 1\.5 MB broken digest_mismatch", web[0]["text"]
    )
    assert "manifest_digest_mismatch (the manifest itself)" in web[0]["text"]
    total_rows = sum(n for n in summary["findings_by_kind"].values())
    assert f"{total_rows} shown" in text


def test_a_kind_link_filters_the_findings_in_the_browser(demo_run, tmp_path):
    _, summary, run_dir = demo_run
    dom = dump_dom((run_dir / "report.html").as_uri() + "#kind=digest_mismatch", tmp_path / "profile")
    findings = table_rows(dom, "findings")[1:]
    shown = [
        row for row in findings if "hidden" not in row["attrs"] and "kind-head" not in row["attrs"].get("class", "")
    ]
    assert len(shown) == summary["findings_by_kind"]["digest_mismatch"] == 4
    assert {row["attrs"]["data-kind"] for row in shown} == {"digest_mismatch"}
    assert '<span id="finding-shown">4</span>' in dom
    crc = [row["text"] for row in shown if "damaged after the write" in row["text"]]
    assert len(crc) == 1 and "crc32c: damaged after the write: the bytes differ from the crc32c GCS stored" in crc[0]


def test_the_terminal_summary_names_the_most_affected_images_and_the_page(demo_run):
    proc, summary, run_dir = demo_run
    assert f"page:   {run_dir / 'report.html'}" in proc.stdout
    # 7: the successor's copy of the worker image is broken by the same layer (docs/recovery.md).
    listed = proc.stdout.split("most affected images (5 of 7):\n", 1)[1].splitlines()[:5]
    assert [line.split()[0] for line in listed] == [item["image"] for item in summary["most_affected_images"]]
    assert listed[0].startswith("  gcr.io/demo-project/web@sha256:")
    assert summary["report_html"] == str(run_dir / "report.html")
    images = [json.loads(line) for path in sorted(run_dir.glob("images-*.jsonl")) for line in path.read_text().split()]
    assert sorted(summary["files"]) == sorted(p.name for p in run_dir.glob("*.jsonl"))
    assert sum(1 for row in images if row["status"] == "broken") == summary["images_affected"] == 7


def test_report_subcommand_rerenders_the_same_page(demo_run, tmp_path):
    _, _, run_dir = demo_run
    written = (run_dir / "report.html").read_bytes()
    folder = tmp_path / RUN_ID
    shutil.copytree(run_dir, folder)
    (run_dir / "report.html").unlink()
    proc = run_cli("report", str(run_dir), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "Errors: 9 finding(s) of severity error (exit status 1)"
    assert proc.stdout.splitlines()[-1] == f"page: {run_dir / 'report.html'}"
    assert (run_dir / "report.html").read_bytes() == written
    # A copy elsewhere renders too; without images-*.jsonl (an older run) the images come from the findings.
    for path in folder.glob("images-*.jsonl"):
        path.unlink()
    proc = run_cli("report", "-q", str(folder), cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == str(folder / "report.html")
    page = (folder / "report.html").read_text()
    # The successor's newer image is named only by its in_registry_only (info) findings: intact.
    assert "8 image(s): 7 broken, 1 intact." in page


def test_report_subcommand_refuses_a_folder_without_summary(tmp_path):
    proc = run_cli("report", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"registry-scrub: {tmp_path}: no readable summary.json" in proc.stderr


def test_report_subcommand_rerenders_a_gs_run_folder(demo_run, storage_client, emulator, tmp_path):
    """A run folder on gs:// (the real gcp-storage-emulator), read and written through Beam's filesystems."""
    _, summary, run_dir = demo_run
    bucket = storage_client.lookup_bucket("audit-reports-html") or storage_client.create_bucket("audit-reports-html")
    prefix = f"registry-scrub/{RUN_ID}"
    for path in run_dir.rglob("*"):  # recovered/ holds the rebuilt manifests (docs/recovery.md)
        if path.is_file() and path.name != "report.html":
            bucket.blob(f"{prefix}/{path.relative_to(run_dir)}").upload_from_filename(str(path))
    location = f"gs://{bucket.name}/{prefix}"
    proc = run_cli("report", location, "--emulator-endpoint", emulator.endpoint, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"page: {location}/report.html"
    page = bucket.blob(f"{prefix}/report.html").download_as_bytes().decode("utf-8")
    assert f"Errors: {summary['findings_by_severity']['error']} finding(s) of severity error" in page
    assert page.count('<tr data-status="broken">') == summary["images_affected"]


def test_a_clean_names_mode_run_writes_a_clean_page(emulator, storage_client, tmp_path):
    import hashlib

    bucket = storage_client.lookup_bucket("artifacts.html-clean.appspot.com") or storage_client.create_bucket(
        "artifacts.html-clean.appspot.com"
    )
    for i in range(3):
        content = f"clean page {i}".encode()
        bucket.blob("containers/images/sha256:" + hashlib.sha256(content).hexdigest()).upload_from_string(content)
    proc = run_cli(
        "--bucket", bucket.name, "--emulator-endpoint", emulator.endpoint, "--output", str(tmp_path / "out"),
        "--run-id", "clean", "--direct_running_mode=in_memory", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    page_path = tmp_path / "out" / "clean" / "report.html"
    assert f"page:   {page_path}" in proc.stdout
    dom = dump_dom(page_path.as_uri(), tmp_path / "profile")
    text = visible_text(dom)
    assert "Clean: no finding of severity error or warning" in text
    assert "exit status 0 (clean)" in text
    assert "No manifests were cross-checked in this run (mode names)" in text
    assert "No findings." in text
    (row,) = table_rows(dom, "buckets")[1:]
    # Names mode cross-checks no manifest, so reclaim is never proven; older summaries have no per-bucket verdict.
    summary = json.loads((tmp_path / "out" / "clean" / "summary.json").read_text())
    verdict = "blocked" if bucket.name in (summary.get("reclaim_by_bucket") or {}) else "n/a"
    assert row["text"] == f"artifacts.html-clean.appspot.com 3 36 B 3 0 B 0 B 0 (0 B) 0 0 {verdict}"


def test_the_demo_page_names_nothing_to_load(demo_run):
    """URLs may appear as text (a registry source, the price table's source), never as something to fetch."""
    from tests.test_report_html import Collector, loading_attributes

    _, _, run_dir = demo_run
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    parsed = Collector()
    parsed.feed(page)
    assert loading_attributes(parsed) == []
    assert not [t for t in parsed.tags if t in ("link", "img", "iframe", "object", "embed", "base", "form", "audio")]
    styles = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert len(styles) == 1 and not re.search(r"url\(|@import", styles[0])
    assert "default-src 'none'" in page


# --- layout: the verdict per bucket first, a phone's width, print (DevTools over a pipe) -------------------------

WIDTHS = (1400, 390)  # a desktop, and a phone (iPhone 12-15 CSS pixels)
PAPER = 720  # A4 or Letter at 96 dpi, less Chromium's default print margins

LAYOUT = """(() => {
  const nav = document.getElementById("contents");
  const links = Array.from(nav.querySelectorAll("a")).map(a => a.getAttribute("href"));
  const card = document.querySelector("article.card");
  const top = el => el.getBoundingClientRect().top + window.scrollY;
  return {
    scrollWidth: document.documentElement.scrollWidth,
    firstSection: document.querySelector("main section").id,
    cardTop: top(card),
    decommissionTop: top(document.getElementById("decommission")),
    scanVerdictTop: top(document.getElementById("verdict")),
    firstCardBucket: card.getAttribute("data-bucket"),
    links: links,
    unresolved: links.filter(href => !href.startsWith("#") || !document.getElementById(href.slice(1))),
    navPosition: getComputedStyle(nav).position,
    script: document.documentElement.getAttribute("data-script"),
  };
})()"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from tests.support.chromium import Browser

    with Browser(chromium_binary(), tmp_path_factory.mktemp("chromium-profile")) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def fleet_page(tmp_path_factory):
    """A page with three verdict cards (docs/report.md's shapes) over hostile findings: every section has rows."""
    from tests.test_report_html import fleet_summary_fields, hostile_rows, page_for

    page, model = page_for(hostile_rows(), [], **fleet_summary_fields())
    path = tmp_path_factory.mktemp("fleet-page") / "report.html"
    path.write_text(page, encoding="utf-8")
    return path, model


@pytest.mark.parametrize("width", WIDTHS)
def test_the_verdict_cards_come_first_and_the_page_fits_the_width(browser, fleet_page, width, tmp_path):
    path, model = fleet_page
    browser.open(path.as_uri(), width)
    layout = browser.evaluate(LAYOUT)
    assert layout["script"] == "ran"
    assert layout["firstSection"] == "decommission"
    assert layout["decommissionTop"] < 200  # under the contents bar and the title, in the first screen
    assert layout["cardTop"] < layout["scanVerdictTop"]
    assert layout["firstCardBucket"] == model["card_order"][0] == model["fleet"]["rows"][0]["bucket"]
    assert layout["scrollWidth"] <= width, f"the page scrolls sideways at {width} px"
    assert layout["links"][:2] == ["#decommission", "#run"] and layout["unresolved"] == []
    assert layout["navPosition"] == "sticky"
    shot = browser.screenshot(tmp_path / f"report-{width}.png")
    assert shot.stat().st_size > 10_000


def test_a_contents_link_lands_below_the_sticky_bar(browser, fleet_page):
    path, _ = fleet_page
    browser.open(path.as_uri(), 390)
    where = browser.evaluate(
        """(() => (location.hash = "#reclaim", {
          section: document.getElementById("reclaim").getBoundingClientRect().top,
          barTop: document.getElementById("contents").getBoundingClientRect().top,
          barBottom: document.getElementById("contents").getBoundingClientRect().bottom,
          scrolled: window.scrollY,
        }))()"""
    )
    assert where["scrolled"] > 0 and where["barTop"] == 0  # the bar stays on screen
    assert where["section"] >= where["barBottom"] - 1, where  # and hides no heading


def test_print_hides_the_bar_and_keeps_cards_whole(browser, fleet_page):
    path, _ = fleet_page
    browser.open(path.as_uri(), PAPER)
    browser.media("print")
    try:
        printed = browser.evaluate(
            """(() => ({
              width: document.documentElement.scrollWidth,
              bar: getComputedStyle(document.getElementById("contents")).display,
              filters: getComputedStyle(document.getElementById("finding-filters")).display,
              card: getComputedStyle(document.querySelector("article.card")).breakInside,
              wrap: getComputedStyle(document.querySelector(".table-wrap")).overflowX,
              link: getComputedStyle(document.querySelector("#fleet a")).textDecorationLine,
            }))()"""
        )
    finally:
        browser.media("")
    assert printed == {
        "width": PAPER,  # every table fits the paper: printed, nothing can scroll
        "bar": "none",
        "filters": "none",
        "card": "avoid",
        "wrap": "visible",
        "link": "none",
    }
    assert browser.evaluate('getComputedStyle(document.getElementById("contents")).display') == "flex"


@pytest.mark.parametrize("width", WIDTHS)
def test_the_demo_page_opens_with_each_buckets_verdict(browser, demo_run, width):
    """Issues 17 and 20 on the demo as a user runs it: the page's first section is the fleet, its rows
    and cards name the demo's buckets in summary.json's fleet order, each with summary.json's verdict."""
    _, summary, run_dir = demo_run
    browser.open((run_dir / "report.html").as_uri(), width)
    shown = browser.evaluate(
        """(() => ({
          first: document.querySelector("main section").id,
          headline: document.getElementById("fleet-headline").textContent.trim(),
          rows: [...document.querySelectorAll("#fleet tbody tr")].map(
            (row) => [row.querySelector("a").textContent.trim(), row.dataset.verdict]),
          cards: [...document.querySelectorAll("article.card")].map((card) => card.dataset.verdict),
          width: document.documentElement.scrollWidth,
        }))()"""
    )
    fleet = summary["fleet"]
    expected = [[row["bucket"], row["verdict"]] for row in fleet["rows"]]
    assert shown["first"] == "decommission" and shown["width"] <= width
    assert shown["headline"] == fleet["headline"]
    assert shown["rows"] == expected and shown["cards"] == [verdict for _, verdict in expected]
    assert {verdict for _, verdict in expected} == {"safe_to_delete", "would_lose_images", "in_use", "cannot_tell"}
    assert all(summary["decommission"][bucket]["verdict"] == verdict for bucket, verdict in expected)


def test_the_demo_page_fits_a_phone(browser, demo_run):
    """The demo's whole page (every section, the real findings table) does not scroll sideways at 390 px."""
    _, _, run_dir = demo_run
    browser.open((run_dir / "report.html").as_uri(), 390)
    assert browser.evaluate("document.documentElement.scrollWidth") <= 390
    assert browser.evaluate('document.querySelector("main section").id') == "decommission"
