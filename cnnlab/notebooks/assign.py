"""Generate the student notebooks (``labs/``) from the executed solutions (``solutions/``).

The markers are nbgrader's: in a code cell, the lines between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` become ``# YOUR CODE HERE`` and ``raise NotImplementedError()``, at the
marker's indentation; in a markdown cell they become ``YOUR ANSWER HERE``. The lines between
``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` are left out of the student version
altogether: the solution's asserts that its run shows what a prediction question is graded
against (they would give the answer away before the student predicts it). Outputs and
execution counts are cleared, the run record (profile, device) is dropped, and the question
metadata is kept. The result depends only on the solution notebook, so regenerating is
byte-identical.
"""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import nbformat

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"


def _replace_regions(source: str, cell_type: str, where: str) -> str:
    student = _drop_hidden_tests(_replace_solutions(source, cell_type, where), where)
    if cell_type == "code" and _parses(source) and not _parses(student):
        raise ValueError(
            f"{where}: the student version is not valid Python once the marked regions are replaced "
            "(a region must hold whole statements: put an `if` that only guards hidden tests inside them)"
        )
    return student


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except SyntaxError:  # IPython magics too: such a cell is not checked
        return False
    return True


def _drop_hidden_tests(source: str, where: str) -> str:
    output, inside = [], False
    for number, line in enumerate(source.split("\n"), start=1):
        stripped = line.strip()
        if stripped == BEGIN_HIDDEN:
            if inside:
                raise ValueError(f"{where}, line {number}: {BEGIN_HIDDEN} inside another hidden region")
            inside = True
        elif stripped == END_HIDDEN:
            if not inside:
                raise ValueError(f"{where}, line {number}: {END_HIDDEN} without {BEGIN_HIDDEN}")
            inside = False
        elif not inside:
            output.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN_HIDDEN} is never closed by {END_HIDDEN}")
    return "\n".join(output)


def _replace_solutions(source: str, cell_type: str, where: str) -> str:
    lines, output, inside = source.split("\n"), [], False
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"{where}, line {number}: {BEGIN} inside another solution region")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            if cell_type == "code":
                output += [f"{indent}# YOUR CODE HERE", f"{indent}raise NotImplementedError()"]
            else:
                output.append("YOUR ANSWER HERE")
        elif stripped == END:
            if not inside:
                raise ValueError(f"{where}, line {number}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            output.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN} is never closed by {END}")
    return "\n".join(output)


def make_student_notebook(solution: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The student version of one solution notebook (a new object; the input is unchanged).

    A lab's notebook (``name`` like ``02_mlp_vs_convnet.ipynb``) starts with the Colab
    bootstrap cell (:mod:`~cnnlab.notebooks.colab`)."""
    from cnnlab.notebooks.colab import bootstrap_cell, lab_of

    notebook = copy.deepcopy(solution)
    notebook.metadata.get("cnnlab", {}).pop("run", None)
    for index, cell in enumerate(notebook.cells):
        cell.source = _replace_regions(cell.source, cell.cell_type, f"{name}, cell {index}")
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    lab = lab_of(name)
    if lab is not None:
        notebook.cells.insert(0, bootstrap_cell(lab))
    return notebook


def solution_lines(solution: nbformat.NotebookNode) -> list[str]:
    """Every non-blank line inside a solution or hidden-tests region, stripped (for the no-leak test)."""
    found, inside = [], False
    for cell in solution.cells:
        for line in cell.source.split("\n"):
            stripped = line.strip()
            if stripped in (BEGIN, END, BEGIN_HIDDEN, END_HIDDEN):
                inside = stripped in (BEGIN, BEGIN_HIDDEN)
            elif inside and stripped:
                found.append(stripped)
    return found


def student_notebook_text(solution_path: Path) -> str:
    """The exact text of the generated student notebook for ``solution_path``."""
    solution = nbformat.read(solution_path, as_version=4)
    return nbformat.writes(make_student_notebook(solution, solution_path.name)) + "\n"


def assign(solutions: Path, labs: Path, check: bool = False) -> list[Path]:
    """Write ``labs/NN_name.ipynb`` for each ``solutions/NN_name.ipynb``.

    Returns the lab files that were (with ``check=True``: that would be) created or changed.
    """
    changed = []
    sources = sorted(solutions.glob("[0-9][0-9]_*.ipynb"))
    if not sources:
        raise FileNotFoundError(f"no solution notebooks (NN_name.ipynb) in {solutions}")
    labs.mkdir(parents=True, exist_ok=True)
    for source in sources:
        target = labs / source.name
        text = student_notebook_text(source)
        if not target.exists() or target.read_text() != text:
            changed.append(target)
            if not check:
                target.write_text(text)
    return changed
