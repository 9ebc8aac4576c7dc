"""The one validation layer for command-line input: every option value is checked where it is parsed.

A bad value never reaches the library: it becomes an ``InputError`` (exit 2) whose paragraph says
which option, what was expected, what was received and how to fix it. The checks are argparse
``type=`` functions built by the factories below, so a command declares each option's kind once
(``integer("-m", lo=1)``, ``out_dir("--report")``) and the help text and the error share one range.

Paths are checked before any work starts: an input file must exist and be a regular, readable
file; an output folder or file must be creatable (probed with a temporary file in the nearest
existing folder), so an hour of computation is never lost to a typo in ``--report``.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from gradverify.errors import InputError

__all__ = ["Parser", "UsageError", "writable_dir", "integer", "number", "seed", "in_file", "out_dir", "out_file", "candidate_text", "SEED_MAX", "DIGITS"]

SEED_MAX = 2**32 - 1
#: significant digits the exact oracle is asked for on the command line: one range for help and error
DIGITS = (20, 10_000)


class UsageError(InputError):
    """A command line argparse could not accept; ``prog`` is the (sub)command it was meant for."""

    def __init__(self, what: str, *, prog: str = "gradverify", **fields):
        super().__init__(what, **fields)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are ``UsageError`` paragraphs instead of a usage dump."""

    def error(self, message: str):  # argparse's hook for every bad command line
        match = re.match(r"argument ([^:]+): (.*)", message, re.S)
        if match and "Expected " in match[2]:  # a paragraph from one of the type checks below
            raise UsageError(match[2], prog=self.prog)
        fix = f"see `{self.prog} --help`"
        if "unrecognized arguments" in message:
            fix = f"remove or correct the unknown option(s); {fix}"
        raise UsageError(message[:1].upper() + message[1:], prog=self.prog,
                         expected=self.format_usage().strip().removeprefix("usage: "), fix=fix)


def _fail(option: str, what: str, *, expected: str, received: str, fix: str = "") -> argparse.ArgumentTypeError:
    # argparse prefixes "argument OPTION: "; the paragraph is what follows
    return argparse.ArgumentTypeError(InputError(what, expected=expected, received=received, fix=fix).args[0])


