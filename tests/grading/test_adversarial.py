"""The grader's adversarial suite: real lab-02 submissions, each with the exact expected result.

Two batches are graded once per session with `cnnlab grade --jobs 2`:
- "full" (normal limits): the solution (three copies, for determinism), a blank lab, an
  honest partly wrong lab, and attacks that ride on correct answers;
- "attacks" (short limits: 20 s per cell, 60 s per notebook): everything else, mostly added
  to ``fast_partial`` (worth 5/8), so that an unchanged score proves the attack did nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from cnnlab.grading.sandbox import BASE_UID, namespaces_available

from . import submissions as s

ROOT = Path(__file__).resolve().parents[2]
SECRET = "grader-secret-7f3a9c"
NEEDS_NAMESPACES = pytest.mark.skipif(
    not namespaces_available(), reason="network, user and folder isolation need root and unshare"
)

ATTACK_AFTER_Q3 = {
    "print_fake_score": 'print("Score: 100/100")\nprint(\'{"score": 8, "tests": [{"name": "q2", "score": 3}]}\')',
    "excepthook_and_traceback": (
        "import sys\nsys.excepthook = lambda *a: None\nip = get_ipython()\nip.showtraceback = lambda *a, **k: None\n"
        "ip.set_custom_exc((Exception,), lambda *a, **k: None)\nraise RuntimeError('hidden')"
    ),
    "monkeypatch_everything": (
        "import builtins, numpy, keras, cnnlab.checks.lab02, cnnlab.grading.export as ex\n"
        "numpy.allclose = lambda *a, **k: True\nnumpy.array_equal = lambda *a, **k: True\n"
        "keras.Model.count_params = lambda self: 431_754\ncnnlab.checks.lab02.q2 = lambda *a: print('q2 PASS') or True\n"
        "builtins.isinstance = (lambda real: (lambda o, t: True if t is int else real(o, t)))(builtins.isinstance)\n"
        "ex.record_failure = lambda *a: None"
    ),
    "sys_exit": "import sys\nsys.exit(0)",
    "while_true": "while True:\n    pass",
    "big_allocation": "import numpy as np\nhuge = np.ones(20 * 1024**3 // 8)",
    "print_a_gigabyte": 'print("x" * 10**9)',
    "fill_the_disk": (
        "import os\nchunk = b'0' * (64 * 1024 * 1024)\ni = 0\ntry:\n    while True:\n"
        "        with open(f'fill{i}', 'wb') as f:\n            for _ in range(4):\n                f.write(chunk)\n        i += 1\n"
        "except OSError as e:\n    print('disk full after', i, 'files:', type(e).__name__)"
    ),
}
KILLERS_AFTER_Q3 = {  # expected: ungradable, with q1 (2) and q3 (1) already exported
    "os_exit": ("import os\nos._exit(0)", {"crash"}),
    "kill_parent": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)", {"crash"}),
    "ignore_sigint_loop": (
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
        {"timeout"},
    ),
    "fork_bomb": (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        {"timeout", "crash"},
    ),
}


def _guessed_results_paths(out: Path) -> str:
    return (
        "import json, os, pathlib, subprocess\n"
        f"targets = [{str(out / 'fake_results_files.json')!r}, {str(out / 'gradebook.csv')!r}, '/autograder/results/results.json', '../grades/fake.json', '../fake_results_files.json']\n"
        "fake = json.dumps({'score': 8, 'status': 'graded'})\n"
        "for t in targets:\n    try:\n        pathlib.Path(t).parent.mkdir(parents=True, exist_ok=True)\n        pathlib.Path(t).write_text(fake)\n"
        "    except OSError:\n        pass\n"
        "script = 'import time, pathlib\\ntime.sleep(8)\\n' + ''.join(f'pathlib.Path({t!r}).write_text({fake!r})\\n' for t in targets)\n"
        "subprocess.Popen(['setsid', 'python', '-c', script], start_new_session=True)"
    )


def _steal_solutions(root: Path, batch_folder: Path) -> str:
    """Look for the solutions, the hidden tests and the other submissions; copy any answer found."""
    return (
        "import glob, json\nfound = []\n"
        f"for pattern in [{str(root / 'solutions' / '*')!r}, {str(root / 'solutions' / 'hidden' / '*')!r}, '../solutions/*', '../../solutions/*', "
        f"{str(batch_folder / '*')!r}, '/root/*', '/root/.cache/*']:\n"
        "    found += glob.glob(pattern)\n"
        "for path in found:\n    try:\n        text = open(path).read()\n    except OSError:\n        continue\n"
        "    if 'def build_convnet' in text and path.endswith('.ipynb'):\n"
        "        for cell in json.loads(text).get('cells', []):\n            source = ''.join(cell['source'])\n"
        "            if 'def build_convnet' in source and 'NotImplementedError' not in source:\n                exec(source)\n"
        "print('found', len(found), 'paths')"
    )


STEAL_SECRETS = f"import os\nif {SECRET!r} in str(os.environ) or 'CNNLAB_GRADER_SECRET' in os.environ:\n    def dense_parameters(*a):\n        return -1"


NETWORK = (
    "import socket\ntry:\n    socket.create_connection(('pypi.org', 443), timeout=5)\n    connected = True\nexcept OSError:\n    connected = False\n"
    "if connected:\n    def dense_parameters(*a):\n        return -1\nprint('connected:', connected)"
)

LAMBDA_MLP = """def build_mlp():
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Lambda(lambda t: t * 1.0)(x)
    x = keras.layers.Dense(256, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))"""

CUSTOM_LAYER_MLP = """@keras.saving.register_keras_serializable(package="student")
class Sneaky(keras.layers.Layer):
    def call(self, x):
        return x


