"""The oracle's own forward definitions: activations and losses as SymPy expressions.

They live on the symbolic side only: the numpy forms (``functions``) belong to the finite-difference
side and the backprop engine writes its own, so a wrong definition in one place shows up as a
disagreement instead of a shared silence. No derivatives here: the oracle differentiates these.

The loss is written once, in index notation over one example (``example_loss``: a[k], y[k] for
k = 0..K−1); the per-example scalar form of full and scalable mode (``sympy_output_loss``) is that
expression expanded, and batched mode sums it over the examples of the batch.
"""

from __future__ import annotations

from functools import lru_cache

import sympy

__all__ = ["example_loss", "sympy_activation", "sympy_output_loss"]


def sympy_activation(name: str, z):
    """The SymPy expression f(z) for a scalar symbol or expression z (an Indexed element too)."""
    if name == "sigmoid":
        return 1 / (1 + sympy.exp(-z))
    if name == "tanh":
        return sympy.tanh(z)
    if name == "relu":
        # Piecewise with a strict z > 0, so SymPy's derivative at 0 is 0: the documented convention
        return sympy.Piecewise((z, z > 0), (0, True))
    if name == "softplus":
        return sympy.log(1 + sympy.exp(z))
    if name == "identity":
        return z
    raise KeyError(name)


def example_loss(output: str, a: sympy.IndexedBase, y: sympy.IndexedBase, K, m):
    """One example's contribution to J in index notation: outputs a[k], targets y[k], k < K.

    The sigmoid cross-entropy is written with log σ expanded as −log(1 + e⁻ᵃ), so high-precision
    evaluation stays accurate when units saturate.
    """
    k, j = sympy.symbols("k j", integer=True)
    if output == "sigmoid":
        term = y[k] * sympy.log(1 + sympy.exp(-a[k])) + (1 - y[k]) * sympy.log(1 + sympy.exp(a[k]))
        return sympy.Sum(term, (k, 0, K - 1)) / m
    if output == "softmax":
        log_z = sympy.log(sympy.Sum(sympy.exp(a[j]), (j, 0, K - 1)))
        return -sympy.Sum(y[k] * (a[k] - log_z), (k, 0, K - 1)) / m
    if output == "identity":
        return sympy.Sum((a[k] - y[k]) ** 2, (k, 0, K - 1)) / (2 * m)
    raise KeyError(output)


def sympy_output_loss(output: str, a: list, y: list, m: int):
    """``example_loss`` for K = len(a) outputs, expanded over the given scalar symbols."""
    A, Y = sympy.IndexedBase("a"), sympy.IndexedBase("y")
    expr = _expanded(output, len(a), m)
    return expr.xreplace({A[k]: a[k] for k in range(len(a))} | {Y[k]: y[k] for k in range(len(y))})


@lru_cache(maxsize=256)
def _expanded(output: str, K: int, m: int):
    """``example_loss`` with every Sum written out term by term (inner sums first).

    By substitution of the index, not ``Sum.doit``: doit asks SymPy's assumption system about
    every term and costs more than evaluating a small problem.
    """
    def write_out(s):
        (index, lo, hi), = s.limits
        return sympy.Add(*[s.function.xreplace({index: sympy.Integer(v)}) for v in range(int(lo), int(hi) + 1)])
    expr = example_loss(output, sympy.IndexedBase("a"), sympy.IndexedBase("y"), K, m)
    return expr.replace(lambda x: isinstance(x, sympy.Sum), write_out)
