"""Summary arithmetic: tallies that merge in any order, and the exit status they imply."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.core import decommission as dc
from pipeline.core.findings import SEVERITY_OF, Kind, Severity
from pipeline.core.fleet_view import fleet_lines
from pipeline.core.migration import bucket_lines, successor_table
from pipeline.core.reclaim import reclaim_summary
from pipeline.core.recovery import recovery_lines, recovery_table
from pipeline.core.run_diff import change_lines

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_UNUSABLE_INPUT = 2
# The run stopped before its report was complete (a listing that kept failing, a crashed
# worker): nothing can be concluded, which is neither "clean" nor "findings".
EXIT_RUN_FAILED = 3

# Findings that stand for a listed object; the others (manifest checks) come on top.
OBJECT_KINDS = frozenset(
    {Kind.DIGEST_MISMATCH, Kind.MALFORMED_NAME, Kind.READ_ERROR, Kind.VANISHED, Kind.LEDGER_DISAGREES}
)


@dataclass
class Tally:
    """Counts that a pipeline folds together from its rows (a monoid: ``+`` and ``Tally()``)."""

    objects_listed: int = 0
    bytes_listed: int = 0
    objects_verified: int = 0
    bytes_verified: int = 0
    findings: Counter = field(default_factory=Counter)
    # Manifest cross-check (README.md, "Manifest cross-check").
    manifests_scanned: int = 0
    images_affected: int = 0  # fed one distinct repo@digest at a time, so it sums
    objects_not_hashed: int = 0  # listed in "manifests" mode, where nothing is hashed
    repositories: Counter = field(default_factory=Counter)  # (repository, column) -> count
    # docs/recovery.md: (bucket, column) -> n against a successor registry; recovery column -> n.
    successor: Counter = field(default_factory=Counter)
    recovery: Counter = field(default_factory=Counter)
    files: Counter = field(default_factory=Counter)  # row files written beside the report's own -> 1
    # Reclaim (pipeline/core/reclaim.py): every unreferenced blob, and the lines of the plan.
    unreferenced: Counter = field(default_factory=Counter)  # (bucket, "objects" | "bytes") -> n
    planned_bytes: Counter = field(default_factory=Counter)  # (bucket, storage class) -> bytes
    planned_objects: Counter = field(default_factory=Counter)  # bucket -> plan lines
    # (bucket, storage class) -> bytes x days still short of the class's minimum storage duration
    planned_byte_days: Counter = field(default_factory=Counter)
    unpinned: Counter = field(default_factory=Counter)  # bucket -> proven but without a generation
    # docs/incremental.md: verified rows carried over from the ledger (not read), and re-checked ones.
    verified_from_ledger: int = 0
    bytes_from_ledger: int = 0
    reverified_from_ledger: int = 0
    # Reclaim's second guard (pipeline/core/protection.py): (bucket, "objects"|"bytes"|"accepted_objects"|
    # "accepted_bytes") -> n of unreferenced blobs an image the bucket shows holds.
    protected: Counter = field(default_factory=Counter)
    # The decommission verdict's per-bucket facts, and the protected images (pipeline/core/decommission.py).
    decommission: dc.BucketFacts = field(default_factory=dc.BucketFacts)

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            objects_listed=self.objects_listed + other.objects_listed,
            bytes_listed=self.bytes_listed + other.bytes_listed,
            objects_verified=self.objects_verified + other.objects_verified,
            bytes_verified=self.bytes_verified + other.bytes_verified,
            findings=self.findings + other.findings,
            manifests_scanned=self.manifests_scanned + other.manifests_scanned,
            images_affected=self.images_affected + other.images_affected,
            objects_not_hashed=self.objects_not_hashed + other.objects_not_hashed,
            repositories=self.repositories + other.repositories,
            successor=self.successor + other.successor,
            recovery=self.recovery + other.recovery,
            files=self.files + other.files,
            unreferenced=self.unreferenced + other.unreferenced,
            planned_bytes=self.planned_bytes + other.planned_bytes,
            planned_objects=self.planned_objects + other.planned_objects,
            planned_byte_days=self.planned_byte_days + other.planned_byte_days,
            unpinned=self.unpinned + other.unpinned,
            verified_from_ledger=self.verified_from_ledger + other.verified_from_ledger,
            bytes_from_ledger=self.bytes_from_ledger + other.bytes_from_ledger,
            reverified_from_ledger=self.reverified_from_ledger + other.reverified_from_ledger,
            protected=self.protected + other.protected,
            decommission=self.decommission + other.decommission,
        )

    @classmethod
    def of_listed(cls, size: int, bucket: str | None = None) -> Tally:
        facts = dc.BucketFacts(Counter({(bucket, dc.OBJECTS): 1, (bucket, dc.BYTES): size or 0}))
        return cls(objects_listed=1, bytes_listed=size, decommission=facts)

    @classmethod
    def of_verified(cls, row: dict[str, Any]) -> Tally:
        size = row["size"] or 0
        if row.get("verified_by") == "ledger":
            return cls(objects_verified=1, bytes_verified=size, verified_from_ledger=1, bytes_from_ledger=size)
        return cls(objects_verified=1, bytes_verified=size, reverified_from_ledger=1 if row.get("ledger_run_id") else 0)

    @classmethod
    def of_finding(cls, row: dict[str, Any]) -> Tally:
        unreferenced = Counter()
        if row["kind"] == Kind.UNREFERENCED_BLOB.value:
            unreferenced = Counter({(row["bucket"], "objects"): 1, (row["bucket"], "bytes"): row["size"] or 0})
        repos = {row["repository"]} if row.get("repository") else set()
        repos.update(row.get("repositories") or ())
        repos.update(image.rsplit("@", 1)[0] for image in row.get("images") or ())
        column = {Kind.READ_ERROR.value: dc.READ_ERRORS, Kind.MALFORMED_NAME.value: dc.MALFORMED}.get(row["kind"])
        return cls(
            decommission=dc.BucketFacts.of(row["bucket"], column) if column else dc.BucketFacts(),
            unreferenced=unreferenced,
            findings=Counter({row["kind"]: 1}),
            repositories=Counter({(repo, row["kind"]): 1 for repo in repos}),
        )

    @classmethod
    def of_plan_line(cls, row: dict[str, Any], days_short: int = 0) -> Tally:
        """An unreferenced blob written to reclaim-plan.txt, ``days_short`` of its minimum storage duration."""
        key = (row["bucket"], row.get("storage_class"))
        return cls(
            planned_bytes=Counter({key: row["size"] or 0}),
            planned_objects=Counter({row["bucket"]: 1}),
            planned_byte_days=Counter({key: (row["size"] or 0) * days_short}),
        )

    @classmethod
    def of_protected(cls, row: dict[str, Any], accepted: bool) -> Tally:
        """An unreferenced blob that an image the bucket shows holds: kept out of the plan, or accepted."""
        prefix = "accepted_" if accepted else ""
        size = row["size"] or 0
        return cls(protected=Counter({(row["bucket"], prefix + "objects"): 1, (row["bucket"], prefix + "bytes"): size}))

    @classmethod
    def of_protected_image(cls, image: dict[str, Any]) -> Tally:
        """One image whose unreferenced blobs the second guard kept out of the plan (counted once)."""
        return cls(decommission=dc.BucketFacts.of(None, dc.PROTECTED, entry=image))

    @classmethod
    def of_unpinned(cls, row: dict[str, Any]) -> Tally:
        """An unreferenced blob of a proven bucket that cannot be pinned to a generation."""
        return cls(unpinned=Counter({row["bucket"]: 1}))

    @property
    def unreferenced_objects(self) -> int:
        return sum(n for (_, what), n in self.unreferenced.items() if what == "objects")

    @property
    def unreferenced_bytes(self) -> int:
        return sum(n for (_, what), n in self.unreferenced.items() if what == "bytes")

    @classmethod
    def of_manifest(cls, repository: str) -> Tally:
        return cls(manifests_scanned=1, repositories=Counter({(repository, "manifests_scanned"): 1}))

    @classmethod
    def of_affected_image(cls, image: str) -> Tally:
        """One distinct ``repository@digest`` named by at least one error finding."""
        return cls(images_affected=1, repositories=Counter({(image.rsplit("@", 1)[0], "images_affected"): 1}))

    @classmethod
    def of_not_hashed(cls) -> Tally:
        return cls(objects_not_hashed=1)

    @property
    def object_findings(self) -> int:
        return sum(self.findings[k.value] for k in OBJECT_KINDS)

    @property
    def unaccounted_objects(self) -> int:
        """Listed objects that ended in neither a verified row nor an object finding; 0 when sound."""
        return self.objects_listed - self.objects_verified - self.object_findings - self.objects_not_hashed

    @property
    def error_findings(self) -> int:
        return sum(n for kind, n in self.findings.items() if SEVERITY_OF[Kind(kind)] is Severity.ERROR)


def sum_tallies(tallies: Iterable[Tally]) -> Tally:
    total = Tally()
    for tally in tallies:
        total = total + tally
    return total


def exit_status(tally: Tally) -> int:
    """0 clean, 1 when any finding is an error or an object went unaccounted."""
    if tally.error_findings or tally.unaccounted_objects:
        return EXIT_FINDINGS
    return EXIT_CLEAN


def build_summary(
    tally: Tally,
    *,
    run_id: str,
    started_at: str,
    ended_at: str,
    config: dict[str, Any],
    report_location: str,
    reclaim_verdict: dict[str, list[dict[str, Any]]] | None = None,
    bucket_facts: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ``summary.json`` document (DESIGN.md §3).

    ``reclaim_verdict`` is ``pipeline.core.reclaim.decide``'s ``{bucket: blockers}``; without it
    nothing is proven reclaimable. ``bucket_facts`` is what the launcher's bucket GET learnt.
    """
    reclaim = reclaim_summary(
        reclaim_verdict,
        bucket_facts,
        unreferenced=tally.unreferenced,
        planned_bytes=tally.planned_bytes,
        planned_objects=tally.planned_objects,
        planned_byte_days=tally.planned_byte_days,
        unpinned=tally.unpinned,
        protected=tally.protected,
    )
    scan = (config or {}).get("scan") or {}
    buckets = set(reclaim["reclaim_by_bucket"]) | {b for b, _ in tally.decommission.counts if b is not None}
    decommission = dc.verdicts(
        tally.decommission,
        buckets,
        run_dir=report_location,
        cross_checked=scan.get("mode") not in ("names", None) or bool(tally.manifests_scanned),
        recovered=bool(scan.get("recover_images")),
        incremental=bool(scan.get("incremental")),
        unaccounted=tally.unaccounted_objects,
        reclaim_blocked_by=reclaim["reclaim_blocked_by"],
        reclaim_by_bucket=reclaim["reclaim_by_bucket"],
    )
    return {
        "run_id": run_id,
        "started_at": started_at,
        "ended_at": ended_at,
        "report_location": report_location,
        "config": config,
        "objects_listed": tally.objects_listed,
        "bytes_listed": tally.bytes_listed,
        "objects_verified": tally.objects_verified,
        "bytes_verified": tally.bytes_verified,
        "verified_from_ledger": tally.verified_from_ledger,
        "bytes_from_ledger": tally.bytes_from_ledger,
        "reverified_from_ledger": tally.reverified_from_ledger,
        # docs/incremental.md: the earlier run this one was compared with, and what changed since.
        "ledger": None,
        "changes": None,
        "unaccounted_objects": tally.unaccounted_objects,
        "unreferenced_objects": tally.unreferenced_objects,
        "unreferenced_bytes": tally.unreferenced_bytes,
        "reclaimable_bytes": reclaim["reclaimable_bytes"],
        "reclaim_blocked_by": reclaim["reclaim_blocked_by"],
        "reclaim_plan": reclaim["reclaim_plan"],
        "reclaim_by_bucket": reclaim["reclaim_by_bucket"],
        "reclaim_protected": protected_summary(tally, (config or {}).get("reclaim") or {}),
        "decommission": decommission,
        "findings_by_kind": {kind.value: tally.findings[kind.value] for kind in Kind},
        "findings_by_severity": {
            severity.value: sum(tally.findings[kind.value] for kind in Kind if SEVERITY_OF[kind] is severity)
            for severity in Severity
        },
        "manifests_scanned": tally.manifests_scanned,
        "images_affected": tally.images_affected,
        "objects_not_hashed": tally.objects_not_hashed,
        "repositories": repository_table(tally),
        "successor": successor_table(tally.successor),
        "recovery": recovery_table(tally.recovery),
        "exit_status": exit_status(tally),
    }


