"""The tolerance policy of finite differences, in one place: steps, round-off units, safety factors.

Every number below is part of an error bar; a verdict divides discrepancies by it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EPS", "ETA", "SATURATION", "METHODS", "ANALYTIC", "SATURATING", "POLICY", "RICH_RO"]

EPS = float(np.finfo(np.float64).eps)
# The absolute floor of float64 rounding: below 2^-1022 the spacing stops shrinking (gradual
# underflow), so a result of any size is off by up to half of 2^-1074, however small it is.
ETA = float(np.finfo(np.float64).smallest_subnormal)
# Beyond this |a|, e^(−|a|) is 0 in float64: a saturated unit's slope has underflowed, so the
# rounding of a no longer moves it relatively (what is left is absolute, under ETA).
SATURATION = 745.2
METHODS = ("auto", "central", "richardson", "complex-step")
ANALYTIC = frozenset({"sigmoid", "tanh", "softplus", "identity"})   # activations complex step can take
# units (hidden activations and outputs) whose slope decays like e^(−|a|): a rounding eps·|a| of a
# moves the slope by eps·|a| relatively (an identity unit's slope is exactly 1; ReLU's 0 or 1)
SATURATING = frozenset({"sigmoid", "tanh", "softplus", "softmax"})

POLICY = {
    "central_step": EPS ** (1 / 3),      # h = ∛eps·max(|θ|,1): balances h²|J‴|/6 against eps·S/h
    "richardson_step": EPS ** (1 / 5),   # h = eps^(1/5)·max(|θ|,1): the level difference (≈h⁴) meets eps·S/h
    "complex_step": 1e-20,               # any tiny h: Im J(θ+ih)/h has truncation h²|J‴|/6 ≈ 1e−40
    "complex_reach": 1e-10,              # … but never so large that Im a = h·u passes 1e−10 (|θ|·|u| ≫ 1e10):
                                         # the expansion holds near the real axis only
    "roundoff_units": 2.0,               # each evaluation of J is trusted to 2·eps·S (S = Σ|terms|)
    "truncation_safety": 2.0,            # truncation estimates are themselves estimates: ×2
    "complex_units": 8.0,                # complex step: 8·eps per layer crossed × the terms' magnitude
    "chunk_elements": 1 << 14,           # elements of the largest batched array (bounds memory, fits L1/L2)
    "floor_ops": 16,                     # roundings (ETA each) charged per recomputed value: the absolute floor
}

# Richardson's estimate is (64·D(h) − 20·D(2h) + D(4h))/45; D(kh) carries round-off ro·S/(kh)
RICH_RO = 64 / 45 + 20 / 90 + 1 / 180
