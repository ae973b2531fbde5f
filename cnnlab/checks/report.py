"""How every public check reports: one line, pass or hint."""

from __future__ import annotations

PASS = "PASS"
FAIL = "NOT YET"


class Hint(Exception):
    """Raised inside a check with what the student should look at."""


def run_check(question: str, check, *args) -> bool:
    """Run ``check(*args)``; print ``q1 PASS: ...`` or ``q1 NOT YET: <hint>``; return whether it passed.

    ``check`` returns a short success message or raises :class:`Hint`. A question that is
    still a stub (``NotImplementedError``) is reported as not answered yet.
    """
    try:
        message = check(*args)
    except NotImplementedError:
        print(f"{question} {FAIL}: not answered yet (the answer cell still raises NotImplementedError).")
        return False
    except Hint as hint:
        print(f"{question} {FAIL}: {hint}")
        return False
    except Exception as error:  # the student's code crashed inside the check
        print(f"{question} {FAIL}: your code raised {type(error).__name__}: {error}")
        return False
    print(f"{question} {PASS}: {message}")
    return True


def require(condition: bool, hint: str) -> None:
    if not condition:
        raise Hint(hint)


def letter_prediction(question: str, name: str, guess, choices, outcome: str = "show what happens") -> bool:
    """The check of a predict-then-run question answered with one of ``choices`` (letters): it
    looks only at the form of the answer, since the cells after it reveal the outcome."""

    def check(value):
        require(value is not None, f"assign your prediction to `{name}` before running the cells below")
        require(
            isinstance(value, str) and value.strip().lower() in choices,
            f"`{name}` must be one of the letters {', '.join(repr(c) for c in choices)}, got {value!r}",
        )
        return f"prediction {value.strip().lower()!r} recorded; the next cells {outcome}"

    return run_check(question, check, guess)
