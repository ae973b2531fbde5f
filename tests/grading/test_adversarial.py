"""The grader's adversarial suite: real lab-02 submissions, each with the exact expected result.

Two batches are graded once per session with `cnnlab grade --jobs 2`:
- "full" (normal limits): the solution (three copies, for determinism), a blank lab, an
  honest partly wrong lab, and attacks that ride on correct answers;
- "attacks" (short limits: 20 s per cell, 150 s per notebook): everything else, mostly added
  to ``fast_partial`` (worth 8 of 11), so that an unchanged score proves the attack did nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import time
from pathlib import Path

import nbformat
import pytest

from . import submissions as s

# The batches are session fixtures, set up by the first test that needs them: grading about 50
# submissions twice (leaving cells out, and running every cell) takes longer than one test's
# default limit.
pytestmark = pytest.mark.timeout(3600)
# Printing a gigabyte takes about 47 s of the attack batch's notebook limit when only the cells
# the grade needs run, and 60 to 90 s when every cell runs: the limit leaves room for both, so
# that the two ways of grading are compared on what they run, not on a limit one of them grazes.
ATTACK_NOTEBOOK_LIMIT = 150

ROOT = Path(__file__).resolve().parents[2]
SECRET = "grader-secret-7f3a9c"
CANARY = "def _effective_activations"  # a line that exists only in the hidden tests of lab 02
NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="the bwrap and uid levels need root (CI runs as root)")
# What a submission may try to put in front of a person; none of it may reach any output.
INJECTED = ("\x1b[", "<script", "HYPERLINK(", "=cmd|", "\u202e")

SABOTAGE = "def dense_parameters(*a):\n    return -1\n"  # what an attack does when it finds a secret: q3 is lost

ATTACK_AFTER_Q3 = {
    "print_fake_score": 'print("Score: 100/100")\nprint(\'{"score": 11, "tests": [{"name": "q2", "score": 3}]}\')',
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
    # Class 4: /dev/shm is a small tmpfs of the sandbox's own, charged to its memory cgroup.
    "fill_shared_memory": (
        "chunk = b'1' * (16 * 1024 * 1024)\ntry:\n    with open('/dev/shm/fill', 'wb') as f:\n        while True:\n"
        "            f.write(chunk)\nexcept OSError as e:\n    print('shm full:', type(e).__name__)"
    ),
    # Class 4: kill -1 reaches every process it may signal: none outside its own sandbox.
    "kill_everyone": "import os, signal\nos.kill(-1, signal.SIGKILL)",
    # Class 2: what a submission prints never reaches feedback, the gradebook or the terminal.
    "print_escapes_html_formulas": (
        "print('\\x1b[2J\\x1b[31mHACKED\\x1b]0;title\\x07 <script>alert(1)</script> =HYPERLINK(\"http://x\") \\u202e')"
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
    """Class 3: results and run state written where the grader might read them, and again by a
    daemon after the notebook ends."""
    return (
        "import json, os, pathlib, subprocess\n"
        f"targets = [{str(out / 'fake_results_files.json')!r}, {str(out / 'gradebook.csv')!r}, '/autograder/results/results.json', "
        "'../grades/fake.json', '../fake_results_files.json', 'status.json', 'executed.ipynb', "
        "os.environ['CNNLAB_EXPORT_DIR'] + '/status.json']\n"
        "fake = json.dumps({'score': 11, 'status': 'graded', 'state': 'finished', 'reached': 99, 'timed_out_cells': []})\n"
        "for t in targets:\n    try:\n        pathlib.Path(t).parent.mkdir(parents=True, exist_ok=True)\n        pathlib.Path(t).write_text(fake)\n"
        "    except OSError:\n        pass\n"
        "script = 'import time, pathlib\\ntime.sleep(8)\\n' + ''.join(f'pathlib.Path({t!r}).write_text({fake!r})\\n' for t in targets)\n"
        "import sys\nsubprocess.Popen([sys.executable, '-c', script], start_new_session=True)"
    )


def _steal_solutions(root: Path, batch_folder: Path, out: Path) -> str:
    """Class 1: look for the solutions, the hidden tests, the checkout's history, the grader's
    own folders and the other submissions; copy any answer found, and give q3 away if any
    secret at all was readable."""
    patterns = [
        root / "solutions" / "*",
        root / "solutions" / "hidden" / "*",
        root / ".git" / "*",
        root / ".git" / "objects" / "*",
        batch_folder / "*",
        out / "*",
        Path("/tmp") / "cnnlab-grade-*" / "**",
        Path("/root") / "*",
        Path("/root") / ".cache" / "*",
        Path("/proc/1/root") / "*",
        Path("/proc/1/cwd") / "*",
    ]
    return (
        "import glob, json, os\nfound = []\n"
        f"for pattern in {[str(p) for p in patterns] + ['../solutions/*', '../../solutions/*']!r}:\n"
        "    found += glob.glob(pattern, recursive=True)\n"
        "stolen = False\n"
        "for path in found:\n    try:\n        text = open(path).read()\n    except (OSError, UnicodeDecodeError):\n        continue\n"
        f"    if {CANARY!r} in text or 'BEGIN SOLUTION' in text:\n        stolen = True\n"
        "    if 'def build_convnet' in text and path.endswith('.ipynb'):\n"
        "        for cell in json.loads(text).get('cells', []):\n            source = ''.join(cell['source'])\n"
        "            if 'def build_convnet' in source and 'NotImplementedError' not in source:\n                exec(source)\n"
        f"if stolen or any('.git' in p or 'solutions' in p for p in found):\n    exec({SABOTAGE!r})\n"
        "print('found', len(found), 'paths')"
    )


# Class 1: walk everything the sandbox can see; give q3 away if any of it is instructor material.
WALK_EVERYTHING = (
    "import os, sys\nskip = {'/proc', '/sys', '/dev', sys.prefix, sys.base_prefix, os.environ.get('CNNLAB_DATA', '/nonexistent')}\n"
    "secret = False\nfor folder, dirs, files in os.walk('/'):\n"
    "    dirs[:] = [d for d in dirs if os.path.join(folder, d) not in skip]\n"
    "    if {'.git', 'solutions', 'hidden'} & set(dirs) or any(f.startswith('lab0') and f.endswith('.py') for f in files):\n"
    "        secret = True\n"
    "    for name in files:\n        path = os.path.join(folder, name)\n        try:\n"
    "            if os.path.getsize(path) < 200_000:\n"
    f"                text = open(path, errors='ignore').read()\n                secret = secret or {CANARY!r} in text or {SECRET!r} in text\n"
    "        except OSError:\n            pass\n"
    f"if secret:\n    exec({SABOTAGE!r})\nprint('secret found:', secret)"
)

STEAL_SECRETS = (
    f"import os\nif {SECRET!r} in str(os.environ) or 'CNNLAB_GRADER_SECRET' in os.environ:\n    exec({SABOTAGE!r})"
)

NETWORK = (
    "import socket\ntry:\n    socket.create_connection(('pypi.org', 443), timeout=5)\n    connected = True\nexcept OSError:\n    connected = False\n"
    f"if connected:\n    exec({SABOTAGE!r})\nprint('connected:', connected)"
)

# Class 4: one submission leaves answers for the next, through every channel a shared uid, /tmp,
# /dev/shm, SysV IPC or an abstract socket would give; the other looks for them.
CHANNEL_WRITER = (
    "import ctypes, os, socket, subprocess, sys\n"
    "for path in ('/tmp/cnnlab-channel', '/dev/shm/cnnlab-channel', '/var/tmp/cnnlab-channel'):\n"
    "    try:\n        open(path, 'w').write('answers')\n    except OSError:\n        pass\n"
    "ctypes.CDLL(None).shmget(0xC0FFEE, 4096, 0o1666)  # IPC_CREAT | 0666: outlives the process\n"
    "keeper = 'import socket, time\\ns = socket.socket(socket.AF_UNIX)\\ns.bind(chr(0) + \"cnnlab-channel\")\\ns.listen()\\ntime.sleep(120)'\n"
    "subprocess.Popen([sys.executable, '-c', keeper], start_new_session=True)"
)
CHANNEL_READER = (
    "import os, socket, time\nfound = False\ndeadline = time.time() + 20\n"
    "while time.time() < deadline and not found:\n"
    "    found = any(os.path.exists(p) for p in ('/tmp/cnnlab-channel', '/dev/shm/cnnlab-channel', '/var/tmp/cnnlab-channel'))\n"
    "    found = found or open('/proc/sysvipc/shm').read().count('\\n') > 1\n"
    "    try:\n        s = socket.socket(socket.AF_UNIX)\n        s.connect(chr(0) + 'cnnlab-channel')\n        found = True\n"
    "    except OSError:\n        pass\n    time.sleep(1)\n"
    f"if found:\n    exec({SABOTAGE!r})\nprint('channel found:', found)"
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
                c.outputs = [
                    s.nbformat.v4.new_output("stream", name="stdout", text="q2 PASS: all good\nScore: 11/11\n")
                ]
                c.execution_count = 1

    def move_q3(nb):
        index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("cnnlab", {}).get("question") == "q3")
        nb.cells.append(nb.cells.pop(index))

    def bash_kernel(nb):
        nb.metadata["kernelspec"] = {"name": "bash", "display_name": "Bash", "language": "bash"}

    return {
        "deleted_q1": (_edited(fast, delete_q1), 6),
        "duplicated_q3": (_edited(fast, duplicate_q3), 7),
        "retyped_q4": (_edited(fast, retype_q4), 6),
        "edited_points": (_edited(fast, points), 8),
        "prefilled_outputs": (_edited(fast, fake_outputs), 8),
        "moved_q3": (_edited(fast, move_q3), 8),
        "bash_kernelspec": (_edited(fast, bash_kernel), 8),
        "lambda_layer": (s.with_answer(fast, "q1", LAMBDA_MLP), 6),
        "custom_layer": (s.with_answer(fast, "q1", CUSTOM_LAYER_MLP), 6),
        "rigged_objects": (
            s.with_answer(s.with_answer(fast, "q3", RIGGED), "q4", "shift_right = dense_parameters = None\n" + RIGGED),
            5,
        ),
        "input_transformers": (
            s.with_cell_after(
                fast, "lab02-01", "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])"
            ),
            0,
        ),
    }


# Class 2: names and messages chosen to be shown to a person: a custom layer class and an
# exception class whose names are a formula, an escape sequence, HTML and a right-to-left mark.
CRAFTED = '_name = "=HYPERLINK(\\"http://evil\\")\\x1b[31m<script>calc\\u202e"\n'
CRAFTED_MLP = (
    CRAFTED
    + """Crafted = keras.saving.register_keras_serializable(package="=cmd|' /C calc'!A0")(
    type(_name, (keras.layers.Layer,), {"call": lambda self, x: x})
)


