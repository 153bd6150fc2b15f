"""DecommissionFacts: what the verdict per bucket needs beyond the summary's counts (pipeline/core/decommission.py).

* recovered rows -> each complete image counted as kept by a successor or only here, per bucket;
* ``CoGroupByKey`` of manifest references and listed blobs by digest -> every image of a source that
  is not a successor (and not the bucket's own legacy metadata) whose blobs are in a bucket, counted
  once per (bucket, source, image): the images deleting the bucket would break.

Returns one PCollection of ``Tally`` for WriteReport to fold.
"""

from __future__ import annotations

import apache_beam as beam

from pipeline.core import decommission as dc
from pipeline.core.summary import Tally


def _in_use(element, serving: dict[int, str]):
    _, groups = element
    return dc.in_use_refs(groups["refs"], groups["blobs"], serving)


def _image_tally(key, tag_lists) -> Tally:
    bucket, source, repository, manifest_digest = key
    tags = {t for tags in tag_lists for t in tags}
    return Tally(decommission=dc.in_use_entry(bucket, source, repository, manifest_digest, tags))


class DecommissionFacts(beam.PTransform):
    """{"blobs", optional "refs", optional "recovered"} -> Tally; ``serving``: {source index: label} of the
    sources that are neither a successor nor legacy metadata."""

    def __init__(self, serving: dict[int, str]):
        super().__init__()
        self._serving = dict(serving)

    def expand(self, inputs):
        blobs, refs, recovered = inputs["blobs"], inputs.get("refs"), inputs.get("recovered")
        parts = []
        if recovered is not None:
            parts.append(
                recovered | "RecoveredFacts" >> beam.Map(lambda row: Tally(decommission=dc.recovered_facts(row)))
            )
        if refs is not None and self._serving:
            parts.append(
                {"refs": refs, "blobs": blobs}
                | "JoinRefsAndBlobs" >> beam.CoGroupByKey()
                | "ServingImages" >> beam.FlatMap(_in_use, self._serving)
                | "OncePerImage" >> beam.GroupByKey()
                | "InUseFacts" >> beam.MapTuple(_image_tally)
            )
        if not parts:
            return blobs.pipeline | "NoFacts" >> beam.Create([])
        return tuple(parts) | "AllFacts" >> beam.Flatten()
