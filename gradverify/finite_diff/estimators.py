"""The estimators and their error bars, and the full per-parameter gradient of a ``Problem``.

``"central"``
    D(h) = (J(θ+h) − J(θ−h)) / 2h with h = ∛eps · max(|θₚ|, 1): 2 evaluations per parameter.
    Error: truncation (h²/6 · a bound on |J‴| from ``ErrorModel.truncation_bound``, ×2 safety)
    plus round-off 2·eps·S/h, S the magnitude of what the evaluation rounds (``roundoff_scale``).
``"richardson"``
    Central differences at h, 2h, 4h (h = eps^(1/5) · max(|θₚ|, 1)) extrapolated twice
    (orders h² → h⁴ → h⁶). Error: the difference between the last two levels, plus round-off.
``"complex-step"``
    Im J(θ + ih·eₚ) / h with h = 1e−20 · max(|θₚ|, 1): no subtraction, so no cancellation.
    Needs J analytic in θ. Error: 8·eps·(depth)·(magnitude of the imaginary terms)/h, plus the
    derivative's condition to the rounding of the real parts (``ErrorModel.condition``,
    ``complex_rounding``).

Every estimator also carries ``ErrorModel.input_rounding`` (the rounding of a weight's input) and
``ErrorModel.underflow_floor`` / h (gradual underflow in the changed part of J); an entry whose
estimate or bar is not a finite number is unresolved (NaN, inf bar: ``_honest``).

Kinks: where the sign pattern of any ReLU pre-activation changes inside a parameter's stencil,
the entry is marked and its one-sided differences are reported; its error bar is widened to cover
both sides (``_kinked``), so it is reported as non-differentiable, never as a failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradverify.errors import InputError
from gradverify.finite_diff.engine import Engine
from gradverify.finite_diff.policy import ANALYTIC, EPS, METHODS, POLICY, RICH_RO
from gradverify.finite_diff.records import NumericGradient
from gradverify.spec import Problem

__all__ = ["numeric_gradient", "resolve_method", "stencil", "combine"]


# ---- the estimators ---------------------------------------------------------------------------

def resolve_method(method: str, analytic: bool, *, allow_complex: bool = True) -> str:
    """The estimator to use: ``"auto"`` resolved (complex step where analytic and allowed, else
    central), anything else validated. Raises ``InputError`` for unknown or impossible choices."""
    if method not in METHODS:
        raise InputError(f"Unknown finite-difference method {method!r}", expected="one of " + ", ".join(METHODS),
                         received=repr(method), fix='use "auto" unless you need a particular estimator')
    if method == "auto":
        return "complex-step" if (analytic and allow_complex) else "central"
    if method == "complex-step" and not allow_complex:
        raise InputError("Complex-step differentiation needs the cost itself, not a black-box function",
                         expected='method "central" or "richardson"', received='"complex-step"',
                         fix='use method="richardson" for the most accurate real-arithmetic estimate')
    if method == "complex-step" and not analytic:
        raise InputError("Complex-step differentiation needs an analytic cost; ReLU is not analytic at 0",
                         expected="a network of sigmoid, tanh, softplus or identity units",
                         received="a network with ReLU units",
                         fix='use method="auto" (central with kink detection) or "richardson"')
    return method


def stencil(method: str, scale: np.ndarray, reach: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Base steps h (J,) and the perturbations t (J, T) of a method, for parameters of size ``scale``.

    ``reach`` (complex step): the largest h per parameter, so that the imaginary part h·u it puts
    on a pre-activation stays near the real axis, where Im f(a + ih·u)/h is f′·u up to h²."""
    if method == "central":
        h = POLICY["central_step"] * scale
        return h, np.stack([-h, h], axis=1)
    if method == "richardson":
        h = POLICY["richardson_step"] * scale
        return h, np.stack([-h, h, -2 * h, 2 * h, -4 * h, 4 * h], axis=1)
    h = POLICY["complex_step"] * scale
    if reach is not None:
        h = np.minimum(h, reach)
    return h, (1j * h)[:, None]