def build_mlp():
    inputs = keras.Input((28, 28, 1))
    x = Crafted()(keras.layers.Flatten()(inputs))
    x = keras.layers.Dense(256, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))"""
)
CRAFTED_DENSE = (
    CRAFTED + "Boom = type(_name, (Exception,), {})\n\n\ndef dense_parameters(*shape):\n    raise Boom(_name)"
)

# Classes 5 and 6: the exports, tampered with after the last export cell ran. Each costs the
# submission its own points, and must cost the grader neither a hang nor memory nor a crash.
EXPORTS = "import json, os, numpy as np\nE = os.environ['CNNLAB_EXPORT_DIR']\n"
TAMPERING = {  # name: (code, expected score)
    "oversized_model_config": (
        EXPORTS + "c = json.load(open(f'{E}/q1_mlp.model.json'))\n"
        "for layer in c['config']['layers']:\n    if layer['class_name'] == 'Dense':\n        layer['config']['units'] = 60000\n"
        "json.dump(c, open(f'{E}/q1_mlp.model.json', 'w'))",
        6,
    ),
    "array_header_bomb": (
        EXPORTS
        + "h = \"{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }\"\nh += ' ' * (118 - len(h)) + '\\n'\n"
        "open(f'{E}/q4_shifted.npy', 'wb').write(b'\\x93NUMPY\\x01\\x00' + len(h).to_bytes(2, 'little') + h.encode())",
        6,
    ),
    "nested_json": (
        EXPORTS + "deep = '[' * 100000 + ']' * 100000\nfor name in ('q3_counts.json', 'failures.json'):\n"
        "    open(f'{E}/{name}', 'w').write(deep)",
        7,
    ),
    "links_and_fifos": (
        EXPORTS + "os.remove(f'{E}/q3_counts.json')\nos.symlink('/etc/passwd', f'{E}/q3_counts.json')\n"
        "os.remove(f'{E}/q1_mlp.model.json')\nos.mkfifo(f'{E}/q1_mlp.model.json')\n"
        "try:\n    os.rename(E, '/tmp/moved')\nexcept OSError as e:\n    print('cannot move the exports:', type(e).__name__)",
        5,
    ),
    "ten_thousand_files": (EXPORTS + "for i in range(10000):\n    open(f'{E}/junk{i}', 'w').close()", 0),
}


def grade(
    paths: list[Path], out: Path, jobs: int, cell_timeout: int, notebook_timeout: int, *extra: str
) -> subprocess.CompletedProcess:
    env = {**os.environ, "CNNLAB_GRADER_SECRET": SECRET}
    options = ["--jobs", str(jobs), "--cell-timeout", str(cell_timeout), "--notebook-timeout", str(notebook_timeout)]
    options += extra
    command = s.grade_command("02", paths, out, *options)
    return subprocess.run(command, capture_output=True, env=env, timeout=3000)


def results(out: Path) -> dict:
    """Results by the submission's stem (the result name without its content hash)."""
    found = {}
    for path in out.glob("*-*.json"):  # results are named stem-hash; shard.json is not one
        found.setdefault(path.stem.rsplit("-", 1)[0], []).append(json.loads(path.read_text()))
    return {stem: entries[0] if len(entries) == 1 else entries for stem, entries in found.items()}


