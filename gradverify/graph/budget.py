"""The budgets of the SymPy check: one tolerance, scaled by condition-aware magnitudes.

A node agrees with SymPy when ``|graph − exact| ≤ RTOL · ν`` for its value and ``≤ RTOL · γ``
for its gradient, where ν and γ are first-order error bounds in units of the rounding unit (see
``magnitudes``): they grow with the size of the terms that are added (cancellation where
gradients add at branches is budgeted for) and with forward errors that reach a local gradient.
"""

from __future__ import annotations

import math

from gradverify.graph.ops import OPS
from gradverify.graph.passes import GraphResult

__all__ = ["RTOL", "ATOL", "magnitudes", "kink_cone"]

#: The one tolerance of the graph check. float64 needs a few ulps per operation; 1e-9 leaves room
#: for deep graphs and still catches any wrong rule by orders of magnitude.
RTOL = 1e-9
#: An absolute floor on both budgets: below float64's normal range (2.2e-308) rounding is absolute.
ATOL = 1e-300


def magnitudes(result: GraphResult) -> tuple[list[float], list[float]]:
    """Condition-aware sizes ν (values) and γ (gradients); the budgets are RTOL·ν and RTOL·γ.

    First-order error propagation in units of the rounding unit: ν = 0 for inputs and constants
    (exact), ν(n) = |v_n| + Σ_k |∂v_n/∂in_k|·ν(in_k) for an operation. A gradient is a sum of
    products of local gradients, each computed from forward values with their own errors, so
    γ(n) = Σ_consumers c [(γ(c) + |g_c|)·|∂c/∂n| + |g_c|·Σ_m |∂(∂c/∂n)/∂in_m|·ν(in_m)].
    The last factor (how fast a local gradient changes with its arguments) is taken by central
    differences of the op's local-gradient function; it only sizes the budget, never the answer.
    """
    rows = result.rows
    fmag = [0.0] * len(rows)  # inputs and constants are exact: SymPy takes the very same floats
    for r in rows:
        if r.inputs:
            fmag[r.id] = abs(r.value) + sum(abs(lg) * fmag[i] for i, lg in zip(r.inputs, r.local)
                                        if math.isfinite(lg))
    gmag = [0.0] * len(rows)
    for r in reversed(rows):
        if not r.inputs:
            continue
        args = [rows[i].value for i in r.inputs]
        slopes = _local_slopes(r.op, args)
        for k, (i, lg) in enumerate(zip(r.inputs, r.local)):
            if not math.isfinite(lg):
                continue
            drift = sum(slopes[k][m] * fmag[j] for m, j in enumerate(r.inputs) if slopes[k][m] and fmag[j])
            # (skip 0 * inf: a zero gradient or an exact argument adds nothing)
            gmag[i] += (gmag[r.id] + abs(r.grad)) * abs(lg) + (abs(r.grad) * drift if r.grad and drift else 0.0)
    return fmag, gmag


def _local_slopes(op_name: str, args: list[float]) -> list[list[float]]:
    """|∂(local gradient k)/∂arg m| by central differences (inf where that fails); max: 0."""
    op = OPS[op_name]
    n = len(args)
    slopes = [[0.0] * n for _ in range(n)]
    if op_name in ("add", "sub", "neg", "max"):  # constant local gradients (max: away from ties)
        return slopes
    for m in range(n):
        h = 1e-6 * max(abs(args[m]), 1e-3)
        try:
            up, down = list(args), list(args)
            up[m] += h
            down[m] -= h
            lu = op.local(*up, op.forward(*up))
            ld = op.local(*down, op.forward(*down))
            for k in range(n):
                d = abs(lu[k] - ld[k]) / (2 * h)
                slopes[k][m] = d if math.isfinite(d) else math.inf
        except (ValueError, ZeroDivisionError, OverflowError):
            for k in range(n):
                slopes[k][m] = math.inf
    return slopes


def kink_cone(result: GraphResult, fmag: list[float], rtol: float) -> set[int]:
    """Nodes whose gradient depends on the max-tie convention: everything feeding a max whose
    arguments are equal, or equal within their rounding budget."""
    rows, cone = result.rows, set()
    for r in reversed(rows):
        if r.op == "max":
            a, b = r.inputs
            if abs(rows[a].value - rows[b].value) <= rtol * (fmag[a] + fmag[b]) + ATOL:
                cone.update(r.inputs)
        if r.id in cone:
            cone.update(r.inputs)
    return cone
