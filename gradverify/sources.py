"""The three gradient sources as the judge sees them: each one's values and its own error budget.

``exact`` (the SymPy oracle, the referee), ``backprop`` (the numpy engine) and ``numeric`` (finite
differences) are run here and wrapped as ``SourceResult`` records; candidates are wrapped the same
way by ``candidates``. Each source module is imported when it is first needed: SymPy is slow to
import and the oracle is not always asked for.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from gradverify.budget import TINY, cost_budget, float64_budget
from gradverify.errors import InputError
from gradverify.params import flatten
from gradverify.spec import Problem

__all__ = ["SOURCE_NAMES", "SourceKind", "SourceResult", "run_source"]

SOURCE_NAMES = ("exact", "backprop", "numeric")


SourceKind = Literal["exact", "float64", "float32", "numeric"]


@dataclass(frozen=True)
class SourceResult:
    """One gradient source on one problem: its values and its own error budget (flat, canonical order).

    Attributes:
        name: ``"exact"``, ``"backprop"``, ``"numeric"`` or a candidate's label.
        kind: what the source is, which decides its budget: the exact referee, a float64 engine or
            a finite-difference estimate.
        grad, budget: per parameter, in ``params.scalar_names`` order.
        cost, cost_budget: J and its budget (``cost`` is None when the source gives none).
        detail: one line for people: how the values were made.
        seconds: the source's wall-clock time.
        kinks: True where the source met a non-differentiable point (None: it met none).
        kink_lo, kink_hi: for the exact referee at a non-differentiable point, the interval of the
            one-sided values of each partial (NaN where the partial is differentiable): any value
            inside is a right answer there.
        checked: True for the partials the source computed (None: all of them); the others hold
            NaN and are reported as unchecked, e.g. finite differences on a sample of a large network.
        notes: remarks the source makes about its own values (a mode fall-back, a ReLU kink).
        facts: scalars a report shows about the source (``digits``, ``mode``, ``method``, …).
    """

    name: str
    kind: SourceKind
    grad: np.ndarray
    budget: np.ndarray
    cost: float | None = None
    cost_budget: float = 0.0
    detail: str = ""
    seconds: float = 0.0
    kinks: np.ndarray | None = None
    kink_lo: np.ndarray | None = None
    kink_hi: np.ndarray | None = None
    checked: np.ndarray | None = None
    notes: tuple[str, ...] = ()
    facts: dict[str, int | float | str] = field(default_factory=dict)


# Exact results of small problems, kept because grading asks the same questions of every
# submission (the same fixed and generated cases): the oracle runs once per case, not per student.
_EXACT_CACHE: OrderedDict = OrderedDict()
_EXACT_CACHE_SIZE, _EXACT_CACHE_MAX_PARAMS = 1024, 5000


def _problem_key(problem: Problem, options: dict) -> tuple:
    h = hashlib.sha256()
    for name in sorted(problem.params):
        h.update(name.encode())
        h.update(problem.params[name].tobytes())
    h.update(problem.X.tobytes())
    h.update(problem.Y.tobytes())
    return (problem.network, problem.X.shape, h.hexdigest(), tuple(sorted(options.items())))


def _exact_result(problem: Problem, progress, options: dict):
    from gradverify import symbolic  # imported lazily: SymPy is slow to import

    if problem.network.n_params > _EXACT_CACHE_MAX_PARAMS:
        return symbolic.exact_gradient(problem, progress=progress, **options)
    key = _problem_key(problem, options)
    if key in _EXACT_CACHE:
        _EXACT_CACHE.move_to_end(key)
        return _EXACT_CACHE[key]
    ex = _EXACT_CACHE[key] = symbolic.exact_gradient(problem, progress=progress, **options)
    if len(_EXACT_CACHE) > _EXACT_CACHE_SIZE:
        _EXACT_CACHE.popitem(last=False)
    return ex


def _exact_source(problem: Problem, progress=None, **options) -> SourceResult:
    t0 = time.perf_counter()
    ex = _exact_result(problem, progress, options)
    net = problem.network
    grad = flatten(ex.grads, net)
    # the exact value's own error after rounding to float64: ½ ulp, plus the ball's certified radius
    radius = flatten(ex.grads_radius, net) if ex.grads_radius else np.abs(grad) * 10.0 ** (1 - ex.digits) + TINY
    budget = np.spacing(np.abs(grad)) / 2 + radius
    cost_budget_ = float(np.spacing(abs(ex.cost))) / 2 + (ex.cost_radius if ex.grads_radius else float(np.spacing(abs(ex.cost))))
    kink_lo = kink_hi = None
    if ex.kink_lo is not None and ex.kink_hi is not None:
        lo, hi = flatten(ex.kink_lo, net), flatten(ex.kink_hi, net)
        tight = 4 * radius + 2 * np.spacing(np.maximum(np.abs(lo), np.abs(hi)))
        wide = (hi - lo) > tight  # partials a kink reaches; the others have lo ≈ hi ≈ the value
        if wide.any():
            kink_lo, kink_hi = np.where(wide, lo, np.nan), np.where(wide, hi, np.nan)
    return SourceResult("exact", "exact", grad, budget, cost=float(ex.cost), cost_budget=cost_budget_,
                        detail=f"SymPy-derived partials, {ex.mode} mode ({ex.backend}), certified to {ex.digits} digits",
                        seconds=time.perf_counter() - t0, kink_lo=kink_lo, kink_hi=kink_hi,
                        notes=tuple(ex.notes) + tuple(ex.kinks) + _range_notes(ex, net),
                        facts={"digits": ex.digits, "mode": ex.mode, "backend": ex.backend})


def _range_notes(ex, net) -> tuple[str, ...]:
    """Say where an exact value lies outside float64's normal range: never a silent 0 or inf."""
    from gradverify.symbolic import Range  # the oracle's own classification of its values

    notes = []
    cost_words = {Range.OVERFLOW: "overflows float64 (its float64 value is ±inf)",
                  Range.UNDERFLOW: "underflows float64 (its float64 value is 0.0, though J is not 0)",
                  Range.NEGLIGIBLE: "is 0.0 in float64 and below 2^-1100 (not resolved further; possibly exactly 0)",
                  Range.SUBNORMAL: "lies in float64's subnormal range (fewer than 16 significant digits survive)"}
    if ex.cost_range in cost_words:
        notes.append(f"the exact cost J = {float(ex.cost_exact):.6g}… {cost_words[ex.cost_range]}" if ex.cost_range != Range.OVERFLOW
                     else f"the exact cost J {cost_words[ex.cost_range]}; J ≈ {ex.cost_exact}")
    if ex.grads_range:
        codes = flatten({k: v.astype(float) for k, v in ex.grads_range.items()}, net)
        for code, words in ((Range.OVERFLOW, "overflow float64 (±inf)"), (Range.UNDERFLOW, "underflow to 0.0 in float64 though not 0"),
                            (Range.SUBNORMAL, "are subnormal in float64"),
                            (Range.NEGLIGIBLE, "are 0.0 in float64 and below 2^-1100 (not resolved further; possibly exactly 0)")):
            n = int(np.count_nonzero(codes == code))
            if n:
                notes.append(f"{n} exact partial(s) {words}")
    return tuple(notes)