def _host_state() -> dict:
    """What one batch must leave as it found it: mounts, SysV IPC objects, /dev/shm, /tmp."""
    ipc = {kind: Path(f"/proc/sysvipc/{kind}").read_text().count("\n") for kind in ("shm", "msg", "sem")}
    return {
        "mounts": Path("/proc/self/mountinfo").read_text(),
        "ipc": ipc,
        "shm": sorted(os.listdir("/dev/shm")),
        "tmp": sorted(p for p in os.listdir("/tmp") if not p.startswith("pytest-of-")),
        "cgroups": sorted(
            str(p) for c in ("memory", "cpu", "pids", "") for p in Path("/sys/fs/cgroup", c).rglob("cnnlab-*")
        ),
    }


@pytest.fixture(scope="session")
def attack_batch(tmp_path_factory):
    folder, out = tmp_path_factory.mktemp("attack-submissions"), tmp_path_factory.mktemp("attack-grades")
    canary = tmp_path_factory.mktemp("host-canary") / "canary.txt"
    canary.write_text("the host's own file")
    fast = s.fast_partial()
    s.write(folder, "fast_partial", fast)
    s.write(folder, "blank", s.blank())
    for name, code in ATTACK_AFTER_Q3.items():
        s.write(folder, name, s.with_cell_after(fast, s.Q3_CHECK, code))
    for name, (code, _) in KILLERS_AFTER_Q3.items():
        s.write(folder, name, s.with_cell_after(fast, s.Q3_CHECK, code))
    for name, (code, _) in TAMPERING.items():
        s.write(folder, name, s.with_cell_after(fast, s.Q4_CHECK, code))
    s.write(folder, "fake_results_files", s.with_cell_after(fast, s.Q3_CHECK, _guessed_results_paths(out)))
    s.write(folder, "steal_solutions", s.with_cell_after(fast, "lab02-08", _steal_solutions(ROOT, folder, out)))
    s.write(folder, "walk_everything", s.with_cell_after(fast, "lab02-08", WALK_EVERYTHING))
    s.write(folder, "steal_secrets", s.with_cell_after(fast, "lab02-16", STEAL_SECRETS))
    s.write(folder, "network", s.with_cell_after(fast, "lab02-16", NETWORK))
    s.write(folder, "channel_writer", s.with_cell_after(fast, "lab02-01", CHANNEL_WRITER))
    s.write(folder, "channel_reader", s.with_cell_after(fast, "lab02-16", CHANNEL_READER))
    s.write(folder, "crafted_names", s.with_answer(s.with_answer(fast, "q1", CRAFTED_MLP), "q3", CRAFTED_DENSE))
    s.write(folder, "classmate", s.solution())  # a full solution in the same batch: must stay unreadable
    for name, (notebook, _) in _structure_attacks().items():
        s.write(folder, name, notebook)
    s.write(folder, "invalid_json", b'{"cells": [')
    s.write(folder, "nbformat_v3", s.nbformat3())
    s.write(folder, "not_a_notebook", b'{"hello": "world"}')
    s.write(folder, "deeply_nested", b"[" * 100_000 + b"]" * 100_000)
    s.write(
        folder,
        "lone_surrogate",
        nbformat.writes(s.with_cell_after(fast, s.Q3_CHECK, "x = 1")).replace("x = 1", "x = '\\ud800'"),
    )
    with open(folder / "huge.ipynb", "wb") as huge:
        huge.truncate(200 * 1024 * 1024)  # 200 MB
    # Class 8: a symlink to the solution, and a folder, as submissions. Class 9: crafted file
    # names, and two different notebooks of the same name in two folders.
    (folder / "linked_solution.ipynb").symlink_to(s.SOLUTION)
    (folder / "a_folder.ipynb").mkdir()
    s.write(folder, "=SUM(A1)+cmd|' calc'!A0", fast)
    s.write(folder, "\x1b[31mred\x1b[0m", s.blank())
    for sub, notebook in (("first", fast), ("second", s.blank())):
        (folder / sub).mkdir()
        s.write(folder / sub, "same_name", notebook)
    paths = sorted(folder.glob("*.ipynb")) + [
        folder / "first" / "same_name.ipynb",
        folder / "second" / "same_name.ipynb",
    ]
    before = _host_state()
    started = time.monotonic()
    completed = grade(paths, out, jobs=2, cell_timeout=20, notebook_timeout=ATTACK_NOTEBOOK_LIMIT)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    time.sleep(10)  # let any surviving background writer (there should be none) do its worst
    return {
        "out": out,
        "folder": folder,
        "paths": paths,
        "results": results(out),
        "stdout": completed.stdout.decode("utf-8", "replace"),
        "raw_stdout": completed.stdout,
        "seconds": time.monotonic() - started,
        "before": before,
        "after": _host_state(),
        "canary": canary,
    }


