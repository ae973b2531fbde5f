"""Per-sandbox control groups, when the machine lets the grader make them: a CPU quota, so
that one submission (a fork bomb, say) cannot starve the others running beside it, and a
cap on its number of tasks. Version 1 (``cpu`` and ``pids`` hierarchies) and version 2
(unified) are both handled; without either, the sandbox relies on its resource limits."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


class SandboxCgroups:
    """``create()`` the groups, ``enter()`` them from the child before exec, ``remove()`` them."""

    def __init__(self, name: str, cpus: float, tasks: int):
        self.name, self.cpus, self.tasks = name, cpus, tasks
        self.folders: list[Path] = []

    def create(self) -> bool:
        quota = str(int(self.cpus * PERIOD_US))
        try:
            if (ROOT / "cgroup.controllers").exists():  # version 2
                folder = ROOT / self.name
                folder.mkdir()
                self.folders = [folder]
                (folder / "cpu.max").write_text(f"{quota} {PERIOD_US}")
                (folder / "pids.max").write_text(str(self.tasks))
            else:  # version 1
                cpu, pids = ROOT / "cpu" / self.name, ROOT / "pids" / self.name
                cpu.mkdir()
                self.folders.append(cpu)
                (cpu / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (cpu / "cpu.cfs_quota_us").write_text(quota)
                pids.mkdir()
                self.folders.append(pids)
                (pids / "pids.max").write_text(str(self.tasks))
        except OSError:
            self.remove()
            return False
        return True

    def enter(self) -> None:
        """Move the calling process into the groups (call it in ``preexec_fn``)."""
        for folder in self.folders:
            (folder / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self) -> None:
        for folder in self.folders:
            for _ in range(100):
                pids = (
                    [int(p) for p in (folder / "cgroup.procs").read_text().split()]
                    if (folder / "cgroup.procs").exists()
                    else []
                )
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    folder.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)
        self.folders = []

    def describe(self) -> str:
        return f"{self.cpus:g} CPU, at most {self.tasks} tasks (cgroups)" if self.folders else "none (no cgroups)"