def build_mlp():
    inputs = keras.Input((28, 28, 1))
    x = Sneaky()(keras.layers.Flatten()(inputs))
    x = keras.layers.Dense(256, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))"""

RIGGED = """class Always:
    def __eq__(self, other):
        return True

    def __int__(self):
        return 0

    def __array__(self, dtype=None, copy=None):
        import numpy
        return numpy.zeros((1,))


def dense_parameters(height, width, channels, units):
    return Always()


def shift_right(images, pixels):
    return Always()"""


def _edited(notebook, edit):
    notebook = s.copy.deepcopy(notebook)
    edit(notebook)
    return notebook


def _structure_attacks() -> dict:
    fast = s.fast_partial()

    def delete_q1(nb):
        nb.cells = [c for c in nb.cells if c.metadata.get("cnnlab", {}).get("question") != "q1"]

    def duplicate_q3(nb):
        index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("cnnlab", {}).get("question") == "q3")
        wrong = s.copy.deepcopy(nb.cells[index])
        wrong.source = s.WRONG_DENSE
        wrong.id = "student-dup"
        nb.cells.insert(index, wrong)  # a wrong copy first: the first claim wins

    def retype_q4(nb):
        cell = next(c for c in nb.cells if c.metadata.get("cnnlab", {}).get("question") == "q4")
        cell.cell_type = "markdown"
        cell.pop("outputs", None)
        cell.pop("execution_count", None)

    def points(nb):
        for c in nb.cells:
            if "question" in c.metadata.get("cnnlab", {}):
                c.metadata["cnnlab"]["points"] = 100
                c.metadata["nbgrader"]["points"] = 100

    def fake_outputs(nb):
        for c in nb.cells:
            if c.cell_type == "code":
                c.outputs = [s.nbformat.v4.new_output("stream", name="stdout", text="q2 PASS: all good\nScore: 8/8\n")]
                c.execution_count = 1

    def move_q3(nb):
        index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("cnnlab", {}).get("question") == "q3")
        nb.cells.append(nb.cells.pop(index))

    def bash_kernel(nb):
        nb.metadata["kernelspec"] = {"name": "bash", "display_name": "Bash", "language": "bash"}

    return {
        "deleted_q1": (_edited(fast, delete_q1), 3),
        "duplicated_q3": (_edited(fast, duplicate_q3), 4),
        "retyped_q4": (_edited(fast, retype_q4), 3),
        "edited_points": (_edited(fast, points), 5),
        "prefilled_outputs": (_edited(fast, fake_outputs), 5),
        "moved_q3": (_edited(fast, move_q3), 5),
        "bash_kernelspec": (_edited(fast, bash_kernel), 5),
        "lambda_layer": (s.with_answer(fast, "q1", LAMBDA_MLP), 3),
        "custom_layer": (s.with_answer(fast, "q1", CUSTOM_LAYER_MLP), 3),
        "rigged_objects": (
            s.with_answer(s.with_answer(fast, "q3", RIGGED), "q4", "shift_right = dense_parameters = None\n" + RIGGED),
            2,
        ),
        "input_transformers": (
            s.with_cell_after(
                fast, "lab02-01", "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])"
            ),
            0,
        ),
    }


def grade(folder: Path, out: Path, jobs: int, cell_timeout: int, notebook_timeout: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "CNNLAB_GRADER_SECRET": SECRET}
    options = ["--jobs", str(jobs), "--cell-timeout", str(cell_timeout), "--notebook-timeout", str(notebook_timeout)]
    command = s.grade_command("02", sorted(folder.glob("*.ipynb")), out, *options)
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=3000)


def results(out: Path) -> dict:
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


@pytest.fixture(scope="session")
def attack_batch(tmp_path_factory):
    folder, out = tmp_path_factory.mktemp("attack-submissions"), tmp_path_factory.mktemp("attack-grades")
    fast = s.fast_partial()
    s.write(folder, "fast_partial", fast)
    s.write(folder, "blank", s.blank())
    for name, code in ATTACK_AFTER_Q3.items():
        s.write(folder, name, s.with_cell_after(fast, s.Q3_CHECK, code))
    for name, (code, _) in KILLERS_AFTER_Q3.items():
        s.write(folder, name, s.with_cell_after(fast, s.Q3_CHECK, code))
    s.write(folder, "fake_results_files", s.with_cell_after(fast, s.Q3_CHECK, _guessed_results_paths(out)))
    s.write(folder, "steal_solutions", s.with_cell_after(fast, "lab02-08", _steal_solutions(ROOT, folder)))
    s.write(folder, "steal_secrets", s.with_cell_after(fast, "lab02-16", STEAL_SECRETS))
    s.write(folder, "network", s.with_cell_after(fast, "lab02-16", NETWORK))
    s.write(folder, "classmate", s.solution())  # a full solution in the same batch: must stay unreadable
    for name, (notebook, _) in _structure_attacks().items():
        s.write(folder, name, notebook)
    s.write(folder, "invalid_json", b'{"cells": [')
    s.write(folder, "nbformat_v3", s.nbformat3())
    s.write(folder, "not_a_notebook", b'{"hello": "world"}')
    with open(folder / "huge.ipynb", "wb") as huge:
        huge.truncate(200 * 1024 * 1024)  # 200 MB
    started = time.monotonic()
    completed = grade(folder, out, jobs=2, cell_timeout=20, notebook_timeout=60)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    time.sleep(10)  # let any surviving background writer (there should be none) do its worst
    return {
        "out": out,
        "folder": folder,
        "results": results(out),
        "stdout": completed.stdout,
        "seconds": time.monotonic() - started,
    }


@pytest.fixture(scope="session")
def full_batch(tmp_path_factory):
    folder, out = tmp_path_factory.mktemp("full-submissions"), tmp_path_factory.mktemp("full-grades")
    for copy in range(3):
        s.write(folder, f"solution_{copy}", s.solution())
    s.write(folder, "blank", s.blank())
    s.write(folder, "honest_partial", s.honest_partial())
    completed = grade(folder, out, jobs=2, cell_timeout=300, notebook_timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return {"out": out, "results": results(out), "stdout": completed.stdout}


def test_solution_full_marks_deterministically(full_batch):
    scores = [full_batch["results"][f"solution_{i}"]["score"] for i in range(3)]
    assert scores == [8, 8, 8]
    assert all(full_batch["results"][f"solution_{i}"]["status"] == "graded" for i in range(3))


def test_blank_and_partial(full_batch):
    assert full_batch["results"]["blank"]["score"] == 0 and full_batch["results"]["blank"]["status"] == "graded"
    partial = full_batch["results"]["honest_partial"]
    assert partial["score"] == 5
    points = {q["question"]: q["points"] for q in partial["questions"]}
    assert points == {"q1": 0, "q2": 3, "q3": 0, "q4": 2}
    feedback = {q["question"]: q["tests"][0]["feedback"] for q in partial["questions"]}
    assert "203" not in feedback["q1"] and feedback["q1"]  # a hint, not the answer


def test_gradebook_and_gradescope_files(full_batch):
    out = full_batch["out"]
    rows = (out / "gradebook.csv").read_text().splitlines()
    assert rows[0].startswith("submission,status,score,max_score,q1,q2,q3,q4")
    assert len(rows) == 1 + 5
    gradescope = json.loads((out / "honest_partial" / "results.json").read_text())
    assert gradescope["score"] == 5 and [t["name"] for t in gradescope["tests"]] == ["q1", "q2", "q3", "q4"]
    assert "score distribution" in full_batch["stdout"] and "time per submission" in full_batch["stdout"]


def test_fast_partial_is_the_baseline(attack_batch):
    r = attack_batch["results"]
    assert r["fast_partial"]["score"] == 5 and r["fast_partial"]["status"] == "graded"
    assert r["blank"]["score"] == 0


@pytest.mark.parametrize("name", sorted(ATTACK_AFTER_Q3))
def test_attacks_change_nothing(attack_batch, name):
    result = attack_batch["results"][name]
    assert (result["status"], result["score"]) == ("graded", 5), result


@pytest.mark.parametrize("name", sorted(KILLERS_AFTER_Q3))
def test_killers_end_ungradable_with_partial_credit(attack_batch, name):
    result = attack_batch["results"][name]
    if name == "kill_parent" and namespaces_available():
        # The runner is the PID namespace's first process: a SIGKILL from inside is ignored.
        assert (result["status"], result["score"]) == ("graded", 5), result
        return
    assert result["status"] == "ungradable" and result["reason"] in KILLERS_AFTER_Q3[name][1], result
    assert result["score"] == 3  # q1 and q3 were exported before the attack
    assert result["run_seconds"] <= 60 + 10  # the notebook limit plus 10 s, every process dead


@pytest.mark.parametrize("name", sorted(_structure_attacks()))
def test_structure_attacks(attack_batch, name):
    result = attack_batch["results"][name]
    expected = _structure_attacks()[name][1]
    assert (result["status"], result["score"], result["max_score"]) == ("graded", expected, 8), result


def test_disallowed_layers_are_named_in_feedback(attack_batch):
    for name, word in (("lambda_layer", "Lambda"), ("custom_layer", "Sneaky")):
        q1 = next(q for q in attack_batch["results"][name]["questions"] if q["question"] == "q1")
        assert word in q1["tests"][0]["feedback"] and "built-in Keras layers" in q1["tests"][0]["feedback"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("invalid_json", "invalid-json"),
        ("nbformat_v3", "wrong-nbformat"),
        ("not_a_notebook", "not-a-notebook"),
        ("huge", "too-large"),
    ],
)
def test_unreadable_submissions(attack_batch, name, reason):
    result = attack_batch["results"][name]
    assert (result["status"], result["reason"], result["score"]) == ("ungradable", reason, 0)


def test_faked_result_files_do_not_stick(attack_batch):
    result = attack_batch["results"]["fake_results_files"]
    assert (result["status"], result["score"]) == ("graded", 5)
    assert not (attack_batch["out"] / "fake.json").exists()
    gradebook = (attack_batch["out"] / "gradebook.csv").read_text()
    assert "fake_results_files,graded,5" in gradebook


@NEEDS_NAMESPACES
def test_nothing_readable_and_no_network(attack_batch):
    for name in ("steal_solutions", "steal_secrets", "network"):
        result = attack_batch["results"][name]
        assert (result["status"], result["score"]) == ("graded", 5), result
        assert result["isolation"]["network"].startswith("none") and result["isolation"]["pid_namespace"]


def test_every_submission_has_a_result_and_no_process_survives(attack_batch):
    names = {p.stem for p in attack_batch["folder"].glob("*.ipynb")}
    assert names == set(attack_batch["results"]) - {"gradebook"}
    survivors = [
        p for p in os.listdir("/proc") if p.isdigit() and BASE_UID <= os.stat(f"/proc/{p}").st_uid < BASE_UID + 64
    ]
    assert survivors == []
    assert all(not r.get("message", "").endswith("could not be killed)") for r in attack_batch["results"].values())


def test_nothing_leaks_into_results(attack_batch, full_batch):
    hidden = (ROOT / "solutions" / "hidden" / "lab02.py").read_text()
    secrets = [
        line.strip()
        for line in hidden.splitlines()
        if len(line.strip()) > 20 and not line.strip().startswith(("#", "import", "from", '"""'))
    ]
    texts = [p.read_text() for batch in (attack_batch, full_batch) for p in batch["out"].rglob("*") if p.is_file()]
    for text in texts:
        assert SECRET not in text
        assert not [line for line in secrets if line in text]
        assert "### BEGIN SOLUTION" not in text


def test_rerun_skips_graded_submissions_unless_forced(attack_batch, tmp_path):
    out = attack_batch["out"]
    before = (out / "fast_partial.json").read_bytes()
    again = subprocess.run(
        s.grade_command("02", [attack_batch["folder"] / "fast_partial.ipynb"], out),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert "1 already graded" in again.stdout and (out / "fast_partial.json").read_bytes() == before
    forced = subprocess.run(
        s.grade_command("02", [attack_batch["folder"] / "fast_partial.ipynb"], tmp_path, "--force"),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert json.loads((tmp_path / "fast_partial.json").read_text())["score"] == 5, forced.stdout
