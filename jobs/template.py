"""The Flex Template launcher: template parameters -> the same Config the CLI builds -> submitted job.

Dataflow's template launcher runs ``jobs/flex_template.py`` with every template
parameter as ``--name=value`` and Beam's own options (``--project``, ``--region``,
``--temp_location``, ``--sdk_container_image`` ...). The parameters are the CLI's
scan flags (``jobs.cli.OVERRIDES``), named after their config key, so a flag the CLI
gains is a template parameter too, and ``jobs/metadata.json`` must describe it
(``tests/test_template.py`` fails until it does). List values are comma-separated.
From there the path is the CLI's: ``parse_config`` with overrides, then
``jobs.launcher.submit_scan``. Only the wait differs: a Flex Template launch must
return once the job is submitted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from jobs.cli import OVERRIDES
from pipeline.config import Config, ConfigError, load_config, parse_config
from pipeline.core.summary import EXIT_UNUSABLE_INPUT

log = logging.getLogger(__name__)

ORIGIN = "template parameters"
LIST_SEPARATOR = ","
# Template parameters that are not config keys: the config file itself (gs:// on Dataflow),
# which carries what one parameter cannot, such as manifests.sources.
CONFIG_PARAMETER = "config"
# CLI flags that are not template parameters, and why.
NOT_PARAMETERS = {
    "--emulator-endpoint": "points at a local GCS emulator; a Dataflow job always scans real GCS",
}
# The image's own name, baked in at build time (Dockerfile ARG IMAGE), so that the workers run
# the very image that launched them unless a launch names another sdk_container_image.
SDK_IMAGE_ENV = "REGISTRY_SCRUB_SDK_IMAGE"
_IMAGE_FLAGS = ("--sdk_container_image", "--worker_harness_container_image")


def parameter_name(config_key: str) -> str:
    """``source.buckets`` -> ``buckets``: the template parameter for a config key."""
    return config_key.rsplit(".", 1)[-1]


def template_parameters() -> dict[str, tuple[str, str, Any]]:
    """Template parameter name -> (CLI flag, config key, value kind), from the CLI's table."""
    parameters: dict[str, tuple[str, str, Any]] = {}
    for flag, (key, kind) in OVERRIDES.items():
        if flag in NOT_PARAMETERS:
            continue
        name = parameter_name(key)
        if name in parameters:
            raise RuntimeError(f"config keys {parameters[name][1]} and {key} share the template parameter {name!r}")
        parameters[name] = (flag, key, kind)
    parameters[CONFIG_PARAMETER] = ("--config", None, str)
    return parameters


def _value(name: str, kind: Any, text: str) -> Any:
    where = f"{ORIGIN}: {name}"
    if kind == "append":
        return [item.strip() for item in text.split(LIST_SEPARATOR) if item.strip()]
    if kind == "flag":
        if text.strip() not in ("true", "false"):
            raise ConfigError(f"{where}: expected true or false, got {text!r}")
        return text.strip() == "true"
    if kind == "number_or_text":
        from jobs.cli import number_or_text

        return number_or_text(text.strip())
    if kind is int:
        try:
            return int(text.strip())
        except ValueError:
            raise ConfigError(f"{where}: expected a whole number, got {text!r}") from None
    return text


def config_from_template(argv: list[str]) -> tuple[Config, list[str]]:
    """The Config the CLI would build from the same values, and the arguments left for Beam."""
    parameters = template_parameters()
    # No abbreviations: Beam's --project must never be taken for our --projects.
    parser = argparse.ArgumentParser(prog="registry-scrub flex template", allow_abbrev=False, add_help=False)
    for name in parameters:
        parser.add_argument(f"--{name}", dest=name)
    args, beam_args = parser.parse_known_args(argv)
    overrides: dict[str, tuple[Any, str]] = {}
    for name, (_, key, kind) in parameters.items():
        text = getattr(args, name)
        if key is None or text is None or not text.strip():
            continue  # an optional parameter left empty: the config default holds
        overrides[key] = (_value(name, kind, text), f"{ORIGIN}: {name}")
    config_file = (getattr(args, CONFIG_PARAMETER) or "").strip()
    config = load_config(config_file, overrides) if config_file else parse_config({}, ORIGIN, overrides)
    return config, with_sdk_image(beam_args)


def with_sdk_image(beam_args: list[str], environ: dict[str, str] | None = None) -> list[str]:
    """Beam arguments that name the workers' image: the launch's own, else the image's."""
    environ = os.environ if environ is None else environ
    if any(arg.split("=", 1)[0] in _IMAGE_FLAGS for arg in beam_args):
        return list(beam_args)
    image = environ.get(SDK_IMAGE_ENV)
    if not image:
        raise ConfigError(
            f"{ORIGIN}: sdk_container_image: not set, and the image has no {SDK_IMAGE_ENV}; "
            "pass sdk_container_image=<the image this template was built from>"
        )
    return [*beam_args, f"--sdk_container_image={image}"]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    from jobs.launcher import UnusableInput, submit_scan

    try:
        config, beam_args = config_from_template(argv)
        _, plan = submit_scan(config, beam_args)
    except (ConfigError, UnusableInput) as err:
        # The launcher's log is what `gcloud dataflow flex-template run` points at on failure.
        log.error("registry-scrub: %s", err)
        return EXIT_UNUSABLE_INPUT
    from pipeline.runner import is_dry_run, pipeline_options

    if is_dry_run(pipeline_options(beam_args)):
        log.info(
            "registry-scrub: dry run: built the job for run %s and submitted nothing; report: %s",
            plan.run_id,
            plan.run_dir,
        )
    else:
        log.info("registry-scrub: run %s submitted; report: %s", plan.run_id, plan.run_dir)
    return 0
