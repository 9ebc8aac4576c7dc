"""The tolerance policy, in one place: how much error each kind of gradient source may carry.

A verdict is never a bare ``allclose``: each source's discrepancy from the referee is divided by its
**error budget** per parameter, and a ratio ≤ 1 passes.

- A float64 engine (backprop, a candidate): ``FLOAT64_ULPS`` ulps times a running bound on the
  magnitudes summed in each partial (``term_magnitudes``), times log₂ of the longest sum. The bound
  is computed from forward values only; the activations' slopes are measured by secants of the
  forward functions, so no derivative rule is shared with any source.
- Its cost: an ulp of the magnitudes a cross-entropy subtracts (``cost_magnitude``).
- Finite differences bring their own error estimate, and the exact oracle its rounding to float64
  (both in ``compare``'s source wrappers).

Calibrated against an 80-bit long-double run of the engine over every activation × output ×
regularization at scales 0.3 to 100: the largest error was under 5 % of the budget, while a
numerical gradient's 1e-9 relative error exceeds it by orders of magnitude.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from gradverify.forward import pre_activations
from gradverify.functions import activation
from gradverify.params import flatten
from gradverify.spec import Problem

__all__ = ["EPS", "TINY", "FLOAT64_ULPS", "PRECISIONS", "Precision", "term_magnitudes", "float64_budget", "engine_budget",
           "cost_magnitude", "cost_budget", "candidate_cost_budget"]

EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).tiny)

Precision = Literal["float64", "float32"]
#: machine epsilon and smallest normal number of each precision an engine may compute in
PRECISIONS: dict[str, tuple[float, float]] = {
    "float64": (EPS, TINY),
    "float32": (float(np.finfo(np.float32).eps), float(np.finfo(np.float32).tiny)),
}

#: ulps of the summed magnitudes a correct float64 engine may be off by (see the module docstring)
FLOAT64_ULPS = 2.0


def _slopes(act: str, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on |f′(a)| and |f″(a)| measured from the forward function alone (secants).

    The budget needs only their size, so two secants on each side, with a safety factor, do;
    no derivative rule is involved. Saturated units get slopes near 0, which is what keeps the
    budget tight there. Around a ReLU kink the curvature bound is large, as it should be.
    """
    f = activation(act)
    d = 1e-4 * (1.0 + np.abs(A))
    f0, fp, fm = f(A), f(A + d), f(A - d)
    slope = 1.5 * np.maximum(np.abs(fp - f0), np.abs(f0 - fm)) / d + 1e-12
    curv = 1.5 * np.abs(fp - 2 * f0 + fm) / (d * d) + 1e-6
    return slope, curv


def term_magnitudes(problem: Problem) -> np.ndarray:
    """For every partial, a bound on the rounding error of a float64 backprop, in units of eps (flat).

    A first-order running error analysis of the vectorized pass, from forward values only:

    - forward: F⁽ᵏ⁾, the error of A⁽ᵏ⁾, gathers the magnitudes |H⁽ᵏ⁻¹⁾||Wₖ|ᵀ + |bₖ| summed in
      the product plus the error of H⁽ᵏ⁻¹⁾ carried through |Wₖ|; H⁽ᵏ⁾ = f(A⁽ᵏ⁾) carries it with
      the slope |f′| and adds its own rounding;
    - backward: the error term Δ is bounded by D (|h| + |y| over m at the output, |a| + |y| for
      squared error; then D|Wₖ|∘|f′|) and its error G gathers the magnitudes summed in each
      product, the rounding of f′ and the forward error seen through the curvature |f″|;
    - each partial's bound is the magnitudes summed in ΔᵀH plus the errors that Δ and H carry;
      the regularization adds 2c|θ|.

    Slopes and curvatures come from ``_slopes`` (secants of the forward function).
    """
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):  # overflowing values give an infinite, honest bound
        return _term_magnitudes(problem)


