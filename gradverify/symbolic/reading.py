"""The oracle's own reading of the user's specification: layer shapes and the penalty.

Every gradient source reads the facts of the problem in its own way, so a wrong reading in one
place shows up as a disagreement instead of a shared silence. The oracle reads ``Network.sizes``,
``lam``, ``reg`` and ``reg_bias`` directly, never ``Network.is_regularized``,
``Network.reg_coefficient`` or ``Network.param_shapes`` (shared with the other sources).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from gradverify.errors import InternalError
from gradverify.spec import Problem

__all__ = ["Penalty", "layer_shapes", "read_penalty", "scalar_names"]


@dataclass(frozen=True)
class Penalty:
    """penalty = coefficient · Σ θ² over every entry of the named arrays.

    Attributes:
        coefficient: c, an exact rational (λ/(2m), λ or λ/2 by the convention).
        arrays: the penalized parameter arrays (``W1``, ``W2``…, and ``b1``… when biases are).
    """

    coefficient: Fraction
    arrays: tuple[str, ...]


def layer_shapes(problem: Problem) -> list[tuple[str, tuple[int, ...]]]:
    """``[("W1", (n1, n0)), ("b1", (n1,)), …]`` from the layer sizes, checked against the arrays.

    Raises:
        InternalError: the problem's parameter arrays do not have the shapes its sizes say
            (``make_problem`` validates them, so this is an inconsistency inside gradverify).
    """
    sizes = problem.network.sizes
    shapes: list[tuple[str, tuple[int, ...]]] = []
    for k in range(1, len(sizes)):
        shapes += [(f"W{k}", (sizes[k], sizes[k - 1])), (f"b{k}", (sizes[k],))]
    have = {name: tuple(arr.shape) for name, arr in problem.params.items()}
    if have != dict(shapes):
        raise InternalError("The oracle's reading of the layer sizes disagrees with the problem's parameter arrays",
                            expected=", ".join(f"{n} {s}" for n, s in shapes),
                            received=", ".join(f"{n} {s}" for n, s in have.items()),
                            fix="this is a bug in gradverify: please report it")
    return shapes


def scalar_names(shapes: list[tuple[str, tuple[int, ...]]]) -> list[str]:
    """A name per scalar parameter (``W2[1,3]``, ``b1[0]``), row-major within each array."""
    names = []
    for name, shape in shapes:
        if len(shape) == 2:
            names += [f"{name}[{i},{j}]" for i in range(shape[0]) for j in range(shape[1])]
        else:
            names += [f"{name}[{i}]" for i in range(shape[0])]
    return names


# convention -> c as a function of λ and m, exactly
_CONVENTIONS = {
    "lambda/2m": lambda lam, m: lam / (2 * m),
    "lambda": lambda lam, m: lam,
    "lambda/2": lambda lam, m: lam / 2,
}


def read_penalty(problem: Problem) -> Penalty:
    """The penalty of ``problem``, read from ``lam``, ``reg``, ``reg_bias`` and ``sizes``.

    Raises:
        InternalError: a convention the specification accepts but the oracle does not know.
    """
    net = problem.network
    if net.reg not in _CONVENTIONS:
        raise InternalError(f"The oracle does not know the regularization convention {net.reg!r}",
                            expected="one of " + ", ".join(_CONVENTIONS), received=repr(net.reg),
                            fix="this is a bug in gradverify (spec and oracle disagree): please report it")
    lam = Fraction(net.lam)
    if lam == 0:
        return Penalty(Fraction(0), ())
    depth = len(net.sizes) - 1
    arrays = tuple(f"W{k}" for k in range(1, depth + 1))
    if net.reg_bias:
        arrays += tuple(f"b{k}" for k in range(1, depth + 1))
    return Penalty(_CONVENTIONS[net.reg](lam, problem.m), arrays)
