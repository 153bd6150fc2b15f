"""Entry points: the CLI, the embedded demo, the local emulator and the Dataflow launch."""
