"""The student bundle: the lab notebooks, the students' guide, and the cnnlab package as a
wheel, with neither solutions nor hidden tests, checked line by line before it is released."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat

from cnnlab.notebooks.assign import solution_lines
from cnnlab.notebooks.catalog import project_root

BARE_RETURN = re.compile(r"^return [A-Za-z_][A-Za-z0-9_]*$")
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
        if len(line) >= 12
        and line not in TRIVIAL
        and not BARE_RETURN.match(line)  # `return found` tells nothing; library code has it too
        and not line.startswith(("#", "import ", "from ", '"""'))
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


def build_release(
    out: Path, colab_base: str | None = None, install_source: str | None = None
) -> tuple[Path, list[str]]:
    """The student bundle in ``out/cnnlab-student``, and the leaks the scan found (none, or
    the bundle is removed). With ``colab_base``, each lab gets an "Open in Colab" link and the
    README lists them; with ``install_source``, the labs' Colab bootstrap installs that cnnlab."""
    from cnnlab.notebooks.colab import add_colab_link, colab_link, lab_of, set_install_source

    root = project_root()
    bundle = out / "cnnlab-student"
    shutil.rmtree(bundle, ignore_errors=True)
    (bundle / "labs").mkdir(parents=True)
    links = []
    for path in sorted((root / "labs").glob("*.ipynb")):
        notebook, lab = nbformat.read(path, as_version=4), lab_of(path.name)
        if install_source and lab:
            set_install_source(notebook, lab, install_source)
        if colab_base:
            links.append((path.name, colab_link(colab_base, path.name)))
            add_colab_link(notebook, links[-1][1])
        nbformat.write(notebook, bundle / "labs" / path.name)
    readme = (root / "docs" / "students.md").read_text()
    if links:
        readme += "\n## Open the labs in Google Colab\n\n" + "".join(f"- [{name}]({link})\n" for name, link in links)
    (bundle / "README.md").write_text(readme)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(bundle), str(root)],
        check=True,
    )
    problems = scan(bundle, root)
    if problems:
        shutil.rmtree(bundle, ignore_errors=True)
    return bundle, problems
