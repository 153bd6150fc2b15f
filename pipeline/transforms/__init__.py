"""Beam composites that wire the GCS and report adapters to the pure core."""
