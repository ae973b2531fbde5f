"""Build the notebook that actually runs: the instructors' cells with the student's answers.

The instructors' lab notebook (``labs/NN_name.ipynb``) supplies every cell: setup, data,
checks, metadata and points. From the submission only two things are taken:

- the source of each **answer cell**, matched by question id (the first cell that claims an
  id wins; a missing answer leaves the stub, which scores 0);
- **added code cells**, whose ids are not in the lab, placed after the lab cell they follow.

Everything else in the submission (edited or deleted instructor cells, metadata, points,
outputs, kernelspec) is ignored. The hidden tests' export cells are inserted after their
anchors, each wrapped so that a failure is recorded and the run goes on. With ``slim`` (the
grader's default), the instructor cells that the grade does not need are left out
(:mod:`~cnnlab.grading.slicing`).
"""

from __future__ import annotations

import copy

import nbformat

from cnnlab.grading.intake import StudentCell
from cnnlab.grading.slicing import cells_to_skip

PREAMBLE = """# cnnlab grader: where this run's exports go
from cnnlab.grading.export import export_array, export_model, export_value, record_failure"""


def _export_cell(question: str, code: str) -> nbformat.NotebookNode:
    indented = "\n".join("    " + line for line in code.strip().split("\n"))
    source = f"try:\n{indented}\nexcept Exception as failure:\n    record_failure({question!r}, failure)"
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata = {"cnnlab": {"export": question}}
    return cell


def assemble(
    lab: nbformat.NotebookNode, student: list[StudentCell], exports: list[tuple[str, str, str]], slim: bool = False
) -> nbformat.NotebookNode:
    """The notebook to execute.

    Parameters
    ----------
    lab : the instructors' lab notebook (student version, answers stubbed).
    student : the submission's cells, from :func:`~cnnlab.grading.intake.read_submission`.
    exports : (anchor, question, code): run ``code`` after the cell ``anchor``, a question id
        (its check cell, or its answer cell when there is no check) or a cell id.
    slim : leave out the instructor cells that the grade does not need.
    """
    notebook = copy.deepcopy(lab)
    answers: dict[str, str] = {}
    for cell in student:
        if cell.cell_type == "code" and cell.question and cell.question not in answers:
            answers[cell.question] = cell.source
    # A tool that clears metadata keeps cell ids: an answer cell without its question id is
    # still found by the lab's id for it.
    answer_ids = {
        cell.id: cell.metadata["cnnlab"]["question"]
        for cell in notebook.cells
        if "question" in cell.metadata.get("cnnlab", {})
    }
    for cell in student:
        question = answer_ids.get(cell.cell_id)
        if cell.cell_type == "code" and not cell.question and question and question not in answers:
            answers[question] = cell.source
    lab_ids = {cell.id for cell in notebook.cells}
    added_after: dict[str | None, list[str]] = {}
    previous = None
    for cell in student:
        if cell.cell_id in lab_ids:
            previous = cell.cell_id
        elif cell.cell_type == "code" and not cell.question and cell.source.strip():
            added_after.setdefault(previous, []).append(cell.source)
    instructor_cells = {id(cell) for cell in notebook.cells}
    anchored = {anchor for anchor, _, _ in exports}
    cells = [nbformat.v4.new_code_cell(PREAMBLE)]
    for source in added_after.get(None, []):
        cells.append(nbformat.v4.new_code_cell(source))
    anchors = {}
    for cell in notebook.cells:
        tag = cell.metadata.get("cnnlab", {})
        if "question" in tag and tag["question"] in answers:
            cell.source = answers[tag["question"]]
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
        anchors[cell.id] = len(cells)
        if "question" in tag:
            anchors.setdefault(tag["question"], len(cells))
        if "check" in tag:
            anchors[tag["check"]] = len(cells)
        for source in added_after.get(cell.id, []):
            cells.append(nbformat.v4.new_code_cell(source))
    for anchor, question, _ in exports:
        if anchor not in anchors:
            raise ValueError(f"export for {question}: no cell or question {anchor!r} in the lab")
    # Insert from the bottom up so that earlier positions stay valid; same anchor keeps its order.
    ordered = sorted(enumerate(exports), key=lambda item: (anchors[item[1][0]], item[0]), reverse=True)
    for _, (anchor, question, code) in ordered:
        cells.insert(anchors[anchor], _export_cell(question, code))
    if slim:
        code = [c for c in cells if c.cell_type == "code"]
        skip = cells_to_skip([(c.source, id(c) in instructor_cells and _skippable(c, anchored), "") for c in code])
        left_out = {id(code[i]) for i in skip}
        cells = [c for c in cells if id(c) not in left_out]
    notebook.cells = cells
    for index, cell in enumerate(notebook.cells):
        cell.id = f"graded-{index:03d}"
    return notebook


def _skippable(cell, anchored: set[str]) -> bool:
    """The instructors allow leaving this lab cell out: a check, or marked ``grading: skip``;
    never an answer cell or the anchor of an export."""
    tag = cell.metadata.get("cnnlab", {})
    if "question" in tag or cell.id in anchored:
        return False
    return "check" in tag or tag.get("grading") == "skip"
