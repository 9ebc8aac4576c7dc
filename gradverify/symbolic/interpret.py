"""Evaluate a SymPy/SymEngine expression tree in ball arithmetic: the oracle's only interpreter.

The nodes it knows: numbers, symbols, +, ×, powers, exp, log, tanh, and Piecewise with relational
conditions (And/Or/Not of them). Inputs may be scalars or numpy object arrays of ``arb`` balls, so
one call evaluates the same expression for many instances at once. It only evaluates; it never
differentiates.

Conditions are three-valued (``TRUE``, ``FALSE``, ``UNKNOWN``), because a ball may straddle the
point a condition compares with. A Piecewise whose condition is ``UNKNOWN`` at some point takes
the union of that branch and the branches after it there, so the result still encloses the exact
value. A point *exactly on* a condition's boundary (z = 0 for z > 0) is decided by the relation
(z > 0 is false at 0) — unless the evaluation asks for ``hull``: then both sides are taken, and the
result encloses every one-sided value at that point (the one-sided derivatives at a ReLU kink are
the two branches of SymPy's own Piecewise derivative). ``Conditions`` counts the boundary and
undecided points met, so the caller knows whether a hull pass or more precision is needed.

A point still undecided at the highest precision is within 2^-bits of its boundary, where no more
precision can help (a ReLU input that is exactly 0 but was computed through tanh, say). Inside
``undecided_on_boundary()`` such points are taken as exactly on the boundary: a kink, whose hull
pass encloses both sides, as at an exact 0.
"""

from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from flint import arb

from gradverify.symbolic.balls import Sign, from_fraction, int_power, sign, union

__all__ = ["Conditions", "undecided_on_boundary", "FALSE", "RELATIONS", "TRUE", "UNKNOWN", "evaluate", "relation_truth", "truth_and", "truth_not",
           "truth_or"]

FALSE, TRUE, UNKNOWN = 0, 1, 2

# truth of "lhs REL rhs" by the sign of lhs − rhs: columns NEGATIVE, ZERO, POSITIVE, UNKNOWN
_TRUTH = {
    "StrictGreaterThan": (FALSE, FALSE, TRUE, UNKNOWN),
    "GreaterThan": (FALSE, TRUE, TRUE, UNKNOWN),
    "StrictLessThan": (TRUE, FALSE, FALSE, UNKNOWN),
    "LessThan": (TRUE, TRUE, FALSE, UNKNOWN),
    "Equality": (FALSE, TRUE, FALSE, UNKNOWN),
    "Unequality": (TRUE, FALSE, TRUE, UNKNOWN),
}
_INEQUALITIES = {"StrictGreaterThan", "GreaterThan", "StrictLessThan", "LessThan"}
RELATIONS = frozenset(_TRUTH)  #: the relational node types a condition may use
_COLUMN = {Sign.NEGATIVE: 0, Sign.ZERO: 1, Sign.POSITIVE: 2, Sign.UNKNOWN: 3}
_SIGN = np.frompyfunc(lambda x: _COLUMN[sign(x)] if isinstance(x, arb) else (0 if x < 0 else 1 if x == 0 else 2), 1, 1)
_FUNCS = {name: np.frompyfunc(getattr(arb, name), 1, 1) for name in ("exp", "log", "tanh", "sqrt")}


@dataclass
class Conditions:
    """How an evaluation decides the conditions of Piecewise nodes, and what it met.

    Attributes:
        hull: take both sides at points exactly on a boundary (one-sided values at kinks).
        boundaries: points met exactly on an inequality's boundary (e.g. a ReLU at 0).
        undecided: points whose ball straddled a boundary (more precision may decide them).
        on_boundary: take straddling points as on the boundary (``undecided_on_boundary``).
        assumed: points taken as on the boundary that way (counted in ``boundaries`` too).
    """

    hull: bool = False
    boundaries: int = 0
    undecided: int = 0
    on_boundary: bool = field(default_factory=lambda: _ON_BOUNDARY.get())
    assumed: int = 0


_ON_BOUNDARY = contextvars.ContextVar("undecided_on_boundary", default=False)


@contextlib.contextmanager
def undecided_on_boundary():
    """Evaluations made inside take every straddling condition as exactly on its boundary."""
    token = _ON_BOUNDARY.set(True)
    try:
        yield
    finally:
        _ON_BOUNDARY.reset(token)


def relation_truth(kind: str, difference, conditions: Conditions):
    """TRUE/FALSE/UNKNOWN of ``lhs REL rhs`` from the ball (or integer) ``difference`` = lhs − rhs."""
    table = np.array(_TRUTH[kind], dtype=np.int8)
    if isinstance(difference, np.ndarray):
        column = _SIGN(difference).astype(np.int8)
    else:
        column = np.int8(_SIGN(difference))
    if conditions.on_boundary and kind in _INEQUALITIES:
        straddling = column == 3
        conditions.assumed += int(np.count_nonzero(straddling))
        column = np.where(straddling, np.int8(1), column).astype(np.int8) if isinstance(column, np.ndarray) else (
            np.int8(1) if straddling else column)
    on_boundary = column == 1
    if kind in _INEQUALITIES and np.any(on_boundary):
        conditions.boundaries += int(np.count_nonzero(on_boundary))
    truth = table[column]
    if conditions.hull and kind in _INEQUALITIES:
        truth = np.where(on_boundary, UNKNOWN, truth)
    conditions.undecided += int(np.count_nonzero(column == 3))
    return truth if isinstance(difference, np.ndarray) else int(truth)