def combine(method: str, V: np.ndarray, V0: np.ndarray, h: np.ndarray, S: np.ndarray, depth_factor: float = 1.0,
            imag_mag: np.ndarray | None = None, trunc: np.ndarray | None = None, cond: float = 1.0):
    """Estimates and error estimates from the values V (J, T) at the stencil (and V0 at θ).

    ``trunc`` bounds h²|J‴|/6 near θ (central only; see ``ErrorModel.truncation``). ``cond``
    (complex step) is the relative condition of the derivative to the rounding of the real parts:
    a saturated unit's derivative is ∝ e^(−|a|), so an error eps·|a| in a costs eps·|a| relatively.
    Returns (estimate, error, left, right) with one-sided differences at step h.
    """
    ro = POLICY["roundoff_units"] * EPS
    safety = POLICY["truncation_safety"]
    if method == "complex-step":
        est = V[:, 0].imag / h
        err = POLICY["complex_units"] * EPS * (depth_factor * imag_mag / h + cond * np.abs(est))
        return est, err, None, None
    if method == "central":
        vm, vp = V[:, 0], V[:, 1]
        est = (vp - vm) / (2 * h)
        err = (0.0 if trunc is None else safety * trunc) + ro * S / h
        return est, err, (V0 - vm) / h, (vp - V0) / h
    d1 = (V[:, 1] - V[:, 0]) / (2 * h)
    d2 = (V[:, 3] - V[:, 2]) / (4 * h)
    d4 = (V[:, 5] - V[:, 4]) / (8 * h)
    r1a, r1b = (4 * d1 - d2) / 3, (4 * d2 - d4) / 3
    est = (16 * r1a - r1b) / 15
    err = safety * np.abs(est - r1a) + RICH_RO * ro * S / h
    return est, err, (V0 - V[:, 0]) / h, (V[:, 1] - V0) / h


