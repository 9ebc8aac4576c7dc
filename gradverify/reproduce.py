"""The command line that makes a problem (and a candidate's call) again: reports print it, tests run it.

Built from the problem's ``Origin`` record, never by parsing text back: a debug or random problem is
rebuilt from its generator's options, a problem read from a file from ``--npz PATH``, and a problem
built from arrays is first saved to an ``.npz`` file (``npz=``) so that it, too, can be rebuilt.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from gradverify.spec import Problem, exact_text, save_problem

__all__ = ["reproduce_command", "reproduce_args"]


def reproduce_args(problem: Problem, *, candidate: str | None = None, profile: str | None = None,
                   settings: dict | None = None, npz: str | Path | None = None) -> list[str]:
    """The arguments of ``gradverify`` (``verify`` first) that rebuild ``problem``.

    Args:
        problem: the problem; its ``origin`` says how it was made.
        candidate: ``FILE.py:FUNCTION`` to judge on it, if any.
        profile, settings: how the candidate is called (``--profile``, one ``--set`` per setting).
        npz: where to save a problem built from arrays (ignored for the other origins).

    Raises:
        InputError: the problem was built from arrays and no ``npz`` path was given.
    """
    net = problem.network
    origin = problem.origin
    if not origin.rebuildable:
        if npz is None:
            origin.options()  # raises the explanatory InputError
        save_problem(problem, npz)
        source = ["--npz", str(npz)]
    else:
        source = origin.options()
    args = ["verify", net.compact, "--lambda", exact_text(net.lam)]
    if net.reg != "lambda/2m":
        args += ["--reg", net.reg]
    if net.reg_bias:
        args.append("--reg-bias")
    if source[0] != "--npz":
        args += ["-m", str(problem.m)]
    args += source
    if candidate:
        args += ["--candidate", candidate]
    if profile and profile != "native":
        args += ["--profile", profile]
    for key, value in sorted((settings or {}).items()):
        if key != "target":
            args += ["--set", f"{key}={value}"]
    return args


def reproduce_command(problem: Problem, *, candidate: str | None = None, profile: str | None = None,
                      settings: dict | None = None, npz: str | Path | None = None) -> str:
    """``reproduce_args`` as one shell-quoted command line starting with ``gradverify``.

    Raises:
        InputError: the problem was built from arrays and no ``npz`` path was given.
    """
    return "gradverify " + shlex.join(reproduce_args(problem, candidate=candidate, profile=profile, settings=settings, npz=npz))
