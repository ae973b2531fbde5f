"""One submission's kernel, started in its sandbox and torn down without a trace.

``Sandbox.start()`` launches a Jupyter kernel, and nothing else, under the isolation level
(:mod:`~cnnlab.grading.isolation`): no student code runs until the executor sends the first
cell. Before that, the grader takes two handles from the fresh sandbox: a descriptor of its
exports folder and (``bwrap`` level) of its network namespace, where the executor reaches
the kernel. ``Sandbox.stop()`` kills every process of it; the exports stay readable through
the descriptor (a tmpfs lives as long as a descriptor holds it). ``Sandbox.close()`` lets go.

Clean-up never makes root follow a path the sandbox could have changed: under ``bwrap`` there
is nothing to clean (the namespaces and their tmpfs vanish with the last process and handle);
under ``uid`` the submission's files are deleted by a process running as the submission's
own uid, which can remove nothing the submission could not.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.grading import accounts, bubblewrap
from cnnlab.grading.cgroups import Cgroup
from cnnlab.grading.isolation import Isolation, needed_paths
from cnnlab.grading.kernel_connection import connection_info
from cnnlab.grading.limits import ADDRESS_SPACE_FACTOR, Limits

START_TIMEOUT_S = 30


class SandboxError(RuntimeError):
    """The sandbox could not be set up (the grader's problem, not the submission's)."""


@dataclass
class Teardown:
    leftover_processes: int = 0
    out_of_memory: bool = False
    peak_memory: int | None = None  # bytes, from the sandbox's cgroup


@dataclass
class KernelEnvironment:
    profile: str
    threads: int
    workdir: str
    exports: str
    data_dir: str | None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        home = self.workdir
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": home,
            "USER": "student",
            "LOGNAME": "student",
            "LANG": "C.UTF-8",
            "CNNLAB_EXPORT_DIR": self.exports,
            "CNNLAB_OFFLINE": "1",
            "CNNLAB_PROFILE": self.profile,
            "CNNLAB_CACHE": f"{home}/.cache/cnnlab",
            "CNNLAB_LIVEPLOT": "0",
            "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": f"{home}/.config/matplotlib",
            "KERAS_HOME": f"{home}/.keras",
            "IPYTHONDIR": f"{home}/.ipython",
            "JUPYTER_RUNTIME_DIR": f"{home}/.local/share/jupyter/runtime",
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "TF_NUM_INTRAOP_THREADS": str(self.threads),
            "TF_NUM_INTEROP_THREADS": str(self.threads),
            "OMP_NUM_THREADS": str(self.threads),
            **self.extra,
        }
        if self.data_dir:
            env["CNNLAB_DATA"] = self.data_dir
        return env


def kernel_command(connection_file: str) -> list[str]:
    return [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file, "--HistoryManager.enabled=False"]


def _pipe_with(data: bytes) -> int:
    """A pipe's read end, already holding ``data`` (bwrap copies it into a file)."""
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    return read


def _read_all(fd: int, deadline: float) -> bytes:
    data = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data


