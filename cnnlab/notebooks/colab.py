"""Labs that open in Google Colab: a bootstrap cell, and "Open in Colab" links.

Every generated lab starts with :func:`bootstrap_cell`. On Colab, and only when cnnlab is
not installed, it installs cnnlab (from the source the instructors set at ``cnnlab release``;
PyPI's ``cnnlab`` by default) and fetches the lab's data; anywhere else, and on Colab once
cnnlab is there, it does nothing. ``cnnlab release --colab-base URL`` puts an "Open in
Colab" link at the top of each lab in the student bundle and lists the links in the
bundle's README.
"""

from __future__ import annotations

import nbformat

from cnnlab.notebooks.catalog import LAB_ASSETS, LABS

DEFAULT_SOURCE = "cnnlab"  # what pip installs on Colab: a PyPI name, a pinned version or a URL
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"

BOOTSTRAP = """# On Google Colab only: install cnnlab and this lab's data when they are missing.
# Anywhere else (JupyterHub, a laptop, the grader) this cell does nothing.
import importlib.util
import subprocess
import sys

if "google.colab" in sys.modules and importlib.util.find_spec("cnnlab") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", {source!r}], check=True)
    subprocess.run([sys.executable, "-m", "cnnlab", "fetch", {assets}], check=True)"""


def bootstrap_source(lab: str, source: str = DEFAULT_SOURCE) -> str:
    """The bootstrap cell's code for lab ``lab`` ("01" ... "05")."""
    return BOOTSTRAP.format(source=source, assets=", ".join(repr(a) for a in LAB_ASSETS[lab]))


def bootstrap_cell(lab: str, source: str = DEFAULT_SOURCE) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(bootstrap_source(lab, source))
    cell.id = f"lab{lab}-colab"
    cell.metadata = {"cnnlab": {"bootstrap": "colab", "grading": "skip"}}
    return cell


def lab_of(notebook_name: str) -> str | None:
    """The lab number of a notebook file name such as ``02_mlp_vs_convnet.ipynb``."""
    stem = notebook_name.removesuffix(".ipynb")
    return next((number for number, (lab_stem, _) in LABS.items() if lab_stem == stem), None)


def colab_link(base: str, notebook_name: str) -> str:
    """Where Colab opens ``notebook_name`` from ``base``, e.g.
    ``https://colab.research.google.com/github/ORG/REPO/blob/main/labs``."""
    if not base.startswith("https://colab.research.google.com/"):
        raise ValueError(f"--colab-base must start with https://colab.research.google.com/, got {base!r}")
    return f"{base.rstrip('/')}/{notebook_name}"


def set_install_source(notebook: nbformat.NotebookNode, lab: str, source: str) -> None:
    """Point the bootstrap cell at ``source`` (a release's own cnnlab)."""
    for cell in notebook.cells:
        if cell.metadata.get("cnnlab", {}).get("bootstrap") == "colab":
            cell.source = bootstrap_source(lab, source)


def add_colab_link(notebook: nbformat.NotebookNode, link: str) -> None:
    """An "Open in Colab" badge in its own cell, right after the bootstrap cell."""
    cell = nbformat.v4.new_markdown_cell(f"[![Open in Colab]({BADGE})]({link})")
    cell.id = "open-in-colab"
    index = next(
        (i + 1 for i, c in enumerate(notebook.cells) if c.metadata.get("cnnlab", {}).get("bootstrap") == "colab"), 0
    )
    notebook.cells.insert(index, cell)
