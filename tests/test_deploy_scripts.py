"""jobs/deploy: syntax, shellcheck, and what the dry run would do in a real project.

Cloud Build, Dataflow, IAM and Cloud Scheduler have no local counterpart, so the
script's --dry-run output (the exact gcloud/bq commands) is what is checked.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO

DEPLOY = REPO / "jobs" / "deploy"
SCRIPTS = sorted(DEPLOY.glob("*.sh"))
METADATA = {p["name"]: p for p in json.loads((REPO / "jobs" / "metadata.json").read_text())["parameters"]}
WORKER = "serviceAccount:registry-scrub-worker@audit-proj.iam.gserviceaccount.com"
LAUNCHER = "serviceAccount:registry-scrub-launcher@audit-proj.iam.gserviceaccount.com"
SETTINGS = {
    "PROJECT": "audit-proj",
    "REGION": "europe-west1",
    "REPORT_BUCKET": "audit-proj-reports",
    "SCAN_BUCKETS": "artifacts.team-a.appspot.com,eu.artifacts.team-a.appspot.com",
    "SCAN_PROJECTS": "team-b-prod",
    "BQ_DATASET": "audit-proj:registry_audit",
    "TAG": "abc123",
}


def deploy(*args: str, **settings: str) -> subprocess.CompletedProcess:
    # A bare environment: no gcloud on PATH, nothing inherited that could fill a variable.
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), **settings}
    return subprocess.run(
        ["bash", str(DEPLOY / "deploy.sh"), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def plan() -> list[list[str]]:
    """Every command the full dry run prints, split into words ('?' = existence check)."""
    result = deploy("--dry-run", "all", **SETTINGS)
    assert result.returncode == 0, result.stderr
    commands = []
    for block in re.split(r"\n(?=[+?=] |## )", result.stdout.strip()):
        if block[:2] in ("+ ", "? "):
            commands.append([block[0], *shlex.split(block[2:])])
    return commands


def _runs(plan, *words) -> list[list[str]]:
    return [c[1:] for c in plan if c[0] == "+" and all(w in c for w in words)]


def _flag(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_syntax():
    for script in SCRIPTS:
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{script.name}: {result.stderr}"


def test_shellcheck_clean():
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck missing: run tests/system-deps.sh (Debian package shellcheck)"
    result = subprocess.run(
        [shellcheck, "-x", *map(str, SCRIPTS)], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    "settings, named",
    [
        ({}, "PROJECT REGION"),
        ({"PROJECT": "audit-proj"}, "REGION"),
        ({"PROJECT": "audit-proj", "REGION": "europe-west1", "SCAN_BUCKETS": "b-bucket"}, "REPORT_BUCKET"),
        (
            {"PROJECT": "audit-proj", "REGION": "europe-west1", "REPORT_BUCKET": "r-bucket"},
            "SCAN_BUCKETS SCAN_PROJECTS",
        ),
    ],
)
def test_refuses_missing_variables_and_names_them(settings, named):
    result = deploy("--dry-run", "iam", **settings)
    assert result.returncode == 2
    assert named in result.stderr
    assert "+ " not in result.stdout, "nothing may run before the settings are complete"


def test_refuses_values_that_would_break_quoting():
    result = deploy("--dry-run", "run", **{**SETTINGS, "SCAN_BUCKETS": "a-bucket b-bucket"})
    assert result.returncode == 2 and "SCAN_BUCKETS" in result.stderr


def _example_settings() -> dict[str, str]:
    """Every ``VAR=value`` env.example shows, commented out or not, the value as written (quotes kept)."""
    settings = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        match = re.match(r"^#? ?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            settings[match.group(1)] = re.split(r"\s{2,}#", match.group(2))[0].strip()
    return settings


def test_env_example_states_the_value_rule_deploy_sh_applies(tmp_path):
    example = (DEPLOY / "env.example").read_text()
    # The rule: the paragraph of comment lines that says what values "may not contain".
    rule = next(p for p in re.split(r"\n(?!#)", example) if "may not contain" in p)
    script = (DEPLOY / "deploy.sh").read_text()
    checked = set(" ".join(re.findall(r"^\s*plain ((?:[A-Z0-9_ ]|\\\n)+)$", script, re.MULTILINE)).split()) - {"\\"}
    assert {"PROJECT", "SCAN_BUCKETS", "CONFIG_FILE"} <= checked
    for name, value in _example_settings().items():
        if re.search(r"[\s\"\\'~^]", value) and not value.startswith("<"):  # plain's refusals; <…>: computed
            assert name not in checked, f"env.example shows {name}={value}, which deploy.sh refuses"
            assert name in rule, f"env.example's rule forbids {name}={value} as it shows it; name the exception"
    # The exception, as env.example writes it, reaches the scheduler whole once the file is sourced.
    env_file = tmp_path / "my-scrub.env"
    env_file.write_text(
        "".join(f"{k}={v}\n" for k, v in SETTINGS.items()) + f"SCHEDULE={_example_settings()['SCHEDULE']}\n"
    )
    result = subprocess.run(
        [
            "bash",
            "-c",
            f"set -a; . {shlex.quote(str(env_file))}; set +a; bash {DEPLOY / 'deploy.sh'} --dry-run schedule",
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--schedule '0 3 * * *'" in result.stdout


def test_a_real_run_needs_gcloud(tmp_path):
    # PATH is an empty folder, so no gcloud can be reached whatever this machine has installed.
    result = subprocess.run(
        ["/bin/bash", str(DEPLOY / "deploy.sh"), "apis"],
        capture_output=True,
        text=True,
        env={"PATH": str(tmp_path), **SETTINGS},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "gcloud not found" in result.stderr
    assert "+ " not in result.stdout


def test_unknown_step_is_refused():
    assert deploy("--dry-run", "deploy-everything", **SETTINGS).returncode == 2


def test_creates_only_what_is_absent(plan):
    """Idempotent: every create follows an existence check of the same resource."""
    for index, command in enumerate(plan):
        if command[0] == "+" and ("create" in command or "mk" in command):
            assert index and plan[index - 1][0] == "?", f"create without a check first: {command}"


def test_worker_reads_only_the_scanned_buckets(plan):
    viewer = _runs(plan, "add-iam-policy-binding", "roles/storage.objectViewer", WORKER)
    granted = {c[c.index("add-iam-policy-binding") + 1] for c in viewer}
    expected = {f"gs://{b}" for b in SETTINGS["SCAN_BUCKETS"].split(",")} | {
        f"gs://{p}artifacts.team-b-prod.appspot.com" for p in ("", "us.", "eu.", "asia.")
    }
    assert granted == expected
    assert all(c[:2] == ["gcloud", "storage"] for c in viewer), "objectViewer only per bucket"
    # Project-wide, the worker gets only the Dataflow worker role, load jobs, and bucket listing
    # where a whole project's GCR buckets are discovered.
    project_roles = {(_flag(c, "--role"), c[3]) for c in _runs(plan, "projects", "add-iam-policy-binding", WORKER)}
    assert project_roles == {
        ("roles/dataflow.worker", "audit-proj"),
        ("roles/bigquery.jobUser", "audit-proj"),
        ("roles/storage.bucketViewer", "team-b-prod"),
    }


def test_worker_writes_only_the_report_and_its_temp_bucket(plan):
    writers = _runs(plan, "add-iam-policy-binding", "roles/storage.objectAdmin")
    assert {(c[4], _flag(c, "--member")) for c in writers} == {
        ("gs://audit-proj-reports", WORKER),
        ("gs://audit-proj-registry-scrub-dataflow", WORKER),
    }
    (grant,) = [c for c in _runs(plan, "bq", "query") if "GRANT" in c[-1]]
    assert "roles/bigquery.dataEditor` ON SCHEMA `audit-proj.registry_audit`" in grant[-1]


def test_launcher_may_only_launch(plan):
    launcher_grants = [c for c in plan if c[0] == "+" and LAUNCHER in c]
    roles = sorted(_flag(c[1:], "--role") for c in launcher_grants)
    assert roles == [
        "projects/audit-proj/roles/registryScrubLauncher",
        "roles/iam.serviceAccountUser",
        "roles/storage.objectViewer",
    ]
    (custom,) = _runs(plan, "iam", "roles", "create")
    assert _flag(custom, "--permissions").split(",") == [
        "dataflow.jobs.create",
        "dataflow.jobs.get",
        "workflows.executions.create",
    ]
    (act_as,) = _runs(plan, "roles/iam.serviceAccountUser")
    assert act_as[4] == WORKER.split(":", 1)[1], "actAs on the worker account only"


def _check_template_parameters(parameters: dict[str, str]) -> None:
    assert parameters, "no parameters"
    for name, value in parameters.items():
        assert name in METADATA, f"{name} is not a template parameter"
        (regex,) = METADATA[name]["regexes"]
        assert re.fullmatch(regex, value), f"{name}={value!r} fails the template's own regex"
    assert {n for n, p in METADATA.items() if not p.get("isOptional")} <= set(parameters)


def test_run_once_passes_valid_parameters(plan):
    (run,) = _runs(plan, "flex-template", "run")
    assert re.fullmatch(r"registry-scrub-\d{8}-\d{6}", run[4]), "a unique job name per launch"
    raw = _flag(run, "--parameters")
    assert raw.startswith("^~^"), "gcloud's alternate delimiter keeps commas in lists"
    _check_template_parameters(dict(pair.split("=", 1) for pair in raw[3:].split("~")))
    assert (
        _flag(run, "--template-file-gcs-location")
        == "gs://audit-proj-registry-scrub-dataflow/templates/registry-scrub.json"
    )


def test_image_and_template_use_one_image(plan):
    image = "europe-west1-docker.pkg.dev/audit-proj/registry-scrub/registry-scrub:abc123"
    (build,) = _runs(plan, "builds", "submit")
    assert f"_IMAGE={image}" in _flag(build, "--substitutions")
    (template,) = _runs(plan, "flex-template", "build")
    assert _flag(template, "--image") == image
    assert _flag(template, "--sdk-language") == "PYTHON"
    assert _flag(template, "--metadata-file").endswith("jobs/metadata.json")
    assert _flag(template, "--service-account-email") == WORKER.split(":", 1)[1]
    cloudbuild = yaml.safe_load((DEPLOY / "cloudbuild.yaml").read_text())
    args = cloudbuild["steps"][0]["args"]
    assert "--build-arg=IMAGE=${_IMAGE}" in args and "--tag=${_IMAGE}" in args
    assert cloudbuild["images"] == ["${_IMAGE}"]
    assert "ARG IMAGE" in (REPO / "Dockerfile").read_text()


def test_schedule_launches_through_the_workflow_as_the_launcher(plan):
    (workflow,) = _runs(plan, "workflows", "deploy")
    assert _flag(workflow, "--service-account") == LAUNCHER.split(":", 1)[1]
    (job,) = _runs(plan, "scheduler", "jobs", "http")
    assert job[3] == "create", "no scheduler job exists in a dry run, so it is created"
    assert _flag(job, "--uri") == (
        "https://workflowexecutions.googleapis.com/v1/projects/audit-proj/"
        "locations/europe-west1/workflows/registry-scrub-launch/executions"
    )
    assert _flag(job, "--oauth-service-account-email") == LAUNCHER.split(":", 1)[1]
    assert _flag(job, "--schedule") == "0 3 * * *"
    argument = json.loads(json.loads(_flag(job, "--message-body"))["argument"])
    assert argument["template"] == "gs://audit-proj-registry-scrub-dataflow/templates/registry-scrub.json"
    assert (argument["project"], argument["region"]) == ("audit-proj", "europe-west1")
    _check_template_parameters(argument["parameters"])
    assert "run_id" not in argument["parameters"], "a scheduled run takes its launch time as run id"


def test_workflow_names_every_launch_uniquely():
    workflow = yaml.safe_load((DEPLOY / "launch-workflow.yaml").read_text())
    steps = {name: body for step in workflow["main"]["steps"] for name, body in step.items()}
    naming = json.dumps(steps["name_the_job"])
    assert "sys.now()" in naming and "GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID" in naming
    launch = steps["launch"]
    assert launch["call"] == "googleapis.dataflow.v1b3.projects.locations.flexTemplates.launch"
    parameter = launch["args"]["body"]["launchParameter"]
    assert parameter["jobName"] == "${job_name}"
    assert parameter["containerSpecGcsPath"] == "${args.template}"
    assert parameter["parameters"] == "${args.parameters}"


def _matches(log_filter: str, entry: dict) -> bool:
    """Cloud Logging's filter language as deploy.sh uses it: `path="text"` or `path=number` clauses
    joined by AND, each path into the LogEntry (logName, jsonPayload.field)."""
    for clause in log_filter.split(" AND "):
        path, _, wanted = clause.partition("=")
        value = entry
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if wanted.startswith('"'):
            if value != json.loads(wanted):
                return False
        elif value != int(wanted):
            return False
    return True


def test_alert_metrics_filter_on_the_structured_outcome_entries(plan):
    """The metrics match the entries pipeline/core/outcome.py writes, by their fields, not a substring."""
    from pipeline.core.outcome import log_entries

    metrics = {c[4]: _flag(c, "--log-filter") for c in _runs(plan, "logging", "metrics", "create")}
    assert set(metrics) == {
        "registry_scrub_runs",
        "registry_scrub_error_runs",
        "registry_scrub_buckets_would_lose_images",
    }
    assert not [f for f in metrics.values() if "message" in f], "a metric on the text line, not the fields"
    decommission = {
        "artifacts.a.appspot.com": {"verdict": "would_lose_images", "project": "a", "headline": "Would lose 2."},
        "artifacts.b.appspot.com": {"verdict": "safe_to_delete", "project": "b", "headline": "Safe."},
    }
    failed = {"run_id": "r1", "exit_status": 1, "findings_by_severity": {"error": 2}, "decommission": decommission}
    clean = {"run_id": "r2", "exit_status": 0, "findings_by_severity": {"error": 0}}

    def counted(name, summary):
        return sum(_matches(metrics[name], entry) for entry in log_entries(summary, "audit-proj"))

    assert (counted("registry_scrub_runs", failed), counted("registry_scrub_runs", clean)) == (1, 1)
    assert (counted("registry_scrub_error_runs", failed), counted("registry_scrub_error_runs", clean)) == (1, 0)
    assert counted("registry_scrub_buckets_would_lose_images", failed) == 1
    assert counted("registry_scrub_buckets_would_lose_images", clean) == 0
    # Another project's log is not counted.
    assert counted("registry_scrub_runs", clean) == 1
    assert not any(_matches(metrics["registry_scrub_runs"], e) for e in log_entries(clean, "other-proj"))


def test_alert_policies_watch_those_metrics_and_notify_the_channels(plan):
    metrics = {c[4] for c in _runs(plan, "logging", "metrics", "create")}
    policies = [json.loads(_flag(c, "--policy")) for c in _runs(plan, "monitoring", "policies", "create")]
    assert {p["displayName"] for p in policies} == {
        "registry-scrub: a scan found errors",
        "registry-scrub: a bucket would lose images",
    }
    for policy in policies:
        (condition,) = policy["conditions"]
        (metric,) = re.findall(
            r'metric\.type="logging\.googleapis\.com/user/([a-z_]+)"', condition["conditionThreshold"]["filter"]
        )
        assert metric in metrics - {"registry_scrub_runs"}
        assert condition["conditionThreshold"]["comparison"] == "COMPARISON_GT"
    # Idempotent: the policy is looked up by its name first (and updated when it exists).
    assert [c for c in plan if c[0] == "?" and c[1:4] == ["gcloud", "monitoring", "policies"]]
    channels = "projects/audit-proj/notificationChannels/123,projects/audit-proj/notificationChannels/456"
    result = deploy("--dry-run", "alerts", PROJECT="audit-proj", REGION="europe-west1", ALERT_CHANNELS=channels)
    assert result.returncode == 0, result.stderr
    created = [line for line in result.stdout.splitlines() if line.startswith("+ gcloud monitoring policies create")]
    assert len(created) == 2 and all(f"--notification-channels {channels}" in line for line in created)
    assert "notify no one" in deploy("--dry-run", "alerts", PROJECT="p", REGION="r").stdout


def test_a_config_file_reaches_the_template_as_its_config_parameter():
    config = "gs://audit-proj-registry-scrub-dataflow/config/scan.yaml"
    result = deploy("--dry-run", "run", **SETTINGS, CONFIG_FILE=config)
    assert result.returncode == 0, result.stderr
    (raw,) = re.findall(r"--parameters '?(\^~\^[^' \n]+)", result.stdout)
    parameters = dict(pair.split("=", 1) for pair in raw[3:].split("~"))
    assert parameters["config"] == config
    _check_template_parameters(parameters)


# Flags each command accepts, from its gcloud reference page (cloud.google.com/sdk/gcloud/reference/...),
# plus the gcloud-wide --project and --quiet. A flag a command does not know fails the deploy in the
# cloud only, so the commands the script runs are checked against these lists here.
GCLOUD_WIDE = {"--project", "--quiet"}
GCLOUD_FLAGS = {
    ("scheduler", "jobs", "create", "http"): set(
        "--attempt-deadline --description --headers --http-method --location --message-body "
        "--message-body-from-file --oauth-service-account-email --oauth-token-scope "
        "--oidc-service-account-email --oidc-token-audience --schedule --time-zone --uri".split()
    ),
    ("scheduler", "jobs", "update", "http"): set(
        "--attempt-deadline --clear-auth-token --clear-headers --clear-message-body --clear-time-zone "
        "--description --http-method --location --message-body --message-body-from-file "
        "--oauth-service-account-email --oauth-token-scope --oidc-service-account-email "
        "--oidc-token-audience --remove-headers --schedule --time-zone --update-headers --uri".split()
    ),
    ("dataflow", "flex-template", "build"): set(
        "--additional-experiments --additional-user-labels --disable-public-ips --image --max-workers "
        "--metadata-file --network --num-workers --sdk-language --service-account-email "
        "--staging-location --subnetwork --temp-location --worker-machine-type --worker-region "
        "--worker-zone".split()
    ),
    ("dataflow", "flex-template", "run"): set(
        "--additional-experiments --additional-user-labels --disable-public-ips --max-workers "
        "--num-workers --parameters --region --service-account-email --staging-location --temp-location "
        "--template-file-gcs-location --worker-machine-type".split()
    ),
    ("storage", "buckets", "create"): set(
        "--default-storage-class --location --public-access-prevention --uniform-bucket-level-access".split()
    ),
}


def _unknown_flags(command: list[str]) -> list[str]:
    if not command or command[0] != "gcloud":
        return []
    for words, known in GCLOUD_FLAGS.items():
        if tuple(command[1 : 1 + len(words)]) == words:
            flags = {word.split("=", 1)[0] for word in command if word.startswith("--")}
            return sorted(flags - known - GCLOUD_WIDE)
    return []


def real_run(tmp_path, *steps: str, present: bool) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    """deploy.sh without --dry-run against a stand-in gcloud that records each call.

    PATH holds only the stand-in and the few tools the script needs, so no real gcloud can be
    reached. With present=True every describe succeeds (the resources exist: the update branches).
    """
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "gcloud.log"
    for tool in ("date", "paste", "sed"):
        (bindir / tool).symlink_to(shutil.which(tool))
    describe = "" if present else '[[ " $* " == *" describe "* ]] && exit 1\n'
    (bindir / "gcloud").write_text(
        f'#!/bin/bash\nprintf "%q " "$@" >>{shlex.quote(str(log))}\necho >>{shlex.quote(str(log))}\n{describe}exit 0\n'
    )
    (bindir / "gcloud").chmod(0o755)
    env = {"PATH": str(bindir), "HOME": str(tmp_path), **SETTINGS}
    result = subprocess.run(
        ["/bin/bash", str(DEPLOY / "deploy.sh"), *steps],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    calls = [["gcloud", *shlex.split(line)] for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


def test_every_gcloud_flag_in_the_dry_run_is_one_the_command_takes(plan):
    runs = [c[1:] for c in plan if c[0] == "+"]
    covered = {words for words in GCLOUD_FLAGS for c in runs if tuple(c[1 : 1 + len(words)]) == words}
    assert len(covered) == len(GCLOUD_FLAGS) - 1, "the dry run creates; the update branch is checked below"
    bad = {" ".join(c[:6]): _unknown_flags(c) for c in runs if _unknown_flags(c)}
    assert not bad, bad


@pytest.mark.parametrize("present", [False, True], ids=["absent-create", "present-update"])
def test_scheduler_job_create_and_update_use_flags_gcloud_takes(tmp_path, present):
    result, calls = real_run(tmp_path, "schedule", present=present)
    assert result.returncode == 0, result.stderr
    verb = "update" if present else "create"
    (job,) = [c for c in calls if c[1:5] == ["scheduler", "jobs", verb, "http"]]
    assert _unknown_flags(job) == [], job
    headers = "--update-headers" if present else "--headers"
    assert _flag(job, headers) == "Content-Type=application/json"
    assert json.loads(json.loads(_flag(job, "--message-body"))["argument"])["template"].startswith("gs://")


def test_bigquery_step_creates_the_verified_table_and_the_history_views(plan):
    """docs/incremental.md: the ledger's table, and views of each object's history, with the dataset filled in."""
    (made,) = [c for c in plan if c[0] == "+" and "mk" in c and c[-1].endswith(".verified")]
    assert _flag(made, "--clustering_fields") == "bucket,object" and made[-1] == "audit-proj:registry_audit.verified"
    views = [c[-1] for c in _runs(plan, "bq", "query") if "CREATE OR REPLACE VIEW" in c[-1]]
    history = [v for v in views if "`audit-proj.registry_audit.object_history`" in v]
    assert len(history) == 1 and "${ref}" not in history[0]
    assert any("`audit-proj.registry_audit.verified_latest`" in v for v in views)
