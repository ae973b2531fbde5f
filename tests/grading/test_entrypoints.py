"""The Gradescope entry point, and a batch interrupted with Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnlab.grading import cgroups

from . import submissions as s

NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="sandboxes and control groups need root (CI runs as root)")


def test_gradescope_single_submission(tmp_path):
    submission, results = tmp_path / "submission", tmp_path / "results" / "results.json"
    submission.mkdir()
    s.write(submission, "whatever-the-student-called-it", s.fast_partial())
    done = subprocess.run(
        [sys.executable, "-m", "cnnlab", "gradescope", "--lab", "02", "--submission-dir", str(submission), "--results", str(results)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(results.read_text())
    assert report["score"] == 8 and {t["name"]: t["score"] for t in report["tests"]} == {
        "q1": 2,
        "q2": 0,
        "q3": 1,
        "q4": 2,
        "q5": 2,
        "q7": 1,
    }
    assert "FAIL" in next(t["output"] for t in report["tests"] if t["name"] == "q2")


def _gradescope(submission, results, *options, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", "gradescope", "--lab", "02", "--submission-dir", str(submission), "--results", str(results), *options],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "too-deep"),
        (b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code", "metadata": {}, '
         b'"source": "x = \'\\ud800\'", "outputs": [], "execution_count": null}]}', "invalid-text"),
    ],
)  # fmt: skip
def test_gradescope_always_writes_results_for_hostile_files(tmp_path, content, words):
    submission, results = tmp_path / "submission", tmp_path / "results" / "results.json"
    submission.mkdir()
    (submission / "lab.ipynb").write_bytes(content)
    done = _gradescope(submission, results)
    report = json.loads(results.read_text())
    assert done.returncode == 0 and report["score"] == 0 and words in report["output"], done.stdout + done.stderr
    assert report["stdout_visibility"] == "hidden"


def test_gradescope_writes_results_when_the_grader_itself_fails(tmp_path):
    results = tmp_path / "results" / "results.json"
    broken = subprocess.run(
        [sys.executable, "-m", "cnnlab", "gradescope", "--lab", "02", "--submission-dir", str(tmp_path / "missing"), "--results", str(results)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    report = json.loads(results.read_text())
    assert broken.returncode == 0 and report["score"] == 0 and "contact the course staff" in report["output"]
    assert "Traceback" not in report["output"] and "missing" not in report["output"]


def test_gradescope_without_a_notebook(tmp_path):
    results = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "cnnlab", "gradescope", "--lab", "02", "--submission-dir", str(tmp_path), "--results", str(results)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and json.loads(results.read_text())["score"] == 0
    assert "expected one .ipynb file, found 0" in json.loads(results.read_text())["output"]


def test_interrupted_batch_loses_no_finished_result(tmp_path):
    folder, out = tmp_path / "submissions", tmp_path / "grades"
    folder.mkdir()
    for i in range(3):
        s.write(folder, f"student_{i}", s.blank())
    command = s.grade_command("02", sorted(folder.glob("*.ipynb")), out)
    grader = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list(out.glob("student_*.json")) and time.monotonic() < deadline:  # result names: stem-hash
        time.sleep(0.5)
    grader.send_signal(signal.SIGINT)  # Ctrl-C
    grader.communicate(timeout=300)
    finished = sorted(p.stem for p in out.glob("student_*.json"))
    assert 1 <= len(finished) <= 3
    for name in finished:
        assert json.loads((out / f"{name}.json").read_text())["score"] == 0  # complete, valid results
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert f"{len(finished)} already graded" in again.stdout
    stems = sorted(p.stem.rsplit("-", 1)[0] for p in out.glob("student_*.json"))
    assert stems == ["student_0", "student_1", "student_2"]
    assert not list(out.glob(".*.tmp"))


def test_a_submission_named_like_an_option_cannot_redirect_the_output(tmp_path):
    done = subprocess.run(
        s.grade_command("02", [tmp_path / "a.ipynb"], tmp_path / "elsewhere.ipynb"), capture_output=True, text=True
    )
    assert done.returncode == 2 and "put submissions after `--`" in done.stderr
    assert not (tmp_path / "elsewhere.ipynb").exists()


def _tree(root: int) -> set[int]:
    """``root`` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo += children.get(pid, [])
    return found


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@NEEDS_ROOT
def test_a_grader_killed_by_sigkill_leaves_nothing_running(tmp_path):
    """SIGKILL cannot be handled: the kernel must take the sandboxes down with the grader, and
    the next grader removes the dead one's control groups."""
    blank = s.blank()
    first_code = next(c for c in blank.cells if c.cell_type == "code")
    path = s.write(tmp_path, "sleeper", s.with_cell_after(blank, first_code.id, "import time\ntime.sleep(600)"))
    grader = subprocess.Popen(
        s.grade_command("02", [path], tmp_path / "grades"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 240
        kernels: set[int] = set()
        while not kernels and time.monotonic() < deadline:
            time.sleep(1)
            for pid in _tree(grader.pid):
                try:
                    if b"ipykernel" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        kernels.add(pid)
                except OSError:
                    continue
        assert kernels, "the sandbox's kernel never started"
        time.sleep(5)  # the kernel is in the sleeping cell
        below = _tree(grader.pid) - {grader.pid}
        groups = [f for f in Path("/sys/fs/cgroup").glob("*/**/cnnlab-*") if cgroups.GRADER_GROUP.match(f.name)]
        groups = [f for f in groups if str(grader.pid) in f.name.split("-")]
    finally:
        grader.kill()
        grader.wait(timeout=30)
    deadline = time.monotonic() + 20
    while any(_running(pid) for pid in below) and time.monotonic() < deadline:
        time.sleep(0.2)
    outlived = [pid for pid in below if _running(pid)]
    left_behind = [f for f in groups if f.exists()]  # nobody removed them
    removed = cgroups.remove_orphans()  # kills what outlived too, so that no later test sees it
    assert not outlived, "processes outlived the grader"
    assert groups and left_behind == groups
    assert {f.name for f in groups} <= set(removed)
    assert not [f for f in groups if f.exists()]


@NEEDS_ROOT
def test_orphan_sweep_leaves_a_running_graders_groups_alone():
    """Only the groups of graders that no longer run are removed (this process is running)."""
    group = cgroups.Cgroup(f"cnnlab-sandbox-{1_100_000_123}-{os.getpid()}", 64 << 20, 1, 16)
    if not group.create():
        pytest.skip("no writable cgroups here")
    folders = list(group.folders.values())
    try:
        assert group.name not in cgroups.remove_orphans()
        assert folders and all(folder.exists() for folder in folders)
    finally:
        group.remove()
    assert not any(folder.exists() for folder in folders)
