"""A correct but slow backpropagation: a Python loop over every weight (must not be taken for a numerical gradient)."""

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _unpack(nn_params, n0, h, K):
    n1 = h * (n0 + 1)
    return nn_params[:n1].reshape(h, n0 + 1), nn_params[n1:].reshape(K, h + 1)


def _cost(p, n0, h, K, X, y, lam):
    T1, T2 = _unpack(p, n0, h, K)
    m = X.shape[0]
    a1 = np.concatenate([np.ones((m, 1)), X], axis=1)
    a2 = np.concatenate([np.ones((m, 1)), sigmoid(a1 @ T1.T)], axis=1)
    hh = sigmoid(a2 @ T2.T)
    Y = np.eye(K)[y]
    return (-np.sum(Y * np.log(hh) + (1 - Y) * np.log(1 - hh)) / m
            + lam / (2 * m) * (np.sum(T1[:, 1:] ** 2) + np.sum(T2[:, 1:] ** 2)))


def nnCostFunction(nn_params, n0, h, K, X, y, lam=0.0):
    T1, T2 = _unpack(nn_params, n0, h, K)
    m = X.shape[0]
    a1 = np.concatenate([np.ones((m, 1)), X], axis=1)
    z2 = a1 @ T1.T
    a2 = np.concatenate([np.ones((m, 1)), sigmoid(z2)], axis=1)
    hh = sigmoid(a2 @ T2.T)
    Y = np.eye(K)[y]
    d3 = hh - Y
    g = sigmoid(z2)
    d2 = (d3 @ T2)[:, 1:] * g * (1 - g)
    G1 = np.zeros_like(T1)
    G2 = np.zeros_like(T2)
    for i in range(h):
        for j in range(n0 + 1):
            G1[i, j] = np.sum(d2[:, i] * a1[:, j]) / m + (lam / m * T1[i, j] if j else 0.0)
    for i in range(K):
        for j in range(h + 1):
            G2[i, j] = np.sum(d3[:, i] * a2[:, j]) / m + (lam / m * T2[i, j] if j else 0.0)
    return _cost(nn_params, n0, h, K, X, y, lam), np.concatenate([G1.ravel(), G2.ravel()])
