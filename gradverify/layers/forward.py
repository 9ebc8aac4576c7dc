"""The finite-difference side's forward passes of the catalogue's layers, in numpy. No derivatives.

Every forward takes the arrays with a leading *probe* axis (length P, or 1 to broadcast), so one
call evaluates P perturbed copies of the layer at once; data arrays (labels, indices, masks)
carry no probe axis. The analytic layers are written so that complex and extended-precision
(``clongdouble``) inputs work — no ``abs``, no comparisons on values, no conjugation — which is
what complex-step differentiation and the round-off measurement in ``layers.numeric`` need.
The non-analytic layers (ReLU, max pooling, the hinge loss) also return a *pattern*: which piece
of the piecewise-linear function each input sits on, so a stencil that crosses a kink is seen.

This module shares no code with the backprop engine or the oracle: each reads the catalogue's
shapes and settings and writes its own arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["FORWARDS", "PATTERNS", "forward", "objective", "pattern"]

Arrays = Mapping[str, np.ndarray]


def _sigmoid(z):
    # 1/(1 + e^−z) for Re z ≥ 0 and e^z/(1 + e^z) below: neither overflows where it is used
    with np.errstate(over="ignore", invalid="ignore"):
        pos = 1 / (1 + np.exp(-z))
        e = np.exp(z)
        neg = e / (1 + e)
    return np.where(np.real(z) >= 0, pos, neg)


def _affine(a, s, d):
    x = a["x"]
    P, N = x.shape[0], x.shape[1]
    return {"out": x.reshape(P, N, -1) @ a["w"] + a["b"][:, None, :]}


def _relu(a, s, d):
    x = a["x"]
    return {"out": np.where(x > 0, x, 0 * x)}


def _dropout(a, s, d):
    if s["mode"] == "test":
        return {"out": a["x"] * 1}
    keep = float(s["p"]) if s["convention"] == "keep" else 1 - float(s["p"])
    return {"out": a["x"] * (a["mask"] / keep)}


def _normalize(x, gamma, beta, axes, eps):
    mu = x.mean(axis=axes, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=axes, keepdims=True)  # xc·xc, not |xc|²: analytic for complex steps
    return gamma * xc / np.sqrt(var + eps) + beta


def _batchnorm(a, s, d):
    x, gamma, beta = a["x"], a["gamma"][:, None, :], a["beta"][:, None, :]
    eps = float(s["eps"])
    if s["mode"] == "test":
        return {"out": gamma * (x - a["running_mean"]) / np.sqrt(a["running_var"] + eps) + beta}
    return {"out": _normalize(x, gamma, beta, (1,), eps)}


def _layernorm(a, s, d):
    return {"out": _normalize(a["x"], a["gamma"][:, None, :], a["beta"][:, None, :], (2,), float(s["eps"]))}


def _spatial_batchnorm(a, s, d):
    x = a["x"]
    gamma, beta = a["gamma"][:, None, :, None, None], a["beta"][:, None, :, None, None]
    eps = float(s["eps"])
    if s["mode"] == "test":
        rm, rv = a["running_mean"][:, None, None], a["running_var"][:, None, None]
        return {"out": gamma * (x - rm) / np.sqrt(rv + eps) + beta}
    return {"out": _normalize(x, gamma, beta, (1, 3, 4), eps)}


def _spatial_groupnorm(a, s, d):
    x = a["x"]
    P, N, C, H, W = x.shape
    G = int(s["G"])
    xg = x.reshape(P, N, G, C // G, H, W)
    ones, zeros = np.ones((1, 1, 1, 1, 1, 1)), np.zeros((1, 1, 1, 1, 1, 1))
    norm = _normalize(xg, ones, zeros, (3, 4, 5), float(s["eps"])).reshape(P, N, C, H, W)
    return {"out": a["gamma"] * norm + a["beta"]}  # gamma, beta: (P|1, 1, C, 1, 1)


def _windows(x, kh, kw, stride):
    """(…, C, Ho, Wo, kh, kw): every kh×kw window of the last two axes, stepping by ``stride``."""
    return sliding_window_view(x, (kh, kw), axis=(-2, -1))[..., ::stride, ::stride, :, :]


def _conv(a, s, d):
    x, w, b = a["x"], a["w"], a["b"]
    pad, stride = int(s["pad"]), int(s["stride"])
    xp = np.pad(x, [(0, 0)] * 3 + [(pad, pad), (pad, pad)])
    win = _windows(xp, w.shape[-2], w.shape[-1], stride)  # (P, N, C, Ho, Wo, HH, WW)
    out = np.einsum("...nchwij,...fcij->...nfhw", win, w)  # the probe axis broadcasts through the ellipsis
    return {"out": out + b[:, None, :, None, None]}


def _pool_windows(a, s):
    win = _windows(a["x"], int(s["pool_height"]), int(s["pool_width"]), int(s["stride"]))
    return win.reshape(*win.shape[:-2], -1)


def _max_pool(a, s, d):
    return {"out": _pool_windows(a, s).max(axis=-1)}


def _max_pool_pattern(a, s, d):
    return _pool_windows(a, s).argmax(axis=-1)  # argmax: the first maximum, row-major, as the convention says


def _margins(a, s, d):
    x, y = a["x"], a["y"]
    N = x.shape[1]
    correct = x[:, np.arange(N), y][:, :, None]
    margins = x - correct + 1
    margins[:, np.arange(N), y] = 0
    return margins


def _svm_loss(a, s, d):
    m = _margins(a, s, d)
    return {"loss": np.where(m > 0, m, 0 * m).sum(axis=(1, 2)) / m.shape[1]}


def _log1p(s):
    """log(1 + s), accurate for small s, also for complex s (numpy's complex log1p drops the real part)."""
    if not np.iscomplexobj(s):
        return np.log1p(s)
    re, im = np.real(s), np.imag(s)
    return 0.5 * np.log1p(2 * re + re * re + im * im) + 1j * np.arctan2(im, 1 + re)


def _nll(x, y_index):
    """−log softmax(x)[y] along the last axis, in a form whose derivative never subtracts.

    With d = x − x_y and m = max(0, maxⱼ≠y Re dⱼ): m + log(e^−m + Σⱼ≠y e^(dⱼ − m)), which is
    log1p(Σⱼ≠y e^dⱼ) when m = 0. The textbook log Σ e^x − x_y computes ∂/∂x_y as p_y − 1: at
    p_y ≈ 1 that cancels entirely, in float64 and in extended precision alike, and a complex step
    would return 0 for a partial of 1e−20 with a round-off measurement that cannot see it.
    """
    d = x - np.take_along_axis(x, y_index[None, ..., None], axis=-1)
    others = np.ones((1,) + y_index.shape + (x.shape[-1],), dtype=bool)
    np.put_along_axis(others, y_index[None, ..., None], False, axis=-1)
    m = np.maximum(0.0, np.max(np.where(others, np.real(d), -np.inf), axis=-1, keepdims=True))
    tail = np.sum(np.where(others, np.exp(d - m), 0), axis=-1)
    m = m[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(m > 0, m + np.log(np.exp(-m) + tail), _log1p(tail))


def _softmax_loss(a, s, d):
    x = a["x"]
    return {"loss": _nll(x, a["y"]).sum(axis=1) / x.shape[1]}


def _temporal_softmax_loss(a, s, d):
    x = a["x"]
    return {"loss": (a["mask"] * _nll(x, a["y"])).sum(axis=(1, 2)) / x.shape[1]}


def _rnn_cell(x, h, Wx, Wh, b):
    return np.tanh(x @ Wx + h @ Wh + b[:, None, :])


def _rnn_step(a, s, d):
    return {"next_h": _rnn_cell(a["x"], a["prev_h"], a["Wx"], a["Wh"], a["b"])}


def _rnn(a, s, d):
    x, h = a["x"], a["h0"]
    hs = []
    for t in range(x.shape[2]):
        h = _rnn_cell(x[:, :, t, :], h, a["Wx"], a["Wh"], a["b"])
        hs.append(h)
    return {"h": np.stack(hs, axis=2)}


def _lstm_cell(x, h, c, Wx, Wh, b):
    H = h.shape[-1]
    z = x @ Wx + h @ Wh + b[:, None, :]
    i, f, o = _sigmoid(z[..., :H]), _sigmoid(z[..., H:2 * H]), _sigmoid(z[..., 2 * H:3 * H])
    g = np.tanh(z[..., 3 * H:])
    c_next = f * c + i * g
    return o * np.tanh(c_next), c_next


def _lstm_step(a, s, d):
    h, c = _lstm_cell(a["x"], a["prev_h"], a["prev_c"], a["Wx"], a["Wh"], a["b"])
    return {"next_h": h, "next_c": c}


def _lstm(a, s, d):
    x, h = a["x"], a["h0"]
    c = 0 * h
    hs = []
    for t in range(x.shape[2]):
        h, c = _lstm_cell(x[:, :, t, :], h, c, a["Wx"], a["Wh"], a["b"])
        hs.append(h)
    return {"h": np.stack(hs, axis=2)}


def _word_embedding(a, s, d):
    return {"out": a["W"][:, a["x"], :]}


def _temporal_affine(a, s, d):
    x = a["x"]
    P, N, T, D = x.shape
    out = x.reshape(P, N * T, D) @ a["w"] + a["b"][:, None, :]
    return {"out": out.reshape(out.shape[0], N, T, -1)}  # the probe axis may come from w or b


FORWARDS: dict[str, Callable[[Arrays, Mapping, Mapping], dict[str, np.ndarray]]] = {
    "affine": _affine, "relu": _relu, "sigmoid": lambda a, s, d: {"out": _sigmoid(a["x"])},
    "tanh": lambda a, s, d: {"out": np.tanh(a["x"])}, "dropout": _dropout, "batchnorm": _batchnorm, "layernorm": _layernorm,
    "conv": _conv, "max_pool": _max_pool, "spatial_batchnorm": _spatial_batchnorm, "spatial_groupnorm": _spatial_groupnorm,
    "svm_loss": _svm_loss, "softmax_loss": _softmax_loss, "rnn_step": _rnn_step, "rnn": _rnn, "lstm_step": _lstm_step,
    "lstm": _lstm, "word_embedding": _word_embedding, "temporal_affine": _temporal_affine,
    "temporal_softmax_loss": _temporal_softmax_loss,
}

#: For the non-analytic layers: an integer or boolean array telling which linear piece each input is on.
PATTERNS: dict[str, Callable[[Arrays, Mapping, Mapping], np.ndarray]] = {
    "relu": lambda a, s, d: a["x"] > 0,
    "max_pool": _max_pool_pattern,
    "svm_loss": lambda a, s, d: _margins(a, s, d) > 0,
}


def forward(name: str, arrays: Arrays, settings: Mapping, dims: Mapping) -> dict[str, np.ndarray]:
    """The outputs of layer ``name`` for probe-stacked ``arrays`` (each output with the probe axis first)."""
    with np.errstate(over="ignore", under="ignore"):
        return FORWARDS[name](arrays, settings, dims)


def objective(name: str, arrays: Arrays, settings: Mapping, dims: Mapping, upstream: Mapping[str, np.ndarray],
              *, terms: bool = False) -> np.ndarray:
    """J per probe: Σ upstream ⊙ output over every output (or the loss itself). Shape (P,).

    With ``terms``, Σ |upstream ⊙ output| instead (|loss| for a loss): the size of what J's sum rounds.
    """
    outs = forward(name, arrays, settings, dims)
    if "loss" in outs:
        return np.abs(outs["loss"]) if terms else outs["loss"]
    total = None
    for key, out in outs.items():
        u = upstream[key].astype(out.real.dtype)
        prod = out * u[None]
        term = (np.abs(prod) if terms else prod).reshape(out.shape[0], -1).sum(axis=1)
        total = term if total is None else total + term
    return total


def pattern(name: str, arrays: Arrays, settings: Mapping, dims: Mapping) -> np.ndarray | None:
    """The piece pattern per probe (probe axis first, flattened after it), or None for analytic layers."""
    if name not in PATTERNS:
        return None
    p = PATTERNS[name](arrays, settings, dims)
    return p.reshape(p.shape[0], -1)
