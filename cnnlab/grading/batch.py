"""Grade one submission or a whole batch: intake, assembly, sandbox, trusted tests, results."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import nbformat

from cnnlab.grading import results as res
from cnnlab.grading.assemble import assemble
from cnnlab.grading.intake import Ungradable, read_submission
from cnnlab.grading.limits import Limits
from cnnlab.grading.sandbox import Sandbox
from cnnlab.notebooks.catalog import LABS, lab_notebook, project_root, resolve_lab

TRUSTED_TIMEOUT_S = 600


def hidden_tests_path(lab: str) -> Path:
    path = project_root() / "solutions" / "hidden" / f"lab{lab}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no hidden tests for lab {lab} at {path}")
    return path


def _load_exports_spec(path: Path) -> list:
    # The hidden-test file is instructor code: the grader itself reads its EXPORTS.
    from cnnlab.grading.trusted import load_hidden_tests

    return load_hidden_tests(str(path)).EXPORTS


def run_trusted(hidden: Path, export_dir: Path, limits: Limits) -> list[dict]:
    """Run the hidden tests in a separate, limited process; it never sees submission code."""
    from cnnlab.grading.jail import apply_limits

    trusted_limits = {**limits.as_dict(), "memory": 2 * limits.memory, "processes": 4096}
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("CNNLAB_", "TF_", "PATH", "HOME", "LANG", "PYTHON", "OMP_"))
    }
    completed = subprocess.run(
        [sys.executable, "-m", "cnnlab.grading.trusted", str(hidden), str(export_dir), str(limits.export_size)],
        capture_output=True,
        text=True,
        timeout=TRUSTED_TIMEOUT_S,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"},
        preexec_fn=lambda: apply_limits({**trusted_limits, "processes": 1 << 20}),
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the hidden tests failed to run (exit {completed.returncode}): {completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def score(lab_notebook_node, tests: list[dict]) -> list[res.QuestionResult]:
    points = {
        c.metadata["cnnlab"]["question"]: c.metadata["cnnlab"]["points"]
        for c in lab_notebook_node.cells
        if "question" in c.metadata.get("cnnlab", {})
    }
    questions = []
    for question, max_points in points.items():
        mine = [t for t in tests if t["question"] == question]
        total = sum(t["weight"] for t in mine) or 1.0
        earned = round(max_points * sum(t["weight"] for t in mine if t["passed"]) / total, 4)
        feedback = [{"name": t["name"], "passed": t["passed"], "feedback": t["hint"] or ""} for t in mine]
        questions.append(res.QuestionResult(question, earned, max_points, feedback))
    return questions


def lab_points(lab: str) -> float:
    notebook = nbformat.read(lab_notebook(lab, "labs"), as_version=4)
    return sum(c.metadata["cnnlab"]["points"] for c in notebook.cells if "question" in c.metadata.get("cnnlab", {}))


def grade_one(
    path: Path,
    lab: str,
    name: str,
    limits: Limits,
    profile: str = "smoke",
    slot: int = 0,
    threads: int = 1,
    hide: list[Path] | None = None,
) -> res.SubmissionResult:
    """Grade one submission. Never raises for a bad submission: it becomes ``ungradable``."""
    started = time.monotonic()
    lab_node = nbformat.read(lab_notebook(lab, "labs"), as_version=4)
    max_score = sum(
        c.metadata["cnnlab"]["points"] for c in lab_node.cells if "question" in c.metadata.get("cnnlab", {})
    )
    result = res.SubmissionResult(submission=name, lab=lab, status="graded", max_score=max_score)
    try:
        cells = read_submission(path, limits.submission_size)
    except Ungradable as problem:
        result.status, result.reason, result.message = "ungradable", problem.reason, str(problem)
        result.seconds = round(time.monotonic() - started, 1)
        return result
    hidden = hidden_tests_path(lab)
    notebook = assemble(lab_node, cells, _load_exports_spec(hidden))
    folders = [hidden.parent.parent, *(hide or [])]  # solutions/ (hidden tests included), output, submissions
    with Sandbox(limits, folders, profile=profile, slot=slot, threads=threads) as box:
        report = box.run(notebook)
        tests = run_trusted(hidden, box.export_dir, limits)
    result.questions = score(lab_node, tests)
    result.score = round(sum(q.points for q in result.questions), 4)
    result.isolation = report.isolation
    result.diagnostics = report.diagnostics
    result.run_seconds = report.seconds
    if report.state in ("timeout", "kernel-died", "crashed"):
        result.status = "ungradable"
        result.reason = "timeout" if report.state == "timeout" else "crash"
        where = report.status.get("reached")
        result.message = (
            f"the notebook {'ran out of time' if report.state == 'timeout' else 'stopped (its kernel or runner died)'}"
            + (f" at cell {where}" if where is not None else "")
            + "; partial credit for the questions exported before that"
        )
    elif report.status.get("timed_out_cells"):
        result.message = (
            f"cells {report.status['timed_out_cells']} hit the {limits.cell_timeout} s cell limit and were interrupted"
        )
    if report.leftover_processes:
        result.message += f" ({report.leftover_processes} sandbox processes could not be killed)"
    result.seconds = round(time.monotonic() - started, 1)
    return result


def submission_names(paths: list[Path]) -> dict[Path, str]:
    """A distinct, file-system-safe name per submission (the stem, numbered on a clash)."""
    names: dict[Path, str] = {}
    used: set[str] = set()
    for path in sorted(paths):
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in path.stem) or "submission"
        name, n = stem, 2
        while name in used or name == "gradebook":
            name, n = f"{stem}-{n}", n + 1
        used.add(name)
        names[path] = name
    return names


def grade_batch(
    lab: str,
    paths: list[Path],
    out: Path,
    jobs: int = 1,
    force: bool = False,
    limits: Limits | None = None,
    profile: str = "smoke",
    progress=print,
) -> list[res.SubmissionResult]:
    """Grade every submission into ``out``; one bad submission never stops the batch.

    Already graded submissions (their ``out/NAME.json`` exists) are skipped unless ``force``;
    each result is written as soon as it is done, so an interrupted batch loses nothing.
    """
    lab = resolve_lab(lab)
    limits = limits or Limits()
    out.mkdir(parents=True, exist_ok=True)
    names = submission_names([Path(p) for p in paths])
    todo = [(path, name) for path, name in names.items() if force or not (out / f"{name}.json").exists()]
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    # Each submission is graded from a private copy, so that the sandbox, which hides this
    # staging folder, cannot read the others even where their own folders cannot be hidden.
    staging = Path(tempfile.mkdtemp(prefix="cnnlab-submissions-"))
    staged = {}
    for path, name in names.items():
        staged[path] = staging / f"{name}.ipynb"
        if path.stat().st_size <= limits.submission_size:
            shutil.copyfile(path, staged[path])
        else:
            staged[path] = path  # refused at intake, unread
    hide = [out.resolve(), staging, *{p.resolve().parent for p in names}]
    progress(
        f"lab {lab} ({LABS[lab][1]}): {len(names)} submission(s), {len(names) - len(todo)} already graded, {jobs} job(s)"
    )
    done = 0

    free_slots: queue.Queue[int] = queue.Queue()
    for slot in range(max(1, jobs)):  # a slot is a sandbox user id; two running jobs never share one
        free_slots.put(slot)

    def work(item):
        path, name = item
        slot = free_slots.get()
        try:
            result = grade_one(staged[path], lab, name, limits, profile, slot, threads, hide)
        except Exception as error:  # the grader's own failure on this submission: record it, go on
            result = res.SubmissionResult(
                name, lab, "ungradable", reason="crash", message=f"grader error: {type(error).__name__}: {error}"
            )
        finally:
            free_slots.put(slot)
        res.write_result(out, result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(work, item): item for item in todo}
        for future in as_completed(futures):
            result = future.result()
            done += 1
            progress(
                f"[{done}/{len(todo)}] {result.submission}: {result.score:g}/{result.max_score:g} {result.status}{' (' + result.reason + ')' if result.reason else ''} in {result.seconds:.0f} s"
            )
    shutil.rmtree(staging, ignore_errors=True)
    all_results = [r for r in res.load_results(out) if r.submission in set(names.values())]
    res.write_gradebook(out, all_results)
    progress(res.summary(all_results))
    return all_results
