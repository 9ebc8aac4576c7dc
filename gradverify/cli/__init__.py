"""``gradverify`` command line: the only place that prints, parses argv, touches user files, exits.

One module per subcommand; each exposes ``register(subparsers)``, which adds its parser and sets
``run(args) -> int`` as the handler. ``main(argv)`` is what tests call; ``entrypoint()`` is what
``[project.scripts]`` calls. Library errors (``GradverifyError``) become a one-paragraph message
and exit code 2 here, in one place.

Exit codes: 0 = all agree / success, 1 = a discrepancy (or a failing grade, or a candidate that
crashed or returned the wrong form), 2 = bad usage or input, 3 = gradverify itself failed (an
internal error: a "please report" message with the versions, the traceback kept in a file).
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from collections.abc import Sequence

from gradverify.errors import CandidateError, GradverifyError, InternalError

__all__ = ["main", "entrypoint"]

# Subcommand modules, in the order `gradverify --help` lists them. A module that is missing
# (a partial install) is skipped rather than breaking every other command.
_COMMANDS = ("verify", "suite", "grade", "report", "graph", "layer")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of ``gradverify``; with ``argv`` naming a subcommand, only that one is registered.

    Registering a subcommand imports its module (report and graph pull in their renderers), so a
    run of one command imports only its own: start-up stays near numpy's import time. Help, a
    missing or a mistyped command register them all, so the listing and the suggestions are whole.
    """
    from gradverify._version import __version__
    from gradverify.cli._args import Parser

    parser = Parser(
        prog="gradverify",
        description="Verify neural-network gradients three independent ways "
        "(exact SymPy oracle, numpy backprop, finite differences) and say who is wrong.",
    )
    parser.add_argument("--version", action="version", version=f"gradverify {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = _requested_command(argv)
    for name in _COMMANDS if wanted is None else (wanted,):
        try:
            module = importlib.import_module(f"gradverify.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"gradverify.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def _requested_command(argv: Sequence[str] | None) -> str | None:
    """The subcommand ``argv`` runs, when its first word names one; else None (register them all)."""
    if not argv or argv[0] not in _COMMANDS:
        return None  # options before the command are only --help/--version: the whole parser
    return argv[0]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["verify"]  # the built-in default example: the lecture's debug network
    parser = build_parser(argv)
    from gradverify.cli._args import UsageError

    try:
        args = parser.parse_args(argv)
    except UsageError as exc:  # one paragraph: what, expected, received, fix
        print(f"{exc.prog}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help and --version print and exit 0
        return int(exc.code or 0) if isinstance(exc.code, int) or exc.code is None else 2
    args.command_line = "gradverify " + shlex.join(argv)  # recorded in reports, so they say how they were made
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except CandidateError as exc:  # the judged function's failure: a failed check, not bad usage
        print(f"gradverify {args.command}: the candidate failed: {exc}", file=sys.stderr)
        return 1
    except InternalError as exc:
        return _internal_error(args.command, exc)
    except (GradverifyError, argparse.ArgumentTypeError) as exc:  # an option's own check, also when run after parsing
        print(f"gradverify {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gradverify: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # a write outside emit(): the reader left; not an error of ours, and no verdict to report
        _silence_stdout()
        return 141  # what a shell reports for a command ended by SIGPIPE
    except Exception as exc:  # anything else is a bug of gradverify's, never the user's fault
        return _internal_error(args.command, exc)


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush is quiet."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _internal_error(command: str, exc: BaseException) -> int:
    """Say that gradverify failed (not the user), keep the traceback in a file, return exit code 3."""
    import platform
    import tempfile
    import traceback

    from gradverify._version import __version__

    versions = [f"gradverify {__version__}", f"Python {platform.python_version()}"]
    for name in ("numpy", "sympy", "symengine", "flint", "hypothesis"):
        module = sys.modules.get(name)
        if module is not None:
            versions.append(f"{name} {getattr(module, '__version__', '?')}")
    where = ""
    try:
        fd, path = tempfile.mkstemp(prefix="gradverify-internal-error-", suffix=".txt")
        with open(fd, "w", encoding="utf-8") as fh:
            fh.write(" ".join(sys.argv) + "\n" + ", ".join(versions) + "\n\n")
            fh.write("".join(traceback.format_exception(exc)))
        where = f" The traceback is in {path}."
    except OSError:
        pass
    print(f"gradverify {command}: internal error: {type(exc).__name__}: {exc}\n"
          f"This is a bug in gradverify, not in your input or your code. Please report it with the command line, "
          f"the versions ({', '.join(versions)}) and the traceback.{where}", file=sys.stderr)
    return 3


def entrypoint() -> None:
    sys.exit(main())
