"""The oracle's own forward definitions: activations and losses as SymPy expressions.

They live on the symbolic side only: the numpy forms (``functions``) belong to the finite-difference
side and the backprop engine writes its own, so a wrong definition in one place shows up as a
disagreement instead of a shared silence. No derivatives here: the oracle differentiates these.
"""

from __future__ import annotations

import sympy

__all__ = ["sympy_activation", "sympy_output_loss"]

def sympy_activation(name: str, z):
    """The SymPy expression f(z) for a scalar symbol or expression z."""
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


def sympy_output_loss(output: str, a: list, y: list, m: int):
    """One example's contribution to J from its output pre-activations ``a`` and targets ``y``.

    Same functions as ``output_loss``; the sigmoid cross-entropy is written with log σ expanded
    as −log(1 + e⁻ᵃ), so high-precision evaluation stays accurate when units saturate.
    """
    if output == "sigmoid":
        return sum(yk * sympy.log(1 + sympy.exp(-ak)) + (1 - yk) * sympy.log(1 + sympy.exp(ak)) for ak, yk in zip(a, y)) / m
    if output == "softmax":
        log_z = sympy.log(sum(sympy.exp(ak) for ak in a))
        return -sum(yk * (ak - log_z) for ak, yk in zip(a, y)) / m
    if output == "identity":
        return sum((ak - yk) ** 2 for ak, yk in zip(a, y)) / (2 * m)
    raise KeyError(output)
