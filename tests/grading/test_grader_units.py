"""The grader's parts, one at a time: intake, assembly, safe reading, results, release."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest

from cnnlab.grading import results as res
from cnnlab.grading import safe_io
from cnnlab.grading.assemble import assemble
from cnnlab.grading.intake import StudentCell, Ungradable, read_submission
from cnnlab.grading.release import scan, secret_lines

from . import submissions as s

ROOT = Path(__file__).resolve().parents[2]


def cells_of(notebook) -> list[StudentCell]:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"cells-{os.getpid()}.ipynb"
    nbformat.write(notebook, path)
    try:
        return read_submission(path, 1 << 26)
    finally:
        path.unlink()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not json at all", "invalid-json"),
        (b"\xff\xfe", "invalid-json"),
        (b"[1, 2, 3]", "not-a-notebook"),
        (json.dumps({"nbformat": 3, "worksheets": []}).encode(), "wrong-nbformat"),
        (json.dumps({"nbformat": 4, "cells": [{"cell_type": "code", "source": 7}]}).encode(), "not-a-notebook"),
        (json.dumps({"nbformat": 4, "cells": ["x"]}).encode(), "not-a-notebook"),
    ],
)
def test_intake_refuses_what_is_not_a_v4_notebook(tmp_path, content, reason):
    path = tmp_path / "submission.ipynb"
    path.write_bytes(content)
    with pytest.raises(Ungradable) as info:
        read_submission(path, 1 << 20)
    assert info.value.reason == reason and str(info.value)


def test_intake_size_limit_checked_before_reading(tmp_path):
    path = tmp_path / "big.ipynb"
    with open(path, "wb") as f:
        f.truncate(3 << 20)
    with pytest.raises(Ungradable, match="3.1 MB") as info:
        read_submission(path, 1 << 20)
    assert info.value.reason == "too-large"


def test_assembly_takes_only_answers_and_added_cells():
    lab = s.blank()
    student = s.with_cell_after(s.solution(), "lab02-01", "extra_helper = 42")
    for cell in student.cells:  # edits to instructor cells and outputs must not survive
        if cell.metadata.get("cnnlab", {}).get("check") == "q1":
            cell.source = "print('q1 PASS')"
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="Score: 8/8")]
    built = assemble(
        lab, cells_of(student), [("q1", "q1", "export_value('x', 1)"), ("lab02-12", "q2", "export_value('y', 2)")]
    )
    sources = [c.source for c in built.cells]
    assert sources[0].startswith("# cnnlab grader")
    assert "checks.q1(build_mlp);" in sources and "print('q1 PASS')" not in sources
    assert "extra_helper = 42" in sources
    assert (
        sources.index("extra_helper = 42")
        == sources.index(next(x for x in sources if x.startswith("import keras"))) + 1
    )
    answers = [c for c in built.cells if c.metadata.get("cnnlab", {}).get("question") == "q1"]
    assert len(answers) == 1 and "keras.layers.Dense(256" in answers[0].source
    export = next(i for i, c in enumerate(built.cells) if c.metadata.get("cnnlab", {}).get("export") == "q1")
    assert built.cells[export - 1].metadata["cnnlab"] == {"check": "q1"}
    assert "record_failure('q1', failure)" in built.cells[export].source
    assert all(not c.get("outputs") for c in built.cells if c.cell_type == "code")
    points = {
        c.metadata["cnnlab"]["question"]: c.metadata["cnnlab"]["points"]
        for c in built.cells
        if "question" in c.metadata.get("cnnlab", {})
    }
    assert points == {"q1": 2, "q2": 3, "q3": 1, "q4": 2}


def test_assembly_refuses_unknown_export_anchor():
    with pytest.raises(ValueError, match="no cell or question 'q9'"):
        assemble(s.blank(), cells_of(s.blank()), [("q9", "q9", "pass")])


def lecture_convnet():
    import cnnlab

    return cnnlab.models.convnet()


def export(folder: Path, model) -> None:
    (folder / "m.model.json").write_text(model.to_json())
    np.savez(folder / "m.weights.npz", *model.get_weights())


def test_model_round_trip_through_the_allow_list(tmp_path):
    model = lecture_convnet()
    export(tmp_path, model)
    rebuilt = safe_io.rebuild_model(safe_io.open_directory(tmp_path), "m", 1 << 26)
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(rebuilt.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["config"]["layers"][1].update(class_name="Lambda"), "'Lambda'"),
        (lambda c: c["config"]["layers"][1].update(module="os"), "from 'os'"),
        (lambda c: c["config"]["layers"][1].update(registered_name="student>Sneaky"), "custom object"),
        (lambda c: c["config"]["layers"][1]["config"].update(activation="exec"), "activation 'exec'"),
        (
            lambda c: c["config"]["layers"][1]["config"].update(function={"class_name": "__lambda__"}),
            "'function' entry",
        ),
        (lambda c: c["config"]["layers"][-1]["config"].update(units=10**9), "units=1000000000"),
        (lambda c: c.update(class_name="Model", module="builtins"), "'Model' from 'builtins'"),
    ],
)
def test_allow_list_rejects_before_keras_sees_the_config(tmp_path, mutate, message):
    config = json.loads(lecture_convnet().to_json())
    mutate(config)
    (tmp_path / "m.model.json").write_text(json.dumps(config))
    np.savez(tmp_path / "m.weights.npz", np.zeros(1))
    with pytest.raises(safe_io.Rejected, match=message):
        safe_io.rebuild_model(safe_io.open_directory(tmp_path), "m", 1 << 26)


def test_weights_must_match_and_must_not_pickle(tmp_path):
    model = lecture_convnet()
    (tmp_path / "m.model.json").write_text(model.to_json())
    np.savez(tmp_path / "m.weights.npz", *model.get_weights()[:-1])
    with pytest.raises(safe_io.Rejected, match="do not match"):
        safe_io.rebuild_model(safe_io.open_directory(tmp_path), "m", 1 << 26)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(safe_io.Rejected, match="not a plain .npy"):
        safe_io.read_array(safe_io.open_directory(tmp_path), "obj.npy", 1 << 20)


def test_symlinks_and_oversized_files_are_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text('{"answer": 42}')
    exports = tmp_path / "export"
    exports.mkdir()
    (exports / "q.json").symlink_to(secret)
    (exports / "big.json").write_text("[" + "1," * 1000 + "1]")
    fd = safe_io.open_directory(exports)
    with pytest.raises(safe_io.Rejected, match="cannot be read safely"):
        safe_io.read_json(fd, "q.json", 1 << 20)
    with pytest.raises(safe_io.Rejected, match="over the 100-byte limit"):
        safe_io.read_json(fd, "big.json", 100)
    (tmp_path / "linked").symlink_to(exports)
    with pytest.raises(safe_io.Rejected, match="missing or not a folder"):
        safe_io.open_directory(tmp_path / "linked")


def test_gradescope_format_and_gradebook(tmp_path):
    result = res.SubmissionResult(
        "alice", "02", "graded", score=3, max_score=8,
        questions=[res.QuestionResult("q1", 2, 2, [{"name": "MLP", "passed": True, "feedback": ""}]), res.QuestionResult("q2", 1, 3, [{"name": "ConvNet", "passed": False, "feedback": "check the padding"}])],
    )  # fmt: skip
    res.write_result(tmp_path, result)
    gradescope = json.loads((tmp_path / "alice" / "results.json").read_text())
    assert gradescope["score"] == 3 and gradescope["tests"][1] == {
        "name": "q2",
        "score": 1,
        "max_score": 3,
        "output": "FAIL ConvNet: check the padding",
    }
    assert "diagnostics" not in json.dumps(gradescope)
    res.write_result(
        tmp_path,
        res.SubmissionResult("bob", "02", "ungradable", max_score=8, reason="invalid-json", message="not JSON"),
    )
    res.write_gradebook(tmp_path, res.load_results(tmp_path))
    rows = (tmp_path / "gradebook.csv").read_text().splitlines()
    assert rows[1].startswith("alice,graded,3,8,2,1") and rows[2].startswith("bob,ungradable,0.0,8,0,0,invalid-json")
    assert "invalid-json" in res.summary(res.load_results(tmp_path))
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_hidden_tests_are_not_in_the_wheel_or_the_release(tmp_path):
    from cnnlab.grading.release import build_release

    bundle, problems = build_release(tmp_path)
    assert problems == []
    wheels = list(bundle.glob("*.whl"))
    assert len(wheels) == 1
    members = zipfile.ZipFile(wheels[0]).namelist()
    assert any(m.startswith("cnnlab/checks/") for m in members)
    assert not [m for m in members if "solutions" in m or "hidden/" in m or m.endswith(".ipynb")]
    assert sorted(p.name for p in (bundle / "labs").glob("*.ipynb")) == sorted(
        p.name for p in (ROOT / "labs").glob("*.ipynb")
    )
    secrets = secret_lines(ROOT)
    assert any("TRAINED_CONVNET_MIN_ACCURACY" in line for line in secrets)  # hidden-test text is scanned for
    assert any("keras.layers.Dense(256" in line for line in secrets)  # and solution lines


def test_release_scan_finds_a_leak(tmp_path):
    (tmp_path / "labs").mkdir()
    leaked = nbformat.read(ROOT / "labs" / "02_mlp_vs_convnet.ipynb", 4)
    leaked.cells[5].source = (
        s._answer_cell(s.solution(), "q1").source.replace("### BEGIN SOLUTION\n", "").replace("### END SOLUTION\n", "")
    )
    nbformat.write(leaked, tmp_path / "labs" / "02.ipynb")
    problems = scan(tmp_path, ROOT)
    assert problems and all("labs/02.ipynb" in p for p in problems)


def test_trusted_process_never_imports_submission_code():
    import ast

    for module in ("trusted", "hidden", "safe_io", "batch", "results"):
        tree = ast.parse((ROOT / "cnnlab" / "grading" / f"{module}.py").read_text())
        calls = {
            node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
        }
        assert not calls & {"exec", "eval", "load_model", "loads_pickle"}
        assert "pickle" not in {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
    assert keras.__version__  # rebuilt models use the same Keras


def test_nested_folders_are_hidden_once_by_their_outermost_folder(tmp_path):
    """Submissions in a folder with the output folder inside it: covering the outer folder
    hides both; covering the inner one after it would fail (it no longer exists there)."""
    from cnnlab.grading.limits import Limits
    from cnnlab.grading.sandbox import Sandbox

    for inner in ("out", "a/b"):
        (tmp_path / inner).mkdir(parents=True)
    with Sandbox(Limits(), [tmp_path / "out", tmp_path, tmp_path / "a" / "b"]) as box:
        assert box.hide == [str(tmp_path.resolve())]


def test_folders_holding_the_package_are_not_hidden_but_reported(tmp_path):
    from cnnlab.grading.limits import Limits
    from cnnlab.grading.sandbox import Sandbox

    with Sandbox(Limits(), [ROOT, tmp_path]) as box:
        assert box.not_hidden == [str(ROOT)]  # cnnlab lives there: covering it would break the sandbox
        assert box.hide == [str(tmp_path.resolve())]
        if box.namespaces:
            assert box.isolation["not_hidden"] == [str(ROOT)]
