"""Grade one submission or a whole batch: intake, assembly, sandbox, trusted tests, results.

The grader's parent process (root, on a grading server) does only the work that needs no
trust in the submission: it stages and parses each notebook, assembles what runs, starts
the sandbox and the grader's own unprivileged processes, and writes the results. It never
imports TensorFlow and never reads a file the sandbox could have written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nbformat

from cnnlab.grading import accounts, bubblewrap, cgroups
from cnnlab.grading import results as res
from cnnlab.grading.assemble import assemble
from cnnlab.grading.checking import run_trusted
from cnnlab.grading.execution import RunReport, run_notebook
from cnnlab.grading.intake import Staged, Ungradable, parse, stage
from cnnlab.grading.isolation import Isolation, IsolationUnavailable, detect, needed_paths, readable_to
from cnnlab.grading.limits import ADDRESS_SPACE_FACTOR, Limits
from cnnlab.grading.sandbox import Sandbox, SandboxError
from cnnlab.grading.shards import Shard, batch_id, write_shard_record
from cnnlab.notebooks.catalog import LABS, lab_notebook, project_root, resolve_lab
from cnnlab.progress import Progress


def hidden_tests_path(lab: str) -> Path:
    path = project_root() / "solutions" / "hidden" / f"lab{lab}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no hidden tests for lab {lab} at {path}")
    return path


def _load_hidden(path: Path):
    # The hidden-test file is instructor code: the grader itself reads its EXPORTS and TESTS.
    from cnnlab.grading.trusted import load_hidden_tests

    return load_hidden_tests(str(path))


MAX_WRITTEN_ANSWER = 4000  # characters of a written answer kept for the gradebook


def question_points(lab_node, kind: str = "auto") -> dict[str, float]:
    """Points per question: the auto-graded ones (code and prediction questions, ``kind="auto"``)
    or the written ones that people grade (``kind="written"``)."""
    found = {}
    for cell in lab_node.cells:
        tag = cell.metadata.get("cnnlab", {})
        if "question" in tag and (tag.get("kind") == "written") == (kind == "written"):
            found[tag["question"]] = tag["points"]
    return found


def written_answers(lab_node, cells) -> list[dict]:
    """The text of each written question's answer, for the people who grade it: the first
    cell of the submission that claims the question, control characters removed, capped."""
    answers = []
    for question, points in question_points(lab_node, "written").items():
        text = next((c.source for c in cells if c.question == question), "")
        answers.append(
            {"question": question, "max_points": points, "answer": res.plain(text.strip())[:MAX_WRITTEN_ANSWER]}
        )
    return answers


def lab_points(lab: str) -> float:
    return sum(question_points(nbformat.read(lab_notebook(lab, "labs"), as_version=4)).values())


def score(lab_node, tests: list[dict]) -> list[res.QuestionResult]:
    """Points per question: its share of passed tests by weight; zero when any of its exports
    was over the question's budget."""
    questions = []
    for question, max_points in question_points(lab_node).items():
        mine = [t for t in tests if t["question"] == question]
        total = sum(t["weight"] for t in mine) or 1.0
        earned = round(max_points * sum(t["weight"] for t in mine if t["passed"]) / total, 4)
        if any(t.get("over_budget") for t in mine):
            earned = 0.0
        feedback = [{"name": t["name"], "passed": t["passed"], "feedback": t["hint"] or ""} for t in mine]
        questions.append(res.QuestionResult(question, earned, max_points, feedback))
    return questions


