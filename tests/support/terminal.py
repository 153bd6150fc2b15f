"""Reading what programs wrote to a pseudo-terminal, as a person's screen would receive it."""

from __future__ import annotations

import os


def read_until_closed(controller: int) -> bytes:
    """Everything written to the terminal until every process holding it has exited; closes
    ``controller``. The caller must have closed its own copy of the terminal's other end."""
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: every process writing to it has exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    return b"".join(chunks)