def _term_magnitudes(problem: Problem) -> np.ndarray:
    net, params, X, Y = problem.network, problem.params, problem.X, problem.Y
    m = X.shape[0]
    absW = {k: np.abs(params[f"W{k}"]) for k in range(1, net.depth + 1)}
    Hs, Fh = [np.abs(X)], [np.zeros_like(X)]  # |H⁽ᵏ⁾| and the error bound of H⁽ᵏ⁾
    Fa, slopes, curvs = {}, {}, {}
    H = X
    for k in range(1, net.depth + 1):
        A = H @ params[f"W{k}"].T + params[f"b{k}"]
        Fa[k] = (Hs[-1] + Fh[-1]) @ absW[k].T + np.abs(params[f"b{k}"])
        if k == net.depth:
            break
        act = net.activations[k - 1]
        slopes[k], curvs[k] = _slopes(act, A)
        H = activation(act)(A)
        Hs.append(np.abs(H))
        Fh.append(slopes[k] * Fa[k] + np.abs(H))
    rows_y = np.abs(Y).sum(axis=1, keepdims=True)
    if net.output == "sigmoid":
        out = activation("sigmoid")(A)
        out_slope = _slopes("sigmoid", A)[0]
    elif net.output == "softmax":
        E = np.exp(A - A.max(axis=1, keepdims=True))
        out = E / E.sum(axis=1, keepdims=True) * rows_y
        out_slope = np.ones_like(A) * (1 + rows_y)
    else:
        out, out_slope = np.abs(A), np.ones_like(A)
    D = (np.abs(out) + np.abs(Y)) / m                 # |Δ⁽ᴸ⁾|
    G = D + out_slope * Fa[net.depth] / m              # its error: rounding + forward error
    mags: dict[str, np.ndarray] = {}
    for k in range(net.depth, 0, -1):
        mags[f"W{k}"] = (D + G).T @ Hs[k - 1] + D.T @ Fh[k - 1]
        mags[f"b{k}"] = (D + G).sum(axis=0)
        if k > 1:
            DW = D @ absW[k]
            # f′ evaluated from h (σ′ = h(1 − h), tanh′ = 1 − h²) has an absolute error of an ulp
            # of 1, however small f′ is: saturated units keep that floor.
            G = (G @ absW[k] + DW) * slopes[k - 1] + DW * (1 + slopes[k - 1] + curvs[k - 1] * Fa[k - 1])
            D = DW * slopes[k - 1]
    if net.lam:
        c = net.reg_coefficient(m)
        for name, _ in net.param_shapes:
            if net.is_regularized(name):
                mags[name] = mags[name] + 2 * c * np.abs(params[name])
    return flatten(mags, net)


def engine_budget(problem: Problem, precision: Precision = "float64", magnitudes: np.ndarray | None = None) -> np.ndarray:
    """The error budget of a correct engine computing in ``precision``, per parameter (flat, canonical order).

    ``FLOAT64_ULPS`` units of that precision's epsilon times the bound from ``term_magnitudes``,
    times log₂ of the longest sum (blocked and pairwise summation make rounding grow like log n,
    not n), plus the precision's smallest normal number: below it, gradual underflow keeps only
    an absolute accuracy. Single precision uses the same analysis with its own epsilon: the
    inputs' rounding to float32 is one more rounding of the same size as each product's.
    """
    eps, tiny = _precision(precision)
    mags = term_magnitudes(problem) if magnitudes is None else magnitudes
    length = 1 + math.log2(max(problem.m, *problem.network.sizes))
    with np.errstate(over="ignore", invalid="ignore"):
        return FLOAT64_ULPS * eps * length * mags + tiny


def float64_budget(problem: Problem, magnitudes: np.ndarray | None = None) -> np.ndarray:
    """``engine_budget`` in float64: the budget of a correct float64 engine such as backprop."""
    return engine_budget(problem, "float64", magnitudes)


def _precision(precision: str) -> tuple[float, float]:
    if precision not in PRECISIONS:
        from gradverify.errors import InputError

        raise InputError(f"Unknown precision {precision!r}", expected="float64 or float32", received=repr(precision),
                         fix="say in which precision the candidate computes")
    return PRECISIONS[precision]


