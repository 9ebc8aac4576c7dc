"""The operations of a scalar graph: forward function and local gradients side by side (micrograd style).

``local(*args, out)`` returns ∂out/∂arg_i for every argument; ``out`` is the forward value,
reused where the derivative is simplest written with it (exp, sigmoid, tanh). These are the only
derivative rules of ``gradverify.graph``; the SymPy check never uses them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FUNCTIONS", "Op", "OPS"]

#: the functions of the grammar and their number of arguments
FUNCTIONS = {"exp": 1, "log": 1, "sigmoid": 1, "tanh": 1, "max": 2}


@dataclass(frozen=True)
class Op:
    """One operation: arity, how it reads, its forward function and its local gradients."""

    arity: int
    text: str  # how a node reads, with its inputs' labels: "{0} * {1}"
    symbol: str  # short name for pictures
    forward: Callable[..., float]
    local: Callable[..., tuple[float, ...]]
    domain: str = ""  # what the arguments must satisfy, for error messages


def _sigmoid(a: float) -> float:
    if a >= 0:  # the two forms avoid exp overflow on either side
        return 1.0 / (1.0 + math.exp(-a))
    e = math.exp(a)
    return e / (1.0 + e)


def _sech2(a: float) -> float:
    e = math.exp(-2.0 * abs(a))
    return 4.0 * e / ((1.0 + e) * (1.0 + e))


def _pow_local(a: float, b: float, out: float) -> tuple[float, float]:
    # ∂(a**b)/∂a = b * a**(b-1); ∂(a**b)/∂b = a**b * ln a, real only for a > 0 (limit 0 at a = 0).
    try:
        d_base = 0.0 if b == 0 else b * math.pow(a, b - 1.0)
    except (ValueError, ZeroDivisionError, OverflowError):
        d_base = math.nan
    if a > 0:
        d_exp = out * math.log(a)
    elif a == 0 and b > 0:
        d_exp = 0.0
    else:
        d_exp = math.nan
    return d_base, d_exp


OPS: dict[str, Op] = {
    "add": Op(2, "{0} + {1}", "+", lambda a, b: a + b, lambda a, b, out: (1.0, 1.0)),
    "sub": Op(2, "{0} - {1}", "-", lambda a, b: a - b, lambda a, b, out: (1.0, -1.0)),
    "mul": Op(2, "{0} * {1}", "*", lambda a, b: a * b, lambda a, b, out: (b, a)),
    "div": Op(2, "{0} / {1}", "/", lambda a, b: a / b, lambda a, b, out: (1.0 / b, -a / (b * b)),
              "a nonzero denominator"),
    "pow": Op(2, "{0} ** {1}", "**", math.pow, _pow_local,
              "a positive base, or an integer exponent (and no 0 to a negative power)"),
    "neg": Op(1, "-{0}", "neg", lambda a: -a, lambda a, out: (-1.0,)),
    "exp": Op(1, "exp({0})", "exp", math.exp, lambda a, out: (out,),
              "an argument below about 709.78 (exp overflows float64 above)"),
    "log": Op(1, "log({0})", "log", math.log, lambda a, out: (1.0 / a,), "a positive argument"),
    # σ' = σ(1 − σ), with 1 − σ(a) computed as σ(−a): it must not round to 0 for large a
    "sigmoid": Op(1, "sigmoid({0})", "σ", _sigmoid, lambda a, out: (out * _sigmoid(-a),)),
    # tanh' = 1 − tanh² = 4e/(1 + e)² with e = exp(−2|a|), which does not round to 0 for large |a|
    "tanh": Op(1, "tanh({0})", "tanh", math.tanh, lambda a, out: (_sech2(a),)),
    # a >= b: the tie goes to the first argument (a subgradient choice; see the package docstring).
    "max": Op(2, "max({0}, {1})", "max", max, lambda a, b, out: (1.0, 0.0) if a >= b else (0.0, 1.0)),
}
