"""Shared fixtures. Tests read the real course data through CNNLAB_DATA (default ../shared/data)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ["CNNLAB_DATA"])  # made absolute by the root conftest.py


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real data mirror; its absence is an error, not a skip."""
    if not (REAL_DATA / "mnist").is_dir():
        pytest.fail(f"the course data is not at CNNLAB_DATA={REAL_DATA}; set CNNLAB_DATA to the shared data folder")
    return REAL_DATA


@pytest.fixture
def empty_env(monkeypatch, tmp_path):
    """An empty mirror and an empty cache, downloads disabled."""
    mirror, cache = tmp_path / "mirror", tmp_path / "cache"
    mirror.mkdir()
    monkeypatch.setenv("CNNLAB_DATA", str(mirror))
    monkeypatch.setenv("CNNLAB_CACHE", str(cache))
    monkeypatch.setenv("CNNLAB_OFFLINE", "1")
    return mirror, cache


@pytest.fixture
def mirror_with(empty_env, real_data):
    """Copy real files into the temporary mirror: ``mirror_with("mnist/t10k-labels-idx1-ubyte.gz")``."""
    mirror, _ = empty_env

    def copy(*relpaths: str) -> Path:
        for rel in relpaths:
            (mirror / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(real_data / rel, mirror / rel)
        return mirror

    return copy
