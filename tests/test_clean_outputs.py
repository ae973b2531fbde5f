"""No TensorFlow start-up noise (absl, CUDA probing, oneDNN, CPU flags) and no warnings or
tracebacks in the solutions' stored outputs, in `cnnlab doctor`, or on importing cnnlab."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from cnnlab.tf_logging import is_startup_noise, quiet_environment, quiet_stderr

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))

# What must never be stored or printed: each is either noise or a problem to fix at its cause.
UNWANTED = re.compile(
    r"absl::InitializeLog|cudart_stub|cuInit|cuda_platform|cpu_feature_guard|oneDNN"
    r"|UserWarning|DeprecationWarning|FutureWarning|Traceback \(most recent call last\)"
)


def output_texts(cell) -> list[str]:
    texts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            texts.append(output.text)
        elif output.output_type == "error":
            texts.append(f"{output.ename}: {output.evalue}\n" + "\n".join(output.traceback))
        else:
            texts.append(str(output.get("data", {}).get("text/plain", "")))
    return texts


def unwanted_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if UNWANTED.search(line)]


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_stored_outputs_hold_no_start_up_noise_warnings_or_tracebacks(solution):
    notebook = nbformat.read(solution, 4)
    found = [
        f"cell {index}: {line[:160]}"
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        for text in output_texts(cell)
        for line in unwanted_lines(text)
    ]
    errors = [i for i, c in enumerate(notebook.cells) for o in c.get("outputs", []) if o.output_type == "error"]
    assert found == [] and errors == [], f"run `cnnlab run {solution.stem[:2]} --inplace`\n" + "\n".join(found)


NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795322906.961920   26207 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. To turn "
    "them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796141980.687081   30529 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate "
    "compiler flags.",
]
CUDA_ABSENT = [
    "I0000 00:00:1795322906.963261   26207 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    "not be used.",
    "E0000 00:00:1795322910.092193   26207 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed "
    "call to cuInit: UNKNOWN ERROR (303)",
]
REAL = [
    "E0000 00:00:1795322910.092193   26207 op_kernel.cc:1857] OP_REQUIRES failed at conv_ops.cc:1068 : RESOURCE_EXHAUSTED",
    "W0000 00:00:1795322910.092193   26207 gpu_device.cc:2344] Cannot dlopen some GPU libraries.",
    "Traceback (most recent call last):",
    "UserWarning: something the student should see",
]


def test_only_the_start_up_notices_are_noise():
    for line in NOISE:
        assert is_startup_noise(line, gpu_present=False) and is_startup_noise(line, gpu_present=True), line
    for line in CUDA_ABSENT:  # on a machine with a GPU these say why it is not used
        assert is_startup_noise(line, gpu_present=False) and not is_startup_noise(line, gpu_present=True), line
    for line in REAL:
        assert not is_startup_noise(line, gpu_present=False), line


def test_quiet_stderr_drops_the_notices_and_forwards_everything_else(capfd):
    with quiet_stderr():
        os.write(2, ("\n".join([*NOISE, REAL[0], NOISE[0]]) + "\n" + REAL[1][:30]).encode())
        os.write(2, (REAL[1][30:] + "\nno newline at the end").encode())
    assert capfd.readouterr().err == f"{REAL[0]}\n{REAL[1]}\nno newline at the end"
    os.write(2, b"after\n")  # file descriptor 2 is back
    assert capfd.readouterr().err == "after\n"


def test_quiet_environment_keeps_what_the_user_set():
    assert quiet_environment({"PATH": "/bin"}) == {"PATH": "/bin", "TF_CPP_MIN_LOG_LEVEL": "2"}
    assert quiet_environment({"TF_CPP_MIN_LOG_LEVEL": "0"})["TF_CPP_MIN_LOG_LEVEL"] == "0"


def run_quietly_started(arguments: list[str]) -> subprocess.CompletedProcess:
    """Run with the environment a student or CI has: no TensorFlow log level set by anyone."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    return subprocess.run(arguments, capture_output=True, text=True, env=environment, timeout=300, cwd=ROOT)


@pytest.mark.parametrize(
    "arguments",
    [
        [sys.executable, "-c", "import cnnlab.models"],
        [sys.executable, "-c", "import cnnlab, keras; from cnnlab.runtime import gpus; gpus()"],
        [sys.executable, "-m", "cnnlab", "doctor"],
    ],
    ids=["import cnnlab.models", "import cnnlab then keras, look for GPUs", "cnnlab doctor"],
)
def test_nothing_unwanted_on_stderr(arguments):
    result = run_quietly_started(arguments)
    assert unwanted_lines(result.stderr) == [], result.stderr
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_real_error_still_shows():
    code = (
        "import os, cnnlab, keras\n"
        "from cnnlab.tf_logging import quiet_stderr\n"
        "with quiet_stderr():\n"
        "    os.write(2, b'E0000 00:00:1.5  1 op_kernel.cc:1] a real error\\n')\n"
    )
    result = run_quietly_started([sys.executable, "-c", code])
    assert result.stderr == "E0000 00:00:1.5  1 op_kernel.cc:1] a real error\n"


def test_run_starts_a_quiet_kernel(tmp_path, monkeypatch, capfd):
    """What `cnnlab run` stores and what it prints on its terminal (the kernel's own stderr)."""
    from cnnlab.notebooks.execute import execute_notebook

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    source = tmp_path / "setup.ipynb"
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("import os\nprint(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))"),
            nbformat.v4.new_code_cell(
                "import cnnlab  # noqa: I001\nimport keras\n\nfrom cnnlab.runtime import gpus\n\ngpus();"
            ),
        ]
    )
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, source)
    capfd.readouterr()
    executed = execute_notebook(source, profile="smoke")
    assert executed.cells[0].outputs[0].text == "2\n"
    assert executed.cells[1].outputs == []
    terminal = capfd.readouterr()
    assert unwanted_lines(terminal.err) == [] and "WARNING" not in terminal.err, terminal.err
