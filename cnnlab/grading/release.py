"""The student bundle: the lab notebooks, the students' guide, and the cnnlab package as a
wheel, with neither solutions nor hidden tests, checked line by line before it is released."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat

from cnnlab.notebooks.assign import solution_lines
from cnnlab.notebooks.catalog import project_root

TRIVIAL = {"return x", "return model", "pass", ")", "]", "}", "else:", "try:", "return out"}


def secret_lines(root: Path) -> list[str]:
    """Lines that must never reach students: solution regions and hidden-test source."""
    lines = set()
    for notebook in sorted((root / "solutions").glob("*.ipynb")):
        lines.update(solution_lines(nbformat.read(notebook, 4)))
    for hidden in sorted((root / "solutions" / "hidden").glob("*.py")):
        lines.update(line.strip() for line in hidden.read_text().splitlines())
    return sorted(
        line
        for line in lines
        if len(line) >= 12 and line not in TRIVIAL and not line.startswith(("#", "import ", "from ", '"""'))
    )


def _readable(name: str, raw: bytes) -> str:
    """The text a person would read: a notebook's cell sources, or the file itself."""
    text = raw.decode("utf-8", "replace")
    if name.endswith(".ipynb"):
        try:
            return "\n".join(cell.source for cell in nbformat.reads(text, as_version=4).cells)
        except Exception:  # not a readable notebook: scan it as text
            return text
    return text


def bundle_texts(bundle: Path):
    """(name, text) of every file in the bundle, the wheel's members included."""
    for path in sorted(bundle.rglob("*")):
        if path.suffix == ".whl":
            with zipfile.ZipFile(path) as wheel:
                for member in wheel.namelist():
                    yield f"{path.name}:{member}", _readable(member, wheel.read(member))
        elif path.is_file():
            yield str(path.relative_to(bundle)), _readable(path.name, path.read_bytes())


def scan(bundle: Path, root: Path) -> list[str]:
    secrets = secret_lines(root)
    problems = []
    for name, text in bundle_texts(bundle):
        if "solutions/hidden" in name or "/hidden/lab" in name or name.endswith("_solution.ipynb"):
            problems.append(f"{name}: instructor file in the bundle")
        present = {line.strip() for line in text.splitlines()}
        problems += [f"{name}: contains {line!r}" for line in secrets if line in present]
    return problems


def build_release(out: Path) -> tuple[Path, list[str]]:
    root = project_root()
    bundle = out / "cnnlab-student"
    shutil.rmtree(bundle, ignore_errors=True)
    (bundle / "labs").mkdir(parents=True)
    for notebook in sorted((root / "labs").glob("*.ipynb")):
        shutil.copy2(notebook, bundle / "labs" / notebook.name)
    shutil.copy2(root / "docs" / "students.md", bundle / "README.md")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(bundle), str(root)],
        check=True,
    )
    problems = scan(bundle, root)
    if problems:
        shutil.rmtree(bundle, ignore_errors=True)
    return bundle, problems