def protected_summary(tally: Tally, reclaim_config: dict[str, Any]) -> dict[str, Any]:
    """Reclaim's second guard in summary.json: what it kept out of the plan, and the user's choice."""
    accept = reclaim_config.get("accept_losing") or []
    return {
        # Where the choice is recorded: reclaim-plan.txt stays pure `gs://…#generation` lines for
        # `gcloud storage rm -I`, which takes no comment lines.
        "accept_losing": accept if isinstance(accept, str) else list(accept),
        "objects": sum(n for (_, what), n in tally.protected.items() if what == "objects"),
        "bytes": sum(n for (_, what), n in tally.protected.items() if what == "bytes"),
        "accepted_objects": sum(n for (_, what), n in tally.protected.items() if what == "accepted_objects"),
        "accepted_bytes": sum(n for (_, what), n in tally.protected.items() if what == "accepted_bytes"),
        "images": tally.decommission.listed(None, dc.PROTECTED),
        "images_total": tally.decommission.counts[(None, dc.PROTECTED)],
    }


def repository_table(tally: Tally) -> dict[str, dict[str, int]]:
    """``{repository: {"manifests_scanned": n, "images_affected": n, <kind>: n, ...}}``, sorted."""
    table: dict[str, dict[str, int]] = {}
    for (repo, column), n in sorted(tally.repositories.items()):
        if n:
            table.setdefault(repo, {"manifests_scanned": 0, "images_affected": 0})[column] = n
    return table


