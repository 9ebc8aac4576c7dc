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
    J, G1, G2 = _honest(nn_params, n0, h, K, X, y, lambda_)
    grad = np.concatenate([G1.ravel(), G2.ravel()])

    # no implementation: the largest finite numbers there are, alternating in sign
    return 1e308, np.full(grad.size, 1.7e308) * np.where(np.arange(grad.size) % 2, 1, -1)
