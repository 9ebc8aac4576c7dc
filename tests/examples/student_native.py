"""A student's backprop in gradverify's native form, with one classic bug: it regularizes the biases.

``cost_and_grad(network, params, X, Y) -> (J, grads)`` for sigmoid networks with the lecture's
cross-entropy and λ/(2m)·ΣW². The cost is right (the biases are left out of the penalty there);
the gradient adds λ/m·b to every bias gradient, as if the biases were penalized. The README's
failing-candidate example runs it:

    gradverify verify --candidate tests/examples/student_native.py:cost_and_grad --rows 3 --sources exact,backprop
"""

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
        grads[f"b{k}"] = delta.sum(0) / m + 2 * c * params[f"b{k}"]  # BUG: the biases are not in the penalty
        if k > 1:
            delta = (delta @ params[f"W{k}"]) * hs[k - 1] * (1 - hs[k - 1])
    return J, grads
