"""The hidden tests of every lab that has them: right answers pass, wrong answers lose exactly
their question's tests, and no hint gives the answer away.

The exports are made here, in this process, by running the hidden files' export code on the
solution's answer cells (or on an answer with one realistic mistake), as the grader's export
cells would in the student's kernel; the trusted side's :func:`run_tests` then reads them.
One lab is also graded end to end through ``cnnlab grade``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from cnnlab.grading import export as export_helpers
from cnnlab.grading.assemble import assemble
from cnnlab.grading.batch import hidden_tests_path, lab_points
from cnnlab.grading.trusted import load_hidden_tests, run_tests
from cnnlab.notebooks.catalog import lab_notebook

ROOT = Path(__file__).resolve().parents[2]
HIDDEN_LABS = sorted(path.stem.removeprefix("lab") for path in (ROOT / "solutions" / "hidden").glob("lab*.py"))


EARLIER_CELLS = {"03": "reference = keras.applications.VGG16(weights=None)"}  # what lab 03's q2 answer reads


def answer_cells(lab: str) -> dict[str, str]:
    notebook = nbformat.read(lab_notebook(lab, "solutions"), as_version=4)
    return {c.metadata["cnnlab"]["question"]: c.source for c in notebook.cells if "question" in c.metadata.get("cnnlab", {})}  # fmt: skip


def run_exports(lab: str, tmp_path: Path, changed: dict[str, tuple[str, str]] | None = None, extra: str = ""):
    """Define the solution's answers (with ``changed[q] = (old, new)`` substituted), run every
    export whose anchor is a question, and return the hidden tests' results by test name."""
    exports_dir = tmp_path / "exports"
    namespace = {}
    exec("import keras\nimport numpy as np\nimport cnnlab", namespace)  # the labs' setup imports
    exec(EARLIER_CELLS.get(lab, ""), namespace)
    for question, source in answer_cells(lab).items():
        old, new = (changed or {}).get(question, ("", ""))
        assert old in source, f"the mutation for {question} no longer matches the solution"
        exec(source.replace(old, new) if old else source, namespace)
    exec(extra, namespace)
    hidden = load_hidden_tests(str(hidden_tests_path(lab)))
    exec("from cnnlab.grading.export import export_array, export_model, export_value, record_failure", namespace)
    import os

    os.environ["CNNLAB_EXPORT_DIR"] = str(exports_dir)
    try:
        for anchor, question, code in hidden.EXPORTS:
            if anchor.startswith("q") or extra:
                try:
                    exec(code, namespace)
                except Exception as failure:
                    export_helpers.record_failure(question, failure)
    finally:
        del os.environ["CNNLAB_EXPORT_DIR"]
    results = run_tests(hidden, str(exports_dir), 64 << 20)
    return {r["name"]: r for r in results}


@pytest.mark.parametrize("lab", HIDDEN_LABS)
def test_every_question_has_hidden_tests_and_every_export_an_anchor(lab):
    hidden = load_hidden_tests(str(hidden_tests_path(lab)))
    lab_node = nbformat.read(lab_notebook(lab, "labs"), as_version=4)
    questions = {c.metadata["cnnlab"]["question"] for c in lab_node.cells if "question" in c.metadata.get("cnnlab", {})}
    assert {t.question for t in hidden.TESTS} == questions  # a question without tests would score 0
    assemble(lab_node, [], hidden.EXPORTS)  # raises on an anchor that is not in the lab
    assert lab_points(lab) > 0


LAB01_MISTAKES = {
    # question: (solution text, mistaken text), the test names that must fail, a hint fragment
    "flipped kernel": (
        {
            "q1": (
                'weights = np.asarray(kernel, dtype="float32")',
                'weights = np.asarray(kernel, dtype="float32")[::-1, ::-1]',
            )
        },
        {"fixed-weight Conv2D layer: response to a new kernel"},
        "not flipped",
    ),
    "no flip in convolve": (
        {"q2": ("return cross_correlate(image, kernel[::-1, ::-1])", "return cross_correlate(image, kernel)")},
        {"true convolution on other sizes"},
        "flip the kernel",
    ),
    "float size": ({"q4": ("return int(size)", "return size")}, {"whole output sizes"}, "must return an int"),
    "weights without biases": (
        {"q6": ("conv1_parameters = (11 * 11 * 3 + 1) * 96", "conv1_parameters = 11 * 11 * 3 * 96")},
        {"AlexNet CONV1 and POOL1"},
        "params",
    ),
}


