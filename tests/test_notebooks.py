"""labs/ is generated from solutions/, leaks nothing, keeps the question metadata, and runs
for a student up to the first unanswered question."""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from cnnlab.notebooks.assign import BEGIN, assign, make_student_notebook, solution_lines, student_notebook_text
from cnnlab.notebooks.catalog import LABS

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


def questions(notebook) -> dict[str, int]:
    return {
        c.metadata["cnnlab"]["question"]: c.metadata["cnnlab"]["points"]
        for c in notebook.cells
        if "question" in c.metadata.get("cnnlab", {})
    }


def test_there_are_five_labs():
    assert [p.stem for p in SOLUTIONS] == [stem for stem, _ in LABS.values()]


def test_labs_are_what_assign_generates(tmp_path):
    assert assign(ROOT / "solutions", ROOT / "labs", check=True) == [], "run `cnnlab assign`"
    first = assign(ROOT / "solutions", tmp_path / "a")
    second = assign(ROOT / "solutions", tmp_path / "b")
    assert len(first) == len(second) == 5
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()  # deterministic
        assert a.read_bytes() == (ROOT / "labs" / a.name).read_bytes()


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_no_solution_line_in_any_lab(solution):
    lab_text = "\n".join(path.read_text() for path in sorted((ROOT / "labs").glob("*.ipynb")))
    lab_lines = {
        line.strip()
        for nb in sorted((ROOT / "labs").glob("*.ipynb"))
        for c in nbformat.read(nb, 4).cells
        for line in c.source.split("\n")
    }
    lines = solution_lines(nbformat.read(solution, 4))
    assert len(lines) >= 3
    leaked = [line for line in lines if line in lab_lines]
    assert leaked == []
    assert "BEGIN SOLUTION" not in lab_text and "END SOLUTION" not in lab_text


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_lab_keeps_questions_and_has_no_outputs(solution):
    source = nbformat.read(solution, 4)
    lab = nbformat.read(ROOT / "labs" / solution.name, 4)
    assert questions(lab) == questions(source) and questions(lab)
    assert lab.cells[0].metadata["cnnlab"]["bootstrap"] == "colab"  # the Colab cell, then the solution's cells
    assert [c.id for c in lab.cells[1:]] == [c.id for c in source.cells]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in lab.cells if c.cell_type == "code")
    assert "run" not in lab.metadata["cnnlab"]
    stubs = [c for c in lab.cells if "question" in c.metadata.get("cnnlab", {})]
    code = [c for c in stubs if c.cell_type == "code"]
    assert all("raise NotImplementedError()" in c.source and "# YOUR CODE HERE" in c.source for c in code)
    assert all("YOUR ANSWER HERE" in c.source for c in stubs if c.cell_type == "markdown")  # written answers


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_every_question_has_a_public_check(solution):
    notebook = nbformat.read(solution, 4)
    module = importlib.import_module(f"cnnlab.checks.lab{notebook.metadata['cnnlab']['lab']}")
    checked = {
        c.metadata["cnnlab"]["check"]: c.source for c in notebook.cells if "check" in c.metadata.get("cnnlab", {})
    }
    written = {
        c.metadata["cnnlab"]["question"]
        for c in notebook.cells
        if c.metadata.get("cnnlab", {}).get("kind") == "written"
    }
    for question in set(questions(notebook)) - written:  # written answers are graded by people
        assert question in checked, f"{question} has no check cell"
        assert f"checks.{question}(" in checked[question]
        assert callable(getattr(module, question))
    # and every check passed when the solution ran
    outputs = {
        c.metadata["cnnlab"]["check"]: "".join(o.get("text", "") for o in c.outputs)
        for c in notebook.cells
        if "check" in c.metadata.get("cnnlab", {})
    }
    for question, text in outputs.items():
        assert f"{question} PASS" in text, text


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_stored_outputs_say_which_profile_and_device(solution):
    notebook = nbformat.read(solution, 4)
    run = notebook.metadata["cnnlab"]["run"]
    assert run["profile"] in ("smoke", "full") and run["device"]
    first_output = "".join(o.get("text", "") for o in notebook.cells[1].outputs if o.get("name") == "stdout")
    assert f"cnnlab profile: {run['profile']}" in first_output and "device:" in first_output
    assert all(o.output_type != "error" for c in notebook.cells if c.cell_type == "code" for o in c.outputs)


