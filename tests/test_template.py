"""The Flex Template: metadata.json, the launcher's parameters and the CLI agree."""

from __future__ import annotations

import json
import re

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from jobs import cli, template
from pipeline.config import SCHEMA, Config, ConfigError, load_config
from tests.conftest import REPO

METADATA = json.loads((REPO / "jobs" / "metadata.json").read_text())
PARAMETERS = {p["name"]: p for p in METADATA["parameters"]}
_EXAMPLE = re.compile(r"Example: `([^`]+)`")

# Values each parameter's regex must refuse (a Flex Template launch fails on them before any VM starts).
BAD_VALUES = {
    "accept_losing": ["sha256:abc", "ALL", "all,sha256:" + "a" * 64, "sha256:" + "A" * 64, "a b"],
    "buckets": ["gs://artifacts.p.appspot.com", "a,", "Artifacts.p.appspot.com", "b/containers", "a b"],
    "projects": ["My-Project", "p", "proj,", "projects/my-project"],
    "organizations": ["organizations/123", "my-org", "123,", "0123", "12 3"],
    "folders": ["folders/456", "-456", "456,", "0"],
    "prefix": ["/containers/images/", "containers/images", "containers /images/"],
    "output": ["./scrub-reports", "/tmp/reports", "s3://bucket/x", "gs://B/x", "gs://bucket/a b"],
    "run_id": ["-leading-dash", "a/b", "x" * 129],
    "bigquery_dataset": ["my-project:dataset-with-dash", "a.b.c", "my-project:"],
    "shard_count": ["0", "17", "64", "1e3"],
    "chunk_size": ["1 MB", "-1", "1.5MiB", "MiB"],
    "read_concurrency": ["0", "1000", "-4", "ten"],
    "max_attempts": ["0", "100", "3.0"],
    "read_timeout": ["-1", "1e3", "60 s", "ten"],
    "min_read_rate": ["1 MB", "-1", "1.5MiB"],
    "mode": ["all", "Names", "names,manifests"],
    "recover_images": ["yes", "True", "1"],
    "ledger": ["./scrub-reports/r1", "s3://b/r1", "gs://B/r1", "gs://bucket", "bq:dataset.table", "Auto", ""],
    "incremental": ["yes", "True", "1"],
    "reverify_after": ["30", "-1d", "1 d", "30days", "nan"],
    "reverify_sample": ["abc", "nan", "-0.1", "2", "1e-2", "1 %"],
    "config": ["./scan.yaml", "gs://bucket/", "s3://bucket/scan.yaml", "gs://bucket/a b.yaml"],
}


# A valid value other than the default, for parameters whose documented example is the default.
OTHER_VALUES = {
    "prefix": "other/blobs/",
    "chunk_size": "4MiB",
    "read_concurrency": "64",
    "max_attempts": "7",
    "read_timeout": "120",
    "min_read_rate": "256KiB",
    "reverify_after": "7d",
    "reverify_sample": "2.5%",
}


def _regex(name: str) -> re.Pattern:
    (pattern,) = PARAMETERS[name]["regexes"]
    return re.compile(pattern)


def test_metadata_and_launcher_accept_the_same_parameters():
    described, accepted = set(PARAMETERS), set(template.template_parameters())
    assert not accepted - described, f"launcher parameters missing from jobs/metadata.json: {accepted - described}"
    assert not described - accepted, f"jobs/metadata.json parameters the launcher ignores: {described - accepted}"


def test_every_cli_scan_flag_is_a_parameter_or_excluded_with_a_reason():
    for flag in template.NOT_PARAMETERS:
        assert flag in cli.OVERRIDES, f"NOT_PARAMETERS names {flag}, which the CLI no longer has"
    mapped = {flag for flag, key, _ in template.template_parameters().values() if key is not None}
    assert mapped | set(template.NOT_PARAMETERS) == set(cli.OVERRIDES)
    assert template.template_parameters()[template.CONFIG_PARAMETER][0] == "--config"


