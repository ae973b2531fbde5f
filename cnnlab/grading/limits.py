"""What one submission may use, and how the limits are put in force on a process."""

from __future__ import annotations

import resource
from dataclasses import asdict, dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Times in seconds, sizes in bytes."""

    cell_timeout: int = 300  # wall clock per cell
    notebook_timeout: int = 900  # wall clock for the whole notebook
    # Resident memory of the whole sandbox, enforced by a memory cgroup where the machine has
    # one; each process's address space (RLIMIT_AS) is capped too, at ADDRESS_SPACE_FACTOR
    # times this, since TensorFlow reserves far more address space than it uses.
    memory: int = 6 * 1024 * MB
    processes: int = 512  # processes and threads (pids cgroup, and RLIMIT_NPROC of the submission's own uid)
    file_size: int = 256 * MB  # largest file the sandbox may write (RLIMIT_FSIZE)
    disk: int = 1024 * MB  # the working folder's tmpfs
    scratch: int = 256 * MB  # each of /tmp and /dev/shm
    exports_size: int = 768 * MB  # the exports' tmpfs, and the most the trusted side reads in all
    exports_count: int = 256  # the most files the trusted side accepts in the exports
    message_size: int = 64 * MB  # largest single message accepted from the kernel
    submission_size: int = 20 * MB  # largest notebook file accepted
    trusted_memory: int = 2 * 1024 * MB  # the trusted side (hidden tests), by cgroup where there is one

    def as_dict(self) -> dict:
        return asdict(self)


# TensorFlow reserves several GB of address space it never touches (lab 03's kernel died under
# 10 GiB and finished under 12 GiB), so the address-space cap is this many times the resident one.
ADDRESS_SPACE_FACTOR = 2


def _lower(kind: int, value: int) -> None:
    """Set both limits to ``value``, never above the hard limit already in force."""
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))


OPEN_FILES = 1024  # per process: times the task limit, well under the host's file-max


def apply_rlimits(processes: int, file_size: int, address_space: int | None) -> None:
    """Processes of the (new) real uid, file size, open files, no core dumps, and optionally
    address space.

    Call it in the child before ``exec`` (``preexec_fn``): the limits are inherited by every
    process the sandbox starts.
    """
    _lower(resource.RLIMIT_NPROC, processes)
    _lower(resource.RLIMIT_FSIZE, file_size)
    _lower(resource.RLIMIT_NOFILE, OPEN_FILES)
    _lower(resource.RLIMIT_CORE, 0)
    if address_space is not None:
        _lower(resource.RLIMIT_AS, address_space)