def _backprop_source(problem: Problem, progress=None, **options) -> SourceResult:
    from gradverify.backprop import backprop

    t0 = time.perf_counter()
    res = backprop(problem)
    seconds = time.perf_counter() - t0
    return SourceResult("backprop", "float64", flatten(res.grads, problem.network), float64_budget(problem),
                        cost=res.cost, cost_budget=cost_budget(problem),
                        detail="numpy vectorized forward/backward pass, hand-derived rules", seconds=seconds)


def _numeric_source(problem: Problem, progress=None, *, method: str = "auto", fd: str = "auto", plan=None,
                    sample: int | None = None, seed: int = 0) -> SourceResult:
    """Finite differences: every partial, or a random sample of them when every one would take long.

    ``plan`` (a ``sizing.FdPlan``) decides; without one, ``fd`` (``"auto"``, ``"full"``,
    ``"sample"``) and ``sample`` make it from the size estimate. A sampled result says which
    partials it computed (``checked``) and its coverage.
    """
    from gradverify import finite_diff, sizing

    t0 = time.perf_counter()
    net = problem.network
    if plan is None:
        plan = sizing.fd_plan(net, problem.m, fd=fd, method=method, sample=sample)
    if plan.kind == "sample":
        from gradverify.sampling import sampled_gradient

        sg = sampled_gradient(problem, plan.n, seed=seed, progress=progress)
        budget = sg.error + np.spacing(np.abs(sg.grad)) + TINY
        share = 100 * sg.n / net.n_params
        return SourceResult("numeric", "numeric", sg.grad, budget, checked=sg.checked,
                            detail=f"finite differences ({sg.method}) of {sg.n:,} sampled partials of {net.n_params:,} "
                                   f"({share:.2g} %; {plan.reason}), {sg.n_evals:,} forward evaluations",
                            seconds=time.perf_counter() - t0,
                            notes=(f"finite differences computed {sg.n:,} of {net.n_params:,} partials ({share:.2g} %), drawn at random "
                                   "from every parameter array; the others are unchecked by them",),
                            facts={"method": sg.method, "n_evals": sg.n_evals, "sampled": sg.n, "coverage": round(share, 4)})
    num = finite_diff.numeric_gradient(problem, progress=progress, method=method)
    grad = flatten(num.grads, net)
    budget = flatten(num.errors, net) + np.spacing(np.abs(grad)) + TINY
    kinks = flatten({k: v.astype(float) for k, v in num.kinks.items()}, net) > 0 if num.kinks else None
    return SourceResult("numeric", "numeric", grad, budget, detail=f"finite differences ({num.method}), {num.n_evals} forward evaluations",
                        seconds=time.perf_counter() - t0, kinks=kinks, facts={"method": num.method, "n_evals": num.n_evals})


_SOURCES: dict[str, Callable[..., SourceResult]] = {"exact": _exact_source, "backprop": _backprop_source, "numeric": _numeric_source}


#: The keyword options each source takes (``compare(options={source: {...}})``).
SOURCE_OPTIONS: dict[str, tuple[str, ...]] = {"exact": ("mode", "digits", "backend"), "backprop": (),
                                              "numeric": ("method", "fd", "plan", "sample", "seed")}


def run_source(name: str, problem: Problem, *, progress: Callable[[int, int], None] | None = None, **options) -> SourceResult:
    """Run the source ``name`` (one of ``SOURCE_NAMES``) on ``problem`` with its keyword options.

    Raises:
        InputError: an option the source does not take (a typo would otherwise be ignored or fail deep inside).
    """
    unknown = sorted(set(options) - set(SOURCE_OPTIONS[name]))
    if unknown:
        takes = ", ".join(SOURCE_OPTIONS[name]) or "no options"
        raise InputError(f"The {name} source has no option {', '.join(map(repr, unknown))}", expected=takes,
                         received=", ".join(options), fix=f"options={{'{name}': {{...}}}} takes {takes}")
    return _SOURCES[name](problem, progress=progress, **options)
