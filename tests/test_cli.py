"""The cnnlab command and the package metadata."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def cnnlab(*args, env=None):
    environment = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *args], capture_output=True, text=True, env=environment, timeout=300
    )


def test_pyproject_dependencies_have_lower_bounds():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!\[]", dep)[0]: dep for dep in project["dependencies"]}
    for needed in ("tensorflow", "keras", "numpy", "matplotlib", "pillow", "jupyter", "nbval"):
        assert ">=" in names[needed], needed
    assert project["requires-python"] == ">=3.10"
    assert project["scripts"]["cnnlab"] == "cnnlab.cli:main"
    assert "dev" in project["optional-dependencies"]


def test_console_script_is_installed():
    assert (
        shutil.which("cnnlab")
        or (ROOT / ".venv" / "bin" / "cnnlab").exists()
        or os.path.exists(os.path.join(os.path.dirname(sys.executable), "cnnlab"))
    )


def test_doctor_reports_a_healthy_setup(real_data, tmp_path):
    result = cnnlab("doctor", env={"CNNLAB_DATA": str(real_data), "CNNLAB_CACHE": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for expected in ("Python", "TensorFlow", "Keras", "Devices", "Profile", f"CNNLAB_DATA={real_data}", "Cache"):
        assert expected in out
    assert re.search(r"mnist\s+ok\s+4/4 files \(full\) in CNNLAB_DATA", out)
    assert re.search(r"cifar10-subset\s+ok\s+6/6 files \(subset\)", out)
    assert re.search(r"cifar10\s+missing", out)


def test_doctor_fails_on_a_broken_mirror(real_data, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(real_data / "imagenet", mirror / "imagenet")
    index = mirror / "imagenet" / "imagenet_class_index.json"
    index.write_bytes(index.read_bytes() + b" ")
    result = cnnlab(
        "doctor", env={"CNNLAB_DATA": str(mirror), "CNNLAB_CACHE": str(tmp_path / "cache"), "CNNLAB_OFFLINE": "1"}
    )
    assert result.returncode == 1
    assert re.search(r"imagenet-class-index\s+INVALID", result.stdout)
    assert "checksum mismatch" in result.stdout
    assert "mnist is missing and downloads are disabled" in result.stdout


def test_doctor_fails_when_the_mirror_does_not_exist(tmp_path):
    result = cnnlab("doctor", env={"CNNLAB_DATA": str(tmp_path / "nope"), "CNNLAB_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 1 and "is not a folder" in result.stdout


def test_fetch(real_data, tmp_path):
    ok = cnnlab(
        "fetch", "mnist", "imagenet-class-index", env={"CNNLAB_DATA": str(real_data), "CNNLAB_CACHE": str(tmp_path)}
    )
    assert ok.returncode == 0 and "mnist: 4 file(s) ok" in ok.stdout
    unknown = cnnlab("fetch", "imagenet", env={"CNNLAB_CACHE": str(tmp_path)})
    assert unknown.returncode == 1 and "unknown dataset 'imagenet'" in unknown.stderr and "mnist" in unknown.stderr
    offline = cnnlab("fetch", "cifar10", env={"CNNLAB_DATA": "", "CNNLAB_CACHE": str(tmp_path), "CNNLAB_OFFLINE": "1"})
    assert offline.returncode == 1 and "cnnlab fetch cifar10" in offline.stderr
    assert cnnlab("fetch").returncode == 2


def test_unknown_lab_is_a_clear_error():
    result = cnnlab("run", "lab-nine")
    assert result.returncode == 2
    assert "unknown lab 'lab-nine'" in result.stderr and "mlp-vs-convnet" in result.stderr
    assert "Traceback" not in result.stderr
    graded = cnnlab(
        "grade", "--lab", "99", str(ROOT / "labs" / "02_mlp_vs_convnet.ipynb"), "--out", "/tmp/never-written"
    )
    assert graded.returncode == 2 and "unknown lab '99'" in graded.stderr
