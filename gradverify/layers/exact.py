"""The exact oracle for layers: forwards as SymPy/SymEngine templates, partials by symbolic diff only.

Every layer's forward is written here, once, as small expressions over index templates — one
output entry of a convolution is Σ x_pad[n, c, i·s + p, j·s + q]·w[f, c, p, q] + b[f]; a batch-norm
output is γ·(x − μ)·(σ² + ε)^(−½) + β with μ and σ² template nodes of their own; a max-pooling
window is a chain of max(a, b) = Piecewise((a, a ≥ b), (b, True)) — instantiated in batches on the
oracle's ``symbolic.graph.Graph`` whose leaves are the case's float64 arrays (entered exactly). The
objective is J = Σ dout ⊙ out (or the loss). Each template's local partials come from the backend's
``diff``; the graph's generic reverse sweep combines them. No layer backward formula appears
anywhere, and nothing here imports the backprop engine or the finite-difference forwards.

Values are Arb balls (python-flint), certified as the MLP oracle certifies them
(``symbolic.precision.settle``): the precision rises until every value's ball certifies ``digits``
digits or lies below 2^-1100 (0.0 in float64). At a non-differentiable point — a ReLU input exactly
0, a pooling window whose maximum is attained twice, a hinge margin exactly 0 — the value uses
the Piecewise's own convention (relu′(0) = 0, the first maximum, no gradient through the hinge) and
a hull pass gives ``kink_lo``/``kink_hi``, the interval of the one-sided values.

``magnitudes`` is the scale a float64 engine's rounding error follows (``_float64_magnitudes``): a
first-order rounding-error analysis read off the same templates, used for the float64 budgets.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from flint import arb

from gradverify.errors import InputError
from gradverify.layers.case import LayerCase
from gradverify.symbolic.backend import backend as make_backend
from gradverify.symbolic.balls import NEGLIGIBLE_BITS, float_above, float_below, float_radius, precision, to_mpmath
from gradverify.symbolic.evaluation import Evaluation
from gradverify.symbolic.graph import Graph, Template
from gradverify.symbolic.interpret import Conditions, evaluate
from gradverify.symbolic.precision import Assessment, settle

__all__ = ["ExactLayerGradient", "exact_layer_gradient"]

_BLOCK = 64  # widest sum in one template: wider sums are split into blocks and a sum of blocks
_CHASE_LIMIT = 20_000  # partials up to which a cancelled value jumps at once to the settling precision


@dataclass(frozen=True)
class ExactLayerGradient:
    """The oracle's answer for one layer case.

    Attributes:
        cost: J rounded to float64.
        grads: ∂J/∂input rounded to float64, by input name, shaped like the inputs.
        grads_exact: the balls' midpoints as object arrays of mpmath ``mpf`` (every computed bit).
        radius: per partial, a proven bound on |∂J/∂input − grads_exact| (float64, rounded up).
        magnitudes: per partial, the rounding scale of a float64 engine (``_float64_magnitudes``).
        kinks: True where the case sits on a non-differentiable point of that input (see the module notes).
        kink_messages: one sentence per kink.
        kink_lo, kink_hi: where some point is exactly on a Piecewise boundary, per partial the
            interval holding every one-sided value (float64, rounded outward); None when none is.
        digits: the fewest certified digits over J and every partial not settled below 2^-1100.
        bits: the binary precision of the reported values.
        backend: ``"symengine"`` or ``"sympy"``.
        notes: remarks (precision raised, values settled below float64's range).
        seconds: wall-clock time.
    """

    cost: float
    grads: dict[str, np.ndarray]
    grads_exact: dict[str, np.ndarray]
    radius: dict[str, np.ndarray]
    magnitudes: dict[str, np.ndarray]
    kinks: dict[str, np.ndarray]
    kink_messages: tuple[str, ...]
    digits: int
    bits: int
    backend: str
    cost_radius: float = 0.0
    kink_lo: dict[str, np.ndarray] | None = None
    kink_hi: dict[str, np.ndarray] | None = None
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    numbers: str = field(default="arb", repr=False)

    def __repr__(self) -> str:
        n = sum(g.size for g in self.grads.values())
        return (f"ExactLayerGradient(cost={self.cost!r}, {n} partials, {self.digits} digits, backend={self.backend}, "
                f"kinks={len(self.kink_messages)}, {self.seconds:.3g} s)")


# ---- templates ------------------------------------------------------------------------------------

class _Forms:
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


class _Build:
    """A graph under construction for one case: leaves, and helpers that instantiate templates."""

    def __init__(self, case: LayerCase, forms: _Forms):
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
        """scale·Σ over the last axis of X (rows of node ids), in blocks of at most ``_BLOCK``."""
        K = X.shape[-1]
        if K <= _BLOCK:
            def make():
                s = self.f.syms("s", K)
                return self.f.exact(scale) * self.f.lib.Add(*s), s
            return self.apply(("sum", K, scale), make, X, f"sum{K}")
        parts = [self.sum(X[..., i:i + _BLOCK]) for i in range(0, K, _BLOCK)]
        return self.sum(np.stack(parts, axis=-1), scale)

    def dot(self, A: np.ndarray, B: np.ndarray, c: np.ndarray | None = None) -> np.ndarray:
        """Σₖ A[…, k]·B[…, k] (+ c), for rows of node ids (A, B broadcast against each other)."""
        A, B = np.broadcast_arrays(A, B)
        K = A.shape[-1]
        if K > _BLOCK:
            parts = [self.dot(A[..., i:i + _BLOCK], B[..., i:i + _BLOCK]) for i in range(0, K, _BLOCK)]
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
                 for i in range(0, K, _BLOCK) for w in [min(_BLOCK, K - i)]]
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


# ---- the layers ------------------------------------------------------------------------------------

def _affine(b: _Build):
    x = b.ids["x"].reshape(b.ids["x"].shape[0], -1)       # (N, D)
    w, bias = b.ids["w"], b.ids["b"]                       # (D, M), (M,)
    return {"out": b.dot(x[:, None, :], w.T[None, :, :], bias[None, :])}


def _dropout(b: _Build):
    s = b.case.settings
    if s["mode"] == "test":
        return {"out": b.ids["x"]}

    def make():
        x, m, p = (b.f.lib.Symbol(n) for n in "xmp")
        return x * m / p, [x, m, p]
    keep = float(s["p"]) if s["convention"] == "keep" else 1 - float(s["p"])
    p = np.full(b.ids["x"].shape, b.const(keep))
    return {"out": b.apply("dropout", make, np.stack([b.ids["x"], b.data["mask"], p], axis=-1), "x·mask/p")}


def _norm(b: _Build, x, groups_axis_order, gamma, beta, eps):
    """Normalize ``x`` (node ids) over the trailing axes after ``groups_axis_order`` moves the groups first."""
    xt = np.moveaxis(x, groups_axis_order, range(len(groups_axis_order)))
    G = xt.shape[:len(groups_axis_order)]
    mu, r = b.mean_var(xt.reshape(*G, -1), eps)
    expand = (Ellipsis,) + (None,) * (xt.ndim - len(G))
    out_t = b.affine_out(xt, mu[expand], r[expand], np.moveaxis(gamma, groups_axis_order, range(len(groups_axis_order))),
                         np.moveaxis(beta, groups_axis_order, range(len(groups_axis_order))))
    return np.moveaxis(out_t, range(len(groups_axis_order)), groups_axis_order)


def _batchnorm_like(b: _Build, channel_axis: int):
    x, s = b.ids["x"], b.case.settings
    shape = [1] * x.ndim
    shape[channel_axis] = x.shape[channel_axis]
    gamma = np.broadcast_to(b.ids["gamma"].reshape(shape), x.shape)
    beta = np.broadcast_to(b.ids["beta"].reshape(shape), x.shape)
    eps = float(s["eps"])
    if s["mode"] == "test":
        rm = np.broadcast_to(b.data["running_mean"].reshape(shape), x.shape)
        rv = np.broadcast_to(b.data["running_var"].reshape(shape), x.shape)

        def make():
            v, e = b.f.lib.Symbol("v"), b.f.lib.Symbol("e")
            return (v + e) ** b.f.exact(Fraction(-1, 2)), [v, e]
        r = b.apply("rstd", make, np.stack([rv, np.full(x.shape, b.const(eps))], axis=-1), "rstd")
        return {"out": b.affine_out(x, rm, r, gamma, beta)}
    return {"out": _norm(b, x, [channel_axis], gamma, beta, eps)}


def _layernorm(b: _Build):
    x = b.ids["x"]
    gamma, beta = np.broadcast_to(b.ids["gamma"], x.shape), np.broadcast_to(b.ids["beta"], x.shape)
    return {"out": _norm(b, x, [0], gamma, beta, float(b.case.settings["eps"]))}


def _groupnorm(b: _Build):
    x, G = b.ids["x"], int(b.case.settings["G"])
    N, C, H, W = x.shape
    gamma, beta = np.broadcast_to(b.ids["gamma"], x.shape), np.broadcast_to(b.ids["beta"], x.shape)
    grouped = lambda a: a.reshape(N, G, C // G, H, W)  # noqa: E731
    out = _norm(b, grouped(x), [0, 1], grouped(gamma), grouped(beta), float(b.case.settings["eps"]))
    return {"out": out.reshape(N, C, H, W)}


def _conv(b: _Build):
    s = b.case.settings
    stride, pad = int(s["stride"]), int(s["pad"])
    x, w, bias = b.ids["x"], b.ids["w"], b.ids["b"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    xp = np.full((N, C, H + 2 * pad, W + 2 * pad), b.zero)  # the padding: a constant 0 leaf
    xp[:, :, pad:pad + H, pad:pad + W] = x
    Ho, Wo = 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride
    rows = np.empty((N, Ho, Wo, C * HH * WW), dtype=np.int64)
    for i in range(Ho):
        for j in range(Wo):
            rows[:, i, j] = xp[:, :, i * stride:i * stride + HH, j * stride:j * stride + WW].reshape(N, -1)
    out = b.dot(rows[:, None], w.reshape(F, -1)[None, :, None, None, :], bias[None, :, None, None])  # (N, F, Ho, Wo)
    return {"out": out}


def _max_pool(b: _Build):
    s = b.case.settings
    ph, pw, stride = int(s["pool_height"]), int(s["pool_width"]), int(s["stride"])
    x = b.ids["x"]
    N, C, H, W = x.shape
    Ho, Wo = 1 + (H - ph) // stride, 1 + (W - pw) // stride
    win = np.empty((N, C, Ho, Wo, ph * pw), dtype=np.int64)
    for i in range(Ho):
        for j in range(Wo):
            win[:, :, i, j] = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw].reshape(N, C, -1)

    def make():
        a, c = b.f.lib.Symbol("a"), b.f.lib.Symbol("b")
        return b.f.piecewise((a, a >= c), (c, True)), [a, c]  # ties go to the earlier entry
    best = win[..., 0]
    for k in range(1, ph * pw):
        best = b.apply("max2", make, np.stack([best, win[..., k]], axis=-1), "max(a,b)")
    return {"out": best}


def _class_loss(b: _Build, x_rows: np.ndarray, labels: np.ndarray, weights: np.ndarray | None, kind: str, N: int):
    """One loss node per row of scores, with a template per label (and mask column when given)."""
    V = x_rows.shape[1]
    nodes = []
    for c in np.unique(labels):
        sel = labels == c

        def make(c=int(c)):
            xs = b.f.syms("x", V)
            if kind == "svm":
                hinge = [b.f.piecewise((xs[j] - xs[c] + 1, xs[j] - xs[c] + 1 > 0), (0, True)) for j in range(V) if j != c]
                expr = b.f.lib.Add(*hinge)
            else:
                expr = b.f.lib.log(b.f.lib.Add(*[b.f.lib.exp(v) for v in xs])) - xs[c]
            inputs = list(xs)
            if weights is not None:
                m = b.f.lib.Symbol("mask")
                expr, inputs = m * expr, inputs + [m]
            return expr * b.f.exact(Fraction(1, N)), inputs
        rows = x_rows[sel] if weights is None else np.concatenate([x_rows[sel], weights[sel][:, None]], axis=1)
        nodes.append(b.apply((kind, V, int(c), N, weights is not None), make, rows, f"{kind} loss, label {c}"))
    return np.concatenate(nodes)


def _scores_loss(kind: str):
    def build(b: _Build):
        x = b.ids["x"]
        return {"loss": b.sum(_class_loss(b, x, b.case.arrays["y"], None, kind, x.shape[0])[None, :])[0]}
    return build


def _temporal_softmax(b: _Build):
    x = b.ids["x"]
    N, T, V = x.shape
    per_row = _class_loss(b, x.reshape(-1, V), b.case.arrays["y"].reshape(-1), b.data["mask"].reshape(-1), "softmax", N)
    return {"loss": b.sum(per_row[None, :])[0]}


def _pre(b: _Build, x, h, Wx, Wh, bias):
    """x·Wx + h·Wh + b for rows of node ids x (N, D) and h (N, H): (N, columns of Wx)."""
    xh = np.concatenate([x, h], axis=1)
    W = np.concatenate([Wx, Wh], axis=0)
    return b.dot(xh[:, None, :], W.T[None, :, :], bias[None, :])


def _rnn_cell(b: _Build, x, h):
    return b.unary("tanh", _pre(b, x, h, b.ids["Wx"], b.ids["Wh"], b.ids["b"]))


def _lstm_cell(b: _Build, x, h, c):
    H = h.shape[1]
    a = _pre(b, x, h, b.ids["Wx"], b.ids["Wh"], b.ids["b"])
    i, f, o = (b.unary("sigmoid", a[:, k * H:(k + 1) * H]) for k in range(3))
    g = b.unary("tanh", a[:, 3 * H:])

    def cell():
        ff, cc, ii, gg = (b.f.lib.Symbol(n) for n in ("f", "c", "i", "g"))
        return ff * cc + ii * gg, [ff, cc, ii, gg]

    def product():
        oo, tt = b.f.lib.Symbol("o"), b.f.lib.Symbol("t")
        return oo * tt, [oo, tt]
    c_next = b.apply("lstm cell", cell, np.stack([f, c, i, g], axis=-1), "f·c + i·g")
    return b.apply("product", product, np.stack([o, b.unary("tanh", c_next)], axis=-1), "o·t"), c_next


def _sequence(cell_kind: str):
    def build(b: _Build):
        x, h = b.ids["x"], b.ids["h0"]
        c = np.full(h.shape, b.zero)
        hs = []
        for t in range(x.shape[1]):
            if cell_kind == "rnn":
                h = _rnn_cell(b, x[:, t], h)
            else:
                h, c = _lstm_cell(b, x[:, t], h, c)
            hs.append(h)
        return {"h": np.stack(hs, axis=1)}
    return build


def _lstm_step(b: _Build):
    h, c = _lstm_cell(b, b.ids["x"], b.ids["prev_h"], b.ids["prev_c"])
    return {"next_h": h, "next_c": c}


def _temporal_affine(b: _Build):
    x, w, bias = b.ids["x"], b.ids["w"], b.ids["b"]
    return {"out": b.dot(x[:, :, None, :], w.T[None, None, :, :], bias[None, None, :])}


_BUILDERS: dict[str, Callable[[_Build], dict[str, np.ndarray]]] = {
    "affine": _affine,
    "relu": lambda b: {"out": b.unary("relu", b.ids["x"])},
    "sigmoid": lambda b: {"out": b.unary("sigmoid", b.ids["x"])},
    "tanh": lambda b: {"out": b.unary("tanh", b.ids["x"])},
    "dropout": _dropout,
    "batchnorm": lambda b: _batchnorm_like(b, 1),
    "layernorm": _layernorm,
    "conv": _conv,
    "max_pool": _max_pool,
    "spatial_batchnorm": lambda b: _batchnorm_like(b, 1),
    "spatial_groupnorm": _groupnorm,
    "svm_loss": _scores_loss("svm"),
    "softmax_loss": _scores_loss("softmax"),
    "rnn_step": lambda b: {"next_h": _rnn_cell(b, b.ids["x"], b.ids["prev_h"])},
    "rnn": _sequence("rnn"),
    "lstm_step": _lstm_step,
    "lstm": _sequence("lstm"),
    "word_embedding": lambda b: {"out": b.ids["W"][b.case.arrays["x"]]},  # the outputs are the looked-up leaves
    "temporal_affine": _temporal_affine,
    "temporal_softmax_loss": _temporal_softmax,
}


def _objective(b: _Build, outputs: dict[str, np.ndarray]) -> int:
    """J's node: the loss, or Σ dout ⊙ out over every output."""
    if b.case.layer.is_loss:
        return int(outputs["loss"])
    outs = np.concatenate([outputs[k].reshape(-1) for k in b.case.layer.outputs])
    ups = np.concatenate([b.leaves(b.case.upstream[k]).reshape(-1) for k in b.case.layer.outputs])
    return int(b.sum(b.dot(outs[None, :], ups[None, :])[None, :])[0])


# ---- the rounding scale of a float64 engine ------------------------------------------------------------

# σ′ and tanh′ are computed by engines from the output h as h(1 − h) and 1 − h²: their absolute
# rounding is an ulp of h (of 1), however small the derivative is (saturated units).
_OUTPUT_FORM_FLOOR = {"sigmoid": lambda h: h * (1 + h), "tanh": lambda h: 1 + 2 * h * h}
_SWEEP_ROWS = 1 << 15
# The analysis runs on Arb numbers too (at 64 bits): its products of exp(700)-sized and e^-700-sized
# factors would overflow float64 into inf·0. Every magnitude is an exact upper bound of an |x|.
_UP = np.frompyfunc(lambda x: x.abs_upper() if isinstance(x, arb) else arb(abs(float(x))), 1, 1)
_LARGER = np.frompyfunc(lambda p, q: p if p > q else q, 2, 1)
_TO_FLOAT = np.frompyfunc(float, 1, 1)


def _up(v, n: int) -> np.ndarray:
    """|v| bounded above, as an object array of ``n`` balls (a scalar is broadcast)."""
    return _UP(v) if isinstance(v, np.ndarray) else np.full(n, _UP(v), dtype=object)


def _magnitude(e, env: dict, memo: dict, mags: dict, conditions: Conditions, n: int) -> np.ndarray:
    """The value of ``e`` with every sum taken over absolute values: what its rounding scales with.

    Sums add their terms' magnitudes, products multiply them, positive integer powers raise them;
    any other node (a symbol, a number, exp, log, tanh, a Piecewise) counts with its absolute value.
    """
    if e in mags:  # keyed by the expression: SymEngine hands out fresh wrappers for e.args, so an id() could repeat
        return mags[e]
    kind = type(e).__name__
    if kind == "Add":
        out = sum(_magnitude(t, env, memo, mags, conditions, n) for t in e.args)
    elif kind == "Mul":
        out = np.full(n, arb(1), dtype=object)
        for t in e.args:
            out = out * _magnitude(t, env, memo, mags, conditions, n)
    elif kind == "Pow" and getattr(e.args[1], "is_Integer", False) and int(e.args[1]) > 0:
        out = _magnitude(e.args[0], env, memo, mags, conditions, n) ** int(e.args[1])
    else:
        out = _up(evaluate(e, env, memo, conditions), n)
    mags[e] = out
    return out


def _second(b: _Build, template: Template) -> list[list[tuple[int, object]]]:
    """Per input j, the nonzero ∂²expr/∂uⱼ∂uₖ (by ``diff`` of the partial), cached per template."""
    key = id(template)  # templates live in the build's cache for its whole life
    if key not in b.second:
        rows = []
        for j in range(len(template.inputs)):
            pj = template.partial(j)
            free = pj.free_symbols
            pairs = [(k, pj.diff(u)) for k, u in enumerate(template.inputs) if u in free]
            rows.append([(k, d) for k, d in pairs if d != 0])
        b.second[key] = rows
    return b.second[key]


def _rows(op):
    for start in range(0, len(op.out), _SWEEP_ROWS):
        yield slice(start, start + _SWEEP_ROWS)


def _zeros(n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    out[:] = [arb(0)] * n
    return out


def _forward_errors(b: _Build, values: np.ndarray, conditions: Conditions) -> tuple[np.ndarray, np.ndarray]:
    """Per node, F: a float64 evaluation's absolute rounding error is about eps·F (and where F ≠ 0).

    Leaves: F = |value| (a relative perturbation of eps, which any reformulation of the forward —
    a shift by the maximum, x − μ computed another way — may cost). Templates: F(out) = (its terms
    summed in absolute value) + Σⱼ |∂out/∂uⱼ|·F(uⱼ): a first-order running error analysis, the
    templates' own partials carrying the inputs' errors forward.
    """
    F, nonzero = _zeros(b.g.n), np.zeros(b.g.n, dtype=bool)
    for ids, vals in b.leaf_values:  # an input is known to an engine only as well as its float64 value
        F[ids] = [arb(abs(float(v))) for v in vals]
        nonzero[ids] = vals != 0
    for op in b.g.ops:
        t = op.template
        for rows in _rows(op):
            count = len(op.out[rows])
            env = {sym: values[op.inputs[rows, j]] for j, sym in enumerate(t.inputs)}
            memo: dict = {}
            err = _magnitude(t.expr, env, memo, {}, conditions, count)
            for j in range(len(t.inputs)):
                if nonzero[op.inputs[rows, j]].any():
                    err = err + _up(evaluate(t.partial(j), env, memo, conditions), count) * F[op.inputs[rows, j]]
            F[op.out[rows]] = err
            nonzero[op.out[rows]] = True
    return F, nonzero


def _float64_magnitudes(b: _Build, values: np.ndarray, J: int, conditions: Conditions) -> np.ndarray:
    """Per node, the rounding scale of ∂J/∂node in a float64 engine, in units of eps (float64; inf beyond it).

    Σ over paths to J of Π (local magnitudes), where a local partial's magnitude is its terms
    summed in absolute value (no sum of float64 data counts as exact: float64 rounds every step)
    plus the error it inherits from its inputs' forward rounding, Σₖ |∂²out/∂uⱼ∂uₖ|·F(uₖ)
    (``_forward_errors``); σ′ and tanh′ are floored by ``_OUTPUT_FORM_FLOOR``.
    """
    F, F_nonzero = _forward_errors(b, values, conditions)
    scale, reached = _zeros(b.g.n), np.zeros(b.g.n, dtype=bool)
    scale[J], reached[J] = arb(1), True
    constant = np.zeros(b.g.n, dtype=bool)
    for ids in b.constants:
        constant[ids] = True
    for op in reversed(b.g.ops):
        t = op.template
        floor, second = _OUTPUT_FORM_FLOOR.get(t.name), _second(b, t)
        for rows in _rows(op):
            if not reached[op.out[rows]].any():
                continue
            seed, count = scale[op.out[rows]], len(op.out[rows])
            env = {sym: values[op.inputs[rows, j]] for j, sym in enumerate(t.inputs)}
            memo: dict = {}
            mags: dict = {}
            for j in range(len(t.inputs)):
                targets = op.inputs[rows, j]
                if constant[targets].all():
                    continue
                m = _magnitude(t.partial(j), env, memo, mags, conditions, count)
                for k, d2 in second[j]:
                    if F_nonzero[op.inputs[rows, k]].any():
                        m = m + _up(evaluate(d2, env, memo, conditions), count) * F[op.inputs[rows, k]]
                if floor is not None:
                    m = _LARGER(m, floor(_up(values[op.out[rows]], count)))
                np.add.at(scale, targets, seed * m)
                reached[targets] = True
    with np.errstate(over="ignore"):
        return np.asarray(_TO_FLOAT(scale), dtype=np.float64)


# ---- kinks, read from the exact float64 data ------------------------------------------------------------

def _kinks(case: LayerCase) -> tuple[dict[str, np.ndarray], list[str]]:
    flags = {n: np.zeros(s, bool) for n, s in case.layout()}
    msgs: list[str] = []
    x = case.arrays.get("x")
    if case.name == "relu":
        flags["x"] = x == 0
        msgs += [f"x[{','.join(map(str, i))}] is exactly 0 at a ReLU (kink): its partial uses relu'(0) = 0" for i in zip(*np.nonzero(x == 0))]
    elif case.name == "max_pool":
        s = case.settings
        ph, pw, st = int(s["pool_height"]), int(s["pool_width"]), int(s["stride"])
        for i in range(1 + (x.shape[2] - ph) // st):
            for j in range(1 + (x.shape[3] - pw) // st):
                win = x[:, :, i * st:i * st + ph, j * st:j * st + pw]
                top = win == win.max(axis=(2, 3), keepdims=True)
                tied = top.sum(axis=(2, 3)) > 1
                for n, c in zip(*np.nonzero(tied)):
                    flags["x"][n, c, i * st:i * st + ph, j * st:j * st + pw] |= top[n, c]
                    msgs.append(f"pooling window ({n},{c},{i},{j}) has its maximum {win[n, c].max():g} more than once (kink): "
                                "the gradient goes to the first one")
    elif case.name == "svm_loss":
        y = case.arrays["y"]
        for n, j in np.ndindex(*x.shape):
            if j != y[n] and Fraction(float(x[n, j])) - Fraction(float(x[n, y[n]])) + 1 == 0:
                flags["x"][n, j] = flags["x"][n, y[n]] = True
                msgs.append(f"margin x[{n},{j}] − x[{n},{y[n]}] + 1 is exactly 0 (kink): the hinge passes no gradient there")
    return flags, msgs


# ---- the driver ------------------------------------------------------------------------------------

def _check(case: LayerCase, digits: int) -> None:
    if not isinstance(case, LayerCase):
        raise InputError("exact_layer_gradient needs a LayerCase", received=type(case).__name__,
                         fix="build one with gradverify.layers.random_case")
    if not isinstance(digits, int) or isinstance(digits, bool) or not 16 <= digits <= 2000:
        raise InputError("digits must be an integer from 16 to 2000", received=repr(digits), fix="30 (the default)")


def _split(case: LayerCase, flat) -> dict[str, np.ndarray]:
    out, start = {}, 0
    for name, shape in case.layout():
        k = math.prod(shape)
        out[name] = np.asarray(flat[start:start + k]).reshape(shape)
        start += k
    return out


def _certification(verdict: Assessment, digits: int, bits: int) -> tuple[int, list[str]]:
    """The digits every unsettled value certifies, and notes on the values short of ``digits``."""
    got, settled = verdict.digits, verdict.settled
    live = got[~settled]
    worst = float(live.min()) if live.size else math.inf
    summary = math.floor(bits * math.log10(2)) if math.isinf(worst) else int(min(bits * math.log10(2), math.floor(worst)))
    notes = []
    if settled[1:].any():
        notes.append(f"{int(settled[1:].sum())} partial(s) lie below 2^-{NEGLIGIBLE_BITS} (0.0 in float64, settled for any "
                     "float64 comparison) but are not certified to full precision; not counted in digits")
    short = (got < digits) & ~settled
    if short.any():
        notes.append(f"{int(short.sum())} value(s) certified to only {got[short].min():.1f} digits at {bits} bits (asked for {digits})")
    return max(0, summary), notes


def exact_layer_gradient(case: LayerCase, *, digits: int = 30, backend: str = "auto",
                         progress: Callable[[int, int], None] | None = None) -> ExactLayerGradient:
    """J and every ∂J/∂input of a layer case, by symbolic differentiation, certified to ``digits`` digits.

    Args:
        case: the layer case (arrays, settings, upstream gradients).
        digits: significant decimal digits wanted (16 to 2000).
        backend: ``"symengine"``, ``"sympy"`` or ``"auto"``.
        progress: called as ``progress(done, total)`` per evaluation pass.

    Returns:
        An ``ExactLayerGradient``.

    Raises:
        InputError: not a case, bad digits, or an unknown backend.
    """
    t0 = time.perf_counter()
    _check(case, digits)
    forms = _Forms(backend)
    b = _Build(case, forms)
    J = _objective(b, _BUILDERS[case.name](b))
    params = np.concatenate([b.ids[n].reshape(-1) for n in case.layer.inputs])
    last: dict = {}
    passes = [0]

    def run(bits: int, hull: bool) -> Evaluation:
        conditions = Conditions(hull=hull)
        with precision(bits):
            values = b.g.forward(conditions)
            adjoint = b.g.gradient(values, J, conditions)
        if not hull:
            last["values"] = values
        passes[0] += 1
        if progress:
            progress(passes[0], passes[0] + 1)
        return Evaluation(values[J], adjoint[params], [], conditions, bits)

    notes: list[str] = []

    def on_retry(old: int, new: int, verdict: Assessment) -> None:
        notes.append(f"{old} bits left {verdict.short} value(s) short of {digits} certified digits; redone at {new} bits")

    ev, verdict = settle(run, digits, jump=case.size <= _CHASE_LIMIT, on_retry=on_retry)
    hull = run(ev.bits, True) if ev.conditions.boundaries else None
    summary, more = _certification(verdict, digits, ev.bits)
    if ev.conditions.undecided:
        more.append(f"{ev.conditions.undecided} Piecewise condition(s) could not be decided at {ev.bits} bits: "
                    "those values enclose both sides")
    with precision(64):
        mags = _float64_magnitudes(b, last["values"], J, Conditions())[params]
    flags, kink_msgs = _kinks(case)
    exact = np.empty(len(params), dtype=object)
    exact[:] = [to_mpmath(x) for x in ev.grads]
    return ExactLayerGradient(
        cost=float(ev.cost), grads=_split(case, np.array([float(x) for x in ev.grads], dtype=np.float64)),
        grads_exact=_split(case, exact), radius=_split(case, np.array([float_radius(x) for x in ev.grads])),
        magnitudes=_split(case, mags), kinks=flags, kink_messages=tuple(kink_msgs), digits=summary, bits=ev.bits,
        backend=forms.name, cost_radius=float_radius(ev.cost),
        kink_lo=_split(case, np.array([float_below(x) for x in hull.grads])) if hull is not None else None,
        kink_hi=_split(case, np.array([float_above(x) for x in hull.grads])) if hull is not None else None,
        notes=tuple(notes + more), seconds=time.perf_counter() - t0)
