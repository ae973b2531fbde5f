"""The trusted side: run the hidden tests on one run's exports, in a process of its own.

``python -I -m cnnlab.grading.trusted HIDDEN_TESTS.py EXPORTS_FD MAX_COUNT MAX_BYTES [SKIP]``
prints one JSON line per test as soon as it is done: its index, question, name, weight,
whether it passed, its hint, and whether an export was over its question's budget. ``SKIP``
lists test indices (comma-separated) to leave out: the grader reruns the process without a
test that killed it (see ``batch.run_trusted``). Each test has ``TEST_SECONDS`` at most. The grader starts it after every process
of the sandbox is dead, as an unprivileged user of its own under a memory limit; it reads
the exports only through the inherited descriptor ``EXPORTS_FD`` and an
:class:`~cnnlab.grading.hidden.Exports`, and imports the hidden tests (instructor code) and
cnnlab, never anything from the submission.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import sys

from cnnlab.grading.hidden import KNOWN_EXCEPTIONS, Exports
from cnnlab.grading.safe_io import OverBudget, Rejected

TEST_SECONDS = 120


class TestTimeout(Exception):
    """A hidden test ran past TEST_SECONDS (an export too slow to check)."""


def _out_of_time(*_):
    raise TestTimeout


def load_hidden_tests(path: str):
    spec = importlib.util.spec_from_file_location("cnnlab_hidden_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(test, hint: str | None, over_budget: bool = False) -> dict:
    return {
        "question": test.question,
        "name": test.name,
        "weight": test.weight,
        "passed": hint is None,
        "hint": hint,
        "over_budget": over_budget,
    }


def run_tests(hidden, exports_fd: int, max_count: int, max_bytes: int, skip=(), emit=None) -> list[dict]:
    """Every hidden test's result (but those in ``skip``); a malformed, oversized or slow
    export fails tests, never the grader. ``emit(index, result)`` is called after each."""
    emit = emit or (lambda index, result: None)
    try:
        exports = Exports(exports_fd, max_count, max_bytes, getattr(hidden, "BUDGETS", {}))
    except Rejected as rejection:
        exports, refused = None, str(rejection)
    failures = exports.failures() if exports else {}
    results = []
    for index, test in enumerate(hidden.TESTS):
        if index in skip:
            continue
        if exports is None:
            results.append(_result(test, refused))
            emit(index, results[-1])
            continue
        exports.question = test.question
        over_budget = False
        signal.signal(signal.SIGALRM, _out_of_time)
        signal.alarm(TEST_SECONDS)
        try:
            hint = test.run(exports)
        except Rejected as rejection:
            over_budget = isinstance(rejection, OverBudget)
            hint = str(rejection)
            if test.question in failures:
                hint += f" (your code raised {', '.join(failures[test.question])})"
        except TestTimeout:
            hint = f"checking the export took longer than the grader allows ({TEST_SECONDS} s)"
        except Exception as error:  # a malformed export the test did not anticipate
            kind = type(error).__name__ if type(error).__name__ in KNOWN_EXCEPTIONS else "an error"
            hint = f"the exported value could not be checked ({kind})"
        finally:
            signal.alarm(0)
        results.append(_result(test, hint, over_budget))
        emit(index, results[-1])
    return results


def main() -> None:
    hidden = load_hidden_tests(sys.argv[1])
    exports_fd, max_count, max_bytes = (int(v) for v in sys.argv[2:5])
    skip = {int(i) for i in sys.argv[5].split(",") if i} if len(sys.argv) > 5 else set()

    def emit(index: int, result: dict) -> None:
        print(json.dumps({"index": index, **result}), flush=True)

    run_tests(hidden, exports_fd, max_count, max_bytes, skip, emit)


if __name__ == "__main__":
    main()
