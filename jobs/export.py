"""``registry-scrub export RUN_DIR CONFIG_DIGEST --to DIR``: a recovered image as an OCI image layout.

The image is the one a ``scan.recover_images`` run rebuilt (``RUN_DIR/recovered-*.jsonl``
and ``RUN_DIR/recovered/<hex>.json``). Each blob is read from its bucket, read-only,
through the scanner's own read loop (retries, resume, the restart from byte 0), and
written as it streams; its SHA-256 must equal its name and a layer must still
decompress to the diff_id the config lists, or nothing of it is kept. The layout then
goes anywhere skopeo can copy it, e.g. ``skopeo copy oci:DIR:TAG docker://HOST/REPO:TAG``.

The layout holds the OCI form of the manifest (skopeo reads only OCI media types from
an ``oci:`` layout); the blobs, and so the config and layer digests, are the same.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from jobs import output
from pipeline.adapters import gcs
from pipeline.adapters import report as report_io
from pipeline.core.blobs import ListedObject
from pipeline.core.digests import is_digest
from pipeline.core.layer_sniff import LayerSniffer, output_cap
from pipeline.core.manifests import sha256_of
from pipeline.core.recovery import OCI_MANIFEST, as_oci
from pipeline.core.summary import EXIT_FINDINGS, EXIT_UNUSABLE_INPUT
from pipeline.transforms.recovery import RECOVERED_PREFIX, manifest_path

REF_NAME = "org.opencontainers.image.ref.name"


class ExportError(Exception):
    """The export cannot start: the message names what is wrong and where."""


class BlobFailed(Exception):
    """A blob could not be read, or its bytes are not what its digest (or diff_id) says."""


def _whole_number(low: int, high: int):
    """An argparse type: a whole number from ``low`` to ``high`` (argparse names the flag in its error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low} to {high}, got {text!r}")
        return value

    return parse


def add_parser(commands):
    export = commands.add_parser(
        "export",
        help="write an image that a --recover-images run rebuilt as an OCI image layout",
        description="Write a recovered image (from a --recover-images run) as an OCI image layout, "
        "every blob read again and verified.",
    )
    export.add_argument("run_dir", metavar="RUN_DIR", help="the run's report folder (local or gs://)")
    export.add_argument("config_digest", metavar="CONFIG_DIGEST", help="sha256:<hex> of the image's config")
    export.add_argument(
        "--to", required=True, metavar="DIR", help="the OCI layout to write: a new folder, or an OCI layout to add to"
    )
    export.add_argument(
        "--tag", default="latest", metavar="TAG", help="the layout's ref name for the image (default: latest)"
    )
    export.add_argument(
        "--replace-tag",
        action="store_true",
        help="let --tag replace a tag the layout already gives another image (default: off, refused)",
    )
    export.add_argument(
        "--emulator-endpoint",
        metavar="URL",
        help="read the blobs from a local GCS emulator, http://HOST:PORT "
        "(default: the emulator the run scanned, from its summary.json; else Cloud Storage)",
    )
    export.add_argument(
        "--chunk-size",
        type=_whole_number(4096, 256 * 1024 * 1024),
        default=1024 * 1024,
        metavar="BYTES",
        help="bytes per read, 4096 to 268435456 (default: 1048576)",
    )
    export.add_argument(
        "--max-attempts",
        type=_whole_number(1, 20),
        default=5,
        metavar="N",
        help="attempts per blob on transient errors, 1 to 20 (default: 5)",
    )
    export.add_argument("-q", "--quiet", action="store_true", help="print only errors (default: off)")
    export.add_argument("-v", "--verbose", action="store_true", help="log every read (default: off)")
    return export


