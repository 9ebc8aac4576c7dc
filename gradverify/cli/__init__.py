"""``gradverify`` command line: the only place that prints, parses argv, touches user files, exits.

One module per subcommand; each exposes ``register(subparsers)``, which adds its parser and sets
``run(args) -> int`` as the handler. ``main(argv)`` is what tests call; ``entrypoint()`` is what
``[project.scripts]`` calls. Library errors (``GradverifyError``) become a one-paragraph message
and exit code 2 here, in one place.

Exit codes: 0 = all agree / success, 1 = a discrepancy (or a failing grade), 2 = bad usage or input.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from collections.abc import Sequence

from gradverify.errors import GradverifyError

__all__ = ["main", "entrypoint"]

# Subcommand modules, in the order `gradverify --help` lists them. A module that is missing
# (a partial install) is skipped rather than breaking every other command.
_COMMANDS = ("verify", "suite", "grade", "report", "graph")


def build_parser() -> argparse.ArgumentParser:
    from gradverify._version import __version__

    parser = argparse.ArgumentParser(
        prog="gradverify",
        description="Verify neural-network gradients three independent ways "
        "(exact SymPy oracle, numpy backprop, finite differences) and say who is wrong.",
    )
    parser.add_argument("--version", action="version", version=f"gradverify {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"gradverify.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"gradverify.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        argv = ["verify"]  # the built-in default example: the lecture's debug network
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage; keep its code (0 for --help)
        return int(exc.code or 0)
    args.command_line = "gradverify " + shlex.join(argv)  # recorded in reports, so they say how they were made
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except GradverifyError as exc:
        print(f"gradverify {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gradverify: interrupted", file=sys.stderr)
        return 130


def entrypoint() -> None:
    sys.exit(main())