def test_no_parameter_shadows_a_beam_option():
    import apache_beam.io.gcp.bigquery  # noqa: F401  (registers the GCP options)

    beam_options = set(PipelineOptions([]).get_all_options())
    assert not set(PARAMETERS) & beam_options


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_parameter_is_described(name):
    parameter = PARAMETERS[name]
    assert parameter["label"].strip() and len(parameter["helpText"]) > 30
    assert _EXAMPLE.search(parameter["helpText"]), f"{name}: helpText needs an 'Example: `...`'"
    assert name in BAD_VALUES, f"{name}: add values its regex must refuse to BAD_VALUES"


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_regex_accepts_the_documented_example_and_so_does_the_config(name):
    example = _EXAMPLE.search(PARAMETERS[name]["helpText"]).group(1)
    assert _regex(name).fullmatch(example), f"{name}: regex refuses its own example {example!r}"
    if name == template.CONFIG_PARAMETER:
        return  # the example names a file on GCS; test_config_file_parameter loads a real one
    _, key, kind = template.template_parameters()[name]
    section, field = key.split(".")
    default = getattr(getattr(Config(), section), field)
    values = [example] if name not in OTHER_VALUES else [example, OTHER_VALUES[name]]
    for value in values:
        # Something to scan; a bucket, except beside organizations and folders, which refuse one.
        scan = ("--projects", "my-project") if name in ("organizations", "folders") else ("--buckets", "b-1234")
        argv = {"--output": "gs://reports/x", scan[0]: scan[1], f"--{name}": value}
        config, _ = template.config_from_template([f"{k}={v}" for k, v in argv.items()] + ["--sdk_container_image=i"])
        # The config took the value (it raises ConfigError where it refuses what metadata allows).
        expected = SCHEMA[section][field](template._value(name, kind, value))
        assert getattr(getattr(config, section), field) == expected
    assert SCHEMA[section][field](template._value(name, kind, values[-1])) != default, (
        f"{name}: its example is the default, so it cannot show that the parameter reaches {key}; "
        "add a value of its own to OTHER_VALUES"
    )


def test_config_file_parameter_loads_the_file_and_parameters_override_it(tmp_path):
    config_file = tmp_path / "scan.yaml"
    config_file.write_text(
        "source:\n  buckets: [artifacts.from-file.appspot.com]\n"
        "scan:\n  shard_count: 16\n"
        "manifests:\n  sources:\n    - registry: https://gcr.io\n      gcr_projects: [my-project]\n"
    )
    config, _ = template.config_from_template(
        [f"--config={config_file}", "--shard_count=256", "--output=gs://reports/x", "--sdk_container_image=i"]
    )
    assert config.source.buckets == ("artifacts.from-file.appspot.com",)
    assert config.scan.shard_count == 256
    assert config.report.output == "gs://reports/x"
    assert len(config.manifests.sources) == 1
    with pytest.raises(ConfigError, match="cannot read the config file"):
        template.config_from_template([f"--config={tmp_path / 'missing.yaml'}", "--sdk_container_image=i"])


@pytest.mark.parametrize("name, bad", [(n, b) for n, values in BAD_VALUES.items() for b in values])
def test_regex_refuses_bad_values(name, bad):
    assert not _regex(name).fullmatch(bad)


def test_output_is_required_and_the_rest_optional():
    assert [p["name"] for p in METADATA["parameters"] if not p.get("isOptional")] == ["output"]


def test_template_and_cli_build_the_same_config():
    """One code path: the same values through either entry give equal Config objects."""
    template_argv = [
        "--buckets=artifacts.a-proj.appspot.com,eu.artifacts.a-proj.appspot.com",
        "--projects=b-project",
        "--prefix=containers/images/",
        "--output=gs://reports/scrub",
        "--run_id=nightly-1",
        "--bigquery_dataset=audit-proj:registry_audit",
        "--shard_count=256",
        "--chunk_size=4MiB",
        "--read_concurrency=64",
        "--max_attempts=7",
        # Beam's own options pass through untouched.
        "--project=audit-proj",
        "--region=europe-west1",
        "--sdk_container_image=img:1",
    ]
    from_template, beam_args = template.config_from_template(template_argv)
    cli_args, cli_beam_args = cli.build_parser().parse_known_args(
        [
            "scan",
            "--bucket=artifacts.a-proj.appspot.com",
            "--bucket=eu.artifacts.a-proj.appspot.com",
            "--scan-project=b-project",
            "--prefix=containers/images/",
            "--output=gs://reports/scrub",
            "--run-id=nightly-1",
            "--bigquery-dataset=audit-proj:registry_audit",
            "--shard-count=256",
            "--chunk-size=4MiB",
            "--read-concurrency=64",
            "--max-attempts=7",
            "--project=audit-proj",
            "--region=europe-west1",
            "--sdk_container_image=img:1",
        ]
    )
    from_cli = load_config(None, cli.overrides_from(cli_args))
    assert from_template == from_cli
    assert (
        beam_args == cli_beam_args == ["--project=audit-proj", "--region=europe-west1", "--sdk_container_image=img:1"]
    )


def test_beam_project_is_not_taken_for_the_projects_parameter():
    config, beam_args = template.config_from_template(
        [
            "--buckets=artifacts.p.appspot.com",
            "--output=gs://reports/x",
            "--project=audit-proj",
            "--sdk_container_image=i",
        ]
    )
    assert config.source.projects == ()
    assert "--project=audit-proj" in beam_args


def test_empty_optional_parameters_keep_the_defaults():
    config, _ = template.config_from_template(
        [
            "--buckets=artifacts.p.appspot.com",
            "--output=gs://reports/x",
            "--run_id=",
            "--bigquery_dataset=",
            "--sdk_container_image=i",
        ]
    )
    assert config.report.run_id is None and config.report.bigquery_dataset is None
    assert config.scan.shard_count == 16


