"""The rounding scale of a float64 engine, read off the oracle's own templates (the float64 budgets' base).

A first-order running error analysis: a forward sweep bounds every node's rounding (``_forward_errors``)
and a reverse sweep sums, over every path to J, the products of the local partials' magnitudes
(their terms in absolute value, plus what the inputs' forward errors cost through second
derivatives). It runs on Arb numbers at 64 bits, where exp(700)·e^-700 does not overflow into inf·0.
"""

from __future__ import annotations

import numpy as np
from flint import arb

from gradverify.layers.exact.graph import Build
from gradverify.symbolic.graph import Template
from gradverify.symbolic.interpret import Conditions, evaluate

__all__ = ["float64_magnitudes"]

# σ′ and tanh′ are computed by engines from the output h as h(1 − h) and 1 − h²: their absolute
# rounding is an ulp of h (of 1), however small the derivative is (saturated units).
_OUTPUT_FORM_FLOOR = {"sigmoid": lambda h: h * (1 + h), "tanh": lambda h: 1 + 2 * h * h}
_SWEEP_ROWS = 1 << 15
# The analysis runs on Arb numbers too (at 64 bits): its products of exp(700)-sized and e^-700-sized
# factors would overflow float64 into inf·0. Every magnitude is an exact upper bound of an |x|.
_UP = np.frompyfunc(lambda x: x.abs_upper() if isinstance(x, arb) else arb(abs(float(x))), 1, 1)
_LARGER = np.frompyfunc(lambda p, q: p if p > q else q, 2, 1)
_TO_FLOAT = np.frompyfunc(float, 1, 1)


def _up(v, n: int) -> np.ndarray:
    """|v| bounded above, as an object array of ``n`` balls (a scalar is broadcast)."""
    return _UP(v) if isinstance(v, np.ndarray) else np.full(n, _UP(v), dtype=object)


def _magnitude(e, env: dict, memo: dict, mags: dict, conditions: Conditions, n: int) -> np.ndarray:
    """The value of ``e`` with every sum taken over absolute values: what its rounding scales with.

    Sums add their terms' magnitudes, products multiply them, positive integer powers raise them;
    any other node (a symbol, a number, exp, log, tanh, a Piecewise) counts with its absolute value.
    """
    if e in mags:  # keyed by the expression: SymEngine hands out fresh wrappers for e.args, so an id() could repeat
        return mags[e]
    kind = type(e).__name__
    if kind == "Add":
        out = sum(_magnitude(t, env, memo, mags, conditions, n) for t in e.args)
    elif kind == "Mul":
        out = np.full(n, arb(1), dtype=object)
        for t in e.args:
            out = out * _magnitude(t, env, memo, mags, conditions, n)
    elif kind == "Pow" and getattr(e.args[1], "is_Integer", False) and int(e.args[1]) > 0:
        out = _magnitude(e.args[0], env, memo, mags, conditions, n) ** int(e.args[1])
    else:
        out = _up(evaluate(e, env, memo, conditions), n)
    mags[e] = out
    return out


def _second(b: Build, template: Template) -> list[list[tuple[int, object]]]:
    """Per input j, the nonzero ∂²expr/∂uⱼ∂uₖ (by ``diff`` of the partial), cached per template."""
    key = id(template)  # templates live in the build's cache for its whole life
    if key not in b.second:
        rows = []
        for j in range(len(template.inputs)):
            pj = template.partial(j)
            free = pj.free_symbols
            pairs = [(k, pj.diff(u)) for k, u in enumerate(template.inputs) if u in free]
            rows.append([(k, d) for k, d in pairs if d != 0])
        b.second[key] = rows
    return b.second[key]


def _rows(op):
    for start in range(0, len(op.out), _SWEEP_ROWS):
        yield slice(start, start + _SWEEP_ROWS)


def _zeros(n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    out[:] = [arb(0)] * n
    return out


def _forward_errors(b: Build, values: np.ndarray, conditions: Conditions) -> tuple[np.ndarray, np.ndarray]:
    """Per node, F: a float64 evaluation's absolute rounding error is about eps·F (and where F ≠ 0).

    Leaves: F = |value| (a relative perturbation of eps, which any reformulation of the forward —
    a shift by the maximum, x − μ computed another way — may cost). Templates: F(out) = (its terms
    summed in absolute value) + Σⱼ |∂out/∂uⱼ|·F(uⱼ): a first-order running error analysis, the
    templates' own partials carrying the inputs' errors forward.
    """
    F, nonzero = _zeros(b.g.n), np.zeros(b.g.n, dtype=bool)
    for ids, vals in b.leaf_values:  # an input is known to an engine only as well as its float64 value
        F[ids] = [arb(abs(float(v))) for v in vals]
        nonzero[ids] = vals != 0
    for op in b.g.ops:
        t = op.template
        for rows in _rows(op):
            count = len(op.out[rows])
            env = {sym: values[op.inputs[rows, j]] for j, sym in enumerate(t.inputs)}
            memo: dict = {}
            err = _magnitude(t.expr, env, memo, {}, conditions, count)
            for j in range(len(t.inputs)):
                if nonzero[op.inputs[rows, j]].any():
                    err = err + _up(evaluate(t.partial(j), env, memo, conditions), count) * F[op.inputs[rows, j]]
            F[op.out[rows]] = err
            nonzero[op.out[rows]] = True
    return F, nonzero


def float64_magnitudes(b: Build, values: np.ndarray, J: int, conditions: Conditions) -> np.ndarray:
    """Per node, the rounding scale of ∂J/∂node in a float64 engine, in units of eps (float64; inf beyond it).

    Σ over paths to J of Π (local magnitudes), where a local partial's magnitude is its terms
    summed in absolute value (no sum of float64 data counts as exact: float64 rounds every step)
    plus the error it inherits from its inputs' forward rounding, Σₖ |∂²out/∂uⱼ∂uₖ|·F(uₖ)
    (``_forward_errors``); σ′ and tanh′ are floored by ``_OUTPUT_FORM_FLOOR``.
    """
    F, F_nonzero = _forward_errors(b, values, conditions)
    scale, reached = _zeros(b.g.n), np.zeros(b.g.n, dtype=bool)
    scale[J], reached[J] = arb(1), True
    constant = np.zeros(b.g.n, dtype=bool)
    for ids in b.constants:
        constant[ids] = True
    for op in reversed(b.g.ops):
        t = op.template
        floor, second = _OUTPUT_FORM_FLOOR.get(t.name), _second(b, t)
        for rows in _rows(op):
            if not reached[op.out[rows]].any():
                continue
            seed, count = scale[op.out[rows]], len(op.out[rows])
            env = {sym: values[op.inputs[rows, j]] for j, sym in enumerate(t.inputs)}
            memo: dict = {}
            mags: dict = {}
            for j in range(len(t.inputs)):
                targets = op.inputs[rows, j]
                if constant[targets].all():
                    continue
                m = _magnitude(t.partial(j), env, memo, mags, conditions, count)
                for k, d2 in second[j]:
                    if F_nonzero[op.inputs[rows, k]].any():
                        m = m + _up(evaluate(d2, env, memo, conditions), count) * F[op.inputs[rows, k]]
                if floor is not None:
                    m = _LARGER(m, floor(_up(values[op.out[rows]], count)))
                np.add.at(scale, targets, seed * m)
                reached[targets] = True
    with np.errstate(over="ignore"):
        return np.asarray(_TO_FLOAT(scale), dtype=np.float64)


