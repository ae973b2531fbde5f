"""Grader performance, measured side by side in one run on this machine.

1. Overhead: grading the lab-02 solution (sandbox, exports, trusted tests) against executing
   the same notebook with plain nbclient. Target: at most 30% more time.
2. Throughput: 8 submissions with --jobs 2 against --jobs 1 (TensorFlow's thread pools sized
   to cores / jobs). Target: at least 1.4x.
3. A batch of 20 submissions, 5 of them pathological (a SIGINT-proof infinite loop, a fork
   bomb, a 20 GB allocation, a kernel crash, invalid JSON): each pathological one must end
   within its limit plus 10 s, and all 20 results must be present.

Run as root for the full sandbox: CNNLAB_DATA=../shared/data python benchmarks/grading.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

from cnnlab.grading.batch import grade_batch  # noqa: E402
from cnnlab.grading.limits import Limits  # noqa: E402
from tests.grading import submissions as s  # noqa: E402


def quiet(*_args) -> None:
    pass


def plain_nbclient_seconds() -> float:
    notebook = nbformat.read(s.SOLUTION, as_version=4)
    started = time.monotonic()
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(s.SOLUTION.parent)}}
    ).execute(
        env={**os.environ, "CNNLAB_PROFILE": "smoke", "CNNLAB_DATA": str(Path(os.environ["CNNLAB_DATA"]).resolve())}
    )
    return time.monotonic() - started


def grading_seconds(folder: Path, jobs: int, limits: Limits | None = None) -> tuple[float, list]:
    with tempfile.TemporaryDirectory() as out:
        started = time.monotonic()
        results = grade_batch("02", sorted(folder.glob("*.ipynb")), Path(out), jobs=jobs, limits=limits, progress=quiet)
        return time.monotonic() - started, results


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="cnnlab-grading-bench-"))
    one = work / "one"
    one.mkdir()
    s.write(one, "solution", s.solution())

    print("1. overhead: grading vs plain nbclient (lab 02 solution, smoke profile), 2 interleaved repeats")
    plain, graded = [], []
    for _ in range(2):
        plain.append(plain_nbclient_seconds())
        graded.append(grading_seconds(one, jobs=1)[0])
    ratio = statistics.median(graded) / statistics.median(plain)
    print(
        f"   plain nbclient {statistics.median(plain):.1f} s, cnnlab grade {statistics.median(graded):.1f} s: overhead {100 * (ratio - 1):+.0f}% (target <= +30%)"
    )

    eight = work / "eight"
    eight.mkdir()
    for copy in range(2):
        s.write(eight, f"solution_{copy}", s.solution())
        s.write(eight, f"partial_{copy}", s.honest_partial())
        s.write(eight, f"blank_{copy}", s.blank())
        s.write(eight, f"fast_{copy}", s.fast_partial())
    print("2. throughput: 8 submissions, --jobs 1 vs --jobs 2")
    t1, r1 = grading_seconds(eight, jobs=1)
    t2, r2 = grading_seconds(eight, jobs=2)
    same = sorted((r.submission, r.score) for r in r1) == sorted((r.submission, r.score) for r in r2)
    print(
        f"   --jobs 1 {t1:.0f} s, --jobs 2 {t2:.0f} s: {t1 / t2:.2f}x throughput (target >= 1.4); same scores: {same}"
    )

    twenty = work / "twenty"
    twenty.mkdir()
    for copy in range(4):
        s.write(twenty, f"solution_{copy}", s.solution())
        s.write(twenty, f"partial_{copy}", s.honest_partial())
        s.write(twenty, f"fast_{copy}", s.fast_partial())
    for copy in range(3):
        s.write(twenty, f"blank_{copy}", s.blank())
    fast = s.fast_partial()
    pathological = {
        "timeout": "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
        "fork_bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        "memory_bomb": "import numpy as np\nhuge = np.ones(20 * 1024**3 // 8)\nhuge[::4096] = 1",
        "crash": "import os\nos._exit(1)",
    }
    for name, code in pathological.items():
        s.write(twenty, f"zz_{name}", s.with_cell_after(fast, s.Q3_CHECK, code))
    s.write(twenty, "zz_invalid_json", b'{"cells": [')
    limits = Limits(cell_timeout=60, notebook_timeout=120)
    print(
        f"3. 20 submissions, 5 pathological, --jobs 2, limits: {limits.cell_timeout} s per cell, {limits.notebook_timeout} s per notebook"
    )
    total, results = grading_seconds(twenty, jobs=2, limits=limits)
    print(f"   {len(results)} results in {total:.0f} s")
    for r in sorted(results, key=lambda r: r.submission):
        if r.submission.startswith("zz_"):
            within = r.run_seconds <= limits.notebook_timeout + 10
            print(
                f"   {r.submission:16s} {r.status:10s} {r.reason or '':14s} score {r.score:g}/{r.max_score:g}  sandbox {r.run_seconds:5.1f} s, whole grading {r.seconds:5.1f} s  within limit + 10 s: {within}"
            )


if __name__ == "__main__":
    main()
