"""Progress for long jobs: a live bar on a terminal, plain lines elsewhere (CI logs, files).

Built on rich (already a dependency of Keras). On a terminal, :class:`Progress` shows a bar
with counts, the item in hand and the time left, and prints each finished item's line
above it; when the output is not a terminal, only those lines are printed, one per item.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichProgress


class Progress:
    """``with Progress(total, "grading") as bar: bar.start(name); ...; bar.advance(line)``."""

    def __init__(self, total: int, description: str, stream=None, live: bool | None = None):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.total, self.description, self.done = total, description, 0
        self._bar = None

    def __enter__(self) -> Progress:
        if self.live and self.total:
            console = Console(file=self.stream)
            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[current]}"),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total, current="")
        return self

    def start(self, name: str) -> None:
        """Show ``name`` as the item in hand."""
        if self._bar is not None:
            self._bar.update(self._task, current=name)

    def advance(self, line: str) -> None:
        """One item done; ``line`` says how it went."""
        self.done += 1
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False)
            self._bar.advance(self._task)
        else:
            print(line, file=self.stream, flush=True)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


@contextmanager
def download_bar(label: str, total: int | None, enabled: bool = True, stream=None):
    """Yield ``advance(n_bytes)``; on a terminal (stderr), a bar with bytes, speed and time left."""
    stream = stream or sys.stderr
    if not (enabled and stream.isatty()):
        yield lambda n: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with RichProgress(*columns, console=Console(file=stream), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
