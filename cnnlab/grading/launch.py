"""Start a grader process in its control groups and under its resource limits.

``python -I -m cnnlab.grading.launch [--cgroup DIR]... [--processes N] [--file-size B]
[--address-space B] [--kill-uid UID] -- COMMAND...``

A separate first step rather than a ``preexec_fn``, which is unsafe in a grader that runs
several submissions on threads. It imports only the standard library (and cnnlab modules that
do) and runs as the grader's user (root), before ``setpriv`` drops to the submission's uid.

It also makes sure that what it starts dies with the grader, even when the grader is killed by
SIGKILL, which the grader cannot handle (otherwise a killed grader's sandboxes would run on,
adopted by init):

- without ``--kill-uid`` it asks the kernel for SIGKILL when the grader dies, then ``exec``\\ s
  the command, which keeps the request;
- with ``--kill-uid UID`` (the command drops to that uid) the request would not reach far
  enough: it does not survive the change of user, and the parent-death signal of a process
  running as UID is sent by its parent, a bwrap that has dropped its capabilities and may not
  signal another user. So this process stays, as root, the command's parent: it starts the
  command in a child, waits for it and exits with its status; when the grader dies the kernel
  sends it SIGTERM, and it kills every process of UID (the sandbox, whatever it started) and
  exits. Each submission has a uid of its own, so nothing else is touched.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import time

from cnnlab.grading.accounts import processes_of
from cnnlab.grading.limits import apply_rlimits

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class GraderDied(Exception):
    pass


def die_with_parent(signal_number: int) -> None:
    """Have the kernel send ``signal_number`` to this process when its parent (the thread that
    started it) dies; exit at once if that has already happened."""
    parent = os.getppid()
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal_number, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _enter_and_exec(args, command: list[str]) -> None:
    for folder in args.cgroup:
        with open(os.path.join(folder, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))
    apply_rlimits(args.processes, args.file_size, args.address_space)
    os.execvp(command[0], command)


def kill_everything_of(uid: int, seconds: float = 10.0) -> None:
    """SIGKILL every process of ``uid`` until none is left (or ``seconds`` have passed)."""
    deadline = time.monotonic() + seconds
    while (left := processes_of(uid)) and time.monotonic() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.02)


def _grader_died(signal_number, frame) -> None:
    raise GraderDied


def supervise(args, command: list[str]) -> int:
    """Run ``command`` in a child; on the grader's death, kill everything of ``args.kill_uid``."""
    signal.signal(signal.SIGTERM, _grader_died)
    die_with_parent(signal.SIGTERM)
    child = os.fork()
    if child == 0:
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            die_with_parent(signal.SIGKILL)  # and the command dies with this process
            _enter_and_exec(args, command)
        finally:
            os._exit(127)
    # the child has the descriptors it was given (pipes the grader reads to their end): let go of them
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    try:
        _, status = os.waitpid(child, 0)
        return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    except GraderDied:
        kill_everything_of(args.kill_uid)
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return 128 + signal.SIGTERM


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cnnlab.grading.launch")
    parser.add_argument("--cgroup", action="append", default=[], help="a cgroup folder to join (repeatable)")
    parser.add_argument("--processes", type=int, required=True)
    parser.add_argument("--file-size", type=int, required=True)
    parser.add_argument("--address-space", type=int, default=None)
    parser.add_argument("--kill-uid", type=int, default=None, help="the uid the command drops to")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run after --")
    if args.kill_uid is None:
        die_with_parent(signal.SIGKILL)
        _enter_and_exec(args, command)
    raise SystemExit(supervise(args, command))


if __name__ == "__main__":
    main()
