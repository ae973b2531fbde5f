"""Run one assembled notebook: the kernel in its sandbox, the executor beside it.

The grader's parent process (root) starts both, reads the executor's events, and when the
executor is done (or out of time) tears the sandbox down. Which cells were reached, which
were interrupted and how the run ended are taken from those events alone, never from
anything the sandbox wrote.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from cnnlab.grading import bubblewrap
from cnnlab.grading.cgroups import Cgroup
from cnnlab.grading.isolation import needed_paths
from cnnlab.grading.limits import Limits
from cnnlab.grading.sandbox import Sandbox, SandboxError, Teardown

KERNEL_STARTUP_S = 90  # importing ipykernel on a busy machine
EXECUTOR_MEMORY = 1024 * 1024 * 1024
MAX_EVENT_LINE = 4096


@dataclass
class RunReport:
    state: str  # finished | timeout | kernel-died | out-of-memory | crashed
    seconds: float
    reached: int | None = None  # index of the last cell the executor started
    interrupted: list[int] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    teardown: Teardown = field(default_factory=Teardown)


def grader_side_command(grader_uid: int | None, data_dir: str | None, bwrap: str | None, home: Path) -> list[str]:
    """How the grader starts one of its own unprivileged processes (executor, trusted side):
    as ``grader_uid``, seeing Python and cnnlab even where they lie under a closed folder, and
    its own ``home``."""
    if grader_uid is None:
        return []
    exposure = bubblewrap.exposure_command(bwrap, needed_paths(data_dir), [str(home)]) if bwrap else []
    return [*exposure, *bubblewrap.drop_to(grader_uid)]


def grader_environment(home: Path, data_dir: str | None, threads: int) -> dict:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "CNNLAB_OFFLINE": "1",
        "CNNLAB_CACHE": str(home / "cache"),
        "KERAS_HOME": str(home / "keras"),
        "MPLCONFIGDIR": str(home / "matplotlib"),
        "MPLBACKEND": "Agg",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if data_dir:
        env["CNNLAB_DATA"] = data_dir
    return env


class Executor:
    """The executor process for one run; ``events()`` yields what it reports."""

    def __init__(self, sandbox: Sandbox, notebook: nbformat.NotebookNode, limits: Limits, home: Path, grader_uid):
        self.sandbox, self.limits, self.home = sandbox, limits, home
        job = {
            "notebook": notebook,
            "connection": sandbox.connection,
            "cell_timeout": limits.cell_timeout,
            "notebook_timeout": limits.notebook_timeout,
            "startup_timeout": KERNEL_STARTUP_S,
            "message_size": limits.message_size,
        }
        job_file = home / "job.json"
        job_file.write_text(json.dumps(job))
        self.cgroup = Cgroup(f"cnnlab-executor-{sandbox.uid}-{os.getpid()}", EXECUTOR_MEMORY, 1, 64)
        self.cgroup.create()
        launcher = [
            sys.executable,
            "-I",
            "-m",
            "cnnlab.grading.launch",
            "--processes",
            "4096",
            "--file-size",
            str(1 << 20),
        ]
        launcher += [argument for folder in self.cgroup.folders.values() for argument in ("--cgroup", str(folder))]
        enter_network = []
        pass_fds = ()
        if sandbox.netns_fd is not None:
            enter_network = ["nsenter", f"--net=/proc/self/fd/{sandbox.netns_fd}", "--"]
            pass_fds = (sandbox.netns_fd,)
        command = [
            *launcher, "--",
            *enter_network,
            *grader_side_command(grader_uid, sandbox.data_dir, sandbox.isolation.bwrap, home),
            sys.executable, "-I", "-m", "cnnlab.grading.executor", str(job_file),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=grader_environment(home, sandbox.data_dir, 1), cwd=home, pass_fds=pass_fds, start_new_session=True,
        )  # fmt: skip

    def events(self, deadline: float):
        """Each event the executor reports, until it ends or ``deadline`` (monotonic) passes."""
        buffer = b""
        stream = self.process.stdout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([stream], [], [], min(1.0, max(0.0, deadline - time.monotonic())))
            if not ready:
                continue
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                try:
                    event = json.loads(line) if len(line) <= MAX_EVENT_LINE else None
                except json.JSONDecodeError:
                    event = None
                if isinstance(event, dict):
                    yield event
            buffer = buffer[-MAX_EVENT_LINE:]

    def stop(self) -> int | None:
        """Kill the executor if it still runs; return its peak memory (bytes, where known)."""
        try:
            os.killpg(self.process.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        self.process.stdout.close()
        peak = self.cgroup.peak_memory()
        self.cgroup.remove()
        return peak


def run_notebook(sandbox: Sandbox, notebook, limits: Limits, home: Path, grader_uid: int | None) -> RunReport:
    """Start the sandbox, run every cell through the executor, tear the sandbox down."""
    started = time.monotonic()
    report = RunReport("crashed", 0.0)
    try:
        sandbox.start()
    except SandboxError:
        sandbox.stop()
        raise
    executor = Executor(sandbox, notebook, limits, home, grader_uid)
    deadline = started + limits.notebook_timeout + KERNEL_STARTUP_S + 30
    ended = False
    for event in executor.events(deadline):
        if "cell" in event:
            report.reached = int(event["cell"])
        elif "error" in event:
            report.errors.append(int(event["error"]))
        elif "interrupted" in event:
            report.interrupted.append(int(event["interrupted"]))
        elif "end" in event:
            report.state, ended = str(event["end"]), True
    if not ended:
        report.state = "timeout" if time.monotonic() >= deadline else "crashed"
    report.teardown = sandbox.stop()
    executor_peak = executor.stop()
    if report.teardown.out_of_memory:
        report.state = "out-of-memory"
    if executor_peak and report.teardown.peak_memory is not None:
        report.teardown.peak_memory += executor_peak
    report.seconds = round(time.monotonic() - started, 1)
    return report
