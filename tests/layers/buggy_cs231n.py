"""A layers.py with CS231n's names and two classic bugs, for the command-line tests."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from student_layers import *  # noqa: E402,F401,F403
from student_layers import batchnorm_forward  # noqa: E402,F401


def batchnorm_backward(dout, cache):  # dx misses the mean term
    _, xhat, gamma, xmu, ivar, sqrtvar, var, eps = cache
    dxhat = dout * gamma
    return ivar * (dxhat - xhat * np.mean(dxhat * xhat, axis=0)), np.sum(dout * xhat, axis=0), dout.sum(axis=0)


def conv_backward_naive(dout, cache):  # stride ignored in dw (and nowhere else)
    import student_layers

    x, w, b, conv_param = cache
    dx, _, db = student_layers.conv_backward_naive(dout, cache)
    pad = conv_param["pad"]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dw = np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            dw += np.einsum("nf,nchw->fchw", dout[:, :, i, j], xp[:, :, i:i + w.shape[2], j:j + w.shape[3]])
    return dx, dw, db


def relu_backward(dout, cache):
    raise RuntimeError("not implemented yet")
