"""The backprop engine: the lecture's vectorized forward and backward pass, rules derived by hand.

For a batch X (m, n₀), one example per row, the forward pass is A⁽ᵏ⁾ = H⁽ᵏ⁻¹⁾Wₖᵀ + bₖ,
H⁽ᵏ⁾ = f(A⁽ᵏ⁾). The backward pass starts from Δ⁽ᴸ⁾ = ∂J/∂A⁽ᴸ⁾ and walks down:

    ∂J/∂Wₖ = Δ⁽ᵏ⁾ᵀ H⁽ᵏ⁻¹⁾ + ∂penalty/∂Wₖ      ∂J/∂bₖ = Σᵢ Δ⁽ᵏ⁾ᵢ (+ penalty if biases are regularized)
    Δ⁽ᵏ⁻¹⁾ = (Δ⁽ᵏ⁾ Wₖ) ∘ f′(A⁽ᵏ⁻¹⁾)

Every local derivative is written out below, beside nothing but its own forward; this module
never imports SymPy or the finite-difference code (a shared derivative would let a shared bug
agree with itself). The cross-entropies are computed from the pre-activations through
softplus / log-sum-exp, so they stay finite and accurate with units saturated at a = ±700.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from gradverify.spec import Network, Problem

__all__ = ["BackpropResult", "backprop", "cost_and_grad"]


@dataclass(frozen=True)
class BackpropResult:
    """The engine's cost J and one gradient array per parameter array (Wb layout)."""

    cost: float
    grads: dict[str, np.ndarray]


# ---- the local rules, forward beside backward --------------------------------------------
# Forward rules overwrite the pre-activation a with h = f(a): every temporary of batch size is a
# fresh allocation, and at m = 1024 the page faults of those cost as much as the arithmetic.
# Backward rules multiply δ by f′ in place, from h (and from a only where f′ needs it); they may
# use h as scratch space: by then the gradient of the layer above, the last reader of h, is done.

def _sigmoid_(a: np.ndarray) -> np.ndarray:
    """σ(a) = 1/(1 + e^−a), in place. About an ulp everywhere; below a = −709 e^−a overflows
    to inf and σ rounds to 0 (the true value is under 1e−308). No masks: they cost more."""
    with np.errstate(over="ignore"):
        np.exp(np.negative(a, out=a), out=a)
    a += 1.0
    return np.divide(1.0, a, out=a)


def _sigmoid_back(delta, a, h) -> None:  # σ′ = σ(1 − σ) = h(1 − h)
    delta *= h
    delta *= np.subtract(1.0, h, out=h)


def _tanh_(a: np.ndarray) -> np.ndarray:
    return np.tanh(a, out=a)


def _tanh_back(delta, a, h) -> None:  # tanh′ = 1 − tanh² = 1 − h²
    np.multiply(h, h, out=h)
    delta *= np.subtract(1.0, h, out=h)


def _relu_(a: np.ndarray) -> np.ndarray:
    return np.maximum(a, 0.0, out=a)


def _relu_back(delta, a, h) -> None:  # relu′ = [a > 0] = [h > 0]; 0 at the kink a = 0
    delta *= h > 0


def _softplus(a: np.ndarray) -> np.ndarray:  # log(1 + eᵃ); a is kept for the backward rule
    return np.maximum(a, 0.0) + np.log1p(np.exp(-np.abs(a)))


def _softplus_back(delta, a, h) -> None:  # softplus′ = σ(a); a is not needed afterwards
    delta *= _sigmoid_(a)


def _identity_(a: np.ndarray) -> np.ndarray:
    return a


def _identity_back(delta, a, h) -> None:  # f′ = 1
    pass


# activation: (forward, whether it keeps a, backward)
_RULES = {
    "sigmoid": (_sigmoid_, False, _sigmoid_back),
    "tanh": (_tanh_, False, _tanh_back),
    "relu": (_relu_, False, _relu_back),
    "softplus": (_softplus, True, _softplus_back),
    "identity": (_identity_, False, _identity_back),
}


_workspace = threading.local()


def _buffer(key: tuple, shape: tuple[int, ...]) -> np.ndarray:
    """A per-thread array reused from call to call for the batch-sized intermediates (a, h, δ).

    A fresh array of batch size costs page faults on every call (glibc returns large blocks to
    the system when they are freed), which at m = 1024 is a sizeable part of the pass; PyTorch
    avoids the same cost with its caching allocator. Nothing reused here is ever returned.
    """
    store = _workspace.__dict__.setdefault("arrays", {})
    buf = store.get(key)
    if buf is None or buf.shape != shape:
        buf = store[key] = np.empty(shape)
    return buf


def _add_scaled(out: np.ndarray, alpha: float, x: np.ndarray, chunk: int = 8192) -> None:
    """out += alpha·x in place, through a small buffer: a full-size temporary of a large weight
    matrix costs more in fresh-page faults than the arithmetic (it doubled 784-128-10's time)."""
    o, v = out.reshape(-1), x.reshape(-1)
    buf = np.empty(min(chunk, v.size))
    for start in range(0, v.size, chunk):
        b = buf[:min(chunk, v.size - start)]
        np.multiply(v[start:start + chunk], alpha, out=b)
        o[start:start + chunk] += b


