"""Bug models for layers: the gradient a known wrong backward pass would return on a case.

Each ``Mutant`` names one classic bug in plain words and computes, with its own small numpy
code, the arrays that bug changes. ``layers.diagnose`` compares a wrong candidate with every
mutant of its layer: when one explains the error, its message is the diagnosis. Nothing here
is a gradient source and nothing judges a source with it; the right parts a mutant needs are
recomputed here, independently of the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gradverify.layers.case import LayerCase

__all__ = ["Mutant", "MUTANTS", "mutants_for"]


@dataclass(frozen=True)
class Mutant:
    """A bug: its kind, the sentence that names it, and the arrays it returns (None if it cannot apply)."""

    kind: str
    message: str
    grads: Callable[[LayerCase], dict[str, np.ndarray] | None]


def _sig(z):
    return 0.5 * (1 + np.tanh(0.5 * z))


# ---- elementwise -------------------------------------------------------------------------------

def _elementwise(deriv: Callable[[np.ndarray], np.ndarray]):
    return lambda c: {"x": c.upstream["out"] * deriv(c.arrays["x"])}


_TANH = [
    Mutant("tanh-derivative", "tanh′ written as 1 − x instead of 1 − tanh²(x) (the derivative must use the output t = tanh(x): 1 − t²).",
           _elementwise(lambda x: 1 - x)),
    Mutant("tanh-derivative", "tanh′ written as 1 − tanh(x) instead of 1 − tanh²(x): the square is missing.",
           _elementwise(lambda x: 1 - np.tanh(x))),
    Mutant("tanh-derivative", "tanh′ applied to the input: 1 − x² instead of 1 − tanh²(x) (square the cached output, not x).",
           _elementwise(lambda x: 1 - x * x)),
    Mutant("tanh-derivative", "tanh′ applied to the output: 1 − tanh²(t) with t = tanh(x) already the output (use 1 − t²).",
           _elementwise(lambda x: 1 - np.tanh(np.tanh(x)) ** 2)),
    Mutant("missing-upstream", "dx is the local derivative alone: it is not multiplied by dout.", lambda c: {"x": 1 - np.tanh(c.arrays["x"]) ** 2}),
]

_SIGMOID = [
    Mutant("sigmoid-derivative", "σ′ written as x(1 − x) on the input instead of s(1 − s) on the output s = σ(x).",
           _elementwise(lambda x: x * (1 - x))),
    Mutant("sigmoid-derivative", "σ′ applied to the output: σ(s)(1 − σ(s)) with s = σ(x) already the output (use s(1 − s)).",
           _elementwise(lambda x: _sig(_sig(x)) * (1 - _sig(_sig(x))))),
    Mutant("sigmoid-derivative", "σ′ written as 1 − σ(x): the factor σ(x) is missing (σ′ = σ(1 − σ)).", _elementwise(lambda x: 1 - _sig(x))),
    Mutant("missing-upstream", "dx is the local derivative alone: it is not multiplied by dout.", lambda c: {"x": _sig(c.arrays["x"]) * (1 - _sig(c.arrays["x"]))}),
]

_RELU = [
    Mutant("relu-mask", "ReLU's backward passes dout through everywhere: the mask (x > 0) is missing.", lambda c: {"x": c.upstream["out"].copy()}),
    Mutant("missing-upstream", "dx is the mask (x > 0) alone: it is not multiplied by dout.", lambda c: {"x": (c.arrays["x"] > 0).astype(float)}),
    Mutant("relu-mask", "ReLU's mask is taken from dout (dout > 0) instead of from the input x.",
           lambda c: {"x": c.upstream["out"] * (c.upstream["out"] > 0)}),
    Mutant("relu-mask", "ReLU's mask is inverted: dout passes where x ≤ 0 instead of where x > 0.",
           lambda c: {"x": c.upstream["out"] * (c.arrays["x"] <= 0)}),
]


def _dropout_grad(c: LayerCase, mask_in_test: bool = False):
    if c.settings["mode"] == "test" and not mask_in_test:
        return None
    keep = float(c.settings["p"]) if c.settings["convention"] == "keep" else 1 - float(c.settings["p"])
    return {"x": c.upstream["out"] * c.arrays["mask"] / keep}


_DROPOUT = [
    Mutant("dropout-mask", "dropout's backward ignores the mask: dx = dout, but units dropped in the forward pass get no gradient.",
           lambda c: {"x": c.upstream["out"].copy()} if c.settings["mode"] == "train" else None),
    Mutant("dropout-mask", "dropout applies the mask in test mode: at test time dropout is the identity (dx = dout).",
           lambda c: _dropout_grad(c, True) if c.settings["mode"] == "test" else None),
]


# ---- normalization -----------------------------------------------------------------------------

def _norm_parts(c: LayerCase, axes: tuple[int, ...], gamma_shape):
    x, eps = c.arrays["x"], float(c.settings["eps"])
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    inv = 1 / np.sqrt(var + eps)
    xhat = (x - mu) * inv
    dxhat = c.upstream["out"] * c.arrays["gamma"].reshape(gamma_shape)
    return xhat, inv, dxhat


def _norm_mutants(axes_of: Callable[[LayerCase], tuple[tuple[int, ...], tuple]], train_only: bool = True) -> list[Mutant]:
    def dx(term: str):
        def grads(c: LayerCase):
            if train_only and c.settings.get("mode") == "test":
                return None
            axes, gshape = axes_of(c)
            xhat, inv, dxhat = _norm_parts(c, axes, gshape)
            mean = lambda a: a.mean(axis=axes, keepdims=True)  # noqa: E731
            k = xhat.size // mean(xhat).size  # the group size the statistics average over
            full = {"mean": dxhat - (xhat * mean(dxhat * xhat)), "variance": dxhat - mean(dxhat), "both": dxhat,
                    "unbiased": dxhat - mean(dxhat) - xhat * mean(dxhat * xhat) * k / max(k - 1, 1),
                    "gamma": c.upstream["out"] - mean(c.upstream["out"]) - xhat * mean(c.upstream["out"] * xhat)}[term]
            return {"x": inv * full}
        return grads

    def dgamma_x(c: LayerCase):
        if train_only and c.settings.get("mode") == "test":
            return None
        axes, gshape = axes_of(c)
        sum_axes = tuple(i for i in range(c.arrays["x"].ndim) if gshape[i] == 1)
        return {"gamma": (c.upstream["out"] * c.arrays["x"]).sum(axis=sum_axes).reshape(c.arrays["gamma"].shape)}

    return [
        Mutant("norm-mean-term", "dx misses the mean term of the normalization's backward (−mean(dx̂), the path through the mean μ).", dx("mean")),
        Mutant("norm-variance-term", "dx misses the variance term of the normalization's backward (−x̂·mean(dx̂·x̂), the path through σ²).",
               dx("variance")),
        Mutant("norm-constant-stats", "dx treats the mean and variance as constants: dx = γ·dout/σ misses both the mean term and the variance term.",
               dx("both")),
        Mutant("norm-unbiased", "dx's variance term uses the unbiased variance (N − 1) while the forward pass divides by N.", dx("unbiased")),
        Mutant("norm-missing-gamma", "dx misses γ: the upstream gradient of x̂ is dout·γ, not dout.", dx("gamma")),
        Mutant("norm-dgamma-x", "dgamma uses the raw input x instead of the normalized x̂ (dgamma = Σ dout·x̂).", dgamma_x),
    ]


def _xhat(c: LayerCase) -> np.ndarray:
    x, eps = c.arrays["x"], float(c.settings["eps"])
    if c.name == "batchnorm" and c.settings["mode"] == "test":
        return (x - c.arrays["running_mean"]) / np.sqrt(c.arrays["running_var"] + eps)
    axis = 0 if c.name == "batchnorm" else 1
    xc = x - x.mean(axis=axis, keepdims=True)
    return xc / np.sqrt((xc * xc).mean(axis=axis, keepdims=True) + eps)


def _wrong_axis_sum(c: LayerCase):
    """dgamma, dbeta of an (N, D) layer summed over the features: only of their shape when N == D."""
    x, dout = c.arrays["x"], c.upstream["out"]
    if x.shape[0] != x.shape[1]:
        return None
    return {"gamma": (dout * _xhat(c)).sum(axis=1), "beta": dout.sum(axis=1)}


_BATCH_AXES = lambda c: ((0,), (1, -1))  # noqa: E731
_LAYER_AXES = lambda c: ((1,), (1, -1))  # noqa: E731
_SPATIAL_AXES = lambda c: ((0, 2, 3), (1, -1, 1, 1))  # noqa: E731


def _groupnorm_mutants() -> list[Mutant]:
    def view(c: LayerCase):
        N, C, H, W = c.arrays["x"].shape
        G = int(c.settings["G"])
        x = c.arrays["x"].reshape(N, G, -1)
        up = (c.upstream["out"] * c.arrays["gamma"]).reshape(N, G, -1)
        mu = x.mean(axis=2, keepdims=True)
        inv = 1 / np.sqrt(((x - mu) ** 2).mean(axis=2, keepdims=True) + float(c.settings["eps"]))
        return (x - mu) * inv, inv, up, (N, C, H, W)

    def dx(term):
        def grads(c):
            xhat, inv, d, shape = view(c)
            m = lambda a: a.mean(axis=2, keepdims=True)  # noqa: E731
            full = {"mean": d - xhat * m(d * xhat), "variance": d - m(d), "both": d}[term]
            return {"x": (inv * full).reshape(shape)}
        return grads
    return [
        Mutant("norm-mean-term", "dx misses the mean term of group norm's backward (−mean(dx̂) over each group).", dx("mean")),
        Mutant("norm-variance-term", "dx misses the variance term of group norm's backward (−x̂·mean(dx̂·x̂) over each group).", dx("variance")),
        Mutant("norm-constant-stats", "dx treats each group's mean and variance as constants (dx = γ·dout/σ).", dx("both")),
    ]


_BATCHNORM = _norm_mutants(_BATCH_AXES) + [
    Mutant("wrong-axis", "dgamma and dbeta are summed over the wrong axis: over the features (axis 1) instead of over the batch (axis 0).",
           _wrong_axis_sum),
]
_LAYERNORM = _norm_mutants(_LAYER_AXES, train_only=False) + [
    Mutant("wrong-axis", "dgamma and dbeta are summed over the wrong axis: over the features (axis 1) instead of over the batch (axis 0).",
           _wrong_axis_sum),
]
_SPATIAL_BATCHNORM = _norm_mutants(_SPATIAL_AXES)


# ---- convolution and pooling ---------------------------------------------------------------------

def _conv_grads(c: LayerCase, *, stride: int | None = None, crop: tuple[int, int] = (0, 0), pad_w: int | None = None):
    """dx and dw of a naive convolution, with one thing changed: the stride used in the backward,
    where dx is cropped from the padded gradient, or how much x is padded for dw."""
    x, w, dout = c.arrays["x"], c.arrays["w"], c.upstream["out"]
    s, pad = int(c.settings["stride"]), int(c.settings["pad"])
    st = s if stride is None else stride
    pw = pad if pad_w is None else pad_w
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pw, pw), (pw, pw)))
    dxp = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    dw = np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            g = dout[:, :, i, j]
            if i * st + HH <= xp.shape[2] and j * st + WW <= xp.shape[3]:
                dw += np.einsum("nf,nchw->fchw", g, xp[:, :, i * st:i * st + HH, j * st:j * st + WW])
            if i * st + HH <= dxp.shape[2] and j * st + WW <= dxp.shape[3]:
                dxp[:, :, i * st:i * st + HH, j * st:j * st + WW] += np.einsum("nf,fchw->nchw", g, w)
    r0, c0 = pad + crop[0], pad + crop[1]
    if r0 < 0 or c0 < 0 or r0 + H > dxp.shape[2] or c0 + W > dxp.shape[3]:
        return None
    return {"x": dxp[:, :, r0:r0 + H, c0:c0 + W], "w": dw}


def _only(keys, fn):
    def grads(c):
        out = fn(c)
        return None if out is None else {k: out[k] for k in keys}
    return grads


_CONV = [
    Mutant("conv-stride", "stride ignored in dw: the backward pass takes the windows of x at every position (step 1) instead of every stride-th.",
           _only(("w",), lambda c: _conv_grads(c, stride=1) if int(c.settings["stride"]) > 1 else None)),
    Mutant("conv-stride", "stride ignored in dx: the backward pass adds each window's gradient at step 1 instead of at step stride.",
           _only(("x",), lambda c: _conv_grads(c, stride=1) if int(c.settings["stride"]) > 1 else None)),
] + [
    Mutant("conv-padding", f"off-by-one in the conv padding: dx is cut from the padded gradient {words} (dx_pad[:, :, pad{dr:+d}:…, pad{dc:+d}:…] "
           "instead of dx_pad[:, :, pad:pad + H, pad:pad + W]).", _only(("x",), lambda c, dr=dr, dc=dc: _conv_grads(c, crop=(dr, dc))))
    for dr, dc, words in ((1, 1, "one row and one column too far"), (-1, -1, "one row and one column too early"),
                          (1, 0, "one row too far"), (0, 1, "one column too far"), (-1, 0, "one row too early"), (0, -1, "one column too early"))
] + [
    Mutant("conv-padding", f"off-by-one in the conv padding: dw is computed on x padded by pad {sign} 1 instead of pad.",
           _only(("w",), lambda c, d=d: _conv_grads(c, pad_w=int(c.settings["pad"]) + d) if int(c.settings["pad"]) + d >= 0 else None))
    for d, sign in ((1, "+"), (-1, "−"))
]


def _pool_spread(c: LayerCase, mode: str):
    x, dout = c.arrays["x"], c.upstream["out"]
    ph, pw, s = int(c.settings["pool_height"]), int(c.settings["pool_width"]), int(c.settings["stride"])
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            g = dout[:, :, i, j][:, :, None, None]
            dx[:, :, i * s:i * s + ph, j * s:j * s + pw] += g if mode == "every" else g / (ph * pw)
    return {"x": dx}


_MAX_POOL = [
    Mutant("pool-every-element", "pooling gradient to every element of the window instead of only to the max.", lambda c: _pool_spread(c, "every")),
    Mutant("pool-average", "pooling gradient spread evenly over the window (average pooling's backward) instead of sent to the max.",
           lambda c: _pool_spread(c, "average")),
]


# ---- losses ------------------------------------------------------------------------------------

def _svm(c: LayerCase, *, correct_term: bool = True, include_correct: bool = False):
    x, y = c.arrays["x"], c.arrays["y"]
    N = x.shape[0]
    rows = np.arange(N)
    margins = x - x[rows, y][:, None] + 1
    if not include_correct:
        margins[rows, y] = 0
    active = (margins > 0).astype(float)
    dx = active.copy()
    if correct_term:
        dx[rows, y] -= active.sum(axis=1)
    return {"x": dx / N}


def _softmax_p(x):
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


_SVM = [
    Mutant("svm-correct-class", "dx misses the correct-class term: x[i, y[i]] must get −(number of positive margins in row i)/N.",
           lambda c: _svm(c, correct_term=False)),
    Mutant("svm-correct-class", "the correct class is counted as a margin (its own margin is always 1 > 0): skip j = y[i].",
           lambda c: _svm(c, include_correct=True)),
]
_SOFTMAX = [
    Mutant("softmax-correct-class", "dx misses the −1 at the correct class: dx = (softmax(x) − onehot(y))/N.",
           lambda c: {"x": _softmax_p(c.arrays["x"]) / c.arrays["x"].shape[0]}),
]


def _temporal_softmax(c: LayerCase, use_mask: bool):
    x, y, mask = c.arrays["x"], c.arrays["y"], c.arrays["mask"]
    N, T, V = x.shape
    d = _softmax_p(x)
    d[np.arange(N)[:, None], np.arange(T)[None, :], y] -= 1
    return {"x": d * (mask[..., None] if use_mask else 1) / N}


_TEMPORAL_SOFTMAX = [
    Mutant("mask-ignored", "the mask is ignored in the backward pass: masked time steps must get no gradient.", lambda c: _temporal_softmax(c, False)),
]


# ---- recurrent ---------------------------------------------------------------------------------

def _rnn_step(c: LayerCase, deriv: Callable, wh_transposed: bool = True):
    x, h, Wx, Wh, b = (c.arrays[k] for k in ("x", "prev_h", "Wx", "Wh", "b"))
    t = np.tanh(x @ Wx + h @ Wh + b)
    da = c.upstream["next_h"] * deriv(x @ Wx + h @ Wh + b, t)
    return {"x": da @ Wx.T, "prev_h": da @ (Wh.T if wh_transposed else Wh), "Wx": x.T @ da, "Wh": h.T @ da, "b": da.sum(axis=0)}


_RNN_STEP = [
    Mutant("tanh-derivative", "tanh′ written as 1 − next_h instead of 1 − next_h²: the square is missing.", lambda c: _rnn_step(c, lambda a, t: 1 - t)),
    Mutant("tanh-derivative", "tanh′ applied to the pre-activation: 1 − a² instead of 1 − tanh²(a) = 1 − next_h².",
           lambda c: _rnn_step(c, lambda a, t: 1 - a * a)),
    Mutant("tanh-derivative", "tanh′ is missing: the gradient is not multiplied by 1 − next_h².", lambda c: _rnn_step(c, lambda a, t: 1.0)),
    Mutant("transposed-weight", "dprev_h multiplies by Wh instead of Whᵀ.",
           lambda c: _only(("prev_h",), lambda c: _rnn_step(c, lambda a, t: 1 - t * t, wh_transposed=False))(c)
           if c.arrays["Wh"].shape[0] == c.arrays["Wh"].shape[1] else None),
]


def _rnn_sequence(c: LayerCase, carry: bool):
    x, h0, Wx, Wh, b = (c.arrays[k] for k in ("x", "h0", "Wx", "Wh", "b"))
    N, T, _ = x.shape
    hs, h = [h0], h0
    for t in range(T):
        h = np.tanh(x[:, t] @ Wx + h @ Wh + b)
        hs.append(h)
    dx, dWx, dWh, db = np.zeros_like(x), np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dprev = np.zeros_like(h0)
    for t in reversed(range(T)):
        da = (c.upstream["h"][:, t] + (dprev if carry else 0)) * (1 - hs[t + 1] ** 2)
        dx[:, t], dWx, dWh, db = da @ Wx.T, dWx + x[:, t].T @ da, dWh + hs[t].T @ da, db + da.sum(axis=0)
        dprev = da @ Wh.T
    return {"x": dx, "h0": dprev, "Wx": dWx, "Wh": dWh, "b": db}


_RNN = [
    Mutant("through-time", "the gradient through time is dropped: at each step dh[:, t] must be added to the dprev_h coming back from step t + 1.",
           lambda c: _rnn_sequence(c, False) if c.arrays["x"].shape[1] > 1 else None),
]


def _lstm(c: LayerCase, *, via_h: bool = True, f_on_c: bool = True, tanh_sq: bool = True):
    x, h, cp, Wx, Wh, b = (c.arrays[k] for k in ("x", "prev_h", "prev_c", "Wx", "Wh", "b"))
    H = h.shape[1]
    a = x @ Wx + h @ Wh + b
    i, f, o, g = _sig(a[:, :H]), _sig(a[:, H:2 * H]), _sig(a[:, 2 * H:3 * H]), np.tanh(a[:, 3 * H:])
    cn = f * cp + i * g
    tc = np.tanh(cn)
    dh, dcn = c.upstream["next_h"], c.upstream["next_c"]
    dc = dcn + (dh * o * ((1 - tc * tc) if tanh_sq else (1 - tc)) if via_h else 0)
    da = np.concatenate([dc * g * i * (1 - i), dc * cp * f * (1 - f), dh * tc * o * (1 - o), dc * i * (1 - g * g)], axis=1)
    return {"x": da @ Wx.T, "prev_h": da @ Wh.T, "prev_c": dc * f if f_on_c else dc, "Wx": x.T @ da, "Wh": h.T @ da, "b": da.sum(axis=0)}


_LSTM_STEP = [
    Mutant("lstm-cell-path", "the gradient reaching next_c through next_h = o·tanh(next_c) is missing: dc = dnext_c + dnext_h·o·(1 − tanh²(next_c)).",
           lambda c: _lstm(c, via_h=False)),
    Mutant("lstm-cell-path", "dprev_c misses the forget gate: dprev_c = dc·f, not dc.", lambda c: _lstm(c, f_on_c=False)),
    Mutant("tanh-derivative", "tanh′ of next_c written as 1 − tanh(next_c) instead of 1 − tanh²(next_c): the square is missing.",
           lambda c: _lstm(c, tanh_sq=False)),
]


def _embedding_overwrite(c: LayerCase):
    x, dout = c.arrays["x"], c.upstream["out"]
    dW = np.zeros(c.arrays["W"].shape)
    dW[x.reshape(-1)] = dout.reshape(-1, dout.shape[-1])  # fancy assignment: the last write of a repeated word wins
    if len(np.unique(x)) == x.size:
        return None
    return {"W": dW}


_EMBEDDING = [
    Mutant("embedding-overwrite", "repeated words overwrite instead of accumulate: dW[x] = dout keeps one gradient per word; use np.add.at(dW, x, dout).",
           _embedding_overwrite),
]

MUTANTS: dict[str, list[Mutant]] = {
    "tanh": _TANH, "sigmoid": _SIGMOID, "relu": _RELU, "dropout": _DROPOUT, "batchnorm": _BATCHNORM, "layernorm": _LAYERNORM,
    "spatial_batchnorm": _SPATIAL_BATCHNORM, "spatial_groupnorm": _groupnorm_mutants(), "conv": _CONV, "max_pool": _MAX_POOL,
    "svm_loss": _SVM, "softmax_loss": _SOFTMAX, "temporal_softmax_loss": _TEMPORAL_SOFTMAX, "rnn_step": _RNN_STEP, "rnn": _RNN,
    "lstm_step": _LSTM_STEP, "word_embedding": _EMBEDDING,
}


def mutants_for(layer: str) -> list[Mutant]:
    """The bug models of ``layer`` (empty when it has none beyond the generic ones)."""
    return MUTANTS.get(layer, [])
