"""The backprop engine for layers: hand-derived numpy backward passes, CS231n's modular API.

Each layer is a ``*_forward(…) -> (out, cache)`` / ``*_backward(dout, cache) -> (dx, …)`` pair
with the signatures of the CS231n assignments (losses return ``(loss, dx)`` at once), written
forward beside backward. ``gradverify`` calls this module exactly as it calls a candidate
(``layers.candidate``), so the engine and the calling convention are tested together.

Every rule is derived by hand here; this module never imports SymPy, the oracle or the
finite-difference forwards. Conventions at non-differentiable points: ReLU′(0) = 0, a pooling
window's gradient goes to its first maximum (row-major), a hinge at exactly 0 passes nothing.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "affine_forward", "affine_backward", "relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward", "dropout_forward", "dropout_backward", "batchnorm_forward", "batchnorm_backward",
    "layernorm_forward", "layernorm_backward", "conv_forward_naive", "conv_backward_naive", "max_pool_forward_naive",
    "max_pool_backward_naive", "spatial_batchnorm_forward", "spatial_batchnorm_backward", "spatial_groupnorm_forward",
    "spatial_groupnorm_backward", "svm_loss", "softmax_loss", "rnn_step_forward", "rnn_step_backward", "rnn_forward",
    "rnn_backward", "lstm_step_forward", "lstm_step_backward", "lstm_forward", "lstm_backward", "word_embedding_forward",
    "word_embedding_backward", "temporal_affine_forward", "temporal_affine_backward", "temporal_softmax_loss",
]


def _sigmoid(z):
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1 / (1 + np.exp(-z[pos]))
    e = np.exp(z[~pos])
    out[~pos] = e / (1 + e)
    return out


# ---- affine and elementwise ----------------------------------------------------------------

def affine_forward(x, w, b):
    """out = x.reshape(N, D) @ w + b."""
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w)


def affine_backward(dout, cache):
    x, w = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)  # relu′(0) = 0


def sigmoid_forward(x):
    s = _sigmoid(x)
    return s, s


def sigmoid_backward(dout, cache):
    s = cache
    return dout * s * (1 - s)


def tanh_forward(x):
    t = np.tanh(x)
    return t, t


def tanh_backward(dout, cache):
    t = cache
    return dout * (1 - t * t)


def dropout_forward(x, dropout_param):
    """Inverted dropout. ``dropout_param``: ``p`` (keep probability; ``keep_prob`` overrides it when the
    caller's p means the drop probability), ``mode``, and either an explicit 0/1 ``mask`` or a ``seed``."""
    p, mode = dropout_param.get("keep_prob", dropout_param["p"]), dropout_param["mode"]
    if mode == "test":
        return x.copy(), (None, mode)
    keep = dropout_param.get("mask")
    if keep is None:
        if "seed" in dropout_param:
            np.random.seed(dropout_param["seed"])
        keep = np.random.rand(*x.shape) < p
    mask = keep / p
    return x * mask, (mask, mode)


def dropout_backward(dout, cache):
    mask, mode = cache
    return dout * mask if mode == "train" else dout.copy()


# ---- normalization -------------------------------------------------------------------------

def _norm_forward(x, axis, eps):
    mu = x.mean(axis=axis, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=axis, keepdims=True)
    inv = 1 / np.sqrt(var + eps)
    return xc * inv, inv


def _norm_backward(dxhat, xhat, inv, axis):
    # x̂ = (x − μ)/σ: ∂/∂x of Σ dx̂·x̂ over a group of n is (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) / σ
    return inv * (dxhat - dxhat.mean(axis=axis, keepdims=True) - xhat * (dxhat * xhat).mean(axis=axis, keepdims=True))


def batchnorm_forward(x, gamma, beta, bn_param):
    mode, eps = bn_param["mode"], bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    if mode == "train":
        xhat, inv = _norm_forward(x, 0, eps)
        rm = bn_param.get("running_mean", np.zeros(D))
        rv = bn_param.get("running_var", np.ones(D))
        bn_param["running_mean"] = momentum * rm + (1 - momentum) * x.mean(axis=0)
        bn_param["running_var"] = momentum * rv + (1 - momentum) * x.var(axis=0)
    else:
        inv = 1 / np.sqrt(bn_param["running_var"] + eps)
        xhat = (x - bn_param["running_mean"]) * inv
    return gamma * xhat + beta, (xhat, gamma, inv, mode)


def batchnorm_backward(dout, cache):
    xhat, gamma, inv, mode = cache
    dgamma = (dout * xhat).sum(axis=0)
    dbeta = dout.sum(axis=0)
    dxhat = dout * gamma
    dx = _norm_backward(dxhat, xhat, inv, 0) if mode == "train" else dxhat * inv
    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, ln_param):
    xhat, inv = _norm_forward(x, 1, ln_param.get("eps", 1e-5))
    return gamma * xhat + beta, (xhat, gamma, inv)


