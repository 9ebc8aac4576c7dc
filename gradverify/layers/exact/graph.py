"""Templates and the graph under construction: symbols, cached templates, batched helpers (sum, dot, μ/σ²).

``Forms`` holds the backend's symbols (``symbolic.backend``) and this oracle's templates, each built
once; ``Build`` is the graph of one case (leaves for its inputs, data and upstream gradients) with
helpers that instantiate templates in batches. Wide sums are split into blocks of ``BLOCK`` terms.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import numpy as np

from gradverify.layers.case import LayerCase
from gradverify.symbolic.backend import backend as make_backend
from gradverify.symbolic.graph import Graph, Template

__all__ = ["BLOCK", "Build", "Forms"]

BLOCK = 64  # widest sum in one template: wider sums are split into blocks and a sum of blocks


class Forms:
    """The backend's symbols (``symbolic.backend``: SymEngine or SymPy) and this oracle's cached templates."""

    def __init__(self, backend: str):
        self.be = make_backend(backend)
        self.name, self.lib = self.be.name, self.be.lib
        self._cache: dict = {}

    def syms(self, prefix: str, n: int) -> list:
        return [self.lib.Symbol(f"{prefix}{i}") for i in range(n)]

    def exact(self, q: Fraction):
        return self.be.exact(q)

    def template(self, key, make: Callable[[], tuple[object, list]], name: str) -> Template:
        """The template ``key``, built once by ``make() -> (expr, inputs)``."""
        if key not in self._cache:
            expr, inputs = make()
            self._cache[key] = Template(expr, inputs, name)
        return self._cache[key]

    def piecewise(self, *pairs):
        return self.lib.Piecewise(*pairs)

    def sigmoid(self, z):
        return 1 / (1 + self.lib.exp(-z))


class Build:
    """A graph under construction for one case: leaves, and helpers that instantiate templates."""

    def __init__(self, case: LayerCase, forms: Forms):
        self.case, self.f, self.g = case, forms, Graph()
        self.constants: list[np.ndarray] = []  # ids of the leaves without gradient
        self.ids = {n: self.g.leaves(case.arrays[n], requires_grad=True) for n in case.layer.inputs}
        self.leaf_values = [(self.ids[n].reshape(-1), case.arrays[n].reshape(-1)) for n in case.layer.inputs]
        self.data = {n: self.leaves(case.arrays[n].astype(np.float64)) for n in case.layer.data if case.arrays[n].dtype == np.float64}
        self.zero = self.leaves(np.zeros(1))[0]
        self._consts: dict[float, int] = {}
        self.second: dict[int, list] = {}  # second partials per template (for the float64 budget)

    def leaves(self, values) -> np.ndarray:
        """Leaves without gradient (data, upstream gradients, constants)."""
        ids = self.g.leaves(values, requires_grad=False)
        self.constants.append(ids.reshape(-1))
        self.leaf_values.append((ids.reshape(-1), np.asarray(values, dtype=np.float64).reshape(-1)))
        return ids

    def const(self, value: float) -> int:
        """A leaf (no gradient) holding the float64 ``value`` exactly (eps, a keep probability …)."""
        if value not in self._consts:
            self._consts[value] = int(self.leaves(np.array([value]))[0])
        return self._consts[value]

    def apply(self, key, make, rows: np.ndarray, name: str) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        return self.g.apply(self.f.template(key, make, name), rows.reshape(-1, rows.shape[-1])).reshape(rows.shape[:-1])

    def unary(self, kind: str, ids: np.ndarray) -> np.ndarray:
        def make():
            z = self.f.lib.Symbol("z")
            expr = {"tanh": lambda: self.f.lib.tanh(z), "sigmoid": lambda: self.f.sigmoid(z),
                    "relu": lambda: self.f.piecewise((z, z > 0), (0, True))}[kind]()
            return expr, [z]
        return self.apply(("unary", kind), make, ids[..., None], kind)

    def sum(self, X: np.ndarray, scale: Fraction = Fraction(1)) -> np.ndarray:
        """scale·Σ over the last axis of X (rows of node ids), in blocks of at most ``BLOCK``."""
        K = X.shape[-1]
        if K <= BLOCK:
            def make():
                s = self.f.syms("s", K)
                return self.f.exact(scale) * self.f.lib.Add(*s), s
            return self.apply(("sum", K, scale), make, X, f"sum{K}")
        parts = [self.sum(X[..., i:i + BLOCK]) for i in range(0, K, BLOCK)]
        return self.sum(np.stack(parts, axis=-1), scale)

    def dot(self, A: np.ndarray, B: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
        """Σₖ A[…, k]·B[…, k] (+ c), for rows of node ids (A, B broadcast against each other)."""
        A, B = np.broadcast_arrays(A, B)
        K = A.shape[-1]
        if K > BLOCK:
            parts = [self.dot(A[..., i:i + BLOCK], B[..., i:i + BLOCK]) for i in range(0, K, BLOCK)]
            total = np.stack(parts + ([np.broadcast_to(c, A.shape[:-1])] if c is not None else []), axis=-1)
            return self.sum(total)
        bias = c is not None

        def make():
            a, b = self.f.syms("a", K), self.f.syms("b", K)
            terms = [x * y for x, y in zip(a, b)]
            extra = self.f.syms("c", 1) if bias else []
            return self.f.lib.Add(*(terms + extra)), a + b + extra
        cols = [A, B] + ([np.broadcast_to(c, A.shape[:-1])[..., None]] if bias else [])
        return self.apply(("dot", K, bias), make, np.concatenate(cols, axis=-1), f"dot{K}")

    def mean_var(self, X: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
        """μ and (σ² + ε)^(−½) of every row of X (groups × members), with μ and σ² as nodes."""
        K = X.shape[-1]
        mu = self.sum(X, Fraction(1, K))

        def sq(width):
            def make():
                x, m = self.f.syms("x", width), self.f.lib.Symbol("m")
                return self.f.lib.Add(*[(xi - m) ** 2 for xi in x]), x + [m]
            return make
        parts = [self.apply(("sqdev", w), sq(w), np.concatenate([X[..., i:i + w], mu[..., None]], axis=-1), f"sqdev{w}")
                 for i in range(0, K, BLOCK) for w in [min(BLOCK, K - i)]]
        var = self.sum(np.stack(parts, axis=-1), Fraction(1, K))

        def rstd():
            v, e = self.f.lib.Symbol("v"), self.f.lib.Symbol("e")
            return (v + e) ** self.f.exact(Fraction(-1, 2)), [v, e]
        e = np.full(var.shape, self.const(eps))
        return mu, self.apply("rstd", rstd, np.stack([var, e], axis=-1), "rstd")

    def affine_out(self, x, mu, r, gamma, beta) -> np.ndarray:
        """γ·(x − μ)·r + β, elementwise over broadcast node-id arrays."""
        def make():
            xs, m, rr, g, b = (self.f.lib.Symbol(n) for n in ("x", "m", "r", "g", "b"))
            return g * (xs - m) * rr + b, [xs, m, rr, g, b]
        cols = np.stack(np.broadcast_arrays(x, mu, r, gamma, beta), axis=-1)
        return self.apply("normalized", make, cols, "gamma·(x−mu)·r+beta")


