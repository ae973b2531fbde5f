"""One batch spread over several machines: ``cnnlab grade --shard K/N``, then ``cnnlab gradebook merge``.

A submission belongs to shard ``int(sha256[:16], 16) % N`` of its content: every machine
decides the same way without talking to the others, the shards come out balanced (the hash
is uniform), and adding submissions to a batch never moves the ones already there. Each
shard's output folder gets a ``shard.json`` saying which shard it is, which results it owes
and which batch it belongs to; :func:`merge` checks them against each other, refuses a
submission graded twice, reports any that is missing, and writes one output folder as a
single run would have.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from cnnlab.grading import results as res

SHARD = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True)
class Shard:
    index: int  # 0-based, as JOB_COMPLETION_INDEX and SLURM_ARRAY_TASK_ID count
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"`` with ``0 <= K < N``."""
        match = SHARD.match(text.strip())
        if not match or not int(match[1]) < int(match[2]):
            raise ValueError(f"--shard must be K/N with 0 <= K < N (K counts from 0), got {text!r}")
        return cls(int(match[1]), int(match[2]))

    def owns(self, sha256: str) -> bool:
        return int(sha256[:16], 16) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def batch_id(hashes: list[str]) -> str:
    """The same for every shard of one batch (the content of all its submissions)."""
    return hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()[:16]


def write_shard_record(out: Path, shard: Shard | None, owed: list[str], batch: str) -> None:
    record = {"shard": str(shard) if shard else "0/1", "batch": batch, "results": sorted(owed)}
    res.write_atomically(out / "shard.json", json.dumps(record, indent=1))


class MergeError(RuntimeError):
    """The shards do not make one batch (different batches, duplicates, a missing shard)."""


def merge(folders: list[Path], out: Path) -> tuple[list[res.SubmissionResult], list[str]]:
    """Merge the shards' output folders into ``out``; return the results and the names of
    the results that are owed but missing (an interrupted shard).

    Raises
    ------
    MergeError
        Folders from different batches or shard counts, a shard given twice or missing, or a
        submission graded in two shards.
    """
    records = []
    for folder in folders:
        path = folder / "shard.json"
        if not path.is_file():
            raise MergeError(f"{folder} is not a shard's output: it has no shard.json")
        records.append((folder, json.loads(path.read_text())))
    batches = {record["batch"] for _, record in records}
    shards = [Shard.parse(record["shard"]) for _, record in records]
    if len(batches) != 1:
        raise MergeError("the folders come from different batches (their submissions differ)")
    if len({s.count for s in shards}) != 1:
        raise MergeError(
            f"the folders were split into different numbers of shards: {sorted({s.count for s in shards})}"
        )
    indices = sorted(s.index for s in shards)
    if len(set(indices)) != len(indices):
        raise MergeError(f"shard(s) given twice: {sorted({i for i in indices if indices.count(i) > 1})}")
    absent = sorted(set(range(shards[0].count)) - set(indices))
    if absent:
        raise MergeError(f"shard(s) missing: {', '.join(f'{i}/{shards[0].count}' for i in absent)}")
    owner: dict[str, Path] = {}
    duplicates, missing, merged = [], [], []
    for folder, record in records:
        for name in record["results"]:
            if name in owner:
                duplicates.append(name)
            owner[name] = folder
    if duplicates:
        raise MergeError(f"submission(s) graded in more than one shard: {', '.join(sorted(duplicates))}")
    out.mkdir(parents=True, exist_ok=True)
    for name, folder in sorted(owner.items()):
        source = folder / f"{name}.json"
        if not source.is_file():
            missing.append(name)
            continue
        result = res.SubmissionResult.from_dict(json.loads(source.read_text()))
        if (folder / name / "results.json").is_file():
            (out / name).mkdir(exist_ok=True)
            shutil.copyfile(folder / name / "results.json", out / name / "results.json")
        res.write_atomically(out / f"{name}.json", source.read_text())
        merged.append(result)
    res.write_gradebook(out, merged)
    write_shard_record(out, None, [r.submission for r in merged], records[0][1]["batch"])
    return merged, missing
