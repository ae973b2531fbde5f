"""Resource limits for one submission's sandbox."""

from __future__ import annotations

from dataclasses import asdict, dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Times in seconds, sizes in bytes."""

    cell_timeout: int = 300  # wall clock per cell
    notebook_timeout: int = 900  # wall clock for the whole notebook
    # Address space per process (RLIMIT_AS). TensorFlow alone maps about 3 GB, and lab 03 holds
    # two VGG16s (553 MB of weights each) and builds VGG A to E: under 10 GiB its kernel dies,
    # under 12 GiB it finishes. Virtual, not resident: a batch of parallel jobs uses far less RAM.
    memory: int = 12 * 1024 * MB
    processes: int = 512  # processes and threads of the sandbox user (RLIMIT_NPROC)
    file_size: int = 256 * MB  # largest file the sandbox may write (RLIMIT_FSIZE)
    disk: int = 1024 * MB  # size of the sandbox's scratch file system, when it can be mounted
    output: int = 2 * MB  # notebook output kept; the rest is dropped
    submission_size: int = 20 * MB  # largest notebook file accepted
    export_size: int = 64 * MB  # largest exported file read back

    def as_dict(self) -> dict:
        return asdict(self)
