"""A CS231n-style skeleton with only the first two layers done: the rest are stubs, not attempted."""

import numpy as np


def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1) @ w + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    x, w, b = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    out = np.maximum(0, x)
    return out, x


def relu_backward(dout, cache):
    return dout * (cache > 0)


def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    out, cache = None, None
    if mode == "train":
        pass  # TODO
    elif mode == "test":
        pass  # TODO
    else:
        raise ValueError('Invalid forward batchnorm mode "%s"' % mode)
    return out, cache


def batchnorm_backward(dout, cache):
    dx, dgamma, dbeta = None, None, None
    # TODO
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    dx, dgamma, dbeta = None, None, None
    # TODO
    return dx, dgamma, dbeta


def dropout_forward(x, dropout_param):
    p, mode = dropout_param["p"], dropout_param["mode"]
    mask = None
    out = None
    if mode == "train":
        pass  # TODO
    elif mode == "test":
        pass  # TODO
    cache = (dropout_param, mask)
    out = out.astype(x.dtype, copy=False)
    return out, cache


def dropout_backward(dout, cache):
    dropout_param, mask = cache
    mode = dropout_param["mode"]
    dx = None
    if mode == "train":
        pass  # TODO
    elif mode == "test":
        dx = dout
    return dx


def conv_forward_naive(x, w, b, conv_param):
    out = None
    # TODO
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(dout, cache):
    dx, dw, db = None, None, None
    # TODO
    return dx, dw, db


def max_pool_forward_naive(x, pool_param):
    raise NotImplementedError


def max_pool_backward_naive(dout, cache):
    raise NotImplementedError


def svm_loss(x, y):
    loss, dx = None, None
    # TODO
    return loss, dx


def softmax_loss(x, y):
    loss, dx = None, None
    # TODO
    return loss, dx
