"""Pure logic: digests, object names, findings, classification, summaries.

Nothing in this package performs I/O or imports Beam, so all of it is tested directly.
"""