def cost_magnitude(problem: Problem) -> float:
    """The magnitudes a float64 engine adds up in J (data term and penalty), from forward values.

    Cross-entropies subtract quantities of the size of the pre-activations (y·a, the
    log-sum-exp), so a correct engine's cost carries an error of an ulp of those, not of J.
    """
    net = problem.network
    with np.errstate(over="ignore", invalid="ignore"):
        return _cost_magnitude(problem, net, pre_activations(net, problem.params, problem.X))


def _cost_magnitude(problem: Problem, net, As: list) -> float:
    L = net.depth
    H = problem.X if L == 1 else activation(net.activations[-1])(As[-2])
    # a⁽ᴸ⁾ is a sum of the terms Wᴸᵢⱼ·hⱼ and bᴸᵢ: where they cancel (large hidden values, a small
    # output) its rounding is an ulp of their absolute sum, not of a⁽ᴸ⁾, and so is the cost's.
    A = np.abs(H) @ np.abs(problem.params[f"W{L}"]).T + np.abs(problem.params[f"b{L}"])
    absY = np.abs(problem.Y)
    if net.output == "identity":
        data = float(np.sum((A + absY) ** 2)) / 2
    else:
        lse = np.max(A, axis=1, keepdims=True) + math.log(max(A.shape[1], 2))
        data = float(np.sum((absY + 1) * (A + lse)))
    penalty = 0.0
    if net.lam:
        c = net.reg_coefficient(problem.m)
        penalty = c * sum(float(np.sum(p * p)) for n, p in problem.params.items() if net.is_regularized(n))
    return data / problem.m + penalty


def cost_budget(problem: Problem, precision: Precision = "float64") -> float:
    """The error budget of a correct engine's cost J, from the problem alone.

    Never from the judged cost itself: a wildly wrong cost must not widen its own budget.
    ``cost_magnitude`` bounds |J| and every term a stable engine adds up.
    """
    return _cost_budget(problem, precision, pre_activations(problem.network, problem.params, problem.X))


def _cost_budget(problem: Problem, precision: Precision, As: list) -> float:
    eps, tiny = _precision(precision)
    net = problem.network
    length = net.depth + 1 + math.log2(problem.m * net.sizes[-1] + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        return FLOAT64_ULPS * eps * length * _cost_magnitude(problem, net, As) + tiny


def candidate_cost_budget(problem: Problem, precision: Precision = "float64") -> tuple[float, float, float]:
    """A candidate's cost budget: a correct engine's, plus what the textbook cost may lose by itself.

    The textbook −y·log σ(a) − (1−y)·log(1 − σ(a)): σ(a) near 1 is rounded to an ulp of 1, so
    1 − σ(a) ≈ e^(−a) keeps only an absolute error of about eps and log(1 − σ(a)) is off by about
    eps·(1 + eᵃ) (1e-7 at a = 20, 2e-3 at a = 30). That is the formula's, not the student's, and the
    lecture teaches it (a stable log-sigmoid needs none, and gradverify's backprop gets none). Only
    sigmoid outputs: a softmax's log of a ratio of exponentials loses nothing comparable.

    Returns:
        (budget with the allowance, the allowance, the largest output pre-activation where a term
        cancels); the allowance and that pre-activation are 0 when nothing cancels.
    """
    net = problem.network
    As = pre_activations(net, problem.params, problem.X)  # one forward pass for both parts
    base = _cost_budget(problem, precision, As)
    if net.output != "sigmoid":
        return base, 0.0, 0.0
    eps, _ = _precision(precision)
    A = As[-1]
    # The (1 − y)·log(1 − σ(a)) terms (y·log σ(a) is accurate for every a), where the textbook cost
    # is finite: beyond a = log(2/eps) σ(a) rounds to 1 and it is log(0), so a candidate that returns
    # a finite cost there did not use it and gets no allowance (nor an infinite budget).
    weight = np.where(A < math.log(2 / eps), np.abs(1 - problem.Y), 0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        terms = weight * FLOAT64_ULPS * eps * (1 + np.exp(np.minimum(np.maximum(A, 0), math.log(2 / eps))))
        allowance = float(np.sum(terms)) / problem.m
    cancels = A[weight > 0]
    return base + allowance, allowance, float(np.max(cancels)) if cancels.size else 0.0
