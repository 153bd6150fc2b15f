"""report.html's post-shutdown sections (docs/recovery.md): each bucket's share against the successor
registry, and the images in the bucket that no manifest source knows."""

from __future__ import annotations

from typing import Any

from pipeline.report_html import count, esc, human_bytes, wrap_table


def _row(image: dict[str, Any]) -> str:
    state = "complete" if image["complete"] else f"{image['missing']} layer(s) missing"
    labels = "<br>".join(esc(label) for label in image["labels"])
    return (
        f'<tr><td class="mono">{esc(image["config_digest"])}</td><td>{esc(image["created"])}</td>'
        f'<td>{esc(image["platform"])}</td><td class="num">{count(image["layers"])}</td>'
        f'<td class="num">{human_bytes(image["size"])}</td><td>{esc(state)}</td>'
        f'<td class="mono">{esc(image["last_step"])}</td><td class="mono">{labels}</td></tr>'
    )


def render_recovery(model: dict[str, Any]) -> str:
    section = model.get("recovery")
    if not section:
        return ""
    counts = section["counts"]
    omitted = (
        f'<p class="note">{count(section["omitted"])} more are not shown; every one is in '
        "<code>recovered-*.jsonl</code>.</p>"
        if section["omitted"]
        else ""
    )
    return (
        '<h2 id="recovery">Recoverable images</h2>'
        f'<p class="meta">{count(counts.get("configs"))} image config(s) in the bucket, '
        f"{count(counts.get('complete'))} with every layer. {count(counts.get('not_in_registry'))} are in no "
        f"manifest source ({count(counts.get('not_in_registry_complete'))} complete, "
        f"{human_bytes(counts.get('not_in_registry_bytes'))}): deleting the bucket loses them. Export one with "
        "<code>registry-scrub export RUN_DIR CONFIG_DIGEST --to DIR</code>. "
        f"{count(counts.get('orphan_layers'))} layer(s) belong to no image at all.</p>"
        + wrap_table(
            '<table id="recovered"><thead><tr><th>config digest</th><th>created</th><th>platform</th>'
            '<th class="num">layers</th><th class="num">size</th><th>state</th><th>last step</th><th>labels</th>'
            f"</tr></thead><tbody>{''.join(_row(image) for image in section['rows'])}</tbody></table>"
        )
        + omitted
    )


def render_successor(model: dict[str, Any]) -> str:
    lines = model.get("successor") or []
    if not lines:
        return ""
    items = "".join(f"<li>{esc(line)}</li>" for line in lines)
    return (
        '<h2 id="successor">Against the successor registry</h2>'
        '<p class="meta">Blobs of each bucket that images in the <code>role: successor</code> registry use, '
        "and the rest: what deleting the bucket would take from no image there.</p>"
        f'<ul id="successor-lines">{items}</ul>'
    )
