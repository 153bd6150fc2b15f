"""The execution mode of a local run: chosen by the scan's size unless the arguments name one."""

import hashlib

import pytest

from pipeline.adapters import gcs
from pipeline.runner import (
    IN_PROCESS_MAX_OBJECTS,
    chooses_running_mode,
    local_running_mode,
    pipeline_options,
    runs_in_one_process,
    spreads_listed_objects,
)

PREFIX = "containers/images/"


def modes(options):
    values = options.get_all_options()
    return values["direct_running_mode"], values["direct_num_workers"]


@pytest.mark.parametrize(
    "estimate, mode",
    [
        (0, "in_memory"),
        (IN_PROCESS_MAX_OBJECTS, "in_memory"),
        (IN_PROCESS_MAX_OBJECTS + 1, "multi_processing"),
        (None, "multi_processing"),
    ],
)
def test_small_scans_run_in_process_and_large_or_unknown_ones_in_workers(estimate, mode):
    assert local_running_mode(estimate) == mode


def test_the_estimate_sets_the_mode_only_where_the_arguments_name_none():
    assert modes(pipeline_options([], 12)) == ("in_memory", 1)
    assert modes(pipeline_options([], IN_PROCESS_MAX_OBJECTS * 2))[0] == "multi_processing"
    named = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    assert modes(pipeline_options(named, 12)) == ("multi_processing", 2)
    assert modes(pipeline_options(["--direct_running_mode=in_memory"], 10**9)) == ("in_memory", 1)
    assert chooses_running_mode([]) and not chooses_running_mode(["--direct_num_workers=3"])
    assert not chooses_running_mode(["--direct_running_mode=multi_threading"])
    assert not chooses_running_mode(["--runner=DataflowRunner"])


def test_the_estimate_is_sixteen_times_the_first_hex_shard_and_stops_early(storage_client, bucket):
    zeros = others = 0
    index = 0
    # 3 names whose digest starts with 0, and 5 that do not.
    while zeros < 3 or others < 5:
        content = f"estimate {index}".encode()
        digest = hashlib.sha256(content).hexdigest()
        index += 1
        if digest.startswith("0") and zeros < 3:
            zeros += 1
        elif not digest.startswith("0") and others < 5:
            others += 1
        else:
            continue
        bucket.blob(f"{PREFIX}sha256:{digest}").upload_from_string(content)
    assert gcs.estimate_objects(storage_client, bucket.name, PREFIX, up_to=10_000) == 48
    # No further than up_to // 16 + 1 names of the shard: 2 here.
    assert gcs.estimate_objects(storage_client, bucket.name, PREFIX, up_to=16) == 32


def _listing_labels(args: list[str]) -> list[str]:
    import apache_beam as beam

    from pipeline.transforms.listing import ListObjects

    pipeline = beam.Pipeline(options=pipeline_options(args))
    pipeline | "ListObjects" >> ListObjects(("b.appspot.com",), PREFIX, 16, "http://127.0.0.1:9")
    proto = pipeline.to_runner_api()
    return sorted(t.unique_name for t in proto.components.transforms.values() if t.unique_name.count("/") == 1)


def test_locally_the_listing_feeds_the_next_step_directly_and_dataflow_gets_it_reshuffled():
    # One process, one SDK worker: a Reshuffle would spread nothing and hold every listed object.
    assert runs_in_one_process(pipeline_options(["--direct_running_mode=in_memory"]))
    in_process = _listing_labels(["--direct_running_mode=in_memory"])
    assert in_process == ["ListObjects/ListRanges", "ListObjects/ListingUnits"]
    # Worker processes share out the listing units; each hashes what it lists.
    assert not runs_in_one_process(pipeline_options(["--direct_running_mode=multi_processing"]))
    assert _listing_labels(["--direct_running_mode=multi_processing"]) == [
        "ListObjects/ListRanges",
        "ListObjects/ListingUnits",
        "ListObjects/SpreadListings",
    ]
    assert spreads_listed_objects(pipeline_options(["--runner=DataflowRunner"])) == (True, True)
    assert spreads_listed_objects(pipeline_options(["--runner=PrismRunner", "--prism_location=/x"])) == (True, True)
