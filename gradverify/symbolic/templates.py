"""Layer-level operations as index templates, and their vector-Jacobian products by SymPy ``diff``.

A template names one element of its output by free indices, over symbolic sizes::

    affine       out[e,i] = Sum(W[i,k]*H[e,k], (k, 0, n-1)) + b[i]
    activation   out[e,i] = f(Z[e,i])                           (f from forms.sympy_activation)
    loss         out[e]   = ℓ(A[e,·], Y[e,·])                   (ℓ from forms.example_loss)
    penalty      out      = c·Sum(T[i,k]**2, …)
    total        out      = Sum(L[e], (e, 0, m-1)) + s0 + s1 + …

The reverse sweep needs, for each input array In, the adjoint contribution
adj_In[t] = Σ_out G[out] · ∂out/∂In[t]. ``vjp`` builds that expression once per template:

1. Where every occurrence of In in the template carries the same *output* index at an axis
   (W[i,k] in the affine map: axis 0 is the output index i), an output element reaches only the
   In elements with that index, so the sum over that output index collapses onto it; every other
   axis gets a fresh index (t = (i, q) for W). This is read from the template's own index
   pattern, for any template.
2. ∂out/∂In[t] is SymPy's ``diff`` of the template with respect to the generic element In[t],
   with ``doit`` to carry out the Kronecker-delta sums SymPy produces.
3. The index-range conditions that ``doit`` leaves (q ≤ n − 1 for an index that ranges over
   0..n−1) are decided for the whole range at once (linear in the indices: true at every corner
   of the range box means true on the box) and dropped.
4. What remains is multiplied by G[out] and summed over the output indices that did not collapse:
   for W, Σ_e G[e,i]·H[e,q] — a matrix product, which ``tensor`` evaluates as one.

No derivative rule is written here: step 2 is SymPy's, steps 1, 3 and 4 are index bookkeeping
that holds for every template.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

import sympy

from gradverify.symbolic.forms import example_loss, sympy_activation

__all__ = ["Template", "Vjp", "activation", "affine", "loss", "penalty", "total", "SIZES"]

# symbolic sizes: examples, fan-in, fan-out, outputs
m, n, N, K = sympy.symbols("m n N K", integer=True, positive=True)
SIZES = (m, n, N, K)
e, i, k = sympy.symbols("e i k", integer=True)


@dataclass(frozen=True)
class Vjp:
    """adj_In[axes] = expr, an expression over ``G`` (the output's adjoint) and the inputs."""

    expr: object
    axes: tuple


@dataclass(eq=False)
class Template:
    """One layer-level operation: an output element in index notation over symbolic sizes.

    Attributes:
        name: a label for messages.
        expr: the output element.
        out: the output's free indices, in the order of its axes.
        sizes: the size (a SymPy expression in ``SIZES``) of every axis: of the output indices
            and, per input base, of its axes.
        inputs: the input arrays (``IndexedBase``) or scalars (``Symbol``), in call order.
    """

    name: str
    expr: object
    out: tuple
    out_sizes: tuple
    inputs: tuple
    shapes: dict
    _vjps: dict = field(default_factory=dict, repr=False)

    def vjp(self, j: int) -> Vjp:
        """The adjoint contribution to input ``j`` (derived once, see the module docstring)."""
        if j not in self._vjps:
            self._vjps[j] = _derive_vjp(self, self.inputs[j])
        return self._vjps[j]


def _derive_vjp(t: Template, base) -> Vjp:
    ranges = dict(zip(t.out, t.out_sizes))
    G = sympy.IndexedBase("G")[t.out] if t.out else sympy.Symbol("G")
    if isinstance(base, sympy.Symbol):
        axes: tuple = ()
        element = base
    else:
        occurrences = [x for x in t.expr.atoms(sympy.Indexed) if x.base == base]
        rank = len(t.shapes[base])
        chosen = []
        for a in range(rank):
            at_axis = {occ.indices[a] for occ in occurrences}
            only = next(iter(at_axis)) if len(at_axis) == 1 else None
            if only in t.out:
                chosen.append(only)
            else:
                chosen.append(sympy.Symbol(f"t{a}", integer=True))
                ranges[chosen[-1]] = t.shapes[base][a]
        axes = tuple(chosen)
        element = base[axes]
    local = _decide_index_conditions(sympy.diff(t.expr, element).doit(), ranges)
    summed = [(o, 0, size - 1) for o, size in zip(t.out, t.out_sizes) if o not in axes]
    product = G * local
    return Vjp(sympy.Sum(product, *summed) if summed else product, axes)


def _decide_index_conditions(expr, ranges: dict):
    """Replace conditions on indices alone that hold (or fail) over their whole range."""
    def decide(rel):
        syms = rel.free_symbols & set(ranges)
        if not syms or not rel.free_symbols <= set(ranges) | set(SIZES):
            return rel
        gap = rel.lhs - rel.rhs
        if any(sympy.diff(gap, s, s) != 0 for s in syms) or any(
                sympy.diff(gap, s1, s2) != 0 for s1, s2 in itertools.combinations(syms, 2)):
            return rel  # not linear in the indices: leave it to be evaluated per element
        order = sorted(syms, key=str)
        corners = itertools.product(*[(0, ranges[s] - 1) for s in order])
        truths = {rel.xreplace(dict(zip(order, c))) for c in corners}
        return truths.pop() if len(truths) == 1 and truths <= {sympy.true, sympy.false} else rel
    return expr.replace(lambda x: isinstance(x, sympy.core.relational.Relational), decide)


@lru_cache(maxsize=None)
def affine() -> Template:
    W, H, b = sympy.IndexedBase("W"), sympy.IndexedBase("H"), sympy.IndexedBase("b")
    expr = sympy.Sum(W[i, k] * H[e, k], (k, 0, n - 1)) + b[i]
    return Template("affine", expr, (e, i), (m, N), (W, H, b), {W: (N, n), H: (m, n), b: (N,)})


@lru_cache(maxsize=None)
def activation(name: str) -> Template:
    Z = sympy.IndexedBase("Z")
    return Template(name, sympy_activation(name, Z[e, i]), (e, i), (m, N), (Z,), {Z: (m, N)})


@lru_cache(maxsize=None)
def loss(output: str) -> Template:
    A, Y = sympy.IndexedBase("A"), sympy.IndexedBase("Y")
    a, y = sympy.IndexedBase("a"), sympy.IndexedBase("y")
    per_example = example_loss(output, a, y, K, m)
    per_example = per_example.replace(lambda x: isinstance(x, sympy.Indexed) and x.base in (a, y),
                                      lambda x: (A if x.base == a else Y)[(e,) + x.indices])
    return Template(f"{output} loss", per_example, (e,), (m,), (A, Y), {A: (m, K), Y: (m, K)})


@lru_cache(maxsize=None)
def penalty(rank: int, coefficient: Fraction) -> Template:
    T = sympy.IndexedBase("T")
    c = sympy.Rational(coefficient.numerator, coefficient.denominator)
    if rank == 2:
        expr, shape = c * sympy.Sum(T[i, k] ** 2, (i, 0, N - 1), (k, 0, n - 1)), (N, n)
    else:
        expr, shape = c * sympy.Sum(T[i] ** 2, (i, 0, N - 1)), (N,)
    return Template("penalty", expr, (), (), (T,), {T: shape})


@lru_cache(maxsize=None)
def total(count: int) -> Template:
    """J = Σₑ L[e] + s0 + … + s_{count−1}: the examples' losses and ``count`` penalties."""
    L = sympy.IndexedBase("L")
    s = sympy.symbols(f"s0:{count}")
    return Template("total", sympy.Sum(L[e], (e, 0, m - 1)) + sympy.Add(*s), (), (), (L,) + tuple(s),
                    {L: (m,)} | {x: () for x in s})
