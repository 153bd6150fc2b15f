"""Render the report model (``pipeline.core.report_model.build_model``) as one self-contained HTML page.

Everything is inline: the CSS and the filter script live in ``template.html`` (package
data), the charts are SVG drawn here. A Content-Security-Policy of ``default-src 'none'``
makes the browser refuse any fetch, so the page works offline and cannot phone home even
if a value slipped through. Every value is escaped: object names are hostile (markup,
quotes, control and bidi characters, lone surrogates from non-UTF-8 names).
"""

from __future__ import annotations

import html
import re
from importlib import resources
from string import Template
from typing import Any

Model = dict[str, Any]

# C0/C1 controls, zero-width and bidi-override characters: shown as escapes, never interpreted.
_INVISIBLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")

NOT_APPLICABLE = '<span class="muted">n/a</span>'

STATE_COLOURS = {
    "intact": "#1e6b34",
    "damaged": "#b3261e",
    "unreadable": "#e37400",
    "unreferenced": "#35518c",
    "reclaimable": "#7b61a8",
    "not checked": "#9aa0a6",
}


def esc(value: Any) -> str:
    """Text safe inside HTML content and quoted attributes, and encodable as UTF-8."""
    text = "" if value is None else value if isinstance(value, str) else str(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return html.escape(text, quote=True)


def human_bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def usd(amount: float) -> str:
    """Cents for real amounts; down to a millionth for the tiny ones a demo or a small bucket frees."""
    if amount >= 0.01 or amount == 0:
        return f"{amount:,.2f}"
    return f"{amount:.6f}".rstrip("0").rstrip(".") if amount >= 0.000001 else "less than 0.000001"


def count(n: int | None) -> str:
    return "n/a" if n is None else f"{n:,}"


def wrap_table(table: str) -> str:
    """A table in its own horizontal scroller: on a phone a wide table scrolls, the page does not."""
    return f'<div class="table-wrap">{table}</div>'


def _template() -> Template:
    return Template(resources.files(__package__).joinpath("template.html").read_text(encoding="utf-8"))


def render(model: Model) -> str:
    """The whole page as a string (encode it as UTF-8)."""
    from pipeline.report_html.changes import render_changes  # these use this module's helpers
    from pipeline.report_html.decommission import render_decommission
    from pipeline.report_html.recovery import render_recovery, render_successor

    run = model["run"]
    title = f"registry-scrub report: {run.get('run_id') or 'run'} ({model['verdict']['state']})"
    # (anchor, contents-bar label, html): the bar links every section the run has, in page order.
    sections = [
        ("decommission", "Verdict per bucket", render_decommission(model)),
        ("run", "Scan", _header(model) + _verdict(model) + _tiles(model)),
        ("by-kind", "Kinds", _kinds(model)),
        ("since-previous", "Changes", render_changes(model)),
        ("charts", "Charts", _charts(model)),
        ("image-list", "Images", _images(model)),
        ("bucket-list", "Buckets", _buckets(model)),
        ("reclaim", "Reclaim", _reclaim(model)),
        ("against-successor", "Successor", render_successor(model)),
        ("recoverable", "Recovery", render_recovery(model)),
        ("finding-list", "Findings", _findings(model)),
    ]
    sections = [(anchor, label, part) for anchor, label, part in sections if part]
    links = "".join(f'<a href="#{anchor}">{esc(label)}</a>' for anchor, label, _ in sections)
    body = "\n".join(
        (
            f'<nav id="contents" aria-label="contents">{links}</nav>',
            "<main>",
            f'<h1>registry-scrub report <span class="mono">{esc(run.get("run_id"))}</span></h1>',
            *(f'<section id="{anchor}">{part}</section>' for anchor, _, part in sections),
            _footer(model),
            "</main>",
        )
    )
    return _template().substitute(title=esc(title), body=body)


# --- sections -----------------------------------------------------------------------------------------


def _header(model: Model) -> str:
    run = model["run"]
    buckets = ", ".join(run["buckets"]) or "n/a"
    return (
        "<h2>The scan</h2>"
        f'<div class="meta">started {esc(run.get("started_at"))}, ended {esc(run.get("ended_at"))}; '
        f'mode {esc(run.get("mode") or "n/a")}; buckets: <span class="mono">{esc(buckets)}</span></div>'
        f'<div class="meta">rows: <span class="mono">{esc(run.get("report_location"))}</span></div>'
    )


def _verdict(model: Model) -> str:
    v = model["verdict"]
    sev = model["findings_by_severity"]
    counts = "".join(
        f'<span id="count-{name}">{name}: <b>{count(sev.get(name, 0))}</b></span>'
        for name in ("error", "warning", "info")
    )
    return (
        f'<section class="verdict {esc(v["state"])}" id="verdict" data-verdict="{esc(v["state"])}">'
        f"<h2>{esc(v['headline'])}</h2>"
        f'<div>exit status <b id="exit-status">{esc(v["exit_status"])}</b> ({esc(v["exit_meaning"])})</div>'
        f'<div class="counts">{counts}</div></section>'
    )


def _tile(value: str, label: str) -> str:
    return f'<div class="tile"><b>{value}</b><span>{esc(label)}</span></div>'


def _tiles(model: Model) -> str:
    t = model["totals"]
    tiles = [
        _tile(count(t["objects_listed"]), f"objects listed ({human_bytes(t['bytes_listed'])})"),
        _tile(count(t["objects_verified"]), f"objects verified ({human_bytes(t['bytes_verified'])})"),
    ]
    if t["objects_not_hashed"]:
        tiles.append(_tile(count(t["objects_not_hashed"]), "objects not hashed (manifests mode)"))
    tiles.append(_tile(count(t["manifests_scanned"]), "manifests scanned"))
    tiles.append(_tile(count(t["images_affected"]), "images affected by errors"))
    if t["unaccounted_objects"]:
        tiles.append(_tile(count(t["unaccounted_objects"]), "objects with no report row"))
    return f'<div class="tiles" id="totals">{"".join(tiles)}</div>'


def _kinds(model: Model) -> str:
    from pipeline.core.report_model import _severity_of

    rows = []
    for kind, n in model["findings_by_kind"].items():
        severity = _severity_of(kind) or ""
        rows.append(
            f'<tr data-kind="{esc(kind)}"><td class="mono">{esc(kind)}</td>'
            f'<td class="sev-{esc(severity)}">{esc(severity)}</td>'
            f'<td class="num{"" if n else " muted"}">{count(n)}</td></tr>'
        )
    return "<h2>Findings by kind</h2>" + wrap_table(
        '<table id="kinds"><thead><tr><th>kind</th><th>severity</th>'
        f'<th class="num">count</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _charts(model: Model) -> str:
    return (
        '<h2>Charts</h2><div class="charts">'
        f'<div class="chart" id="chart-bytes"><h3>Bytes by state</h3>{bytes_chart(model["bytes_by_state"])}'
        '<div class="meta">States overlap: an unreferenced blob may be intact; reclaimable bytes are '
        "unreferenced bytes that are safe to delete.</div></div>"
        f'<div class="chart" id="chart-age"><h3>Object age</h3>{age_chart(model["age_histogram"])}'
        '<div class="meta">Age at the start of the run, from each object\'s creation time.</div></div>'
        "</div>"
    )


def bytes_chart(states: list[dict[str, Any]]) -> str:
    """Horizontal bars, one per state, scaled to the largest."""
    width, left, bar, gap = 640, 110, 22, 10
    height = len(states) * (bar + gap) + gap
    top = max([s["bytes"] or 0 for s in states] + [1])
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="bytes by state">']
    for i, s in enumerate(states):
        y = gap + i * (bar + gap)
        value = s["bytes"]
        length = 0 if not value else max(2, int((width - left - 120) * value / top))
        colour = STATE_COLOURS.get(s["state"], "#5f6368")
        label = "blocked (see Reclaim)" if value is None else human_bytes(value)
        if s.get("note"):
            label += f" ({s['note']})"
        parts.append(
            f'<text x="{left - 8}" y="{y + bar * 0.7:.0f}" text-anchor="end" font-size="13">{esc(s["state"])}</text>'
            f'<rect x="{left}" y="{y}" width="{length}" height="{bar}" fill="{colour}">'
            f"<title>{esc(s['state'])}: {esc(label)}</title></rect>"
            f'<text x="{left + length + 6}" y="{y + bar * 0.7:.0f}" font-size="12">{esc(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def age_chart(bins: list[dict[str, Any]]) -> str:
    """Vertical bars of object counts per age bin (bytes in each bar's tooltip)."""
    width, height, bottom, top_pad = 640, 240, 50, 20
    slot = width / max(len(bins), 1)
    peak = max([b["objects"] for b in bins] + [1])
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="objects by age">',
        f'<line x1="0" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="#dadce0"/>',
    ]
    for i, b in enumerate(bins):
        h = 0 if not b["objects"] else max(2, (height - bottom - top_pad) * b["objects"] / peak)
        x = i * slot + slot * 0.15
        y = height - bottom - h
        colour = "#9aa0a6" if b["label"] == "unknown" else "#35518c"
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{colour}">'
            f"<title>{esc(b['label'])}: {count(b['objects'])} objects, {esc(human_bytes(b['bytes']))}</title></rect>"
            f'<text x="{x + slot * 0.35:.1f}" y="{y - 4:.1f}" text-anchor="middle" font-size="11">'
            f"{count(b['objects'])}</text>"
            f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="11">'
            f"{esc(b['label'])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _names_cell(names: list[str], total: int) -> str:
    shown = "<br>".join(esc(n) for n in names)
    more = f"<br>and {count(total - len(names))} more" if total > len(names) else ""
    return f"<td>{shown}{more}</td>"


def _image_row(img: dict[str, Any]) -> str:
    broken = "<br>".join(
        f"<b>{esc(b['kind'])}</b> {esc(b.get('digest') or '(the manifest itself)')}" for b in img["broken_by"]
    )
    if img["broken_by_count"] > len(img["broken_by"]):
        broken += f"<br>and {count(img['broken_by_count'] - len(img['broken_by']))} more"
    return (
        f'<tr data-status="{esc(img["status"])}"><td>{esc(img["repository"])}</td>'
        f"{_names_cell(img['tags'], img['tag_count'])}<td>{esc(img['manifest_digest'])}</td>"
        f'<td class="num">{esc(human_bytes(img["size"]))}</td>'
        f'<td class="st-{esc(img["status"])}">{esc(img["status"])}</td><td>{broken}</td></tr>'
    )


def _images(model: Model) -> str:
    images = model["images"]
    if not images["total"]:
        return (
            '<h2>Images</h2><p class="muted" id="images">No manifests were cross-checked in this run '
            "(mode names), so there is no per-image view.</p>"
        )
    by_status = ", ".join(f"{count(n)} {esc(s)}" for s, n in sorted(images["by_status"].items()))
    omitted = (
        f'<p class="note">{count(images["omitted"])} more image(s) are not shown; '
        "every image is in <code>images-*.jsonl</code>.</p>"
        if images["omitted"]
        else ""
    )
    return (
        f'<h2>Images</h2><p class="meta">{count(images["total"])} image(s): {by_status}. '
        "Broken images first.</p>"
        + wrap_table(
            '<table id="images"><thead><tr><th>repository</th><th>tags</th><th>manifest digest</th>'
            '<th class="num">total size</th><th>status</th><th>broken by</th></tr></thead>'
            f"<tbody>{''.join(_image_row(img) for img in images['rows'])}</tbody></table>"
        )
        + omitted
    )


def _reclaim_cell(value: Any) -> str:
    if value is None:
        return "n/a"
    return value if isinstance(value, str) else human_bytes(value)


def _buckets(model: Model) -> str:
    rows = []
    for b in model["buckets"]:
        rows.append(
            f'<tr><td class="mono">{esc(b["bucket"])}</td><td class="num">{count(b["objects"])}</td>'
            f'<td class="num">{esc(human_bytes(b["bytes"]))}</td><td class="num">{count(b["intact_objects"])}</td>'
            f'<td class="num">{esc(human_bytes(b["damaged_bytes"]))}</td>'
            f'<td class="num">{esc(human_bytes(b["unreadable_bytes"]))}</td>'
            f'<td class="num">{count(b["unreferenced_objects"])} ({esc(human_bytes(b["unreferenced_bytes"]))})</td>'
            f'<td class="num sev-error">{count(b["errors"])}</td>'
            f'<td class="num sev-warning">{count(b["warnings"])}</td>'
            f'<td class="num">{esc(_reclaim_cell(b["reclaim"]))}</td></tr>'
        )
    more = (
        f'<p class="note">{count(model["bucket_count"] - len(model["buckets"]))} more bucket(s) not shown.</p>'
        if model["bucket_count"] > len(model["buckets"])
        else ""
    )
    return (
        "<h2>Buckets</h2>"
        + wrap_table(
            '<table id="buckets"><thead><tr><th>bucket</th><th class="num">objects</th>'
            '<th class="num">bytes</th><th class="num">intact</th><th class="num">damaged</th>'
            '<th class="num">unreadable</th><th class="num">unreferenced</th><th class="num">errors</th>'
            '<th class="num">warnings</th><th class="num">reclaimable</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
        + more
    )


def _reclaim(model: Model) -> str:
    r = model["reclaim"]
    parts = ["<h2>Reclaim</h2>"]
    unreferenced = (
        f"{count(r['unreferenced_objects'])} unreferenced blob(s), {esc(human_bytes(r['unreferenced_bytes']))}"
    )
    if r["blocked"]:
        parts.append(
            f'<p class="note" id="reclaim-verdict">Not reclaimable as a whole: {unreferenced}, '
            "but deleting them is not proven safe.</p>"
        )
        if r["proven_buckets"]:
            parts.append(
                f"<p>Proven reclaimable in {count(len(r['proven_buckets']))} bucket(s): "
                f"<b>{esc(human_bytes(r['proven_bytes']))}</b> in {count(r['proven_objects'])} unreferenced blob(s) "
                f'(<span class="mono">{esc(", ".join(r["proven_buckets"]))}</span>).</p>'
            )
    else:
        parts.append(
            f'<p id="reclaim-verdict">Reclaimable: <b>{esc(human_bytes(r["bytes"]))}</b> in '
            f"{count(r['unreferenced_objects'])} unreferenced blob(s).</p>"
        )
    if r["blocked_by"]:
        more = r["blocked_total"] - len(r["blocked_by"])
        parts.append(
            "<p>Why not:</p><ul>"
            + "".join(f"<li>{esc(reason)}</li>" for reason in r["blocked_by"])
            + (f"<li>and {count(more)} more in summary.json</li>" if more > 0 else "")
            + "</ul>"
        )
    if r["caveat"]:
        parts.append(f'<p class="note">Caution: {esc(r["caveat"])}</p>')
    plan = r["plan"]
    if plan:
        cost = ""
        if plan["usd_per_month"] is not None:
            cost = f" It frees about <b>{usd(plan['usd_per_month'])} USD a month</b> at list prices"
            cost += f" of {esc(plan['price_date'])}" if plan["price_date"] else ""
            if plan["unpriced_bytes"]:
                cost += f" ({esc(human_bytes(plan['unpriced_bytes']))} could not be priced)"
            cost += "."
        parts.append(
            f'<p id="reclaim-plan">Deletion plan: <code>{esc(plan["file"])}</code>, {count(plan["objects"])} '
            f"generation-pinned object(s), {esc(human_bytes(plan['bytes']))}.{cost} "
            "The scanner never deletes anything.</p>"
        )
    for key, value in r["soft_delete"].items():
        parts.append(f'<p class="meta">{esc(key)}: {esc(value)}</p>')
    parts.append(_protected(r.get("protected")))
    title = "The 20 largest reclaimable blobs" if r["largest_reclaimable"] else "The 20 largest unreferenced blobs"
    if r["largest"]:
        rows = "".join(
            f'<tr><td class="mono">{esc(b["bucket"])}</td><td class="mono">{esc(b["object"])}</td>'
            f'<td class="mono">{esc(b["generation"])}</td><td class="num">{esc(human_bytes(b["size"]))}</td>'
            f"<td>{esc(b['storage_class'] or '')}</td><td>{esc(b['time_created'] or '')}</td></tr>"
            for b in r["largest"]
        )
        parts.append(
            f"<h3>{esc(title)}</h3>"
            + wrap_table(
                '<table id="reclaimable"><thead><tr><th>bucket</th><th>object</th>'
                '<th>generation</th><th class="num">size</th><th>storage class</th><th>created</th></tr></thead>'
                f"<tbody>{rows}</tbody></table>"
            )
        )
    else:
        parts.append('<p class="muted">No unreferenced blob.</p>')
    return "".join(parts)


def _protected(protected: dict[str, Any] | None) -> str:
    """The second guard: what the bucket's own blobs show to be whole images, kept out of the plan."""
    if not protected or not (protected["objects"] or protected["accepted_objects"] or protected["images"]):
        return ""
    accept = protected["accept_losing"]
    choice = (
        "every such image (<code>reclaim.accept_losing: all</code>)"
        if accept == "all"
        else ", ".join(f'<span class="mono">{esc(d)}</span>' for d in accept)
        if accept
        else "none (<code>reclaim.accept_losing</code> is empty)"
    )
    rows = "".join(
        f'<tr><td class="mono" title="{esc(i["config_digest"])}">{esc((i["config_digest"] or "")[:19])}…</td>'
        f'<td class="mono">{esc(i["bucket"])}</td><td class="num">{esc(human_bytes(i["bytes"] or 0))}</td>'
        f"<td>{esc(i['created'] or 'unknown')}</td><td>{esc(i['platform'])}</td>"
        f"<td>{esc(', '.join(i['labels']))}</td><td>{esc(i['last_history'] or '')}</td><td>{esc(i['via'])}</td></tr>"
        for i in protected["images"]
    )
    more = protected["images_total"] - len(protected["images"])
    return (
        '<h3 id="protected">Protected by the bucket\'s own evidence</h3>'
        f"<p>{count(protected['objects'])} unreferenced blob(s), {esc(human_bytes(protected['bytes']))}, belong to "
        f"{count(protected['images_total'])} image(s) the bucket itself shows whole (a config with every layer, or a "
        "manifest stored as a blob with its blobs). No manifest source names them, yet they can still be pulled "
        "by digest or exported, so they stay out of the plan whatever a source claims. Accepted for deletion: "
        f"{choice}"
        + (
            f"; {count(protected['accepted_objects'])} blob(s), {esc(human_bytes(protected['accepted_bytes']))} "
            "of those are in the plan."
            if protected["accepted_objects"]
            else "."
        )
        + "</p>"
        + (
            wrap_table(
                '<table id="protected-images"><thead><tr><th>config</th><th>bucket</th><th class="num">size</th>'
                "<th>created</th><th>platform</th><th>labels</th><th>last step</th><th>shown by</th></tr></thead>"
                f"<tbody>{rows}</tbody></table>"
            )
            if rows
            else ""
        )
        + (f'<p class="meta">and {count(more)} more in summary.json (reclaim_protected)</p>' if more > 0 else "")
    )


def _evidence(row: dict[str, Any]) -> str:
    """Expected vs actual, sizes, the crc32c diagnosis, HTTP status: one short line each (markup kept lean:
    a capped page still holds thousands of these rows)."""
    lines = []

    def line(label: str, value: Any) -> None:
        if value is not None and value != "" and value != []:
            lines.append(f"<i>{esc(label)}:</i> {esc(value)}")

    line("expected", row["expected"])
    line("actual", row["actual"])
    if row["expected_size"] is not None:
        line("expected size", f"{row['expected_size']:,} bytes")
    if row["size"] is not None:
        line("size", f"{row['size']:,} bytes")
    line("crc32c", row["crc32c_diagnosis"])
    line("stored crc32c", row["crc32c"])
    line("HTTP status", row["http_status"])
    line("complete reads", row["reads"])
    return f"<td>{'<br>'.join(lines)}</td>"


def _finding_row(kind: str, row: dict[str, Any]) -> str:
    where = [row["bucket"], row["object"], row["generation"] and f"generation {row['generation']}"]
    where += row["repositories"]
    images = row["images"] + row["tags"][: max(0, 2 - len(row["images"]))]
    if row["image_count"] > len(row["images"]):
        images.append(f"and {row['image_count'] - len(row['images']):,} more image(s)")
    return (
        f'<tr data-kind="{esc(kind)}"><td>{esc(kind)}<br><i class="sev-{esc(row["severity"])}">'
        f"{esc(row['severity'])}</i></td><td>{'<br>'.join(esc(w) for w in where if w) or NOT_APPLICABLE}</td>"
        f"{_evidence(row)}<td>{esc(row['detail'])}</td><td>{'<br>'.join(esc(i) for i in images)}</td></tr>"
    )


def _findings(model: Model) -> str:
    sections = model["findings"]
    if not sections:
        return '<h2>Findings</h2><p id="findings">No findings.</p>'
    buttons = ['<button type="button" data-kind="all" aria-pressed="true">all</button>']
    body = []
    for section in sections:
        kind = section["kind"]
        buttons.append(
            f'<button type="button" data-kind="{esc(kind)}" aria-pressed="false">{esc(kind)} '
            f"({count(section['total'])})</button>"
        )
        omitted = (
            f" ({count(len(section['rows']))} shown; {count(section['omitted'])} more in findings-*.jsonl)"
            if section["omitted"]
            else ""
        )
        body.append(
            f'<tr class="kind-head" data-kind="{esc(kind)}"><td colspan="5">{esc(kind)}: '
            f"{count(section['total'])} finding(s){esc(omitted)}</td></tr>"
        )
        body.extend(_finding_row(kind, row) for row in section["rows"])
    total = sum(len(s["rows"]) for s in sections)
    return (
        '<h2>Findings</h2><div class="filters" id="finding-filters">'
        f'{"".join(buttons)}<input id="finding-search" type="search" placeholder="filter by text" '
        f'aria-label="filter findings by text"> <span class="meta"><span id="finding-shown">{total}</span> '
        "shown</span></div>"
        + wrap_table(
            '<table id="findings"><thead><tr><th>kind</th><th>where</th><th>evidence</th><th>detail</th>'
            f"<th>images and tags</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
        )
    )


def _footer(model: Model) -> str:
    files = ", ".join(model["run"]["files"])
    files_html = f': <span class="mono">{esc(files)}</span>' if files else ""
    return (
        "<footer>Every row is in the run folder's JSONL files"
        f"{files_html}. "
        "This page is generated by registry-scrub from the same rows as summary.json; "
        "it loads nothing from the network.</footer>"
    )