def _output(output: str, A: np.ndarray, Y: np.ndarray) -> tuple[float, np.ndarray]:
    """Data term of J and Δ⁽ᴸ⁾ = ∂J/∂A⁽ᴸ⁾ for each output/loss pairing."""
    m = A.shape[0]
    if output == "sigmoid":
        # −[y log σ(a) + (1−y) log(1−σ(a))] = y·softplus(−a) + (1−y)·softplus(a)
        #   = log1p(e^−|a|) + y·max(−a, 0) + (1−y)·max(a, 0): non-negative terms for 0 ≤ y ≤ 1, so
        #   no cancellation when a unit is confidently right;  ∂/∂a = σ(a) − y
        e = np.exp(-np.abs(A))
        terms = np.log1p(e) + Y * np.maximum(-A, 0.0) + (1.0 - Y) * np.maximum(A, 0.0)
        sig = np.where(A >= 0, 1.0, e) / (1.0 + e)
        return float(np.sum(terms)) / m, (sig - Y) / m
    if output == "softmax":
        # −Σₖ yₖ (aₖ − lse(a));  ∂/∂aₖ = softmax(a)ₖ·Σⱼyⱼ − yₖ
        Z = A - A.max(axis=1, keepdims=True)
        E = np.exp(Z)
        S = E.sum(axis=1, keepdims=True)
        log_p = Z - np.log(S)
        return float(-np.sum(Y * log_p)) / m, (E / S * Y.sum(axis=1, keepdims=True) - Y) / m
    if output == "identity":
        # ½(a − y)²;  ∂/∂a = a − y
        D = A - Y
        return float(np.sum(D * D)) / (2 * m), D / m
    raise ValueError(f"unknown output {output!r}")


def _penalty(network: Network, m: int) -> tuple[float, list[str]]:
    """The engine's own reading of the regularization: c in c·Σθ² and the arrays it covers.

    Read from the spec's raw fields here, not from ``Network.is_regularized``/``reg_coefficient``:
    each source reads the user's specification its own way, so a wrong shared reading shows up
    as a disagreement instead of three sources agreeing on it.
    """
    if network.lam == 0:
        return 0.0, []
    lam = network.lam
    c = {"lambda/2m": lam / (2 * m), "lambda": lam, "lambda/2": lam / 2}[network.reg]
    arrays = [f"W{k}" for k in range(1, network.depth + 1)]
    if network.reg_bias:
        arrays += [f"b{k}" for k in range(1, network.depth + 1)]
    return c, arrays


def cost_and_grad(network: Network, params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    """J(θ) and ∂J/∂θ for the batch (X, Y), one gradient array per parameter array.

    Args:
        network: the network and cost convention.
        params: ``W1, b1, …`` (float64 arrays, Wₖ of shape (nₖ, nₖ₋₁)).
        X: inputs (m, n₀); Y: targets (m, n_L).

    Returns:
        ``(J, grads)`` with ``grads[name]`` of the same shape as ``params[name]``.
    """
    L = network.depth
    m = X.shape[0]
    # forward, keeping what the backward pass needs: every h, and a where f′ needs it
    Hs, As = [X], []
    for k, act in enumerate(network.activations, start=1):
        A = np.matmul(Hs[-1], params[f"W{k}"].T, out=_buffer(("a", k), (m, network.sizes[k])))
        A += params[f"b{k}"]
        forward, keeps_a, _ = _RULES[act]
        As.append(A if keeps_a else None)
        Hs.append(forward(A))
    A_out = Hs[-1] @ params[f"W{L}"].T
    A_out += params[f"b{L}"]
    J, delta = _output(network.output, A_out, Y)

    grads: dict[str, np.ndarray] = {}
    for k in range(L, 0, -1):
        grads[f"W{k}"] = delta.T @ Hs[k - 1]
        grads[f"b{k}"] = delta.sum(axis=0)
        if k > 1:
            delta = np.matmul(delta, params[f"W{k}"], out=_buffer(("delta", k - 1), (m, network.sizes[k - 1])))
            _RULES[network.activations[k - 2]][2](delta, As[k - 2], Hs[k - 1])

    c, penalized = _penalty(network, m)
    for name in penalized:
        p = params[name].reshape(-1)
        J += c * float(p @ p)
        _add_scaled(grads[name], 2 * c, params[name])  # ∂(c·θ²)/∂θ = 2cθ, e.g. λ/m·θ for λ/(2m)
    return J, {name: grads[name] for name, _ in network.param_shapes}


def backprop(problem: Problem) -> BackpropResult:
    """Run the engine on a validated ``Problem``."""
    J, grads = cost_and_grad(problem.network, problem.params, problem.X, problem.Y)
    return BackpropResult(J, grads)
