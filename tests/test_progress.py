"""Progress: a live bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from cnnlab.progress import Progress, download_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    with Progress(2, "grading", stream=stream) as bar:
        bar.start("alice")
        bar.advance("[1/2] alice: 5/8 graded")
        bar.advance("[2/2] bob: 8/8 graded")
    assert stream.getvalue() == "[1/2] alice: 5/8 graded\n[2/2] bob: 8/8 graded\n"  # no bar, no escape codes


def test_a_live_bar_with_counts_and_the_current_item_on_a_terminal():
    stream = Terminal()
    with Progress(3, "grading lab 02", stream=stream) as bar:
        bar.start("carol-0123")
        bar._bar.refresh()
        bar.advance("[1/3] carol-0123: 5/8 graded")
        bar._bar.refresh()
    text = stream.getvalue()
    assert "grading lab 02" in text and "carol-0123" in text and "1/3" in text
    assert "[1/3] carol-0123: 5/8 graded" in text and "\x1b[" in text  # drawn, and the line kept above it


def test_download_bar_draws_only_on_a_terminal():
    quiet = io.StringIO()
    with download_bar("mnist.gz", 1000, stream=quiet) as advance:
        advance(500)
    assert quiet.getvalue() == ""
    loud = Terminal()
    with download_bar("mnist.gz", 1000, stream=loud) as advance:
        advance(1000)
    assert "mnist.gz" in loud.getvalue()
