"""One result per submission, as JSON, as Gradescope's results.json, and in the gradebook.

Everything written here is the grader's own text: hints are the instructors' sentences, and
a value that came from a submission appears only as a number. Two last guards keep it so
wherever the text goes: :func:`plain` removes control characters (terminal escape
sequences), and :func:`csv_cell` makes sure no gradebook cell starts a spreadsheet formula.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def plain(text: str) -> str:
    """``text`` without control or direction-changing characters (newlines and tabs kept)."""
    return CONTROL.sub("", str(text))


def csv_cell(value):
    """A gradebook cell that a spreadsheet shows as text, never evaluates as a formula."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = plain(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r", "|") else text


@dataclass
class QuestionResult:
    question: str
    points: float
    max_points: float
    tests: list[dict] = field(default_factory=list)  # name, passed, feedback


@dataclass
class SubmissionResult:
    submission: str  # the result name: sanitised stem and content hash
    lab: str
    status: str  # graded | ungradable
    score: float = 0.0
    max_score: float = 0.0
    # for ungradable: invalid-json, too-deep, invalid-text, wrong-nbformat, not-a-notebook,
    # too-many-cells, too-large, not-a-regular-file, unreadable, timeout, crash, out-of-memory, grader-error
    reason: str | None = None
    message: str = ""
    questions: list[QuestionResult] = field(default_factory=list)
    # written questions, graded by people: question, max_points, answer (the student's text,
    # for the graders only: never part of feedback or the Gradescope results)
    written: list[dict] = field(default_factory=list)
    sha256: str = ""  # of the submitted file
    isolation: dict = field(default_factory=dict)  # the level in force and what it meant
    seconds: float = 0.0  # the whole grading of this submission
    run_seconds: float = 0.0  # the sandbox alone, from launch until every process is dead
    peak_memory_mb: float | None = None  # sandbox and executor, from their cgroups
    trusted_peak_memory_mb: float | None = None  # the hidden tests' process

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SubmissionResult:
        known = {f.name for f in fields(cls)}
        questions = [QuestionResult(**q) for q in data.get("questions", [])]
        return cls(**{k: v for k, v in data.items() if k in known and k != "questions"}, questions=questions)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    os.replace(temporary, path)


def gradescope_json(result: SubmissionResult, visibility: str = "after_published") -> dict:
    """Gradescope's autograder results format. The per-question tests (whose hints come from
    the hidden tests) get ``visibility``; the grader's log never reaches students
    (``stdout_visibility: hidden``)."""
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {', '.join(VISIBILITIES)}, got {visibility!r}")
    tests = []
    for q in result.questions:
        lines = [
            f"{'PASS' if t['passed'] else 'FAIL'} {t['name']}" + ("" if t["passed"] else f": {t['feedback']}")
            for t in q.tests
        ]
        tests.append(
            {
                "name": q.question,
                "score": q.points,
                "max_score": q.max_points,
                "status": "passed" if q.points >= q.max_points else "failed",
                "output": plain("\n".join(lines)),
                "visibility": visibility,
            }
        )
    output = "Graded." if result.status == "graded" else f"Ungradable ({result.reason}): {result.message}"
    return {
        "score": result.score,
        "execution_time": round(result.seconds),
        "output": plain(output),
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def write_result(out: Path, result: SubmissionResult, visibility: str = "after_published") -> Path:
    path = out / f"{result.submission}.json"
    write_atomically(
        out / result.submission / "results.json", json.dumps(gradescope_json(result, visibility), indent=1)
    )
    write_atomically(path, json.dumps(result.to_dict(), indent=1))  # last: its presence means "done"
    return path


def load_results(out: Path) -> list[SubmissionResult]:
    results = []
    for path in sorted(out.glob("*.json")):
        try:
            results.append(SubmissionResult.from_dict(json.loads(path.read_text())))
        except (json.JSONDecodeError, TypeError, KeyError, ValueError, OSError):
            continue
    return results


def gradebook_text(results: list[SubmissionResult]) -> str:
    """One row per submission: the auto-graded points per question, then for each written
    question an empty column for the person who grades it and the student's answer."""
    questions = sorted({q.question for r in results for q in r.questions})
    written = sorted({w["question"] for r in results for w in r.written})
    manual = [column for q in written for column in (f"{q} (written)", f"{q} answer")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["submission", "sha256", "status", "score", "max_score", *questions, *manual, "reason", "isolation"]
    )
    for r in sorted(results, key=lambda r: r.submission):
        points = {q.question: q.points for q in r.questions}
        answers = {w["question"]: w["answer"] for w in r.written}
        row = [r.submission, r.sha256, r.status, r.score, r.max_score, *[points.get(q, 0) for q in questions]]
        row += [value for q in written for value in ("", answers.get(q, ""))]
        writer.writerow([csv_cell(v) for v in [*row, r.reason or "", r.isolation.get("level", "")]])
    return buffer.getvalue()


def write_gradebook(out: Path, results: list[SubmissionResult]) -> Path:
    path = out / "gradebook.csv"
    write_atomically(path, gradebook_text(results))
    return path


def summary(results: list[SubmissionResult]) -> str:
    """The end-of-batch table: score distribution, ungradable submissions, time per submission."""
    lines = [f"{len(results)} submission(s)"]
    graded = [r for r in results if r.max_score]
    if graded:
        top = max(r.max_score for r in graded)
        lines.append("score distribution:")
        for low in range(0, 100, 20):
            count = sum(1 for r in graded if low <= 100 * r.score / top < low + 20 or (low == 80 and r.score == top))
            lines.append(f"  {low:3d}-{low + 20:3d}%  {'#' * count} {count}")
    bad = [r for r in results if r.status != "graded"]
    if bad:
        lines.append("ungradable:")
        lines += [f"  {r.submission}: {r.reason} ({r.message}); partial score {r.score}/{r.max_score}" for r in bad]
    times = sorted(r.seconds for r in results)
    if times:
        lines.append(
            f"time per submission: median {times[len(times) // 2]:.0f} s, max {times[-1]:.0f} s, total {sum(times):.0f} s"
        )
    return plain("\n".join(lines))
