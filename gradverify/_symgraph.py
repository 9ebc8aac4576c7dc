"""High-precision evaluation of SymPy/SymEngine expressions, and a generic reverse sweep.

Two ideas live here, both independent of neural networks:

- ``evaluate``: a small interpreter that evaluates an expression tree (SymPy or SymEngine nodes:
  numbers, symbols, +, ×, powers, exp, log, tanh, Piecewise) at a given binary precision, with
  MPFR numbers (gmpy2) or mpmath as a fallback. Its inputs may be scalars or numpy object arrays,
  so one call evaluates the same expression for many instances at once. It only evaluates; it
  never differentiates.
- ``Graph``: scalar nodes produced by batches of instances of a ``Template`` (an expression over
  formal input symbols). A template's local partial derivatives come from the symbolic backend's
  ``diff`` of its expression; ``Graph.gradient`` combines them by the textbook reverse sweep
  (adjoint of an input += adjoint of the output × local partial), over the ops in reverse order.
  Nothing here knows which template is a layer, a unit or a loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction

import mpmath
import numpy as np

try:  # MPFR through gmpy2 is ~20× faster than mpmath's pure-Python numbers
    import gmpy2
except ImportError:  # pragma: no cover - exercised only where gmpy2 is missing
    gmpy2 = None

__all__ = ["Graph", "Kit", "Template", "agreeing_digits", "default_kit", "evaluate", "magnitude"]


# ---- numbers ---------------------------------------------------------------------------------

class Kit:
    """The high-precision number type: construction, elementary functions, a precision context."""

    def __init__(self, name: str):
        self.name = name
        if name == "gmpy2":
            if gmpy2 is None:
                raise ImportError("gmpy2 is not installed")
            self.number, self.exp, self.log, self.tanh, self.sqrt = gmpy2.mpfr, gmpy2.exp, gmpy2.log, gmpy2.tanh, gmpy2.sqrt
            self.fsum = gmpy2.fsum
        elif name == "mpmath":
            self.number, self.exp, self.log, self.tanh, self.sqrt = mpmath.mpf, mpmath.exp, mpmath.log, mpmath.tanh, mpmath.sqrt
            self.fsum = mpmath.fsum
        else:
            raise ValueError(f"unknown number kit {name!r}")
        self._ufuncs = {f: np.frompyfunc(getattr(self, f), 1, 1) for f in ("exp", "log", "tanh", "sqrt")}

    def precision(self, bits: int):
        """A context manager: arithmetic inside it rounds to ``bits`` bits."""
        if self.name == "gmpy2":
            return gmpy2.context(gmpy2.get_context(), precision=bits)
        return mpmath.workprec(bits)

    def current_bits(self) -> int:
        """The precision arithmetic rounds to right now."""
        return gmpy2.get_context().precision if self.name == "gmpy2" else mpmath.mp.prec

    def from_fraction(self, q: Fraction):
        """An exact rational rounded once to the current precision."""
        if q.denominator == 1:
            return self.number(q.numerator)
        if self.name == "gmpy2":
            return gmpy2.mpfr(gmpy2.mpq(q.numerator, q.denominator))
        return mpmath.mpf(q.numerator) / q.denominator

    def from_float(self, x: float):
        """A float64 converted exactly (the precision is always ≥ 53 bits)."""
        return self.number(float(x))

    def to_mpmath(self, x) -> mpmath.mpf:
        """The same value as an mpmath ``mpf`` with every bit kept (no rounding)."""
        if self.name == "mpmath":
            return x
        if not x.is_finite():
            return mpmath.mpf(float(x))
        man, exp = x.as_mantissa_exp()
        return mpmath.mp.make_mpf(mpmath.libmp.from_man_exp(int(man), int(exp)))

    def apply(self, func: str, x):
        """``func`` elementwise on an object array, or on a scalar."""
        if isinstance(x, np.ndarray):
            return self._ufuncs[func](x)
        return getattr(self, func)(x)


def default_kit() -> Kit:
    """gmpy2 (MPFR) if installed, else mpmath."""
    return Kit("gmpy2" if gmpy2 is not None else "mpmath")


# ---- the interpreter -------------------------------------------------------------------------

_RELATIONS = {
    "StrictLessThan": lambda a, b: a < b,
    "LessThan": lambda a, b: a <= b,
    "StrictGreaterThan": lambda a, b: a > b,
    "GreaterThan": lambda a, b: a >= b,
    "Equality": lambda a, b: a == b,
    "Unequality": lambda a, b: a != b,
}
_MANY_TERMS = 8  # sums with more terms go through fsum (correctly rounded, and fast in MPFR)


def _fraction(node) -> Fraction:
    return Fraction(str(node))


def evaluate(expr, env: dict, kit: Kit, memo: dict | None = None):
    """The value of ``expr`` at the current precision of ``kit``.

    Args:
        expr: a SymPy or SymEngine expression built from numbers, symbols, Add, Mul, Pow,
            exp, log, tanh and Piecewise with relational conditions.
        env: symbol → value (a kit number or an object array of them; arrays broadcast).
        kit: the number kit; call inside ``kit.precision(bits)``.
        memo: node → value cache shared between calls with the same ``env``.

    Returns:
        A kit number, an object array, or a bool (for a condition).

    Raises:
        TypeError: a node type the interpreter does not know.
    """
    if memo is None:
        memo = {}
    return _eval(expr, env, kit, memo)


def _eval(e, env, kit, memo):
    try:
        return memo[e]
    except KeyError:
        pass
    except TypeError:  # unhashable (should not happen for SymPy/SymEngine nodes)
        pass
    kind = type(e).__name__
    if kind in ("Symbol", "Dummy"):
        value = env[e]
    elif getattr(e, "is_Number", False) or kind in ("Integer", "Rational", "Zero", "One", "NegativeOne", "Half"):
        value = kit.from_fraction(_fraction(e))
    elif kind == "Add":
        terms = [_eval(a, env, kit, memo) for a in e.args]
        if len(terms) > _MANY_TERMS:
            value = _fsum(terms, kit)
        else:
            value = terms[0]
            for t in terms[1:]:
                value = value + t
    elif kind == "Mul":
        value = None
        for a in e.args:
            v = _eval(a, env, kit, memo)
            value = v if value is None else value * v
    elif kind == "Pow":
        base, expo = e.args
        if type(base).__name__ == "Exp1":  # SymEngine writes exp(x) as E**x
            value = kit.apply("exp", _eval(expo, env, kit, memo))
        elif getattr(expo, "is_Integer", False):
            n = int(_fraction(expo))
            b = _eval(base, env, kit, memo)
            value = b ** n if n >= 0 else 1 / (b ** -n)
        elif getattr(expo, "is_Number", False) and _fraction(expo) == Fraction(1, 2):
            value = kit.apply("sqrt", _eval(base, env, kit, memo))
        else:
            value = _eval(base, env, kit, memo) ** _eval(expo, env, kit, memo)
    elif kind in ("exp", "log", "tanh"):
        value = kit.apply(kind, _eval(e.args[0], env, kit, memo))
    elif kind == "Exp1":
        value = kit.exp(kit.number(1))
    elif kind == "Piecewise":
        value = _piecewise(e, env, kit, memo)
    elif kind in _RELATIONS:
        a, b = (_eval(x, env, kit, memo) for x in e.args)
        value = _RELATIONS[kind](a, b)
        if isinstance(value, np.ndarray):
            value = value.astype(bool)
    elif kind == "BooleanTrue":
        value = True
    elif kind == "BooleanFalse":
        value = False
    else:
        raise TypeError(f"cannot evaluate a {kind} node ({e}); the oracle knows numbers, symbols, "
                        "+, ×, powers, exp, log, tanh and Piecewise")
    memo[e] = value
    return value


def _fsum(terms, kit):
    arrays = [t for t in terms if isinstance(t, np.ndarray)]
    if not arrays:
        return kit.fsum(terms)
    n = max(a.shape[0] for a in arrays)
    stack = np.empty((n, len(terms)), dtype=object)
    for j, t in enumerate(terms):
        stack[:, j] = t
    fsum = kit.fsum
    out = np.empty(n, dtype=object)
    out[:] = [fsum(row) for row in stack]
    return out


def _piecewise(e, env, kit, memo):
    if type(e.args[0]).__name__ == "ExprCondPair":  # SymPy: (expr, cond) pairs
        pairs = [tuple(p.args) for p in e.args]
    else:  # SymEngine: expr, cond, expr, cond, ...
        pairs = list(zip(e.args[0::2], e.args[1::2]))
    value, decided = None, None
    for expr, cond in pairs:
        c = _eval(cond, env, kit, memo)
        if not isinstance(c, np.ndarray) and decided is None:
            if c:
                return _eval(expr, env, kit, memo)
            continue
        v = _eval(expr, env, kit, memo)
        c = np.broadcast_to(np.asarray(c, dtype=bool), np.shape(v) or np.shape(c))
        if value is None:
            value = np.empty(c.shape, dtype=object)
            decided = np.zeros(c.shape, dtype=bool)
        take = c & ~decided
        value[take] = np.broadcast_to(v, c.shape)[take] if isinstance(v, np.ndarray) else v
        decided |= take
    if value is None or not decided.all():
        raise ValueError(f"Piecewise {e} is undefined at some evaluation point")
    return value


def magnitude(expr, env: dict, kit: Kit, memo: dict, mags: dict | None = None, exact: frozenset = frozenset()):
    """A rounding-error scale M for ``expr``: its error is ≈ 2⁻ᵖ·M times a small count.

    A sum or product of inputs that carry no error (numbers with a power-of-two denominator,
    symbols in ``exact``: float64 values) is rounded at most once: M = |value|; a product of
    such inputs whose mantissas fit the precision is itself exact (−1·y, 2·w). Otherwise M(Σ tᵢ) = Σ M(tᵢ) and
    M(Π fᵢ) = Π M(fᵢ), the value with every sum taken over absolute values, so M/|value| is a
    condition number that exposes catastrophic cancellation (−0.5 + 0.5 + 1e−304, 1 − tanh²(700))
    but not the exact cancellation of exact data (1 − y with y = 1). Any other node counts with
    its absolute value; cancellation inside function arguments is not propagated. ``memo`` must
    hold the values of a previous ``evaluate`` of the same expression and ``env``.
    """
    if mags is None:
        mags = {}
    return _mag(expr, env, kit, memo, mags, exact)[0]


def _abs(v):
    return np.abs(v) if isinstance(v, np.ndarray) else abs(v)


def _mag(e, env, kit, memo, mags, exact):
    """(M, b): b is the mantissa bits of a value known to be exact, or None."""
    try:
        return mags[e]
    except KeyError:
        pass
    kind = type(e).__name__
    if kind in ("Add", "Mul"):
        parts = [_mag(a, env, kit, memo, mags, exact) for a in e.args]
        if all(b is not None for _, b in parts):
            bits = sum(b for _, b in parts) if kind == "Mul" else None
            if bits is not None and bits > kit.current_bits():
                bits = None
            result = (_abs(_eval(e, env, kit, memo)), bits)  # exact inputs: at most one rounding
        else:
            value = None
            for m, _ in parts:
                value = m if value is None else (value + m if kind == "Add" else value * m)
            result = (value, None)
    elif kind in ("Symbol", "Dummy"):
        result = (_abs(_eval(e, env, kit, memo)), 53 if e in exact else None)
    elif getattr(e, "is_Number", False):
        q = _fraction(e)
        dyadic = q.denominator & (q.denominator - 1) == 0
        result = (_abs(_eval(e, env, kit, memo)), max(1, abs(q.numerator).bit_length()) if dyadic else None)
    else:
        result = (_abs(_eval(e, env, kit, memo)), None)
    mags[e] = result
    return result


# ---- templates and the graph -----------------------------------------------------------------

class Template:
    """An expression over formal input symbols; its partials come from symbolic ``diff``.

    Args:
        expr: the expression (SymPy or SymEngine, matching ``inputs``).
        inputs: the formal input symbols, in the order of a ``Graph.apply`` row.
        name: a label for messages.
    """

    def __init__(self, expr, inputs: Sequence, name: str = ""):
        self.expr, self.inputs, self.name = expr, tuple(inputs), name
        self._partials: dict[int, object] = {}

    def partial(self, j: int):
        """∂expr/∂inputs[j], by the backend's symbolic differentiation (cached)."""
        if j not in self._partials:
            self._partials[j] = self.expr.diff(self.inputs[j])
        return self._partials[j]

    def __repr__(self) -> str:
        return f"Template({self.name or self.expr}, {len(self.inputs)} inputs)"


