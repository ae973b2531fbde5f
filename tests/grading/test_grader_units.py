"""The grader's parts, one at a time: intake, assembly, safe reading, results, release."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest

from cnnlab.grading import results as res
from cnnlab.grading import safe_io
from cnnlab.grading.assemble import assemble
from cnnlab.grading.hidden import Budget
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


def _notebook_bytes(source) -> bytes:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": "a", "metadata": {}, "source": source, "outputs": [], "execution_count": None}
    ]}).encode()  # fmt: skip


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "too-deep"),  # json.loads' RecursionError, caught
        (b'{"nbformat": 4, "cells": ' + b"[" * 40 + b"]" * 40 + b"}", "too-deep"),  # under Python's limit, over ours
        (_notebook_bytes("x = '\ud800'"), "invalid-text"),  # json.dumps writes the lone surrogate as \ud800
        (json.dumps({"nbformat": 4, "cells": [{"cell_type": "code", "source": ""}] * 2001}).encode(), "too-many-cells"),
        (json.dumps({"nbformat": True, "cells": []}).encode(), "wrong-nbformat"),
    ],
)
def test_intake_never_crashes_on_hostile_json(tmp_path, content, reason):
    path = tmp_path / "hostile.ipynb"
    path.write_bytes(content)
    with pytest.raises(Ungradable) as info:
        read_submission(path, 20 << 20)
    assert info.value.reason == reason
    assert "ud800" not in str(info.value) and "[[" not in str(info.value)  # the grader's words only


def test_symlinked_submission_is_refused_not_followed(tmp_path):
    from cnnlab.grading.intake import stage

    (tmp_path / "staging").mkdir()
    link = tmp_path / "link.ipynb"
    link.symlink_to(ROOT / "solutions" / "02_mlp_vs_convnet.ipynb")
    staged = stage(link, tmp_path / "staging", 20 << 20)
    assert staged.problem.reason == "not-a-regular-file" and staged.path is None
    assert list((tmp_path / "staging").iterdir()) == []  # nothing of the target was copied
    folder = tmp_path / "folder.ipynb"
    folder.mkdir()
    assert stage(folder, tmp_path / "staging", 20 << 20).problem.reason == "not-a-regular-file"


@pytest.mark.parametrize(
    "stem",
    ["../../../etc/passwd", "..", ".hidden", "=cmd|' /C calc'!A0", "\x1b[2J\x1b[31mred", "a" * 300, "gradebook", ""],
)
def test_result_names_cannot_leave_the_output_folder(stem):
    from cnnlab.grading.intake import result_name

    name = result_name(stem, "0123456789abcdef" * 4)
    assert name.endswith("-0123456789ab") and len(name) <= 73
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
    assert not name.startswith((".", "-", "=", "+", "@")) and "/" not in name and ".." not in name.split("-")[0][:2]


def test_same_stem_different_content_gets_two_names_same_content_one(tmp_path):
    from cnnlab.grading.batch import stage_all

    for folder, text in (("a", "one"), ("b", "two"), ("c", "one")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "lab.ipynb").write_text(text)
    (tmp_path / "staging").mkdir()
    staged = stage_all(sorted(tmp_path.glob("?/lab.ipynb")), tmp_path / "staging", 1 << 20)
    assert len(staged) == 2 and len({s.name for s in staged}) == 2  # a and c are the same notebook


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
        == sources.index(next(c.source for c in lab.cells if c.id == "lab02-01")) + 1  # right after the setup cell
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
    assert points == {"q1": 2, "q2": 3, "q3": 1, "q4": 2, "q5": 2, "q6": 2, "q7": 1}  # q6 is written


def test_assembly_refuses_unknown_export_anchor():
    with pytest.raises(ValueError, match="no cell or question 'q9'"):
        assemble(s.blank(), cells_of(s.blank()), [("q9", "q9", "pass")])


def lecture_convnet():
    import cnnlab

    return cnnlab.models.convnet()


def folder_fd(path: Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY)


BUDGET = Budget()


def export(folder: Path, model) -> None:
    (folder / "m.model.json").write_text(model.to_json())
    np.savez(folder / "m.weights.npz", *model.get_weights())


def test_model_round_trip_through_the_allow_list(tmp_path):
    model = lecture_convnet()
    export(tmp_path, model)
    rebuilt = safe_io.rebuild_model(folder_fd(tmp_path), "m", BUDGET)
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(rebuilt.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["config"]["layers"][1].update(class_name="Lambda"), "a Lambda layer"),
        (lambda c: c["config"]["layers"][1].update(module="os"), "not one of the built-in Keras layers"),
        (lambda c: c["config"]["layers"][1].update(registered_name="student>Sneaky"), "a custom registered layer"),
        (lambda c: c["config"]["layers"][1]["config"].update(activation="exec"), "activation that is not one"),
        (lambda c: c["config"]["layers"][1]["config"].update(function={"class_name": "__lambda__"}), "holds code"),
        (lambda c: c.update(class_name="Model", module="builtins"), "not one of the built-in Keras layers"),
        (lambda c: c["config"]["layers"][-1]["config"].update(units=10**9), "units in the model config"),
    ],
)
def test_allow_list_rejects_in_the_graders_words(tmp_path, mutate, message):
    config = json.loads(lecture_convnet().to_json())
    mutate(config)
    (tmp_path / "m.model.json").write_text(json.dumps(config))
    np.savez(tmp_path / "m.weights.npz", np.zeros(1))
    with pytest.raises(safe_io.Rejected, match=message) as info:
        safe_io.rebuild_model(folder_fd(tmp_path), "m", BUDGET)
    assert not {"Sneaky", "exec", "'os'", "builtins", "__lambda__"} & set(str(info.value).replace(",", " ").split())


def test_oversized_models_are_refused_before_they_are_built(tmp_path, monkeypatch):
    """A Dense layer of 60,000 units on a 28x28 image is 47 M parameters: refused from the
    config alone, with no call to Keras."""
    import keras

    config = json.loads(lecture_convnet().to_json())
    dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
    dense["config"]["units"] = 60_000
    (tmp_path / "m.model.json").write_text(json.dumps(config))
    monkeypatch.setattr(keras.models, "model_from_json", lambda *a, **k: pytest.fail("Keras built an oversized model"))
    with pytest.raises(safe_io.OverBudget, match="over this question's limit of 8,000,000"):
        safe_io.rebuild_model(folder_fd(tmp_path), "m", BUDGET)
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, 30_000, 30_000, 1]  # activations
    (tmp_path / "m.model.json").write_text(json.dumps(config))
    with pytest.raises(safe_io.OverBudget, match="values per example"):
        safe_io.rebuild_model(folder_fd(tmp_path), "m", Budget(parameters=10**16))


def test_model_size_from_the_config_matches_keras():
    import keras

    from cnnlab.grading.modelsize import model_size

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.SeparableConv2D(4, 3, strides=2, padding="same")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2)(x)
    x = keras.layers.ZeroPadding2D(((1, 2), (0, 3)))(x)
    inner = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(x)))
    outer_in = keras.Input((28, 28, 1))
    shared = keras.layers.Concatenate()([inner(outer_in), inner(outer_in)])  # a model used twice counts once
    nested = keras.Model(outer_in, keras.layers.Dense(2)(shared))
    models = [
        lecture_convnet(),
        nested,
        keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None),
        keras.Sequential([keras.Input((5,)), keras.layers.Dense(3), keras.layers.BatchNormalization(center=False)]),
    ]
    for model in models:
        assert model_size(json.loads(model.to_json())).parameters == model.count_params()
    vgg = model_size(json.loads(keras.applications.VGG16(weights=None).to_json()))
    assert vgg.parameters == 138_357_544 and 15_000_000 < vgg.activations < 15_500_000  # the lecture's ~15.2 M


def test_weights_must_match_and_must_not_pickle(tmp_path):
    model = lecture_convnet()
    (tmp_path / "m.model.json").write_text(model.to_json())
    np.savez(tmp_path / "m.weights.npz", *model.get_weights()[:-1])
    with pytest.raises(safe_io.Rejected, match="holds 7 weight arrays where the model has 8"):
        safe_io.rebuild_model(folder_fd(tmp_path), "m", BUDGET)
    np.savez_compressed(tmp_path / "m.weights.npz", *model.get_weights())
    with pytest.raises(safe_io.Rejected, match="compressed"):
        safe_io.rebuild_model(folder_fd(tmp_path), "m", BUDGET)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(safe_io.Rejected, match="not a numeric array"):
        safe_io.read_array(folder_fd(tmp_path), "obj.npy", 1 << 20)


def test_array_header_is_checked_before_the_data_is_read(tmp_path):
    """A 100-byte file declaring a 10^10-value array is refused without allocating anything."""
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }"
    header += " " * (118 - len(header)) + "\n"
    (tmp_path / "bomb.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    with pytest.raises(safe_io.OverBudget, match="80,000,000,000 bytes"):
        safe_io.read_array(folder_fd(tmp_path), "bomb.npy", 64 << 20)
    np.save(tmp_path / "short.npy", np.arange(10.0))
    (tmp_path / "short.npy").write_bytes((tmp_path / "short.npy").read_bytes()[:-8])
    with pytest.raises(safe_io.Rejected, match="shorter or longer"):
        safe_io.read_array(folder_fd(tmp_path), "short.npy", 64 << 20)
    np.save(tmp_path / "fine.npy", np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(
        safe_io.read_array(folder_fd(tmp_path), "fine.npy", 1 << 20), np.arange(12.0).reshape(3, 4)
    )


def test_links_fifos_and_oversized_files_are_refused(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text('{"answer": 42}')
    exports = tmp_path / "export"
    exports.mkdir()
    (exports / "q.json").symlink_to(secret)
    os.mkfifo(exports / "fifo.json")
    (exports / "big.json").write_text("[" + "1," * 1000 + "1]")
    (exports / "deep.json").write_text("[" * 100 + "]" * 100)
    fd = folder_fd(exports)
    with pytest.raises(safe_io.Rejected, match="could not be opened safely"):
        safe_io.read_json(fd, "q.json")
    with pytest.raises(safe_io.Rejected, match="not a regular file"):
        safe_io.read_json(fd, "fifo.json")  # would block forever if opened for reading without O_NONBLOCK
    with pytest.raises(safe_io.Rejected, match="over this question's limit of 100"):
        safe_io.read_json(fd, "big.json", 100)
    with pytest.raises(safe_io.Rejected, match="nested too deeply"):
        safe_io.read_json(fd, "deep.json")


def test_exports_are_counted_and_sized_before_any_is_read(tmp_path):
    from cnnlab.grading.hidden import Exports

    for i in range(5):
        (tmp_path / f"f{i}.json").write_text("1" * 100)
    with pytest.raises(safe_io.Rejected, match="5 files in the exports, over the grader's limit of 4"):
        Exports(folder_fd(tmp_path), 4, 1 << 20)
    with pytest.raises(safe_io.Rejected, match="500 bytes, over the grader's limit of 499"):
        Exports(folder_fd(tmp_path), 10, 499)
    assert Exports(folder_fd(tmp_path), 10, 500).value("f0") == int("1" * 100)


def test_reported_exception_kinds_are_a_fixed_vocabulary(tmp_path):
    from cnnlab.grading.hidden import Exports

    (tmp_path / "failures.json").write_text(json.dumps({"q1": ["NameError", "=HYPERLINK(1)\x1b[2J"], "q2": 7}))
    assert Exports(folder_fd(tmp_path), 10, 1 << 20).failures() == {"q1": ["NameError", "another exception"]}


def test_gradescope_format_and_gradebook(tmp_path):
    result = res.SubmissionResult(
        "alice-0123456789ab", "02", "graded", score=3, max_score=8, sha256="0123456789ab" + "0" * 52,
        questions=[res.QuestionResult("q1", 2, 2, [{"name": "MLP", "passed": True, "feedback": ""}]), res.QuestionResult("q2", 1, 3, [{"name": "ConvNet", "passed": False, "feedback": "check the padding"}])],
    )  # fmt: skip
    res.write_result(tmp_path, result)
    gradescope = json.loads((tmp_path / "alice-0123456789ab" / "results.json").read_text())
    assert gradescope["score"] == 3 and gradescope["stdout_visibility"] == "hidden"
    assert gradescope["tests"][1] == {
        "name": "q2",
        "score": 1,
        "max_score": 3,
        "status": "failed",
        "output": "FAIL ConvNet: check the padding",
        "visibility": "after_published",
    }
    assert {t["visibility"] for t in res.gradescope_json(result, "hidden")["tests"]} == {"hidden"}
    with pytest.raises(ValueError, match="visibility must be one of"):
        res.gradescope_json(result, "public")
    res.write_result(
        tmp_path,
        res.SubmissionResult(
            "bob-0123456789ab", "02", "ungradable", max_score=8, reason="invalid-json", message="not JSON"
        ),
    )
    res.write_gradebook(tmp_path, res.load_results(tmp_path))
    rows = (tmp_path / "gradebook.csv").read_text().splitlines()
    assert rows[0] == "submission,sha256,status,score,max_score,q1,q2,reason,isolation"
    assert rows[1].startswith("alice-0123456789ab,0123456789ab") and ",graded,3,8,2,1," in rows[1]
    assert rows[2].startswith("bob-0123456789ab,,ungradable,0.0,8,0,0,invalid-json")
    assert "invalid-json" in res.summary(res.load_results(tmp_path))
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


@pytest.mark.parametrize("text", ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "|calc"])
def test_gradebook_cells_never_start_a_formula(text):
    cell = res.csv_cell(text)
    assert cell.startswith("'") and cell[1:] == res.plain(text)
    assert res.csv_cell(-2.5) == -2.5 and res.csv_cell("graded") == "graded"


def test_terminal_text_has_no_control_characters():
    assert res.plain("ok\x1b[2J\x1b]0;title\x07\u202e!\nnext") == "ok[2J]0;title!\nnext"


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
    assert any("def _effective_activations" in line for line in secrets)  # hidden-test text is scanned for
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

    for module in (
        "trusted",
        "hidden",
        "safe_io",
        "modelsize",
        "batch",
        "results",
        "intake",
        "execution",
        "executor",
        "sandbox",
        "gradescope",
    ):
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


def test_written_questions_go_to_the_gradebook_for_people_not_into_the_score(tmp_path):
    from cnnlab.grading.batch import question_points, written_answers

    lab = s.blank()
    written = nbformat.v4.new_markdown_cell("YOUR ANSWER HERE")
    written.metadata["cnnlab"] = {"question": "q9", "points": 2, "kind": "written"}
    lab.cells.append(written)
    assert "q9" not in question_points(lab) and question_points(lab, "written") == {"q6": 2, "q9": 2}
    student = s.blank()
    answer = nbformat.v4.new_markdown_cell('=HYPERLINK("x")\x1b[31m BatchNorm keeps its statistics')
    answer.metadata["cnnlab"] = {"question": "q9"}
    student.cells.append(answer)
    answers = written_answers(lab, cells_of(student))
    assert answers[0]["question"] == "q6" and answers[0]["answer"].endswith("YOUR ANSWER HERE")  # lab 02's own
    assert answers[1:] == [
        {"question": "q9", "max_points": 2, "answer": '=HYPERLINK("x")[31m BatchNorm keeps its statistics'}
    ]
    result = res.SubmissionResult("dana-0123456789ab", "02", "graded", score=3, max_score=8, written=answers)
    res.write_result(tmp_path, result)
    gradescope = json.loads((tmp_path / "dana-0123456789ab" / "results.json").read_text())
    assert "BatchNorm" not in json.dumps(gradescope)  # never part of the autograder's results
    import csv
    import io

    header, row = csv.reader(io.StringIO(res.gradebook_text([result])))  # answers may span lines
    assert ",".join(header).endswith("q9 (written),q9 answer,reason,isolation")
    assert row[header.index("q9 (written)")] == ""  # an empty score column, then the answer as text
    assert row[header.index("q9 answer")].startswith("'=HYPERLINK")


def test_a_link_anywhere_on_the_path_is_refused(tmp_path):
    """An unpacked archive can hold a folder that links to the solutions."""
    from cnnlab.grading.intake import stage

    (tmp_path / "staging").mkdir()
    (tmp_path / "student").symlink_to(ROOT / "solutions")
    staged = stage(tmp_path / "student" / "02_mlp_vs_convnet.ipynb", tmp_path / "staging", 20 << 20)
    assert staged.problem.reason == "not-a-regular-file" and "link" in str(staged.problem)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"nbformat": 4, "worksheets": []}', "not-a-notebook"),  # was a KeyError: grader error
        (b'{"nbformat": 4, "cells": [' + b"[]," * 1_100_000 + b"[]]}", "too-complex"),  # 1 GB and 80 s to parse
    ],
)
def test_intake_refuses_odd_json_cheaply(tmp_path, content, reason):
    path = tmp_path / "odd.ipynb"
    path.write_bytes(content)
    with pytest.raises(Ungradable) as info:
        read_submission(path, 20 << 20)
    assert info.value.reason == reason


def test_answers_are_found_by_cell_id_when_a_tool_stripped_the_metadata():
    student = s.solution()
    for cell in student.cells:
        cell.metadata = {}
    built = assemble(s.blank(), cells_of(student), [])
    q1 = next(c for c in built.cells if c.metadata.get("cnnlab", {}).get("question") == "q1")
    assert "keras.layers.Dense(256" in q1.source  # the answer, not the stub


def test_shapes_come_from_batch_shape_and_build_configs_are_dropped(tmp_path):
    from cnnlab.grading.modelsize import SizeError, model_size

    model = lecture_convnet()
    config = json.loads(model.to_json())
    config["config"]["layers"][0]["config"]["batch_input_shape"] = [None, 4000, 4000, 1]
    with pytest.raises(SizeError, match="batch_shape"):
        model_size(config)
    config = json.loads(model.to_json())
    dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
    dense["build_config"] = {"input_shape": [None, 1_000_000]}  # Keras would build a 256 M-value kernel from this
    export(tmp_path, model)
    (tmp_path / "m.model.json").write_text(json.dumps(config))
    sized, size = safe_io._sized_config(folder_fd(tmp_path), "m", BUDGET)
    assert "build_config" not in json.dumps(sized) and size.parameters == model.count_params()


def test_nested_shared_models_are_refused_before_the_walk_explodes():
    """Each level calls the one below 16 times: 16**14 calls, in 43 KB of JSON."""
    from cnnlab.grading.modelsize import MAX_CALLS, SizeError, model_size

    def level(inner, depth):
        layer = {
            "class_name": "InputLayer",
            "name": f"in{depth}",
            "config": {"batch_shape": [None, 4]},
            "inbound_nodes": [],
        }
        layers = [layer]
        for call in range(16):
            source = "in" + str(depth) if call == 0 else f"inner{depth}"
            layers.append({"class_name": "Functional", "name": f"inner{depth}", "config": inner,
                           "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": [source, max(call - 1, 0) if call else 0, 0]}}]}]})  # fmt: skip
        layers[1:] = [{**layers[1], "inbound_nodes": [n for layer in layers[1:] for n in layer["inbound_nodes"]]}]
        return {"layers": layers, "input_layers": [[f"in{depth}", 0, 0]], "output_layers": [[f"inner{depth}", 15, 0]]}

    inner = {"layers": [{"class_name": "InputLayer", "name": "x", "config": {"batch_shape": [None, 4]}, "inbound_nodes": []}],
             "input_layers": [["x", 0, 0]], "output_layers": [["x", 0, 0]]}  # fmt: skip
    for depth in range(14):
        inner = level(inner, depth)
    with pytest.raises(SizeError, match=f"more than {MAX_CALLS:,} layer calls"):
        model_size({"class_name": "Functional", "config": inner})


def test_work_per_example_is_budgeted(tmp_path):
    import keras

    inputs = keras.Input((128, 128, 64))
    wide = keras.layers.Conv2D(64, 31, padding="same")(inputs)  # 3.9 M parameters, 2 M values, 64 G multiply-adds
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(wide)))
    export(tmp_path, model)
    with pytest.raises(safe_io.OverBudget, match="multiply-adds per example"):
        safe_io.load_network(folder_fd(tmp_path), "m", BUDGET)


def test_predict_batches_fit_the_activation_memory(tmp_path, monkeypatch):
    from cnnlab.grading import forward

    model = lecture_convnet()
    export(tmp_path, model)
    network = safe_io.load_network(folder_fd(tmp_path), "m", BUDGET)
    assert network.values_per_example == 33_690
    sizes = []
    run_all = network._graph.run_all
    monkeypatch.setattr(network._graph, "run_all", lambda arrays: sizes.append(len(arrays[0])) or run_all(arrays))
    monkeypatch.setattr(forward, "PREDICT_MEMORY", 4 * 33_690 * 10)  # room for 10 examples at a time
    network.predict(np.zeros((25, 28, 28, 1), "float32"), batch_size=64)
    assert sizes == [10, 10, 5]


def test_a_slow_hidden_test_fails_alone(tmp_path, monkeypatch):
    import time

    from cnnlab.grading import trusted
    from cnnlab.grading.hidden import HiddenTest

    hidden = type("Hidden", (), {"TESTS": [
        HiddenTest("q1", "slow", 1.0, lambda exports: time.sleep(30)),
        HiddenTest("q2", "quick", 1.0, lambda exports: None),
    ]})  # fmt: skip
    monkeypatch.setattr(trusted, "TEST_SECONDS", 1)
    results = trusted.run_tests(hidden, folder_fd(tmp_path), 10, 1 << 20)
    assert [r["passed"] for r in results] == [False, True] and "longer than the grader allows" in results[0]["hint"]


def test_a_test_that_kills_the_trusted_process_fails_alone(tmp_path):
    """The trusted process reports each test as it ends; when an export makes it die, that test
    scores zero with the grader's message and a new process checks the rest."""
    from types import SimpleNamespace

    from cnnlab.grading.checking import DIED, run_trusted
    from cnnlab.grading.isolation import Isolation
    from cnnlab.grading.limits import Limits
    from cnnlab.grading.trusted import load_hidden_tests

    hidden = tmp_path / "lab99.py"
    hidden.write_text(
        "import os\nfrom cnnlab.grading.hidden import HiddenTest\n"
        "TESTS = [HiddenTest('q1', 'fine', 1.0, lambda e: None),\n"
        "         HiddenTest('q1', 'dies', 1.0, lambda e: os._exit(9)),\n"
        "         HiddenTest('q2', 'hint', 1.0, lambda e: 'a hint')]\n"
    )
    home = tmp_path / "submission" / "grader"
    home.mkdir(parents=True)
    (tmp_path / "exports").mkdir()
    grader = SimpleNamespace(
        hidden=hidden,
        limits=Limits(),
        threads=1,
        data_dir=None,
        isolation=Isolation("none"),
        grader_uid_for=lambda h: None,
    )
    results, _ = run_trusted(grader, load_hidden_tests(str(hidden)).TESTS, folder_fd(tmp_path / "exports"), home)
    assert [(r["name"], r["passed"], r["hint"]) for r in results] == [
        ("fine", True, None),
        ("dies", False, DIED),
        ("hint", False, "a hint"),
    ]


