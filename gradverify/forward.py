"""The forward cost J(θ) in numpy: the one function finite differences are allowed to call.

It shares nothing with the backprop engine but the activation definitions in ``functions``;
it is written to accept complex parameters (complex-step differentiation) and stays finite when
units saturate.
"""

from __future__ import annotations


from gradverify.functions import activation, output_loss
from gradverify.spec import Network

__all__ = ["cost", "penalty", "pre_activations"]


def penalty(network: Network, params: dict, m: int):
    """The regularization term c·Σθ² over the regularized arrays."""
    if network.lam == 0:
        return 0.0
    c = network.reg_coefficient(m)
    # p @ p: no temporary of the matrix's size, and no conjugation (complex-step needs Σθ², not Σ|θ|²)
    return c * sum(params[name].reshape(-1) @ params[name].reshape(-1) for name, _ in network.param_shapes if network.is_regularized(name))


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
