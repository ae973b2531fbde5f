"""Start a grader process in its control groups and under its resource limits, then ``exec``.

``python -I -m cnnlab.grading.launch [--cgroup DIR]... [--processes N] [--file-size B]
[--address-space B] -- COMMAND...``

A separate first step rather than a ``preexec_fn``, which is unsafe in a grader that runs
several submissions on threads. It imports only the standard library and runs as the
grader's user (root), before ``setpriv`` drops to the submission's uid.
"""

from __future__ import annotations

import argparse
import os

from cnnlab.grading.limits import apply_rlimits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="cnnlab.grading.launch")
    parser.add_argument("--cgroup", action="append", default=[], help="a cgroup folder to join (repeatable)")
    parser.add_argument("--processes", type=int, required=True)
    parser.add_argument("--file-size", type=int, required=True)
    parser.add_argument("--address-space", type=int, default=None)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run after --")
    for folder in args.cgroup:
        with open(os.path.join(folder, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))
    apply_rlimits(args.processes, args.file_size, args.address_space)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
