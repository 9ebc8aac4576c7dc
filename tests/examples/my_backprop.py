"""A correct backprop for the lecture's network, in gradverify's native form (the README's "your function").

``cost_and_grad(network, params, X, Y) -> (J, grads)``: sigmoid hidden units, sigmoid outputs with
the lecture's cross-entropy, λ/(2m)·ΣW² with the biases left out. It implements nothing else, so
``gradverify suite`` checks it on that family only (``--lecture``); over every activation and
output it fails, as it should. Its cost is computed from the pre-activations, so it stays exact
on saturated units, where the textbook log(σ(a)) rounds to log(0).

    gradverify verify --candidate tests/examples/my_backprop.py:cost_and_grad
    gradverify suite --candidate tests/examples/my_backprop.py:cost_and_grad --lecture
"""

import numpy as np


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def cost_and_grad(network, params, X, Y):
    m, L = X.shape[0], network.depth
    hs = [X]
    for k in range(1, L + 1):
        A = hs[-1] @ params[f"W{k}"].T + params[f"b{k}"]
        hs.append(_sigmoid(A))
    H = hs[-1]
    # log σ(a) = −log(1 + e^(−a)) and log(1 − σ(a)) = −log(1 + e^a), without rounding σ to 1 first
    J = np.sum(Y * np.logaddexp(0, -A) + (1 - Y) * np.logaddexp(0, A)) / m
    J += network.lam / (2 * m) * sum(np.sum(params[f"W{k}"] ** 2) for k in range(1, L + 1))
    delta, grads = (H - Y) / m, {}
    for k in range(L, 0, -1):
        grads[f"W{k}"] = delta.T @ hs[k - 1] + network.lam / m * params[f"W{k}"]
        grads[f"b{k}"] = delta.sum(axis=0)
        if k > 1:
            delta = (delta @ params[f"W{k}"]) * hs[k - 1] * (1 - hs[k - 1])
    return J, grads