def find_recovered(run_dir: str, config_digest: str) -> dict[str, Any]:
    """The recovered row of ``config_digest`` in the run's ``recovered-*.jsonl``."""
    pattern = report_io.FileSystems.join(run_dir, f"{RECOVERED_PREFIX}-*{report_io.ROWS_SUFFIX}")
    try:
        paths = sorted(m.path for m in report_io.FileSystems.match([pattern])[0].metadata_list)
    except Exception as err:  # Beam's BeamIOError: the folder or the pattern cannot be read
        raise ExportError(f"{run_dir}: cannot list the recovered rows ({err})") from None
    if not paths:
        if not report_io.FileSystems.exists(report_io.FileSystems.join(run_dir, report_io.SUMMARY_FILE)):
            raise ExportError(
                f"{run_dir}: not a run folder (no {report_io.SUMMARY_FILE}); "
                "give the folder of one finished run (<report.output>/<run_id>)"
            )
        raise ExportError(f"{run_dir}: no {RECOVERED_PREFIX}-*.jsonl; was the run made with --recover-images?")
    for path in paths:
        with report_io.FileSystems.open(path) as handle:
            for line in handle.read().decode("utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    if row.get("config_digest") == config_digest:
                        return row
    raise ExportError(f"{run_dir}: no recovered image has the config {config_digest}")


class _Tee:
    """A read observer that writes each chunk to ``path`` and checks a layer's diff_id on the way."""

    def __init__(self, path: Path, sniffer: LayerSniffer | None):
        self.path = path
        self._file = path.open("wb")
        self.sniffer = sniffer

    def update(self, chunk: bytes) -> None:
        self._file.write(chunk)
        if self.sniffer:
            self.sniffer.update(chunk)

    def reset(self) -> None:
        self._file.seek(0)
        self._file.truncate()
        if self.sniffer:
            self.sniffer.reset()

    def close(self) -> None:
        self._file.close()


def copy_blob(session, endpoint: str, blob: dict[str, Any], blobs_dir: Path, args) -> None:
    """Stream one blob from its bucket into ``blobs_dir``, verified, or raise BlobFailed and keep nothing."""
    digest = blob["digest"]
    target = blobs_dir / digest.split(":", 1)[1]
    partial = target.with_name(target.name + ".partial")
    diff_id = blob.get("diff_id")
    checks_diff = diff_id is not None and blob.get("compression") is not None
    tee = _Tee(partial, LayerSniffer(max_output_bytes=output_cap(blob["size"])) if checks_diff else None)
    obj = ListedObject(bucket=blob["bucket"], name=blob["object"], generation=None, size=blob["size"])
    try:
        result = gcs.read_and_hash(
            session,
            endpoint,
            obj,
            chunk_size=args.chunk_size,
            max_attempts=args.max_attempts,
            expected_sha256=digest.split(":", 1)[1],
            observer=tee,
        )
    finally:
        tee.close()
    where = f"gs://{obj.bucket}/{obj.name}"
    try:
        if not result.ok:
            raise BlobFailed(f"{where}: cannot be read ({result.reason})")
        if "sha256:" + result.sha256 != digest:
            raise BlobFailed(f"{where}: its bytes hash to sha256:{result.sha256}, not {digest}; not exported")
        if result.size != blob["size"]:
            raise BlobFailed(f"{where}: {result.size} bytes read, the recovered manifest says {blob['size']}")
        if checks_diff:
            sniffed = tee.sniffer.result()
            actual = sniffed.diff_id if sniffed else None
            if actual != diff_id:
                why = sniffed.problem if sniffed and sniffed.problem else f"decompresses to {actual}"
                raise BlobFailed(f"{where}: {why}; the config lists {diff_id}")
    except BlobFailed:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)


def read_index(root: Path) -> dict[str, Any]:
    index_path = root / "index.json"
    if not index_path.exists():
        return {"schemaVersion": 2, "manifests": []}
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ExportError(f"{index_path}: not a readable OCI index ({err}); choose a new folder") from None
    if not isinstance(index, dict) or not isinstance(index.get("manifests", []), list):
        raise ExportError(f"{index_path}: not an OCI index (no manifests list); choose a new folder")
    return index


def tagged(index: dict[str, Any], tag: str) -> str | None:
    """The digest the layout gives ``tag``, if any."""
    for entry in index.get("manifests", []):
        if isinstance(entry, dict) and (entry.get("annotations") or {}).get(REF_NAME) == tag:
            return entry.get("digest")
    return None


def check_tag(root: Path, manifest: bytes, tag: str, replace: bool) -> None:
    """A tag the layout already gives another image is kept unless ``--replace-tag`` says otherwise:
    replacing it silently would drop that image from the layout's index."""
    held = tagged(read_index(root), tag)
    if held is not None and held != sha256_of(manifest) and not replace:
        raise ExportError(
            f"{root}: the layout already tags another image {tag!r} ({held}); "
            "choose another --tag, or pass --replace-tag to replace it"
        )


def write_layout(root: Path, manifest: bytes, tag: str) -> None:
    """Add ``manifest`` to the layout's ``index.json`` under ``tag`` (replacing an entry of that tag).

    ``index.json`` is written to a temporary file and renamed over the old one, so a reader (or
    a crash) sees the old index or the new one, never half of either."""
    digest = sha256_of(manifest)
    (root / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(manifest)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = read_index(root)
    entries = [e for e in index.get("manifests", []) if (e.get("annotations") or {}).get(REF_NAME) != tag]
    entries.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest), "annotations": {REF_NAME: tag}})
    index["manifests"] = entries
    partial = root / "index.json.partial"
    partial.write_text(json.dumps(index, indent=2) + "\n")
    os.replace(partial, root / "index.json")


