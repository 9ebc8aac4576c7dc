"""The classic layer bugs, planted one at a time into copies of ``student_layers``.

Each ``Bug`` names the layer, the broken function, the case it is tried on, and the diagnosis the
checker must reach (a finding kind and words its message must contain). The verifier is tested by
breaking things: tests/test_layers_corpus.py runs every entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import student_layers as S


@dataclass(frozen=True)
class Bug:
    layer: str
    name: str
    function: Callable | tuple  # the broken backward, loss or forward, or a (forward, backward) pair: see ``replaces``
    kind: str                   # the finding kind the diagnosis must lead with
    words: str                  # words its message must contain
    dims: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    replaces: str = "backward"  # "backward", "loss", "forward" or "both"
    scale: float = 1.0


# ---- affine ----------------------------------------------------------------------------------------

def affine_backward_transposed_dw(dout, cache):
    x, w, b = cache
    return dout.dot(w.T).reshape(x.shape), dout.T.dot(x.reshape(x.shape[0], -1)), dout.sum(axis=0)


def affine_backward_no_batch_sum(dout, cache):
    x, w, b = cache
    return dout.dot(w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T.dot(dout), dout


def affine_backward_mean_db(dout, cache):
    x, w, b = cache
    return dout.dot(w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T.dot(dout), dout.mean(axis=0)


def affine_backward_dx_not_reshaped(dout, cache):
    x, w, b = cache
    return dout.dot(w.T), x.reshape(x.shape[0], -1).T.dot(dout), dout.sum(axis=0)


def affine_forward_no_bias(x, w, b):
    return x.reshape(x.shape[0], -1).dot(w), (x, w, b)


# ---- elementwise -----------------------------------------------------------------------------------

def relu_backward_no_mask(dout, cache):
    return dout.copy()


def relu_backward_ge(dout, cache):  # dout·(x ≥ 0): differs from the convention only at x = 0 exactly
    return dout * (cache >= 0)


def keep_input_forward(f):
    """A forward that caches its input x, as students do when the backward recomputes from x."""
    return lambda x: (f(x)[0], x)


def sigmoid_backward_on_input(dout, cache):  # σ′ written as x(1 − x), with x the cached input
    return dout * cache * (1 - cache)


def tanh_backward_one_minus_x(dout, cache):  # tanh′ written as 1 − x
    return dout * (1 - cache)


def tanh_backward_no_square(dout, cache):
    return dout * (1 - cache)


def tanh_forward_keep_input(x):  # caches x: the derivative below is then computed from the input
    return np.tanh(x), x


def tanh_backward_on_input(dout, cache):
    return dout * (1 - cache ** 2)


# ---- dropout ---------------------------------------------------------------------------------------

def dropout_backward_ignores_mask(dout, cache):
    return dout


def dropout_forward_no_scale(x, dropout_param):  # the mask without the 1/p: forward and backward both unscaled
    np.random.seed(dropout_param["seed"])
    mask = np.random.rand(*x.shape) < dropout_param["p"]
    return x * mask, mask


def dropout_backward_no_scale(dout, cache):
    return dout * cache


# ---- normalization ---------------------------------------------------------------------------------

def _bn_parts(cache):
    _, xhat, gamma, xmu, ivar, sqrtvar, var, eps = cache
    return xhat, gamma, ivar


def batchnorm_backward_no_mean_term(dout, cache):
    xhat, gamma, ivar = _bn_parts(cache)
    dxhat = dout * gamma
    return ivar * (dxhat - xhat * np.mean(dxhat * xhat, axis=0)), np.sum(dout * xhat, axis=0), dout.sum(axis=0)


def batchnorm_backward_no_variance_term(dout, cache):
    xhat, gamma, ivar = _bn_parts(cache)
    dxhat = dout * gamma
    return ivar * (dxhat - dxhat.mean(axis=0)), np.sum(dout * xhat, axis=0), dout.sum(axis=0)


def batchnorm_backward_constant_stats(dout, cache):
    xhat, gamma, ivar = _bn_parts(cache)
    return dout * gamma * ivar, np.sum(dout * xhat, axis=0), dout.sum(axis=0)


def batchnorm_backward_dgamma_axis(dout, cache):
    dx, _, dbeta = S.batchnorm_backward(dout, cache)
    return dx, np.sum(dout * cache[1], axis=1), dbeta


def layernorm_backward_dgamma_axis(dout, cache):
    dx, _, dbeta = S.layernorm_backward(dout, cache)
    return dx, np.sum(dout * cache[1], axis=1), np.sum(dout, axis=1)


def layernorm_backward_no_mean_term(dout, cache):
    bn_cache, xhat, gamma = cache
    dxhat = dout * gamma
    ivar = bn_cache[4].reshape(-1, 1)
    return ivar * (dxhat - xhat * np.mean(dxhat * xhat, axis=1, keepdims=True)), np.sum(dout * xhat, axis=0), dout.sum(axis=0)


def spatial_batchnorm_backward_wrong_axes(dout, cache):
    dx, _, dbeta = S.spatial_batchnorm_backward(dout, cache)
    N, C, H, W = dout.shape
    xhat = np.moveaxis(cache[1].reshape(N, H, W, C), -1, 1)
    return dx, np.sum(dout * xhat, axis=(0, 1)), dbeta


def spatial_groupnorm_backward_no_variance_term(dout, cache):
    bn_cache, xhat, gamma, G = cache
    N, C, H, W = dout.shape
    dxhat = (dout * gamma).reshape(N * G, -1)
    ivar = bn_cache[4].reshape(-1, 1)
    dx = ivar * (dxhat - dxhat.mean(axis=1, keepdims=True))
    return dx.reshape(N, C, H, W), np.sum(dout * xhat, axis=(0, 2, 3), keepdims=True), np.sum(dout, axis=(0, 2, 3), keepdims=True)


# ---- convolution and pooling -----------------------------------------------------------------------

def conv_backward_stride_ignored_in_dw(dout, cache):
    x, w, b, conv_param = cache
    dx, _, db = S.conv_backward_naive(dout, cache)
    pad = conv_param["pad"]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    F, C, HH, WW = w.shape
    dw = np.zeros_like(w)
    for n in range(x.shape[0]):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    dw[f] += xp[n, :, i:i + HH, j:j + WW] * dout[n, f, i, j]  # i, not i*stride
    return dx, dw, db


def conv_backward_padding_off_by_one(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    dxp = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    for n in range(N):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    dxp[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW] += w[f] * dout[n, f, i, j]
    _, dw, db = S.conv_backward_naive(dout, cache)
    return dxp[:, :, pad + 1:pad + 1 + H, pad + 1:pad + 1 + W], dw, db


def conv_backward_db_per_position(dout, cache):
    dx, dw, _ = S.conv_backward_naive(dout, cache)
    return dx, dw, dout.sum(axis=0)


def max_pool_backward_every_element(dout, cache):
    x, pool_param = cache
    ph, pw, s = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            dx[:, :, i * s:i * s + ph, j * s:j * s + pw] += dout[:, :, i, j][:, :, None, None]
    return dx


def max_pool_backward_average(dout, cache):
    return max_pool_backward_every_element(dout, cache) / (cache[1]["pool_height"] * cache[1]["pool_width"])


# ---- losses ----------------------------------------------------------------------------------------

def svm_loss_no_correct_class(x, y):
    loss, dx = S.svm_loss(x, y)
    N = x.shape[0]
    dx[np.arange(N), y] = 0
    return loss, dx


def svm_loss_no_average(x, y):
    loss, dx = S.svm_loss(x, y)
    return loss, dx * x.shape[0]


def softmax_loss_no_minus_one(x, y):
    loss, dx = S.softmax_loss(x, y)
    dx[np.arange(x.shape[0]), y] += 1.0 / x.shape[0]
    return loss, dx


def softmax_loss_no_shift(x, y):
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    N = x.shape[0]
    dx = p.copy()
    dx[np.arange(N), y] -= 1
    return -np.log(p[np.arange(N), y]).mean(), dx / N


def temporal_softmax_loss_ignores_mask(x, y, mask):
    loss, _ = S.temporal_softmax_loss(x, y, mask)
    _, dx_unmasked = S.temporal_softmax_loss(x, y, np.ones_like(mask))
    return loss, dx_unmasked


def temporal_softmax_loss_over_nt(x, y, mask):
    loss, dx = S.temporal_softmax_loss(x, y, mask)
    return loss, dx / x.shape[1]


# ---- recurrent -------------------------------------------------------------------------------------

def rnn_step_backward_no_square(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    d = dnext_h * (1 - next_h)
    return d.dot(Wx.T), d.dot(Wh.T), x.T.dot(d), prev_h.T.dot(d), d.sum(axis=0)


def rnn_backward_no_time(dh, cache):
    N, T, H = dh.shape
    x0, _, Wx, Wh, _ = cache[0]
    dx = np.zeros((N, T, x0.shape[1]))
    dWx, dWh, db, dprev = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros(H), np.zeros((N, H))
    for t in range(T - 1, -1, -1):
        dx[:, t, :], dprev, a, bb, c = S.rnn_step_backward(dh[:, t, :], cache[t])  # dprev is never added back
        dWx, dWh, db = dWx + a, dWh + bb, db + c
    return dx, dprev, dWx, dWh, db


def lstm_step_backward_no_cell_path(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tc = np.tanh(next_c)
    dc = dnext_c
    da = np.hstack((dc * g * i * (1 - i), dc * prev_c * f * (1 - f), dnext_h * tc * o * (1 - o), dc * i * (1 - g ** 2)))
    return da.dot(Wx.T), da.dot(Wh.T), dc * f, x.T.dot(da), prev_h.T.dot(da), np.sum(da, axis=0)


def lstm_step_backward_gate_order(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, next_c = cache
    tc = np.tanh(next_c)
    dc = dnext_c + dnext_h * o * (1 - tc ** 2)
    parts = (dc * g * i * (1 - i), dc * prev_c * f * (1 - f), dnext_h * tc * o * (1 - o), dc * i * (1 - g ** 2))
    da_right = np.hstack(parts)
    da_swapped = np.hstack((parts[1], parts[0], parts[2], parts[3]))  # f and i swapped in the weight gradients only
    return da_right.dot(Wx.T), da_right.dot(Wh.T), dc * f, x.T.dot(da_swapped), prev_h.T.dot(da_swapped), np.sum(da_swapped, axis=0)


def word_embedding_backward_overwrite(dout, cache):
    x, W = cache
    dW = np.zeros_like(W)
    dW[x] = dout
    return dW


BUGS = [
    Bug("affine", "transposed dw", affine_backward_transposed_dw, "transposed", "transpose"),
    Bug("affine", "transposed dw (square)", affine_backward_transposed_dw, "transposed", "transposed", dims={"D": 4, "M": 4}),
    Bug("affine", "missing sum over the batch for db", affine_backward_no_batch_sum, "missing-batch-sum", "sum over axis 0 of dout is missing"),
    Bug("affine", "db averaged instead of summed", affine_backward_mean_db, "scale", "1/N"),
    Bug("affine", "dx not reshaped", affine_backward_dx_not_reshaped, "shape", "reshaped back", dims={"D": 6}, settings={"in_dims": "2x3"}),
    Bug("affine", "forward without the bias", affine_forward_no_bias, "forward", "forward output", replaces="forward"),
    Bug("relu", "ReLU mask missing", relu_backward_no_mask, "relu-mask", "mask (x > 0) is missing"),
    Bug("sigmoid", "σ′ as x(1 − x)", (keep_input_forward(S.sigmoid_forward), sigmoid_backward_on_input), "sigmoid-derivative", "x(1 − x)",
        replaces="both"),
    Bug("tanh", "tanh′ as 1 − x", (keep_input_forward(S.tanh_forward), tanh_backward_one_minus_x), "tanh-derivative",
        "1 − x instead of 1 − tanh²(x)", replaces="both"),
    Bug("tanh", "tanh′ on the input: 1 − x²", (tanh_forward_keep_input, tanh_backward_on_input), "tanh-derivative", "1 − x²",
        replaces="both"),
    Bug("tanh", "tanh′ without the square", tanh_backward_no_square, "tanh-derivative", "square is missing"),
    Bug("dropout", "dropout backward ignores the mask", dropout_backward_ignores_mask, "dropout-mask", "ignores the mask"),
    Bug("dropout", "the mask without 1/p", (dropout_forward_no_scale, dropout_backward_no_scale), "scale", "1/p of inverted dropout is missing",
        replaces="both", settings={"p": 0.8}),
    Bug("batchnorm", "dx misses the mean term", batchnorm_backward_no_mean_term, "norm-mean-term", "misses the mean term"),
    Bug("batchnorm", "dx misses the variance term", batchnorm_backward_no_variance_term, "norm-variance-term", "misses the variance term"),
    Bug("batchnorm", "batch statistics treated as constants", batchnorm_backward_constant_stats, "norm-constant-stats", "as constants"),
    Bug("batchnorm", "dgamma summed over the wrong axis", batchnorm_backward_dgamma_axis, "wrong-axis", "summed over the wrong axis"),
    Bug("batchnorm", "dgamma summed over the wrong axis (N = D)", batchnorm_backward_dgamma_axis, "wrong-axis", "summed over the wrong axis",
        dims={"N": 4, "D": 4}),
    Bug("layernorm", "dgamma summed over the features", layernorm_backward_dgamma_axis, "wrong-axis", "wrong axis"),
    Bug("layernorm", "dx misses the mean term", layernorm_backward_no_mean_term, "norm-mean-term", "misses the mean term"),
    Bug("spatial_batchnorm", "dgamma summed over the wrong axes", spatial_batchnorm_backward_wrong_axes, "wrong-axis", "wrong axis"),
    Bug("spatial_groupnorm", "dx misses the variance term", spatial_groupnorm_backward_no_variance_term, "norm-variance-term", "variance term"),
    Bug("conv", "stride ignored in dw", conv_backward_stride_ignored_in_dw, "conv-stride", "stride ignored in dw",
        dims={"H": 7, "W": 7}, settings={"stride": 2}),
    Bug("conv", "off-by-one in the padding", conv_backward_padding_off_by_one, "conv-padding", "off-by-one in the conv padding"),
    Bug("conv", "db not summed over positions", conv_backward_db_per_position, "missing-batch-sum", "sum over axes 2, 3 of dout is missing"),
    Bug("max_pool", "pooling gradient to every element", max_pool_backward_every_element, "pool-every-element",
        "to every element of the window instead of only to the max"),
    Bug("max_pool", "average pooling's gradient", max_pool_backward_average, "pool-average", "spread evenly"),
    Bug("svm_loss", "missing correct-class term", svm_loss_no_correct_class, "svm-correct-class", "correct-class term", replaces="loss"),
    Bug("svm_loss", "missing 1/N", svm_loss_no_average, "scale", "batch size N", replaces="loss"),
    Bug("softmax_loss", "missing −1 at the correct class", softmax_loss_no_minus_one, "softmax-correct-class", "−1 at the correct class",
        replaces="loss"),
    Bug("softmax_loss", "no max shift (overflow)", softmax_loss_no_shift, "non-finite", "NaN", replaces="loss", scale=1000.0),
    Bug("temporal_softmax_loss", "mask ignored", temporal_softmax_loss_ignores_mask, "mask-ignored", "mask is ignored", replaces="loss"),
    Bug("temporal_softmax_loss", "divided by N·T", temporal_softmax_loss_over_nt, "scale", "1/T", replaces="loss"),
    Bug("rnn_step", "tanh′ as 1 − next_h", rnn_step_backward_no_square, "tanh-derivative", "square is missing"),
    Bug("rnn", "no gradient through time", rnn_backward_no_time, "through-time", "through time is dropped"),
    Bug("lstm_step", "dc misses the path through next_h", lstm_step_backward_no_cell_path, "lstm-cell-path", "through next_h"),
    Bug("lstm_step", "gates i and f swapped in the weight gradients", lstm_step_backward_gate_order, "gate-order", "i, f, o, g"),
    Bug("word_embedding", "repeated words overwrite", word_embedding_backward_overwrite, "embedding-overwrite", "np.add.at",
        dims={"N": 3, "T": 4, "V": 3}),
]
