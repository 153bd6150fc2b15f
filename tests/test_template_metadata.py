"""jobs/metadata.json against Dataflow's documented template metadata schema.

The schema is the Dataflow API's, copied here field by field so that a typo is caught
offline (gcloud would only refuse it at `flex-template build`, or worse, the console
would silently show a plain text box):

- ParameterMetadata, the JSON names of its fields and which are required:
  https://cloud.google.com/dataflow/docs/reference/rest/v1b3/projects.locations.flexTemplates/launch#ParameterMetadata
  (the same in the client libraries, e.g.
  https://cloud.google.com/python/docs/reference/dataflow/latest/google.cloud.dataflow_v1beta3.types.ParameterMetadata);
- ParameterType, the values of paramType:
  https://cloud.google.com/python/docs/reference/dataflow/latest/google.cloud.dataflow_v1beta3.types.ParameterType;
- ParameterMetadataEnumOption (value, label, description), "the options shown when ENUM
  ParameterType is specified"; defaultValue is a string that "will pre-populate the parameter".
"""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import REPO

METADATA = json.loads((REPO / "jobs" / "metadata.json").read_text())
PARAMETERS = {p["name"]: p for p in METADATA["parameters"]}

TEMPLATE_METADATA_FIELDS = {
    "name",
    "description",
    "parameters",
    "streaming",
    "supportsAtLeastOnce",
    "supportsExactlyOnce",
    "defaultStreamingMode",
}
PARAMETER_REQUIRED = {"name", "label", "helpText"}
PARAMETER_FIELDS = PARAMETER_REQUIRED | {
    "isOptional",
    "regexes",
    "paramType",
    "customMetadata",
    "groupName",
    "parentName",
    "parentTriggerValues",
    "enumOptions",
    "defaultValue",
    "hiddenUi",
}
PARAMETER_TYPES = {
    "DEFAULT",
    "TEXT",
    "GCS_READ_BUCKET",
    "GCS_WRITE_BUCKET",
    "GCS_READ_FILE",
    "GCS_WRITE_FILE",
    "GCS_READ_FOLDER",
    "GCS_WRITE_FOLDER",
    "PUBSUB_TOPIC",
    "PUBSUB_SUBSCRIPTION",
    "BIGQUERY_TABLE",
    "JAVASCRIPT_UDF_FILE",
    "SERVICE_ACCOUNT",
    "MACHINE_TYPE",
    "KMS_KEY_NAME",
    "WORKER_REGION",
    "WORKER_ZONE",
    "BOOLEAN",
    "ENUM",
    "NUMBER",
    "KAFKA_TOPIC",
    "KAFKA_READ_TOPIC",
    "KAFKA_WRITE_TOPIC",
}
ENUM_OPTION_FIELDS = {"value", "label", "description"}

# What the console should offer for each parameter (issue 10: file and folder pickers, an enum).
EXPECTED_TYPES = {
    "config": "GCS_READ_FILE",
    "output": "GCS_WRITE_FOLDER",
    "mode": "ENUM",
    "shard_count": "ENUM",
    "read_concurrency": "NUMBER",
    "max_attempts": "NUMBER",
}
# Parameters without a defaultValue, and why: a pre-filled value would be passed on every launch.
NO_DEFAULT = {
    "config": "there is no default file",
    "accept_losing": "no image is accepted as lost unless named per launch",
    "recover_images": "unset turns it on whenever a reclaim plan could be written; a pre-filled false would not",
    "buckets": "no default bucket; buckets and/or projects is set per launch",
    "projects": "no default project",
    "organizations": "no default organization",
    "folders": "no default folder",
    "output": "required, no sensible default",
    "run_id": "empty means the launch time, which a schedule needs",
    "bigquery_dataset": "empty means files only",
    "mode": "its default depends on the config file (both with manifest sources, else names)",
    "ledger": "empty means no comparison (auto when incremental is true)",
}


def test_template_metadata_uses_only_documented_fields():
    assert set(METADATA) <= TEMPLATE_METADATA_FIELDS
    assert isinstance(METADATA["name"], str) and METADATA["name"]


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_parameter_follows_the_documented_schema(name):
    parameter = PARAMETERS[name]
    assert PARAMETER_REQUIRED <= set(parameter) <= PARAMETER_FIELDS, sorted(set(parameter) - PARAMETER_FIELDS)
    assert parameter["paramType"] in PARAMETER_TYPES
    assert isinstance(parameter.get("isOptional", False), bool)
    if "defaultValue" in parameter:
        assert isinstance(parameter["defaultValue"], str)  # a string in the API, whatever the type
    if parameter["paramType"] == "ENUM":
        options = parameter["enumOptions"]
        assert options and all(ENUM_OPTION_FIELDS >= set(o) and "value" in o for o in options)
        assert len({o["value"] for o in options}) == len(options)
    else:
        assert "enumOptions" not in parameter


@pytest.mark.parametrize(("name", "param_type"), sorted(EXPECTED_TYPES.items()))
def test_console_offers_a_picker_or_choice_where_it_fits(name, param_type):
    assert PARAMETERS[name]["paramType"] == param_type


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_every_parameter_has_a_default_or_a_reason(name):
    assert ("defaultValue" in PARAMETERS[name]) != (name in NO_DEFAULT), name


@pytest.mark.parametrize("name", sorted(n for n in PARAMETERS if "defaultValue" in PARAMETERS[n]))
def test_default_value_is_the_configs_own_default(name):
    """A pre-filled default must change nothing: it passes the regexes and parses to what an
    empty config gives, so a launch that keeps it scans exactly as one that clears it."""
    from jobs.template import config_from_template

    parameter = PARAMETERS[name]
    for regex in parameter.get("regexes", []):
        assert re.fullmatch(regex, parameter["defaultValue"]), (name, regex)
    baseline = ["--output=gs://reports/x", "--buckets=artifacts.p-1234.appspot.com", "--sdk_container_image=i"]
    with_default, _ = config_from_template([*baseline, f"--{name}={parameter['defaultValue']}"])
    without, _ = config_from_template(baseline)
    assert with_default == without


@pytest.mark.parametrize("name", sorted(n for n in PARAMETERS if PARAMETERS[n]["paramType"] == "ENUM"))
def test_every_enum_option_passes_the_regexes_and_the_launcher(name):
    from jobs.template import config_from_template

    baseline = ["--output=gs://reports/x", "--buckets=artifacts.p-1234.appspot.com", "--sdk_container_image=i"]
    for option in PARAMETERS[name]["enumOptions"]:
        for regex in PARAMETERS[name].get("regexes", []):
            assert re.fullmatch(regex, option["value"]), (name, option, regex)
        if name == "mode" and option["value"] != "names":
            continue  # manifests and both need manifest sources: tests/test_config.py checks that refusal
        config, _ = config_from_template([*baseline, f"--{name}={option['value']}"])
        assert str(getattr(config.scan, name)) == option["value"]
