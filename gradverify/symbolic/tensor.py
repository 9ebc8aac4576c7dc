"""Evaluate an index-notation SymPy expression over whole arrays of balls.

An expression such as ``Sum(W[i,k]*H[e,k], (k, 0, n-1)) + b[i]`` names one element of a result by
its free indices (e, i). Its value is a ``Tensor``: an array of ``arb`` balls whose axes are named
by those index symbols. Elementwise nodes (+, ×, powers, exp, log, tanh, Piecewise) broadcast by
axis name; ``Sum`` reduces the axes it binds, and a sum over one index of a product of two
matrices is a matrix product in Arb (``arb_mat``, blocked, multi-threaded, with a rigorous radius
on every entry). Conditions are three-valued as in ``interpret``; conditions on integer indices
alone are decided exactly and are never kinks. The interpreter only evaluates; it never
differentiates.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import sympy
from flint import arb, arb_mat

from gradverify.symbolic.balls import entries, from_fraction, int_power, matrix, union
from gradverify.symbolic.interpret import (
    FALSE,
    RELATIONS,
    TRUE,
    UNKNOWN,
    Conditions,
    relation_truth,
    truth_and,
    truth_not,
    truth_or,
)

__all__ = ["Tensor", "TensorEvaluator", "elementwise"]

_FUNCS = {name: np.frompyfunc(getattr(arb, name), 1, 1) for name in ("exp", "log", "tanh", "sqrt")}
_TO_ARB = np.frompyfunc(arb, 1, 1)
_INT_TRUTH = {
    "StrictGreaterThan": np.greater, "GreaterThan": np.greater_equal, "StrictLessThan": np.less,
    "LessThan": np.less_equal, "Equality": np.equal, "Unequality": np.not_equal,
}


class Tensor:
    """Values over named axes: an object array of balls, an ``arb_mat``, or exact float64 data.

    Whichever form is asked for is made from the one held (and kept): a float64 leaf becomes an
    ``arb_mat`` without passing through Python objects, a matrix product stays a matrix until an
    elementwise node needs its entries.
    """

    __slots__ = ("axes", "_array", "_mat", "_floats", "shape")

    def __init__(self, axes: tuple, *, array=None, mat: arb_mat | None = None, floats: np.ndarray | None = None):
        self.axes = tuple(axes)
        self._array, self._mat, self._floats = array, mat, floats
        if array is not None:
            self.shape = np.shape(array)
        elif mat is not None:
            self.shape = (mat.nrows(), mat.ncols())
        else:
            self.shape = floats.shape
        if len(self.shape) != len(self.axes):
            raise ValueError(f"a tensor over axes {self.axes} cannot hold shape {self.shape}")

    @classmethod
    def scalar(cls, value) -> Tensor:
        out = np.empty((), dtype=object)
        out[()] = value
        return cls((), array=out)

    def array(self) -> np.ndarray:
        """The values as an object array (axes in ``self.axes`` order)."""
        if self._array is None:
            if self._mat is not None:
                self._array = entries(self._mat)
            else:
                self._array = _TO_ARB(self._floats) if self._floats.ndim else Tensor.scalar(arb(float(self._floats)))._array
        return self._array

    def mat(self) -> arb_mat:
        """The values as an ``arb_mat`` (2-D tensors only)."""
        if self._mat is None:
            self._mat = matrix(self._floats if self._floats is not None else self.array())
        return self._mat

    def renamed(self, axes: tuple) -> Tensor:
        """The same values (shared, not copied) with other axis names."""
        out = Tensor.__new__(Tensor)
        out.axes, out._array, out._mat, out._floats, out.shape = tuple(axes), self._array, self._mat, self._floats, self.shape
        if len(set(out.axes)) != len(out.axes) or len(out.axes) != len(self.shape):
            raise ValueError(f"cannot name the {len(self.shape)} axes of a tensor {axes}: indices must be distinct symbols")
        return self if out.axes == self.axes else out

    def aligned(self, axes: tuple) -> np.ndarray:
        """The object array arranged for broadcasting over ``axes`` (a superset of ``self.axes``)."""
        arr = self.array()
        order = sorted(range(len(self.axes)), key=lambda a: axes.index(self.axes[a]))
        arr = arr.transpose(order) if order != list(range(len(order))) else arr
        return arr.reshape([self.shape[self.axes.index(x)] if x in self.axes else 1 for x in axes])

    def ordered(self, axes: tuple) -> Tensor:
        """The same values with axes in the order ``axes`` (a permutation of ``self.axes``)."""
        if tuple(axes) == self.axes:
            return self
        if self._mat is not None and self._array is None and len(axes) == 2:
            return Tensor(axes, mat=self._mat.transpose())
        return Tensor(axes, array=self.aligned(tuple(axes)))


def _union_axes(tensors) -> tuple:
    axes: list = []
    for t in tensors:
        axes += [a for a in t.axes if a not in axes]
    return tuple(axes)


def elementwise(func, tensors) -> Tensor:
    """``func`` of the tensors' aligned object arrays, over the union of their axes."""
    axes = _union_axes(tensors)
    return Tensor(axes, array=np.asarray(func(*[t.aligned(axes) for t in tensors]), dtype=object))