class Sandbox:
    """``start()``, let the executor run the notebook, ``stop()``, read ``exports_fd``, ``close()``."""

    def __init__(
        self,
        isolation: Isolation,
        limits: Limits,
        private: Path,
        profile: str = "smoke",
        threads: int = 1,
        data_dir: str | None = None,
    ):
        self.isolation, self.limits, self.private = isolation, limits, private
        self.profile, self.threads = profile, threads
        self.data_dir = os.path.realpath(data_dir) if data_dir else None
        self.uid = accounts.fresh_uid() if isolation.level != "none" else os.getuid()
        self.cgroup = Cgroup(f"cnnlab-sandbox-{self.uid}-{os.getpid()}", limits.memory, threads, limits.processes)
        self.connection = connection_info(own_namespace=isolation.level == "bwrap")
        self.process: subprocess.Popen | None = None
        self.sandbox_init: int | None = None  # bwrap: the first process in the sandbox's PID namespace
        self.exports_fd: int | None = None
        self.netns_fd: int | None = None
        self.host_folders: list[Path] = []  # uid and none levels: the submission's folders on the host
        self.exposure: list[str] = []  # uid level: the bwrap that shows a closed Python installation

    # -- start --------------------------------------------------------------------------------

    def _launcher(self) -> list[str]:
        command = [sys.executable, "-I", "-m", "cnnlab.grading.launch"]
        for folder in self.cgroup.folders.values():
            command += ["--cgroup", str(folder)]
        command += ["--processes", str(self.limits.processes), "--file-size", str(self.limits.file_size)]
        # Address space as well as the cgroup: a 20 GB allocation fails at once (MemoryError)
        # instead of filling the machine's memory up to the cgroup's limit first.
        command += ["--address-space", str(ADDRESS_SPACE_FACTOR * self.limits.memory)]
        if self.isolation.level != "none":  # killed with the grader, even by SIGKILL (see launch.py)
            command += ["--kill-uid", str(self.uid)]
        return [*command, "--"]

    def start(self) -> None:
        self.cgroup.create()
        if self.isolation.level == "bwrap":
            self._start_bwrap()
        else:
            self._start_on_host()

    def _start_bwrap(self) -> None:
        bwrap = self.isolation.bwrap
        read_only = needed_paths(self.data_dir)
        token = os.urandom(16).hex()
        info_read, info_write = os.pipe()
        block_read, block_write = os.pipe()
        fds = {
            "connection": _pipe_with(json.dumps(self.connection).encode()),
            "passwd": _pipe_with(accounts.passwd_line(self.uid, bubblewrap.WORKDIR).encode()),
            "ready": _pipe_with(token.encode()),
            "info": info_write,
            "block": block_read,
        }
        env = KernelEnvironment(
            self.profile, self.threads, bubblewrap.WORKDIR, bubblewrap.EXPORTS, self.data_dir
        ).as_dict()
        sizes = {"workdir": self.limits.disk, "scratch": self.limits.scratch, "exports": self.limits.exports_size}
        inner = bubblewrap.sandbox_command(
            bwrap, read_only, sizes, env, fds, kernel_command(bubblewrap.CONNECTION_FILE)
        )
        command = [
            *self._launcher(),
            *bubblewrap.exposure_command(bwrap, [*read_only, bwrap]),
            *bubblewrap.drop_to(self.uid),
            *inner,
        ]
        try:
            self.process = subprocess.Popen(
                command, pass_fds=tuple(fds.values()), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, start_new_session=True, cwd="/",
            )  # fmt: skip
            self.start_messages = _StartMessages(self.process.stderr)
        finally:
            for fd in (fds["connection"], fds["passwd"], fds["ready"], info_write, block_read):
                os.close(fd)
        deadline = time.monotonic() + START_TIMEOUT_S
        info = _read_all(info_read, deadline)
        os.close(info_read)
        try:
            self.sandbox_init = int(json.loads(info)["child-pid"])
            self._take_handles(token, deadline)
        except (ValueError, KeyError, TypeError, OSError) as problem:
            os.close(block_write)
            self.stop()
            raise SandboxError(f"the sandbox did not start: {self.start_messages.text()}") from problem
        os.write(block_write, b"go")  # from here on, the kernel starts
        os.close(block_write)

    def _take_handles(self, token: str, deadline: float) -> None:
        """Once the sandbox's root is in place (its token readable) and before anything runs in
        it, open its exports folder and its network namespace."""
        root = f"/proc/{self.sandbox_init}/root"
        while True:
            try:
                fd = os.open(f"{root}{bubblewrap.READY_FILE}", os.O_RDONLY | os.O_NOFOLLOW)
                with os.fdopen(fd, "rb") as ready:
                    if ready.read(64).decode() == token:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise OSError("the sandbox's file system never appeared")
            time.sleep(0.005)
        self.exports_fd = os.open(f"{root}{bubblewrap.EXPORTS}", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        self.netns_fd = os.open(f"/proc/{self.sandbox_init}/ns/net", os.O_RDONLY)

    def _start_on_host(self) -> None:
        """The ``uid`` and ``none`` levels: the submission's own folders in the grader's private one."""
        workdir, exports = self.private / "work", self.private / "exports"
        for folder, mode in ((workdir, 0o700), (exports, 0o755)):
            folder.mkdir()
            os.chmod(folder, mode)
            os.chown(folder, self.uid, self.uid)
            self.host_folders.append(folder)
        connection_file = workdir / "kernel.json"
        connection_file.write_text(json.dumps(self.connection))
        os.chown(connection_file, self.uid, self.uid)
        self.exports_fd = os.open(exports, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        env = KernelEnvironment(self.profile, self.threads, str(workdir), str(exports), self.data_dir).as_dict()
        drop = []
        if self.isolation.level == "uid":
            bwrap, reach = self.isolation.bwrap, needed_paths(self.data_dir)
            self.exposure = bubblewrap.exposure_command(bwrap, reach, [str(self.private)]) if bwrap else []
            drop = [*self.exposure, *bubblewrap.drop_to(self.uid)]
        command = [*self._launcher(), *drop, *kernel_command(str(connection_file))]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env, cwd=workdir, start_new_session=True,
        )  # fmt: skip

    # -- stop ---------------------------------------------------------------------------------

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> Teardown:
        """Kill every process of the sandbox; return what the teardown found."""
        if self.sandbox_init:
            _kill(self.sandbox_init)  # the PID namespace's first process: the kernel kills the rest
        if self.process is not None:
            if self.isolation.level != "bwrap":
                for pid in accounts.processes_of(self.uid) if self.isolation.level == "uid" else []:
                    _kill(pid)
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill(self.process.pid)
                self.process.wait()
        teardown = Teardown(out_of_memory=self.cgroup.out_of_memory_kills() > 0, peak_memory=self.cgroup.peak_memory())
        self.cgroup.remove()
        if self.isolation.level != "none":
            deadline = time.monotonic() + 10
            while (left := accounts.processes_of(self.uid)) and time.monotonic() < deadline:
                for pid in left:
                    _kill(pid)
                time.sleep(0.05)
            teardown.leftover_processes = len(accounts.processes_of(self.uid))
        return teardown

    # -- close --------------------------------------------------------------------------------

    def close(self) -> None:
        """Let go of the handles; under ``uid``, delete what the submission left, as its own uid."""
        for fd in (self.exports_fd, self.netns_fd):
            if fd is not None:
                os.close(fd)
        self.exports_fd = self.netns_fd = None
        if self.isolation.level == "uid":
            _remove_files_of(self.uid, self.host_folders, self.exposure)
            _remove_ipc_of(self.uid)
        for folder in self.host_folders:
            if self.isolation.level == "none":
                shutil.rmtree(folder, ignore_errors=True)
            else:
                try:
                    folder.rmdir()  # emptied by the submission's uid; the entry itself is in our folder
                except OSError:
                    pass
        self.host_folders = []


class _StartMessages:
    """bwrap's own error messages, which come before the kernel starts; what comes after (the
    kernel's, so the student's) is read and dropped, so that it can neither block the
    sandbox on a full pipe nor reach the grader's disk or output."""

    HEAD = 2000

    def __init__(self, stream):
        self.head = b""
        self.thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self.thread.start()

    def _drain(self, stream) -> None:
        with stream:
            while chunk := stream.read1(65536):
                if len(self.head) < self.HEAD:
                    self.head += chunk[: self.HEAD - len(self.head)]

    def text(self) -> str:
        self.thread.join(timeout=5)
        return " ".join(self.head.decode("utf-8", "replace").split())[-500:] or "no message"


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


CLEANUP = """
import os, sys
for top in sys.argv[1:]:
    for folder, dirs, files in os.walk(top, topdown=False):
        for name in files + dirs:
            path = os.path.join(folder, name)
            try:
                if os.lstat(path).st_uid == os.getuid():
                    os.rmdir(path) if name in dirs and not os.path.islink(path) else os.unlink(path)
            except OSError:
                pass
"""


def _remove_files_of(uid: int, folders: list[Path], exposure: list[str]) -> None:
    """Delete, as ``uid`` itself (started as its kernel was), its files in its folders and in
    the shared scratch folders."""
    places = [str(f) for f in folders] + [p for p in ("/tmp", "/var/tmp", "/dev/shm") if os.path.isdir(p)]
    subprocess.run(
        [*exposure, *bubblewrap.drop_to(uid), sys.executable, "-I", "-c", CLEANUP, *places],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, cwd="/",
    )  # fmt: skip


def _remove_ipc_of(uid: int) -> None:
    """Remove System V shared memory, queues and semaphores that ``uid`` created (by id: no paths)."""
    for kind, flag, key in (("shm", "-m", "shmid"), ("msg", "-q", "msqid"), ("sem", "-s", "semid")):
        try:
            header, *lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        except (OSError, ValueError):
            continue
        for line in lines:
            entry = dict(zip(header.split(), line.split(), strict=False))
            if str(uid) in (entry.get("uid"), entry.get("cuid")):
                subprocess.run(["ipcrm", flag, entry[key]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