def truth_and(values):
    """Kleene conjunction: FALSE if any is FALSE, else UNKNOWN if any is, else TRUE."""
    out = TRUE
    for v in values:
        out = np.where((np.asarray(out) == FALSE) | (np.asarray(v) == FALSE), FALSE,
                       np.where((np.asarray(out) == UNKNOWN) | (np.asarray(v) == UNKNOWN), UNKNOWN, TRUE))
    return out if np.ndim(out) else int(out)


def truth_or(values):
    """Kleene disjunction."""
    return truth_not(truth_and([truth_not(v) for v in values]))


def truth_not(v):
    """Kleene negation: TRUE and FALSE swap, UNKNOWN stays."""
    out = np.where(np.asarray(v) == UNKNOWN, UNKNOWN, 1 - np.asarray(v))
    return out if np.ndim(out) else int(out)


def evaluate(expr, env: dict, memo: dict | None = None, conditions: Conditions | None = None):
    """The value of ``expr`` as a ball (or object array of balls) at the current precision.

    Args:
        expr: a SymPy or SymEngine expression (nodes listed in the module docstring).
        env: symbol → ``arb`` or object array of them (arrays broadcast).
        memo: node → value cache shared between calls with the same ``env`` and ``conditions``.
        conditions: how to decide Piecewise conditions; records boundary and undecided points.

    Returns:
        An ``arb``, an object array of them, or a truth code for a condition.

    Raises:
        TypeError: a node type the interpreter does not know.
    """
    return _Interpreter(env, memo if memo is not None else {}, conditions or Conditions()).eval(expr)


def _fraction(node) -> Fraction:
    return Fraction(str(node))


def _product(values):
    out = values[0]
    for v in values[1:]:
        out = out * v
    return out


def _total(values):
    out = values[0]
    for v in values[1:]:
        out = out + v
    return out


class _Interpreter:
    def __init__(self, env, memo, conditions):
        self.env, self.memo, self.conditions = env, memo, conditions

    def eval(self, e):
        try:
            return self.memo[e]
        except KeyError:
            pass
        value = self._node(e, type(e).__name__)
        self.memo[e] = value
        return value

    def _node(self, e, kind):
        if kind in ("Symbol", "Dummy"):
            return self.env[e]
        if getattr(e, "is_Number", False) or kind in ("Integer", "Rational", "Zero", "One", "NegativeOne", "Half"):
            return from_fraction(_fraction(e))
        if kind == "Add":
            return _total([self.eval(a) for a in e.args])
        if kind == "Mul":
            return _product([self.eval(a) for a in e.args])
        if kind == "Pow":
            return self._power(*e.args)
        if kind in ("exp", "log", "tanh"):
            return _apply(kind, self.eval(e.args[0]))
        if kind == "Exp1":
            return arb(1).exp()
        if kind == "Piecewise":
            return self._piecewise(_pairs(e))
        if kind in _TRUTH:
            a, b = (self.eval(x) for x in e.args)
            return relation_truth(kind, a - b, self.conditions)
        if kind == "And":
            return truth_and([self.eval(a) for a in e.args])
        if kind == "Or":
            return truth_or([self.eval(a) for a in e.args])
        if kind == "Not":
            return truth_not(self.eval(e.args[0]))
        if kind == "BooleanTrue":
            return TRUE
        if kind == "BooleanFalse":
            return FALSE
        raise TypeError(f"cannot evaluate a {kind} node ({e}); the oracle knows numbers, symbols, "
                        "+, ×, powers, exp, log, tanh and Piecewise")

    def _power(self, base, expo):
        if type(base).__name__ == "Exp1":  # SymEngine writes exp(x) as E**x
            return _apply("exp", self.eval(expo))
        if getattr(expo, "is_Integer", False):
            n = int(_fraction(expo))
            b = self.eval(base)
            return int_power(b, n)
        if getattr(expo, "is_Number", False) and _fraction(expo) == Fraction(1, 2):
            return _apply("sqrt", self.eval(base))
        return self.eval(base) ** self.eval(expo)

    def _piecewise(self, pairs):
        """Branches in order; UNKNOWN points take the union of this branch and the rest."""
        value, remaining = None, None
        for index, (expr, cond) in enumerate(pairs):
            c = self.eval(cond)
            if not isinstance(c, np.ndarray) and remaining is None:
                if c == FALSE:
                    continue
                v = self.eval(expr)
                return v if c == TRUE else union(v, self._piecewise(pairs[index + 1:]))
            v = self.eval(expr)
            c = np.asarray(c)
            shape = np.broadcast_shapes(np.shape(v), c.shape, () if remaining is None else remaining.shape)
            if value is None:
                value = np.empty(shape, dtype=object)
                remaining = np.ones(shape, dtype=bool)
            c = np.broadcast_to(c, shape)
            v = np.broadcast_to(v, shape) if isinstance(v, np.ndarray) else np.full(shape, v, dtype=object)
            take = remaining & (c == TRUE)
            value[take] = v[take]
            unknown = remaining & (c == UNKNOWN)
            if unknown.any():
                rest = self._piecewise(pairs[index + 1:])
                rest = np.broadcast_to(rest, shape) if isinstance(rest, np.ndarray) else np.full(shape, rest, dtype=object)
                value[unknown] = union(v[unknown], rest[unknown])
            remaining = remaining & (c == FALSE)
            if not remaining.any():
                return value
        raise ValueError(f"a Piecewise is undefined at some evaluation point: {pairs}")


def _pairs(e):
    if type(e.args[0]).__name__ == "ExprCondPair":  # SymPy: (expr, cond) pairs
        return [tuple(p.args) for p in e.args]
    return list(zip(e.args[0::2], e.args[1::2]))  # SymEngine: expr, cond, expr, cond, ...


def _apply(func: str, x):
    if isinstance(x, np.ndarray):
        return _FUNCS[func](x)
    return getattr(x, func)()
