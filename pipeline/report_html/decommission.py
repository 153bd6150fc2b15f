"""report.html's first section: the fleet's totals and one card per bucket saying whether it can be deleted.

It draws ``summary["decommission"]`` and ``summary["fleet"]`` as the model carries them
(/work/shared/DESIGN.md's decommission verdict; docs/report-html.md), in words a platform
lead can act on. A run written before the verdict existed gets a sentence saying so.
"""

from __future__ import annotations

from typing import Any

from pipeline.core.report_model import BUCKET_ROWS, VERDICTS, short_tag
from pipeline.report_html import count, esc, human_bytes, usd, wrap_table

Model = dict[str, Any]

VERDICT_LABELS = {
    "safe_to_delete": "Safe to delete",
    "would_lose_images": "Would lose images",
    "in_use": "In use",
    "cannot_tell": "Cannot tell",
}
LABELS_SHOWN = 6


def short_digest(digest: Any) -> str:
    """``sha256:1234567890ab…`` (12 hex digits, enough to tell images apart); the full one is in the title."""
    text = "" if digest is None else str(digest)
    algorithm, _, hex_part = text.partition(":")
    return f"{algorithm}:{hex_part[:12]}\u2026" if hex_part and len(hex_part) > 12 else text


def _label(verdict: Any) -> str:
    return VERDICT_LABELS.get(verdict, str(verdict or "unknown"))


def _cost(entry: dict[str, Any]) -> str:
    cost = entry.get("monthly_cost") if isinstance(entry.get("monthly_cost"), dict) else {}
    amount = cost.get("usd_per_month")
    if amount is None:
        reason = cost.get("reason") or "no price known for this bucket"
        return f'<span class="muted">unpriced: {esc(reason)}</span>'
    text = f"<b>${esc(usd(amount))}</b> a month"
    if cost.get("unpriced_bytes"):
        text += f" ({esc(human_bytes(cost['unpriced_bytes']))} could not be priced)"
    return text


def _image_only_here(image: dict[str, Any]) -> str:
    platform = "/".join(str(image[k]) for k in ("os", "architecture") if image.get(k)) or "unknown platform"
    labels = image.get("labels") if isinstance(image.get("labels"), dict) else {}
    labels = sorted(f"{k}={v}" for k, v in labels.items())
    more = len(labels) - LABELS_SHOWN
    shown = ", ".join(labels[:LABELS_SHOWN]) + (f" and {more} more" if more > 0 else "")
    digest = image.get("config_digest")
    facts = [
        f'<span class="mono" title="{esc(digest)}">{esc(short_digest(digest))}</span>',
        esc(human_bytes(image.get("bytes"))),
        f"created {esc(image.get('created') or 'unknown')}",
        esc(platform),
    ]
    lines = [f'<div class="facts">{" · ".join(facts)}</div>']
    if labels:
        lines.append(f'<div class="meta">labels: <span class="mono">{esc(shown)}</span></div>')
    if image.get("last_history"):
        lines.append(f'<div class="meta">last step: <span class="mono">{esc(image["last_history"])}</span></div>')
    if image.get("export_command"):
        lines.append(f'<pre class="cmd"><code>{esc(image["export_command"])}</code></pre>')
    return f'<li class="only-here">{"".join(lines)}</li>'


def _images_only_here(entry: dict[str, Any]) -> str:
    images = [i for i in entry.get("images_only_here") or () if isinstance(i, dict)]
    total = max(entry.get("images_only_here_total") or 0, len(images))
    if not total:
        return ""
    more = (
        f'<p class="meta">and {count(total - len(images))} more image(s) not listed here.</p>'
        if total > len(images)
        else ""
    )
    return (
        f"<h4>Images only here ({count(total)}): export them before deleting</h4>"
        f'<ul class="images-only-here">{"".join(_image_only_here(i) for i in images)}</ul>{more}'
    )


