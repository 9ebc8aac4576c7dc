"""The black-box path: the numerical gradient of any ``f(theta_flat) -> float``, one parameter at a
time, and the directional derivative the probes use.

A black box's sums are unknown, so its round-off is measured (``_noise_level``, after Moré &
Wild's ECnoise) and the truncation comes from a third difference at one more point per parameter.
Complex step is not offered: a black box cannot be trusted to be analytic or to accept complex input.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from gradverify.errors import InputError
from gradverify.finite_diff.estimators import resolve_method
from gradverify.finite_diff.policy import EPS, ETA, POLICY, RICH_RO
from gradverify.finite_diff.records import BlackBoxGradient

__all__ = ["numeric_gradient_of", "as_theta", "call_cost", "fd_along", "evaluation_noise", "POINTS"]


def as_theta(theta) -> np.ndarray:
    try:
        vec = np.array(theta, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InputError("theta is not a numeric vector", received=str(exc), fix="pass a flat float array") from None
    if not np.all(np.isfinite(vec)):
        raise InputError("theta holds NaN or infinite values", fix="pass finite parameters")
    return vec


def call_cost(f: Callable, x: np.ndarray) -> float:
    value = f(x.copy())
    try:
        value = float(np.real_if_close(np.asarray(value, dtype=np.complex128)).reshape(()))  # accepts 0-d, 1-element
    except (TypeError, ValueError):
        raise InputError("The cost function did not return a real number", expected="a float",
                         received=f"{type(value).__name__}", fix="return the scalar cost J(theta)") from None
    if not math.isfinite(value):
        raise InputError("The cost function returned NaN or inf", received=repr(value), fix="check the cost at this theta")
    return value


# the estimate as a linear combination Σₖ wₖ·f(θ + k·h·v) / h (the error terms use more points)
_WEIGHTS = {
    "central": {-1: -0.5, 1: 0.5},
    "richardson": {1: 64 / 90, -1: -64 / 90, 2: -20 / 180, -2: 20 / 180, 4: 1 / 360, -4: -1 / 360},
}
POINTS = {"central": (-1, 1, 2), "richardson": (-1, 1, -2, 2, -4, 4)}


def _estimate_1d(fvals: dict[int, float], f0: float, h: float, method: str, noise: float) -> tuple[float, float]:
    """Estimate and error from f at the stencil points (keys: multiples of h); ``noise`` is
    the absolute error of one evaluation of f."""
    safety = POLICY["truncation_safety"]
    if method == "central":
        vm, vp, v2 = fvals[-1], fvals[1], fvals[2]
        est = (vp - vm) / (2 * h)
        third = (v2 - 3 * vp + 3 * f0 - vm) / h ** 3
        return est, safety * h ** 2 * abs(third) / 6 + noise / h
    d1 = (fvals[1] - fvals[-1]) / (2 * h)
    d2 = (fvals[2] - fvals[-2]) / (4 * h)
    d4 = (fvals[4] - fvals[-4]) / (8 * h)
    r1a, r1b = (4 * d1 - d2) / 3, (4 * d2 - d4) / 3
    est = (16 * r1a - r1b) / 15
    return est, safety * abs(est - r1a) + RICH_RO * noise / h


def fd_along(f: Callable, theta: np.ndarray, v: np.ndarray, h: float, method: str, f0: float, noise: float):
    """d/ds f(θ + s·v) at s = 0: (estimate, error, calls, v_eff).

    θ + k·h·v is rounded, so the steps actually taken are dₖ = (θ + k·h·v) − θ (exact in
    float64), not k·h·v; the estimate measures ⟨∇f, v_eff⟩ with v_eff = Σₖ wₖ·dₖ / h, which
    is what a candidate gradient must be compared with.
    """
    fvals = {}
    v_eff = np.zeros_like(theta)
    weights = _WEIGHTS[method]
    for k in POINTS[method]:
        x = theta + (k * h) * v
        fvals[k] = call_cost(f, x)
        if k in weights:
            v_eff += weights[k] * (x - theta) / h
    est, err = _estimate_1d(fvals, f0, h, method, noise)
    return est, err, len(fvals), v_eff


def _noise_level(f: Callable, theta: np.ndarray, f0: float, *, n: int = 9, seed: int = 0) -> tuple[float, int]:
    """The round-off noise σ of f near θ, measured (after Moré & Wild's ECnoise): f at n points
    θ + k·δ·v (δ small, v random ±1) whose smooth part has negligible differences of order 3..6;
    for noise of deviation σ, mean((Δᵏf)²) = C(2k, k)·σ². Returns (σ, calls)."""
    if theta.size == 0:
        return 0.0, 0
    v = np.random.default_rng(seed).choice([-1.0, 1.0], size=theta.size)
    # δ: a tenth of the central step, so the n points sweep about one step and see the rounding
    # of quantized intermediates (a saturated tanh moves by less than an ulp over 1e−9), while
    # the smooth part's differences of order ≥ 3 (≈ δ³·|f‴| ≈ 2e−19·|f‴|) stay below the noise
    delta = 0.1 * POLICY["central_step"] * max(1.0, float(np.abs(theta).max()))
    vals = np.array([f0] + [call_cost(f, theta + (k * delta) * v) for k in range(1, n)])
    sigma = 0.0
    diff = vals
    for order in range(1, 7):
        diff = np.diff(diff)
        if order >= 3:
            sigma = max(sigma, math.sqrt(float(np.mean(diff ** 2)) / math.comb(2 * order, order)))
    return sigma, n - 1


def evaluation_noise(f: Callable, theta: np.ndarray, f0: float, noise: float | None) -> tuple[float, int]:
    """The absolute error trusted to one evaluation of a black box: given, or
    max(2·eps·|f(θ)|, 3σ, the absolute floor of float64 rounding) with σ measured by
    ``_noise_level`` (2·eps·max(|f(θ)|, 1) when f is flat to float64 there). Returns (noise, calls)."""
    if noise is not None:
        value = float(noise)
        if not (math.isfinite(value) and value >= 0):
            raise InputError("noise must be a finite number ≥ 0", received=repr(noise),
                             fix="give the absolute error of one evaluation of f, or leave it out to measure it")
        return value, 0
    sigma, calls = _noise_level(f, theta, f0)
    if sigma == 0:
        # f did not change at all near θ: it is flat to float64 (e.g. a loss that rounded to 0),
        # so its rounding cannot be seen; assume the terms it summed were of order max(|f|, 1)
        return POLICY["roundoff_units"] * EPS * max(abs(f0), 1.0), calls
    return max(POLICY["roundoff_units"] * EPS * abs(f0), 3 * sigma, POLICY["floor_ops"] * ETA), calls


def numeric_gradient_of(f: Callable[[np.ndarray], float], theta, *, method: str = "central",
                        noise: float | None = None,
                        progress: Callable[[int, int], None] | None = None) -> BlackBoxGradient:
    """The numerical gradient of a black-box cost ``f(theta_flat) -> float``, one parameter at a time.

    Every call of ``f`` may be expensive (a sandboxed student function), so the default is
    central differences: 3 calls per parameter (θ−h, θ+h, θ+2h) plus one at θ, which give the
    estimate and a truncation estimate from the third difference. The round-off of f itself is
    measured once (8 calls, see ``_noise_level``), since a black box's sums are unknown. Complex
    step is not offered: a black box cannot be trusted to be analytic or to accept complex input.
    A ReLU kink inside a stencil shows up as a large third difference, hence a large error bar
    (there is no sign pattern to inspect in a black box).

    Args:
        f: the cost; called with a fresh float64 copy of the flat parameters.
        theta: the flat parameters.
        method: ``"central"`` (3P + 9 calls) or ``"richardson"`` (6P + 9 calls).
        noise: the absolute error of one evaluation of f, if known; default measured.
        progress: called as ``progress(done, total)``.

    Returns:
        A ``BlackBoxGradient``; it unpacks as ``estimate, error, step``.

    Raises:
        InputError: an unknown method, complex step, non-finite θ, or f returning NaN/inf.
    """
    start = time.perf_counter()
    method = resolve_method(method, False, allow_complex=False)
    if method == "auto":
        method = "central"
    theta = as_theta(theta)
    f0 = call_cost(f, theta)
    noise_abs, calls = evaluation_noise(f, theta, f0, noise)
    calls += 1
    P = theta.size
    est, err, steps = np.zeros(P), np.zeros(P), np.zeros(P)
    base = POLICY["central_step"] if method == "central" else POLICY["richardson_step"]
    e = np.zeros(P)
    for p in range(P):
        h = base * max(abs(theta[p]), 1.0)
        h = (theta[p] + h) - theta[p]            # exactly representable: θ + h − θ == h
        e[p] = 1.0
        est[p], err[p], n, _ = fd_along(f, theta, e, h, method, f0, noise_abs)
        e[p] = 0.0
        steps[p] = h
        calls += n
        if progress is not None:
            progress(p + 1, P)
    return BlackBoxGradient(est, err, steps, method, calls, time.perf_counter() - start)
