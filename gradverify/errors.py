"""Library exceptions: every one says what was expected, what was received, and how to fix it.

They subclass the builtin a caller would expect (``ValueError``, ``TypeError``), so code that
does not know gradverify can still catch them; ``cli`` turns any ``GradverifyError`` into a
one-paragraph message and exit code 2, never a traceback.

Each error names the party that caused it:

- the **user** (a spec, a file, an option): ``SpecError``, ``InputError`` — exit 2;
- a **candidate** (the function being judged): ``CandidateError`` — that candidate's failure,
  exit 1 like any other wrong answer;
- **gradverify itself** (an inconsistency found inside the library): ``InternalError`` — exit 3
  and a "please report" line; never blamed on a user or a student.
"""

from __future__ import annotations

__all__ = ["GradverifyError", "SpecError", "InputError", "CandidateError", "InternalError", "GradientMismatchError"]


class GradverifyError(Exception):
    """Base class of every error gradverify raises on purpose."""

    def __init__(self, what: str, *, expected: str = "", received: str = "", fix: str = ""):
        self.what, self.expected, self.received, self.fix = what, expected, received, fix
        super().__init__(self._paragraph())

    def _paragraph(self) -> str:
        parts = [self.what.rstrip(".") + "."]
        if self.expected:
            parts.append(f"Expected {self.expected}.")
        if self.received:
            parts.append(f"Received {self.received}.")
        if self.fix:
            parts.append(f"Fix: {self.fix.rstrip('.')}.")
        return " ".join(parts)


class SpecError(GradverifyError, ValueError):
    """A network spec (compact string, TOML/JSON file or keyword) that cannot be understood."""


class InputError(GradverifyError, ValueError):
    """Parameters or data that do not fit the network: shapes, NaN/inf, labels out of range."""


class CandidateError(GradverifyError, ValueError):
    """A candidate gradient function failed: it raised, exited, hung or returned the wrong form.

    The candidate's failure, not the user's input: the CLI reports it as a failed check (exit 1).
    """


class InternalError(GradverifyError, RuntimeError):
    """gradverify found an inconsistency in itself: a bug of ours, never the user's or a student's."""


class GradientMismatchError(AssertionError):
    """Raised by the ``assert_*`` helpers when a gradient disagrees with the exact value.

    Subclasses ``AssertionError`` so pytest shows it as a test failure, not an error.
    """
