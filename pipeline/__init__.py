"""registry-scrub: verify GCR-layout Cloud Storage buckets blob by blob.

Layers: ``pipeline.core`` (pure logic, no I/O, no Beam), ``pipeline.adapters``
(thin I/O against GCS and the report location) and ``pipeline.transforms``
(Beam composites wiring the two). ``pipeline.build`` assembles the graph.
"""