def test_resume_checks_the_whole_hash(tmp_path):
    from cnnlab.grading.batch import _graded
    from cnnlab.grading.intake import Staged

    staged = Staged("alice-0123456789ab", "0123456789ab" + "1" * 52, None)
    res.write_result(tmp_path, res.SubmissionResult(staged.name, "02", "graded", sha256="0123456789ab" + "2" * 52))
    assert not _graded(tmp_path, staged)  # same name, another notebook
    res.write_result(tmp_path, res.SubmissionResult(staged.name, "02", "graded", sha256=staged.sha256))
    assert _graded(tmp_path, staged)


def test_fresh_uids_can_come_from_a_configured_range(monkeypatch):
    from cnnlab.grading import accounts

    monkeypatch.setenv("CNNLAB_UID_RANGE", "20000-20009")
    drawn = {accounts.fresh_uid() for _ in range(10)}
    assert drawn <= set(range(20000, 20010))
    monkeypatch.setenv("CNNLAB_UID_RANGE", "5-3")
    with pytest.raises(ValueError, match="CNNLAB_UID_RANGE must lie between"):
        accounts.fresh_uid()


def test_processes_that_read_notebooks_skip_jsonschemas_iri_parser():
    """Importing the package that builds it cost each submission's executor 3 s of CPU."""
    probe = (
        "import sys, cnnlab.grading.executor, nbformat\n"
        "nbformat.validate(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('x = 1')]))\n"
        "print(sys.modules.get('rfc3987_syntax', 'not imported'))"
    )
    result = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() in ("None", "not imported")