@dataclass
class Grader:
    """What every submission of a batch shares."""

    lab: str
    lab_node: nbformat.NotebookNode
    hidden: Path
    exports_spec: list
    hidden_tests: list
    limits: Limits
    profile: str
    isolation: Isolation
    private: Path  # the batch's own folder: root's, traversable (0711), not listable
    threads: int
    data_dir: str | None
    visibility: str = "after_published"
    slim: bool = True  # leave out the instructor cells the grade does not need (slicing.py)

    def grader_uid_for(self, home: Path) -> int | None:
        """The unprivileged user of one submission's executor and trusted side: the owner of
        its home, a fresh uid for every submission (None without isolation)."""
        return None if self.isolation.level == "none" else os.stat(home).st_uid

    def isolation_record(self, run: RunReport | None = None) -> dict:
        record = {"level": self.isolation.level}
        if self.isolation.level == "bwrap":
            record["details"] = (
                "own user, mount, PID, network, IPC, UTS and cgroup namespaces; allow-listed read-only file "
                "system; tmpfs work, /tmp and /dev/shm; no capabilities; a uid of its own"
            )
        elif self.isolation.level == "uid":
            record["details"] = (
                "a uid of its own under resource limits; host file system (secrets checked unreadable) and network"
            )
        else:
            record["details"] = "UNSAFE: the grader's own user (--unsafe-no-isolation)"
        record["resources"] = self.resources
        if self.isolation.notes:
            record["why_not_better"] = list(self.isolation.notes)
        return record

    @property
    def resources(self) -> str:
        group = cgroups.version()
        if group:
            return f"cgroup v{group}: {self.limits.memory >> 20} MiB memory, {self.threads} CPU, {self.limits.processes} tasks"
        return (
            f"resource limits: address space {ADDRESS_SPACE_FACTOR * self.limits.memory >> 20} MiB, "
            f"{self.limits.processes} processes"
        )


def make_grader(
    lab: str,
    limits: Limits,
    profile: str,
    isolation: str = "auto",
    allow_unsafe: bool = False,
    threads: int = 1,
    secrets: list[Path] | None = None,
    visibility: str = "after_published",
    slim: bool = True,
) -> Grader:
    """Everything a batch needs, checked before any submission runs.

    Raises
    ------
    IsolationUnavailable
        When no safe isolation is available (and ``allow_unsafe`` is not set), or when the
        ``uid`` level would leave a secret readable to the submissions.
    """
    lab = resolve_lab(lab)
    data_dir = os.environ.get("CNNLAB_DATA")
    data_dir = os.path.realpath(data_dir) if data_dir else None
    level = detect(isolation, allow_unsafe=allow_unsafe, data_dir=data_dir)
    hidden = hidden_tests_path(lab)
    root = project_root()
    view = needed_paths(data_dir)
    exposed = [p for p in view if any(Path(s).is_relative_to(p) for s in [root / "solutions", root / ".git", hidden])]
    if exposed and level.level != "none":
        raise IsolationUnavailable(
            f"the sandbox would see {', '.join(exposed)}, which holds the solutions or the hidden tests: "
            "install cnnlab and keep CNNLAB_DATA outside the course checkout"
        )
    cgroups.remove_orphans()  # what a grader killed by SIGKILL left behind
    private = Path(tempfile.mkdtemp(prefix="cnnlab-grade-"))
    os.chmod(private, 0o711)
    if level.level == "uid":
        probe_uid = accounts.fresh_uid()
        wanted = [root / "solutions", hidden, root / ".git", private, *(secrets or [])]
        prefix = bubblewrap.exposure_command(level.bwrap, [*view, level.bwrap]) if level.bwrap else []
        readable = readable_to(probe_uid, [str(p) for p in wanted], prefix)
        if readable:
            shutil.rmtree(private, ignore_errors=True)
            raise IsolationUnavailable(
                "at the uid level every secret must be unreadable to the submission's user; these are readable: "
                + ", ".join(readable)
                + " (make them root's, mode 700)"
            )
    lab_node = nbformat.read(lab_notebook(lab, "labs"), as_version=4)
    module = _load_hidden(hidden)
    return Grader(
        lab, lab_node, hidden, module.EXPORTS, module.TESTS, limits, profile, level, private, threads, data_dir,
        visibility, slim,
    )  # fmt: skip


def _ungradable(staged: Staged, grader: Grader, problem: Ungradable, started: float) -> res.SubmissionResult:
    return res.SubmissionResult(
        staged.name, grader.lab, "ungradable", max_score=sum(question_points(grader.lab_node).values()),
        reason=problem.reason, message=str(problem), sha256=staged.sha256, isolation=grader.isolation_record(),
        seconds=round(time.monotonic() - started, 1),
    )  # fmt: skip


