"""Take in a submitted notebook without trusting it, and never crash on it.

:func:`stage` copies the submission into the grader's own folder before anything else looks
at it: it must be a regular file (``lstat``; a symlink to a solution is refused, not
followed, and so is a path through a linked folder) within the size limit. :func:`parse` then reads the copy as plain JSON with limits
on depth and number of cells; text that is not valid Unicode (lone surrogates) is refused.
Every failure is an :class:`Ungradable` with a short reason code and the grader's own
sentence; nothing of the submission is repeated in it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

MAX_CELLS = 2000
MAX_DEPTH = 32
MAX_CONTAINERS = 1_000_000  # JSON lists and objects: a 20 MB file of "[]," would cost the parser a GB
STEM_CHARACTERS = re.compile(r"[^A-Za-z0-9_.-]+")


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


@dataclass
class Staged:
    """A submission copied into the grader's space: its result name and content hash."""

    name: str  # sanitised stem + a short content hash: unique, and safe as a file name
    sha256: str
    path: Path | None  # the private copy (None when the submission was refused before copying)
    problem: Ungradable | None = None


def result_name(stem: str, sha256: str) -> str:
    """A file name that cannot leave its folder: letters, digits, ``_.-``, at most 60
    characters of the original stem, never starting with a dot, then the content hash."""
    safe = STEM_CHARACTERS.sub("_", stem).strip("._-")[:60] or "submission"
    return f"{safe}-{sha256[:12]}"


def stage(path: Path, staging: Path, max_bytes: int) -> Staged:
    """Copy ``path`` into ``staging`` if it is a regular file within ``max_bytes``."""
    stem = path.name[: -len(".ipynb")] if path.name.endswith(".ipynb") else path.name
    anonymous = hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()
    try:
        info = os.lstat(path)
    except OSError:
        return Staged(
            result_name(stem, anonymous), anonymous, None, Ungradable("unreadable", "the file cannot be read")
        )
    if os.path.realpath(path) != os.path.abspath(path):  # a folder on the way is a link (an unpacked archive's)
        return Staged(
            result_name(stem, anonymous),
            anonymous,
            None,
            Ungradable("not-a-regular-file", "the submission's path goes through a link; grade the file itself"),
        )
    if not stat.S_ISREG(info.st_mode):
        return Staged(
            result_name(stem, anonymous),
            anonymous,
            None,
            Ungradable("not-a-regular-file", "the submission is a link or a special file, not a notebook file"),
        )
    if info.st_size > max_bytes:
        return Staged(
            result_name(stem, anonymous),
            anonymous,
            None,
            Ungradable("too-large", f"the file is {info.st_size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB"),
        )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                raise OSError("not a regular file")
            data = stream.read(max_bytes + 1)
    except OSError:
        return Staged(
            result_name(stem, anonymous), anonymous, None, Ungradable("unreadable", "the file cannot be read")
        )
    if len(data) > max_bytes:
        return Staged(
            result_name(stem, anonymous), anonymous, None, Ungradable("too-large", "the file grew past the limit")
        )
    digest = hashlib.sha256(data).hexdigest()
    copy = staging / f"{digest}.ipynb"
    copy.write_bytes(data)
    return Staged(result_name(stem, digest), digest, copy)


def _text(value, what: str) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = "".join(value)
    if not isinstance(value, str):
        raise Ungradable("not-a-notebook", f"a cell's {what} is neither text nor a list of lines")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Ungradable("invalid-text", "a cell holds text that is not valid Unicode (a lone surrogate)") from None
    return value


def _deeper_than(document, limit: int) -> bool:
    stack = [(document, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def parse(data: bytes) -> list[StudentCell]:
    """The cells of a submitted notebook, as plain data (outputs and metadata other than the
    question id are not kept: they cannot change the grade).

    Raises
    ------
    Ungradable
        ``invalid-json``, ``too-complex``, ``too-deep``, ``wrong-nbformat``, ``not-a-notebook``,
        ``too-many-cells`` or ``invalid-text``.
    """
    if data.count(b"[") + data.count(b"{") > MAX_CONTAINERS:
        raise Ungradable("too-complex", f"the file holds more than {MAX_CONTAINERS:,} JSON lists and objects")
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise Ungradable("invalid-json", "the file is not UTF-8 text") from None
    except RecursionError:
        raise Ungradable("too-deep", "the file's JSON is nested too deeply to be a notebook") from None
    except (ValueError, MemoryError) as error:
        raise Ungradable("invalid-json", f"the file is not valid JSON (at byte {getattr(error, 'pos', '?')})") from None
    if _deeper_than(document, MAX_DEPTH):
        raise Ungradable("too-deep", "the file's JSON is nested too deeply to be a notebook")
    if not isinstance(document, dict) or not isinstance(document.get("cells", document.get("worksheets")), list):
        raise Ungradable("not-a-notebook", "the JSON has no list of cells; is this a Jupyter notebook?")
    version = document.get("nbformat")
    if version != 4:
        said = version if isinstance(version, int) and not isinstance(version, bool) else "missing or not a number"
        raise Ungradable("wrong-nbformat", f"nbformat {said}; save it as a version-4 notebook (Jupyter 4 or later)")
    if not isinstance(document.get("cells"), list):
        raise Ungradable("not-a-notebook", "a version-4 notebook keeps its cells in a list called cells")
    if len(document["cells"]) > MAX_CELLS:
        raise Ungradable("too-many-cells", f"the notebook has more than {MAX_CELLS} cells")
    cells = []
    for raw_cell in document["cells"]:
        if not isinstance(raw_cell, dict) or raw_cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise Ungradable("not-a-notebook", "a cell is not a notebook cell")
        metadata = raw_cell.get("metadata") if isinstance(raw_cell.get("metadata"), dict) else {}
        tag = metadata.get("cnnlab") if isinstance(metadata.get("cnnlab"), dict) else {}
        question = tag.get("question") if isinstance(tag.get("question"), str) else None
        cell_id = raw_cell.get("id") if isinstance(raw_cell.get("id"), str) else None
        source = _text(raw_cell.get("source", ""), "source")
        question = _text(question, "question id") if question is not None else None
        cell_id = _text(cell_id, "id") if cell_id is not None else None
        cells.append(StudentCell(raw_cell["cell_type"], source, cell_id, question))
    return cells


def read_submission(path: Path, max_bytes: int) -> list[StudentCell]:
    """Stage and parse one notebook file (for tools and tests; the grader stages a whole batch)."""
    with tempfile.TemporaryDirectory() as staging:
        staged = stage(Path(path), Path(staging), max_bytes)
        if staged.problem:
            raise staged.problem
        return parse(staged.path.read_bytes())
