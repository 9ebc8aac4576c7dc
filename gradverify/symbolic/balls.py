"""Ball arithmetic for the oracle: python-flint's ``arb`` numbers and what a ball certifies.

Every value the oracle computes is an ``arb`` ball [mid ± rad] that is proven to contain the exact
value (Arb's rigorous error propagation through +, ×, /, exp, log, tanh and matrix products). From
a ball follow, without any heuristic: the certified significant digits, an upper bound on the
error of the reported midpoint, and where the float64 rounding of the value lies (normal,
subnormal, underflow to 0, overflow to ±inf).

Comparisons are three-valued: a ball that straddles the point of comparison decides nothing
(``UNKNOWN``), a ball that is exactly that point sits on the boundary (``BOUNDARY``).
"""

from __future__ import annotations

import contextlib
import enum
import math
from fractions import Fraction

import mpmath
import numpy as np
from flint import arb, arb_mat, ctx, fmpq

__all__ = ["Range", "Sign", "certified_digits", "classify_range", "entries", "float_above", "float_below", "float_radius",
           "from_fraction", "int_power", "matrix", "precision",
           "sign", "to_mpmath", "union", "NEGLIGIBLE_BITS"]

#: A value whose whole ball lies below 2^-1100 rounds to 0.0 in float64 however it is refined.
NEGLIGIBLE_BITS = 1100
_SMALLEST_NORMAL = 2.2250738585072014e-308


@contextlib.contextmanager
def precision(bits: int, threads: int | None = None):
    """Arithmetic inside rounds to ``bits`` bits (and matrix products use ``threads`` threads)."""
    old_prec, old_threads = ctx.prec, ctx.threads
    ctx.prec = int(bits)
    if threads:
        ctx.threads = threads
    try:
        yield
    finally:
        ctx.prec, ctx.threads = old_prec, old_threads


def int_power(x, n: int):
    """``x**n`` for an integer ``n``, by multiplication (``x`` an ``arb`` or an object array of them).

    python-flint's ``arb.__pow__`` goes through a real power and answers nan for every ball that
    contains 0, even for n = 1 or 2 (0.9.0: ``arb(0, 1e-9)**2`` is nan). Such balls are common:
    any value whose exact answer is 0 but was computed with rounding, e.g. 1 − tanh(z)² of a
    saturated LSTM's cell state z = 0 ± 1e-57. Even powers of such a ball are taken of its
    absolute value, so they stay non-negative.
    """
    if n < 0:
        return arb(1) / int_power(x, -n)
    if n == 0:
        return arb(1)
    base = abs(x) if n % 2 == 0 else x
    result = None
    while True:
        if n & 1:
            result = base if result is None else result * base
        n >>= 1
        if not n:
            return result
        base = base * base


def from_fraction(q: Fraction) -> arb:
    """An exact rational as a ball at the current precision (exact when it fits)."""
    return arb(fmpq(q.numerator, q.denominator))


class Sign(enum.IntEnum):
    """What a ball says about the sign of a value."""

    NEGATIVE = -1
    ZERO = 0  # exactly zero: the ball is the point 0
    POSITIVE = 1
    UNKNOWN = 2  # the ball contains 0 and other points


def sign(x: arb) -> Sign:
    """The certain sign of ``x``, or ``UNKNOWN``."""
    if x > 0:
        return Sign.POSITIVE
    if x < 0:
        return Sign.NEGATIVE
    if x.is_zero():
        return Sign.ZERO
    return Sign.UNKNOWN


def union(a, b):
    """The smallest ball containing both (elementwise on object arrays)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return _UNION(a, b)
    return a.union(b)


_UNION = np.frompyfunc(lambda a, b: a.union(b), 2, 1)


def certified_digits(x: arb) -> float:
    """Significant decimal digits the ball certifies: a lower bound on −log₁₀(rad / min|x|).

    ``inf`` for an exact value (radius 0, including an exact 0); 0 when the ball contains 0.
    Arb's ``rel_accuracy_bits`` is −(top bit of rad − top bit of mid + 1), so rad/|mid| < 2^-bits;
    relative to the smallest |x| in the ball, min|x| = |mid| − rad, one more factor 1 − 2^-bits.
    """
    if x.is_exact():
        return math.inf
    if x.contains(0):
        return 0.0
    bits = x.rel_accuracy_bits()
    if bits < 2:
        return 0.0
    return max(0.0, bits * _LOG10_2 + math.log10(1 - 2.0 ** -bits))


_LOG10_2 = math.log10(2)


def float_radius(x: arb) -> float:
    """The ball's radius rounded up to a float64 (0.0 only for an exact value)."""
    r = x.rad()
    f = float(r)
    if arb(f) < r:  # rounded down: step up one ulp, so the float64 still bounds the error
        f = math.nextafter(f, math.inf)
    return f


class Range(enum.IntEnum):
    """Where the float64 rounding of an exact value lies."""

    NORMAL = 0
    ZERO = 1  # the exact value is 0, proven (the ball is the point 0)
    SUBNORMAL = 2  # rounds into float64's subnormal range: fewer than 53 significant bits
    UNDERFLOW = 3  # proven nonzero (the ball excludes 0), but rounds to ±0.0
    OVERFLOW = 4  # rounds to ±inf
    NEGLIGIBLE = 5  # rounds to ±0.0, and its ball still holds 0: below float64's range, maybe exactly 0


def classify_range(x: arb) -> tuple[float, Range]:
    """The float64 rounding of the ball's midpoint, and which ``Range`` it falls in."""
    if x.is_zero():
        return 0.0, Range.ZERO
    f = float(x)  # the midpoint, rounded to nearest
    if math.isinf(f):
        return f, Range.OVERFLOW
    if f == 0.0:
        return f, Range.NEGLIGIBLE if x.contains(0) else Range.UNDERFLOW
    if abs(f) < _SMALLEST_NORMAL:
        return f, Range.SUBNORMAL
    return f, Range.NORMAL


def to_mpmath(x: arb) -> mpmath.mpf:
    """The ball's midpoint as an mpmath ``mpf``, every bit kept (no rounding)."""
    if not x.is_finite():
        return mpmath.mpf("nan")
    man, exp = x.mid().man_exp()
    return mpmath.mp.make_mpf(mpmath.libmp.from_man_exp(int(man), int(exp)))


def matrix(values) -> arb_mat:
    """An ``arb_mat`` from a 2-D float64 or object (arb) array."""
    values = np.asarray(values)
    return arb_mat(values.tolist()) if values.size else arb_mat(*values.shape)


def entries(mat: arb_mat) -> np.ndarray:
    """An ``arb_mat`` as a 2-D object array of balls."""
    out = np.empty(mat.nrows() * mat.ncols(), dtype=object)
    out[:] = mat.entries()
    return out.reshape(mat.nrows(), mat.ncols())


def float_below(x: arb) -> float:
    """A float64 ≤ every point of the ball (−inf if none is)."""
    low = x.lower()
    f = float(low)
    if not math.isinf(f) and arb(f) > low:
        f = math.nextafter(f, -math.inf)
    return f


def float_above(x: arb) -> float:
    """A float64 ≥ every point of the ball (inf if none is)."""
    return -float_below(-x)
