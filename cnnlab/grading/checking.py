"""The parent's side of the hidden tests: start the trusted process, contain its failures.

The trusted process (:mod:`~cnnlab.grading.trusted`) runs as the grader's unprivileged user
for this submission, in a memory cgroup of its own, and gets the exports only as an open
descriptor. It reports each test as soon as it is done, so that when an export makes it die
(out of memory, say) or run out of time, the test it was in scores zero with the grader's
own message, and a new trusted process checks the tests left. Its standard error (where
Keras could repeat an export's layer names) never reaches a result: set ``CNNLAB_GRADER_LOGS``
to a folder to keep it for the staff.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

from cnnlab.grading.cgroups import Cgroup
from cnnlab.grading.execution import grader_environment, grader_side_command
from cnnlab.grading.limits import ADDRESS_SPACE_FACTOR

TRUSTED_TIMEOUT_S = 900  # all tests of one submission, in one trusted process
MAX_LINE = 1 << 16
DIED = "the grader could not check this export within its memory and time limits"


def _launch(grader, copy: Path, exports_fd: int, home: Path, skip: set[int], cgroup: Cgroup, log) -> subprocess.Popen:
    limits = grader.limits
    launcher = [sys.executable, "-I", "-m", "cnnlab.grading.launch", "--processes", "1048576"]
    launcher += ["--file-size", str(64 << 20)]
    launcher += [argument for folder in cgroup.folders.values() for argument in ("--cgroup", str(folder))]
    if not cgroup.folders:
        launcher += ["--address-space", str(ADDRESS_SPACE_FACTOR * 2 * limits.trusted_memory)]
    command = [
        *launcher, "--",
        *grader_side_command(grader.grader_uid_for(home), grader.data_dir, grader.isolation.bwrap, home),
        sys.executable, "-I", "-m", "cnnlab.grading.trusted", str(copy), str(exports_fd),
        str(limits.exports_count), str(limits.exports_size), ",".join(map(str, sorted(skip))),
    ]  # fmt: skip
    return subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, cwd=home, pass_fds=(exports_fd,),
        env=grader_environment(home, grader.data_dir, grader.threads), start_new_session=True,
    )  # fmt: skip


def _reports(process: subprocess.Popen, deadline: float):
    """Each result line the trusted process prints, until it exits or the deadline passes."""
    buffer = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], min(1.0, max(0.0, deadline - time.monotonic())))
        if not ready:
            continue
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            try:
                report = json.loads(line) if len(line) <= MAX_LINE else None
            except json.JSONDecodeError:
                report = None
            if isinstance(report, dict) and isinstance(report.get("index"), int):
                yield report
        buffer = buffer[-MAX_LINE:]


def run_trusted(grader, hidden_tests: list, exports_fd: int, home: Path) -> tuple[list[dict], int | None]:
    """Every hidden test's result for one submission, and the trusted side's peak memory."""
    copy = home / grader.hidden.name
    shutil.copyfile(grader.hidden, copy)
    uid = grader.grader_uid_for(home)
    if uid is not None:
        os.chown(copy, uid, uid)
    done: dict[int, dict] = {}
    peak = 0
    logs = os.environ.get("CNNLAB_GRADER_LOGS")
    deadline = time.monotonic() + TRUSTED_TIMEOUT_S
    while len(done) < len(hidden_tests):
        cgroup = Cgroup(
            f"cnnlab-trusted-{os.getpid()}-{home.parent.name}", grader.limits.trusted_memory, grader.threads, 4096
        )
        cgroup.create()
        log = open(Path(logs) / f"{home.parent.name}.trusted.log", "ab") if logs else subprocess.DEVNULL  # noqa: SIM115
        try:
            process = _launch(grader, copy, exports_fd, home, set(done), cgroup, log)
            for report in _reports(process, deadline):
                index = report.pop("index")
                if 0 <= index < len(hidden_tests) and index not in done:
                    done[index] = report
            process.kill()
            process.wait()
            process.stdout.close()
        finally:
            peak = max(peak, cgroup.peak_memory() or 0)
            cgroup.remove()
            if logs:
                log.close()
        missing = [i for i in range(len(hidden_tests)) if i not in done]
        if missing:  # the process died in (or ran out of time at) the first test it did not report
            test = hidden_tests[missing[0]]
            done[missing[0]] = {"question": test.question, "name": test.name, "weight": test.weight,
                                "passed": False, "hint": DIED, "over_budget": True}  # fmt: skip
            if time.monotonic() >= deadline:
                for index in missing[1:]:
                    test = hidden_tests[index]
                    done[index] = {"question": test.question, "name": test.name, "weight": test.weight,
                                   "passed": False, "hint": DIED, "over_budget": True}  # fmt: skip
    return [done[i] for i in range(len(hidden_tests))], peak or None
