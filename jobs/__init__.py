"""Entry points: the CLI, the embedded demo, the local emulator and the Dataflow launch."""

from pipeline.compat import quiet_python_support_warnings

quiet_python_support_warnings()