def _where(grader: Grader, notebook, cell: int | None) -> str:
    """The last question before cell ``cell`` of the assembled notebook, in the grader's words."""
    if cell is None:
        return ""
    questions = [
        c.metadata.get("cnnlab", {}).get("question") or c.metadata.get("cnnlab", {}).get("export")
        for c in notebook.cells[: cell + 1]
    ]
    last = next((q for q in reversed(questions) if q), None)
    return f" after question {last}" if last else " before the first question"


def grade_one(grader: Grader, staged: Staged) -> res.SubmissionResult:
    """Grade one staged submission. Never raises for a bad submission: it becomes ``ungradable``."""
    started = time.monotonic()
    if staged.problem:
        return _ungradable(staged, grader, staged.problem, started)
    try:
        cells = parse(staged.path.read_bytes())
    except Ungradable as problem:
        return _ungradable(staged, grader, problem, started)
    written = written_answers(grader.lab_node, cells)
    notebook = assemble(grader.lab_node, cells, grader.exports_spec, slim=grader.slim)
    private = Path(tempfile.mkdtemp(prefix="submission-", dir=grader.private))
    os.chmod(private, 0o711)
    home = private / "grader"
    home.mkdir(mode=0o700)
    grader_uid = accounts.fresh_uid() if grader.isolation.level != "none" else None
    if grader_uid is not None:
        os.chown(home, grader_uid, grader_uid)
    box = Sandbox(grader.isolation, grader.limits, private, grader.profile, grader.threads, grader.data_dir)
    result = res.SubmissionResult(
        staged.name, grader.lab, "graded", max_score=sum(question_points(grader.lab_node).values()),
        sha256=staged.sha256, isolation=grader.isolation_record(), written=written,
    )  # fmt: skip
    try:
        report = run_notebook(box, notebook, grader.limits, home, grader_uid)
        tests, trusted_peak = run_trusted(grader, grader.hidden_tests, box.exports_fd, home)
    finally:
        box.close()
        shutil.rmtree(private, ignore_errors=True)
    result.questions = score(grader.lab_node, tests)
    result.score = round(sum(q.points for q in result.questions), 4)
    result.run_seconds = report.seconds
    result.peak_memory_mb = round(report.teardown.peak_memory / 2**20, 1) if report.teardown.peak_memory else None
    result.trusted_peak_memory_mb = round(trusted_peak / 2**20, 1) if trusted_peak else None
    where = _where(grader, notebook, report.reached)
    if report.state in ("timeout", "kernel-died", "crashed", "out-of-memory"):
        result.status = "ungradable"
        result.reason = {"kernel-died": "crash", "crashed": "crash"}.get(report.state, report.state)
        happened = {
            "timeout": "ran out of time",
            "out-of-memory": f"went over the {grader.limits.memory >> 20} MiB memory limit",
        }.get(report.state, "stopped (its kernel died)")
        result.message = f"the notebook {happened}{where}; partial credit for the questions exported before that"
    elif report.interrupted:
        result.message = (
            f"{len(report.interrupted)} cell(s) hit the {grader.limits.cell_timeout} s cell limit and were interrupted"
        )
    if report.teardown.leftover_processes:
        result.message += f" ({report.teardown.leftover_processes} sandbox processes could not be killed)"
    result.seconds = round(time.monotonic() - started, 1)
    return result


def grader_error(staged: Staged, grader: Grader, error: BaseException, started: float) -> res.SubmissionResult:
    """The grader's own failure on one submission: recorded as such, for the staff to look at."""
    result = _ungradable(
        staged, grader, Ungradable("grader-error", "the grader itself failed on this submission; contact the course staff"),
        started,
    )  # fmt: skip
    # The grader's words only: an exception's text could hold something a submission wrote.
    result.isolation["grader_error"] = (
        "the sandbox did not start" if isinstance(error, SandboxError) else type(error).__name__
    )
    return result