def _usd(amount: float) -> str:
    return f"${amount:,.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.6f}"


def reclaim_lines(summary: dict[str, Any]) -> list[str]:
    """What may be deleted, what it saves, how long deleted bytes stay billed, and why the rest may not."""
    lines = []
    plan = summary.get("reclaim_plan")
    if plan:
        cost = plan["monthly_cost"]
        unpriced = f", {cost['unpriced_bytes'] / 1e6:.1f} MB unpriced" if cost["unpriced_bytes"] else ""
        price = (
            f"about {_usd(cost['usd_per_month'])}/month at {cost['price_date']} list prices{unpriced}"
            if cost["usd_per_month"] is not None
            else f"not priced: {cost.get('reason')}"
        )
        lines.append(f"reclaim plan: {plan['objects']} unreferenced blob(s), {plan['bytes'] / 1e6:.1f} MB, {price}")
        early = plan.get("early_deletion") or {}
        if early.get("usd"):
            lines.append(
                f"  deleting now also costs about {_usd(early['usd'])} once in early-deletion fees "
                "(objects younger than their class's minimum storage duration)"
            )
        lines.append(f"  {plan['file']} (generation-pinned; delete with: gcloud storage rm -I < {plan['file']})")
        for bucket, note in sorted(plan["soft_delete"].items()):
            lines.append(f"  {bucket}: {note}")
    unreferenced = summary.get("unreferenced_bytes") or 0
    blocked = [
        (bucket, row)
        for bucket, row in sorted((summary.get("reclaim_by_bucket") or {}).items())
        if not row["reclaim_proven"] and row["unreferenced_objects"]
    ]
    if blocked:
        lines.append(
            f"not reclaimable: {sum(r['unreferenced_bytes'] for _, r in blocked) / 1e6:.1f} MB in "
            f"{sum(r['unreferenced_objects'] for _, r in blocked)} unreferenced blob(s) are not proven unused:"
        )
        for blocker in summary.get("reclaim_blocked_by") or []:
            if any(bucket == blocker["bucket"] for bucket, _ in blocked):
                source = f"{blocker['source']}: " if blocker.get("source") else ""
                lines.append(f"  {blocker['bucket']}: {source}{blocker['reason']}")
    elif unreferenced and not plan:
        lines.append(f"unreferenced: {unreferenced / 1e6:.1f} MB, none of it pinned to a generation")
    return lines