def _stored_text(cell) -> str:
    return "".join(
        o.get("text", "") + "".join(o.get("data", {}).get("text/plain", "")) for o in cell.get("outputs", [])
    )


def test_lab02_predictions_come_before_what_they_predict_and_the_readings_quote_the_stored_numbers():
    """Lab 02: nothing before a prediction shows its answer (the checks of q1 and q2 once printed
    both parameter counts); each prediction has its check right after it and its measurement
    later; the readings and the written answer are solution-only; every percentage and every
    count the solution's text quotes is one its stored outputs show; and the stored shift
    measurement is the one q5 is graded against."""
    from cnnlab.grading.trusted import load_hidden_tests

    solution = nbformat.read(ROOT / "solutions" / "02_mlp_vs_convnet.ipynb", 4)
    lab = nbformat.read(ROOT / "labs" / "02_mlp_vs_convnet.ipynb", 4)
    hidden = load_hidden_tests(str(ROOT / "solutions" / "hidden" / "lab02.py"))
    cells = {c.id: i for i, c in enumerate(solution.cells)}
    tags = [c.metadata.get("cnnlab", {}) for c in solution.cells]
    predictions = {tag["question"]: i for i, tag in enumerate(tags) if tag.get("kind") == "prediction"}
    reveals = {"q5": cells["lab02-23"], "q7": cells["lab02-35"]}
    assert set(predictions) == set(reveals)
    giveaways = {"q5": ("pixels right (",), "q7": ("431,754", "203,530", "times the MLP's", "twice the param")}
    for question, i in predictions.items():
        variable = solution.cells[i].source.split("=")[0].strip()
        assert all(variable not in c.source for c in solution.cells[:i] if c.cell_type == "code")
        assert tags[i + 1].get("check") == question
        assert reveals[question] > i + 1 and "report" in solution.cells[reveals[question]].metadata.get("tags", [])
        before = [c.source + _stored_text(c) for c in solution.cells[:i]]
        assert not [text for text in before for word in giveaways[question] if word in text], question
    assert [t["question"] for t in tags if t.get("kind") == "written"] == ["q6"]
    readings = [j for j, c in enumerate(solution.cells) if c.cell_type == "markdown" and BEGIN in c.source]
    assert len(readings) >= 4  # three readings of the results and the written answer
    student = {c.id: c.source for c in lab.cells}
    assert all(student[solution.cells[j].id].endswith("YOUR ANSWER HERE") for j in readings)
    stored = "\n".join(_stored_text(c) for c in solution.cells)
    quoted = {
        number
        for j in readings
        for number in re.findall(r"\d+\.\d+%|\d{1,3}(?:,\d{3})+", solution.cells[j].source.split(BEGIN)[1])
    }
    assert quoted and not [n for n in quoted if n not in stored], [n for n in quoted if n not in stored]
    measured = dict(
        re.findall(r"(MLP|ConvNet)\s+[\d.]+% -> ([\d.]+)%", _stored_text(solution.cells[cells["lab02-23"]]))
    )
    assert set(measured) == {"MLP", "ConvNet"}
    for network, accuracy in measured.items():
        assert abs(float(accuracy) - hidden.SHIFT_MEASURED["smoke"][network]) <= 3, (network, accuracy)


