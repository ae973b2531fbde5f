"""The grader's side of the kernel connection: run the assembled notebook, cell by cell.

``python -I -m cnnlab.grading.executor JOB.json`` reads a JSON job (the notebook, the
kernel's connection info, the limits) that the grader wrote and writes one JSON event per line on stdout:
``{"cell": i}`` before cell ``i`` runs, ``{"error": i}`` when it raised, ``{"interrupted": i}``
when it hit its time limit, and a last ``{"end": STATE, "seconds": S}`` with STATE one of
``finished``, ``timeout``, ``kernel-died``.

It runs outside the sandbox as an unprivileged user of the grader's, never as the
submission's uid; under the ``bwrap`` level it is started inside the sandbox's network
namespace, where the kernel listens. What it reports is what it saw happen: the sandbox
has no way to write to it. The kernel's messages are untrusted: each is capped in size
(ZeroMQ drops a larger one), and outputs are counted, never kept.
"""

from __future__ import annotations  # noqa: I001 - cnnlab.notebooks.quick_import comes before nbformat

import asyncio
import json
import sys
import time

import cnnlab.notebooks.quick_import  # noqa: F401 - first: before nbformat and nbclient are imported
import nbformat
import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError


def emit(**event) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


class SandboxKernel:
    """The kernel manager nbclient talks to: the kernel is already running in the sandbox,
    and the grader (not this process) starts and stops it. Interrupts go as a message on the
    control channel, since this process may not signal the sandbox's processes."""

    has_kernel = True
    kernel_id = "sandbox"

    def __init__(self, client: AsyncKernelClient):
        self.kc = client

    def client(self) -> AsyncKernelClient:
        return self.kc

    async def is_alive(self) -> bool:
        return self.kc.hb_channel.is_beating()

    async def interrupt_kernel(self) -> None:
        self.kc.control_channel.send(self.kc.session.msg("interrupt_request", content={}))

    async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        pass

    async def cleanup_resources(self, restart: bool = False) -> None:
        pass


class SandboxClient(NotebookClient):
    """nbclient, keeping no output, reporting errors, and giving up on a cell that ignores
    the interrupt sent at its time limit."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.interrupted_cell = None

    async def _async_handle_timeout(self, timeout, cell=None):
        if cell is not None and self.interrupted_cell is cell:
            raise CellTimeoutError.error_from_timeout_and_cell("the cell ignored the interrupt", timeout, cell)
        self.interrupted_cell = cell
        return await super()._async_handle_timeout(timeout, cell)

    async def _check_raise_for_error(self, cell, cell_index, exec_reply):
        if exec_reply is not None and exec_reply.get("content", {}).get("status") == "error":
            emit(error=cell_index)

    def output(self, outs, msg, display_id, cell_index):
        return None  # the grade is in the exports; what the notebook prints is not kept


def client_for(connection: dict, message_size: int) -> AsyncKernelClient:
    context = zmq.asyncio.Context()
    context.setsockopt(zmq.MAXMSGSIZE, message_size)
    client = AsyncKernelClient(context=context)
    client.load_connection_info(connection)
    return client


async def run(job: dict) -> str:
    notebook = nbformat.from_dict(job["notebook"])
    kc = client_for(job["connection"], job["message_size"])
    executor = SandboxClient(
        notebook,
        km=SandboxKernel(kc),
        timeout=job["cell_timeout"],
        startup_timeout=job["startup_timeout"],
        allow_errors=True,
        interrupt_on_timeout=True,
        record_timing=False,
        store_widget_state=False,  # a kernel could send megabytes of widget state per message
    )
    started = time.monotonic()
    async with executor.async_setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if time.monotonic() - started > job["notebook_timeout"]:
                return "timeout"
            emit(cell=index)
            try:
                await executor.async_execute_cell(cell, index)
            except CellTimeoutError:
                emit(interrupted=index)
                return "timeout"
            except DeadKernelError:
                return "kernel-died"
            if executor.interrupted_cell is cell:
                emit(interrupted=index)
    return "finished"


def main() -> None:
    with open(sys.argv[1]) as job_file:
        job = json.load(job_file)
    started = time.monotonic()
    try:
        state = asyncio.run(asyncio.wait_for(run(job), timeout=job["notebook_timeout"] + job["startup_timeout"]))
    except asyncio.TimeoutError:
        state = "timeout"
    except (DeadKernelError, RuntimeError, zmq.ZMQError):
        state = "kernel-died"
    emit(end=state, seconds=round(time.monotonic() - started, 1))


if __name__ == "__main__":
    main()
