"""User ids for the grader's unprivileged processes: a fresh one for every submission.

A uid that no process holds and no account names is drawn at random from a range far above
the ones that distributions hand out (or from ``CNNLAB_UID_RANGE=FIRST-LAST``, where only some
uids exist, as in a rootless container whose user namespace maps 65,536 of them), so that
nothing on the machine belongs to it: a
submission can neither read what another one left behind (under the ``uid`` level, where
``/tmp`` is shared) nor signal a process of another submission. The kernel knows no such
user: the sandbox gets an ``/etc/passwd`` line of its own.
"""

from __future__ import annotations

import os
import secrets
import threading

FIRST = 1_100_000_000
COUNT = 900_000_000  # below 2**31, since some tools read uids as signed numbers


def uid_range() -> tuple[int, int]:
    """``(first, count)``: ``CNNLAB_UID_RANGE`` (``FIRST-LAST``, inclusive) or the default."""
    text = os.environ.get("CNNLAB_UID_RANGE")
    if not text:
        return FIRST, COUNT
    try:
        first, last = (int(part) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"CNNLAB_UID_RANGE must be FIRST-LAST, e.g. 10000-65000, got {text!r}") from None
    if not 1000 <= first <= last < 2**31:
        raise ValueError(f"CNNLAB_UID_RANGE must lie between 1000 and 2**31 - 1, got {text!r}")
    return first, last - first + 1


_lock = threading.Lock()
_handed_out: set[int] = set()


def _named_ids(path: str) -> set[int]:
    try:
        with open(path) as table:
            return {int(fields[2]) for line in table if len(fields := line.split(":")) > 2 and fields[2].isdigit()}
    except OSError:
        return set()


def _running_ids() -> set[int]:
    ids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ids.add(os.stat(f"/proc/{entry}").st_uid)
            except OSError:
                continue
    return ids


def fresh_uid() -> int:
    """A uid (used as the gid too) that no account, group or running process has, and that
    this grader has not handed out before."""
    first, count = uid_range()
    with _lock:
        taken = _named_ids("/etc/passwd") | _named_ids("/etc/group") | _running_ids() | _handed_out
        if len(taken & set(range(first, first + min(count, 1 << 20)))) >= count:
            raise RuntimeError(f"every uid of CNNLAB_UID_RANGE ({first}-{first + count - 1}) is taken")
        while True:
            uid = first + secrets.randbelow(count)
            if uid not in taken:
                _handed_out.add(uid)
                return uid


def processes_of(uid: int) -> list[int]:
    """The pids of every process whose real or effective uid is ``uid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                for line in status:
                    if line.startswith("Uid:"):
                        real, effective = (int(v) for v in line.split()[1:3])
                        if uid in (real, effective):
                            found.append(int(entry))
                        break
        except (OSError, ValueError):
            continue
    return found


def passwd_line(uid: int, home: str) -> str:
    """The one account the sandbox knows: ``student``, with ``uid`` and ``home``."""
    return f"student:x:{uid}:{uid}:student:{home}:/bin/false\n"
