"""report.html's "Since the previous run" section: what changed since the ledger's run (docs/incremental.md)."""

from __future__ import annotations

from typing import Any

from pipeline.core.run_diff import (
    CHANGED_OBJECT,
    GONE_FINDING,
    NEW_FINDING,
    NEW_OBJECT,
    PERSISTING_FINDING,
    VANISHED_OBJECT,
)
from pipeline.report_html import count, esc, human_bytes, wrap_table

_TITLES = {
    NEW_OBJECT: "New objects",
    CHANGED_OBJECT: "Changed objects (same name, new generation)",
    VANISHED_OBJECT: "Vanished objects",
    NEW_FINDING: "New findings",
    GONE_FINDING: "Findings that went away",
    PERSISTING_FINDING: "Findings that persist",
}


def _example(row: dict[str, Any]) -> str:
    generation, before = row.get("generation"), row.get("previous_generation")
    if before is not None and generation is None:
        generation = f"{before} (gone)"
    elif before is not None and before != generation:
        generation = f"{before} \u2192 {generation}"
    return (
        f'<tr><td class="mono">{esc(row.get("kind") or "")}</td><td class="mono">{esc(row.get("bucket") or "")}</td>'
        f'<td class="mono">{esc(row.get("object") or row.get("subject") or "")}</td>'
        f'<td class="mono">{esc(generation if generation is not None else "")}</td></tr>'
    )


def _examples(change: str, total: int, rows: list[dict[str, Any]]) -> str:
    if not total:
        return ""
    more = (
        f'<p class="note">{count(total - len(rows))} more are in <code>changes-*.jsonl</code>.</p>'
        if total > len(rows)
        else ""
    )
    table = (
        f'<table class="changes" data-change="{esc(change)}">'
        "<thead><tr><th>kind</th><th>bucket</th><th>object</th><th>generation</th></tr></thead>"
        f"<tbody>{''.join(_example(row) for row in rows)}</tbody></table>"
    )
    return f"<h3>{esc(_TITLES[change])} ({count(total)})</h3>{wrap_table(table)}{more}"


def render_changes(model: dict[str, Any]) -> str:
    section = model.get("changes")
    if not section:
        return ""
    objects, found = section["objects"], section["findings"]
    totals = {
        NEW_OBJECT: objects.get("new", 0),
        CHANGED_OBJECT: objects.get("changed", 0),
        VANISHED_OBJECT: objects.get("vanished", 0),
        NEW_FINDING: found.get("new", 0),
        GONE_FINDING: found.get("gone", 0),
        PERSISTING_FINDING: found.get("persisting", 0),
    }
    carried = ""
    if section["verified_from_ledger"] or section["reverified_from_ledger"]:
        carried = (
            f" {count(section['verified_from_ledger'])} object(s) "
            f"({human_bytes(section['bytes_from_ledger'])}) were carried over from it without being read; "
            f"{count(section['reverified_from_ledger'])} object(s) were read again to check it and agreed."
        )
    skipped = "".join(
        f'<li>skipped run <span class="mono">{esc(s.get("run"))}</span>: {esc(s.get("reason"))}</li>'
        for s in section["skipped"]
    )
    return (
        '<h2 id="changes">Since the previous run</h2>'
        f'<p class="meta">Compared with run <span class="mono">{esc(section["previous_run_id"] or "?")}</span> '
        f'(<span class="mono">{esc(section["previous_location"])}</span>, chosen {esc(section["chosen_by"] or "")}): '
        f"{count(totals[NEW_OBJECT])} new, {count(totals[CHANGED_OBJECT])} changed and "
        f"{count(totals[VANISHED_OBJECT])} vanished object(s); {count(totals[NEW_FINDING])} new, "
        f"{count(totals[GONE_FINDING])} gone and {count(totals[PERSISTING_FINDING])} persisting finding(s)."
        f"{carried}</p>"
        + (f'<ul class="meta">{skipped}</ul>' if skipped else "")
        + "".join(_examples(change, totals[change], section["examples"].get(change) or []) for change in _TITLES)
    )
