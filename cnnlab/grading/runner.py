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
    """An nbclient that keeps at most ``output_bytes`` of output in the notebook, and gives up
    on a cell that ignores the interrupt sent at its time limit."""

    def __init__(self, *args, output_bytes: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.output_bytes = output_bytes
        self.kept = 0
        self.dropped = 0
        self.interrupted_cell = None

    async def _async_handle_timeout(self, timeout, cell=None):
        if cell is not None and self.interrupted_cell is cell:
            # Interrupted once already and still running (it ignores SIGINT): stop the run.
            raise CellTimeoutError.error_from_timeout_and_cell("Cell ignored the interrupt", timeout, cell)
        self.interrupted_cell = cell
        return await super()._async_handle_timeout(timeout, cell)

    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {})))
        if self.kept + size > self.output_bytes:
            self.dropped += size
            return None
        self.kept += size
        return super().output(outs, msg, display_id, cell_index)


def reserve(path: Path, size: int) -> None:
    """Claim disk space now for a file written at the end, so a notebook that fills its disk
    cannot stop the runner from reporting (rewriting the file frees the space first)."""
    path.write_bytes(b" " * size)


def run(workdir: Path, cell_timeout: int, notebook_timeout: int, output_bytes: int) -> dict:
    notebook = nbformat.read(workdir / "assembled.ipynb", as_version=4)
    reserve(workdir / "status.json", 1 << 16)
    reserve(workdir / "executed.ipynb", output_bytes + 2 * (workdir / "assembled.ipynb").stat().st_size + (1 << 20))
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
                    status["state"] = "timeout"
                    return
                except DeadKernelError:
                    status["state"] = "kernel-died"
                    return
                if client.interrupted_cell is cell:
                    status["timed_out_cells"].append(index)
                if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                    status["errors"].append(index)

    try:
        asyncio.run(asyncio.wait_for(execute_all(), timeout=notebook_timeout))
    except (asyncio.TimeoutError, DeadKernelError):
        status["state"] = "kernel-died"
    elapsed = time.monotonic() - started
    if status["state"] != "finished" and elapsed >= notebook_timeout - 1:
        status["state"] = "timeout"  # nbclient reports the cancelled wait as a dead kernel
    status["seconds"] = round(elapsed, 1)
    status["output_dropped_bytes"] = client.dropped
    try:
        nbformat.write(notebook, workdir / "executed.ipynb")
    except OSError:
        status["executed_notebook"] = "not written (no space)"
    return status


def main() -> None:
    workdir = Path(sys.argv[1])
    cell_timeout, notebook_timeout, output_bytes = (int(v) for v in sys.argv[2:5])
    status = run(workdir, cell_timeout, notebook_timeout, output_bytes)
    (workdir / "status.json").write_text(json.dumps(status))


if __name__ == "__main__":
    main()
