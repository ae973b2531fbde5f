"""Real lab-02 submissions, honest and adversarial, built from the solution notebook.

``fast_partial`` answers q1, q3, q4 and the predictions q5 and q7 correctly and leaves q2 as
the stub: worth 8 of the 11 points graded automatically (q6 is written, graded by people),
and quick to grade because nothing trains. Most attacks are added to it, so that the
expected score (8, or the part before a crash) shows that the attack changed nothing.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
SOLUTION = ROOT / "solutions" / "02_mlp_vs_convnet.ipynb"
LAB = ROOT / "labs" / "02_mlp_vs_convnet.ipynb"
Q3_CHECK = "lab02-17"  # the check cell of q3: attacks go right after it
Q4_CHECK = "lab02-21"  # the check cell of q4, after which q1-q4 have been exported (q5, q7 come later)
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def solution() -> nbformat.NotebookNode:
    """The solution as a student who wrote every model answer would hand it in: without the
    instructors' BEGIN/END SOLUTION lines (a written answer is copied into the gradebook)."""
    notebook = nbformat.read(SOLUTION, as_version=4)
    for cell in notebook.cells:
        lines = cell.source.split("\n")
        cell.source = "\n".join(line for line in lines if line.strip() not in MARKERS)
    return notebook


def blank() -> nbformat.NotebookNode:
    return nbformat.read(LAB, as_version=4)


def _answer_cell(notebook, question):
    return next(c for c in notebook.cells if c.metadata.get("cnnlab", {}).get("question") == question)


def with_answer(notebook, question: str, source: str) -> nbformat.NotebookNode:
    notebook = copy.deepcopy(notebook)
    _answer_cell(notebook, question).source = source
    return notebook


def fast_partial() -> nbformat.NotebookNode:
    stub = _answer_cell(blank(), "q2").source
    return with_answer(solution(), "q2", stub)


def with_cell_after(notebook, anchor_id: str, source: str) -> nbformat.NotebookNode:
    """Add a code cell, as a student would, after the cell ``anchor_id``."""
    notebook = copy.deepcopy(notebook)
    index = next(i for i, c in enumerate(notebook.cells) if c.id == anchor_id)
    cell = nbformat.v4.new_code_cell(source)
    cell.id = f"student-{len(notebook.cells)}"
    notebook.cells.insert(index + 1, cell)
    return notebook


def write(folder: Path, name: str, notebook) -> Path:
    path = folder / f"{name}.ipynb"
    if isinstance(notebook, (bytes, str)):
        path.write_bytes(notebook if isinstance(notebook, bytes) else notebook.encode())
    else:
        nbformat.write(notebook, path)
    return path


WRONG_MLP = """def build_mlp():
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(128, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))"""

WRONG_DENSE = """def dense_parameters(height, width, channels, units):
    return height * width * channels * units"""


def honest_partial() -> nbformat.NotebookNode:
    """A plausible partly wrong lab: MLP too narrow (q1 0/2), no biases (q3 0/1); q2, q4, q5, q7 right: 8/11."""
    return with_answer(with_answer(solution(), "q1", WRONG_MLP), "q3", WRONG_DENSE)


def nbformat3() -> bytes:
    return json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": []}]}).encode()


def grade_command(lab: str, notebooks, out: Path, *options: str) -> list[str]:
    """The ``cnnlab grade`` command line for these notebooks, as an instructor types it."""
    return [sys.executable, "-m", "cnnlab", "grade", "--lab", lab, *map(str, notebooks), "--out", str(out), *options]
