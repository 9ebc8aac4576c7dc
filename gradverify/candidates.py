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
from dataclasses import dataclass

import numpy as np

from gradverify.budget import Precision, candidate_cost_budget, engine_budget
from gradverify.errors import CandidateError, GradverifyError, InputError
from gradverify.params import flatten
from gradverify.spec import Problem
from gradverify.sources import SourceResult

__all__ = ["candidate_source", "apart", "FileCandidate", "file_candidate"]

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


# ---- a student's file checked the way `grade` reads it -------------------------------------------

@dataclass
class FileCandidate:
    """A ``--candidate`` file (a ``.py``, a notebook, or a folder of modules) loaded as ``grade`` loads a
    submission (``grading.loader``: Python 2 prints, notebooks, packages) and run in its own process;
    ``settings`` are those it is called under (detected like ``grade`` unless pinned), ``note`` says so."""

    process: object  # CandidateProcess
    profile: object
    settings: dict
    label: str
    text: str
    note: str = ""
    read_notes: tuple[str, ...] = ()

    def fn(self, problem: Problem):
        value = self.process((problem, self.settings))
        if self.profile.read is _native_read():
            return value
        return self.profile.read(problem, self.settings, value)

    def close(self) -> None:
        self.process.close()


def _native_read():
    from gradverify.profiles import PROFILES

    return PROFILES["native"].read


def _file_loader(path, target: str, profile) -> Callable[[], Callable]:
    """What the candidate's process runs once: load the file as ``grade`` does, then answer requests:
    ``("callables",)`` (what it defines), ``("notes",)`` (how it was read) or ``(problem, settings)``."""
    from pathlib import Path

    def load() -> Callable:
        from gradverify.errors import InputError
        from gradverify.grading import loader
        from gradverify.profiles import invoke_local

        where = Path(path)
        try:
            if where.is_dir():
                work, entry = str(where.resolve()), loader.find_entry(str(where), [target])[0]
            else:
                work, entry = str(where.resolve().parent), where.name
            loaded = loader.load(work, entry, "_gradverify_candidate_" + Path(entry).stem.replace("-", "_"))
        except loader.LoadError as exc:
            raise InputError(f"Cannot load the candidate {where}: {exc}", fix="see the message; `gradverify grade` reads it the same way") from None
        namespace = vars(loaded.module)
        notes = (*loaded.notes, *(f"Skipped while loading: {e}" for e in loaded.cell_errors))
        head, _, method = target.partition(".")
        obj = namespace.get(head)
        if not (callable(getattr(obj, method, None)) if method else callable(obj)):
            defined = ", ".join(loader.describe_functions(loaded.module)[:12]) or "no functions"
            raise InputError(f"No function {target!r} in the candidate {where}", expected=f"a {'method' if method else 'function'} named {target}",
                             received=f"it defines {defined}", fix="name one of them after the colon, e.g. FILE.py:FUNCTION")

        def answer(request):
            if request == ("callables",):
                return loader.callables(loaded.module)
            if request == ("notes",):
                return list(notes)
            problem, settings = request
            return invoke_local(namespace, profile.call_for(problem, settings))

        return answer

    return load


def file_candidate(path, target: str, text: str, profile, settings: dict, pinned: dict, *, timeout: float,
                   tick=None) -> FileCandidate:
    """``--candidate PATH:TARGET`` for ``verify`` and ``suite``: loaded and, for a profile with call forms,
    its form and conventions detected on the profile's fixed cases exactly as ``grade`` does
    (``grading.detect.detect_calls``); what ``--set`` pinned is kept.

    Raises:
        InputError: the file cannot be read, or defines no ``target``.
        CandidateError: nothing it can be called with works (what was tried is said).
    """
    from pathlib import Path

    from gradverify.candidate_process import CandidateProcess
    from gradverify.grading.detect import CallFailed, detect_calls

    proc = CandidateProcess(_file_loader(path, target, profile), label=Path(path).stem, timeout=timeout, tick=tick)
    settings = {**settings, "target": target}
    cand = FileCandidate(proc, profile, settings, Path(path).stem, text)
    cand.read_notes = tuple(str(n) for n in proc.ask(("notes",)))
    if not profile.forms or all(k in pinned for k in (*profile.conventions, "form")):
        return cand

    def call(s: dict, problem):
        try:
            return proc((problem, s))
        except CandidateError as exc:
            raise CallFailed(str(exc).splitlines()[0][:300], fatal=type(exc).__name__ == "CandidateTimeout") from None

    def cases(s: dict) -> list:
        public = [p for _, p in profile.fixed_cases(s)]
        return [public[0], next((p for p in public if p.network.lam > 0), public[-1])]

    callables = list(proc.ask(("callables",)).items())
    found = detect_calls(call, profile, cases, {**pinned, "target": target}, callables)
    default = {k: v for k, v in profile.settings.items() if k not in ("target", "form")}
    if not found.attempts:
        proc.close()
        raise CandidateError(f"The candidate {target} cannot be called the way the {profile.name!r} profile accepts",
                             expected="; ".join(f.text for f in profile.forms), received=str(dict(callables).get(target)),
                             fix="give the function the profile's signature, or pin --set form=…")
    cand.settings = {**found.settings, "target": found.target, "form": found.form}
    cand.note = found.note(default)
    return cand
