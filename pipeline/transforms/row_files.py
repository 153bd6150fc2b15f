"""WriteRowFiles: every row file of a run (findings, verified …) through one sink.

``{prefix: PCollection of rows} | WriteRowFiles(run_dir, to_line)`` -> the final paths, one
element per file written. Each input is written by a ParDo fused with whatever produces
it (a temporary file per bundle, as Beam's sinks write), and a single finalize step turns
every kind's temporary files into ``<prefix>-SSSSS-of-NNNNN.jsonl`` at once.

Why not ``WriteToText`` per kind: each builds about 14 transforms and runs 5 stages
(a do-once initialisation, the grouping of written files, a pre-finalize and a finalize,
each on its own), so the three files of a scan were 15 of its 22 stages and most of a
one-object scan's Beam run (docs/performance.md, "Fixed cost"). Why not one
``fileio.WriteToFiles`` over a ``Flatten`` of the rows: Beam's local runner materialises
every multi-input Flatten in its controller, i.e. the launcher would hold every verified row
(pipeline/transforms/combine.py). Here only the temporary files' names, one per input and
bundle, travel: as side inputs of the finalize.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from pipeline.adapters import row_files


# Output types declared, not inferred from the bytecode (docs/performance.md, "Fixed cost").
@beam.typehints.with_output_types(str)
class _WriteBundleFn(beam.DoFn):
    """The lines of one bundle into one temporary file; its path when the bundle ends."""

    def __init__(self, sink: row_files.LineSink, temp_dir: str, to_line, to_line_args: tuple):
        self._sink = sink
        self._temp_dir = temp_dir
        self._to_line = to_line
        self._to_line_args = to_line_args

    def start_bundle(self) -> None:
        self._writer = None

    def process(self, row):
        if self._writer is None:
            self._writer = row_files.open_writer(self._sink, self._temp_dir)
        self._writer.write(self._to_line(row, *self._to_line_args))

    def finish_bundle(self):
        if self._writer is not None:
            writer, self._writer = self._writer, None
            # Batch and the global window: a written file belongs to the only window there is.
            yield GlobalWindows.windowed_value(writer.close())


@beam.typehints.with_output_types(str)
class _FinalizeFn(beam.DoFn):
    """Runs once: every kind's temporary files -> its final shards (one empty shard for a kind with none)."""

    def __init__(self, sinks: list[tuple[row_files.LineSink, str]]):
        self._sinks = sinks

    def process(self, _, *written_per_kind):
        for (sink, temp_dir), written in zip(self._sinks, written_per_kind, strict=True):
            yield from row_files.finalize(sink, temp_dir, sorted(written))


class WriteRowFiles(beam.PTransform):
    """{file prefix: PCollection of rows} -> PCollection of the final file paths.

    ``to_line(row, *to_line_args)`` makes each row's line (no newline), unless ``formats``
    gives a prefix its own ``(to_line, args)``; module-level functions, so that workers
    import them rather than unpickle a closure.
    """

    def __init__(self, run_dir: str, to_line, *to_line_args, formats=None):
        super().__init__()
        self._run_dir = run_dir
        self._formats = dict(formats or {})
        self._default_format = (to_line, to_line_args)

    def expand(self, rows_by_prefix):
        sinks, written = [], []
        for prefix, lines in rows_by_prefix.items():
            sink = row_files.row_sink(self._run_dir, prefix)
            temp_dir = row_files.temp_folder(self._run_dir, prefix)
            sinks.append((sink, temp_dir))
            to_line, to_line_args = self._formats.get(prefix, self._default_format)
            written.append(
                lines | f"Write{prefix.title()}" >> beam.ParDo(_WriteBundleFn(sink, temp_dir, to_line, to_line_args))
            )
        pipeline = next(iter(rows_by_prefix.values())).pipeline
        return (
            pipeline
            | "Once" >> beam.Impulse()
            | "Finalize" >> beam.ParDo(_FinalizeFn(sinks), *[beam.pvalue.AsList(files) for files in written])
        )