def test_bad_values_are_reported_against_the_template_parameter():
    with pytest.raises(ConfigError, match=r"template parameters: shard_count: expected a whole number"):
        template.config_from_template(["--buckets=b-bucket", "--output=gs://reports/x", "--shard_count=many"])
    with pytest.raises(ConfigError, match=r"template parameters: shard_count: expected one of 16, 256, 4096"):
        template.config_from_template(["--buckets=b-bucket", "--output=gs://reports/x", "--shard_count=17"])
    with pytest.raises(ConfigError, match="nothing to scan"):
        template.config_from_template(["--output=gs://reports/x", "--sdk_container_image=i"])


def test_workers_get_the_launching_image_unless_a_launch_names_one():
    env = {template.SDK_IMAGE_ENV: "region-docker.pkg.dev/p/r/registry-scrub:abc"}
    assert template.with_sdk_image(["--region=r"], env)[-1] == (
        "--sdk_container_image=region-docker.pkg.dev/p/r/registry-scrub:abc"
    )
    assert template.with_sdk_image(["--sdk_container_image=other:1"], env) == ["--sdk_container_image=other:1"]
    with pytest.raises(ConfigError, match="sdk_container_image"):
        template.with_sdk_image(["--region=r"], {})


def test_main_exits_2_on_unusable_parameters(caplog):
    assert template.main(["--output=gs://reports/x", "--sdk_container_image=i"]) == 2
    assert "nothing to scan" in caplog.text


def test_flex_template_entry_is_thin():
    entry = (REPO / "jobs" / "flex_template.py").read_text()
    code = [line for line in entry.splitlines() if line.strip() and not line.startswith(('"""', "#"))]
    assert len(code) <= 5 and "from jobs.template import main" in entry


def test_submit_scan_builds_the_dataflow_job_without_waiting(emulator, bucket, tmp_path, monkeypatch):
    """The launcher path a template launch takes, with Dataflow's dry run: the job is built for
    DataflowRunner and returned without waiting, as a Flex Template launch requires. A dry run
    calls no Google service, so the preflight checks are skipped."""
    from apache_beam.runners.runner import PipelineState

    from jobs.launcher import submit_scan
    from pipeline.config import parse_config
    from tests.test_dataflow_graph import DATAFLOW_ARGS, IMAGE

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "")  # submit_scan sets it; restored afterwards
    config = parse_config(
        {
            "source": {"buckets": [bucket.name], "emulator_endpoint": emulator.endpoint},
            "report": {"output": "gs://reports-1234/scrub", "run_id": "launch-1"},
        },
        "test",
    )
    result, plan = submit_scan(config, DATAFLOW_ARGS)
    assert result.state == PipelineState.DONE  # the dry run's result: nothing was submitted
    assert plan.buckets == (bucket.name,) and plan.run_id == "launch-1"
    environments = result.job.proto_pipeline.components.environments.values()
    assert {e.urn for e in environments} == {"beam:env:docker:v1"}
    assert IMAGE.encode() in b"".join(e.payload for e in environments)


def test_submit_scan_refuses_a_missing_bucket_before_building(emulator, tmp_path, monkeypatch):
    from jobs.launcher import UnusableInput, submit_scan
    from pipeline.config import parse_config

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "")
    config = parse_config(
        {
            "source": {"buckets": ["no-such-bucket-here"], "emulator_endpoint": emulator.endpoint},
            "report": {"output": str(tmp_path)},
        },
        "test",
    )
    with pytest.raises(UnusableInput, match="does not exist"):
        submit_scan(config, ["--direct_running_mode=in_memory"])
    assert list(tmp_path.iterdir()) == []  # refused before the report folder was touched


def test_flex_template_entry_runs_as_the_launcher_runs_it(tmp_path):
    """The Flex Template launcher runs FLEX_TEMPLATE_PYTHON_PY_FILE as a script, with the template
    parameters and Beam's options as arguments. Here Beam's options ask for a dry run, so the whole
    Dataflow job is built offline, with no credentials, and nothing is submitted."""
    import os
    import subprocess
    import sys

    from tests.test_dataflow_graph import DATAFLOW_ARGS

    env = {k: v for k, v in os.environ.items() if k not in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS")}
    env.update(NO_GCE_CHECK="true", HOME=str(tmp_path), REGISTRY_SCRUB_SDK_IMAGE="example.com/registry-scrub:1")
    parameters = ["--buckets=artifacts.p-1234.appspot.com", "--output=gs://audit-reports/scrub", "--run_id=flex-1"]
    entry = str(REPO / "jobs" / "flex_template.py")
    proc = subprocess.run(
        [sys.executable, entry, *parameters, *DATAFLOW_ARGS],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "registry-scrub: dry run: built the job for run flex-1 and submitted nothing; report: " in proc.stderr
    assert "gs://audit-reports/scrub/flex-1" in proc.stderr
    refused = subprocess.run(
        [sys.executable, entry, "--output=gs://audit-reports/scrub", *DATAFLOW_ARGS],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert "nothing to scan" in refused.stderr
