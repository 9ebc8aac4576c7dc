"""A ``reproduce.py`` beside a student's feedback that makes the graded call again, exactly.

A command line cannot always say how a submission was called: a notebook, a Python 2 file, a folder
of modules, Θ passed as two matrices, labels 1..K in an (m, 1) column. So the grader writes the call
itself — the arguments as numbers, the target, the settings it detected — into a small script, with
the exact answer in the shape the student returns it. ``python reproduce.py`` imports the student's
file (from where it was graded, or a path given as its argument), calls it, and prints the cost and
every returned array against the exact values: the numbers the grade was given on, digit for digit.

The script needs numpy, and gradverify only to load a notebook or a Python 2 file (as the grader did).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["reproduce_script", "expected_like"]


def _literal(value) -> str:
    """Python source for ``value``: arrays as exact float lists (repr round-trips float64)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "iub":
            return f"np.array({value.tolist()!r}, dtype=np.int64)"
        return f"np.array({[float(x) for x in value.ravel()]!r}).reshape({value.shape!r})"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_literal(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{str(k)!r}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (bool, int, str)) or value is None:
        return repr(value)
    if isinstance(value, float):
        return repr(float(value))
    raise TypeError(f"cannot write a {type(value).__name__} into reproduce.py")


def expected_like(value, exact_cost: float, exact: dict, *, profile: str, settings: dict, network) -> object:
    """The exact answer in the structure the student returned (``value``): ``(J, grad)`` unrolled in
    their order or ``(J, Theta1_grad, Theta2_grad)`` for ex4, ``(loss, {W1 (D, H), b1, ...})`` with
    their bias shapes for the two-layer net, ``(J, {name: array})`` otherwise."""
    from gradverify.params import Layout, flatten

    if profile == "ex4" or profile.startswith("ex4"):
        order = settings.get("unroll_order", "C")
        if isinstance(value, (tuple, list)) and len(value) == 3:
            n0, h, K = network.sizes
            theta = flatten(exact, network, Layout("theta", "C"))
            return (exact_cost, theta[: h * (n0 + 1)].reshape(h, n0 + 1), theta[h * (n0 + 1):].reshape(K, h + 1))
        return (exact_cost, flatten(exact, network, Layout("theta", order)))
    if "two-layer" in profile:
        grads = value[1] if isinstance(value, (tuple, list)) and len(value) > 1 and isinstance(value[1], dict) else {}
        out = {}
        for name in ("W1", "b1", "W2", "b2"):
            arr = exact[name].T if name.startswith("W") else exact[name]
            theirs = np.asarray(grads.get(name, arr)) if name in grads else arr
            out[name] = arr.reshape(theirs.shape) if theirs.size == arr.size else arr
        return (exact_cost, out)
    return (exact_cost, {k: np.asarray(v) for k, v in exact.items()})


_TEMPLATE = '''#!/usr/bin/env python3
"""Reproduce one graded case of {name!s}: {title!s}.

    python reproduce.py [PATH]      PATH: your submission, if it is no longer where it was graded

Written by gradverify grade. It calls {target!s} exactly as the grader did ({how!s}) and prints
your cost and every array you return against the exact values.
"""
import os
import sys

import numpy as np

SUBMISSION = {submission!r}
ENTRY = {entry!r}
TARGET = {target!r}
SETTINGS = {settings!s}
GRADED_COST = {graded_cost!r}  # the cost your function returned when it was graded
ARGS = {args!s}
KWARGS = {kwargs!s}
ATTRS = {attrs!s}  # set on the instance (made without running __init__ unless INIT is given) before the call
INIT = {init!s}
EXPECTED = {expected!s}


def load(path):
    folder, entry = (path, ENTRY) if os.path.isdir(path) else (os.path.dirname(os.path.abspath(path)), os.path.basename(path))
    sys.path.insert(0, folder)
    try:
        from gradverify.grading import loader  # notebooks and Python 2 files are read as the grader read them
    except ImportError:
        import importlib.util
        spec = importlib.util.spec_from_file_location(os.path.splitext(entry)[0], os.path.join(folder, entry))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return loader.load(folder, entry, os.path.splitext(entry)[0]).module


def call(module):
    name, _, method = TARGET.partition(".")
    obj = getattr(module, name)
    if method:
        instance = obj(*INIT) if INIT is not None else obj.__new__(obj)
        for key, value in (ATTRS or {{}}).items():
            setattr(instance, key, value)
        obj = getattr(instance, method)
    return obj(*ARGS, **KWARGS)


def leaves(value, path="answer"):
    if isinstance(value, dict):
        for key in sorted(value):
            yield from leaves(value[key], f"{{path}}[{{key!r}}]")
    elif isinstance(value, (tuple, list)):
        for i, item in enumerate(value):
            yield from leaves(item, f"{{path}}[{{i}}]")
    else:
        yield path, np.asarray(value, dtype=float)


def main():
    module = load(sys.argv[1] if len(sys.argv) > 1 else SUBMISSION)
    answer = call(module)
    yours, exact = list(leaves(answer)), list(leaves(EXPECTED))
    cost = float(np.asarray(yours[0][1]).reshape(()))
    print(f"cost (J)  yours {{cost:.12g}}   exact {{float(exact[0][1]):.12g}}   (graded: {{GRADED_COST:.12g}})")
    if len(yours) != len(exact):
        print(f"you returned {{len(yours)}} values, the exact answer has {{len(exact)}}")
        return 1
    worst = 0.0
    for (where, mine), (_, right) in zip(yours[1:], exact[1:]):
        if mine.size != right.size:
            print(f"{{where}}: {{mine.size}} numbers, expected {{right.size}}")
            return 1
        err = np.abs(mine.reshape(right.shape) - right)
        i = int(np.argmax(err)) if err.size else 0
        worst = max(worst, float(err.max()) if err.size else 0.0)
        print(f"{{where:<22}} shape {{str(right.shape):<9}} max |yours - exact| = {{err.max() if err.size else 0:.3g}}"
              f"  (at flat index {{i}}: yours {{mine.ravel()[i]:.10g}}, exact {{right.ravel()[i]:.10g}})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def reproduce_script(*, name: str, title: str, submission: str | Path, entry: str, target: str, how: str, settings: dict,
                     args: tuple, kwargs: dict, attrs: dict | None, init: tuple | None, expected, graded_cost: float) -> str:
    """The text of ``reproduce.py`` for one graded call (see the module docstring).

    Args:
        name, title: the submission's name and the case's title (for the docstring).
        submission, entry: where the submission was graded, and the file imported from it.
        target, how: what was called, and in which call form and conventions (words).
        settings: the settings graded under.
        args, kwargs, attrs, init: the call exactly as the grader made it.
        expected: the exact answer in the structure the student returns (``expected_like``).
        graded_cost: the cost the student's function returned when graded.
    """
    def clean(text: str) -> str:  # a name or title from the student's side goes into a docstring: keep it inert
        return json.dumps(str(text))[1:-1].replace('"""', "'''")[:200]

    return _TEMPLATE.format(name=clean(name), title=clean(title), target=target, how=clean(how), submission=str(submission),
                            entry=entry, settings=_literal(dict(settings)), graded_cost=float(graded_cost),
                            args=_literal(list(args)), kwargs=_literal(dict(kwargs)), attrs=_literal(attrs),
                            init=_literal(list(init)) if init is not None else "None", expected=_literal(expected))
