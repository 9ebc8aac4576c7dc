"""Habits seen in real, older CS231n solutions: each must be graded for what it is.

- dropout with p the probability of *dropping* a unit (the course's convention before 2017): right,
  with a note on the convention;
- a ReLU backward with ``x >= 0`` (differs only at exactly 0, a kink): right;
- convolution's backward cropping the padded gradient with ``[pad:-pad]``: empty when pad = 0, a
  real bug that the course's own checks (always pad = 1) never show;
- softmax loss with an epsilon inside the log: its loss is off by ~1e-10, said as such.
"""

import numpy as np


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    return dout * (cache >= 0)


def dropout_forward(x, dropout_param):
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])
    mask = None
    if mode == "train":
        mask = (np.random.rand(*x.shape) >= p) / (1 - p)  # p: the probability of dropping
        out = x * mask
    else:
        out = x
    return out, (dropout_param, mask)


def dropout_backward(dout, cache):
    dropout_param, mask = cache
    return dout * mask if dropout_param["mode"] == "train" else dout


def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho, Wo = 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            window = xp[:, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows, cols = slice(i * stride, i * stride + HH), slice(j * stride, j * stride + WW)
            dw += np.tensordot(dout[:, :, i, j], xp[:, :, rows, cols], axes=([0], [0]))
            dxp[:, :, rows, cols] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    dx = dxp[:, :, pad:-pad, pad:-pad]
    return dx, dw, dout.sum(axis=(0, 2, 3))


def softmax_loss(x, y):
    shifted = x - x.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    N = x.shape[0]
    loss = -np.log(probs[np.arange(N), y] + 1e-10).sum() / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    return loss, dx / N