def _kinked(method: str, V: np.ndarray, h: np.ndarray, left: np.ndarray, right: np.ndarray, err: np.ndarray,
            ro_S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Estimate and error bar of entries whose stencil crosses a ReLU kink.

    The estimate is D(h), the midpoint of the one-sided differences at the smallest step. The
    derivative at θ (where it exists) is that of the piece holding θ: within ±h it is D(h) or
    one of the one-sided values, so the bar spans both (|right − left|); if the kink lies
    beyond h (Richardson's ±4h), D(h) is clean and |D(h) − D(2h)| covers its truncation.
    At the kink itself any value between the one-sided ones is a valid subgradient.
    """
    d1 = 0.5 * (left + right)
    spread = np.abs(right - left)
    if method == "central":
        return d1, err + spread
    d2 = (V[:, 3] - V[:, 2]) / (4 * h)
    return d1, spread + np.abs(d1 - d2) + 2 * ro_S / h


def _honest(est: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the cost overflowed on the stencil (or the error bound exceeds float64), the estimate
    is NaN and its error bar infinite: no number is claimed, and a NaN bar is never passed on."""
    bad = ~(np.isfinite(est) & np.isfinite(err))
    if not bad.any():
        return est, err
    return np.where(bad, np.nan, est), np.where(bad, np.inf, err)


# ---- the full gradient of a problem -------------------------------------------------------------

_FIELDS = ("grads", "errors", "steps", "left", "right", "kinks")


@dataclass(frozen=True)
class _Layer:
    """What every unit of one layer shares: the layer's error-model arrays and batch width."""

    layer: int
    n_in: int
    penalized: tuple[bool, bool]          # weights, bias
    bounds: tuple[np.ndarray, np.ndarray] | None   # central, complex step: scaled truncation bounds and scales
    reach: np.ndarray | None              # complex step: the largest step per parameter (``stencil``)
    crounding: np.ndarray | None          # complex step: real-part rounding per (unit, parameter)
    floor: np.ndarray                     # per unit: what gradual underflow can add to the changed part of J
    inputs: np.ndarray                    # per (unit, parameter): the rounding of the weight's input
    width: int                            # elements per perturbed copy in the widest batched array


def _layer_context(eng: Engine, layer: int, method: str) -> _Layer:
    n_in = eng.fan_in(layer)
    width = eng.m * (max(eng.W[k].shape[0] for k in range(layer + 1, eng.L + 1)) if layer < eng.L else
                     (1 if eng.separable else eng.W[eng.L].shape[0]))
    reach = None
    if method == "complex-step":
        u = np.append(np.abs(eng.H[layer - 1]).max(axis=0, initial=0.0), 1.0)
        with np.errstate(divide="ignore"):
            reach = POLICY["complex_reach"] / u
    return _Layer(layer, n_in, eng.penalized_units(layer),
                  eng.model.truncation_bound(layer) if method != "richardson" else None, reach,
                  eng.model.complex_rounding(layer) if method == "complex-step" else None,
                  eng.model.underflow_floor(layer), eng.model.input_rounding(layer), width)


def _unit_gradient(eng: Engine, ctx: _Layer, unit: int, method: str, acc: dict[str, np.ndarray]) -> int:
    """Fill row ``unit`` of the layer's arrays ``acc``; returns the evaluations used."""
    layer, n_in = ctx.layer, ctx.n_in
    theta = eng.theta(layer, unit)
    h_all, t_all = stencil(method, np.maximum(np.abs(theta), 1.0), ctx.reach)
    chunk = max(1, POLICY["chunk_elements"] // (t_all.shape[1] * ctx.width))
    n_evals = 0
    V0_data = None
    if method != "complex-step":
        V0_data = eng.unit_values(layer, unit, np.arange(1), np.zeros((1, 1)))[0][0, 0]
        n_evals += 1
    S = eng.model.roundoff_scale(layer, unit)
    for lo in range(0, n_in + 1, chunk):
        sl = slice(lo, min(lo + chunk, n_in + 1))
        cols, t, h, th = np.arange(n_in + 1)[sl], t_all[sl], h_all[sl], theta[sl]
        V, kink, mag = eng.unit_values(layer, unit, cols, t, want_mag=(method == "complex-step"))
        n_evals += V.size
        reg = np.where(cols < n_in, *ctx.penalized) & (eng.c != 0)
        # the one changed penalty term (only where there is one: 0·θ² is NaN once θ² overflows)
        pen = np.where(reg[:, None], eng.c * (th[:, None] + t) ** 2, 0.0)
        V = V / eng.m + pen
        V0 = (V0_data / eng.m + np.where(reg, eng.c * th ** 2, 0.0)) if V0_data is not None else None
        if method == "complex-step":
            imag_mag = mag[:, 0] / eng.m + np.abs(pen[:, 0].imag)
            est, err, left, right = combine(method, V, V0, h, S, eng.L - layer + 1, imag_mag,
                                            cond=eng.model.condition(layer))
            S_p = None
        else:
            S_p = S + np.where(reg, eng.c * (np.abs(th) + 4 * h) ** 2, 0.0)
            est, err, left, right = combine(method, V, V0, h, S_p)     # + truncation: ``_layer_terms``
        acc["grads"][unit, sl], acc["errors"][unit, sl], acc["steps"][unit, sl] = est, err, h
        acc["left"][unit, sl] = acc["right"][unit, sl] = np.nan
        if kink is not None and kink.any():
            acc["kinks"][unit, sl] = kink
            acc["left"][unit, sl] = np.where(kink, left, np.nan)
            acc["right"][unit, sl] = np.where(kink, right, np.nan)
            k_est, k_err = _kinked(method, V, h, left, right, err, ro_S=POLICY["roundoff_units"] * EPS * S_p)
            acc["grads"][unit, sl] = np.where(kink, k_est, est)
            acc["errors"][unit, sl] = np.where(kink, k_err, err)
    return n_evals


def _layer_terms(eng: Engine, ctx: _Layer, method: str, acc: dict[str, np.ndarray]) -> None:
    """Add the error terms that need no stencil values to a finished layer, all units at once:
    the input rounding, the underflow floor, the truncation (central; complex step, where it is
    negligible unless the step was large) and the real-part rounding (complex step); then mark
    what is not a finite number as unresolved (``_honest``)."""
    H = acc["steps"]
    extra = ctx.inputs + (RICH_RO if method == "richardson" else 1.0) * ctx.floor[:, None] / H
    if ctx.crounding is not None:
        extra = extra + ctx.crounding
    if ctx.bounds is not None:
        extra = extra + POLICY["truncation_safety"] * eng.model.truncation(ctx.bounds[0], ctx.bounds[1], H)
    acc["grads"], acc["errors"] = _honest(acc["grads"], acc["errors"] + extra)


def numeric_gradient(problem: Problem, *, method: str = "auto",
                     progress: Callable[[int, int], None] | None = None) -> NumericGradient:
    """The full per-parameter numerical gradient of ``problem``'s cost, with error estimates.

    Args:
        problem: network, parameters and data.
        method: ``"auto"`` (complex step if the network is analytic, else central),
            ``"central"``, ``"richardson"`` or ``"complex-step"``.
        progress: called as ``progress(done, total)`` (parameters done) while it runs.

    Returns:
        A ``NumericGradient`` (estimates, error estimates, steps, kink flags, one-sided values).

    Raises:
        InputError: an unknown method, or complex step asked of a ReLU network.
    """
    if not isinstance(problem, Problem):
        raise InputError("numeric_gradient needs a Problem", received=type(problem).__name__,
                         fix="build one with spec.make_problem or problems.debug_problem; "
                         "for a plain function use numeric_gradient_of")
    start = time.perf_counter()
    net = problem.network
    method = resolve_method(method, all(a in ANALYTIC for a in net.activations))
    # at the edges of float64 intermediate values overflow or underflow on purpose-free paths; what
    # matters is handled explicitly (``_honest``), so numpy's warnings would only be noise
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        return _numeric_gradient(problem, method, progress, start)


def _numeric_gradient(problem: Problem, method: str, progress, start: float) -> NumericGradient:
    net = problem.network
    eng = Engine(problem)
    total, done, n_evals = net.n_params, 0, 1
    out: dict[str, dict[str, np.ndarray]] = {key: {} for key in _FIELDS}
    for layer in range(1, eng.L + 1):
        ctx = _layer_context(eng, layer, method)
        n_out, n_in = eng.W[layer].shape
        acc = {key: np.zeros((n_out, n_in + 1), dtype=bool if key == "kinks" else np.float64) for key in _FIELDS}
        for unit in range(n_out):
            n_evals += _unit_gradient(eng, ctx, unit, method, acc)
            done += n_in + 1
            if progress is not None:
                progress(done, total)
        _layer_terms(eng, ctx, method, acc)
        for key in _FIELDS:
            out[key][f"W{layer}"] = acc[key][:, :n_in].copy()
            out[key][f"b{layer}"] = acc[key][:, n_in].copy()
    names = [name for name, _ in net.param_shapes]
    order = lambda d: {n: d[n] for n in names}  # noqa: E731
    any_kink = any(out["kinks"][n].any() for n in names)
    one_sided = {n: (out["left"][n], out["right"][n]) for n in names} if any_kink else None
    return NumericGradient(order(out["grads"]), order(out["errors"]), order(out["steps"]), order(out["kinks"]),
                           one_sided, method, int(n_evals), time.perf_counter() - start, net)
