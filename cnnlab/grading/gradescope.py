"""``cnnlab gradescope``: grade the one submission of a Gradescope autograder container.

Gradescope reads ``/autograder/results/results.json``. It is written whatever happens: a
submission that is not one notebook gets a zero that says so, and a failure of the grader
itself gets a zero that asks the student to contact the course staff, never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from cnnlab.grading import results as res
from cnnlab.grading.intake import Staged, Ungradable, stage

STAFF = "The autograder itself failed on this submission; please contact the course staff."


def _fallback(lab: str, message: str) -> dict:
    return {"score": 0.0, "output": res.plain(message), "stdout_visibility": "hidden", "tests": []}


def grade_in_gradescope(
    lab: str,
    submission_dir: Path,
    results_path: Path,
    profile: str = "smoke",
    isolation: str = "auto",
    allow_unsafe: bool = False,
    visibility: str = "after_published",
) -> int:
    """Grade and write ``results_path``; return 0 once it is written."""
    from cnnlab.grading.batch import grade_one, make_grader
    from cnnlab.grading.limits import Limits

    started = time.monotonic()
    try:
        candidates = sorted(p for p in submission_dir.iterdir() if p.name.endswith(".ipynb"))
        limits = Limits()
        grader = make_grader(
            lab,
            limits,
            profile,
            isolation,
            allow_unsafe,
            max(1, os.cpu_count() or 1),
            [results_path.parent],
            visibility,
        )
        try:
            if len(candidates) != 1:
                problem = Ungradable("not-a-notebook", f"expected one .ipynb file, found {len(candidates)}")
                staged = Staged("submission", "", None, problem)
            else:
                staging = grader.private / "staging"
                staging.mkdir(mode=0o700)
                staged = stage(candidates[0], staging, limits.submission_size)
            result = grade_one(grader, staged)
        finally:
            shutil.rmtree(grader.private, ignore_errors=True)
        payload = res.gradescope_json(result, visibility)
        line = f"{result.score:g}/{result.max_score:g} {result.status} {result.reason or ''}"
    except Exception as error:  # the grader's own failure: the student sees a clear zero, staff the cause
        payload = _fallback(lab, STAFF)
        payload["execution_time"] = round(time.monotonic() - started)
        line = f"grader error: {type(error).__name__}: {res.plain(str(error))[:2000]}"
    res.write_atomically(results_path, json.dumps(payload, indent=1))
    print(line)
    return 0
