"""A user's backprop in the native form, with a switch for a planted bug (used by the CLI tests)."""
import os

import numpy as np


def cost_and_grad(network, params, X, Y):
    m = X.shape[0]
    L = network.depth
    hs = [X]
    for k in range(1, L):
        hs.append(1 / (1 + np.exp(-(hs[-1] @ params[f"W{k}"].T + params[f"b{k}"]))))
    H = 1 / (1 + np.exp(-(hs[-1] @ params[f"W{L}"].T + params[f"b{L}"])))
    J = -np.sum(Y * np.log(H) + (1 - Y) * np.log(1 - H)) / m
    c = network.lam / (2 * m)
    J += c * sum(np.sum(params[f"W{k}"] ** 2) for k in range(1, L + 1))
    delta, grads = H - Y, {}
    for k in range(L, 0, -1):
        grads[f"W{k}"] = delta.T @ hs[k - 1] / m + 2 * c * params[f"W{k}"]
        grads[f"b{k}"] = delta.sum(0) / m
        if os.environ.get("GRADVERIFY_TEST_BUG") == "bias":
            grads[f"b{k}"] = grads[f"b{k}"] + 2 * c * params[f"b{k}"]
        if k > 1:
            delta = (delta @ params[f"W{k}"]) * hs[k - 1] * (1 - hs[k - 1])
    return J, grads
