"""Labs on Google Colab: the bootstrap cell and the "Open in Colab" links of a release."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types

import nbformat
import pytest

from cnnlab.notebooks.catalog import LAB_ASSETS, LABS, project_root
from cnnlab.notebooks.colab import bootstrap_source, colab_link

ROOT = project_root()
FIND_SPEC = importlib.util.find_spec


def run_cell(source: str, monkeypatch, on_colab: bool, installed: bool) -> list[list[str]]:
    """Execute the cell as a kernel would; return the commands it ran."""
    ran = []
    monkeypatch.setattr(subprocess, "run", lambda command, **_: ran.append(command))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "cnnlab" and not installed else FIND_SPEC(name, *a),
    )
    exec(source, {})
    return ran


@pytest.mark.parametrize("lab", sorted(LABS))
def test_every_lab_starts_with_the_bootstrap_cell(lab):
    notebook = nbformat.read(ROOT / "labs" / f"{LABS[lab][0]}.ipynb", as_version=4)
    cell = notebook.cells[0]
    assert cell.cell_type == "code" and cell.source == bootstrap_source(lab)
    assert cell.metadata["cnnlab"] == {"bootstrap": "colab", "grading": "skip"}  # the grader leaves it out
    assert all(repr(asset) in cell.source for asset in LAB_ASSETS[lab])


def test_the_cell_does_nothing_off_colab_or_once_cnnlab_is_there(monkeypatch):
    source = bootstrap_source("02")
    assert run_cell(source, monkeypatch, on_colab=False, installed=False) == []
    assert run_cell(source, monkeypatch, on_colab=True, installed=True) == []


def test_on_colab_without_cnnlab_it_installs_and_fetches_the_labs_data(monkeypatch):
    ran = run_cell(bootstrap_source("04", "cnnlab==0.2.0"), monkeypatch, on_colab=True, installed=False)
    assert ran == [
        [sys.executable, "-m", "pip", "install", "--quiet", "cnnlab==0.2.0"],
        [sys.executable, "-m", "cnnlab", "fetch", "mnist", "cifar10-subset", "pets-subset"],
    ]


def test_a_release_links_every_lab_to_colab_and_installs_its_source(tmp_path):
    from cnnlab.grading.release import build_release

    base = "https://colab.research.google.com/github/course/cnn-labs/blob/main/labs"
    bundle, problems = build_release(tmp_path, colab_base=base, install_source="cnnlab==0.2.0")
    assert problems == []
    readme = (bundle / "README.md").read_text()
    for stem, _ in LABS.values():
        notebook = nbformat.read(bundle / "labs" / f"{stem}.ipynb", as_version=4)
        link = f"{base}/{stem}.ipynb"
        assert link in notebook.cells[1].source and "colab-badge.svg" in notebook.cells[1].source
        assert "'cnnlab==0.2.0'" in notebook.cells[0].source
        assert f"[{stem}.ipynb]({link})" in readme
    with pytest.raises(ValueError, match="--colab-base must start with https://colab.research.google.com/"):
        colab_link("http://example.com/labs", "01_convolutions.ipynb")