def layernorm_backward(dout, cache):
    xhat, gamma, inv = cache
    return _norm_backward(dout * gamma, xhat, inv, 1), (dout * xhat).sum(axis=0), dout.sum(axis=0)


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    N, C, H, W = x.shape
    out, cache = batchnorm_forward(x.transpose(0, 2, 3, 1).reshape(-1, C), gamma, beta, bn_param)
    return out.reshape(N, H, W, C).transpose(0, 3, 1, 2), cache


def spatial_batchnorm_backward(dout, cache):
    N, C, H, W = dout.shape
    dx, dgamma, dbeta = batchnorm_backward(dout.transpose(0, 2, 3, 1).reshape(-1, C), cache)
    return dx.reshape(N, H, W, C).transpose(0, 3, 1, 2), dgamma, dbeta


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    N, C, H, W = x.shape
    xhat, inv = _norm_forward(x.reshape(N, G, -1), 2, gn_param.get("eps", 1e-5))
    xhat = xhat.reshape(N, C, H, W)
    return gamma * xhat + beta, (xhat, gamma, inv, G)


def spatial_groupnorm_backward(dout, cache):
    xhat, gamma, inv, G = cache
    N, C, H, W = dout.shape
    dgamma = (dout * xhat).sum(axis=(0, 2, 3), keepdims=True)
    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)
    dx = _norm_backward((dout * gamma).reshape(N, G, -1), xhat.reshape(N, G, -1), inv, 2)
    return dx.reshape(N, C, H, W), dgamma, dbeta


# ---- convolution and pooling (naive loops, as the assignment asks) ----------------------------

def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho, Wo = 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.empty((N, F, Ho, Wo))
    wf = w.reshape(F, -1)
    for i in range(Ho):
        for j in range(Wo):
            patch = xp[:, :, i * stride:i * stride + HH, j * stride:j * stride + WW].reshape(N, -1)
            out[:, :, i, j] = patch @ wf.T + b
    return out, (x, w, conv_param)


def conv_backward_naive(dout, cache):
    x, w, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows, cols = slice(i * stride, i * stride + HH), slice(j * stride, j * stride + WW)
            g = dout[:, :, i, j]  # (N, F)
            dw += np.einsum("nf,nchw->fchw", g, xp[:, :, rows, cols])
            dxp[:, :, rows, cols] += np.einsum("nf,fchw->nchw", g, w)
    db = dout.sum(axis=(0, 2, 3))
    return dxp[:, :, pad:pad + H, pad:pad + W], dw, db


