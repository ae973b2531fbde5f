"""Running a notebook in place never loses the stored one."""

from __future__ import annotations

import nbformat
import pytest
from nbclient.exceptions import CellExecutionError

from cnnlab.notebooks.execute import execute_notebook


def test_a_failed_run_in_place_leaves_the_notebook_and_writes_a_failed_copy(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError('broken')")]
    path = tmp_path / "lab.ipynb"
    nbformat.write(notebook, path)
    before = path.read_bytes()
    with pytest.raises(CellExecutionError):
        execute_notebook(path, path)
    assert path.read_bytes() == before  # the stored notebook is untouched
    failed = nbformat.read(tmp_path / "lab.failed.ipynb", as_version=4)
    assert failed.cells[1].outputs[0]["ename"] == "ValueError"
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_successful_run_in_place_replaces_the_notebook(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("print(6 * 7)")]
    path = tmp_path / "lab.ipynb"
    nbformat.write(notebook, path)
    execute_notebook(path, path)
    assert nbformat.read(path, as_version=4).cells[0].outputs[0]["text"] == "42\n"
    assert not (tmp_path / "lab.failed.ipynb").exists()
