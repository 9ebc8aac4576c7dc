"""The forward cost J(θ) in numpy: the one function finite differences are allowed to call.

It shares nothing with the backprop engine but the activation definitions in ``functions``;
it is written to accept complex parameters (complex-step differentiation) and stays finite when
units saturate.

Which arrays the penalty covers and its coefficient are read here from the network's raw fields
(``lam``, ``reg``, ``reg_bias``, ``sizes``), not through ``Network.is_regularized`` or
``Network.reg_coefficient``: every gradient source reads the user's specification in its own way,
so a wrong reading in one place shows up as a disagreement instead of a shared silence. The
finite-difference side (this module and ``finite_diff``) reads it through ``penalized_arrays``
and ``penalty_coefficient`` only.
"""

from __future__ import annotations

from gradverify.functions import activation, output_loss
from gradverify.spec import Network

__all__ = ["cost", "penalty", "penalty_coefficient", "penalized_arrays", "pre_activations"]

# c in penalty = c·Σθ², per convention, as a function of (λ, m): the finite-difference side's own table
_COEFFICIENT = {
    "lambda/2m": lambda lam, m: lam / (2 * m),
    "lambda": lambda lam, m: lam,
    "lambda/2": lambda lam, m: lam / 2,
}


def penalized_arrays(network: Network) -> frozenset[str]:
    """The names of the parameter arrays in the penalty: every ``Wk`` when λ > 0, and every ``bk`` too
    when biases are regularized; empty when λ = 0."""
    if not network.lam > 0:
        return frozenset()
    layers = range(1, len(network.sizes))
    return frozenset([f"W{k}" for k in layers] + ([f"b{k}" for k in layers] if network.reg_bias else []))


def penalty_coefficient(network: Network, m: int) -> float:
    """c in penalty = c·Σθ² over the penalized arrays, for a batch of m examples (0 when λ = 0)."""
    if not network.lam > 0:
        return 0.0
    return float(_COEFFICIENT[network.reg](float(network.lam), m))


def penalty(network: Network, params: dict, m: int):
    """The regularization term c·Σθ² over the penalized arrays."""
    names = penalized_arrays(network)
    if not names:
        return 0.0
    c = penalty_coefficient(network, m)
    # p @ p: no temporary of the matrix's size, and no conjugation (complex-step needs Σθ², not Σ|θ|²)
    order = [f"{kind}{k}" for k in range(1, len(network.sizes)) for kind in "Wb"]  # the canonical order
    return c * sum(params[name].reshape(-1) @ params[name].reshape(-1) for name in order if name in names)


def pre_activations(network: Network, params: dict, X) -> list:
    """[a⁽¹⁾, …, a⁽ᴸ⁾], each of shape (m, nₖ): the batch's pre-activations, layer by layer."""
    H, out = X, []
    for k in range(1, network.depth + 1):
        A = H @ params[f"W{k}"].T + params[f"b{k}"]
        out.append(A)
        if k < network.depth:
            H = activation(network.activations[k - 1])(A)
    return out


def cost(network: Network, params: dict, X, Y):
    """J(θ) for the batch (X, Y): data term plus regularization. Complex in, complex out."""
    H = X
    for k, act in enumerate(network.activations, start=1):
        H = activation(act)(H @ params[f"W{k}"].T + params[f"b{k}"])
    L = network.depth
    A = H @ params[f"W{L}"].T + params[f"b{L}"]
    return output_loss(network.output, A, Y) + penalty(network, params, X.shape[0])
