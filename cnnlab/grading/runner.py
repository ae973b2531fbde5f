"""Inside the sandbox: execute the assembled notebook with nbclient and record what happened.

Run as ``python -m cnnlab.grading.runner WORKDIR CELL_TIMEOUT NOTEBOOK_TIMEOUT OUTPUT_BYTES``.
Reads ``WORKDIR/assembled.ipynb``; writes ``WORKDIR/executed.ipynb`` (outputs capped) and
``WORKDIR/status.json``. Every cell runs even after an error, so that later questions
still export; a dead kernel or the notebook time limit stops the run.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError


class CappedClient(NotebookClient):
    """An nbclient that keeps at most ``output_bytes`` of output in the notebook."""

    def __init__(self, *args, output_bytes: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.output_bytes = output_bytes
        self.kept = 0
        self.dropped = 0

    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {})))
        if self.kept + size > self.output_bytes:
            self.dropped += size
            return None
        self.kept += size
        return super().output(outs, msg, display_id, cell_index)


def run(workdir: Path, cell_timeout: int, notebook_timeout: int, output_bytes: int) -> dict:
    notebook = nbformat.read(workdir / "assembled.ipynb", as_version=4)
    client = CappedClient(
        notebook,
        timeout=cell_timeout,
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=True,
        resources={"metadata": {"path": str(workdir)}},
        output_bytes=output_bytes,
    )
    status = {"state": "finished", "cells": len(notebook.cells), "reached": 0, "errors": [], "timed_out_cells": []}
    started = time.monotonic()

    async def execute_all():
        async with client.async_setup_kernel():
            for index, cell in enumerate(notebook.cells):
                status["reached"] = index
                if time.monotonic() - started > notebook_timeout:
                    status["state"] = "timeout"
                    return
                try:
                    await client.async_execute_cell(cell, index)
                except CellTimeoutError:
                    status["timed_out_cells"].append(index)
                except DeadKernelError:
                    status["state"] = "kernel-died"
                    return
                if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                    status["errors"].append(index)

    try:
        asyncio.run(asyncio.wait_for(execute_all(), timeout=notebook_timeout))
    except asyncio.TimeoutError:
        status["state"] = "timeout"
    except DeadKernelError:
        status["state"] = "kernel-died"
    status["seconds"] = round(time.monotonic() - started, 1)
    status["output_dropped_bytes"] = client.dropped
    nbformat.write(notebook, workdir / "executed.ipynb")
    return status


def main() -> None:
    workdir = Path(sys.argv[1])
    cell_timeout, notebook_timeout, output_bytes = (int(v) for v in sys.argv[2:5])
    status = run(workdir, cell_timeout, notebook_timeout, output_bytes)
    (workdir / "status.json").write_text(json.dumps(status))


if __name__ == "__main__":
    main()
