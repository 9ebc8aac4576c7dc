"""A correct but slow backpropagation: Python loops over every example, unit and weight (must not be taken for a numerical gradient)."""

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
    D1 = np.zeros_like(T1)
    D2 = np.zeros_like(T2)
    for t in range(m):
        a1 = np.concatenate([[1.0], X[t]])
        z2 = np.zeros(h)
        for i in range(h):
            s = 0.0
            for j in range(n0 + 1):
                s += T1[i, j] * a1[j]
            z2[i] = s
        a2 = np.concatenate([[1.0], sigmoid(z2)])
        a3 = np.zeros(K)
        for k in range(K):
            s = 0.0
            for j in range(h + 1):
                s += T2[k, j] * a2[j]
            a3[k] = 1 / (1 + np.exp(-s))
        d3 = a3.copy()
        d3[y[t]] -= 1
        d2 = np.zeros(h)
        for i in range(h):
            s = 0.0
            for k in range(K):
                s += T2[k, i + 1] * d3[k]
            d2[i] = s * a2[i + 1] * (1 - a2[i + 1])
        for i in range(h):
            for j in range(n0 + 1):
                D1[i, j] += d2[i] * a1[j]
        for k in range(K):
            for j in range(h + 1):
                D2[k, j] += d3[k] * a2[j]
    G1, G2 = D1 / m, D2 / m
    G1[:, 1:] += lam / m * T1[:, 1:]
    G2[:, 1:] += lam / m * T2[:, 1:]
    return _cost(nn_params, n0, h, K, X, y, lam), np.concatenate([G1.ravel(), G2.ravel()])
