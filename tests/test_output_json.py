"""``--format json`` on ``scan``, ``report`` and ``export``: one JSON document on standard output, the
text for people on standard error, the exit status unchanged (jobs/output.py, docs/cli.md)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

from jobs.cli import main
from jobs.demo import seed_demo
from tests.test_cli import CLI, cli_env, run_cli
from tests.test_export import lost_image_run  # noqa: F401 - the module fixture, reused

JSON_BUCKET = "artifacts.json-format.appspot.com"


def test_scan_format_json_pipes_into_a_json_parser(emulator, tmp_path):
    """`registry-scrub scan … --format json | python -m json.tool` on the demo's bucket."""
    seed_demo(emulator, JSON_BUCKET)
    out = tmp_path / "out"
    scan = [CLI, "scan", "--bucket", JSON_BUCKET, "--emulator-endpoint", emulator.endpoint, "--output", str(out)]
    scan += ["--direct_running_mode=in_memory"]
    pipeline = (
        f"{shlex.join([*scan, '--run-id', 'as-json', '--format', 'json'])} | {shlex.quote(sys.executable)} -m json.tool"
        '; echo "statuses ${PIPESTATUS[*]}" >&2'
    )
    piped = subprocess.run(["bash", "-c", pipeline], cwd=tmp_path, env=cli_env(), capture_output=True, text=True)
    summary = json.loads((out / "as-json" / "summary.json").read_text())
    assert f"statuses {summary['exit_status']} 0" in piped.stderr, piped.stderr  # the parser took it all
    printed = json.loads(piped.stdout)
    assert printed["run_id"] == "as-json" and printed["findings_by_kind"] == summary["findings_by_kind"]
    assert printed["exit_status"] == summary["exit_status"] == 1  # the demo's planted damage
    # The text for people went to standard error, unchanged.
    assert "findings:" in piped.stderr and f"report: {out / 'as-json'}" in piped.stderr

    # Text, as before: the same exit status, the summary text on standard output.
    text = subprocess.run([*scan, "--run-id", "as-text"], cwd=tmp_path, env=cli_env(), capture_output=True, text=True)
    assert text.returncode == summary["exit_status"], text.stderr
    assert "findings:" in text.stdout and not text.stdout.lstrip().startswith("{")

    # report: the summary of the run folder it re-rendered.
    report = run_cli("report", str(out / "as-json"), "--format", "json", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout) == summary
    assert f"page: {out / 'as-json' / 'report.html'}" in report.stderr


def test_a_failed_run_prints_no_json_and_keeps_its_status(tmp_path):
    proc = run_cli("scan", "--bucket", "artifacts.x-1234.appspot.com", "--format", "json", "--frobnicate", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    proc = run_cli("scan", "--bucket", "artifacts.x-1234.appspot.com", "--format", "yaml", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == "" and "--format" in proc.stderr


def test_export_format_json_prints_what_it_exported(lost_image_run, tmp_path, capsys):  # noqa: F811
    image, _, run_dir, _ = lost_image_run
    layout = tmp_path / "layout"
    argv = ["export", str(run_dir), image.config_digest, "--to", str(layout), "--tag", "v2", "--format", "json"]
    assert main(argv) == 0
    printed = capsys.readouterr()
    result = json.loads(printed.out)
    assert result["config_digest"] == image.config_digest and result["reference"] == f"oci:{layout}:v2"
    assert result["layers"] == len(image.layers) and result["verified"] is True
    index = json.loads((layout / "index.json").read_text())
    assert [entry["digest"] for entry in index["manifests"]] == [result["manifest_digest"]]
    assert "every blob re-verified" in printed.err