def prepare_target(root: Path) -> bool:
    """Make the layout's folders; True when the folder was new or empty (an export that fails then
    leaves it as it found it)."""
    if root.exists() and any(root.iterdir()) and not (root / "oci-layout").exists():
        raise ExportError(f"{root}: exists, is not empty and is not an OCI layout; choose a new folder")
    fresh = not root.exists() or not any(root.iterdir())
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    return fresh


def undo(root: Path, existed: bool, fresh: bool, added: list[Path]) -> None:
    """After a failed export: the blobs it added are removed, and a layout it started is removed
    whole, so no layout is left with blobs that no index.json names."""
    for path in added:
        path.unlink(missing_ok=True)
    if not fresh:
        return
    for name in ("index.json.partial", "index.json", "oci-layout"):
        (root / name).unlink(missing_ok=True)
    shutil.rmtree(root / "blobs", ignore_errors=True)
    if not existed:
        shutil.rmtree(root, ignore_errors=True)


def export(args) -> dict[str, Any]:
    """Write the layout; returns what was exported (``--format json`` prints it). Raises ExportError or BlobFailed."""
    digest = args.config_digest if args.config_digest.startswith("sha256:") else f"sha256:{args.config_digest}"
    if not is_digest(digest):
        raise ExportError(f"CONFIG_DIGEST: expected sha256:<64 lowercase hex>, got {args.config_digest!r}")
    run_dir = args.run_dir if args.run_dir.startswith("gs://") else os.path.abspath(args.run_dir)
    row = find_recovered(run_dir, digest)
    if not row["complete"]:
        raise ExportError(
            f"{digest}: the bucket lacks {len(row['missing_diff_ids'])} of its {row['layer_count']} layer(s) "
            f"(diff_ids {', '.join(row['missing_diff_ids'])}); nothing to export"
        )
    try:
        with report_io.FileSystems.open(manifest_path(run_dir, digest)) as handle:
            manifest = handle.read()
    except Exception as err:
        raise ExportError(f"{manifest_path(run_dir, digest)}: cannot read the recovered manifest ({err})") from None
    endpoint = args.emulator_endpoint
    if endpoint is None:
        summary = report_io.read_json(report_io.FileSystems.join(run_dir, report_io.SUMMARY_FILE)) or {}
        endpoint = ((summary.get("config") or {}).get("source") or {}).get("emulator_endpoint")
    root = Path(args.to)
    layout_manifest = as_oci(manifest)
    if (root / "oci-layout").exists():
        check_tag(root, layout_manifest, args.tag, getattr(args, "replace_tag", False))
    existed = root.exists()
    fresh = prepare_target(root)
    blobs_dir = root / "blobs" / "sha256"
    config_blob = {"digest": digest, "bucket": row["bucket"], "object": row["object"], "size": row["config_size"]}
    added: list[Path] = []
    try:
        session, gcs_endpoint = gcs.make_session(endpoint, 1)
        try:
            for blob in [config_blob, *row["layers"]]:
                target = blobs_dir / blob["digest"].split(":", 1)[1]
                new = not target.exists()
                copy_blob(session, gcs_endpoint, blob, blobs_dir, args)
                if new:
                    added.append(target)
        finally:
            session.close()
        manifest_blob = blobs_dir / sha256_of(layout_manifest).split(":", 1)[1]
        if not manifest_blob.exists():
            added.append(manifest_blob)
        write_layout(root, layout_manifest, args.tag)
    except BaseException:  # an interrupt too: never a layout with blobs and no index naming them
        undo(root, existed, fresh, added)
        raise
    return {
        "config_digest": digest,
        "manifest_digest": sha256_of(layout_manifest),
        "layers": len(row["layers"]),
        "bytes": sum(layer["size"] for layer in row["layers"]) + row["config_size"],
        "layout": str(root),
        "tag": args.tag,
        "reference": f"oci:{root}:{args.tag}",
        "verified": True,  # every blob was read again and hashed to its digest
    }


def exported_line(result: dict[str, Any]) -> str:
    return (
        f"exported {result['config_digest']} ({result['layers']} layer(s), {result['bytes']:,} bytes, "
        f"every blob re-verified) to {result['layout']} as {result['reference']}"
    )


def main(args) -> int:
    try:
        result = export(args)
        output.emit(args, result, None if args.quiet else exported_line(result))
    except ExportError as err:
        print(f"registry-scrub export: {err}", file=sys.stderr)
        return EXIT_UNUSABLE_INPUT
    except BlobFailed as err:
        print(f"registry-scrub export: {err}", file=sys.stderr)
        return EXIT_FINDINGS
    return 0