def test_lab04_predictions_come_before_what_they_predict_and_the_readings_quote_the_stored_numbers():
    """Lab 04: each prediction has its check right after it and, later, the cell that measures
    it (tagged report), and nothing before it names its variable; the readings and the written
    answer are solution-only; every percentage and every number with three decimals that they
    quote is one the stored outputs show; and the stored eigenvalue and lighting measurement are
    the ones question 12 is graded against."""
    from cnnlab.grading.trusted import load_hidden_tests

    solution = nbformat.read(ROOT / "solutions" / "04_training_and_regularization.ipynb", 4)
    lab = nbformat.read(ROOT / "labs" / "04_training_and_regularization.ipynb", 4)
    hidden = load_hidden_tests(str(ROOT / "solutions" / "hidden" / "lab04.py"))
    tags = [c.metadata.get("cnnlab", {}) for c in solution.cells]
    predictions = {tag["question"]: i for i, tag in enumerate(tags) if tag.get("kind") == "prediction"}
    assert set(predictions) == {"q3", "q4", "q7", "q11", "q12"}
    for question, i in predictions.items():
        variable = solution.cells[i].source.split("=")[0].strip()
        assert all(variable not in c.source for c in solution.cells[:i] if c.cell_type == "code")
        assert tags[i + 1].get("check") == question
        assert "report" in solution.cells[i + 2].metadata.get("tags", []) or (
            "report" in solution.cells[i + 3].metadata.get("tags", [])  # q4, q7: data loaded or models trained first
        ), question
    assert [t["question"] for t in tags if t.get("kind") == "written"] == ["q8"]
    readings = [j for j, c in enumerate(solution.cells) if c.cell_type == "markdown" and BEGIN in c.source]
    assert len(readings) >= 8
    student = {c.id: c.source for c in lab.cells}
    assert all(student[solution.cells[j].id].endswith("YOUR ANSWER HERE") for j in readings)
    stored = "\n".join(_stored_text(c) for c in solution.cells)
    quoted = {
        number
        for j in readings
        for number in re.findall(r"\d+\.\d+%|\d+\.\d{3,}|\d{1,3}(?:,\d{3})+", solution.cells[j].source.split(BEGIN)[1])
    }
    assert quoted and not [n for n in quoted if n not in stored], [n for n in quoted if n not in stored]
    assert f"[{hidden.CIFAR_SUBSET_LAMBDA_1}" in stored
    measured = re.search(r"along the first component: ([\d.]+) grey levels", stored)
    assert measured and abs(float(measured.group(1)) - hidden.GREY_LEVELS) < 0.1


def test_lab05_predictions_come_before_what_they_predict_and_conclusions_are_the_students():
    solution = nbformat.read(ROOT / "solutions" / "05_transfer_learning.ipynb", 4)
    lab = nbformat.read(ROOT / "labs" / "05_transfer_learning.ipynb", 4)
    tags = [c.metadata.get("cnnlab", {}) for c in solution.cells]
    predictions = [i for i, tag in enumerate(tags) if tag.get("kind") == "prediction"]
    assert len(predictions) >= 2 and any(tag.get("kind") == "written" for tag in tags)
    for i in predictions:
        variable = solution.cells[i].source.split("=")[0].strip()
        assert all(variable not in c.source for c in solution.cells[:i] if c.cell_type == "code")
        assert tags[i + 1].get("check") == tags[i]["question"]
        assert any("report" in c.metadata.get("tags", []) for c in solution.cells[i + 2 :])  # the result, after
    conclusions = [j for j, c in enumerate(solution.cells) if c.cell_type == "markdown" and BEGIN in c.source]
    assert len(conclusions) >= 4  # three readings of the results and the written question
    student = {c.id: c.source for c in lab.cells}
    assert all(student[solution.cells[j].id].endswith("YOUR ANSWER HERE") for j in conclusions)


