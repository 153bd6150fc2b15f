"""The demo bucket's scan on Beam's portable runners must report exactly what FnApiRunner reports.

Prism (Beam's portable local runner, the engine behind its DirectRunner) and Apache Flink
(through Beam's FlinkRunner, on an embedded cluster) run the pipeline the way Dataflow's
Runner v2 does: every element crosses a coder between stages, DoFns are pickled and set up
in SDK worker processes, and GroupByKey/Reshuffle really shuffle. FnApiRunner forgives some
of that. The scan runs through the ``registry-scrub`` command line itself, which hands the
runner flags to Beam, against one seeded emulator, so the rows must be equal as sets.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
from pathlib import Path

import apache_beam
import pytest

from jobs import cli
from jobs.demo import DEFAULT_CONFIG, seed_demo
from jobs.emulator import Emulator
from tests.conftest import REPO

pytestmark = pytest.mark.slow

INSTALL_PRISM = REPO / "tests" / "install-prism.sh"
# Beam's newest Flink for 2.77 (and its default): Flink 2.x runs on Java 17, Debian's JRE.
FLINK_VERSION = "2.2"
# What differs between two runs of the same scan by design; everything else must be equal.
RUN_SPECIFIC_SUMMARY_KEYS = {"run_id", "started_at", "ended_at", "files", "config", "report_location", "report_html"}


def canonical(row: dict) -> str:
    """One row as comparable text; lists are sorted so that only their content counts, and the
    run's own id and start (each runner's scan has its own; verified_at is the start) are left out."""
    kept = {k: sorted(v) if isinstance(v, list) else v for k, v in row.items() if k not in ("run_id", "verified_at")}
    return json.dumps(kept, sort_keys=True)


def read_rows(run_dir: Path, prefix: str) -> list[str]:
    lines = [line for path in sorted(run_dir.glob(f"{prefix}-*.jsonl")) for line in path.read_text().splitlines()]
    return [canonical(json.loads(line)) for line in lines if line]


class DemoScans:
    """One seeded demo bucket, scanned once per runner through the CLI."""

    def __init__(self, emulator: Emulator, output: Path):
        self.emulator = emulator
        self.output = output

    def scan(self, run_id: str, beam_args: list[str], config: Path = DEFAULT_CONFIG) -> dict:
        status = cli.main(
            [
                "scan",
                "--config",
                str(config),
                "--emulator-endpoint",
                self.emulator.endpoint,
                "--output",
                str(self.output),
                "--run-id",
                run_id,
                "--quiet",
                *beam_args,
            ]
        )
        run_dir = self.output / run_id
        # The verdict's export commands name the run's folder, as report_location does.
        summary = json.loads((run_dir / "summary.json").read_text().replace(str(run_dir), "RUN_DIR"))
        findings, verified = read_rows(run_dir, "findings"), read_rows(run_dir, "verified")
        assert status == summary["exit_status"]
        return {
            "findings": findings,
            "verified": verified,
            "summary": {k: v for k, v in summary.items() if k not in RUN_SPECIFIC_SUMMARY_KEYS},
        }


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from apache_beam.runners.portability.prism_runner import PrismRunner
    from apache_beam.utils import shared

    with pytest.MonkeyPatch.context() as patch:
        # Beam keeps one Prism server per process, made with the options of the first Prism run:
        # a plain DirectRunner run earlier in the session leaves one behind that has no binary and
        # would download one. These scans get a server of their own, with our --prism_location.
        patch.setattr(PrismRunner, "shared_handle", shared.Shared())
        with Emulator(tmp_path_factory.mktemp("runners-gcs")) as emulator:
            seed_demo(emulator)
            yield DemoScans(emulator, tmp_path_factory.mktemp("runners-reports"))
        stop_shared_prism()


def stop_shared_prism() -> None:
    """Beam keeps one Prism server per process and stops it at exit, when pytest's streams are
    closed and its goodbye log line fails; stop it while they are open."""
    from apache_beam.runners.portability.prism_runner import PrismRunner

    server = PrismRunner.shared_handle.acquire(lambda: None)
    if server is not None:
        server.stop()


@pytest.fixture(scope="module")
def reference(demo):
    """The scan on the default local runner, FnApiRunner (multi-processing)."""
    result = demo.scan("fnapi", [])
    # The demo's planted problems (README "What it checks"): the comparison is only as good as this.
    assert result["summary"]["exit_status"] == 1
    # 15 and 17 in the main bucket; the EU bucket adds 7 intact blobs, 2 of them unreferenced; the
    # post-shutdown cases (docs/recovery.md) add the lost image's 3 blobs, verified and unreferenced,
    # and 2 in_registry_only rows for the successor's newer image.
    # The verdict's two buckets (docs/recovery.md) add 6 intact blobs, 2 of them unreferenced; the
    # legacy metadata holds a damaged manifest and 2 v1 objects (legacy_metadata_unparsed).
    assert len(result["verified"]) == result["summary"]["objects_verified"] == 31
    assert len(result["findings"]) == sum(result["summary"]["findings_by_kind"].values()) == 28
    return result


def assert_same_scan(result: dict, reference: dict) -> None:
    for part in ("findings", "verified"):
        assert len(result[part]) == len(set(result[part])), f"{part}: a row reported twice"
        missing = set(reference[part]) - set(result[part])
        extra = set(result[part]) - set(reference[part])
        assert not missing and not extra, f"{part} differ:\nonly on FnApiRunner: {missing}\nonly here: {extra}"
    assert result["summary"] == reference["summary"]


@pytest.fixture(scope="session")
def prism_binary() -> str:
    """Beam's Prism runner for the pinned Beam, built once into a cache folder (tests/install-prism.sh)."""
    given = os.environ.get("REGISTRY_SCRUB_PRISM")
    if given:
        return given
    done = subprocess.run(["bash", str(INSTALL_PRISM)], capture_output=True, text=True, timeout=1200, check=False)
    assert done.returncode == 0, f"tests/install-prism.sh failed (make runners):\n{done.stderr}"
    return done.stdout.strip().splitlines()[-1]


