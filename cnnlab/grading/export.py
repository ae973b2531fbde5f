"""Export helpers, imported by the export cells that run in the student's kernel.

They write plain data only, into ``$CNNLAB_EXPORT_DIR``: JSON values, ``.npy`` arrays, and
models as their JSON config plus a ``.npz`` of weight arrays. Nothing here is trusted by
the grader: the trusted side re-reads every file with size caps and rebuilds models
through an allow-list.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

_NAME_CHARACTERS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


def _path(name: str, suffix: str) -> Path:
    if not name or set(name) - _NAME_CHARACTERS:
        raise ValueError(f"export name {name!r}: use lower-case letters, digits and _")
    folder = Path(os.environ["CNNLAB_EXPORT_DIR"])
    folder.mkdir(exist_ok=True)
    return folder / f"{name}{suffix}"


def export_value(name: str, value) -> None:
    """A JSON-serialisable value (numbers, strings, lists, dicts)."""
    _path(name, ".json").write_text(json.dumps(value))


def export_array(name: str, value) -> None:
    """A numeric array, saved without pickling."""
    np.save(_path(name, ".npy"), np.asarray(value), allow_pickle=False)


def export_model(name: str, model) -> None:
    """A Keras model: its architecture as JSON and its weights as arrays, in order."""
    _path(name, ".model.json").write_text(model.to_json())
    np.savez(_path(name, ".weights.npz"), *[np.asarray(w) for w in model.get_weights()])


def record_failure(question: str, failure: BaseException) -> None:
    """Note that the export for ``question`` failed, with the exception's type only."""
    failures = _path("failures", ".json")
    known = json.loads(failures.read_text()) if failures.exists() else {}
    known.setdefault(question, []).append(type(failure).__name__)
    failures.write_text(json.dumps(known))