class _Op:
    __slots__ = ("inputs", "out", "template")

    def __init__(self, template, inputs, out):
        self.template, self.inputs, self.out = template, inputs, out


class Graph:
    """Scalar nodes numbered 0..n−1: leaves with float64 values, and batched template instances."""

    def __init__(self):
        self.n = 0
        self.ops: list[_Op] = []
        self._leaf_ids: list[np.ndarray] = []
        self._leaf_values: list[np.ndarray] = []
        self._grad_flags: list[np.ndarray] = []

    def leaves(self, values, *, requires_grad: bool) -> np.ndarray:
        """New leaf nodes holding ``values`` (float64, any shape); returns their ids, same shape."""
        values = np.asarray(values, dtype=np.float64)
        ids = np.arange(self.n, self.n + values.size).reshape(values.shape)
        self.n += values.size
        self._leaf_ids.append(ids.reshape(-1))
        self._leaf_values.append(values.reshape(-1))
        self._grad_flags.append(np.full(values.size, requires_grad))
        return ids

    def apply(self, template: Template, inputs) -> np.ndarray:
        """New nodes, one per row of ``inputs`` (node ids, shape (count, len(template.inputs)))."""
        inputs = np.asarray(inputs, dtype=np.int64)
        if inputs.ndim != 2 or inputs.shape[1] != len(template.inputs):
            raise ValueError(f"{template!r} needs rows of {len(template.inputs)} input ids, got shape {inputs.shape}")
        out = np.arange(self.n, self.n + inputs.shape[0])
        self.n += inputs.shape[0]
        grad = np.concatenate(self._grad_flags + [np.zeros(0, bool)])
        self._grad_flags.append(np.full(out.size, bool(grad[inputs].any())))
        self.ops.append(_Op(template, inputs, out))
        return out

    def _requires_grad(self) -> np.ndarray:
        flags = np.zeros(self.n, dtype=bool)
        start = 0
        for f in self._grad_flags:
            flags[start:start + f.size] = f
            start += f.size
        return flags

    def forward(self, kit: Kit, progress: Callable[[], None] | None = None) -> np.ndarray:
        """Every node's value (object array) at the current precision of ``kit``."""
        values = np.empty(self.n, dtype=object)
        for ids, vals in zip(self._leaf_ids, self._leaf_values):
            values[ids] = [kit.from_float(v) for v in vals]
        for op in self.ops:
            for rows in _chunks(op):
                env = {sym: values[op.inputs[rows, j]] for j, sym in enumerate(op.template.inputs)}
                values[op.out[rows]] = evaluate(op.template.expr, env, kit)
            if progress:
                progress()
        return values

    def gradient(self, values: np.ndarray, output: int, kit: Kit, progress: Callable[[], None] | None = None,
                 *, scales: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """Adjoints ∂(node ``output``)/∂(node) for every node, by one reverse sweep.

        Returns:
            (adjoints, scales): ``scales`` is the same sweep run on magnitudes (``magnitude`` of
            each local partial, absolute seeds), so scales/|adjoints| is a condition number of
            every adjoint's sum over paths (None if ``scales`` is false). Only inputs that depend on a ``requires_grad`` leaf
            receive adjoints (others stay 0).
        """
        zero = kit.number(0)
        adjoint = np.empty(self.n, dtype=object)
        adjoint[:] = [zero] * self.n
        scale = adjoint.copy() if scales else None
        adjoint[output] = kit.number(1)
        if scales:
            scale[output] = kit.number(1)
        needs = self._requires_grad()
        is_leaf = np.zeros(self.n, dtype=bool)
        for ids in self._leaf_ids:
            is_leaf[ids] = True
        for op in reversed(self.ops):
            if not needs[op.out[0]]:
                if progress:
                    progress()
                continue
            inputs = op.template.inputs
            exact = frozenset(sym for j, sym in enumerate(inputs) if is_leaf[op.inputs[:, j]].all())
            wanted = [j for j in range(len(inputs)) if needs[op.inputs[:, j]].any()]
            for rows in _chunks(op):
                seed = adjoint[op.out[rows]]
                seed_scale = scale[op.out[rows]] if scales else None
                env = {sym: values[op.inputs[rows, j]] for j, sym in enumerate(inputs)}
                memo: dict = {}
                mags: dict = {}
                for j in wanted:
                    targets = op.inputs[rows, j]
                    partial = op.template.partial(j)
                    np.add.at(adjoint, targets, seed * evaluate(partial, env, kit, memo))
                    if scales:
                        np.add.at(scale, targets, seed_scale * magnitude(partial, env, kit, memo, mags, exact))
            if progress:
                progress()
        return adjoint, scale


_CHUNK = 1 << 18  # instances × inputs evaluated at once: bounds the memory of the object arrays


def _chunks(op: _Op):
    """Row slices of ``op`` holding about ``_CHUNK`` input values each."""
    count, width = op.inputs.shape
    step = max(1, _CHUNK // max(1, width))
    for start in range(0, count, step):
        yield slice(start, min(count, start + step))


def agreeing_digits(first: Sequence, second: Sequence, kit: Kit) -> float:
    """Fewest significant decimal digits on which paired kit numbers agree (inf if all equal).

    A pair agrees to −log₁₀(|a − b| / max(|a|, |b|)) digits; two exact zeros agree fully.
    Call inside ``kit.precision`` at the finer of the two precisions.
    """
    worst = kit.number(0)
    for a, b in zip(first, second):
        if a != b:
            ratio = abs(a - b) / max(abs(a), abs(b))
            worst = max(worst, ratio)
    if worst == 0:
        return math.inf
    return -float(kit.log(worst)) / math.log(10)