def max_pool_forward_naive(x, pool_param):
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    Ho, Wo = 1 + (H - ph) // stride, 1 + (W - pw) // stride
    out = np.empty((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw].max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C = x.shape[:2]
    dx = np.zeros_like(x)
    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw].reshape(N, C, -1)
            k = window.argmax(axis=2)  # the first maximum: the whole gradient goes there
            dx[n, c, i * stride + k // pw, j * stride + k % pw] += dout[:, :, i, j]
    return dx


# ---- losses --------------------------------------------------------------------------------

def svm_loss(x, y):
    N = x.shape[0]
    rows = np.arange(N)
    margins = x - x[rows, y][:, None] + 1.0
    margins[rows, y] = 0.0
    active = margins > 0
    loss = margins[active].sum() / N
    dx = active.astype(np.float64)
    dx[rows, y] = -active.sum(axis=1)
    return loss, dx / N


def softmax_loss(x, y):
    N = x.shape[0]
    rows = np.arange(N)
    z = x - x.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    dx = np.exp(log_p)
    dx[rows, y] -= 1
    return -log_p[rows, y].sum() / N, dx / N


def temporal_softmax_loss(x, y, mask):
    N, T, V = x.shape
    xf, yf, mf = x.reshape(N * T, V), y.reshape(-1), mask.reshape(-1)
    rows = np.arange(N * T)
    z = xf - xf.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    dx = np.exp(log_p)
    dx[rows, yf] -= 1
    dx *= mf[:, None] / N
    return -(mf * log_p[rows, yf]).sum() / N, dx.reshape(N, T, V)


# ---- recurrent -----------------------------------------------------------------------------

def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h * next_h)  # tanh′ = 1 − tanh²
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h = np.empty((N, T, h0.shape[1]))
    caches, prev = [], h0
    for t in range(T):
        prev, cache = rnn_step_forward(x[:, t], prev, Wx, Wh, b)
        h[:, t] = prev
        caches.append(cache)
    return h, caches


def rnn_backward(dh, cache):
    N, T, H = dh.shape
    D = cache[0][0].shape[1]
    dx, dWx, dWh, db = np.empty((N, T, D)), np.zeros((D, H)), np.zeros((H, H)), np.zeros(H)
    dprev = np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], dprev, dwx, dwh, dbt = rnn_step_backward(dh[:, t] + dprev, cache[t])
        dWx += dwx
        dWh += dwh
        db += dbt
    return dx, dprev, dWx, dWh, db


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i, f, o, g = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), _sigmoid(a[:, 2 * H:3 * H]), np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    tc = np.tanh(next_c)
    next_h = o * tc
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tc)


def lstm_step_backward(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, tc = cache
    dc = dnext_c + dnext_h * o * (1 - tc * tc)  # next_c reaches J directly and through next_h = o·tanh(next_c)
    da = np.concatenate([dc * g * i * (1 - i), dc * prev_c * f * (1 - f), dnext_h * tc * o * (1 - o), dc * i * (1 - g * g)], axis=1)
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def lstm_forward(x, h0, Wx, Wh, b):
    N, T, _ = x.shape
    h = np.empty((N, T, h0.shape[1]))
    caches, prev_h, prev_c = [], h0, np.zeros_like(h0)
    for t in range(T):
        prev_h, prev_c, cache = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)
        h[:, t] = prev_h
        caches.append(cache)
    return h, caches


def lstm_backward(dh, cache):
    N, T, H = dh.shape
    D = cache[0][0].shape[1]
    dx, dWx, dWh, db = np.empty((N, T, D)), np.zeros((D, 4 * H)), np.zeros((H, 4 * H)), np.zeros(4 * H)
    dprev_h, dprev_c = np.zeros((N, H)), np.zeros((N, H))
    for t in reversed(range(T)):
        dx[:, t], dprev_h, dprev_c, dwx, dwh, dbt = lstm_step_backward(dh[:, t] + dprev_h, dprev_c, cache[t])
        dWx += dwx
        dWh += dwh
        db += dbt
    return dx, dprev_h, dWx, dWh, db


# ---- words and time ------------------------------------------------------------------------

def word_embedding_forward(x, W):
    return W[x], (x, W.shape)


def word_embedding_backward(dout, cache):
    x, shape = cache
    dW = np.zeros(shape)
    np.add.at(dW, x, dout)  # a word used twice accumulates both gradients
    return dW


def temporal_affine_forward(x, w, b):
    N, T, D = x.shape
    out = (x.reshape(N * T, D) @ w + b).reshape(N, T, -1)
    return out, (x, w)


def temporal_affine_backward(dout, cache):
    x, w = cache
    N, T, D = x.shape
    d2 = dout.reshape(N * T, -1)
    return (d2 @ w.T).reshape(N, T, D), x.reshape(N * T, D).T @ d2, d2.sum(axis=0)