def _tags(image: dict[str, Any]) -> str:
    """``v1, latest``: the tags without the repository the row already shows."""
    tags = [short_tag(str(tag), image.get("repository")) for tag in image.get("tags") or ()]
    return ", ".join(tags) or "(untagged)"


def _images_in_use(entry: dict[str, Any]) -> str:
    images = [i for i in entry.get("images_in_use") or () if isinstance(i, dict)]
    total = max(entry.get("images_in_use_total") or 0, len(images))
    if not total:
        return ""
    rows = "".join(
        f'<tr><td class="mono">{esc(i.get("repository"))}</td>'
        f'<td class="mono">{esc(_tags(i))}</td>'
        f'<td class="mono" title="{esc(i.get("manifest_digest"))}">{esc(short_digest(i.get("manifest_digest")))}</td>'
        f"<td>{esc(i.get('source'))}</td></tr>"
        for i in images
    )
    more = (
        f'<p class="meta">and {count(total - len(images))} more image(s) not listed here.</p>'
        if total > len(images)
        else ""
    )
    table = (
        '<table class="in-use"><thead><tr><th>repository</th><th>tags</th><th>manifest</th><th>served by</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )
    return f"<h4>Images in use ({count(total)}): deleting breaks them</h4>{wrap_table(table)}{more}"


def _card(index: int, bucket: str, entry: dict[str, Any]) -> str:
    verdict = entry.get("verdict")
    project = entry.get("project")
    reasons = "".join(f"<li>{esc(reason)}</li>" for reason in entry.get("reasons") or ())
    size = "an unknown size" if entry.get("bytes") is None else human_bytes(entry.get("bytes"))
    facts = (
        f"<div><dt>deleting it frees</dt><dd>{esc(size)} in {count(entry.get('objects'))} object(s)</dd></div>"
        f"<div><dt>monthly cost</dt><dd>{_cost(entry)}</dd></div>"
        f"<div><dt>soft delete</dt><dd>{esc(entry.get('soft_delete') or 'unknown')}</dd></div>"
    )
    return (
        f'<article class="card v-{esc(verdict)}" id="bucket-{index}" data-verdict="{esc(verdict)}" '
        f'data-bucket="{esc(bucket)}"><header><span class="badge">{esc(_label(verdict))}</span> '
        f'<h3 class="mono">{esc(bucket)}</h3>'
        + (f'<span class="meta">project <span class="mono">{esc(project)}</span></span>' if project else "")
        + f'</header><p class="headline">{esc(entry.get("headline"))}</p><dl class="facts">{facts}</dl>'
        + (f'<ul class="reasons">{reasons}</ul>' if reasons else "")
        + _images_only_here(entry)
        + _images_in_use(entry)
        + "</article>"
    )


def _totals(fleet: dict[str, Any]) -> str:
    by_verdict = fleet.get("by_verdict") if isinstance(fleet.get("by_verdict"), dict) else {}
    tiles = []
    for verdict in VERDICTS:
        group = by_verdict.get(verdict) if isinstance(by_verdict.get(verdict), dict) else {}
        buckets = group.get("buckets") or 0
        extra = []
        if group.get("usd_per_month"):
            extra.append(f"${usd(group['usd_per_month'])} a month")
        if group.get("images_only_here"):
            extra.append(f"{count(group['images_only_here'])} image(s) only there")
        none = "" if buckets else " none"
        tiles.append(
            f'<div class="tile v-{verdict}{none}" data-verdict="{verdict}"><b>{count(buckets)}</b>'
            f"<span>{esc(_label(verdict).lower())}{esc('; ' + '; '.join(extra) if extra else '')}</span></div>"
        )
    return (
        f'<p class="fleet-headline" id="fleet-headline">{esc(fleet.get("headline"))}</p>'
        f'<div class="tiles" id="fleet-totals">{"".join(tiles)}</div>'
    )


def _fleet_table(model: Model, order: list[str]) -> str:
    """One row per bucket, cost first, each linking to its card: the fleet at a glance (several buckets)."""
    decommission = model["decommission"]
    rows = []
    for index, bucket in enumerate(order[:BUCKET_ROWS], 1):
        entry = decommission[bucket]
        cost = entry.get("monthly_cost") if isinstance(entry.get("monthly_cost"), dict) else {}
        amount = cost.get("usd_per_month")
        rows.append(
            f'<tr data-verdict="{esc(entry.get("verdict"))}"><td class="mono"><a href="#bucket-{index}">'
            f'{esc(bucket)}</a></td><td class="mono">{esc(entry.get("project") or "")}</td>'
            f'<td class="verdict-cell v-{esc(entry.get("verdict"))}">{esc(_label(entry.get("verdict")))}</td>'
            f'<td class="num">{esc(human_bytes(entry.get("bytes")))}</td>'
            f'<td class="num">{"unpriced" if amount is None else "$" + esc(usd(amount))}</td>'
            f'<td class="num">{count(entry.get("images_only_here_total") or 0)}</td></tr>'
        )
    table = (
        '<table id="fleet"><thead><tr><th>bucket</th><th>project</th><th>verdict</th><th class="num">bytes</th>'
        '<th class="num">a month</th><th class="num">images only here</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return wrap_table(table)


def _units(model: Model) -> str:
    units = model.get("units")
    if not units:
        return ""
    agree = (
        f"These {count(units['buckets'])} bucket(s) hold {count(units['objects'])} object(s), "
        f"{esc(human_bytes(units['bytes']))}: everything the scan listed, split by state in the Bytes by state chart."
        if units["agrees"]
        else f'<span class="sev-warning">The verdicts cover {count(units["objects"])} object(s), '
        f"{esc(human_bytes(units['bytes']))}, but the scan listed {count(units['objects_listed'])}, "
        f"{esc(human_bytes(units['bytes_listed']))}"
        + (f" ({count(units['unknown_size'])} bucket(s) of unknown size)" if units["unknown_size"] else "")
        + ": compare the cards with the Buckets table.</span>"
    )
    reclaim = units["reclaim"]
    proven = (
        f"{count(reclaim['objects'])} of them ({esc(human_bytes(reclaim['bytes']))}) are proven unused "
        f"in {count(reclaim['buckets'])} of {count(reclaim['of'])} bucket(s)"
        if reclaim["bytes"] is not None
        else "none is proven unused"
    )
    return (
        f'<p class="meta" id="units">{agree} Deleting a bucket frees all of its bytes. Keeping it, the '
        f'<a href="#reclaim">reclaim plan</a> deletes only unreferenced blobs: of '
        f"{count(units['unreferenced_objects'])} ({esc(human_bytes(units['unreferenced_bytes']))}), {proven}.</p>"
    )


def render_decommission(model: Model) -> str:
    decommission, fleet = model.get("decommission"), model.get("fleet")
    title = "<h2>Can each bucket be deleted?</h2>"
    if decommission == {}:
        return f'{title}<p class="muted" id="no-verdict">No bucket was scanned in this run.</p>'
    if not decommission:
        return (
            f'{title}<p class="note" id="no-verdict">This run predates the per-bucket verdict: its '
            "summary.json has no <code>decommission</code>. Scan again with this version to learn, per bucket, "
            "whether deleting it loses images. The sections below still hold this run's findings and reclaim "
            "facts.</p>"
        )
    order = model.get("card_order") or []
    parts = [title]
    if fleet:
        parts.append(_totals(fleet))
    parts.append(_units(model))
    if len(order) > 1:
        parts.append(_fleet_table(model, order))
    parts.extend(_card(index, bucket, decommission[bucket]) for index, bucket in enumerate(order[:BUCKET_ROWS], 1))
    if len(order) > BUCKET_ROWS:
        parts.append(f'<p class="note">{count(len(order) - BUCKET_ROWS)} more bucket(s) are in summary.json.</p>')
    return "".join(parts)
