"""Candidates: a user's or a student's gradient function, run and read as one more gradient source.

A candidate is ``fn(problem) -> (cost, grads)`` (or just ``grads``); ``profiles`` turns the common
assignment signatures into that form. Whatever goes wrong inside it — an exception, a return value
of the wrong form — is the candidate's failure (``CandidateError``), never the user's input error
and never gradverify's.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable

import numpy as np

from gradverify.budget import Precision, candidate_cost_budget, engine_budget
from gradverify.errors import CandidateError, GradverifyError, InputError
from gradverify.params import flatten
from gradverify.spec import Problem
from gradverify.sources import SourceResult

__all__ = ["candidate_source", "apart"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def candidate_source(name: str, fn: Callable, problem: Problem, *, precision: Precision = "float64") -> SourceResult:
    """Run a candidate gradient function on ``problem`` and wrap it as a source.

    ``fn(problem)`` returns ``(cost, grads)`` (``grads`` a dict ``W1, b1, …`` or a flat vector in
    canonical order) or just ``grads``. Its budget is that of a correct engine computing in
    ``precision`` ("float64", or "float32" for an engine that computes in single precision by design).

    Raises:
        CandidateError: the candidate raised, or returned something of the wrong form.
    """
    t0 = time.perf_counter()
    try:
        out = fn(problem)
    except GradverifyError:  # already says whose fault it is (a wrong target name is the user's)
        raise
    except Exception as exc:  # the candidate's own failure: say where in its code, not in ours
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if _PACKAGE_DIR not in f.filename]
        where = "; ".join(f"{f.filename}:{f.lineno} in {f.name}" for f in frames[-3:]) or "(no frame outside gradverify)"
        raise CandidateError(f"The candidate {name!r} raised {type(exc).__name__}: {exc}", received=f"the call failed at {where}",
                             fix="run the candidate on this problem yourself (gradverify verify prints how to rebuild it)") from None
    seconds = time.perf_counter() - t0
    pair = isinstance(out, tuple) and len(out) == 2 or (isinstance(out, list) and len(out) == 2 and isinstance(out[1], dict))
    cost, grads = out if pair else (None, out)
    grad = _as_flat(grads, problem, name)
    c = None if cost is None else _as_cost(cost, name)
    budget, notes = (0.0, ()) if c is None else _cost_budget(problem, precision)
    return SourceResult(name, precision, grad, engine_budget(problem, precision), cost=c, cost_budget=budget, notes=notes,
                        detail="candidate" + (" (computes in single precision)" if precision == "float32" else ""), seconds=seconds)


def _cost_budget(problem: Problem, precision: Precision) -> tuple[float, tuple[str, ...]]:
    """``budget.candidate_cost_budget``, and a note when the textbook allowance is what makes it."""
    budget, allowance, peak = candidate_cost_budget(problem, precision)
    if allowance <= budget - allowance:
        return budget, ()
    return budget, (f"its cost budget includes {allowance:.2g} for the textbook log(1 − σ(a)) at output pre-activations up "
                    f"to a = {peak:.3g}, where 1 − σ(a) keeps only an ulp of 1 (a stable log-sigmoid needs none)",)


def _describe(value: object) -> str:
    """A short, safe description of what a candidate returned (never its whole content)."""
    from gradverify.candidate_process import Opaque

    if isinstance(value, Opaque):  # an object of the candidate's own class, seen across the process boundary
        return f"a {value.type_name} object"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, (list, tuple)):
        kinds = sorted({type(v).__name__ for v in value})
        return f"a {type(value).__name__} of {len(value)} item(s) ({', '.join(kinds[:3]) or 'empty'})"
    if isinstance(value, dict):
        return "a dict with keys " + ", ".join(repr(k) for k in list(value)[:8])
    kind = type(value).__name__
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"


def _as_array(value: object, what: str, name: str) -> np.ndarray:
    """``value`` as a real float64 array, or the candidate's clear failure."""
    from gradverify.candidate_process import Opaque

    if value is None or isinstance(value, (str, bytes, dict, Opaque)):
        raise CandidateError(f"The candidate {name!r} returned {_describe(value)} as {what}",
                             expected="numbers (a numpy array)", received=_describe(value), fix=f"return {what} as a numpy array")
    try:
        arr = np.asarray(value)
        if arr.dtype.kind == "c":
            raise CandidateError(f"The candidate {name!r} returned complex numbers as {what}", expected="real numbers",
                                 received=f"dtype {arr.dtype}", fix="return the real gradient (take .real only if the imaginary part is 0 by design)")
        return arr.astype(np.float64)
    except (TypeError, ValueError, OverflowError) as exc:  # ragged lists, strings inside, objects, ints beyond float64
        raise CandidateError(f"The candidate {name!r} returned {what} that is not an array of numbers",
                             expected="numbers (a numpy array)", received=f"{_describe(value)}: {exc}",
                             fix="return numpy arrays of floats") from None


