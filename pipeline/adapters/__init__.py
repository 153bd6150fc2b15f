"""Thin I/O adapters: GCS listing and reads, and the report location."""
