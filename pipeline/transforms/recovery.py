"""RecoverImages: configs joined to layers by diff_id (CoGroupByKey, no side input), manifests rebuilt,
true orphans named, and every manifest's layers checked against its config's diff_ids.

Inputs, all keyed plain values:

* ``sniffed``: ``(role, fact)`` from HashObjects for every verified object that is a config,
  a layer or a manifest stored as a blob (``pipeline.core.recovery.sniffed_fact``);
* ``images``: one row per image manifest the manifest sources served (may be empty);
* ``blobs``: the blob facts ``(digest, {bucket, object, size, intact})`` of every listed object.

Writes ``<run_dir>/recovered/<config-hex>.json`` (each complete image's manifest),
``recovered-*.jsonl`` (one row per config) and ``orphan-layers-*.jsonl``. Returns
``{"findings": diff_id_mismatch rows, "tally": one Tally of the summary's recovery
columns and the files written}``; it comes once the files are written, so the summary waits.
"""

from __future__ import annotations

import json
from collections import Counter

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput

from pipeline.adapters import report as report_io
from pipeline.core import recovery as rc
from pipeline.core.summary import Tally
from pipeline.transforms.migration import SumCounters

RECOVERED_DIR = "recovered"
RECOVERED_PREFIX = "recovered"
ORPHANS_PREFIX = "orphan-layers"


def manifest_path(run_dir: str, config_digest: str) -> str:
    return report_io.FileSystems.join(run_dir, RECOVERED_DIR, config_digest.split(":", 1)[1] + ".json")


def _per_config(element):
    """(config digest, {configs, images}) -> wants, header, diff_id expectations, count mismatches."""
    config_digest, groups = element
    configs = sorted(groups["configs"], key=lambda c: (c["bucket"], c["object"]))
    images = sorted(groups["images"], key=lambda i: i["image"])
    expectations, findings = rc.diff_id_expectations(config_digest, configs, images)
    for row in findings:
        yield TaggedOutput("findings", row)
    for pair in expectations:
        yield TaggedOutput("expect", pair)
    if configs:
        successor = [i["image"] for i in images if i.get("successor")]
        yield TaggedOutput("header", (config_digest, (configs[0], [i["image"] for i in images], successor)))
        yield from rc.config_wants(configs[0])


def _per_diff_id(element):
    diff_id, groups = element
    placed, candidates = rc.place_layers(diff_id, groups["wants"], groups["layers"])
    yield from placed
    for layer in candidates:
        yield TaggedOutput("candidates", (layer["digest"], layer))


def _orphans(element):
    _, groups = element
    if not list(groups["named"]):
        for layer in groups["candidates"]:
            yield rc.orphan_row(layer)


def _check(element):
    digest, groups = element
    return rc.check_diff_ids(digest, groups["expect"], groups["layers"], groups["blobs"])


class WriteRecoveredFn(beam.DoFn):
    """(config digest, {header, placed}) -> the recovered row, after writing its manifest (when complete)."""

    def __init__(self, run_dir: str):
        self._run_dir = run_dir
        self._complete = Metrics.counter("recovery", "images_complete")
        self._incomplete = Metrics.counter("recovery", "images_incomplete")

    def process(self, element):
        config_digest, groups = element
        headers = list(groups["header"])
        if not headers:
            return
        config, registry_images, successor_images = headers[0]
        row, manifest = rc.recover_image(config, groups["placed"], registry_images, successor_images)
        if manifest is not None:
            with report_io.FileSystems.create(manifest_path(self._run_dir, config_digest)) as handle:
                handle.write(manifest)
            self._complete.inc()
        else:
            self._incomplete.inc()
        yield row


def _write_rows(rows, label: str, path_prefix: str):
    return (
        rows
        | f"{label}ToJson" >> beam.Map(lambda row: json.dumps(row, separators=(",", ":"), sort_keys=False))
        | f"Write{label}"
        >> beam.io.WriteToText(
            path_prefix, file_name_suffix=report_io.ROWS_SUFFIX, shard_name_template="-SSSSS-of-NNNNN"
        )
    )