class TensorEvaluator:
    """Evaluates expressions of one op: inputs bound to tensors, sizes bound to integers.

    Args:
        env: an IndexedBase or Symbol → ``Tensor`` (a base's axes are renamed at each ``Indexed``).
        sizes: size symbol → int (the bounds of ``Sum`` and of the free indices).
        ranges: free index symbol → its length.
        conditions: how Piecewise conditions are decided; records boundary and undecided points.
    """

    def __init__(self, env: dict, sizes: dict, ranges: dict, conditions: Conditions):
        self.env, self.sizes, self.ranges, self.conditions = env, sizes, dict(ranges), conditions
        self.memo: dict = {}

    def eval(self, e) -> Tensor:
        try:
            return self.memo[e]
        except KeyError:
            pass
        value = self._node(e, type(e).__name__)
        self.memo[e] = value
        return value

    def _int(self, e) -> int:
        return int(sympy.sympify(e).xreplace(self.sizes))

    def _node(self, e, kind):
        if kind == "Indexed":
            return self.env[e.base].renamed(e.indices)
        if kind in ("Symbol", "Dummy"):
            if e in self.env:
                return self.env[e]
            if e in self.ranges:
                return Tensor((e,), array=np.arange(self.ranges[e], dtype=np.int64).astype(object))
            return Tensor.scalar(self.sizes[e])
        if e.is_Number:
            q = sympy.Rational(e)
            return Tensor.scalar(from_fraction(Fraction(int(q.p), int(q.q))))
        if kind == "Add":
            return elementwise(lambda *xs: _fold(xs, lambda a, b: a + b), [self.eval(a) for a in e.args])
        if kind == "Mul":
            return elementwise(lambda *xs: _fold(xs, lambda a, b: a * b), [self.eval(a) for a in e.args])
        if kind == "Pow":
            return self._power(*e.args)
        if kind in ("exp", "log", "tanh"):
            return elementwise(_FUNCS[kind], [self.eval(e.args[0])])
        if kind == "Sum":
            return self._sum(e)
        if kind == "Piecewise":
            return self._piecewise(e)
        if kind == "KroneckerDelta":
            a, b = (self.eval(x) for x in e.args)
            return elementwise(lambda x, y: np.where(np.equal(x, y), 1, 0).astype(object), [a, b])
        if kind in RELATIONS:
            return self._relation(kind, *e.args)
        if kind in ("And", "Or", "Not"):
            parts = [self.eval(a) for a in e.args]
            func = {"And": lambda *xs: truth_and(xs), "Or": lambda *xs: truth_or(xs), "Not": truth_not}[kind]
            return elementwise(func, parts)
        if kind in ("BooleanTrue", "BooleanFalse"):
            return Tensor.scalar(TRUE if kind == "BooleanTrue" else FALSE)
        raise TypeError(f"cannot evaluate a {kind} node ({e}) over tensors")

    def _power(self, base, expo) -> Tensor:
        b = self.eval(base)
        if expo.is_Integer:
            n = int(expo)
            return elementwise(lambda x: int_power(x, n), [b])
        if expo == sympy.Rational(1, 2):
            return elementwise(_FUNCS["sqrt"], [b])
        return elementwise(lambda x, y: x ** y, [b, self.eval(expo)])

    def _relation(self, kind, lhs, rhs) -> Tensor:
        a, b = self.eval(lhs), self.eval(rhs)
        diff = elementwise(lambda x, y: x - y, [a, b])
        arr = diff.array()
        if arr.size and not any(isinstance(x, arb) for x in arr.flat):  # integer indices: exact, never a kink
            codes = _INT_TRUTH[kind](arr.astype(np.int64), 0).astype(np.int8)
        else:
            codes = relation_truth(kind, arr, self.conditions)
        return Tensor(diff.axes, array=np.asarray(codes))

    def _sum(self, e) -> Tensor:
        """Σ over the bound indices; Σ_k of a product of two matrices is a matrix product."""
        bound = []
        for index, lo, hi in e.limits:
            if self._int(lo) != 0:
                raise ValueError(f"sums must start at 0, not {lo} ({e})")
            self.ranges[index] = self._int(hi) + 1
            bound.append(index)
        factors = sympy.Mul.make_args(e.function)
        inner = [f for f in factors if f.free_symbols & set(bound)]
        outer = [f for f in factors if not f.free_symbols & set(bound)]
        product = self._matrix_product(inner, bound) if len(bound) == 1 and len(inner) == 2 else None
        if product is None:
            t = elementwise(lambda *xs: _fold(xs, lambda a, b: a * b), [self.eval(f) for f in inner])
            keep = tuple(a for a in t.axes if a not in bound)
            summed = tuple(t.axes.index(a) for a in bound if a in t.axes)
            arr = np.add.reduce(t.array(), axis=summed) if summed else t.array()
            for index in bound:  # an index the summand ignores multiplies by the range length
                if index not in t.axes:
                    arr = arr * self.ranges[index]
            product = Tensor(keep, array=np.asarray(arr, dtype=object))
        if not outer:
            return product
        return elementwise(lambda *xs: _fold(xs, lambda a, b: a * b), [product] + [self.eval(f) for f in outer])

    def _matrix_product(self, factors, bound) -> Tensor | None:
        k = bound[0]
        A, B = (self.eval(f) for f in factors)
        if len(A.shape) != 2 or len(B.shape) != 2 or k not in A.axes or k not in B.axes:
            return None
        a, b = (x for x in A.axes if x != k), (x for x in B.axes if x != k)
        a, b = next(a), next(b)
        if a == b:
            return None
        # C[a,b] = A(a,k)·B(k,b), or Cᵀ = B(b,k)·A(k,a): pick the one that transposes less
        cost_c = (A.axes[1] != k) * A.shape[0] * A.shape[1] + (B.axes[0] != k) * B.shape[0] * B.shape[1]
        cost_t = (B.axes[1] != k) * B.shape[0] * B.shape[1] + (A.axes[0] != k) * A.shape[0] * A.shape[1]
        if cost_c <= cost_t:
            return Tensor((a, b), mat=A.ordered((a, k)).mat() * B.ordered((k, b)).mat())
        return Tensor((b, a), mat=B.ordered((b, k)).mat() * A.ordered((k, a)).mat())

    def _piecewise(self, e) -> Tensor:
        pairs = [tuple(p.args) for p in e.args]
        conds = [self.eval(c) for _, c in pairs]
        values = [self.eval(v) for v, _ in pairs]
        axes = _union_axes(conds + values)
        shape = tuple(max(t.aligned(axes).shape[d] for t in conds + values) for d in range(len(axes)))
        c = [np.broadcast_to(t.aligned(axes), shape) for t in conds]
        v = [np.broadcast_to(t.aligned(axes), shape) for t in values]
        return Tensor(axes, array=_select(c, v, shape))


def _select(conds, values, shape) -> np.ndarray:
    """Piecewise over aligned arrays: the first TRUE branch; UNKNOWN takes the union with the rest."""
    out = np.empty(shape, dtype=object)
    remaining = np.ones(shape, dtype=bool)
    for index, (c, v) in enumerate(zip(conds, values)):
        take = remaining & (c == TRUE)
        out[take] = v[take]
        unknown = remaining & (c == UNKNOWN)
        if unknown.any():
            rest = _select(conds[index + 1:], values[index + 1:], shape)
            out[unknown] = union(v[unknown], rest[unknown])
        remaining &= c == FALSE
    if remaining.any():
        raise ValueError("a Piecewise is undefined at some evaluation point")
    return out


def _fold(xs, op):
    out = xs[0]
    for x in xs[1:]:
        out = op(out, x)
    return out