def integer(option: str, *, lo: int | None = None, hi: int | None = None, fix: str = "") -> Callable[[str], int]:
    """An integer option within ``[lo, hi]`` (either end may be open)."""
    span = ("from " + f"{lo:,}" + " to " + f"{hi:,}") if lo is not None and hi is not None else (
        f"≥ {lo:,}" if lo is not None else f"≤ {hi:,}" if hi is not None else "any")

    def parse(text: str) -> int:
        try:
            value = int(text.strip().replace("_", ""), 10)
        except ValueError:
            raise _fail(option, f"{option} takes a whole number", expected=f"an integer {span}", received=repr(text),
                        fix=fix or f"write it in digits, e.g. {option} {lo if lo is not None else 1}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise _fail(option, f"{option} is out of range", expected=f"an integer {span}", received=str(value), fix=fix)
        return value

    parse.__name__ = "integer"
    return parse


def number(option: str, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
           fix: str = "") -> Callable[[str], float]:
    """A finite real option within ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""
    low = "" if lo is None else (f"> {lo:g}" if lo_open else f"≥ {lo:g}")
    span = " and ".join(s for s in (low, "" if hi is None else f"≤ {hi:g}") if s) or "any finite value"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise _fail(option, f"{option} takes a number", expected=f"a finite number {span}", received=repr(text), fix=fix) from None
        bad = not math.isfinite(value) or (lo is not None and (value <= lo if lo_open else value < lo)) or (hi is not None and value > hi)
        if bad:
            raise _fail(option, f"{option} is out of range", expected=f"a finite number {span}", received=text, fix=fix)
        return value

    parse.__name__ = "number"
    return parse


def seed(option: str = "--seed") -> Callable[[str], int]:
    """A random seed: 0 to 2³² − 1 (what every generator we use accepts)."""
    return integer(option, lo=0, hi=SEED_MAX, fix="seeds are non-negative; any value in the range gives its own reproducible draw")


def _a(kind: str) -> str:
    return ("an " if kind[:1].lower() in "aeio." else "a ") + kind


def _regular_file(option: str, path: Path, kind: str, fix: str) -> Path:
    if not path.exists():
        raise _fail(option, f"No such {kind}: {path}", expected=f"an existing {kind}", received=str(path), fix=fix)
    if path.is_dir():
        raise _fail(option, f"{path} is a folder, not {_a(kind)}", expected=_a(kind), received=f"the folder {path}", fix=fix)
    if not path.is_file():
        raise _fail(option, f"{path} is not a regular file", expected=_a(kind), received=f"{path} (a device, pipe or socket)", fix=fix)
    if not os.access(path, os.R_OK):
        raise _fail(option, f"{path} cannot be read", expected=f"a readable {kind}", received=f"{path} without read permission",
                    fix="check the file's permissions")
    return path


def in_file(option: str, kind: str, *, suffixes: tuple[str, ...] = (), fix: str = "") -> Callable[[str], Path]:
    """An existing, readable regular file (``suffixes``: the endings it must have, if any)."""

    def parse(text: str) -> Path:
        path = Path(text)
        if suffixes and path.suffix.lower() not in suffixes:
            raise _fail(option, f"{option} expects {_a(kind)}", expected=f"a file ending in {' or '.join(suffixes)}",
                        received=str(path), fix=fix or f"give the {kind}'s path")
        return _regular_file(option, path, kind, fix or f"check the {option} path")

    parse.__name__ = "file"
    return parse


def _nearest_existing(path: Path) -> Path:
    probe = path.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def _can_create_in(folder: Path) -> str:
    """'' when a file can be created in ``folder`` (probed with a temporary file), else the reason."""
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".gradverify-probe-")
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    os.unlink(tmp)
    return ""


def writable_dir(option: str, path: Path) -> Path:
    """``path`` as a folder the command can create and write into, or the ``InputError`` saying why not."""
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} names a folder to write into, but {path} is a file", expected="a folder (it is created if missing)",
                         received=f"the file {path}", fix=f"give a folder, e.g. {option} {path.with_suffix('')}-report")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise InputError(f"{option} {path} cannot be created: {base} is a file", expected="a path whose existing part is a folder",
                         received=str(path), fix="choose another folder")
    reason = _can_create_in(base)
    if reason:
        raise InputError(f"{option} {path} cannot be written", expected="a folder where you may create files",
                         received=f"{base}: {reason}", fix="choose a folder you can write to, e.g. under your home or the current folder")
    return path


def out_dir(option: str) -> Callable[[str], str]:
    """A folder to write into (created if missing); the empty string (the command's default) passes."""

    def parse(text: str) -> str:
        if text == "":
            return text
        try:
            writable_dir(option, Path(text))
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    parse.__name__ = "folder"
    return parse


def out_file(option: str, *, dash: bool = True) -> Callable[[str], str]:
    """A file to write (replaced if it exists); ``-`` means stdout when ``dash``."""

    def parse(text: str) -> str:
        if dash and text == "-":
            return text
        path = Path(text)
        if path.is_dir():
            raise _fail(option, f"{option} names a file to write, but {path} is a folder", expected="a file path",
                        received=f"the folder {path}", fix=f"give a file inside it, e.g. {option} {path / 'out.json'}")
        if path.exists() and not path.is_file():
            return text  # a device or pipe (/dev/stdout): written in place
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise _fail(option, f"The folder of {path} does not exist", expected="a file in an existing folder", received=str(path),
                        fix=f"create {parent} first, or write elsewhere")
        reason = _can_create_in(parent)
        if reason:
            raise _fail(option, f"{path} cannot be written", expected="a file in a folder you may write to",
                        received=f"{parent}: {reason}", fix="choose another place")
        return text

    parse.__name__ = "file"
    return parse


_TARGET_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)?$")


def candidate_text(option: str = "--candidate") -> Callable[[str], tuple[Path, str, str]]:
    """``FILE.py:FUNCTION`` (or ``FILE.py:Class.method``) → (path, target, the text as given)."""

    def parse(text: str) -> tuple[Path, str, str]:
        path_text, sep, target = text.rpartition(":")
        if not sep or not path_text or not target:
            raise _fail(option, f"Cannot read {option} {text!r}", expected="FILE.py:FUNCTION (or FILE.py:Class.method)", received=text,
                        fix="add the function name after a colon, e.g. my_backprop.py:cost_and_grad")
        if not _TARGET_RE.match(target):
            raise _fail(option, f"{target!r} is not a Python name", expected="FUNCTION or Class.method after the colon", received=text,
                        fix="name the function defined in the file")
        path = Path(path_text)
        if path.is_dir():  # a folder of modules, read as `grade` reads one
            return path, target, text
        if path.suffix not in (".py", ".ipynb"):
            raise _fail(option, f"{option} takes a Python source file", expected="a file ending in .py (or a notebook, or a folder)",
                        received=str(path), fix="rename or copy the file to NAME.py (it is imported as a Python module)")
        _regular_file(option, path, "candidate file", "give FILE.py:FUNCTION with an existing file")
        return path, target, text

    parse.__name__ = "candidate"
    return parse
