"""Each catalogue layer's forward, written once as templates on a ``Build`` graph; and the objective J.

A builder returns, per output name, the node ids of that output (shaped like it). No derivative
is written here: the graph's reverse sweep differentiates each template with the backend's ``diff``.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import numpy as np

from gradverify.layers.exact.graph import Build

__all__ = ["BUILDERS", "objective"]


def _affine(b: Build):
    x = b.ids["x"].reshape(b.ids["x"].shape[0], -1)       # (N, D)
    w, bias = b.ids["w"], b.ids["b"]                       # (D, M), (M,)
    return {"out": b.dot(x[:, None, :], w.T[None, :, :], bias[None, :])}


def _dropout(b: Build):
    s = b.case.settings
    if s["mode"] == "test":
        return {"out": b.ids["x"]}

    def make():
        x, m, p = (b.f.lib.Symbol(n) for n in "xmp")
        return x * m / p, [x, m, p]
    keep = float(s["p"]) if s["convention"] == "keep" else 1 - float(s["p"])
    p = np.full(b.ids["x"].shape, b.const(keep))
    return {"out": b.apply("dropout", make, np.stack([b.ids["x"], b.data["mask"], p], axis=-1), "x·mask/p")}


def _norm(b: Build, x, groups_axis_order, gamma, beta, eps):
    """Normalize ``x`` (node ids) over the trailing axes after ``groups_axis_order`` moves the groups first."""
    xt = np.moveaxis(x, groups_axis_order, range(len(groups_axis_order)))
    G = xt.shape[:len(groups_axis_order)]
    mu, r = b.mean_var(xt.reshape(*G, -1), eps)
    expand = (Ellipsis,) + (None,) * (xt.ndim - len(G))
    out_t = b.affine_out(xt, mu[expand], r[expand], np.moveaxis(gamma, groups_axis_order, range(len(groups_axis_order))),
                         np.moveaxis(beta, groups_axis_order, range(len(groups_axis_order))))
    return np.moveaxis(out_t, range(len(groups_axis_order)), groups_axis_order)


def _batchnorm_like(b: Build, channel_axis: int):
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


def _layernorm(b: Build):
    x = b.ids["x"]
    gamma, beta = np.broadcast_to(b.ids["gamma"], x.shape), np.broadcast_to(b.ids["beta"], x.shape)
    return {"out": _norm(b, x, [0], gamma, beta, float(b.case.settings["eps"]))}


def _groupnorm(b: Build):
    x, G = b.ids["x"], int(b.case.settings["G"])
    N, C, H, W = x.shape
    gamma, beta = np.broadcast_to(b.ids["gamma"], x.shape), np.broadcast_to(b.ids["beta"], x.shape)
    grouped = lambda a: a.reshape(N, G, C // G, H, W)  # noqa: E731
    out = _norm(b, grouped(x), [0, 1], grouped(gamma), grouped(beta), float(b.case.settings["eps"]))
    return {"out": out.reshape(N, C, H, W)}


def _conv(b: Build):
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


def _max_pool(b: Build):
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


def _class_loss(b: Build, x_rows: np.ndarray, labels: np.ndarray, weights: np.ndarray | None, kind: str, N: int):
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
    def build(b: Build):
        x = b.ids["x"]
        return {"loss": b.sum(_class_loss(b, x, b.case.arrays["y"], None, kind, x.shape[0])[None, :])[0]}
    return build


def _temporal_softmax(b: Build):
    x = b.ids["x"]
    N, T, V = x.shape
    per_row = _class_loss(b, x.reshape(-1, V), b.case.arrays["y"].reshape(-1), b.data["mask"].reshape(-1), "softmax", N)
    return {"loss": b.sum(per_row[None, :])[0]}


def _pre(b: Build, x, h, Wx, Wh, bias):
    """x·Wx + h·Wh + b for rows of node ids x (N, D) and h (N, H): (N, columns of Wx)."""
    xh = np.concatenate([x, h], axis=1)
    W = np.concatenate([Wx, Wh], axis=0)
    return b.dot(xh[:, None, :], W.T[None, :, :], bias[None, :])


def _rnn_cell(b: Build, x, h):
    return b.unary("tanh", _pre(b, x, h, b.ids["Wx"], b.ids["Wh"], b.ids["b"]))


def _lstm_cell(b: Build, x, h, c):
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
    def build(b: Build):
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


def _lstm_step(b: Build):
    h, c = _lstm_cell(b, b.ids["x"], b.ids["prev_h"], b.ids["prev_c"])
    return {"next_h": h, "next_c": c}


def _temporal_affine(b: Build):
    x, w, bias = b.ids["x"], b.ids["w"], b.ids["b"]
    return {"out": b.dot(x[:, :, None, :], w.T[None, None, :, :], bias[None, None, :])}


BUILDERS: dict[str, Callable[[Build], dict[str, np.ndarray]]] = {
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


def objective(b: Build, outputs: dict[str, np.ndarray]) -> int:
    """J's node: the loss, or Σ dout ⊙ out over every output."""
    if b.case.layer.is_loss:
        return int(outputs["loss"])
    outs = np.concatenate([outputs[k].reshape(-1) for k in b.case.layer.outputs])
    ups = np.concatenate([b.leaves(b.case.upstream[k]).reshape(-1) for k in b.case.layer.outputs])
    return int(b.sum(b.dot(outs[None, :], ups[None, :])[None, :])[0])