@pytest.fixture(scope="session")
def full_batch(tmp_path_factory):
    folder, out = tmp_path_factory.mktemp("full-submissions"), tmp_path_factory.mktemp("full-grades")
    for copy in range(3):
        s.write(folder, f"solution_{copy}", s.with_cell_after(s.solution(), "lab02-01", f"copy = {copy}"))
    s.write(folder, "blank", s.blank())
    s.write(folder, "honest_partial", s.honest_partial())
    completed = grade(sorted(folder.glob("*.ipynb")), out, jobs=2, cell_timeout=300, notebook_timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return {"out": out, "folder": folder, "results": results(out), "stdout": completed.stdout.decode()}


@pytest.fixture(scope="session")
def every_cell_batch(attack_batch, full_batch, tmp_path_factory):
    """The same stored submissions, graded again running every cell (``--run-every-cell``), with
    the limits of their batch (a whole solution, training included, needs the longer ones).
    The solution is run once: its copies in the full batch and the classmate of the attack
    batch differ from it by a line that binds a name nobody reads."""
    short, long = tmp_path_factory.mktemp("every-cell-attacks"), tmp_path_factory.mktemp("every-cell-full")
    attacks = [p for p in attack_batch["paths"] if p.name != "classmate.ipynb"]
    honest = [p for p in sorted(full_batch["folder"].glob("*.ipynb")) if p.stem not in ("solution_1", "solution_2")]
    for paths, out, cell, notebook in ((attacks, short, 20, ATTACK_NOTEBOOK_LIMIT), (honest, long, 300, 600)):
        completed = grade(paths, out, 2, cell, notebook, "--run-every-cell")
        assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return {
        json.loads(p.read_text())["submission"]: json.loads(p.read_text())
        for out in (short, long)
        for p in out.glob("*-*.json")
    }


def test_leaving_out_cells_changes_no_score(attack_batch, full_batch, every_cell_batch):
    """Every stored submission, honest and adversarial, scores the same whether the grader runs
    every cell or only the cells the grade needs."""
    slim = {}
    for batch in (attack_batch, full_batch):
        for entry in batch["results"].values():
            for result in entry if isinstance(entry, list) else [entry]:
                slim[result["submission"]] = result
    copies = {
        r["submission"]
        for r in slim.values()
        if r["submission"].startswith(("solution_1-", "solution_2-", "classmate-"))
    }
    assert set(slim) - copies == set(every_cell_batch) and len(copies) == 3
    for name, result in slim.items():
        if name in copies:
            continue
        other = every_cell_batch[name]
        assert (result["status"], result["score"]) == (other["status"], other["score"]), name
        if not name.startswith("fork_bomb"):  # which limit a fork bomb hits first varies from run to run
            assert result["reason"] == other["reason"], name


def test_solution_full_marks_deterministically(full_batch):
    scores = [full_batch["results"][f"solution_{i}"]["score"] for i in range(3)]
    assert scores == [11, 11, 11]
    assert all(full_batch["results"][f"solution_{i}"]["status"] == "graded" for i in range(3))
    assert all(full_batch["results"][f"solution_{i}"]["isolation"]["level"] == "bwrap" for i in range(3))


def test_blank_and_partial(full_batch):
    assert full_batch["results"]["blank"]["score"] == 0 and full_batch["results"]["blank"]["status"] == "graded"
    partial = full_batch["results"]["honest_partial"]
    assert partial["score"] == 8
    points = {q["question"]: q["points"] for q in partial["questions"]}
    assert points == {"q1": 0, "q2": 3, "q3": 0, "q4": 2, "q5": 2, "q7": 1}
    feedback = {q["question"]: q["tests"][0]["feedback"] for q in partial["questions"]}
    assert "203" not in feedback["q1"] and feedback["q1"]  # a hint, not the answer


def test_gradebook_and_gradescope_files(full_batch):
    out = full_batch["out"]
    rows = list(csv.reader(io.StringIO((out / "gradebook.csv").read_text())))  # written answers span lines
    assert ",".join(rows[0]).startswith("submission,sha256,status,score,max_score,q1,q2,q3,q4,q5,q7,q6 (written),")
    assert len(rows) == 1 + 5
    solution = next(row for row in rows if row[0].startswith("solution_0"))
    assert "equivariant" in solution[rows[0].index("q6 answer")]  # the written answer, for people to grade
    partial = full_batch["results"]["honest_partial"]["submission"]
    gradescope = json.loads((out / partial / "results.json").read_text())
    assert gradescope["score"] == 8 and [t["name"] for t in gradescope["tests"]] == ["q1", "q2", "q3", "q4", "q5", "q7"]
    assert gradescope["stdout_visibility"] == "hidden" and {t["visibility"] for t in gradescope["tests"]} == {
        "after_published"
    }
    assert "score distribution" in full_batch["stdout"] and "time per submission" in full_batch["stdout"]


def test_fast_partial_is_the_baseline(attack_batch):
    r = attack_batch["results"]
    assert r["fast_partial"]["score"] == 8 and r["fast_partial"]["status"] == "graded"
    assert r["blank"]["score"] == 0


@pytest.mark.parametrize("name", sorted(ATTACK_AFTER_Q3))
def test_attacks_change_nothing(attack_batch, name):
    result = attack_batch["results"][name]
    assert (result["status"], result["score"]) == ("graded", 8), result


@pytest.mark.parametrize("name", sorted(KILLERS_AFTER_Q3))
def test_killers_end_ungradable_with_partial_credit(attack_batch, name):
    result = attack_batch["results"][name]
    if name == "kill_parent":
        # The kernel's parent is the first process of the sandbox's PID namespace: a SIGKILL
        # sent to it from inside is ignored.
        assert (result["status"], result["score"]) == ("graded", 8), result
        return
    assert result["status"] == "ungradable" and result["reason"] in KILLERS_AFTER_Q3[name][1], result
    assert result["score"] == 3  # q1 and q3 were exported before the attack
    assert result["run_seconds"] <= ATTACK_NOTEBOOK_LIMIT + 90 + 40  # the limit, kernel start-up and teardown


@pytest.mark.parametrize("name", sorted(_structure_attacks()))
def test_structure_attacks(attack_batch, name):
    result = attack_batch["results"][name]
    expected = _structure_attacks()[name][1]
    assert (result["status"], result["score"], result["max_score"]) == ("graded", expected, 11), result


@pytest.mark.parametrize("name", sorted(TAMPERING))
def test_tampered_exports_cost_the_submission_not_the_grader(attack_batch, name):
    result = attack_batch["results"][name]
    assert (result["status"], result["score"]) == ("graded", TAMPERING[name][1]), result
    assert result["trusted_peak_memory_mb"] is None or result["trusted_peak_memory_mb"] < 2048
    assert result["seconds"] < 240


def test_oversized_exports_are_refused_by_size_in_the_graders_words(attack_batch):
    q1 = next(q for q in attack_batch["results"]["oversized_model_config"]["questions"] if q["question"] == "q1")
    assert "parameters, over this question's limit" in q1["tests"][0]["feedback"]
    q4 = next(q for q in attack_batch["results"]["array_header_bomb"]["questions"] if q["question"] == "q4")
    assert "over this question's limit" in q4["tests"][0]["feedback"]


def test_disallowed_layers_are_described_not_named(attack_batch):
    for name, words in (("lambda_layer", "a Lambda layer"), ("custom_layer", "not one of the built-in Keras layers")):
        q1 = next(q for q in attack_batch["results"][name]["questions"] if q["question"] == "q1")
        assert words in q1["tests"][0]["feedback"] and "Sneaky" not in json.dumps(attack_batch["results"][name])
    crafted = attack_batch["results"]["crafted_names"]
    assert crafted["score"] == 5  # the crafted layer (q1) and the crafted exception (q3) lose their points
    q3 = next(q for q in crafted["questions"] if q["question"] == "q3")
    assert "another exception" in q3["tests"][0]["feedback"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("invalid_json", "invalid-json"),
        ("nbformat_v3", "wrong-nbformat"),
        ("not_a_notebook", "not-a-notebook"),
        ("huge", "too-large"),
        ("deeply_nested", "too-deep"),
        ("lone_surrogate", "invalid-text"),
        ("linked_solution", "not-a-regular-file"),
        ("a_folder", "not-a-regular-file"),
    ],
)
def test_unreadable_submissions(attack_batch, name, reason):
    result = attack_batch["results"][name]
    assert (result["status"], result["reason"], result["score"]) == ("ungradable", reason, 0)


