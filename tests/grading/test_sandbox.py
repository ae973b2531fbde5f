"""The sandbox itself, seen from inside: a probe notebook reports what a submission can see and
do, and the test compares it with the allow-list. Fast: the probe never imports TensorFlow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from cnnlab.grading import accounts, bubblewrap, isolation
from cnnlab.grading.cgroups import version as cgroup_version
from cnnlab.grading.execution import run_notebook
from cnnlab.grading.limits import Limits
from cnnlab.grading.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]
DATA = os.environ.get("CNNLAB_DATA", "/nonexistent")
NEEDS_BWRAP = pytest.mark.skipif(os.geteuid() != 0, reason="the bwrap and uid levels need root (CI runs as root)")

PROBE = r"""
import ctypes, errno, json, os, socket
seen = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "pid": os.getpid()}
seen["root"] = sorted(os.listdir("/"))
seen["project"] = sorted(os.listdir(PROJECT)) if os.path.isdir(PROJECT) else None
seen["home_of_root"] = sorted(os.listdir("/root")) if os.path.isdir("/root") else None
seen["capabilities"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
seen["processes"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
seen["hostname"] = socket.gethostname()
seen["interfaces"] = sorted(name for _, name in socket.if_nameindex())
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    seen["network"] = True
except OSError:
    seen["network"] = False
seen["sysv_shm"] = open("/proc/sysvipc/shm").read().count("\n") - 1
child = os.fork()
if child == 0:  # try in a child: a new user namespace would leave this process without its uid
    os._exit(0 if ctypes.CDLL(None).unshare(0x10000000) == 0 else 1)
seen["new_user_namespace"] = os.waitpid(child, 0)[1] == 0
st = os.statvfs("/tmp")
seen["tmp_bytes"] = st.f_blocks * st.f_frsize
seen["dev"] = sorted(os.listdir("/dev"))
try:
    open(os.path.join(DATA, "probe-write"), "w")
    seen["data_writable"] = True
except OSError:
    seen["data_writable"] = False
seen["data_readable"] = os.path.isdir(os.path.join(DATA, "mnist"))
seen["passwd"] = open("/etc/passwd").read()
seen["environment"] = sorted(os.environ)
import resource
seen["open_files"] = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
with open(os.path.join(os.environ["CNNLAB_EXPORT_DIR"], "seen.json"), "w") as out:
    json.dump(seen, out)
"""


def probe_notebook() -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    setup = f"PROJECT = {str(ROOT)!r}\nDATA = {os.environ['CNNLAB_DATA']!r}"
    notebook.cells = [nbformat.v4.new_code_cell(setup), nbformat.v4.new_code_cell(PROBE)]
    return notebook


def run_probe(level: str, tmp: Path):
    chosen = isolation.detect(level)
    private = Path(tempfile.mkdtemp(dir=tmp))
    os.chmod(private, 0o711)
    home = private / "grader"
    home.mkdir(mode=0o700)
    grader_uid = accounts.fresh_uid()
    os.chown(home, grader_uid, grader_uid)
    box = Sandbox(chosen, Limits(cell_timeout=60, notebook_timeout=120), private, data_dir=os.environ["CNNLAB_DATA"])
    mounts_before = Path("/proc/self/mountinfo").read_text()
    report = run_notebook(box, probe_notebook(), box.limits, home, grader_uid)
    fd = os.open("seen.json", os.O_RDONLY | os.O_NOFOLLOW, dir_fd=box.exports_fd)
    with os.fdopen(fd) as stream:
        seen = json.load(stream)
    left = accounts.processes_of(box.uid)
    box.close()
    return {"seen": seen, "report": report, "uid": box.uid, "left": left, "mounts_before": mounts_before}


@pytest.fixture(scope="module")
def host_shm():
    """A System V shared-memory segment on the host, which no sandbox may see."""
    made = subprocess.run(["ipcmk", "-M", "4096"], capture_output=True, text=True, check=True)
    segment = made.stdout.split()[-1]
    yield segment
    subprocess.run(["ipcrm", "-m", segment], capture_output=True)


@pytest.fixture(scope="module")
def bwrap_probe(tmp_path_factory, host_shm):
    return run_probe("bwrap", tmp_path_factory.mktemp("bwrap"))


@NEEDS_BWRAP
def test_the_sandbox_sees_only_its_allow_list(bwrap_probe):
    seen = bwrap_probe["seen"]
    assert bwrap_probe["report"].state == "finished", bwrap_probe["report"]
    # Only the system's folders and the first folder of each path the allow-list binds (Python,
    # the virtual environment, the package, the data), wherever the checkout was cloned.
    bound = [ROOT, Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)), Path(DATA)]
    assert set(seen["root"]) <= {"usr", "lib", "lib64", "lib32", "libx32", "etc", "proc", "dev", "tmp", "run",
                                 "submission", "exports", "bin"} | {path.parts[1] for path in bound}  # fmt: skip
    # The checkout is reduced to the cnnlab package (and the virtual environment, when it lives there).
    assert set(seen["project"] or []) <= {"cnnlab", ".venv"}
    assert not {"solutions", ".git", "labs", "tests"} & set(seen["project"] or [])
    under_root = {path.parts[2] for path in bound if path.parts[1] == "root" and len(path.parts) > 2}
    assert set(seen["home_of_root"] or []) <= under_root  # nothing else of /root
    assert seen["data_readable"] and not seen["data_writable"]


@NEEDS_BWRAP
def test_the_sandbox_has_its_own_user_namespaces_and_nothing_else(bwrap_probe, host_shm):
    seen = bwrap_probe["seen"]
    assert seen["uid"] == bwrap_probe["uid"] == seen["gid"] and seen["uid"] >= accounts.FIRST
    assert seen["groups"] in ([], [seen["gid"]])
    assert int(seen["capabilities"], 16) == 0
    assert seen["hostname"] == "sandbox" and seen["interfaces"] == ["lo"] and seen["network"] is False
    assert seen["sysv_shm"] == 0  # the host's segment is in another IPC namespace
    assert seen["new_user_namespace"] is False  # --disable-userns
    assert max(seen["processes"]) < 100  # a PID namespace of its own
    assert seen["tmp_bytes"] <= Limits().scratch
    assert seen["open_files"] <= 1024  # times 512 tasks, well under the host's file-max
    assert set(seen["dev"]) <= {"null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm", "fd",
                                "stdin", "stdout", "stderr", "core"}  # fmt: skip
    assert seen["passwd"].startswith("student:x:") and seen["passwd"].count("\n") == 1
    assert not [name for name in seen["environment"] if "SECRET" in name or name.startswith("SUDO")]


@NEEDS_BWRAP
def test_nothing_of_the_sandbox_outlives_it(bwrap_probe):
    assert bwrap_probe["left"] == []
    assert Path("/proc/self/mountinfo").read_text() == bwrap_probe["mounts_before"]
    groups = [p for c in ("memory", "cpu", "pids", "") for p in Path("/sys/fs/cgroup", c).rglob("cnnlab-*")]
    assert groups == []


@NEEDS_BWRAP
def test_every_submission_gets_a_uid_of_its_own(tmp_path):
    first, second = run_probe("bwrap", tmp_path), run_probe("uid", tmp_path)
    assert first["seen"]["uid"] != second["seen"]["uid"]
    assert second["seen"]["uid"] >= accounts.FIRST and second["report"].state == "finished"
    assert second["left"] == []


def test_sandbox_command_is_an_allow_list():
    fds = {"connection": 11, "passwd": 12, "ready": 13, "info": 14, "block": 15}
    sizes = {"workdir": 1 << 30, "scratch": 1 << 28, "exports": 1 << 29}
    command = bubblewrap.sandbox_command("bwrap", ["/opt/py", "/srv/cnnlab"], sizes, {"A": "1"}, fds, ["python"])
    binds = [command[i + 1] for i, a in enumerate(command) if a in ("--bind", "--ro-bind", "--dev-bind")]
    assert (
        "/" not in binds and "--bind" not in command and "--dev-bind" not in command
    )  # nothing writable from the host
    assert {"/opt/py", "/srv/cnnlab"} <= set(binds)
    for flag in (
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ):
        assert flag in command
    assert command[command.index("--cap-drop") + 1] == "ALL"
    tmpfs = {
        command[i + 1]: int(command[i - 1])
        for i, a in enumerate(command)
        if a == "--tmpfs" and command[i - 2] == "--size"
    }
    assert tmpfs == {"/tmp": 1 << 28, "/dev/shm": 1 << 28}
    assert command[-1] == "python" and command[command.index("--setenv") + 1 : command.index("--setenv") + 3] == [
        "A",
        "1",
    ]
    with pytest.raises(ValueError, match="under the sandbox's own"):
        bubblewrap.sandbox_command("bwrap", ["/submission/x"], sizes, {}, fds, ["python"])


def test_exposure_opens_only_closed_folders():
    tmp_path = Path(tempfile.mkdtemp())  # in /tmp, which anyone may pass through (pytest's own folder is 0700)
    os.chmod(tmp_path, 0o755)
    closed = tmp_path / "closed"
    (closed / "deep" / "python").mkdir(parents=True)
    os.chmod(closed, 0o700)
    (tmp_path / "open").mkdir()
    assert bubblewrap.exposure_command("bwrap", [str(tmp_path / "open")]) == []
    command = bubblewrap.exposure_command("bwrap", [str(closed / "deep" / "python"), str(tmp_path / "open")])
    assert command[command.index("--tmpfs") + 1] == str(closed)  # the closed folder becomes an empty tmpfs ...
    assert (
        command[command.index("--ro-bind") + 1 : command.index("--ro-bind") + 3]
        == [str(closed / "deep" / "python")] * 2
    )
    assert str(tmp_path / "open") not in command and command[-1] == "--"  # ... with just the needed path in it


def test_doctor_says_which_level_and_why(monkeypatch):
    lines = isolation.describe()
    assert lines[0].startswith("grading isolation: ")
    assert any(line.strip().startswith("resource control: ") for line in lines)
    if os.geteuid() == 0 and cgroup_version():
        assert "bwrap" in lines[0]
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    isolation._probe_bwrap.cache_clear()
    with pytest.raises(isolation.IsolationUnavailable, match="not root"):
        isolation.detect("auto")
    assert isolation.detect("auto", allow_unsafe=True).level == "none"
