"""The oracle's answer: ``ExactGradient``, every value with its ball, digits and float64 range."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gradverify.symbolic.balls import Range

__all__ = ["ExactGradient", "Range"]


@dataclass(frozen=True)
class ExactGradient:
    """J and every ∂J/∂θ, rounded to float64 and at full precision, each with a proven error bound.

    Arrays are in the Wb layout (``W1, b1, …``), shapes as ``problem.params``.

    Attributes:
        cost: J rounded to float64 (±inf or 0.0 when out of range: see ``cost_range``).
        grads: ∂J/∂θ rounded to float64.
        cost_exact: J as an mpmath ``mpf``: the midpoint of its ball, every computed bit.
        grads_exact: object arrays of mpmath ``mpf``, the midpoints of the partials' balls.
        digits: the fewest certified significant digits over J and every partial, leaving out
            values settled below 2^-1100 (0.0 in float64; named in ``notes``).
        bits: the binary precision of the reported values.
        mode: ``"full"``, ``"scalable"`` or ``"batched"``.
        backend: ``"symengine"`` or ``"sympy"`` (who differentiated).
        kinks: one message per ReLU pre-activation that is exactly 0.
        notes: other remarks: a fallback of mode, a raised precision, values not certified.
        seconds: wall-clock time of the whole computation.
        numbers: the high-precision number type: ``"arb"`` (python-flint ball arithmetic).
        cost_radius: a proven bound on |J − cost_exact| (float64 rounded up; 0.0 when exact).
        cost_digits: significant digits of J the ball certifies (inf when exact, 0 when the
            ball contains 0).
        cost_range: where J's float64 rounding lies (``Range``: NORMAL; ZERO, proven exactly 0;
            SUBNORMAL; UNDERFLOW, proven nonzero but 0.0 in float64; OVERFLOW, ±inf in float64;
            NEGLIGIBLE, 0.0 in float64 and its ball still holds 0, i.e. below 2^-1100 and maybe 0).
        grads_radius: per partial, a proven bound on |∂J/∂θ − grads_exact| (float64, rounded up).
            The float64 ``grads`` differ from ``grads_exact`` by at most half an ulp more.
        grads_digits: per partial, the certified significant digits (float64; inf when exact).
        grads_range: per partial, the ``Range`` code (int8 array) of its float64 rounding.
        kink_lo, kink_hi: where some point is exactly on a Piecewise boundary (a ReLU
            pre-activation at 0), per partial the lower and upper end (float64, rounded outward)
            of an interval holding every one-sided value: any combination of one-sided
            derivatives at the kinks lies inside. Interval arithmetic: where kinks chain (one
            reaches a partial along several paths) the interval may be wider than the set of
            one-sided values, and Arb's 30-bit radii widen an end by up to ~1e-9 of the width.
            For partials no kink reaches, lo and hi enclose ``grads_exact`` tightly. None when
            no value sits on a boundary.
    """

    cost: float
    grads: dict[str, np.ndarray]
    cost_exact: object
    grads_exact: dict[str, np.ndarray]
    digits: int
    bits: int
    mode: str
    backend: str
    kinks: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    numbers: str = field(default="arb", repr=False)
    cost_radius: float = field(default=0.0, repr=False)
    cost_digits: float = field(default=0.0, repr=False)
    cost_range: Range = field(default=Range.NORMAL, repr=False)
    grads_radius: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    grads_digits: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    grads_range: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    kink_lo: dict[str, np.ndarray] | None = field(default=None, repr=False)
    kink_hi: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def flat(self) -> np.ndarray:
        """The float64 partials concatenated in the order of ``params.scalar_names``."""
        return np.concatenate([g.reshape(-1) for g in self.grads.values()])

    def __repr__(self) -> str:
        n = sum(g.size for g in self.grads.values())
        return (f"ExactGradient(cost={self.cost!r}, {n} partials, {self.digits} digits, mode={self.mode}, "
                f"backend={self.backend}, kinks={len(self.kinks)}, {self.seconds:.3g} s)")
