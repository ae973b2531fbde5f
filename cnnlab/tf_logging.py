"""Keep TensorFlow's C++ start-up messages out of notebooks and terminals.

Importing TensorFlow 2.21 loads two libraries that each log through their own copy of absl
before anything has configured it. absl then writes every message to stderr, prefaced by
"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR", and
no environment variable reaches it at that point: ``TF_CPP_MIN_LOG_LEVEL`` only applies to
what is logged later, and absl reads no variable of its own. So, while TensorFlow is imported
and while it first looks for GPUs, file descriptor 2 is passed through a filter that drops the
known start-up notices and forwards everything else, as it comes, so real errors stay visible.

The CUDA lines ("Could not find cuda drivers", "failed call to cuInit") are dropped only where
the machine has no NVIDIA device: on a machine with a GPU they say why it is not used.
Nothing here hides GPUs from TensorFlow.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.abc
import importlib.util
import os
import re
import sys
import threading

# Set before TensorFlow starts logging: hides its INFO and WARNING lines, keeps errors.
QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "2"}

_ALWAYS_NOISE = re.compile(
    "|".join(
        [
            r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
            r"^I\d{4} [\d:.]+\s+\d+ port\.cc:\d+\] oneDNN custom operations are on\.",
            r"^I\d{4} [\d:.]+\s+\d+ cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
            r"^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.$",
        ]
    )
)
_NO_GPU_NOISE = re.compile(
    r"^I\d{4} [\d:.]+\s+\d+ cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine"
    r"|^E\d{4} [\d:.]+\s+\d+ cuda_(platform|executor|diagnostics)\.cc:\d+\] failed call to cuInit"
)


def quiet_environment(environment=None) -> dict[str, str]:
    """A copy of ``environment`` (default ``os.environ``) with TensorFlow's log level set,
    unless it is already set there. For child processes and notebook kernels."""
    merged = dict(os.environ if environment is None else environment)
    for name, value in QUIET_ENVIRONMENT.items():
        merged.setdefault(name, value)
    return merged


def nvidia_device_present() -> bool:
    """Whether the machine exposes an NVIDIA GPU (Linux device nodes, or WSL's GPU device)."""
    return bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.exists("/dev/dxg")


def is_startup_noise(line: str, gpu_present: bool | None = None) -> bool:
    """Whether one line of stderr is a TensorFlow start-up notice that says nothing to act on."""
    line = line.rstrip("\r\n")
    if _ALWAYS_NOISE.search(line):
        return True
    if _NO_GPU_NOISE.search(line):
        return not (nvidia_device_present() if gpu_present is None else gpu_present)
    return False


@contextlib.contextmanager
def quiet_stderr():
    """Pass file descriptor 2 through :func:`is_startup_noise` for the duration of the block.

    Lines that are not start-up notices are forwarded to the real stderr while the block runs,
    so an error or a crash inside it is still seen. Python's own ``sys.stderr`` is flushed
    first; in a notebook kernel it is not file descriptor 2 and is left alone.
    """
    gpu_present = nvidia_device_present()
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved_stderr, forward_to = os.dup(2), os.dup(2)
    except OSError:  # no stderr at all: nothing to filter
        yield
        return
    read_end, write_end = os.pipe()

    def forward():
        pending = b""
        try:
            while chunk := os.read(read_end, 65536):
                *lines, pending = (pending + chunk).split(b"\n")
                _write_all(forward_to, _kept(lines, gpu_present))
            _write_all(forward_to, _kept([pending], gpu_present, newline=b"") if pending else b"")
        finally:
            os.close(read_end)
            os.close(forward_to)

    forwarder = threading.Thread(target=forward, name="cnnlab-quiet-stderr", daemon=True)
    forwarder.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        os.dup2(saved_stderr, 2)  # closes the pipe's last write end, unless a child process holds one
        os.close(saved_stderr)
        forwarder.join(timeout=5)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _kept(lines: list[bytes], gpu_present: bool, newline: bytes = b"\n") -> bytes:
    return b"".join(
        line + newline for line in lines if not is_startup_noise(line.decode("utf-8", "replace"), gpu_present)
    )


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Runs the first ``import tensorflow`` (also the one inside ``import keras``) under
    :func:`quiet_stderr`, then steps aside. The module's loader stays TensorFlow's own."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        loader = getattr(spec, "loader", None)
        if loader is None or isinstance(loader, type) or not hasattr(loader, "exec_module"):
            return spec  # nothing to wrap, or a loader shared by many modules
        exec_module = loader.exec_module

        def quiet_exec_module(module):
            try:
                with quiet_stderr():
                    exec_module(module)
            finally:
                del loader.exec_module  # back to the loader's own method

        loader.exec_module = quiet_exec_module
        return spec


def quiet_tensorflow_import() -> None:
    """Set :data:`QUIET_ENVIRONMENT` (where not set) and filter the first TensorFlow import.

    Does nothing to the import if TensorFlow is already imported: then it has logged already.
    """
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorFlowImport())
