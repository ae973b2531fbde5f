"""Run an assembled notebook in a sandbox and make sure nothing of it survives.

With root and ``unshare`` (the normal case on a grading server or in a Gradescope
container), every submission gets

- its own mount, PID and network namespaces: no network, only an isolated loopback; the
  instructors' folders (hidden tests, output, other submissions) covered by empty file
  systems; and when the grader kills the namespace's first process, the kernel kills every
  process inside, including ``setsid`` daemons;
- its own user id (64000 + job slot), so processes are limited and accounted per submission;
- a size-limited tmpfs as its working folder, so it cannot fill the disk;
- resource limits (address space, processes, file size, no core dumps) and a wall clock.

Without root, it falls back to a new session with the same resource limits under the
grader's own user; the result says which isolation was in force.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from cnnlab.grading.cgroups import SandboxCgroups
from cnnlab.grading.jail import apply_limits
from cnnlab.grading.limits import Limits

BASE_UID = 64000


@dataclass
class RunReport:
    state: str  # finished | timeout | kernel-died | crashed
    seconds: float
    isolation: dict
    status: dict = field(default_factory=dict)
    leftover_processes: int = 0
    diagnostics: str = ""  # the tail of the sandbox's own log, for instructors (never in feedback)


def reachable_paths(data_dir: str | None) -> list[str]:
    """What the sandbox user must be able to read: the Python installation, cnnlab, the data."""
    import cnnlab

    paths = [sys.prefix, sys.base_prefix, str(Path(cnnlab.__file__).resolve().parent.parent)]
    return paths + ([str(Path(data_dir).resolve())] if data_dir else [])


def namespaces_available() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None and shutil.which("mount") is not None


def _sandbox_env(workdir: Path, export_dir: Path, profile: str, threads: int, token: str) -> dict:
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir / "home"),
        "LANG": "C.UTF-8",
        "CNNLAB_EXPORT_DIR": str(export_dir),
        "CNNLAB_OFFLINE": "1",
        "CNNLAB_PROFILE": profile,
        "CNNLAB_CACHE": str(workdir / "home" / "cache"),
        "CNNLAB_LIVEPLOT": "0",
        "CNNLAB_SANDBOX": token,
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(workdir / "home" / "matplotlib"),
        "KERAS_HOME": str(workdir / "home" / "keras"),
        "IPYTHONDIR": str(workdir / "home" / "ipython"),
        "JUPYTER_RUNTIME_DIR": str(workdir / "home" / "runtime"),
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
    }
    if os.environ.get("CNNLAB_DATA"):
        env["CNNLAB_DATA"] = str(Path(os.environ["CNNLAB_DATA"]).resolve())
    return env


def _processes(predicate) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if predicate(int(entry)):
                    found.append(int(entry))
            except OSError:
                continue
    return found


def _owned_by(uid: int):
    return lambda pid: os.stat(f"/proc/{pid}").st_uid == uid


def _carries(token: str):
    return lambda pid: f"CNNLAB_SANDBOX={token}".encode() in open(f"/proc/{pid}/environ", "rb").read()


def _kill_all(predicate, deadline_s: float = 10.0) -> int:
    """SIGKILL every process matching ``predicate`` until none is left; return how many remain."""
    stop = time.monotonic() + deadline_s
    while True:
        pids = _processes(predicate)
        if not pids or time.monotonic() > stop:
            return len(pids)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


class Sandbox:
    """One submission's sandbox: ``with Sandbox(...) as box: report = box.run(notebook)``.

    Leaving the ``with`` block unmounts and deletes the working folder; read the exports
    (``box.export_dir``) before that.
    """

    def __init__(self, limits: Limits, hide: list[Path], profile: str = "smoke", slot: int = 0, threads: int = 1):
        self.limits, self.profile, self.threads = limits, profile, threads
        needed = reachable_paths(os.environ.get("CNNLAB_DATA"))
        folders = {str(Path(p).resolve()) for p in hide if Path(p).exists()}
        # A folder that holds the Python installation, cnnlab or the data cannot be covered.
        self.not_hidden = sorted(f for f in folders if any(Path(n).is_relative_to(f) for n in needed))
        # A folder inside another hidden folder is covered with it (and, once its parent is
        # covered, no longer exists to be covered on its own): keep only the outermost.
        self.hide = []
        for folder in sorted(folders - set(self.not_hidden)):  # a parent sorts before its children
            if not any(Path(folder).is_relative_to(outer) for outer in self.hide):
                self.hide.append(folder)
        self.namespaces = namespaces_available()
        self.uid = BASE_UID + slot if self.namespaces else os.getuid()
        self.gid = BASE_UID + slot if self.namespaces else os.getgid()
        self.token = uuid.uuid4().hex
        self.private = Path(tempfile.mkdtemp(prefix="cnnlab-grader-"))  # the grader's own: spec, logs
        self.workdir = Path(tempfile.mkdtemp(prefix="cnnlab-sandbox-"))
        # A file system of its own, so that a notebook that fills its scratch space can still export.
        self.export_dir = Path(tempfile.mkdtemp(prefix="cnnlab-export-"))
        self.mounted = False
        self.cgroups = SandboxCgroups(f"cnnlab-{self.token[:12]}", cpus=threads, tasks=limits.processes)

    def __enter__(self):
        if self.namespaces:
            options = f"size={self.limits.disk},mode=0700,uid={self.uid},gid={self.gid}"
            mount = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(self.workdir)], capture_output=True
            )
            self.mounted = mount.returncode == 0
            self.cgroups.create()
        return self

    def __exit__(self, *exc):
        _kill_all(_owned_by(self.uid) if self.namespaces else _carries(self.token), deadline_s=5)
        self.cgroups.remove()
        for folder in (self.workdir, self.export_dir):
            if self.namespaces:
                subprocess.run(["umount", "-l", str(folder)], capture_output=True)
            shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(self.private, ignore_errors=True)

    @property
    def isolation(self) -> dict:
        return {
            "mode": "namespaces" if self.namespaces else "process-limits-only",
            "network": "none (own network namespace)" if self.namespaces else "NOT isolated",
            "user": f"uid {self.uid} (unprivileged)" if self.namespaces else "the grader's own user",
            "pid_namespace": self.namespaces,
            "hidden_folders": self.hide if self.namespaces else [],
            "not_hidden": self.not_hidden if self.namespaces else [],
            "cpu_and_tasks": self.cgroups.describe(),
            "disk": f"tmpfs of {self.limits.disk // (1 << 20)} MiB"
            if self.mounted
            else f"file size limit {self.limits.file_size // (1 << 20)} MiB",
            "limits": self.limits.as_dict(),
        }

    def _prepare(self, notebook: nbformat.NotebookNode) -> None:
        (self.workdir / "home").mkdir(exist_ok=True)
        nbformat.write(notebook, self.workdir / "assembled.ipynb")
        if self.namespaces:
            for path in [self.workdir, *self.workdir.rglob("*"), self.export_dir]:
                os.chown(path, self.uid, self.gid)
            os.chmod(self.workdir, 0o700)
            os.chmod(self.export_dir, 0o700)

    def _launch(self, env: dict, log) -> subprocess.Popen:
        here = Path(__file__).parent  # started as scripts: neither imports cnnlab (nor TensorFlow)
        limits = self.limits
        runner = [
            sys.executable,
            str(here / "runner.py"),
            str(self.workdir),
            str(limits.cell_timeout),
            str(limits.notebook_timeout),
            str(limits.output),
        ]
        if not self.namespaces:
            own = limits.as_dict()
            own["processes"] += len(_processes(_owned_by(os.getuid())))  # RLIMIT_NPROC counts the whole user
            return subprocess.Popen(
                runner, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, cwd=self.workdir,
                start_new_session=True, preexec_fn=lambda: apply_limits(own),
            )  # fmt: skip
        import cnnlab

        spec = {
            "hide": self.hide,
            # the Python installation, the package and the data must stay reachable for the sandbox user
            "expose": [
                sys.prefix,
                sys.base_prefix,
                str(Path(cnnlab.__file__).parent.parent),
                env.get("CNNLAB_DATA", "/"),
            ],
            "uid": self.uid,
            "gid": self.gid,
            "limits": limits.as_dict(),
            "workdir": str(self.workdir),
            "command": runner,
            "env": env,
        }
        (self.private / "spec.json").write_text(json.dumps(spec))
        namespaces = ["unshare", "--mount", "--pid", "--net", "--fork", "--kill-child", "--mount-proc"]
        command = [*namespaces, sys.executable, str(here / "jail.py"), str(self.private / "spec.json")]
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=self.cgroups.enter,
        )

    def run(self, notebook: nbformat.NotebookNode) -> RunReport:
        """Execute ``notebook`` in the sandbox; return once every process of it is dead."""
        self._prepare(notebook)
        env = _sandbox_env(self.workdir, self.export_dir, self.profile, self.threads, self.token)
        started = time.monotonic()
        with open(self.private / "sandbox.log", "wb") as log:
            process = self._launch(env, log)
            state = "finished"
            try:
                process.wait(timeout=self.limits.notebook_timeout + 60)
            except subprocess.TimeoutExpired:
                state = "timeout"
            for kill in (lambda: os.killpg(process.pid, signal.SIGKILL), process.kill):
                try:
                    kill()
                except (ProcessLookupError, PermissionError):
                    pass
            process.wait()
        leftover = _kill_all(_owned_by(self.uid) if self.namespaces else _carries(self.token))
        status = self._read_status()
        if state == "finished":
            state = status.get("state", "crashed") if status else "crashed"
        log_tail = (self.private / "sandbox.log").read_bytes()[-3000:].decode("utf-8", "replace")
        return RunReport(
            state,
            round(time.monotonic() - started, 1),
            self.isolation,
            status,
            leftover,
            log_tail if state == "crashed" else "",
        )

    def _read_status(self) -> dict:
        from cnnlab.grading import safe_io

        try:
            fd = safe_io.open_directory(self.workdir)
            status = safe_io.read_json(fd, "status.json", 1 << 16)
            os.close(fd)
        except safe_io.Rejected:
            return {}
        return status if isinstance(status, dict) else {}
