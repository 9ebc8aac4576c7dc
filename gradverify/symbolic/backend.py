"""Who differentiates: SymEngine (a C++ core) or pure SymPy, and the oracle's forms in each."""

from __future__ import annotations

from fractions import Fraction

import sympy

from gradverify.errors import InputError
from gradverify.symbolic.forms import sympy_activation, sympy_output_loss

try:
    import symengine
except ImportError:  # pragma: no cover - symengine is a dependency; SymPy is the fallback
    symengine = None

__all__ = ["Backend", "backend"]


class Backend:
    """Symbols, exact numbers and the conversion of ``forms``' SymPy expressions, for one backend."""

    # converted forms, shared by every call (building and converting a loss costs more than a
    # small problem's whole evaluation); keys carry the backend's name
    _forms: dict = {}

    def __init__(self, name: str):
        if name == "symengine" and symengine is None:
            raise InputError("SymEngine is not installed", expected='backend "sympy" or "auto"',
                             received='backend "symengine"', fix="pip install symengine, or use the pure-SymPy backend")
        self.name = name
        self.lib = symengine if name == "symengine" else sympy

    def symbol(self, name: str):
        return self.lib.Symbol(name)

    def exact(self, x) -> object:
        """A float (or Fraction) as an exact rational of this backend."""
        q = Fraction(x)
        if self.name == "sympy":
            return sympy.Rational(q.numerator, q.denominator)
        return symengine.Integer(q.numerator) / symengine.Integer(q.denominator)

    def convert(self, expr):
        return expr if self.name == "sympy" else symengine.sympify(expr)

    def add(self, terms):
        return self.lib.Add(*terms)

    def activation(self, name: str):
        """(f(z), z): ``forms.sympy_activation`` as this backend's expression."""
        key = (self.name, "act", name)
        if key not in self._forms:
            z = sympy.Symbol("z")
            self._forms[key] = (self.convert(sympy_activation(name, z)), self.convert(z))
        return self._forms[key]

    def loss(self, output: str, K: int, m: int):
        """(ℓ(a, y), a symbols, y symbols): one example's data term, from ``forms``."""
        key = (self.name, "loss", output, K, m)
        if key not in self._forms:
            if len(self._forms) > 512:  # many (K, m) pairs: a suite's worth is kept, not a lifetime's
                self._forms.clear()
            a = [sympy.Symbol(f"a{k}") for k in range(K)]
            y = [sympy.Symbol(f"y{k}") for k in range(K)]
            expr = sympy_output_loss(output, a, y, m)
            self._forms[key] = (self.convert(expr), [self.convert(s) for s in a], [self.convert(s) for s in y])
        return self._forms[key]


def backend(name: str) -> Backend:
    """``"symengine"``, ``"sympy"`` or ``"auto"`` (SymEngine if installed).

    Raises:
        InputError: an unknown backend name, or SymEngine asked for but not installed.
    """
    if name == "auto":
        name = "symengine" if symengine is not None else "sympy"
    if name not in ("symengine", "sympy"):
        raise InputError(f"Unknown symbolic backend {name!r}", expected='"auto", "symengine" or "sympy"',
                         received=repr(name), fix='use "auto"')
    return Backend(name)
