"""Run a notebook top to bottom in a fresh kernel ("restart and run all") with nbclient."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from traitlets.config import Config

from cnnlab.tf_logging import quiet_environment


def execute_notebook(
    source: Path,
    output: Path | None = None,
    profile: str | None = None,
    cell_timeout: int = 900,
    kernel_name: str = "python3",
) -> nbformat.NotebookNode:
    """Execute ``source`` in a new kernel and write the executed copy to ``output``.

    The kernel runs in the notebook's folder, with ``CNNLAB_PROFILE`` set when ``profile`` is
    given and ``TF_CPP_MIN_LOG_LEVEL`` set unless the caller's environment sets it. The
    notebook metadata records the run under ``metadata.cnnlab.run``: profile, device and
    seconds. Raises ``nbclient.exceptions.CellExecutionError`` on the first
    failing cell (the executed copy is still written, with the error in it). A run that fails
    or is interrupted never overwrites ``source`` (``--inplace``): its copy goes to
    ``NAME.failed.ipynb`` beside it. The copy is written whole or not at all.
    """
    notebook = nbformat.read(source, as_version=4)
    # TensorFlow's log level is in the kernel's environment from its start, whatever the
    # notebook imports first (cnnlab filters the rest of the start-up notices on import).
    environment = quiet_environment(os.environ)
    for variable in ("CNNLAB_DATA", "CNNLAB_CACHE"):  # the kernel runs in the notebook's folder
        if environment.get(variable):
            environment[variable] = str(Path(environment[variable]).expanduser().resolve())
    if profile is not None:
        environment["CNNLAB_PROFILE"] = profile
    client = NotebookClient(
        notebook,
        timeout=cell_timeout,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(Path(source).parent)}},
        # CurveZMQ keys for kernels that declare support (ipykernel does): without them the
        # kernel warns on this terminal that it runs over TCP unencrypted, which it then would.
        config=Config({"KernelManager": {"transport_encryption": "auto"}}),
    )
    started = time.monotonic()
    succeeded = False
    try:
        client.execute(env=environment)
        succeeded = True
    finally:
        from cnnlab.profiles import get_profile
        from cnnlab.runtime import device_report

        notebook.metadata.setdefault("cnnlab", {})["run"] = {
            "profile": get_profile(profile).name,
            "device": device_report(),
            "seconds": round(time.monotonic() - started, 1),
        }
        if output is not None:
            target = Path(output)
            if not succeeded and target.resolve() == Path(source).resolve():
                target = target.with_name(target.stem + ".failed.ipynb")
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.tmp")
            nbformat.write(notebook, temporary)
            os.replace(temporary, target)
    return notebook
