"""CombineInputs: the same value as Flatten + CombineGlobally, with only partial results flattened."""

import apache_beam as beam
from apache_beam.portability import common_urns
from apache_beam.testing.util import assert_that, equal_to

from pipeline.runner import pipeline_options, runner_for
from pipeline.transforms.combine import CombineInputs


class MeanFn(beam.CombineFn):
    """An accumulator that is not the output, so the merge step must not extract twice."""

    def create_accumulator(self):
        return (0, 0)

    def add_input(self, accumulator, value):
        return accumulator[0] + value, accumulator[1] + 1

    def merge_accumulators(self, accumulators):
        sums, counts = zip(*accumulators, strict=True)
        return sum(sums), sum(counts)

    def extract_output(self, accumulator):
        total, count = accumulator
        return (total, count, None if count == 0 else total / count)


def _combined(inputs, expected):
    """Runs CombineInputs over ``inputs`` on the local runner, checks its one output, returns the pipeline."""
    options = pipeline_options(["--direct_running_mode=in_memory"])
    with beam.Pipeline(runner=runner_for(options), options=options) as pipeline:
        pcolls = tuple(
            pipeline | f"Input{index}" >> beam.Create(values, reshuffle=False) for index, values in enumerate(inputs)
        )
        assert_that(pcolls | "Combine" >> CombineInputs(MeanFn()), equal_to([expected]))
    return pipeline


def test_the_result_is_the_combine_over_every_element_of_every_input():
    _combined([[1, 2, 3], [10], [], [4, 5]], (25, 6, 25 / 6))


def test_inputs_that_are_all_empty_give_the_combine_of_nothing():
    _combined([[], []], (0, 0, None))


def test_only_one_partial_result_per_input_is_flattened():
    pipeline = _combined([[1, 2], [3]], (6, 3, 2.0))
    proto = pipeline.to_runner_api()
    transforms = proto.components.transforms
    leaves = [t for t in transforms.values() if not t.subtransforms]
    producers = {pcoll: t.unique_name for t in leaves for pcoll in t.outputs.values()}
    flattens = [t for t in transforms.values() if t.spec.urn == common_urns.primitives.FLATTEN.urn]
    (flatten,) = [t for t in flattens if t.unique_name.startswith("Combine/")]
    # One partial per input, and the empty accumulator that makes the output exist when no input has any.
    assert sorted(producers[p].split("/")[1] for p in flatten.inputs.values()) == ["Empty", "Partial0", "Partial1"]