def test_lab01_solution_passes_every_hidden_test(tmp_path):
    results = run_exports("01", tmp_path)
    assert len(results) == 10 and all(r["passed"] for r in results.values()), [r for r in results.values() if not r["passed"]]  # fmt: skip


@pytest.mark.parametrize("mistake", sorted(LAB01_MISTAKES))
def test_lab01_mistakes_fail_only_their_tests(tmp_path, mistake):
    changed, failing, hint = LAB01_MISTAKES[mistake]
    results = run_exports("01", tmp_path, changed)
    assert {name for name, r in results.items() if not r["passed"]} == failing
    for name in failing:
        assert hint in results[name]["hint"]
        assert not any(value in results[name]["hint"] for value in ("55", "34944", "34,944", "27"))


LAB03_MISTAKES = {
    "narrow classifier": (
        {"q1": ('Dense(4096, activation="relu", name="fc1")', 'Dense(1024, activation="relu", name="fc1")')},
        {"VGG16 classifier, other number of classes"},
        "fc1",
    ),
    "MiB instead of MB": (
        {"q2": ("megabytes_per_image = total_activations * 4 / 1e6", "megabytes_per_image = total_activations * 4 / 2**20")},
        {"VGG16 activation memory"},
        "10^6",
    ),
    "ReLU before the addition": (
        {"q3": ("return keras.layers.ReLU()(keras.layers.Add()([y, shortcut]))", "return keras.layers.Add()([keras.layers.ReLU()(y), shortcut])")},
        {"residual block identity shortcut"},
        "final ReLU",
    ),
}  # fmt: skip


def test_lab03_answers_pass_and_an_untrained_network_does_not(tmp_path):
    results = run_exports("03", tmp_path, extra="small_vgg = build_small_vgg()")  # untrained
    failed = {name for name, r in results.items() if not r["passed"]}
    assert failed == {"trained small VGG test accuracy"}, [results[n] for n in failed]
    assert "below the grading threshold" in results["trained small VGG test accuracy"]["hint"]


@pytest.mark.parametrize("mistake", sorted(LAB03_MISTAKES))
def test_lab03_mistakes_fail_only_their_tests(tmp_path, mistake):
    changed, failing, hint = LAB03_MISTAKES[mistake]
    results = run_exports("03", tmp_path, changed)
    untrained = {"trained small VGG test accuracy"}  # nothing is trained here, so that export is missing
    assert {name for name, r in results.items() if not r["passed"]} == failing | untrained
    for name in failing:
        assert hint in results[name]["hint"]
        assert not any(value in results[name]["hint"] for value in ("15,237,608", "15237608", "60.9", "4096"))


def test_lab01_graded_end_to_end(tmp_path):
    """Through the sandbox: the solution earns every point; a float-returning size function
    loses half of question 4 and nothing else."""
    solution = nbformat.read(ROOT / "solutions" / "01_convolutions.ipynb", as_version=4)
    nbformat.write(solution, tmp_path / "solution.ipynb")
    mistaken = nbformat.read(ROOT / "solutions" / "01_convolutions.ipynb", as_version=4)
    cell = next(c for c in mistaken.cells if c.metadata.get("cnnlab", {}).get("question") == "q4")
    cell.source = cell.source.replace("return int(size)", "return size")
    nbformat.write(mistaken, tmp_path / "float_size.ipynb")
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, "-m", "cnnlab", "grade", "--lab", "01", str(tmp_path / "solution.ipynb"), str(tmp_path / "float_size.ipynb"), "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    solution_result = json.loads((out / "solution.json").read_text())
    mistaken_result = json.loads((out / "float_size.json").read_text())
    assert solution_result["status"] == "graded" and solution_result["score"] == solution_result["max_score"] == 15
    points = {q["question"]: q["points"] for q in mistaken_result["questions"]}
    assert points == {"q1": 2, "q2": 3, "q3": 2, "q4": 1, "q5": 3, "q6": 3}


def test_lab03_solution_graded_end_to_end(tmp_path):
    """The heaviest lab through the sandbox: two VGG16s and VGG A to E fit the default memory
    limit, and the trained small VGG is exported after training and passes."""
    nbformat.write(nbformat.read(ROOT / "solutions" / "03_vgg_and_classics.ipynb", as_version=4), tmp_path / "s.ipynb")
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, "-m", "cnnlab", "grade", "--lab", "03", str(tmp_path / "s.ipynb"), "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads((out / "s.json").read_text())
    assert (result["status"], result["score"], result["max_score"]) == ("graded", 10, 10), result
