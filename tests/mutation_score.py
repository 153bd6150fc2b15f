"""Print the mutation score of a ``mutmut run`` (``make mutate``), per file and in all.

Not a test: reads the ``mutants/**/*.py.meta`` files mutmut leaves behind. A mutant
counts as killed when a test failed on it, or when it made the tests time out (a
mutant that hangs the suite is noticed too). Mutants no selected test reaches
count against the score. Exit status 1 when the score is below ``--target``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

# mutmut's exit codes per mutant (mutmut/stats.py).
KILLED = {1, 3}
TIMEOUT = {36, 24, -24, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}
SKIPPED = {34, 37}


def outcome(exit_code: int | None) -> str:
    if exit_code is None:
        return "not checked"
    for name, codes in (
        ("killed", KILLED),
        ("timeout", TIMEOUT),
        ("survived", SURVIVED),
        ("no tests", NO_TESTS),
        ("skipped", SKIPPED),
    ):
        if exit_code in codes:
            return name
    return "suspicious"


def score(counts: Counter) -> float:
    counted = sum(counts.values()) - counts["skipped"]
    return 100.0 * (counts["killed"] + counts["timeout"]) / counted if counted else 100.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mutants", nargs="?", default="mutants", help="mutmut's mutants/ folder")
    parser.add_argument("--target", type=float, default=90.0, help="the score (%%) below which to exit 1")
    args = parser.parse_args()
    total: Counter = Counter()
    rows = []
    for meta in sorted(Path(args.mutants).rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"].values()
        counts = Counter(outcome(code) for code in codes)
        if counts:
            total += counts
            rows.append((str(meta.relative_to(args.mutants))[: -len(".meta")], counts))
    if not rows:
        print(f"no mutmut results under {args.mutants}/: run `mutmut run` first", file=sys.stderr)
        return 2
    print(f"{'file':<40} {'mutants':>8} {'killed':>7} {'timeout':>8} {'survived':>9} {'no tests':>9} {'score':>7}")
    for name, counts in rows + [("all", total)]:
        print(
            f"{name:<40} {sum(counts.values()):>8} {counts['killed']:>7} {counts['timeout']:>8} "
            f"{counts['survived']:>9} {counts['no tests']:>9} {score(counts):>6.1f}%"
        )
    return 0 if score(total) >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