def _graded(out: Path, staged: Staged) -> bool:
    """Whether ``out`` holds this very notebook's result: same name and same whole SHA-256
    (the name carries only 48 bits of it)."""
    try:
        return json.loads((out / f"{staged.name}.json").read_text()).get("sha256") == staged.sha256
    except (OSError, ValueError, AttributeError):
        return False


def stage_all(paths: list[Path], staging: Path, max_bytes: int) -> list[Staged]:
    """Each submission copied into the grader's space, once per distinct result name."""
    staged: dict[str, Staged] = {}
    for path in paths:
        item = stage(Path(path), staging, max_bytes)
        staged.setdefault(item.name, item)
    return list(staged.values())


def grade_batch(
    lab: str,
    paths: list[Path],
    out: Path,
    jobs: int = 1,
    force: bool = False,
    limits: Limits | None = None,
    profile: str = "smoke",
    isolation: str = "auto",
    allow_unsafe: bool = False,
    visibility: str = "after_published",
    slim: bool = True,
    shard: Shard | None = None,
    progress=print,
    live: bool | None = None,
) -> list[res.SubmissionResult]:
    """Grade every submission into ``out`` (with ``shard``, only those of that shard); one bad
    submission never stops the batch.

    Results are named by the submission's sanitised stem and content hash: a submission whose
    result exists is skipped unless ``force`` (so an edited notebook with an old name is
    graded again), and each result is written as soon as it is done, so an interrupted batch
    loses nothing. ``progress`` receives the batch's summary lines; each submission's line
    goes to a live bar on a terminal (``live``: default, when stdout is one) or to ``progress``.
    """
    lab = resolve_lab(lab)
    limits = limits or Limits()
    out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    secrets = [out.resolve(), *{Path(p).resolve().parent for p in paths}]
    grader = make_grader(lab, limits, profile, isolation, allow_unsafe, threads, secrets, visibility, slim)
    try:
        staging = grader.private / "staging"
        staging.mkdir(mode=0o700)
        every = stage_all(paths, staging, limits.submission_size)
        staged = [s for s in every if shard is None or shard.owns(s.sha256)]
        write_shard_record(out, shard, [s.name for s in staged], batch_id([s.sha256 for s in every]))
        todo = [s for s in staged if force or not _graded(out, s)]
        which = f", shard {shard} of the batch's {len(every)}" if shard else ""
        progress(
            f"lab {lab} ({LABS[lab][1]}): {len(staged)} submission(s){which}, {len(staged) - len(todo)} already graded, "
            f"{jobs} job(s), isolation: {grader.isolation.level}"
        )
        for note in grader.isolation.notes:
            progress(f"  ({note})")

        def work(item: Staged) -> res.SubmissionResult:
            bar.start(item.name)
            started = time.monotonic()
            try:
                result = grade_one(grader, item)
            except Exception as error:  # the grader's own failure on this submission: record it, go on
                result = grader_error(item, grader, error, started)
            try:
                res.write_result(out, result, visibility)
            except OSError as error:
                result.message += f" (its result could not be written: {error.strerror})"
            return result

        with (
            Progress(len(todo), f"grading lab {lab}", live=live) as bar,
            ThreadPoolExecutor(max_workers=max(1, jobs)) as pool,
        ):
            futures = [pool.submit(work, item) for item in todo]
            for future in as_completed(futures):
                result = future.result()
                reason = f" ({result.reason})" if result.reason else ""
                bar.advance(
                    res.plain(
                        f"[{bar.done + 1}/{len(todo)}] {result.submission}: {result.score:g}/{result.max_score:g} "
                        f"{result.status}{reason} in {result.seconds:.0f} s"
                    )
                )
    finally:
        shutil.rmtree(grader.private, ignore_errors=True)
    names = {s.name for s in staged}
    all_results = [r for r in res.load_results(out) if r.submission in names]
    res.write_gradebook(out, all_results)
    progress(res.summary(all_results))
    return all_results
