"""The trusted side: run the hidden tests on one run's exports, in a process of its own.

``python -I -m cnnlab.grading.trusted HIDDEN_TESTS.py EXPORTS_FD MAX_COUNT MAX_BYTES`` prints
one JSON list: for each test, its question, name, weight, whether it passed, its hint, and
whether an export was over its question's budget. The grader starts it after every process
of the sandbox is dead, as an unprivileged user of its own under a memory limit; it reads
the exports only through the inherited descriptor ``EXPORTS_FD`` and an
:class:`~cnnlab.grading.hidden.Exports`, and imports the hidden tests (instructor code) and
cnnlab, never anything from the submission.
"""

from __future__ import annotations

import importlib.util
import json
import sys

from cnnlab.grading.hidden import KNOWN_EXCEPTIONS, Exports
from cnnlab.grading.safe_io import OverBudget, Rejected


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


def run_tests(hidden, exports_fd: int, max_count: int, max_bytes: int) -> list[dict]:
    """Every hidden test's result; a malformed or oversized export fails tests, never the grader."""
    try:
        exports = Exports(exports_fd, max_count, max_bytes, getattr(hidden, "BUDGETS", {}))
    except Rejected as rejection:
        return [_result(test, str(rejection)) for test in hidden.TESTS]
    failures = exports.failures()
    results = []
    for test in hidden.TESTS:
        exports.question = test.question
        over_budget = False
        try:
            hint = test.run(exports)
        except Rejected as rejection:
            over_budget = isinstance(rejection, OverBudget)
            hint = str(rejection)
            if test.question in failures:
                hint += f" (your code raised {', '.join(failures[test.question])})"
        except Exception as error:  # a malformed export the test did not anticipate
            kind = type(error).__name__ if type(error).__name__ in KNOWN_EXCEPTIONS else "an error"
            hint = f"the exported value could not be checked ({kind})"
        results.append(_result(test, hint, over_budget))
    return results


def main() -> None:
    hidden = load_hidden_tests(sys.argv[1])
    exports_fd, max_count, max_bytes = (int(v) for v in sys.argv[2:5])
    print(json.dumps(run_tests(hidden, exports_fd, max_count, max_bytes)))


if __name__ == "__main__":
    main()
