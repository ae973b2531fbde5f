"""Errors raised by the data layer. Each one says what was wrong, where, and how to fix it."""

from __future__ import annotations


class DataError(Exception):
    """Base class for every data-layer error."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A dataset file is in none of the places searched and could not be downloaded."""


class ChecksumError(DataError):
    """A file's SHA-256 differs from the one in the manifest; the file is not used."""


class CorruptFileError(DataError):
    """A file could not be read (for example a truncated gzip stream)."""
