"""CombineInputs: one global combine over several PCollections, with no Flatten of their elements.

``(a, b, c) | beam.Flatten() | beam.CombineGlobally(fn)`` is the obvious way to fold
several PCollections into one value, and on Dataflow it costs nothing extra. Beam's local
runner (FnApiRunner) always materialises a Flatten of several inputs (its
``sink_flattens`` says so): every element of every input is encoded into a buffer in the
runner's controller, the launcher locally, and decoded again by the stage that reads it.
For a scan that is every listed object's tally and every verified row: the launcher held
them all (1.25 GiB at 200,000 objects), and the round trip cost CPU per object.

Here each input is folded on its own first, bundle by bundle, in a ParDo fused with
whatever produces the input, so nothing per element leaves its worker; only those
partial accumulators (one per input and bundle) are flattened and merged. The result
equals the obvious form's, the empty case included.

The merge is a GroupByKey under one key, not a ``CombineGlobally``, whose handling of an
empty input costs a stage and half a dozen transforms of its own: one empty accumulator
from an ``Impulse`` joins the partials instead, so the group, and the output, always exist.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows


def merge_in_place(accumulators):
    """The first of ``accumulators`` with every other merged into it (``a.merge(b)``): for the
    report's accumulators, which merge themselves and are too large to copy per merge."""
    accumulators = iter(accumulators)
    merged = next(accumulators)
    for other in accumulators:
        merged.merge(other)
    return merged


# Declared, not inferred: Beam would read the bytecode of process() and of everything it calls
# to conclude Any (docs/performance.md, "Fixed cost").
@beam.typehints.with_output_types(beam.typehints.Any)
class _FoldBundle(beam.DoFn):
    """``fn``'s accumulator over one bundle, emitted when the bundle ends: the partial result.

    A ParDo, so it fuses with whatever produces its input and adds no stage of its own (a
    CombineGlobally per input would add a grouping stage each, and construction time).
    """

    def __init__(self, fn: beam.CombineFn, tag=None):
        self._fn = fn
        self._tag = tag

    def setup(self) -> None:
        self._fn.setup()

    def start_bundle(self) -> None:
        self._accumulator = None

    def process(self, element):
        if self._accumulator is None:
            self._accumulator = self._fn.create_accumulator()
        self._accumulator = self._fn.add_input(
            self._accumulator, element if self._tag is None else (self._tag, element)
        )

    def finish_bundle(self):
        if self._accumulator is not None:
            accumulator, self._accumulator = self._fn.compact(self._accumulator), None
            # Batch and the global window: a partial belongs to the only window there is.
            yield GlobalWindows.windowed_value((None, accumulator))

    def teardown(self) -> None:
        self._fn.teardown()


def _empty_partial(_, fn: beam.CombineFn):
    return None, fn.create_accumulator()


def _merge_partials(keyed, fn: beam.CombineFn):
    _, partials = keyed
    return fn.extract_output(fn.merge_accumulators(partials))


class CombineInputs(beam.PTransform):
    """(PCollection, ...) -> a singleton: ``fn`` over every element of every input.

    With ``tags`` (one per input), ``fn`` receives ``(tag, element)``: what a ``Map`` tagging
    each input would give, without a transform per input.
    """

    def __init__(self, fn: beam.CombineFn, tags=None):
        super().__init__()
        self._fn = fn
        self._tags = tags

    def expand(self, inputs):
        tags = [None] * len(inputs) if self._tags is None else list(self._tags)
        if len(tags) != len(inputs):
            raise ValueError(f"CombineInputs: {len(tags)} tags for {len(inputs)} inputs")
        partials = [
            pcoll | f"Partial{index}" >> beam.ParDo(_FoldBundle(self._fn, tag))
            for index, (pcoll, tag) in enumerate(zip(inputs, tags, strict=True))
        ]
        pipeline = inputs[0].pipeline
        partials.append(pipeline | "Start" >> beam.Impulse() | "Empty" >> beam.Map(_empty_partial, self._fn))
        return (
            partials
            | "Partials" >> beam.Flatten(pipeline=pipeline)
            | "Group" >> beam.GroupByKey()
            | "Merge" >> beam.Map(_merge_partials, self._fn)
        )
