"""Discovery of a fleet through Cloud Asset Inventory, its plan, and its scan, end to end.

What is real: the ``registry-scrub`` command, gcp-storage-emulator holding the buckets (seen
through the fault proxy, whose request log tells whether any object was read), google-auth's
Application Default Credentials and ``AuthorizedSession``.

One stand-in, because nothing local serves Cloud Asset Inventory: ``AssetInventoryStandIn``
answers ``GET /v1/{organizations|folders}/N:searchAllResources`` in the documented v1 shapes
(``results[]`` of ``ResourceSearchResult`` with ``name: //storage.googleapis.com/BUCKET``,
``project: projects/NUMBER``, ``nextPageToken``; errors as Google's JSON ``error`` object with
``status`` and an ``ErrorInfo`` detail). It pages two results at a time, refuses organisation
403 (PERMISSION_DENIED) and reports the API disabled for organisation 777 (SERVICE_DISABLED).
The scanner reaches it through ``REGISTRY_SCRUB_CLOUDASSET_ENDPOINT``. Its credentials are an
``authorized_user`` ADC file holding an access token that has not expired, so google-auth sends
it as a bearer token without refreshing; the stand-in refuses any other token with 401.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from pipeline.adapters.asset_inventory import ENDPOINT_ENV
from tests.support.http_server import RecordingHandler, send_json, serving
from tests.support.proxy import FaultyProxy
from tests.test_cli import cli_env, one_line, run_cli

ACCESS_TOKEN = "stand-in-access-token"
FLEET = {  # GCR bucket -> objects it holds
    "artifacts.fleet-alpha.appspot.com": 3,
    "us.artifacts.fleet-alpha.appspot.com": 2,
    "eu.artifacts.fleet-beta.appspot.com": 1,
}
NOT_GCR = ["fleet-alpha-uploads", "staging.fleet-alpha.appspot.com"]  # listed by the API, never scanned
PAGE = 2


def _result(bucket: str, project_number: str) -> dict:
    return {
        "name": f"//storage.googleapis.com/{bucket}",
        "assetType": "storage.googleapis.com/Bucket",
        "project": f"projects/{project_number}",
        "displayName": bucket,
        "location": "us",
    }


RESULTS = [_result(b, "1001") for b in [*FLEET, *NOT_GCR]]


def _error(code: int, status: str, message: str, reason: str | None = None, service: str | None = None) -> dict:
    error: dict = {"code": code, "message": message, "status": status}
    if reason:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"consumer": "projects/4242", "service": service},
            }
        ]
    return {"error": error}


class AssetInventoryStandIn(RecordingHandler):
    """A stand-in for cloudasset.googleapis.com v1 ``searchAllResources`` (see the module's docstring)."""

    def do_GET(self) -> None:
        self.record()
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if self.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return self._send(401, _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."))
        scope, _, method = url.path.removeprefix("/v1/").partition(":")
        if method != "searchAllResources" or query.get("assetTypes") != ["storage.googleapis.com/Bucket"]:
            return self._send(400, _error(400, "INVALID_ARGUMENT", f"unexpected request {self.path}"))
        if scope == "organizations/403":
            return self._send(
                403,
                _error(
                    403,
                    "PERMISSION_DENIED",
                    "The caller does not have permission",
                    "IAM_PERMISSION_DENIED",
                    "cloudasset.googleapis.com",
                ),
            )
        if scope == "organizations/777":
            return self._send(
                403,
                _error(
                    403,
                    "PERMISSION_DENIED",
                    "Cloud Asset API has not been used in project 4242 before or it is disabled.",
                    "SERVICE_DISABLED",
                    "cloudasset.googleapis.com",
                ),
            )
        if scope not in ("organizations/123", "folders/456"):
            return self._send(404, _error(404, "NOT_FOUND", f"{scope} not found"))
        start = int(query.get("pageToken", ["0"])[0])
        body: dict = {"results": RESULTS[start : start + PAGE]}
        if start + PAGE < len(RESULTS):
            body["nextPageToken"] = str(start + PAGE)
        self._send(200, body)

    def _send(self, status: int, body: dict) -> None:
        send_json(self, status, body)


@pytest.fixture(scope="module")
def fleet(emulator):
    """The fleet's buckets, really in the emulator, each with valid blobs."""
    from pipeline.adapters import gcs

    client = gcs.make_client(emulator.endpoint)
    for name, count in FLEET.items():
        bucket = client.lookup_bucket(name) or client.create_bucket(name)
        for i in range(count):
            content = f"{name} blob {i}".encode()
            bucket.blob("containers/images/sha256:" + hashlib.sha256(content).hexdigest()).upload_from_string(content)
    return FLEET


@pytest.fixture
def asset_inventory():
    with serving(AssetInventoryStandIn) as httpd:
        yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


@pytest.fixture
def adc(tmp_path):
    """An ``authorized_user`` credentials file whose access token is still valid (no refresh)."""
    path = tmp_path / "adc.json"
    info = {
        "type": "authorized_user",
        "client_id": "stand-in.apps.googleusercontent.com",
        "client_secret": "unused",
        "refresh_token": "unused",
        "token": ACCESS_TOKEN,
        "expiry": "2999-01-01T00:00:00Z",
    }
    path.write_text(json.dumps(info))
    return path


def _env(adc, endpoint: str, storage: str) -> dict:
    return cli_env(GOOGLE_APPLICATION_CREDENTIALS=str(adc), STORAGE_EMULATOR_HOST=storage, **{ENDPOINT_ENV: endpoint})


def test_plan_only_lists_the_fleet_and_its_estimate_and_reads_no_blob(emulator, fleet, asset_inventory, adc, tmp_path):
    httpd, endpoint = asset_inventory
    with FaultyProxy(emulator.port) as proxy:
        proc = run_cli(
            "scan", "--scan-org", "123", "--plan-only", cwd=tmp_path, env=_env(adc, endpoint, proxy.endpoint)
        )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "plan: 3 bucket(s) from organizations/123; no blob was read" in out
    for name, count in fleet.items():
        row = next(line for line in out.splitlines() if line.strip().startswith(name + " "))
        assert f" {count} " in row, row
    assert "fleet-alpha" in out and "fleet-beta" in out  # the projects, from the bucket names
    assert not any(name in out for name in NOT_GCR)
    assert "total: 6 objects" in out
    assert "local, " in out and "Dataflow, 20 x n2-standard-4: about 6m" in out
    assert "choose: local" in out
    # Every page was asked for, with the asset type, and no object was read.
    pages = [path for path, _ in AssetInventoryStandIn.peers]
    assert len(pages) == -(-len(RESULTS) // PAGE)
    assert all("assetTypes=storage.googleapis.com%2FBucket" in path for path in pages)
    assert proxy.stats.requests > 0
    assert proxy.stats.media_reads() == []
    assert not (tmp_path / "scrub-reports").exists()


def test_a_discovered_fleet_is_scanned_end_to_end(emulator, fleet, asset_inventory, adc, tmp_path):
    _, endpoint = asset_inventory
    proc = run_cli(
        "--scan-folder",
        "456",
        "--run-id",
        "fleet",
        "--direct_running_mode=in_memory",
        cwd=tmp_path,
        env=_env(adc, endpoint, emulator.endpoint),
    )
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "scrub-reports" / "fleet"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["config"]["source"]["folders"] == ["456"]
    assert summary["objects_listed"] == summary["objects_verified"] == sum(fleet.values())
    verified = [json.loads(line) for path in run_dir.glob("verified-*.jsonl") for line in path.read_text().splitlines()]
    assert {row["bucket"] for row in verified} == set(fleet)
    assert "fleet" in summary  # null until the run carries decommission verdicts


@pytest.mark.parametrize(
    ("org", "expected"),
    [
        (
            "403",
            "organizations/403 (--scan-org / source.organizations): Cloud Asset Inventory (cloudasset.googleapis.com) "
            "refused the search (PERMISSION_DENIED: The caller does not have permission); the identity needs "
            "roles/cloudasset.viewer (permission cloudasset.assets.searchAllResources) on organizations/403",
        ),
        (
            "777",
            "organizations/777 (--scan-org / source.organizations): Cloud Asset Inventory (cloudasset.googleapis.com) "
            "is not enabled in the project the credentials bill the call to (Cloud Asset API has not been used in "
            "project 4242 before or it is disabled.); enable it with "
            "`gcloud services enable cloudasset.googleapis.com --project=4242`, "
            "or name the projects with --scan-project",
        ),
    ],
)
def test_a_refused_or_disabled_api_is_one_line_and_status_two(emulator, asset_inventory, adc, tmp_path, org, expected):
    _, endpoint = asset_inventory
    for extra in ((), ("--plan-only",)):
        env = _env(adc, endpoint, emulator.endpoint)
        del env["STORAGE_EMULATOR_HOST"]  # named by the flag instead: the variable logs a line of its own
        proc = run_cli("--scan-org", org, "--emulator-endpoint", emulator.endpoint, *extra, cwd=tmp_path, env=env)
        assert proc.returncode == 2, proc.stderr
        assert one_line(proc.stderr) == f"registry-scrub: {expected}"
    assert not (tmp_path / "scrub-reports").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("--scan-org", "my-org"),
            "registry-scrub: command line --scan-org: item 0 ('my-org'): expected an organization number, digits "
            "only, e.g. 123456789012 (`gcloud organizations list` shows it)",
        ),
        (
            ("--scan-folder", "folders/12"),
            "registry-scrub: command line --scan-folder: item 0 ('folders/12'): expected a folder number, digits "
            "only, e.g. 987654321098 (`gcloud resource-manager folders list --organization=ORG_ID` shows it)",
        ),
        (
            ("--scan-org", "123", "--bucket", "artifacts.p-1234.appspot.com"),
            "registry-scrub: command line: source.buckets cannot be combined with source.organizations or "
            "source.folders (--bucket with --scan-org / --scan-folder): the fleet answers for every GCR bucket the "
            "organisation or folder holds; scan named buckets in a run of their own",
        ),
    ],
)
def test_bad_fleet_input_is_one_line_and_status_two(tmp_path, args, expected):
    proc = run_cli(*args, "--plan-only", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert one_line(proc.stderr) == expected


def test_a_dry_run_cannot_discover_and_says_so(tmp_path):
    proc = run_cli(
        "--scan-org",
        "123",
        "--output",
        "gs://audit-reports/scrub",
        "--runner=DataflowRunner",
        "--dry_run=True",
        "--project=my-project",
        "--region=us-central1",
        "--temp_location=gs://p-dataflow/tmp",
        "--sdk_container_image=i",
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert one_line(proc.stderr) == (
        "registry-scrub: a dry run builds the job offline and cannot ask Cloud Asset Inventory which GCR buckets "
        "--scan-org / --scan-folder hold; add --scan-project PROJECT, or drop --dry_run"
    )


def test_a_plan_reports_a_bucket_it_cannot_list_as_unknown_and_still_exits_zero(emulator, fleet, tmp_path):
    missing = "us.artifacts.gone-1234.appspot.com"
    proc = run_cli(
        "--bucket",
        "artifacts.fleet-alpha.appspot.com",
        "--bucket",
        missing,
        "--emulator-endpoint",
        emulator.endpoint,
        "--plan-only",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"  {missing}: objects and bytes: the bucket does not exist" in proc.stdout
    assert "the estimates leave out the 1 bucket(s) that could not be listed" in proc.stdout
    assert "total: 3 objects" in proc.stdout