def test_crafted_and_clashing_names_stay_inside_the_output_folder(attack_batch):
    out = attack_batch["out"]
    names = {p.name for p in out.iterdir()}
    assert all(set(n) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") for n in names)
    same = attack_batch["results"]["same_name"]
    assert sorted(r["score"] for r in same) == [0, 8]  # two different notebooks, two results
    assert attack_batch["results"]["SUM_A1_cmd_calc_A0"]["score"] == 8
    assert attack_batch["results"]["31mred_0m"]["score"] == 0
    every = list(Path(out).rglob("*"))
    assert all(p.resolve().is_relative_to(out.resolve()) for p in every)


def test_faked_result_files_do_not_stick(attack_batch):
    result = attack_batch["results"]["fake_results_files"]
    assert (result["status"], result["score"]) == ("graded", 8)
    assert (
        not (attack_batch["out"] / "fake.json").exists()
        and not (attack_batch["out"] / "fake_results_files.json").exists()
    )
    gradebook = (attack_batch["out"] / "gradebook.csv").read_text()
    assert f"{result['submission']},{result['sha256']},graded,8" in gradebook


@NEEDS_ROOT
def test_nothing_readable_no_network_no_channel(attack_batch):
    for name in ("steal_solutions", "walk_everything", "steal_secrets", "network", "channel_writer", "channel_reader"):
        result = attack_batch["results"][name]
        assert (result["status"], result["score"]) == ("graded", 8), result
        assert result["isolation"]["level"] == "bwrap"


def test_every_submission_has_a_result_and_nothing_is_left_behind(attack_batch):
    results = attack_batch["results"]
    count = sum(len(r) if isinstance(r, list) else 1 for r in results.values())
    assert count == len(attack_batch["paths"])
    from cnnlab.grading.accounts import COUNT, FIRST

    survivors = [
        p for p in os.listdir("/proc") if p.isdigit() and FIRST <= os.stat(f"/proc/{p}").st_uid < FIRST + COUNT
    ]
    assert survivors == []
    assert all(
        not r.get("message", "").endswith("could not be killed)") for r in results.values() if isinstance(r, dict)
    )
    before, after = attack_batch["before"], attack_batch["after"]
    assert after["mounts"] == before["mounts"]  # host mounts untouched
    assert (
        after["ipc"] == before["ipc"] and after["shm"] == before["shm"] and after["cgroups"] == before["cgroups"] == []
    )
    assert set(after["tmp"]) <= set(before["tmp"])  # no file or folder left in /tmp
    assert attack_batch["canary"].read_text() == "the host's own file"


def test_nothing_leaks_into_results_or_the_terminal(attack_batch, full_batch):
    hidden = (ROOT / "solutions" / "hidden" / "lab02.py").read_text()
    secrets = [
        line.strip()
        for line in hidden.splitlines()
        if len(line.strip()) > 20 and not line.strip().startswith(("#", "import", "from", '"""'))
    ]
    texts = [p.read_text() for batch in (attack_batch, full_batch) for p in batch["out"].rglob("*") if p.is_file()]
    texts.append(attack_batch["stdout"])
    for text in texts:
        assert SECRET not in text and CANARY not in text
        assert not [line for line in secrets if line in text]
        assert "### BEGIN SOLUTION" not in text
        assert not [word for word in INJECTED if word in text], [word for word in INJECTED if word in text]
    assert b"\x1b" not in attack_batch["raw_stdout"]
    rows = csv.reader(io.StringIO((attack_batch["out"] / "gradebook.csv").read_text()))
    assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "-", "@")]


def test_rerun_skips_the_same_notebook_and_grades_a_different_one_of_the_same_name(attack_batch, tmp_path):
    out = attack_batch["out"]
    fast = attack_batch["results"]["fast_partial"]
    before = (out / f"{fast['submission']}.json").read_bytes()
    again = subprocess.run(
        s.grade_command("02", [attack_batch["folder"] / "fast_partial.ipynb"], out),
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert "1 already graded" in again.stdout and (out / f"{fast['submission']}.json").read_bytes() == before
    s.write(tmp_path, "fast_partial", s.blank())  # another notebook under the same name
    changed = subprocess.run(
        s.grade_command("02", [tmp_path / "fast_partial.ipynb"], out), capture_output=True, text=True, timeout=600
    )
    assert "0 already graded" in changed.stdout, changed.stdout
    graded = [json.loads(p.read_text()) for p in out.glob("fast_partial-*.json")]
    assert sorted(r["score"] for r in graded) == [0, 8]
