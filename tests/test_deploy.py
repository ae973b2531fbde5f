"""The recipes in deploy/, checked where they cannot run: the Kubernetes manifests parse and
name the right command, shard arguments and limits; the Slurm script builds the right
``--shard K/N`` (run with a stub ``apptainer`` and ``cnnlab``); one install script serves the
container image, CI and Gradescope."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cnnlab.grading.gradescope_package import SETUP_SH

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
SBATCH = DEPLOY / "slurm" / "grade-array.sbatch"
INSTALL = DEPLOY / "install.sh"

# Records its arguments, one per line, in $RECORD: stands in for cnnlab.
CNNLAB_STUB = '#!/bin/sh\nprintf "%s\\n" "$@" > "$RECORD"\n'
# Records its own arguments in $RECORD.apptainer, then runs the command after the image, as
# `apptainer exec [options] IMAGE COMMAND...` does.
APPTAINER_STUB = """#!/bin/bash
printf "%s\\n" "$@" > "$RECORD.apptainer"
while [ "$#" -gt 0 ] && [ "$1" != cnnlab ]; do shift; done
exec "$@"
"""


def _stub(folder: Path, name: str, text: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    (folder / name).chmod(0o755)


def _documents(name: str) -> list[dict]:
    return list(yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text()))


def _container(job: dict) -> dict:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return container


def _run_as_kubernetes(container: dict, index: int, tmp_path: Path) -> list[str]:
    """Run the container's command as its pod would: Kubernetes replaces $(NAME) by the
    container's variables, JOB_COMPLETION_INDEX included; cnnlab is a stub."""
    env = {e["name"]: e["value"] for e in container.get("env", [])} | {"JOB_COMPLETION_INDEX": str(index)}
    command = [re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), part) for part in container["command"]]
    args = [re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), part) for part in container["args"]]
    _stub(tmp_path / "bin", "cnnlab", CNNLAB_STUB)
    record = tmp_path / "record"
    done = subprocess.run(
        [*command, *args], env=env | {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "RECORD": str(record)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return record.read_text().splitlines()


def test_kubernetes_job_is_indexed_and_its_index_is_the_shard(tmp_path):
    job, policy = _documents("grade-job.yaml")
    assert job["kind"] == "Job" and job["spec"]["completionMode"] == "Indexed"
    container = _container(job)
    shards = int(next(e["value"] for e in container["env"] if e["name"] == "SHARDS"))
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == shards
    assert '--shard "$(JOB_COMPLETION_INDEX)/$SHARDS"' in container["args"][0]
    lab = next(e["value"] for e in container["env"] if e["name"] == "LAB")
    assert _run_as_kubernetes(container, 3, tmp_path) == [
        "grade", "--lab", lab, "--shard", f"3/{shards}", "/grading/submissions/*.ipynb",
        "--out", "/grading/out/shard-3", "--jobs", "1",
    ]  # fmt: skip
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert container["securityContext"]["runAsUser"] == 0  # the grader needs root for fresh uids
    # Results go to a volume claim; submissions are read-only.
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/grading/submissions"].get("readOnly") is True and not mounts["/grading/out"].get("readOnly")
    (volume,) = job["spec"]["template"]["spec"]["volumes"]
    assert volume["persistentVolumeClaim"]["claimName"] and {m["name"] for m in mounts.values()} == {volume["name"]}
    # No network for the grading pods: a policy of both kinds with no rule.
    assert policy["kind"] == "NetworkPolicy" and set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert not policy["spec"].get("ingress") and not policy["spec"].get("egress")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= job["spec"]["template"]["metadata"]["labels"].items()


def test_kubernetes_resources_come_from_one_named_per_submission_peak():
    text = (DEPLOY / "kubernetes" / "grade-job.yaml").read_text()
    job = _documents("grade-job.yaml")[0]
    resources = _container(job)["resources"]
    assert resources["requests"]["memory"] == resources["limits"]["memory"] == "768Mi"
    assert resources["requests"]["cpu"] == resources["limits"]["cpu"] == "1"  # and --jobs 1
    assert "memory: &memory_per_submission" in text and "memory: *memory_per_submission" in text
    assert "PLACEHOLDER" not in text and "docs/benchmarks.md" in text and "1088Mi for lab 03" in text
    assert "bwrap" in text and "privileged: true" in text and "uid" in text  # what the pod needs, stated
    assert job["spec"]["activeDeadlineSeconds"] > 0


def test_kubernetes_merge_job_merges_the_shards_folders():
    (merge,) = _documents("merge-job.yaml")
    container = _container(merge)
    assert container["args"] == ["exec cnnlab gradebook merge /grading/out/shard-* --out /grading/out/merged"]
    assert container["image"] == _container(_documents("grade-job.yaml")[0])["image"]


def _sbatch(tmp_path: Path, **slurm: str) -> tuple[subprocess.CompletedProcess, Path, Path]:
    submissions, out = tmp_path / "submissions", tmp_path / "grades"
    submissions.mkdir(exist_ok=True)
    for name in ("b", "a", "c"):
        (submissions / f"{name}.ipynb").write_text("{}")
    _stub(tmp_path / "bin", "cnnlab", CNNLAB_STUB)
    _stub(tmp_path / "bin", "apptainer", APPTAINER_STUB)
    env = {
        "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "RECORD": str(tmp_path / "record"), "LAB": "03",
        "SUBMISSIONS": str(submissions), "OUT": str(out), "IMAGE": str(tmp_path / "grader.sif"), **slurm,
    }  # fmt: skip
    done = subprocess.run(["bash", str(SBATCH)], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    return done, submissions, out


def test_slurm_script_passes_bash_n_and_asks_for_one_core():
    assert subprocess.run(["bash", "-n", str(SBATCH)], capture_output=True).returncode == 0
    directives = dict(
        re.match(r"#SBATCH --([\w-]+)=(\S+)", line).groups()
        for line in SBATCH.read_text().splitlines()
        if line.startswith("#SBATCH --")
    )
    assert directives["cpus-per-task"] == "1" and directives["mem"] == "768M" and directives["time"]
    assert "docs/benchmarks.md" in SBATCH.read_text() and "gradebook merge" in SBATCH.read_text()


def test_slurm_task_grades_its_own_shard_into_its_own_folder(tmp_path):
    done, submissions, out = _sbatch(
        tmp_path,
        SLURM_ARRAY_TASK_ID="2",
        SLURM_ARRAY_TASK_COUNT="4",
        SLURM_ARRAY_TASK_MIN="0",
        SLURM_ARRAY_TASK_MAX="3",
    )
    assert done.returncode == 0, done.stderr
    notebooks = [str(submissions / f"{name}.ipynb") for name in ("a", "b", "c")]
    assert (tmp_path / "record").read_text().splitlines() == [
        "grade", "--lab", "03", "--shard", "2/4", *notebooks, "--out", f"{out}/shard-2", "--jobs", "1",
    ]  # fmt: skip
    assert (out / "shard-2").is_dir() and not (out / "shard-1").exists()
    apptainer = (tmp_path / "record.apptainer").read_text().splitlines()
    assert apptainer[0] == "exec" and str(tmp_path / "grader.sif") in apptainer
    assert f"{out}/shard-2" in apptainer and f"{submissions}:{submissions}:ro" in apptainer


def test_slurm_regrading_one_shard_keeps_the_shard_count(tmp_path):
    done, _, out = _sbatch(tmp_path, SLURM_ARRAY_TASK_ID="3", SLURM_ARRAY_TASK_COUNT="1", SHARDS="8")
    assert done.returncode == 0, done.stderr
    record = (tmp_path / "record").read_text().splitlines()
    assert record[record.index("--shard") + 1] == "3/8" and record[record.index("--out") + 1] == f"{out}/shard-3"


@pytest.mark.parametrize(
    ("slurm", "words"),
    [
        ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1",
          "SLURM_ARRAY_TASK_MAX": "4"}, "--array=0-3"),
        ({}, "submit this script as a job array"),
    ],
)  # fmt: skip
def test_slurm_refuses_an_array_whose_indices_are_not_the_shards(tmp_path, slurm, words):
    done, _, _ = _sbatch(tmp_path, **slurm)
    assert done.returncode != 0 and words in done.stderr and not (tmp_path / "record").exists()


def test_one_install_script_for_the_image_ci_and_gradescope():
    assert subprocess.run(["bash", "-n", str(INSTALL)], capture_output=True).returncode == 0
    containerfile = (DEPLOY / "Containerfile").read_text()
    instructions = re.sub(r"\\\n", " ", containerfile)  # continuation lines joined
    assert re.search(r"^COPY deploy/install\.sh (\S+)$", instructions, re.M)
    copied_to = re.search(r"^COPY deploy/install\.sh (\S+)$", instructions, re.M)[1]
    assert re.search(rf"^RUN bash {re.escape(copied_to)} /opt/cnnlab/venv\b", instructions, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^bash deploy/install\.sh( --no-system-packages)? \.venv$", ci, re.M)
    assert "python3 -m venv" not in ci and ". .venv/bin/activate" in ci  # the venv is install.sh's
    assert 'bash "$source_dir/install.sh" "$venv"' in SETUP_SH


def _install_env(tmp_path: Path) -> dict:
    """A PATH with just what install.sh uses and no bwrap, and an apt-get that records."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "id", "ls", "rm", "cut", "setpriv", "nsenter"):
        found = shutil.which(tool)
        assert found, f"{tool} is missing on this machine"
        (bin_dir / tool).symlink_to(found)
    _stub(bin_dir, "apt-get", f'#!/bin/sh\necho "$@" >> {tmp_path}/apt-get\n')
    python = getattr(sys, "_base_executable", sys.executable)
    return {"PATH": str(bin_dir), "PYTHON": python, "HOME": str(tmp_path), "PIP_NO_INDEX": "1"}


def test_install_script_makes_a_fresh_venv_and_only_checks_system_packages_in_ci(tmp_path):
    env = _install_env(tmp_path)
    venv = tmp_path / "venv"
    (venv / "old").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("an old environment")
    done = subprocess.run(
        ["bash", str(INSTALL), "--no-system-packages", str(venv)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "no bwrap on PATH" in done.stderr and not (tmp_path / "apt-get").exists()
    assert (venv / "bin" / "pip").exists() and not (venv / "old").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="install.sh uses apt-get only as root")
def test_install_script_installs_only_the_missing_system_packages(tmp_path):
    done = subprocess.run(
        ["bash", str(INSTALL), str(tmp_path / "venv")], env=_install_env(tmp_path), capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "apt-get").read_text().splitlines()
    assert calls == ["update -qq", "install -y -qq --no-install-recommends bubblewrap"]


def test_install_script_never_removes_a_folder_that_is_not_a_venv(tmp_path):
    keep = tmp_path / "project"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    env = _install_env(tmp_path)
    done = subprocess.run(
        ["bash", str(INSTALL), "--no-system-packages", str(keep)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1 and "is not a virtual environment" in done.stderr
    assert (keep / "notes.txt").read_text() == "mine"