def _as_cost(cost: object, name: str) -> float:
    arr = _as_array(cost, "the cost J", name)
    if arr.size != 1:
        raise CandidateError(f"The candidate {name!r} returned a cost J that is not a single number",
                             expected="one number", received=f"shape {arr.shape}", fix="return J as a float (e.g. float(J))")
    return float(arr.reshape(()))


def _as_flat(grads: object, problem: Problem, name: str) -> np.ndarray:
    """The candidate's gradient in the canonical flat order, after checking its form."""
    net = problem.network
    shapes = dict(net.param_shapes)
    if isinstance(grads, dict):
        missing = [k for k in shapes if k not in grads]
        extra = [str(k) for k in grads if k not in shapes]
        if missing or extra:
            raise CandidateError(f"The candidate {name!r} returned gradients for the wrong arrays"
                                 + (f": {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing" if missing else "")
                                 + (f"{';' if missing else ':'} unexpected {', '.join(extra[:8])}" if extra else ""),
                                 expected="keys " + ", ".join(shapes), received="keys " + (", ".join(map(str, list(grads)[:12])) or "none"),
                                 fix="return one gradient per parameter array, named like the parameters (W1, not dW1)")
        arrays = {key: _as_array(grads[key], f"grads[{key!r}]", name) for key in shapes}
        for key, shape in shapes.items():
            if arrays[key].shape != shape:
                raise CandidateError(f"The candidate {name!r} returned {key} of the wrong shape",
                                     expected=str(shape), received=str(arrays[key].shape),
                                     fix="a gradient has the shape of its parameter")
        return flatten(arrays, net)
    if isinstance(grads, (list, tuple)) and grads and all(isinstance(g, np.ndarray) and g.ndim >= 1 for g in grads):
        raise CandidateError(f"The candidate {name!r} returned the gradient as {_describe(grads)}",
                             expected=f"a dict {{{', '.join(repr(k) + ': …' for k in list(shapes)[:4])}{', …' if len(shapes) > 4 else ''}}} "
                             f"or one flat vector of {net.n_params} numbers",
                             received=", ".join(str(np.shape(g)) for g in grads[:8]),
                             fix="return dict(zip(names, arrays)) with the names W1, b1, W2, b2, …")
    vec = _as_array(grads, "the gradient", name).reshape(-1)
    if vec.size != net.n_params:
        raise CandidateError(f"The candidate {name!r} returned a gradient of the wrong size",
                             expected=f"{net.n_params} numbers (or a dict of arrays W1, b1, …)", received=f"{vec.size} number(s), from {_describe(grads)}",
                             fix="return the gradient in the canonical flat order W1, b1, W2, b2, … (C order)")
    return vec


def apart(fn: Callable, *, profile="native", settings_: dict | None = None, timeout: float = 60.0, separate: bool = True):
    """``fn`` (called as ``profile`` says; native: ``fn(network, params, X, Y) -> (J, grads)``) as
    ``fn(problem)`` for ``compare``, run in its own forked process (see ``candidate_process``).

    Returns ``(call, process)``: close the process when done.
    """
    from gradverify.candidate_process import CandidateProcess
    from gradverify.profiles import PROFILES, get_profile, invoke_local

    if not callable(fn):
        raise InputError("The candidate must be a function", expected="your gradient function itself, e.g. "
                         "check_candidate(cost_and_grad)", received=type(fn).__name__,
                         fix="pass the function object (not its name or its result); for a file use gradverify verify --candidate FILE.py:FUNCTION")
    prof = get_profile(profile) if isinstance(profile, str) else profile
    resolved = prof.resolve(settings_)
    target = resolved.get("target", prof.target)
    namespace = {target.split(".")[0]: fn}

    def load() -> Callable:
        return lambda problem: invoke_local(namespace, prof.call_for(problem, resolved))

    proc = CandidateProcess(load, label=getattr(fn, "__name__", "candidate"), timeout=timeout, separate=separate)
    if prof.read is PROFILES["native"].read:
        return proc, proc
    return (lambda problem: prof.read(problem, resolved, proc(problem))), proc
