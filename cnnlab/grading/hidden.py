"""What a hidden-test file (``solutions/hidden/labNN.py``) provides, and how it reads exports.

A hidden-test file defines

- ``EXPORTS``: a list of ``(anchor, question, code)``. ``code`` runs in the student's kernel
  after the cell ``anchor`` (a question id, meaning after its check cell, or a cell id) and
  calls ``export_value``, ``export_array`` or ``export_model``;
- ``TESTS``: a list of :class:`HiddenTest`. Each reads the exports through an
  :class:`Exports` object and returns ``None`` when it passes, or a hint. Hints must not
  contain expected values.
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


class Exports:
    """Trusted, read-only access to one run's exported files."""

    def __init__(self, directory, max_bytes: int):
        self.fd = safe_io.open_directory(directory)
        self.max_bytes = max_bytes

    def value(self, name: str):
        return safe_io.read_json(self.fd, f"{name}.json", self.max_bytes)

    def array(self, name: str):
        return safe_io.read_array(self.fd, f"{name}.npy", self.max_bytes)

    def model(self, name: str):
        return safe_io.rebuild_model(self.fd, name, self.max_bytes)

    def failures(self) -> dict:
        try:
            failures = safe_io.read_json(self.fd, "failures.json", 1 << 16)
        except safe_io.Rejected:
            return {}
        return failures if isinstance(failures, dict) else {}
