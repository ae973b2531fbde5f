"""Sharding a batch (``cnnlab grade --shard K/N``) and merging the shards (``cnnlab gradebook merge``)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys

import pytest

from cnnlab.grading import results as res
from cnnlab.grading.shards import MergeError, Shard, batch_id, merge, write_shard_record

from . import submissions as s


def digest(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def test_every_submission_is_in_exactly_one_balanced_and_stable_shard():
    hashes = [digest(i) for i in range(3000)]
    shards = [Shard(k, 3) for k in range(3)]
    owners = [[k for k, shard in enumerate(shards) if shard.owns(h)] for h in hashes]
    assert all(len(o) == 1 for o in owners)
    sizes = [sum(o == [k] for o in owners) for k in range(3)]
    assert all(900 <= size <= 1100 for size in sizes), sizes  # 1,000 each, give or take
    more = hashes + [digest(i) for i in range(3000, 3500)]  # a late submission moves no earlier one
    assert [[k for k, sh in enumerate(shards) if sh.owns(h)] for h in more[:3000]] == owners


@pytest.mark.parametrize("text", ["3/3", "-1/3", "1", "a/b", "1/0", ""])
def test_bad_shard_arguments_are_refused(text):
    with pytest.raises(ValueError, match="K/N with 0 <= K < N"):
        Shard.parse(text)


def _fake_shard(folder, shard, names, batch="b1"):
    folder.mkdir()
    for name in names:
        result = res.SubmissionResult(name, "02", "graded", score=1, max_score=8, sha256=name)
        res.write_result(folder, result)
    write_shard_record(folder, Shard.parse(shard) if shard else None, names, batch)
    return folder


def test_merge_refuses_what_is_not_one_batch(tmp_path):
    a = _fake_shard(tmp_path / "a", "0/2", ["x-1"])
    b = _fake_shard(tmp_path / "b", "1/2", ["y-2"], batch="other")
    with pytest.raises(MergeError, match="different batches"):
        merge([a, b], tmp_path / "out")
    with pytest.raises(MergeError, match="shard\\(s\\) missing: 1/2"):
        merge([a], tmp_path / "out")
    c = _fake_shard(tmp_path / "c", "1/2", ["x-1"])
    with pytest.raises(MergeError, match="more than one shard: x-1"):
        merge([a, c], tmp_path / "out")
    with pytest.raises(MergeError, match="given twice"):
        merge([a, a], tmp_path / "out")
    with pytest.raises(MergeError, match="no shard.json"):
        merge([tmp_path], tmp_path / "out")


def test_merge_reports_missing_results(tmp_path):
    a = _fake_shard(tmp_path / "a", "0/2", ["x-1"])
    b = _fake_shard(tmp_path / "b", "1/2", ["y-2"])
    (b / "y-2.json").unlink()  # an interrupted shard
    write_shard_record(b, Shard(1, 2), ["y-2"], "b1")
    merged, missing = merge([a, b], tmp_path / "out")
    assert [r.submission for r in merged] == ["x-1"] and missing == ["y-2"]


def test_three_shards_merged_give_the_gradebook_of_one_run(tmp_path):
    folder = tmp_path / "submissions"
    folder.mkdir()
    s.write(folder, "blank", s.blank())
    s.write(folder, "fast", s.fast_partial())
    s.write(folder, "blank_with_a_note", s.with_cell_after(s.blank(), "lab02-01", "note = 1"))
    for i, bad in enumerate([b"{", b"[]", b'{"nbformat": 3, "cells": []}', b"\xff"]):
        s.write(folder, f"unreadable_{i}", bad)
    paths = sorted(folder.glob("*.ipynb"))
    assert batch_id([digest(1), digest(2)]) == batch_id([digest(2), digest(1)])

    def grade(out, *options):
        done = subprocess.run(s.grade_command("02", paths, out, *options), capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done

    grade(tmp_path / "whole")
    parts = [tmp_path / f"shard{k}" for k in range(3)]
    for k, part in enumerate(parts):
        grade(part, "--shard", f"{k}/3")
    owned = [json.loads((part / "shard.json").read_text())["results"] for part in parts]
    assert sorted(n for names in owned for n in names) == sorted(
        json.loads((tmp_path / "whole" / "shard.json").read_text())["results"]
    )
    merged = subprocess.run(
        [sys.executable, "-m", "cnnlab", "gradebook", "merge", *map(str, parts), "--out", str(tmp_path / "merged")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    whole = (tmp_path / "whole" / "gradebook.csv").read_text()
    assert (tmp_path / "merged" / "gradebook.csv").read_text() == whole
    rows = list(csv.DictReader(io.StringIO(whole)))  # written answers may hold line breaks
    assert len(rows) == 7 and ("graded", "8.0", "11") in {(r["status"], r["score"], r["max_score"]) for r in rows}
    for name in json.loads((tmp_path / "whole" / "shard.json").read_text())["results"]:
        one, other = (json.loads((tmp_path / run / name / "results.json").read_text()) for run in ("whole", "merged"))
        one.pop("execution_time"), other.pop("execution_time")
        assert one == other