def protected_lines(protected: dict[str, Any] | None) -> list[str]:
    """What the second guard kept out of the plan, naming the images."""
    if not protected or not protected.get("objects"):
        return []
    lines = [
        f"protected: {protected['objects']} unreferenced blob(s), {protected['bytes'] / 1e6:.1f} MB, belong to "
        f"{protected['images_total']} complete image(s) the buckets themselves show; never planned unless "
        "named with --accept-losing CONFIG_DIGEST:"
    ]
    lines += [f"  {image['config_digest']}  ({image['via']})" for image in protected["images"][:5]]
    return lines


def ledger_lines(summary: dict[str, Any]) -> list[str]:
    """The ledger the run used and what it took from it (docs/incremental.md)."""
    ledger = summary.get("ledger")
    if not ledger:
        return []
    lines = [f"ledger: run {ledger.get('run_id') or '(newest trusted in BigQuery)'} ({ledger.get('location')})"]
    if summary.get("reverified_from_ledger") or summary["findings_by_kind"].get(Kind.LEDGER_DISAGREES.value):
        lines.append(
            f"  re-check sample: {summary.get('reverified_from_ledger') or 0} agreed, "
            f"{summary['findings_by_kind'].get(Kind.LEDGER_DISAGREES.value, 0)} disagreed"
        )
    return lines