def test_lab03_asks_before_it_tells_and_corrects_the_lectures():
    """Predictions come before the cells that reveal them, conclusions are the solution's alone,
    and the lectures' errors are named where students meet them."""
    solution = nbformat.read(ROOT / "solutions" / "03_vgg_and_classics.ipynb", 4)
    lab = {c.id: c for c in nbformat.read(ROOT / "labs" / "03_vgg_and_classics.ipynb", 4).cells}
    tags = [c.metadata.get("cnnlab", {}) for c in solution.cells]
    predictions = [i for i, tag in enumerate(tags) if tag.get("kind") == "prediction"]
    assert len(predictions) >= 2 and sum(tag.get("kind") == "written" for tag in tags) >= 1
    for i in predictions:
        variable = solution.cells[i].source.split("=")[0].strip()
        assert all(variable not in c.source for c in solution.cells[:i] if c.cell_type == "code")
        assert tags[i + 1].get("check") == tags[i]["question"]
        assert any("report" in c.metadata.get("tags", []) for c in solution.cells[i + 2 :])  # the result, after
    conclusions = [c for c in solution.cells if c.cell_type == "markdown" and BEGIN in c.source]
    assert len(conclusions) >= 6  # five readings of results and the written question
    assert all(lab[c.id].source.endswith("YOUR ANSWER HERE") for c in conclusions)
    text = "\n".join(c.source for c in lab.values() if c.cell_type == "markdown")
    assert "five depths" not in text and "A-LRN" in text  # the paper's Table 1 has six configurations
    assert "GoogLeNet won it" in text  # not VGG, whatever one lecture says
    assert "0.0001" in text and "1e-5" in text  # ResNet's weight decay: the paper's, and the slide's
    assert "ZeroPadding2D((1, 1))" in text and "the slide's does not" in text  # not passed off as the slide's code
    stored = "\n".join(o.get("text", "") for c in solution.cells for o in c.get("outputs", []))
    assert "0.000 GMACs" not in stored


def test_lab01_predictions_come_before_their_reveal_and_the_lab_holds_no_answer():
    """Each prediction comes before the checked output that reveals it, and a solution-only reading
    follows; the student lab holds none of the hidden tests' answers."""
    from cnnlab.grading.batch import hidden_tests_path
    from cnnlab.grading.trusted import load_hidden_tests

    solution = nbformat.read(ROOT / "solutions" / "01_convolutions.ipynb", 4)
    tags = [c.metadata.get("cnnlab", {}) for c in solution.cells]
    predictions = [i for i, tag in enumerate(tags) if tag.get("kind") == "prediction"]
    assert len(predictions) >= 2 and any(tag.get("kind") == "written" for tag in tags)
    for i in predictions:
        variable = solution.cells[i].source.split("=")[0].strip()
        assert all(variable not in c.source for c in solution.cells[:i] if c.cell_type == "code")
        check, reveal, reading = solution.cells[i + 1 : i + 4]
        assert check.metadata["cnnlab"].get("check") == tags[i]["question"]
        assert reveal.source.startswith("# NBVAL_CHECK_OUTPUT") and reveal.metadata["cnnlab"]["grading"] == "skip"
        assert reading.cell_type == "markdown" and BEGIN in reading.source
    stored = "\n".join("".join(o.get("text", "") for o in c.get("outputs", [])) for c in solution.cells)
    readings = [c.source.split(BEGIN)[1] for c in solution.cells if c.cell_type == "markdown" and BEGIN in c.source]
    quoted = {number for reading in readings for number in re.findall(r"\d{1,3}(?:,\d{3})+", reading)}
    assert len(quoted) >= 6 and [n for n in quoted if n not in stored] == []  # the text quotes what the run shows
    lab_text = (ROOT / "labs" / "01_convolutions.ipynb").read_text()
    answers = load_hidden_tests(str(hidden_tests_path("01"))).ANSWERS
    assert [answer for answer in answers if answer in lab_text or json.dumps(answer)[1:-1] in lab_text] == []


def test_markers_must_be_balanced():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1\n### BEGIN SOLUTION\ny = 2")])
    with pytest.raises(ValueError, match="never closed"):
        make_student_notebook(notebook, "broken.ipynb")
    notebook.cells[0].source = "### END SOLUTION"
    with pytest.raises(ValueError, match="without"):
        make_student_notebook(notebook, "broken.ipynb")