def test_prism_install_is_cached(prism_binary):
    """A second install keeps the binary it built (make test runs it on every call)."""
    if os.environ.get("REGISTRY_SCRUB_PRISM"):
        pytest.skip("REGISTRY_SCRUB_PRISM names a binary of its own; the install script is not used")
    before = Path(prism_binary).stat().st_mtime_ns
    again = subprocess.run(["bash", str(INSTALL_PRISM)], capture_output=True, text=True, timeout=60, check=True)
    assert again.stdout.strip() == prism_binary and "building" not in again.stderr
    assert Path(prism_binary).stat().st_mtime_ns == before
    # Cached per Beam version, the one the tests run: a Beam upgrade that forgets the script fails here.
    assert Path(prism_binary).parent.name == f"prism-v{apache_beam.__version__}"


def test_prism_reports_what_fnapi_reports(demo, reference, prism_binary):
    result = demo.scan("prism", ["--runner=PrismRunner", f"--prism_location={prism_binary}"])
    assert_same_scan(result, reference)


@pytest.fixture(scope="session")
def flink_job_server_jar() -> str:
    """Beam's Flink job server for the pinned Beam, from Maven Central through Beam's own download
    (cached under ~/.apache_beam/cache/jars), or the jar named by REGISTRY_SCRUB_FLINK_JOB_SERVER_JAR."""
    assert shutil.which("java"), "no java on PATH: FlinkRunner starts its job server with it (make system-deps)"
    given = os.environ.get("REGISTRY_SCRUB_FLINK_JOB_SERVER_JAR")
    if given:
        return given
    from apache_beam.utils.subprocess_server import JavaJarServer

    url = JavaJarServer.path_to_beam_jar(f":runners:flink:{FLINK_VERSION}:job-server:shadowJar")
    try:
        return JavaJarServer.local_jar(url)
    except RuntimeError as err:
        # Only "the registry does not serve this jar" skips; any other failure fails the test.
        if "HTTP Error 404" not in str(err):
            raise
        artifact = f"org.apache.beam:beam-runners-flink-{FLINK_VERSION}-job-server:{apache_beam.__version__}"
        pytest.skip(f"Maven Central as reached from here does not serve {artifact} (HTTP 404)")
    except urllib.error.URLError as err:  # pragma: no cover - the wording differs by Python version
        raise AssertionError(f"cannot fetch the Flink job server jar from Maven Central: {err}") from err


def test_flink_reports_what_fnapi_reports(demo, reference, flink_job_server_jar):
    result = demo.scan(
        "flink",
        [
            "--runner=FlinkRunner",
            "--flink_master=[local]",
            f"--flink_version={FLINK_VERSION}",
            f"--flink_job_server_jar={flink_job_server_jar}",
            "--parallelism=2",
            "--environment_type=LOOPBACK",
        ],
    )
    assert_same_scan(result, reference)


@pytest.fixture(scope="module")
def registry_bucket(tmp_path_factory, demo):
    """A real registry (docker-registry, images pushed with skopeo) whose blobs are copied into a GCR
    bucket, one layer missing: the registry client's DoFns must run on the portable runners too."""
    from jobs.images import make_image, random_layer
    from pipeline.adapters import gcs
    from tests.registry_fixtures import Registry, copy_blobs_to_bucket

    work = tmp_path_factory.mktemp("runners-registry")
    with Registry(work / "registry") as registry:
        images = [
            make_image([random_layer(7000 + i, 3000), random_layer(7100 + i, 2000)], oci=i % 2 == 0) for i in range(3)
        ]
        for i, image in enumerate(images):
            registry.push(image, f"team/app{i}", "v1")
        client = gcs.make_client(demo.emulator.endpoint)
        bucket = client.lookup_bucket("artifacts.runners-1234.appspot.com") or client.create_bucket(
            "artifacts.runners-1234.appspot.com"
        )
        copy_blobs_to_bucket(registry, bucket)
        bucket.blob(f"containers/images/{images[1].layers[0].digest}").delete()
        config = work / "registry.yaml"
        config.write_text(
            json.dumps(
                {
                    "source": {"buckets": [bucket.name]},
                    "manifests": {"sources": [{"registry": registry.url}], "requests_per_second": 200},
                }
            )
        )
        yield config


def test_prism_reports_what_fnapi_reports_for_a_registry_source(demo, registry_bucket, prism_binary):
    reference = demo.scan("registry-fnapi", [], config=registry_bucket)
    kinds = sorted(json.loads(row)["kind"] for row in reference["findings"])
    assert kinds == ["missing_blob"] and len(reference["verified"]) == 8  # 3 x (config + 2 layers) - 1
    result = demo.scan(
        "registry-prism", ["--runner=PrismRunner", f"--prism_location={prism_binary}"], config=registry_bucket
    )
    assert_same_scan(result, reference)
