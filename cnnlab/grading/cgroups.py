"""A control group of its own for each sandbox (and for the trusted side): resident memory,
CPU share and number of tasks, where the machine lets the grader make one.

Version 2 (one unified hierarchy) is used where the machine delegates it, the version-1
``memory``, ``cpu`` and ``pids`` hierarchies where that is what it has (as on the development
machines). Without either, the caller falls back to resource limits and says so.
Memory in a tmpfs (``/tmp``, ``/dev/shm``) is charged to the group that wrote it, so it
counts against the same limit.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000
# The groups a grader makes, and the pid of the grader that made them (see Sandbox, Execution
# and checking): cnnlab-sandbox-UID-PID, cnnlab-executor-UID-PID, cnnlab-trusted-PID-NAME
GRADER_GROUP = re.compile(r"^cnnlab-(?:(?:sandbox|executor)-\d+-(?P<pid>\d+)|trusted-(?P<trusted_pid>\d+)-.+)$")


def own_path(controller: str) -> str:
    """The grader's own cgroup in ``controller``'s hierarchy (``""`` for version 2), from
    /proc/self/cgroup: sandboxes' groups are made inside it, so that a limit or an account on
    the grader (a container's, a scheduler job's) covers them too."""
    try:
        for line in open("/proc/self/cgroup"):
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in (controllers.split(",") if controllers else [""]):
                return path.lstrip("/")
    except (OSError, ValueError):
        pass
    return ""


def version() -> int | None:
    """2 for a unified hierarchy we can write, 1 for v1 controllers, None for neither."""
    if (ROOT / "cgroup.controllers").exists():
        return 2 if os.access(ROOT, os.W_OK) else None
    if all((ROOT / c / "cgroup.procs").exists() for c in ("memory", "cpu", "pids")):
        return 1 if all(os.access(ROOT / c, os.W_OK) for c in ("memory", "cpu", "pids")) else None
    return None


class Cgroup:
    """``create()``, then ``enter()`` from the child before exec, then ``remove()``."""

    def __init__(self, name: str, memory: int, cpus: float, tasks: int):
        self.name, self.memory, self.cpus, self.tasks = name, memory, cpus, tasks
        self.version: int | None = None
        self.folders: dict[str, Path] = {}  # controller ("memory", "cpu", "pids", or "" for v2) -> folder

    def create(self) -> bool:
        """Make the group and set its limits; False (and nothing left behind) if this machine won't."""
        self.version = version()
        quota = f"{int(self.cpus * PERIOD_US)}"
        try:
            if self.version == 2:  # at the root: a non-root v2 group with processes cannot have children
                enabled = (ROOT / "cgroup.subtree_control").read_text().split()
                if not {"memory", "pids", "cpu"} <= set(enabled):
                    (ROOT / "cgroup.subtree_control").write_text("+memory +pids +cpu")
                folder = ROOT / self.name
                folder.mkdir()
                self.folders[""] = folder
                (folder / "memory.max").write_text(str(self.memory))
                if (folder / "memory.swap.max").exists():
                    (folder / "memory.swap.max").write_text("0")
                (folder / "pids.max").write_text(str(self.tasks))
                (folder / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            elif self.version == 1:
                for controller in ("memory", "cpu", "pids"):
                    folder = ROOT / controller / own_path(controller) / self.name
                    folder.mkdir()
                    self.folders[controller] = folder
                (self.folders["memory"] / "memory.limit_in_bytes").write_text(str(self.memory))
                (self.folders["cpu"] / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (self.folders["cpu"] / "cpu.cfs_quota_us").write_text(quota)
                (self.folders["pids"] / "pids.max").write_text(str(self.tasks))
            else:
                return False
        except OSError:
            self.remove()
            self.version = None
            return False
        return True

    def enter(self) -> None:
        """Move the calling process into the group (call it in ``preexec_fn``)."""
        for folder in self.folders.values():
            (folder / "cgroup.procs").write_text(str(os.getpid()))

    def _memory_file(self, v1: str, v2: str) -> Path | None:
        if self.version == 1:
            return self.folders["memory"] / v1
        if self.version == 2:
            return self.folders[""] / v2
        return None

    def peak_memory(self) -> int | None:
        """The most memory the group has held at once, in bytes (None where unknown)."""
        path = self._memory_file("memory.max_usage_in_bytes", "memory.peak")
        try:
            return int(path.read_text()) if path else None
        except (OSError, ValueError):
            return None

    def out_of_memory_kills(self) -> int:
        """How many processes the kernel killed for going over the memory limit."""
        path = self._memory_file("memory.oom_control", "memory.events")
        try:
            fields = dict(line.split() for line in path.read_text().splitlines()) if path else {}
            return int(fields.get("oom_kill", 0))
        except (OSError, ValueError):
            return 0

    def pids(self) -> list[int]:
        pids: set[int] = set()
        for folder in self.folders.values():
            try:
                pids.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
            except OSError:
                continue
        return sorted(pids)

    def remove(self) -> None:
        """Kill whatever is still in the group, then delete it."""
        for folder in self.folders.values():
            for _ in range(200):
                for pid in self.pids():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
        self.folders = {}

    def describe(self) -> str:
        if not self.folders:
            return "none"
        return f"cgroup v{self.version}: {self.memory // (1 << 20)} MiB memory, {self.cpus:g} CPU, at most {self.tasks} tasks"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_orphans() -> list[str]:
    """Delete the groups of graders that no longer run, killing what is left in them; return
    their names.

    A grader killed by SIGKILL cannot remove its groups, and a sandbox that outlived it (where
    the kernel could not be asked to kill it with its grader) would run on in them. A group
    whose grader's pid is alive is never touched.
    """
    hierarchies = {2: [("", ROOT)], 1: [(c, ROOT / c / own_path(c)) for c in ("memory", "cpu", "pids")]}
    removed: set[str] = set()
    for controller, parent in hierarchies.get(version(), []):
        try:
            folders = [f for f in parent.iterdir() if f.is_dir()]
        except OSError:
            continue
        for folder in folders:
            match = GRADER_GROUP.match(folder.name)
            if not match or _alive(int(match["pid"] or match["trusted_pid"])):
                continue
            orphan = Cgroup(folder.name, 0, 0, 0)
            orphan.version, orphan.folders = version(), {controller: folder}
            orphan.remove()
            removed.add(folder.name)
    return sorted(removed)
