"""A backprop with one classic bug, for the example report in reports/example/.

``cost_and_grad`` is written the way the lecture's exercise is often solved, in gradverify's
``native`` form ``cost_and_grad(network, params, X, Y) -> (J, grads)``, sigmoid units and the
lecture's cost. The bug: the gradient of the first layer's biases is summed over the batch but
never divided by m, so the bias column of Θ1 is m times too large. Everything else is right.

    gradverify verify --candidate tests/examples/buggy_bias.py:cost_and_grad --report reports/example
"""

import numpy as np


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def cost_and_grad(network, params, X, Y):
    m, L = X.shape[0], len(network.sizes) - 1
    lam = network.lam
    hs = [X]
    for k in range(1, L + 1):
        hs.append(_sigmoid(hs[-1] @ params[f"W{k}"].T + params[f"b{k}"]))
    H = hs[-1]
    J = -np.sum(Y * np.log(H) + (1 - Y) * np.log(1 - H)) / m
    J += lam / (2 * m) * sum(np.sum(params[f"W{k}"] ** 2) for k in range(1, L + 1))
    grads = {}
    delta = H - Y  # (m, n_L)
    for k in range(L, 0, -1):
        grads[f"W{k}"] = delta.T @ hs[k - 1] / m + lam / m * params[f"W{k}"]
        grads[f"b{k}"] = delta.sum(axis=0) / m
        if k == 1:
            grads["b1"] = delta.sum(axis=0)  # BUG: the 1/m is missing here
        if k > 1:
            delta = (delta @ params[f"W{k}"]) * hs[k - 1] * (1 - hs[k - 1])
    return J, grads
