"""The sandbox's first step, run as root inside fresh mount, PID and network namespaces
(``unshare --mount --pid --net --fork``): hide the instructors' folders, bring up an
isolated loopback, set resource limits, become an unprivileged user, then exec the runner.

Run as ``python .../cnnlab/grading/jail.py SPEC.json`` (a script, so that nothing but the
standard library is imported as root); SPEC names the workdir, the folders to hide, the
folders to expose, the user and group ids, the limits and the runner's command line.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile


def _lower(kind: int, value: int) -> None:
    """Set both limits to ``value``, never above the hard limit already in force."""
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))


def apply_limits(limits: dict) -> None:
    """Address space, processes, file size, no core dumps (also used without namespaces)."""
    _lower(resource.RLIMIT_AS, limits["memory"])
    _lower(resource.RLIMIT_NPROC, limits["processes"])
    _lower(resource.RLIMIT_FSIZE, limits["file_size"])
    _lower(resource.RLIMIT_CORE, 0)


def _mount(*arguments: str) -> None:
    subprocess.run(["mount", *arguments], check=True)


def _closed_ancestor(path: str) -> str | None:
    """The highest folder above ``path`` that other users cannot enter (such as /root), if any."""
    parts = os.path.realpath(path).split(os.sep)[1:]
    for depth in range(1, len(parts)):
        folder = os.sep + os.sep.join(parts[:depth])
        if not os.stat(folder).st_mode & 0o001:
            return folder
    return None


def expose(paths: list[str]) -> None:
    """Make ``paths`` reachable for the sandbox user when they lie under a closed folder (the
    Python installation under /root, say): cover that folder with an empty tmpfs and bind
    just ``paths`` back into it. Everything else in the closed folder stays out of reach."""
    groups: dict[str, list[str]] = {}
    for path in paths:
        ancestor = _closed_ancestor(path)
        if ancestor:
            groups.setdefault(ancestor, []).append(os.path.realpath(path))
    for ancestor, inside in groups.items():
        stashes = []
        for path in inside:
            stash = tempfile.mkdtemp(prefix="cnnlab-stash-")
            _mount("--bind", path, stash)
            stashes.append((path, stash))
        _mount("-t", "tmpfs", "-o", "mode=0755,size=64k", "tmpfs", ancestor)
        for path, stash in stashes:
            os.makedirs(path, exist_ok=True)
            _mount("--bind", stash, path)
            subprocess.run(["umount", stash], check=True)
            os.rmdir(stash)


def main() -> None:
    spec = json.loads(open(sys.argv[1]).read())
    _mount("--make-rprivate", "/")
    expose(spec["expose"])
    for folder in spec["hide"]:
        # An empty, read-only file system over each hidden folder, in this namespace only.
        _mount("-t", "tmpfs", "-o", "ro,size=4k,mode=0555", "tmpfs", folder)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)  # kernel <-> runner; no route out
    os.setgroups([])
    os.setgid(spec["gid"])
    apply_limits(spec["limits"])
    os.setuid(spec["uid"])
    os.chdir(spec["workdir"])
    os.execve(spec["command"][0], spec["command"], spec["env"])


if __name__ == "__main__":
    main()
