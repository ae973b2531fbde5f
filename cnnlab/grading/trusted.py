"""The trusted side: run the hidden tests on one run's exports, in a process of its own.

``python -m cnnlab.grading.trusted HIDDEN_TESTS.py EXPORT_DIR MAX_BYTES`` prints one JSON
object: for each test, its question, name, weight, and pass or hint. It imports the hidden
tests (instructor code) and cnnlab, never anything from the submission, and reads the
exports only through :class:`~cnnlab.grading.hidden.Exports`.
"""

from __future__ import annotations

import importlib.util
import json
import sys

from cnnlab.grading.hidden import Exports
from cnnlab.grading.safe_io import Rejected


def load_hidden_tests(path: str):
    spec = importlib.util.spec_from_file_location("cnnlab_hidden_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tests(hidden, export_dir: str, max_bytes: int) -> list[dict]:
    try:
        exports = Exports(export_dir, max_bytes)
    except Rejected as rejection:
        return [
            {"question": t.question, "name": t.name, "weight": t.weight, "passed": False, "hint": str(rejection)}
            for t in hidden.TESTS
        ]
    failures = exports.failures()
    results = []
    for test in hidden.TESTS:
        try:
            hint = test.run(exports)
        except Rejected as rejection:
            hint = str(rejection)
            if test.question in failures:
                hint += f" (your code raised {', '.join(sorted(set(map(str, failures[test.question]))))})"
        except Exception as error:  # a malformed export the test did not anticipate
            hint = f"the exported value could not be checked ({type(error).__name__})"
        results.append(
            {"question": test.question, "name": test.name, "weight": test.weight, "passed": hint is None, "hint": hint}
        )
    return results


def main() -> None:
    hidden = load_hidden_tests(sys.argv[1])
    print(json.dumps(run_tests(hidden, sys.argv[2], int(sys.argv[3]))))


if __name__ == "__main__":
    main()
