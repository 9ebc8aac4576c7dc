"""A catalogue of planted bugs: backprop-like functions written the way students write them.

``student_backprop(problem, bug)`` is a plain per-layer implementation (the way the lecture's
exercise is usually solved), with one switch per bug. Each ``BUGS`` entry says which diagnosis
the checker must reach. The verifier is tested by breaking things: every bug must be caught.
"""

from __future__ import annotations

import numpy as np

from gradverify.forward import cost as forward_cost
from gradverify.params import Layout, flatten, unflatten


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def _f(act, z):
    return {"sigmoid": _sig, "tanh": np.tanh, "relu": lambda v: np.maximum(v, 0), "softplus": lambda v: np.logaddexp(0, v), "identity": lambda v: v}[act](z)


def _df(act, a, h):
    return {"sigmoid": h * (1 - h), "tanh": 1 - h * h, "relu": (a > 0) * 1.0, "softplus": _sig(a), "identity": np.ones_like(a)}[act]


def student_backprop(problem, bug: str | None = None):
    """(J, grads) with ``bug`` planted; ``bug=None`` is a correct solution."""
    net, P, X, Y = problem.network, problem.params, problem.X, problem.Y
    m, L = X.shape[0], net.depth
    lam = net.lam
    c = net.reg_coefficient(m) if lam else 0.0
    hs, as_ = [X], []
    for k in range(1, L + 1):
        a = hs[-1] @ P[f"W{k}"].T + P[f"b{k}"]
        as_.append(a)
        if k < L:
            hs.append(_f(net.activations[k - 1], a))
    A = as_[-1]
    if net.output == "sigmoid":
        H = _sig(A)
        J = -np.sum(Y * np.log(H) + (1 - Y) * np.log(1 - H)) / m
        delta = H - Y
    elif net.output == "softmax":
        E = np.exp(A - A.max(1, keepdims=True))
        H = E / E.sum(1, keepdims=True)
        J = -np.sum(Y * np.log(H)) / m
        delta = H - Y
    else:
        J = np.sum((A - Y) ** 2) / (2 * m)
        delta = A - Y
    if bug == "cost-missing-1/m":
        J *= m
    if bug == "sign":
        delta = -delta
    reg_names = [n for n, _ in net.param_shapes if n.startswith("W") or net.reg_bias or bug in ("reg-bias", "reg-bias-both")]
    penalty = c * sum(np.sum(P[n] ** 2) for n in reg_names)
    if bug not in ("no-reg-both",):
        J += penalty
    if bug == "reg-bias-both":
        pass  # cost and gradient both regularize the biases
    grads = {}
    for k in range(L, 0, -1):
        grads[f"W{k}"] = delta.T @ hs[k - 1] / m
        grads[f"b{k}"] = delta.sum(0) / m
        if bug == "grad-missing-1/m":
            grads[f"W{k}"] *= m
            grads[f"b{k}"] *= m
        if bug == "divide-m-twice":
            grads[f"W{k}"] /= m
            grads[f"b{k}"] /= m
        if k > 1:
            act, a, h = net.activations[k - 2], as_[k - 2], hs[k - 1]
            if bug == "deriv-on-activation":
                d = _df(act, _f(act, h), _f(act, h)) if act in ("sigmoid", "tanh") else _df(act, h, h)
            elif bug == "h-form-on-preactivation":
                d = _df(act, a, a)
            elif bug == "no-derivative":
                d = 1.0
            else:
                d = _df(act, a, h)
            delta = (delta @ P[f"W{k}"]) * d
    if bug == "b2-times-m":
        grads["b2"] = grads["b2"] * m
    if bug == "W1-off-by-half":
        grads["W1"] = grads["W1"] * 0.5
    if bug == "zero-bias-grads":
        for k in range(1, L + 1):
            grads[f"b{k}"] = np.zeros_like(grads[f"b{k}"])
    for n, _ in net.param_shapes:
        if n.startswith("W") or net.reg_bias or bug in ("reg-bias", "reg-bias-both"):
            if bug in ("no-reg", "no-reg-both") and n.startswith("W"):
                continue
            scale = {"reg-lambda": lam / (2 * c) if c else 0, "reg-double": 2.0}.get(bug, 1.0)
            grads[n] = grads[n] + scale * 2 * c * P[n]
    grads = {n: grads[n] for n, _ in net.param_shapes}
    if bug == "fortran-order":
        return J, unflatten(flatten(grads, net, Layout("Wb", "F")), net)
    if bug == "theta-layout":
        return J, unflatten(flatten(grads, net, Layout("theta", "F")), net)
    if bug == "transposed":
        return J, {n: (g.T.reshape(g.shape) if n.startswith("W") else g) for n, g in grads.items()}
    if bug == "one-entry":
        grads["W2"] = grads["W2"].copy()
        grads["W2"][0, 1] += 1e-3
    if bug == "numeric":
        theta = flatten(P, net)
        num = np.zeros_like(theta)
        for i in range(theta.size):
            e = np.zeros_like(theta)
            e[i] = 1e-4
            num[i] = (forward_cost(net, unflatten(theta + e, net), X, Y) - forward_cost(net, unflatten(theta - e, net), X, Y)) / 2e-4
        return J, unflatten(num, net)
    return J, grads


# bug -> (diagnosis kind the checker must reach, words its message must contain)
BUGS = {
    "grad-missing-1/m": ("scale", "factor m ="),
    "divide-m-twice": ("scale", "1/m"),
    "sign": ("sign", "wrong sign"),
    "reg-bias": ("regularized-bias", "biases are regularized"),
    "no-reg": ("missing-regularization", "regularization term is missing"),
    "reg-lambda": ("regularization-scale", "λ·θ instead of λ/m·θ"),
    "reg-double": ("regularization-scale", "instead of"),
    "deriv-on-activation": ("activation-derivative", "applied to the activation"),
    "h-form-on-preactivation": ("activation-derivative", "pre-activation"),
    "no-derivative": ("activation-derivative", "missing"),
    "fortran-order": ("layout", "Fortran"),
    "theta-layout": ("layout", "MATLAB's Theta(:)"),
    "transposed": ("layout", "transposed"),  # the same permutation as Fortran order
    "b2-times-m": ("scale", "b2 is off by a factor m"),
    "W1-off-by-half": ("scale", "W1 is off by a factor ½"),
    "zero-bias-grads": ("biases-only", "bias"),
    "one-entry": ("one-layer", "layer 2"),
    "numeric": ("numeric-noise", "numerical gradient"),
    "cost-missing-1/m": ("cost-only", "cost is wrong"),
    "no-reg-both": ("missing-regularization", "regularization term is missing"),
}
