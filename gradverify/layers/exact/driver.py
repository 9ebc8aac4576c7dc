"""``exact_layer_gradient``: build a case's graph, certify its balls, find its kinks, assemble the answer."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from gradverify.errors import InputError
from gradverify.layers.case import LayerCase
from gradverify.layers.exact.graph import Build, Forms
from gradverify.layers.exact.layers import BUILDERS, objective
from gradverify.layers.exact.rounding import float64_magnitudes
from gradverify.symbolic.balls import NEGLIGIBLE_BITS, float_above, float_below, float_radius, precision, to_mpmath
from gradverify.symbolic.evaluation import Evaluation
from gradverify.symbolic.interpret import Conditions
from gradverify.symbolic.precision import Assessment, settle

__all__ = ["ExactLayerGradient", "exact_layer_gradient"]

_CHASE_LIMIT = 20_000  # partials up to which a cancelled value jumps at once to the settling precision


@dataclass(frozen=True)
class ExactLayerGradient:
    """The oracle's answer for one layer case.

    Attributes:
        cost: J rounded to float64.
        grads: ∂J/∂input rounded to float64, by input name, shaped like the inputs.
        grads_exact: the balls' midpoints as object arrays of mpmath ``mpf`` (every computed bit).
        radius: per partial, a proven bound on |∂J/∂input − grads_exact| (float64, rounded up).
        magnitudes: per partial, the rounding scale of a float64 engine (``_float64_magnitudes``).
        kinks: True where the case sits on a non-differentiable point of that input (see the module notes).
        kink_messages: one sentence per kink.
        kink_lo, kink_hi: where some point is exactly on a Piecewise boundary, per partial the
            interval holding every one-sided value (float64, rounded outward); None when none is.
        digits: the fewest certified digits over J and every partial not settled below 2^-1100.
        bits: the binary precision of the reported values.
        backend: ``"symengine"`` or ``"sympy"``.
        notes: remarks (precision raised, values settled below float64's range).
        seconds: wall-clock time.
    """

    cost: float
    grads: dict[str, np.ndarray]
    grads_exact: dict[str, np.ndarray]
    radius: dict[str, np.ndarray]
    magnitudes: dict[str, np.ndarray]
    kinks: dict[str, np.ndarray]
    kink_messages: tuple[str, ...]
    digits: int
    bits: int
    backend: str
    cost_radius: float = 0.0
    kink_lo: dict[str, np.ndarray] | None = None
    kink_hi: dict[str, np.ndarray] | None = None
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    numbers: str = field(default="arb", repr=False)

    def __repr__(self) -> str:
        n = sum(g.size for g in self.grads.values())
        return (f"ExactLayerGradient(cost={self.cost!r}, {n} partials, {self.digits} digits, backend={self.backend}, "
                f"kinks={len(self.kink_messages)}, {self.seconds:.3g} s)")


# ---- kinks, read from the exact float64 data ------------------------------------------------------------

def _kinks(case: LayerCase) -> tuple[dict[str, np.ndarray], list[str]]:
    flags = {n: np.zeros(s, bool) for n, s in case.layout()}
    msgs: list[str] = []
    x = case.arrays.get("x")
    if case.name == "relu":
        flags["x"] = x == 0
        msgs += [f"x[{','.join(map(str, i))}] is exactly 0 at a ReLU (kink): its partial uses relu'(0) = 0" for i in zip(*np.nonzero(x == 0))]
    elif case.name == "max_pool":
        s = case.settings
        ph, pw, st = int(s["pool_height"]), int(s["pool_width"]), int(s["stride"])
        for i in range(1 + (x.shape[2] - ph) // st):
            for j in range(1 + (x.shape[3] - pw) // st):
                win = x[:, :, i * st:i * st + ph, j * st:j * st + pw]
                top = win == win.max(axis=(2, 3), keepdims=True)
                tied = top.sum(axis=(2, 3)) > 1
                for n, c in zip(*np.nonzero(tied)):
                    flags["x"][n, c, i * st:i * st + ph, j * st:j * st + pw] |= top[n, c]
                    msgs.append(f"pooling window ({n},{c},{i},{j}) has its maximum {win[n, c].max():g} more than once (kink): "
                                "the gradient goes to the first one")
    elif case.name == "svm_loss":
        y = case.arrays["y"]
        for n, j in np.ndindex(*x.shape):
            if j != y[n] and Fraction(float(x[n, j])) - Fraction(float(x[n, y[n]])) + 1 == 0:
                flags["x"][n, j] = flags["x"][n, y[n]] = True
                msgs.append(f"margin x[{n},{j}] − x[{n},{y[n]}] + 1 is exactly 0 (kink): the hinge passes no gradient there")
    return flags, msgs


# ---- the driver ------------------------------------------------------------------------------------

def _check(case: LayerCase, digits: int) -> None:
    if not isinstance(case, LayerCase):
        raise InputError("exact_layer_gradient needs a LayerCase", received=type(case).__name__,
                         fix="build one with gradverify.layers.random_case")
    if not isinstance(digits, int) or isinstance(digits, bool) or not 16 <= digits <= 2000:
        raise InputError("digits must be an integer from 16 to 2000", received=repr(digits), fix="30 (the default)")


def _split(case: LayerCase, flat) -> dict[str, np.ndarray]:
    out, start = {}, 0
    for name, shape in case.layout():
        k = math.prod(shape)
        out[name] = np.asarray(flat[start:start + k]).reshape(shape)
        start += k
    return out


def _certification(verdict: Assessment, digits: int, bits: int) -> tuple[int, list[str]]:
    """The digits every unsettled value certifies, and notes on the values short of ``digits``."""
    got, settled = verdict.digits, verdict.settled
    live = got[~settled]
    worst = float(live.min()) if live.size else math.inf
    summary = math.floor(bits * math.log10(2)) if math.isinf(worst) else int(min(bits * math.log10(2), math.floor(worst)))
    notes = []
    if settled[1:].any():
        notes.append(f"{int(settled[1:].sum())} partial(s) lie below 2^-{NEGLIGIBLE_BITS} (0.0 in float64, settled for any "
                     "float64 comparison) but are not certified to full precision; not counted in digits")
    short = (got < digits) & ~settled
    if short.any():
        notes.append(f"{int(short.sum())} value(s) certified to only {got[short].min():.1f} digits at {bits} bits (asked for {digits})")
    return max(0, summary), notes


def exact_layer_gradient(case: LayerCase, *, digits: int = 30, backend: str = "auto",
                         progress: Callable[[int, int], None] | None = None) -> ExactLayerGradient:
    """J and every ∂J/∂input of a layer case, by symbolic differentiation, certified to ``digits`` digits.

    Args:
        case: the layer case (arrays, settings, upstream gradients).
        digits: significant decimal digits wanted (16 to 2000).
        backend: ``"symengine"``, ``"sympy"`` or ``"auto"``.
        progress: called as ``progress(done, total)`` per evaluation pass.

    Returns:
        An ``ExactLayerGradient``.

    Raises:
        InputError: not a case, bad digits, or an unknown backend.
    """
    t0 = time.perf_counter()
    _check(case, digits)
    forms = Forms(backend)
    b = Build(case, forms)
    J = objective(b, BUILDERS[case.name](b))
    params = np.concatenate([b.ids[n].reshape(-1) for n in case.layer.inputs])
    last: dict = {}
    passes = [0]

    def run(bits: int, hull: bool) -> Evaluation:
        conditions = Conditions(hull=hull)
        with precision(bits):
            values = b.g.forward(conditions)
            adjoint = b.g.gradient(values, J, conditions)
        if not hull:
            last["values"] = values
        passes[0] += 1
        if progress:
            progress(passes[0], passes[0] + 1)
        return Evaluation(values[J], adjoint[params], [], conditions, bits)

    notes: list[str] = []

    def on_retry(old: int, new: int, verdict: Assessment) -> None:
        notes.append(f"{old} bits left {verdict.short} value(s) short of {digits} certified digits; redone at {new} bits")

    ev, verdict = settle(run, digits, jump=case.size <= _CHASE_LIMIT, on_retry=on_retry)
    hull = run(ev.bits, True) if ev.conditions.boundaries else None
    summary, more = _certification(verdict, digits, ev.bits)
    if ev.conditions.undecided:
        more.append(f"{ev.conditions.undecided} Piecewise condition(s) could not be decided at {ev.bits} bits: "
                    "those values enclose both sides")
    with precision(64):
        mags = float64_magnitudes(b, last["values"], J, Conditions())[params]
    flags, kink_msgs = _kinks(case)
    exact = np.empty(len(params), dtype=object)
    exact[:] = [to_mpmath(x) for x in ev.grads]
    return ExactLayerGradient(
        cost=float(ev.cost), grads=_split(case, np.array([float(x) for x in ev.grads], dtype=np.float64)),
        grads_exact=_split(case, exact), radius=_split(case, np.array([float_radius(x) for x in ev.grads])),
        magnitudes=_split(case, mags), kinks=flags, kink_messages=tuple(kink_msgs), digits=summary, bits=ev.bits,
        backend=forms.name, cost_radius=float_radius(ev.cost),
        kink_lo=_split(case, np.array([float_below(x) for x in hull.grads])) if hull is not None else None,
        kink_hi=_split(case, np.array([float_above(x) for x in hull.grads])) if hull is not None else None,
        notes=tuple(notes + more), seconds=time.perf_counter() - t0)
