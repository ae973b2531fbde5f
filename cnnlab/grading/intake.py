"""Read a submitted notebook without trusting it: size, JSON, nbformat version, structure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


class Ungradable(Exception):
    """The submission cannot be graded; ``reason`` is a short code, the message says why."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class StudentCell:
    cell_type: str
    source: str
    cell_id: str | None
    question: str | None


def _text(value) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    if isinstance(value, str):
        return value
    raise Ungradable("not-a-notebook", "a cell's source is neither text nor a list of lines")


def read_submission(path: Path, max_bytes: int) -> list[StudentCell]:
    """The cells of a submitted notebook, as plain data (outputs and metadata other than the
    question id are not kept: they cannot change the grade).

    Raises
    ------
    Ungradable
        ``too-large``, ``invalid-json``, ``wrong-nbformat`` or ``not-a-notebook``.
    """
    size = path.stat().st_size
    if size > max_bytes:
        raise Ungradable("too-large", f"the file is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    raw = path.read_bytes()
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Ungradable(
            "invalid-json", f"the file is not valid JSON ({type(error).__name__} at {getattr(error, 'pos', '?')})"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("cells", document.get("worksheets")), list):
        raise Ungradable("not-a-notebook", "the JSON has no list of cells; is this a Jupyter notebook?")
    if document.get("nbformat") != 4:
        raise Ungradable(
            "wrong-nbformat",
            f"nbformat {document.get('nbformat')!r}; save it as a version-4 notebook (Jupyter 4 or later)",
        )
    cells = []
    for raw_cell in document["cells"]:
        if not isinstance(raw_cell, dict) or raw_cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise Ungradable("not-a-notebook", "a cell is not a notebook cell")
        metadata = raw_cell.get("metadata") if isinstance(raw_cell.get("metadata"), dict) else {}
        tag = metadata.get("cnnlab") if isinstance(metadata.get("cnnlab"), dict) else {}
        question = tag.get("question") if isinstance(tag.get("question"), str) else None
        cell_id = raw_cell.get("id") if isinstance(raw_cell.get("id"), str) else None
        cells.append(StudentCell(raw_cell["cell_type"], _text(raw_cell.get("source", "")), cell_id, question))
    return cells
