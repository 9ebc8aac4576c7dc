"""``exact_gradient``: choose a mode, certify its balls, and assemble the answer."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from gradverify.errors import InputError, InternalError
from gradverify.spec import Problem
from gradverify.symbolic.backend import Backend, backend as make_backend
from gradverify.symbolic.batched import batched_evaluator
from gradverify.symbolic.balls import (
    NEGLIGIBLE_BITS,
    Range,
    classify_range,
    float_above,
    float_below,
    float_radius,
    to_mpmath,
)
from gradverify.symbolic.evaluation import Evaluation, Progress
from gradverify.symbolic.full import full_evaluator
from gradverify.symbolic.interpret import undecided_on_boundary
from gradverify.symbolic.precision import Assessment, settle, undecided_note
from gradverify.symbolic.reading import layer_shapes, scalar_names
from gradverify.symbolic.result import ExactGradient
from gradverify.symbolic.scalable import scalable_evaluator

__all__ = ["FULL_MODE_LIMIT", "MODES", "exact_gradient"]

#: Full mode's work grows like P²·m (P partials of an expression of size ~P·m). It is used, and
#: allowed, while P²·m stays at or below this bound for the backend (≈ 5–10 s on one core,
#: bench/bench_symbolic.py); beyond it ``exact_gradient`` falls back with a note.
FULL_MODE_LIMIT = {"symengine": 8_000_000, "sympy": 25_000}
MODES = ("auto", "full", "scalable", "batched")
_CHASE_LIMIT = 20_000  # P·m up to which a cancelled value jumps at once to the settling precision


def exact_gradient(problem: Problem, *, mode: str = "auto", digits: int = 30, backend: str = "auto",
                   progress: Callable[[int, int], None] | None = None) -> ExactGradient:
    """J and every ∂J/∂θ of ``problem``, exactly differentiated, each certified to ``digits`` digits.

    Args:
        problem: the network, parameters and data.
        mode: ``"full"`` (differentiate the whole cost per parameter), ``"scalable"`` (scalar
            templates + generic reverse sweep), ``"batched"`` (layer templates over whole
            matrices + generic reverse sweep) or ``"auto"`` (full while P²·m ≤
            ``FULL_MODE_LIMIT[backend]``, else batched). A ``"full"`` request beyond the limit
            falls back to batched mode with a note.
        digits: significant decimal digits wanted (16 to 10,000); the precision is raised until
            every value's ball certifies them, or the value is settled below 2^-1100.
        backend: ``"symengine"``, ``"sympy"`` or ``"auto"`` (SymEngine if installed); batched
            mode always differentiates its index templates with SymPy.
        progress: called as ``progress(done, total)`` as the work advances (total may grow if
            the precision has to be raised).

    Returns:
        An ``ExactGradient``.

    Raises:
        InputError: unknown mode/backend, ``digits`` out of range, or not a ``Problem``.
        InternalError: an inconsistency inside the oracle (a bug of gradverify's).
    """
    start = time.perf_counter()
    _validate(problem, mode, digits)
    be = make_backend(backend)
    notes: list[str] = []
    chosen = _choose_mode(problem, mode, be, notes)
    tracker = Progress(progress)
    run, per_pass = _evaluator(problem, chosen, be, tracker)
    tracker.grow(per_pass)

    def on_retry(old: int, new: int, verdict: Assessment) -> None:
        notes.append(f"{old} bits certified {_shown_digits(verdict)} digits ({verdict.short} value(s) short of "
                     f"{digits}); redone at {new} bits")
        tracker.grow(per_pass)

    jump = problem.network.n_params * problem.m <= _CHASE_LIMIT
    before = len(notes)
    ev, verdict = settle(run, digits, jump=jump, on_retry=on_retry)
    hull = None
    if ev.conditions.undecided:  # no precision decides them: kinks reached through rounding
        del notes[before:]  # the climb to the highest precision is said in one note
        notes.append(undecided_note(ev.conditions.undecided, ev.bits))
        with undecided_on_boundary():
            ev, verdict = settle(run, digits, jump=jump, on_retry=on_retry)
            if ev.conditions.boundaries:
                tracker.grow(per_pass)
                hull = run(ev.bits, True)
    elif ev.conditions.boundaries:
        tracker.grow(per_pass)
        hull = run(ev.bits, True)
    # batched mode's templates are indexed sums, which only SymPy differentiates
    return _assemble(problem, ev, verdict, hull, digits, notes,
                     mode=chosen, backend="sympy" if chosen == "batched" else be.name, seconds_since=start)


def _validate(problem, mode, digits) -> None:
    if not isinstance(problem, Problem):
        raise InputError("exact_gradient needs a Problem", received=type(problem).__name__,
                         fix="build one with spec.make_problem or problems.debug_problem")
    if mode not in MODES:
        raise InputError(f"Unknown mode {mode!r}", expected=" or ".join(f'"{m}"' for m in MODES), received=repr(mode))
    if not isinstance(digits, int) or isinstance(digits, bool) or not 16 <= digits <= 10_000:
        raise InputError("digits must be an integer from 16 to 10000", received=repr(digits),
                         fix="30 (the default) is far beyond float64's 16")


def _choose_mode(problem: Problem, mode: str, be: Backend, notes: list[str]) -> str:
    P = problem.network.n_params
    work, limit = P * P * problem.m, FULL_MODE_LIMIT[be.name]
    if mode == "auto":
        return "full" if work <= limit else "batched"
    if mode == "full" and work > limit:
        notes.append(f"full mode was asked for, but {P} parameters and {problem.m} examples (P²·m = {work:,}) exceed "
                     f"FULL_MODE_LIMIT[{be.name!r}] = {limit:,} and would take too long; used batched mode")
        return "batched"
    return mode


def _evaluator(problem: Problem, mode: str, be: Backend, tracker: Progress):
    if mode == "full":
        tracker.grow(problem.network.n_params)  # the differentiations
        return full_evaluator(problem, be, tracker)
    if mode == "batched":
        return batched_evaluator(problem, tracker)
    return scalable_evaluator(problem, be, tracker)


def _shown_digits(verdict: Assessment) -> str:
    live = verdict.digits[~verdict.settled]
    worst = float(live.min()) if live.size else math.inf
    return "all" if math.isinf(worst) else f"{max(worst, 0):.1f}"


def _assemble(problem: Problem, ev: Evaluation, verdict: Assessment, hull: Evaluation | None, digits: int,
              notes: list[str], *, mode: str, backend: str, seconds_since: float) -> ExactGradient:
    shapes = layer_shapes(problem)
    names = scalar_names(shapes)
    if len(ev.grads) != len(names) or (hull is not None and len(hull.grads) != len(names)):
        raise InternalError(f"The oracle's {mode} mode returned {len(ev.grads)} partials for {len(names)} parameters",
                            expected=f"{len(names)} partials", received=str(len(ev.grads)),
                            fix="this is a bug in gradverify: please report it")
    got, settled = verdict.digits, verdict.settled
    live = got[~settled]
    cap = math.floor(ev.bits * math.log10(2))
    worst = float(live.min()) if live.size else math.inf
    summary = cap if math.isinf(worst) else int(min(cap, math.floor(worst)))
    notes += _certification_notes(names, got, settled, digits, ev)
    cost, cost_range = classify_range(ev.cost)
    per_value = [classify_range(x) for x in ev.grads]
    arrays = {
        "grads": np.array([f for f, _ in per_value], dtype=np.float64),
        "range": np.array([r for _, r in per_value], dtype=np.int8),
        "radius": np.array([float_radius(x) for x in ev.grads], dtype=np.float64),
        "digits": got[1:],
    }
    exact = np.empty(len(names), dtype=object)
    exact[:] = [to_mpmath(x) for x in ev.grads]
    arrays["exact"] = exact
    if hull is not None:
        arrays["lo"] = np.array([float_below(x) for x in hull.grads], dtype=np.float64)
        arrays["hi"] = np.array([float_above(x) for x in hull.grads], dtype=np.float64)
    split = {key: _split(values, shapes) for key, values in arrays.items()}
    return ExactGradient(
        cost=cost, grads=split["grads"], cost_exact=to_mpmath(ev.cost), grads_exact=split["exact"],
        digits=max(0, summary), bits=ev.bits, mode=mode, backend=backend,
        kinks=_kink_messages(ev.kinks), notes=tuple(notes), seconds=time.perf_counter() - seconds_since,
        numbers="arb", cost_radius=float_radius(ev.cost), cost_digits=float(got[0]), cost_range=Range(cost_range),
        grads_radius=split["radius"], grads_digits=split["digits"], grads_range=split["range"],
        kink_lo=split.get("lo"), kink_hi=split.get("hi"),
    )


def _split(flat: np.ndarray, shapes) -> dict[str, np.ndarray]:
    out, pos = {}, 0
    for name, shape in shapes:
        size = math.prod(shape)
        out[name] = flat[pos:pos + size].reshape(shape)
        pos += size
    return out


def _listed(names: list[str], indices) -> str:
    shown = ", ".join(names[i] for i in indices[:5])
    return shown + (f" and {len(indices) - 5} more" if len(indices) > 5 else "")


def _certification_notes(names: list[str], got: np.ndarray, settled: np.ndarray, digits: int, ev: Evaluation) -> list[str]:
    """Say which values are not certified to ``digits`` digits, and why."""
    notes = []
    if settled[0]:
        notes.append(f"J is below 2^-{NEGLIGIBLE_BITS} (0.0 in float64) and is certified to only {got[0]:.1f} digits")
    elif got[0] < digits:
        notes.append(f"J is certified to only {got[0]:.1f} digits at {ev.bits} bits (asked for {digits})")
    low = np.flatnonzero(settled[1:])
    if low.size:
        notes.append(f"∂J/∂θ for {_listed(names, low)} is below 2^-{NEGLIGIBLE_BITS} (0.0 in float64, settled for any "
                     "float64 comparison) but not certified to full precision; not counted in digits")
    short = np.flatnonzero((got[1:] < digits) & ~settled[1:])
    if short.size:
        notes.append(f"∂J/∂θ for {_listed(names, short)} certified to only {got[1:][short].min():.1f} digits at "
                     f"{ev.bits} bits (asked for {digits}); grads_digits says how many each has")
    if ev.conditions.undecided:
        notes.append(f"{ev.conditions.undecided} Piecewise condition(s) (e.g. a ReLU pre-activation within rounding "
                     f"of 0) could not be decided at {ev.bits} bits: those values enclose both sides")
    return notes


def _kink_messages(kinks) -> tuple[str, ...]:
    msgs = []
    for k, i, j in sorted(kinks):
        upstream = f"; and, through it, every parameter of layers 1..{k - 1}" if k > 1 else ""
        msgs.append(f"pre-activation a{k}[{j}] of example {i} is exactly 0 at a ReLU (kink): "
                    f"∂J/∂W{k}[{j},:] and ∂J/∂b{k}[{j}] use relu'(0) = 0{upstream}; "
                    "kink_lo/kink_hi hold the interval of one-sided values")
    return tuple(msgs)
