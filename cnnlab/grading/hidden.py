"""What a hidden-test file (``solutions/hidden/labNN.py``) provides, and how it reads exports.

A hidden-test file defines

- ``EXPORTS``: a list of ``(anchor, question, code)``. ``code`` runs in the student's kernel
  after the cell ``anchor`` (a question id, meaning after its check cell, or a cell id) and
  calls ``export_value``, ``export_array`` or ``export_model``;
- ``TESTS``: a list of :class:`HiddenTest`. Each reads the exports through an
  :class:`Exports` object and returns ``None`` when it passes, or a hint. Hints are the
  instructors' own sentences: they must not contain expected values, nor any text taken
  from an export (numbers computed from one are fine);
- optionally ``BUDGETS``: ``{question: Budget(...)}``, how large that question's exports may
  be (default :data:`DEFAULT_BUDGET`). An export over its budget scores zero for the whole
  question, before anything of it is built or loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cnnlab.grading import safe_io


@dataclass(frozen=True)
class HiddenTest:
    question: str
    name: str
    weight: float
    run: Callable[[Exports], str | None]


def letter_prediction_test(question: str, variable: str, key: str, wrong: str):
    """A hidden test for a prediction question answered with a letter: the export
    ``{question}_guess`` must be the string ``key`` (case and spaces aside); ``wrong`` is the
    hint for another letter, which must not give the right one away."""

    def graded(exports):
        letter = exports.value(question + "_guess")
        if type(letter) is not str:
            return "`" + variable + "` should be one of the question's letters, as a string"
        return None if letter.strip().lower() == key else wrong

    return graded


@dataclass(frozen=True)
class Budget:
    """The most one question's exports may hold."""

    parameters: int = 8_000_000  # per exported model (EfficientNet-Lite0 has 4.7 M)
    activations: int = 32_000_000  # output values per example per model (VGG16: 15.3 M, Lite0: 20 M)
    multiply_adds: int = 2_000_000_000  # work per example per model (Lite0: 0.4 G; VGG16, 15.5 G, is over)
    array_bytes: int = 64 << 20  # per exported array


DEFAULT_BUDGET = Budget()

# Exception types a submission's export may report, by name; anything else is "another exception".
KNOWN_EXCEPTIONS = frozenset(
    """ArithmeticError AssertionError AttributeError FloatingPointError ImportError IndexError KeyError
    LookupError MemoryError ModuleNotFoundError NameError NotImplementedError OSError OverflowError
    RecursionError RuntimeError TypeError UnboundLocalError ValueError ZeroDivisionError
    InvalidArgumentError ResourceExhaustedError""".split()
)


class Exports:
    """Trusted, read-only access to one run's exports, through a descriptor of their folder.

    Every file is counted and sized (:func:`~cnnlab.grading.safe_io.inventory`) before any
    is read; each read is checked against the budget of the question being tested.
    """

    def __init__(self, directory: int, max_count: int, max_total: int, budgets: dict | None = None):
        self.fd = directory
        self.files = safe_io.inventory(directory, max_count, max_total)
        self.budgets = budgets or {}
        self.question: str | None = None  # set by the grader before each test

    @property
    def budget(self) -> Budget:
        return self.budgets.get(self.question, DEFAULT_BUDGET)

    def value(self, name: str):
        return safe_io.read_json(self.fd, f"{name}.json", self.budget.array_bytes)

    def array(self, name: str):
        return safe_io.read_array(self.fd, f"{name}.npy", self.budget.array_bytes)

    def network(self, name: str):
        """The exported model as the grader's NumPy network (layers, parameters, predict):
        fast, and without Keras or TensorFlow in the trusted process."""
        return safe_io.load_network(self.fd, name, self.budget)

    def model(self, name: str):
        """The exported model rebuilt in Keras, for tests that need Keras itself (slower:
        the trusted process then imports TensorFlow)."""
        return safe_io.rebuild_model(self.fd, name, self.budget)

    def failures(self) -> dict[str, list[str]]:
        """For each question, the kinds of exception its export code raised, as words from
        :data:`KNOWN_EXCEPTIONS` (or ``another exception``)."""
        try:
            raw = safe_io.read_json(self.fd, "failures.json", 1 << 16)
        except safe_io.Rejected:
            return {}
        if not isinstance(raw, dict):
            return {}
        failures = {}
        for question, kinds in raw.items():
            if isinstance(question, str) and isinstance(kinds, list):
                failures[question] = sorted(
                    {k if isinstance(k, str) and k in KNOWN_EXCEPTIONS else "another exception" for k in kinds[:20]}
                )
        return failures
