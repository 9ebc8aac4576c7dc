"""Random directional probes: check a candidate gradient with k directional derivatives, and
localize a failure by bisecting the failing direction's support.

For a random signed direction v, the numeric J′(θ; v) is compared with ⟨g, v⟩ within a budget =
the numeric error estimate + 4·eps·Σ|gᵢvᵢ| (rounding of the dot product, and of a correct float64
g) + rtol·Σ|gᵢvᵢ|. A failing probe's support is split in halves and each half re-probed, down to
single entries: O(k + b·log P) directional derivatives for b wrong entries, instead of P partials.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradverify import forward
from gradverify.errors import InputError
from gradverify.finite_diff.blackbox import POINTS, as_theta, call_cost, evaluation_noise, fd_along
from gradverify.finite_diff.engine import Engine
from gradverify.finite_diff.estimators import resolve_method
from gradverify.finite_diff.kernels import ACT, loss_terms
from gradverify.finite_diff.policy import ANALYTIC, EPS, POLICY
from gradverify.finite_diff.records import Probe, ProbeReport
from gradverify.params import flatten, scalar_names, unflatten
from gradverify.spec import Problem

__all__ = ["probe_check"]


@dataclass(frozen=True)
class _Target:
    """What the probes need from the thing checked: a real cost f of the flat θ, and how to take
    directional derivatives of it (``engine`` for complex step, ``relu_pattern`` to see kinks)."""

    f: Callable[[np.ndarray], float]
    theta: np.ndarray
    method: str
    names: list[str] | None
    noise: float | None                              # absolute error of one evaluation, if known
    engine: Engine | None = None
    relu_pattern: Callable[[np.ndarray], np.ndarray] | None = None


def _problem_target(problem: Problem, method: str) -> _Target:
    net = problem.network
    theta = flatten(problem.params, net)

    def f(vec: np.ndarray) -> float:
        return float(np.real(forward.cost(net, unflatten(vec, net), problem.X, problem.Y)))

    relu = [k for k, act in enumerate(net.activations) if act == "relu"]
    relu_pattern = None
    if relu:
        def relu_pattern(vec):
            pre = forward.pre_activations(net, unflatten(vec, net), problem.X)
            return np.concatenate([(pre[k] > 0).reshape(-1) for k in relu])
    method = resolve_method(method, all(a in ANALYTIC for a in net.activations))
    eng = Engine(problem)
    noise = POLICY["roundoff_units"] * EPS * (eng.model.total_roundoff_scale()
                                               + forward.penalty(net, problem.params, problem.m)) \
        + eng.model.total_underflow_floor()
    return _Target(f, theta, method, scalar_names(net), noise, eng, relu_pattern)


def _black_box_target(f: Callable[[np.ndarray], float], theta, method: str) -> _Target:
    if theta is None:
        raise InputError("probe_check on a black-box function needs theta", fix="pass theta=the flat parameters")
    return _Target(f, as_theta(theta), resolve_method(method, False, allow_complex=False), None, None)


def _complex_direction(eng: Engine, dparams: dict, h: float) -> tuple[float, float]:
    """Im J(θ + i·h·v) for a direction v (Wb layout) and the magnitude of the imaginary terms summed."""
    H = eng.H[0]
    prop = 0.0
    for k in range(1, eng.L + 1):
        dW, db = h * dparams[f"W{k}"], h * dparams[f"b{k}"]
        A = H @ (eng.W[k] + 1j * dW).T + (eng.b[k] + 1j * db)
        # the rounding of Im a⁽ᵏ⁾ (sums that may cancel), times ∂J/∂a⁽ᵏ⁾
        size = np.abs(H.imag) @ np.abs(eng.W[k]).T + np.abs(H.real) @ np.abs(dW).T + np.abs(db)
        prop += float(np.sum(eng.model.row_derivatives(k)[0] * size))
        if k < eng.L:
            H = ACT[eng.acts[k - 1]](A)
    terms, imag_parts = loss_terms(eng.net.output, A, eng.Y)
    im = float(terms.imag.sum()) / eng.m
    mag = float((imag_parts if imag_parts is not None else np.abs(terms.imag)).sum()) / eng.m + prop
    for name, _ in eng.net.param_shapes:
        if eng.c and name in eng.penalized:
            base = eng.W[int(name[1:])] if name[0] == "W" else eng.b[int(name[1:])]
            pen = eng.c * (base + 1j * h * dparams[name]) ** 2
            im += float(pen.imag.sum())
            mag += float(np.abs(pen.imag).sum())
    return im, mag


class _Prober:
    """Takes directional derivatives of a target, compares them with ⟨g, v⟩ and keeps every probe."""

    def __init__(self, target: _Target, g: np.ndarray, rtol: float, max_evals: int):
        self.t, self.g, self.rtol, self.max_evals = target, g, rtol, max_evals
        self.f0 = target.f(target.theta.copy()) if target.engine is not None else call_cost(target.f, target.theta)
        self.evals = 1
        self.noise = target.noise
        if self.noise is None:
            self.noise, calls = evaluation_noise(target.f, target.theta, self.f0, None)
            self.evals += calls
        P = target.theta.size
        self.scale = max(1.0, float(np.sqrt(np.mean(target.theta ** 2))) if P else 1.0)
        self.probes: list[Probe] = []
        self.pattern0 = target.relu_pattern(target.theta) if target.relu_pattern is not None else None

    def _complex(self, v: np.ndarray) -> tuple[float, float, int, np.ndarray, bool]:
        eng, h = self.t.engine, POLICY["complex_step"]
        im, mag = _complex_direction(eng, unflatten(v, eng.net), h)
        d = im / h
        err = POLICY["complex_units"] * EPS * (eng.L * mag / h + eng.model.condition(1) * abs(d)) \
            + eng.model.total_underflow_floor() / h
        return d, err, 1, v, False

    def _real(self, v: np.ndarray) -> tuple[float, float, int, np.ndarray, bool]:
        t, method = self.t, self.t.method
        base = POLICY["central_step"] if method == "central" else POLICY["richardson_step"]
        # the step along the unit direction v/‖v‖ is the 1-D step: J‴ along v grows as ‖v‖³
        h = base * self.scale / max(float(np.linalg.norm(v)), 1e-300)
        kinked = False
        if t.relu_pattern is not None:
            for _ in range(4):       # a stencil across a ReLU kink: shrink the step (at most 1000×)
                kinked = any(not np.array_equal(t.relu_pattern(t.theta + (k * h) * v), self.pattern0)
                             for k in POINTS[method])
                if not kinked:
                    break
                h /= 10
        return (*fd_along(t.f, t.theta, v, h, method, self.f0, self.noise), kinked)

    def probe(self, v: np.ndarray, level: int) -> Probe:
        """One directional check along v (recorded)."""
        d, err, n, v_eff, kinked = self._complex(v) if self.t.method == "complex-step" else self._real(v)
        self.evals += n
        gv = self.g * v_eff
        analytic_val = float(np.sum(gv))
        mag = float(np.abs(gv).sum())
        budget = err + 4 * EPS * mag + self.rtol * mag
        pr = Probe(len(self.probes), level, int(np.count_nonzero(v)), d, analytic_val, err, budget,
                   bool(not kinked and abs(d - analytic_val) <= budget), kinked)
        self.probes.append(pr)
        return pr

    def bisect(self, support: np.ndarray, v: np.ndarray, level: int, found: _Found) -> None:
        """Split a failing support in halves and re-probe each, down to single entries
        (recursion depth log₂ P)."""
        if self.evals >= self.max_evals:
            return
        if support.size == 1:
            p, last = int(support[0]), self.probes[-1]
            if last.kinked:
                found.kinked.add(p)
            else:
                found.localized.add(p)
                found.numeric[p] = (last.numeric / v[p], last.error / abs(v[p]))
            return
        half = support.size // 2
        for part in (support[:half], support[half:]):
            if not self.probe(_restricted(v, part), level + 1).passed:
                self.bisect(part, v, level + 1, found)


@dataclass
class _Found:
    localized: set[int]
    kinked: set[int]
    numeric: dict[int, tuple[float, float]]


def _restricted(v: np.ndarray, support: np.ndarray) -> np.ndarray:
    w = np.zeros(v.size)
    w[support] = v[support]
    return w


def _localize(prober: _Prober, directions: list[np.ndarray]) -> _Found:
    """Bisect every failing random probe whose failure the entries found so far do not explain."""
    found = _Found(set(), set(), {})
    for i, v in enumerate(directions):
        if prober.probes[i].passed:
            continue
        support = np.flatnonzero(v)
        support = support[~np.isin(support, list(found.localized | found.kinked))]
        if support.size == 0:
            continue
        if (found.localized or found.kinked) and prober.probe(_restricted(v, support), 1).passed:
            continue          # this failure is explained by the entries already found
        prober.bisect(support, v, 1, found)
    return found


def probe_check(target: Problem | Callable[[np.ndarray], float], candidate_grad, *, theta=None, k: int = 8,
                seed: int = 0, distribution: str = "rademacher", method: str = "auto",
                rtol: float = 0.0, max_evals: int | None = None) -> ProbeReport:
    """Check a candidate gradient with k random directional derivatives; localize failures.

    For each random signed direction v, the numeric J′(θ; v) is compared with ⟨g, v⟩ within a
    budget = the numeric error estimate + 4·eps·Σ|gᵢvᵢ| (rounding of the dot product, and of a
    correct float64 g) + rtol·Σ|gᵢvᵢ|. A failing probe's support is split in halves and each half
    re-probed, recursively, down to single entries: O(k + b·log P) directional derivatives for b
    wrong entries, instead of P partials.

    Args:
        target: a ``Problem`` (flat vector in the canonical Wb/C layout; complex step where
            analytic) or a black-box ``f(theta_flat) -> float`` (then ``theta`` is required).
        candidate_grad: the gradient to check, flat, same layout.
        theta: the parameters (black box only).
        k: number of random probes (≥ 1).
        seed: random seed for the directions.
        distribution: ``"rademacher"`` (±1, default: every entry weighs the same) or ``"gaussian"``.
        method: directional estimator: ``"auto"``, ``"central"``, ``"richardson"`` or ``"complex-step"``.
        rtol: extra relative slack on ⟨g, v⟩ (0: the error budget alone).
        max_evals: stop bisecting once this many evaluations have been used (default 40·(k + log₂P)).

    Returns:
        A ``ProbeReport``.

    Raises:
        InputError: bad arguments or a candidate of the wrong size.
    """
    if isinstance(target, Problem):
        tgt = _problem_target(target, method)
    elif callable(target):
        tgt = _black_box_target(target, theta, method)
    else:
        raise InputError("probe_check needs a Problem or a callable f(theta)", received=type(target).__name__)
    if distribution not in ("rademacher", "gaussian"):
        raise InputError("Unknown probe distribution", expected='"rademacher" or "gaussian"', received=repr(distribution))
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError("k must be a positive integer", received=repr(k))
    g = as_theta(candidate_grad)
    P = tgt.theta.size
    if g.size != P:
        raise InputError("The candidate gradient has the wrong size", expected=f"{P} entries", received=f"{g.size}")
    max_evals = max_evals if max_evals is not None else 40 * (k + int(math.ceil(math.log2(max(P, 2)))))
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):   # extremes: see numeric_gradient
        return _run(tgt, g, rtol, max_evals, k, seed, distribution)


def _run(tgt: _Target, g: np.ndarray, rtol: float, max_evals: int, k: int, seed: int, distribution: str) -> ProbeReport:
    """k random probes, then the bisection of the failing ones."""
    P = tgt.theta.size
    prober = _Prober(tgt, g, rtol, max_evals)
    rng = np.random.default_rng(seed)
    directions = []
    for _ in range(k):
        v = rng.choice([-1.0, 1.0], size=P) if distribution == "rademacher" else rng.standard_normal(P)
        directions.append(v)
        prober.probe(v, 0)
    failed = any(not p.passed and not p.kinked for p in prober.probes)
    found = _localize(prober, directions)
    loc, kinked = sorted(found.localized), sorted(found.kinked)
    name = (lambda i: tgt.names[i]) if tgt.names else (lambda i: f"θ[{i}]")
    return ProbeReport(not failed and not loc, prober.probes, loc, [name(i) for i in loc],
                       {i: found.numeric[i] for i in loc}, int(prober.evals), int(P), distribution, tgt.method,
                       kinked, [name(i) for i in kinked])
