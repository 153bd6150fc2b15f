"""ImageClaims: the second guard's evidence, ``(blob digest, image facts)`` for every blob of an image the
buckets themselves show (pipeline/core/protection.py). Reclaim joins it with the unreferenced blobs by
digest (CoGroupByKey), so no side input ever holds the digests."""

from __future__ import annotations

import apache_beam as beam

from pipeline.core import protection as pt


class ImageClaims(beam.PTransform):
    """(recovered rows, manifest blob facts) -> (blob digest, image facts)."""

    def expand(self, inputs):
        recovered, manifest_blobs = inputs
        from_configs = recovered | "ClaimsOfRecovered" >> beam.FlatMap(pt.claims_of_recovered)
        from_manifests = manifest_blobs | "ClaimsOfManifestBlobs" >> beam.FlatMap(pt.claims_of_manifest_blob)
        return (from_configs, from_manifests) | "AllClaims" >> beam.Flatten()
