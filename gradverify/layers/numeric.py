"""Numerical gradients of a layer case from its forward pass alone, every estimate with an error bar.

The third, independent source for layers: it evaluates J = Σ dout ⊙ out (``layers.forward``) and
nothing else. Many perturbed copies are evaluated in one call (the forwards broadcast over a
leading probe axis), one array entry perturbed per copy.

Estimators:

``"complex-step"`` (the default for analytic layers)
    Im J(θ + ih·eₚ) / h with h = 1e−20·max(|θₚ|, 1): no subtraction, so no step-size trade-off;
    exact up to the rounding of the forward arithmetic.
``"central"`` (the default for ReLU, max pooling and the hinge loss)
    (J(θ + h) − J(θ − h)) / 2h with h = ∛eps·max(|θₚ|, 1), rounded so that θ ± h − θ = ±h exactly;
    J(θ + 2h) gives a third difference for the truncation bound h²|J‴|/6 (×2 for safety).

Round-off is *measured*, not guessed: every estimate is computed a second time with the same
steps in numpy's extended precision (``longdouble``, 64-bit mantissa on x86), and the difference
of the two results is the float64 estimate's rounding error up to the extended estimate's own,
bounded by ``_EXTENDED_ULPS`` extended ulps (of the estimate for complex steps, of J's terms over h
for central differences). The error bar is 2·|difference| + that bound + 4 ulps (+ the
truncation bound for central differences). Blind spot: a forward value that float64 and extended
precision both round to the same number (an LSTM cell f·c + i·g that cancels to exactly 0) is not
seen; the judge adds the float64 rounding budget to this source for that reason. Where numpy has no
extended type (``longdouble`` is float64, e.g. on ARM) the bar falls back to
``_FALLBACK_ULPS`` ulps of the largest estimate of the array, a deliberately loose bound; the
result says which was used.

Kinks: the non-analytic layers report which linear piece every input is on (``forward.pattern``);
where the pattern at θ ± h differs from the pattern at θ, the entry is marked in ``kinks``, its
estimate is the mean of the one-sided differences and its error bar covers both of them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradverify.errors import InputError
from gradverify.layers import forward as fwd
from gradverify.layers.case import LayerCase

__all__ = ["METHODS", "NumericLayerGradient", "numeric_layer_gradient", "EXTENDED_PRECISION"]

EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).tiny)
METHODS = ("auto", "complex-step", "central")
#: numpy's longdouble is wider than float64 here (x86: 80-bit extended): round-off can be measured
EXTENDED_PRECISION = bool(np.finfo(np.longdouble).eps < EPS / 100)
_CENTRAL_STEP = EPS ** (1 / 3)
_COMPLEX_STEP = 1e-20
_TRUNCATION_SAFETY = 2.0
_FALLBACK_ULPS = 1e4
EPS80 = float(np.finfo(np.longdouble).eps)
_EXTENDED_ULPS = 64.0  # the extended-precision estimate is trusted to 64 of its own ulps (of J's terms, for central differences)
_CHUNK_ELEMENTS = 1 << 16  # probes × (array + output elements) per call: bounds memory, keeps arrays in cache


@dataclass(frozen=True, eq=False)
class NumericLayerGradient:
    """Finite-difference partials of J for every differentiable input of a case.

    Attributes:
        grads: the estimates, by input name, shaped like the inputs.
        errors: the error bar of every estimate (≥ 0).
        kinks: True where the stencil crosses a kink (ReLU at 0, a pooling tie, a hinge at 0).
        method: ``"complex-step"`` or ``"central"``.
        roundoff: how the round-off part of the bars was obtained (``"measured"`` or ``"fallback"``).
        n_evals: forward evaluations, counting each perturbed copy once.
        seconds: wall-clock time.
    """

    grads: dict[str, np.ndarray]
    errors: dict[str, np.ndarray]
    kinks: dict[str, np.ndarray]
    method: str
    roundoff: str
    n_evals: int
    seconds: float

    @property
    def n_kinks(self) -> int:
        return int(sum(np.count_nonzero(k) for k in self.kinks.values()))

    def __repr__(self) -> str:
        worst = max((float(e.max()) for e in self.errors.values() if e.size), default=0.0)
        return (f"NumericLayerGradient({self.method}, round-off {self.roundoff}, max error bar {worst:.2g}, "
                f"{self.n_kinks} kinked, {self.n_evals} evaluations, {self.seconds:.3g} s)")


class _Evaluator:
    """J of P perturbed copies of one input array, in a given precision."""

    def __init__(self, case: LayerCase, real_dtype):
        self.case, self.real = case, real_dtype
        self.base = {}
        for name, a in case.arrays.items():
            if name in case.layer.inputs:
                self.base[name] = a.astype(real_dtype)[None]
            else:
                self.base[name] = a.astype(real_dtype) if a.dtype == np.float64 else a
        self.upstream = {k: v.astype(real_dtype) for k, v in case.upstream.items()}

    def _arrays(self, name: str, idx: np.ndarray, t: np.ndarray, dtype):
        arrays = dict(self.base)
        x = np.repeat(self.base[name].astype(dtype), len(idx), axis=0)
        flat = x.reshape(len(idx), -1)
        flat[np.arange(len(idx)), idx] += t
        arrays[name] = x
        return arrays

    def J(self, name: str, idx: np.ndarray, t: np.ndarray, dtype=None, *, terms: bool = False) -> np.ndarray:
        c = self.case
        return fwd.objective(c.name, self._arrays(name, idx, t, dtype or self.real), c.settings, c.dims, self.upstream, terms=terms)

    def pattern(self, name: str, idx: np.ndarray, t: np.ndarray) -> np.ndarray | None:
        c = self.case
        return fwd.pattern(c.name, self._arrays(name, idx, t, self.real), c.settings, c.dims)


def _resolve(method: str, analytic: bool) -> str:
    if method not in METHODS:
        raise InputError(f"Unknown finite-difference method {method!r}", expected="one of " + ", ".join(METHODS),
                         received=repr(method), fix='use "auto"')
    if method == "auto":
        return "complex-step" if analytic else "central"
    if method == "complex-step" and not analytic:
        raise InputError("Complex-step differentiation needs an analytic layer", expected='method "central" or "auto"',
                         received='"complex-step" on a layer with kinks', fix='use method="auto" (central differences with kink detection)')
    return method


def _chunk(case: LayerCase) -> int:
    work = sum(a.size for a in case.arrays.values()) + sum(math.prod(s) for s in case.shapes().values())
    return int(min(512, max(1, _CHUNK_ELEMENTS // max(work, 1))))


def _complex_step(ev64: _Evaluator, ev80: _Evaluator | None, name: str, idx: np.ndarray, theta: np.ndarray):
    h = _COMPLEX_STEP * np.maximum(np.abs(theta), 1.0)
    est = ev64.J(name, idx, 1j * h, np.complex128).imag / h
    if ev80 is None:
        return est, None, np.zeros(len(idx), bool), 1
    hl = h.astype(np.longdouble)
    est80 = ev80.J(name, idx, 1j * hl, np.clongdouble).imag / hl
    # the difference is est's rounding error to within the extended estimate's own, bounded by _EXTENDED_ULPS of it
    own = _EXTENDED_ULPS * EPS80 * np.abs(est)
    return est, 2 * np.abs(est - est80.astype(np.float64)) + own, np.zeros(len(idx), bool), 2


def _central(ev64: _Evaluator, ev80: _Evaluator | None, name: str, idx: np.ndarray, theta: np.ndarray, J0: float, J0_80):
    h = _CENTRAL_STEP * np.maximum(np.abs(theta), 1.0)
    h = (theta + h) - theta  # a step the float64 θ + h represents exactly
    jm, jp = ev64.J(name, idx, -h), ev64.J(name, idx, h)
    est = (jp - jm) / (2 * h)
    err = None
    evals = 2
    if ev80 is not None:
        hl = h.astype(np.longdouble)
        lm, lp, l2 = ev80.J(name, idx, -hl), ev80.J(name, idx, hl), ev80.J(name, idx, 2 * hl)
        third = (l2 - 3 * lp + 3 * J0_80 - lm) / hl ** 3
        est80 = (lp - lm) / (2 * hl)
        terms = ev80.J(name, idx, np.zeros(len(idx), np.longdouble), terms=True).astype(np.float64)
        err = (_TRUNCATION_SAFETY * h ** 2 * np.abs(third.astype(np.float64)) / 6
               + 2 * np.abs(est - est80.astype(np.float64))
               + _EXTENDED_ULPS * EPS80 * terms / h)  # the extended estimate's own round-off: its J's rounding over h
        evals += 4
    kinks = np.zeros(len(idx), bool)
    p0 = ev64.pattern(name, idx[:1], np.zeros(1))
    if p0 is not None:
        pm, pp = ev64.pattern(name, idx, -h), ev64.pattern(name, idx, h)
        kinks = np.any(pm != p0, axis=1) | np.any(pp != p0, axis=1)
        if kinks.any():
            left, right = (J0 - jm) / h, (jp - J0) / h
            est = np.where(kinks, 0.5 * (left + right), est)
            spread = np.abs(right - left)
            err = np.where(kinks, (err if err is not None else 0) + spread, err if err is not None else 0)
    return est, err, kinks, evals


def numeric_layer_gradient(case: LayerCase, *, method: str = "auto",
                           progress: Callable[[int, int], None] | None = None) -> NumericLayerGradient:
    """Every partial of J by finite differences of the case's forward pass, with error bars.

    Args:
        case: the layer case.
        method: ``"auto"`` (complex step for analytic layers, else central), ``"complex-step"`` or ``"central"``.
        progress: called as ``progress(done, total)`` in partials.

    Returns:
        A ``NumericLayerGradient``.

    Raises:
        InputError: an unknown method, or complex step asked of a non-analytic layer.
    """
    if not isinstance(case, LayerCase):
        raise InputError("numeric_layer_gradient needs a LayerCase", received=type(case).__name__,
                         fix="build one with gradverify.layers.random_case")
    t0 = time.perf_counter()
    chosen = _resolve(method, case.layer.analytic)
    ev64 = _Evaluator(case, np.float64)
    ev80 = _Evaluator(case, np.longdouble) if EXTENDED_PRECISION else None
    step = _chunk(case)
    total, done, evals = case.size, 0, 0
    grads, errors, kinks = {}, {}, {}
    J0 = J0_80 = None
    if chosen == "central":
        first = case.layer.inputs[0]
        J0 = float(ev64.J(first, np.zeros(1, int), np.zeros(1))[0])
        J0_80 = ev80.J(first, np.zeros(1, int), np.zeros(1, np.longdouble))[0] if ev80 is not None else None
    for name, shape in case.layout():
        theta = case.arrays[name].reshape(-1)
        est, err, kink = np.zeros(theta.size), np.zeros(theta.size), np.zeros(theta.size, bool)
        for start in range(0, theta.size, step):
            idx = np.arange(start, min(theta.size, start + step))
            if chosen == "complex-step":
                e, r, k, n = _complex_step(ev64, ev80, name, idx, theta[idx])
            else:
                e, r, k, n = _central(ev64, ev80, name, idx, theta[idx], J0, J0_80)
            est[idx], kink[idx] = e, k
            err[idx] = r if r is not None else 0.0
            evals += n * len(idx)
            done += len(idx)
            if progress:
                progress(done, total)
        if ev80 is None:  # no extended precision to measure with: a loose, documented bound
            err += _FALLBACK_ULPS * EPS * (np.abs(est) + (np.abs(est).max() if est.size else 0.0))
        err += 4 * np.spacing(np.abs(est)) + TINY
        grads[name], errors[name], kinks[name] = est.reshape(shape), err.reshape(shape), kink.reshape(shape)
    return NumericLayerGradient(grads, errors, kinks, chosen, "measured" if ev80 is not None else "fallback",
                                evals + (2 if chosen == "central" else 0), time.perf_counter() - t0)