def test_stub_keeps_indentation_and_markdown_answers():
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION"),
            nbformat.v4.new_markdown_cell("Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"),
        ]
    )
    student = make_student_notebook(notebook)
    assert student.cells[0].source == "def f():\n    # YOUR CODE HERE\n    raise NotImplementedError()"
    assert student.cells[1].source == "Why?\nYOUR ANSWER HERE"
    assert notebook.cells[0].source.count("42") == 1  # the input is not modified


def test_hidden_test_lines_are_left_out_of_the_student_lab_and_count_as_secret():
    source = "print(drop)\n### BEGIN HIDDEN TESTS\nassert drop < 0.5  # the graded answer\n### END HIDDEN TESTS\nshow()"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    assert make_student_notebook(notebook).cells[0].source == "print(drop)\nshow()"
    assert solution_lines(notebook) == ["assert drop < 0.5  # the graded answer"]
    notebook.cells[0].source = "### BEGIN HIDDEN TESTS\nassert True"
    with pytest.raises(ValueError, match="never closed"):
        make_student_notebook(notebook, "broken.ipynb")
    # a region that is the whole body of an `if` would leave the student a syntax error
    notebook.cells[0].source = "if fast:\n    ### BEGIN HIDDEN TESTS\n    assert drop < 0.5\n    ### END HIDDEN TESTS"
    with pytest.raises(ValueError, match="broken.ipynb.*not valid Python"):
        make_student_notebook(notebook, "broken.ipynb")


@pytest.mark.parametrize("lab", sorted((ROOT / "labs").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_lab_code_cell_is_valid_python(lab):
    """A student runs each cell: none may be left unparseable by the regions taken out (IPython
    magics and shell escapes are written on lines of their own and left as they are)."""
    for cell in nbformat.read(lab, 4).cells:
        if cell.cell_type == "code" and not re.search(r"^\s*[!%]", cell.source, re.MULTILINE):
            ast.parse(cell.source, filename=f"{lab.name}, cell {cell.id}")


@pytest.mark.parametrize("lab", sorted((ROOT / "labs").glob("*.ipynb")), ids=lambda p: p.stem)
def test_student_lab_runs_until_the_first_unanswered_question(lab):
    notebook = nbformat.read(lab, 4)
    first_question = next(i for i, c in enumerate(notebook.cells) if "question" in c.metadata.get("cnnlab", {}))
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(lab.parent)}}
    )
    with pytest.raises(CellExecutionError) as info:
        client.execute()
    assert "NotImplementedError" in str(info.value)
    failed = next(
        i for i, c in enumerate(notebook.cells) if any(o.output_type == "error" for o in c.get("outputs", []))
    )
    assert failed >= first_question
    executed = [c for c in notebook.cells[:failed] if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in executed)
    checks = [c for c in notebook.cells[:failed] if "check" in c.metadata.get("cnnlab", {})]
    for cell in checks:  # the checks above the failure report "not answered yet", they do not crash
        assert re.search(r"q\d NOT YET: not answered yet", "".join(o.get("text", "") for o in cell.outputs))


def test_student_text_is_a_pure_function_of_the_solution():
    for solution in SOLUTIONS:
        assert student_notebook_text(solution) == (ROOT / "labs" / solution.name).read_text()


def test_execute_records_the_run_and_keeps_the_failing_copy(tmp_path):
    from cnnlab.notebooks.execute import execute_notebook

    source = tmp_path / "broken.ipynb"
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError('boom')")]
    )
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, source)
    with pytest.raises(CellExecutionError, match="boom"):
        execute_notebook(source, tmp_path / "out" / "broken.ipynb", profile="smoke")
    executed = nbformat.read(tmp_path / "out" / "broken.ipynb", 4)
    assert executed.metadata["cnnlab"]["run"]["profile"] == "smoke"
    assert executed.cells[1].outputs[0]["ename"] == "ValueError"
