import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def cost_and_gradients(weights, biases, X, Y, lambda_):
    """The lecture's layer-wise backprop: lists of W (n_k, n_{k-1}) and b (n_k,)."""
    m = X.shape[0]
    hs = [X]
    for W, b in zip(weights, biases):
        hs.append(sigmoid(hs[-1] @ W.T + b))
    h = hs[-1]
    J = -np.sum(Y * np.log(h) + (1 - Y) * np.log(1 - h)) / m
    J += lambda_ / (2 * m) * sum(np.sum(W ** 2) for W in weights)
    delta = h - Y
    dWs, dbs = [None] * len(weights), [None] * len(weights)
    for k in range(len(weights) - 1, -1, -1):
        dWs[k] = delta.T @ hs[k] / m + lambda_ / m * weights[k]
        dbs[k] = delta.sum(axis=0) / m
        if k > 0:
            delta = (delta @ weights[k]) * hs[k] * (1 - hs[k])
    return J, dWs, dbs
