"""No public check and no student lab gives a hidden answer away.

Each hidden-test file lists, in ``ANSWERS``, what a student must never find: expected
values, formulas, the solution's key lines. A public check runs on the student's machine and
its source is installed with cnnlab; a student lab is what students receive. Neither may
contain any of them (in the lab, outputs and metadata included).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnlab.grading.trusted import load_hidden_tests
from cnnlab.notebooks.catalog import LABS, project_root

ROOT = project_root()


@pytest.mark.parametrize("lab", sorted(LABS))
def test_public_checks_and_student_labs_hold_no_hidden_answer(lab):
    hidden = load_hidden_tests(str(ROOT / "solutions" / "hidden" / f"lab{lab}.py"))
    answers = getattr(hidden, "ANSWERS", None)
    assert answers and all(isinstance(a, str) and len(a) >= 2 for a in answers), (
        f"solutions/hidden/lab{lab}.py must list ANSWERS: what a public check or the lab must never show"
    )
    check = (ROOT / "cnnlab" / "checks" / f"lab{lab}.py").read_text()
    student = json.dumps(json.loads((ROOT / "labs" / f"{LABS[lab][0]}.ipynb").read_text()))
    student_text = json.loads(Path(ROOT / "labs" / f"{LABS[lab][0]}.ipynb").read_text())
    sources = "\n".join("".join(c["source"]) for c in student_text["cells"])
    for answer in answers:
        assert answer not in check, f"cnnlab/checks/lab{lab}.py gives away {answer!r}"
        assert answer not in sources and answer not in student, f"the student lab {lab} gives away {answer!r}"


def test_the_scan_finds_an_answer_in_a_check():
    """A check that printed an answer would be caught (the scan is not vacuous)."""
    hidden = load_hidden_tests(str(ROOT / "solutions" / "hidden" / "lab05.py"))
    leaked = (ROOT / "cnnlab" / "checks" / "lab05.py").read_text() + f"\nprint({hidden.ANSWERS[0]!r})\n"
    assert hidden.ANSWERS[0] in leaked
