"""One result per submission, as JSON, as Gradescope's results.json, and in the gradebook."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class QuestionResult:
    question: str
    points: float
    max_points: float
    tests: list[dict] = field(default_factory=list)  # name, passed, feedback


@dataclass
class SubmissionResult:
    submission: str
    lab: str
    status: str  # graded | ungradable
    score: float = 0.0
    max_score: float = 0.0
    reason: str | None = None  # for ungradable: invalid-json, wrong-nbformat, not-a-notebook, too-large, timeout, crash
    message: str = ""
    questions: list[QuestionResult] = field(default_factory=list)
    isolation: dict = field(default_factory=dict)
    seconds: float = 0.0  # the whole grading of this submission
    run_seconds: float = 0.0  # the sandbox alone, from launch until every process is dead
    diagnostics: str = ""  # for instructors only; never part of the Gradescope output

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SubmissionResult:
        questions = [QuestionResult(**q) for q in data.pop("questions", [])]
        return cls(**data, questions=questions)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    os.replace(temporary, path)


def gradescope_json(result: SubmissionResult) -> dict:
    """Gradescope's autograder results format."""
    tests = []
    for q in result.questions:
        lines = [
            f"{'PASS' if t['passed'] else 'FAIL'} {t['name']}" + ("" if t["passed"] else f": {t['feedback']}")
            for t in q.tests
        ]
        tests.append({"name": q.question, "score": q.points, "max_score": q.max_points, "output": "\n".join(lines)})
    output = "Graded." if result.status == "graded" else f"Ungradable ({result.reason}): {result.message}"
    return {"score": result.score, "output": output, "tests": tests, "execution_time": result.seconds}


def write_result(out: Path, result: SubmissionResult) -> Path:
    path = out / f"{result.submission}.json"
    write_atomically(out / result.submission / "results.json", json.dumps(gradescope_json(result), indent=1))
    write_atomically(path, json.dumps(result.to_dict(), indent=1))  # last: its presence means "done"
    return path


def load_results(out: Path) -> list[SubmissionResult]:
    results = []
    for path in sorted(out.glob("*.json")):
        try:
            results.append(SubmissionResult.from_dict(json.loads(path.read_text())))
        except (json.JSONDecodeError, TypeError, KeyError):
            continue
    return results


def write_gradebook(out: Path, results: list[SubmissionResult]) -> Path:
    questions = sorted({q.question for r in results for q in r.questions})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["submission", "status", "score", "max_score", *questions, "reason", "seconds"])
    for r in sorted(results, key=lambda r: r.submission):
        points = {q.question: q.points for q in r.questions}
        writer.writerow(
            [
                r.submission,
                r.status,
                r.score,
                r.max_score,
                *[points.get(q, 0) for q in questions],
                r.reason or "",
                r.seconds,
            ]
        )
    path = out / "gradebook.csv"
    write_atomically(path, buffer.getvalue())
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
    return "\n".join(lines)