def format_summary(summary: dict[str, Any]) -> str:
    """The few lines a person reads at the end of a run."""
    carried = summary.get("verified_from_ledger") or 0
    hashed = summary["bytes_verified"] - (summary.get("bytes_from_ledger") or 0)
    lines = [
        f"run {summary['run_id']}: {summary['objects_listed']} objects listed, "
        f"{summary['objects_verified']} verified ({hashed / 1e6:.1f} MB hashed"
        + (f", {carried} carried over from the ledger" if carried else "")
        + ")",
    ]
    lines += fleet_lines(summary)
    lines += ledger_lines(summary)
    if summary.get("manifests_scanned"):
        lines.append(
            f"manifests: {summary['manifests_scanned']} scanned in "
            f"{len(summary.get('repositories') or {})} repositories, "
            f"{summary.get('images_affected', 0)} image(s) affected by errors"
        )
    found = {kind: n for kind, n in summary["findings_by_kind"].items() if n}
    if found:
        lines.append("findings:")
        width = max(map(len, found))
        for kind, n in sorted(found.items(), key=lambda item: (-item[1], item[0])):
            severity = SEVERITY_OF[Kind(kind)].value
            lines.append(f"  {kind:<{width}}  {n:>6}  ({severity})")
    else:
        lines.append("findings: none")
    lines.extend(reclaim_lines(summary))
    lines += protected_lines(summary.get("reclaim_protected"))
    lines += bucket_lines(summary.get("successor") or {})
    lines += recovery_lines(summary.get("recovery") or {})
    lines += dc.verdict_lines(summary.get("decommission"))
    if summary.get("unaccounted_objects"):
        lines.append(f"WARNING: {summary['unaccounted_objects']} listed object(s) ended in no report row")
    nothing_listed = not summary["objects_listed"]
    if nothing_listed:
        source = (summary.get("config") or {}).get("source") or {}
        lines.append(
            f"WARNING: no object listed under prefix {source.get('prefix')!r}: nothing was checked; "
            "is the prefix (--prefix) or the bucket right?"
        )
    affected = summary.get("most_affected_images") or []
    if affected:
        lines.append(f"most affected images ({len(affected)} of {summary.get('images_affected', len(affected))}):")
        for item in affected:
            lines.append(
                f"  {item['image']}  ({item['error_findings']} error finding(s), "
                f"{item['broken_by_count']} broken part(s))"
            )
    lines += change_lines(summary.get("changes"))
    lines.append(f"report: {summary['report_location']}")
    if summary.get("report_html"):
        lines.append(f"page:   {summary['report_html']}")
    status = summary["exit_status"]
    meaning = {
        EXIT_CLEAN: "clean",
        EXIT_FINDINGS: "findings of severity error",
        EXIT_UNUSABLE_INPUT: "unusable input",
        EXIT_RUN_FAILED: "the run itself failed: nothing can be concluded",
    }.get(status, "")
    if status == EXIT_CLEAN and nothing_listed:
        meaning = "no finding, but nothing was listed to check"
    lines.append(f"exit status {status}: {meaning}")
    return "\n".join(lines)
