"""The tolerance policy of finite differences, in one place: steps, round-off units, safety factors.

Every number below is part of an error bar; a verdict divides discrepancies by it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EPS", "METHODS", "ANALYTIC", "POLICY", "RICH_RO"]

EPS = float(np.finfo(np.float64).eps)
METHODS = ("auto", "central", "richardson", "complex-step")
ANALYTIC = frozenset({"sigmoid", "tanh", "softplus", "identity"})   # activations complex step can take

POLICY = {
    "central_step": EPS ** (1 / 3),      # h = ∛eps·max(|θ|,1): balances h²|J‴|/6 against eps·S/h
    "richardson_step": EPS ** (1 / 5),   # h = eps^(1/5)·max(|θ|,1): the level difference (≈h⁴) meets eps·S/h
    "complex_step": 1e-20,               # any tiny h: Im J(θ+ih)/h has truncation h²|J‴|/6 ≈ 1e−40
    "roundoff_units": 2.0,               # each evaluation of J is trusted to 2·eps·S (S = Σ|terms|)
    "truncation_safety": 2.0,            # truncation estimates are themselves estimates: ×2
    "complex_units": 8.0,                # complex step: 8·eps per layer crossed × the terms' magnitude
    "chunk_elements": 1 << 14,           # elements of the largest batched array (bounds memory, fits L1/L2)
}

# Richardson's estimate is (64·D(h) − 20·D(2h) + D(4h))/45; D(kh) carries round-off ro·S/(kh)
RICH_RO = 64 / 45 + 20 / 90 + 1 / 180
