"""Leaving out the instructor cells a grade does not need (cnnlab/grading/slicing.py)."""

from __future__ import annotations

import pytest

from cnnlab.grading.slicing import cells_to_skip, names_of


def test_names_a_cell_binds_and_reads():
    names = names_of(
        "import numpy as np\nfrom x import y as z\nfor i in range(3):\n    total = f(i)\ndef g(a):\n    return h + a"
    )
    assert {"np", "z", "i", "total", "g"} <= names.binds
    assert {"f", "h"} <= names.reads and not names.opaque and not names.indirect
    assert "range" in names.reads  # builtins count: a marked cell could rebind one
    assert cells_to_skip([("input = 3", True, "marked"), ("print(input)", False, "")]) == set()
    assert names_of("%time x = load()\nprint(x)").opaque  # a magic runs a string of code
    assert names_of("!ls\nx = 1").opaque and names_of("x?").opaque


def test_a_functions_own_names_are_not_read_from_the_notebook():
    names = names_of(
        "def probe(seed):\n    model = build(seed)\n    labels = [model(i) for i in range(3)]\n    return labels\n"
        "class Box:\n    size = width * 2\n"
        "def outer():\n    inner_value = 1\n    def inner():\n        return inner_value + offset\n    return inner"
    )
    assert {"build", "width", "offset"} <= names.reads
    assert not {"model", "labels", "seed", "i", "inner_value"} & names.reads
    assert "scale" in names_of("class Box:\n    scale = scale * 2").reads  # the global, read before the class binds it
    assert names_of("x = x + 1").reads == {"x"}  # the top level reads what it binds: an earlier cell's value
    assert names_of("def f():\n    global counter\n    counter += 1").reads >= {"counter"}
    # the lab 04 case: an export's probe function binds `model`, which a training cell also binds
    cells = [
        ("model = train()", True, "training"),
        ("def _probe():\n    model = 1\n    return model\n_probe()", False, ""),
    ]
    assert cells_to_skip(cells) == {0}


def test_hostile_cells_cost_the_parser_nothing():
    assert names_of("!true\n" * 499 + "x = 1\n" * 80_000).opaque  # IPython's transformer took minutes on this
    assert names_of("!echo hi\n" * 501).opaque  # and raised on this
    assert names_of("x = 1\n" * 50_000).opaque  # too long to parse: opaque, not parsed
    assert names_of("(" * 10_000 + ")" * 10_000).opaque  # ast's recursion limit
    assert names_of("from m import *").opaque and names_of("globals()['x'] = 1").indirect
    assert names_of("def broken(:\n").opaque


def test_a_marked_cell_is_left_out_unless_something_after_it_needs_it():
    cells = [
        ("import keras", False, "setup"),
        ("data = load()\nplot(data)", True, "data, marked"),
        ("history = train(model)", True, "training, marked"),
        ("def answer():\n    return 1", False, "answer"),
        ("export(answer())", False, "export"),
    ]
    assert cells_to_skip(cells) == {1, 2}
    needs_data = [*cells[:3], ("def answer():\n    return len(data)", False, "answer"), cells[4]]
    assert cells_to_skip(needs_data) == {2}  # the answer reads `data`
    chain = [cells[0], ("a = 1", True, ""), ("b = a + 1", True, ""), ("print(b)", False, "")]
    assert cells_to_skip(chain) == set()  # b needs a: kept transitively
    opaque = [*cells[:3], ("exec(open('x').read())", False, "student"), cells[4]]
    assert cells_to_skip(opaque) == set()  # a cell that reaches names indirectly keeps everything before it
    later = [cells[0], ("export(1)", False, ""), ("data = load()", True, "")]
    assert cells_to_skip(later) == {2}  # nothing after it needs it


def test_del_and_augmented_assignment_read_what_an_earlier_cell_made():
    # found by a hostile-student review: `del final` in an answer, `final` made by a marked
    # training cell, which was then left out and the answer raised NameError in the graded run only
    assert names_of("del reference, trained").reads == {"reference", "trained"}
    assert names_of("total += 1").reads == {"total"}
    assert not {"step", "seen"} & names_of("def f(seen):\n    step = 0\n    step += 1\n    del step, seen").reads
    cells = [("final, trained = train()", True, "training"), ("del final, trained  # free the memory", False, "answer")]
    assert cells_to_skip(cells) == set()


def test_match_patterns_bind_their_captures():
    names = names_of(
        "match point:\n    case [x, *rest]:\n        pass\n    case {'k': v, **others}:\n        pass\n    case _ as whole:\n        pass"
    )
    assert {"x", "rest", "v", "others", "whole"} <= names.binds and "point" in names.reads


@pytest.mark.parametrize(
    "source",
    [
        "import __main__\n__main__.final",
        "import sys as s",
        "from sys import modules",
        "frame = sys._getframe()",
        "value = frame.f_globals['final']",
        "import inspect",
        "print.__self__",
        "getattr(builtins, 'ev' + 'al')('final')",
        "getattr(print, '__self__')",
        "probe.__globals__['final']",
        "typing.get_type_hints(probe)",
        "import importlib\nimportlib.import_module('__main__')",
        "value = Out[3]",
        "value = _",
        "value = _5",
        "value = _i3",
        "names = dir()",
        "frames.tb_frame",
        "import gc",
        "import pickle",
        "operator.attrgetter('__glo' + 'bals__')(probe)",
        "from operator import attrgetter",
        # a second hostile-student review: getattr passed on as a value, text that names a
        # namespace, modules that run code in __main__
        "g = getattr\nns = g(probe, '__glo' + 'bals__')",
        "values = list(map(getattr, [probe], names))",
        "value = '{0.__globals__[final]}'.format(probe)",
        "pkgutil.resolve_name('__main__:final')",
        "import cProfile\ncProfile.run('answer(final)')",
        "import bdb",
        "frame = logging.currentframe()",
    ],
)
def test_reaching_the_notebooks_names_indirectly_keeps_every_earlier_cell(source):
    # each of these was shown to read a name of a left-out cell without naming it
    assert names_of(source).indirect
    cells = [("final = train()", True, "training"), (source, False, "student")]
    assert cells_to_skip(cells) == set()


def test_names_a_cell_binds_itself_are_not_history():
    assert not names_of("for _i, case in enumerate(cases):\n    print(_i)").indirect
    assert not names_of("for _ in range(3):\n    step()").indirect
    assert not names_of("getattr(layer, 'activation', None)").indirect


def test_a_marked_cell_that_imports_sys_can_still_be_left_out():
    # the Colab bootstrap: instructors' marked cells answer for their own side effects
    cells = [("import sys\nif 'google.colab' in sys.modules:\n    install()", True, "bootstrap"), ("x = 1", False, "")]
    assert cells_to_skip(cells) == {0}


@pytest.mark.timeout(60)
def test_a_cell_of_empty_lines_costs_the_parser_linear_time():
    # `^\s*[!%]` scanned from every line start across the empty lines after it: 130 s for this
    # cell in the grader's own process, before any sandbox (found by a hostile-student review)
    names = names_of("\n" * 99_990 + "x = 1")
    assert names.binds == {"x"} and not names.opaque


def test_a_question_mark_in_a_comment_is_not_ipython_help():
    # it made the cell opaque, so every marked cell before it ran (cost only, found by review)
    names = names_of("x = 1  # is this right?\ny = x")
    assert not names.opaque and names.binds == {"x", "y"}
    assert names_of("x?").opaque and names_of("np.mean??").opaque
