"""Hostile and broken layers on top of a correct layers.py: each must fail (or be noted) in its own item only.

The grading test copies this file as ``layers.py`` beside ``tests/layers/student_layers.py``:
every layer not overridden here is the correct one and must keep its full marks.
"""

import os
import sys

import numpy as np
import student_layers as _ok
from student_layers import *  # noqa: F401,F403

del lstm_step_forward, lstm_step_backward  # noqa: F821  (not attempted: no such functions)
del batchnorm_backward_alt  # noqa: F821  (not attempted: batchnorm_forward is the batchnorm item's)


def relu_backward(dout, cache):  # raises: the item fails, naming relu_backward
    raise RuntimeError("not implemented yet")


def tanh_backward(dout, cache):  # kills its own process: the worker is restarted for the next item
    os._exit(3)


def sigmoid_backward(dout, cache):  # never returns: the call times out
    while True:
        pass


def affine_backward(dout, cache):  # dw is text
    dx, dw, db = _ok.affine_backward(dout, cache)
    return dx, "1.5", db


def max_pool_backward_naive(dout, cache):  # a dict where dx belongs
    return {"dx": _ok.max_pool_backward_naive(dout, cache)}


def conv_forward_naive(x, w, b, conv_param):  # no cache
    return _ok.conv_forward_naive(x, w, b, conv_param)[0]


def svm_loss(x, y):  # the loss is NaN
    _, dx = _ok.svm_loss(x, y)
    return float("nan"), dx


def rnn_step_backward(dnext_h, cache):  # far too large to send back
    return np.zeros((6000, 6000)), None, None, None, None


def temporal_affine_backward(dout, cache):  # exits
    sys.exit(0)


def layernorm_forward(x, gamma, beta, ln_param):  # a stub: not attempted
    out, cache = None, None
    return out, cache


def dropout_backward(dout, cache):  # right, but floods stdout
    print("x" * 200_000)
    return _ok.dropout_backward(dout, cache)


def batchnorm_backward(dout, cache):  # right, but writes into dout (read-only): a note, not a failure
    dout *= 1.0
    return _ok.batchnorm_backward(dout, cache)
