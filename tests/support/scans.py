"""A whole scan of one emulated bucket, in process, with the report's rows read back."""

from __future__ import annotations

import json
from pathlib import Path

from jobs.launcher import run_scan
from pipeline.config import parse_config

IN_MEMORY = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


def scan(
    emulator, bucket: str, out: Path, sources: list[dict], *, sections: dict | None = None, **scan_keys
) -> tuple[dict, list[dict], Path]:
    """Scan ``bucket`` with ``sources``; ``scan_keys`` go to ``scan:``, ``sections`` are further
    top-level config sections. Returns (summary, finding rows, run folder)."""
    config = parse_config(
        {
            "source": {"buckets": [bucket], "emulator_endpoint": emulator.endpoint},
            "scan": {"read_concurrency": 4, **scan_keys},
            "report": {"output": str(out), "run_id": "run"},
            "manifests": {"sources": sources, "requests_per_second": 1000},
            **(sections or {}),
        },
        "test",
    )
    summary = run_scan(config, IN_MEMORY)
    run_dir = out / "run"
    rows = [json.loads(line) for p in sorted(run_dir.glob("findings-*.jsonl")) for line in p.read_text().splitlines()]
    return summary, rows, run_dir
