"""The lab notebooks: where they are, how labs/ is generated from solutions/, how they run."""

import cnnlab.notebooks.quick_import  # noqa: F401, I001 - first: before nbformat is imported
from cnnlab.notebooks.assign import BEGIN, END, make_student_notebook, solution_lines
from cnnlab.notebooks.catalog import LABS, lab_notebook, project_root
from cnnlab.notebooks.execute import execute_notebook

__all__ = [
    "BEGIN",
    "END",
    "LABS",
    "execute_notebook",
    "lab_notebook",
    "make_student_notebook",
    "project_root",
    "solution_lines",
]