class RecoverImages(beam.PTransform):
    """(sniffed, images, blobs) -> {"findings", "tally", "recovered" rows, "manifest_blobs" facts}; see the
    module docstring. The last two feed reclaim's second guard (pipeline/transforms/protection.py)."""

    def __init__(self, run_dir: str):
        super().__init__()
        self._run_dir = run_dir

    def expand(self, inputs):
        sniffed, images, blobs = inputs
        roles = sniffed | "SplitRoles" >> beam.Partition(
            lambda pair, _: {rc.CONFIG_ROLE: 0, rc.LAYER_ROLE: 1}.get(pair[0], 2), 3
        )
        configs = roles[0] | "KeyConfigs" >> beam.Map(lambda pair: (pair[1]["digest"], pair[1]))
        layers = roles[1] | "Layers" >> beam.Map(lambda pair: pair[1])
        per_config = (
            {"configs": configs, "images": images | "KeyImagesByConfig" >> beam.Map(lambda i: (i["config"], i))}
            | "JoinByConfig" >> beam.CoGroupByKey()
            | "PerConfig" >> beam.FlatMap(_per_config).with_outputs("findings", "expect", "header", main="wants")
        )
        by_diff_id = (
            {
                "wants": per_config["wants"],
                "layers": layers
                | "DecompressedLayers" >> beam.Filter(lambda layer: layer["diff_id"] is not None)
                | "KeyByDiffId" >> beam.Map(lambda layer: (layer["diff_id"], layer)),
            }
            | "JoinByDiffId" >> beam.CoGroupByKey()
            | "PlaceLayers" >> beam.FlatMap(_per_diff_id).with_outputs("candidates", main="placed")
        )
        recovered = (
            {"header": per_config["header"], "placed": by_diff_id["placed"]}
            | "JoinParts" >> beam.CoGroupByKey()
            | "Recover" >> beam.ParDo(WriteRecoveredFn(self._run_dir))
        )
        named_layers = images | "NamedLayers" >> beam.FlatMap(lambda i: [(d, None) for d in i["layers"]])
        orphans = (
            {"candidates": by_diff_id["candidates"], "named": named_layers}
            | "JoinOrphans" >> beam.CoGroupByKey()
            | "TrueOrphans" >> beam.FlatMap(_orphans)
        )
        findings = (
            {
                "expect": per_config["expect"],
                "layers": layers | "KeyLayersByDigest" >> beam.Map(lambda layer: (layer["digest"], layer)),
                "blobs": blobs,
            }
            | "JoinExpectations" >> beam.CoGroupByKey()
            | "CheckDiffIds" >> beam.FlatMap(_check)
        )
        join = report_io.FileSystems.join
        recovered_files = _write_rows(recovered, "Recovered", join(self._run_dir, RECOVERED_PREFIX))
        orphan_files = _write_rows(orphans, "Orphans", join(self._run_dir, ORPHANS_PREFIX))
        counts = (
            (
                recovered | "RecoveredCounts" >> beam.Map(rc.recovered_counts),
                orphans | "OrphanCounts" >> beam.Map(rc.orphan_counts),
            )
            | "AllRecoveryCounts" >> beam.Flatten()
            | "SumRecoveryCounts" >> beam.CombineGlobally(SumCounters())
        )
        # The written file names come in as side inputs, as WriteReport takes its own: the summary
        # then waits for these files (Prism stalls on a write's output used as a main input).
        tally = counts | "RecoveryTally" >> beam.Map(
            lambda counts, *files: Tally(recovery=counts, files=Counter(p for names in files for p in names)),
            beam.pvalue.AsList(recovered_files),
            beam.pvalue.AsList(orphan_files),
        )
        all_findings = (per_config["findings"], findings) | "RecoveryFindings" >> beam.Flatten()
        manifests = roles[2] | "ManifestBlobs" >> beam.Map(lambda pair: pair[1])
        return {"findings": all_findings, "tally": tally, "recovered": recovered, "manifest_blobs": manifests}
