"""Forward definitions of the activations and losses in numpy, for the finite-difference side.

No derivatives live here: the backprop engine derives its own rules by hand, the symbolic oracle
writes its own SymPy forms (``symbolic.forms``) and differentiates them, and finite differences
only evaluate these.

The numpy forms accept complex input wherever the function is analytic (sigmoid, tanh, softplus,
identity, the losses), so complex-step differentiation can use them: every branch is chosen on
the real part, and inside a branch the formula is analytic. They stay finite for pre-activations
up to ±700 and beyond: the cross-entropies go through log-sigmoid / log-softmax (softplus and
log-sum-exp), never through log(σ(a)).

ReLU's convention at 0: relu(0) = 0, and the derivative every source uses there is 0
(``a > 0``); a pre-activation exactly at 0 is a kink and is reported as such.
"""

from __future__ import annotations

import numpy as np

__all__ = ["activation", "output_loss"]


# ---- numpy ---------------------------------------------------------------------------------

def _sigmoid(z):
    if not np.iscomplexobj(z):  # the real case needs no branches (see backprop._sigmoid's note)
        with np.errstate(over="ignore"):
            out = np.exp(-z)
        out += 1.0
        return np.divide(1.0, out, out=out)
    out = np.empty_like(z)
    pos = z.real >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _softplus(z):
    """log(1 + eᶻ) without overflow: z + log1p(e⁻ᶻ) for Re z ≥ 0, log1p(eᶻ) otherwise."""
    if not np.iscomplexobj(z):
        return np.logaddexp(0.0, z)
    out = np.empty_like(z)
    pos = z.real >= 0
    out[pos] = z[pos] + np.log1p(np.exp(-z[pos]))
    out[~pos] = np.log1p(np.exp(z[~pos]))
    return out


def _relu(z):
    return np.where(z.real > 0, z, 0)


_NUMPY_ACTIVATIONS = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "relu": _relu,
    "softplus": _softplus,
    "identity": lambda z: z,
}


def activation(name: str):
    """The numpy activation function ``f`` with h = f(a), elementwise."""
    return _NUMPY_ACTIVATIONS[name]


def _log_softmax(A):
    shift = A[np.arange(A.shape[0]), np.argmax(A.real, axis=1)][:, None]  # max by real part keeps it analytic
    Z = A - shift
    return Z - np.log(np.sum(np.exp(Z), axis=1, keepdims=True))


def output_loss(output: str, A, Y) -> object:
    """The data term of J from the output pre-activations A (m, K) and targets Y (m, K).

    sigmoid: −(1/m) ΣᵢΣₖ [y log σ(a) + (1−y) log(1−σ(a))], computed as (1/m) Σ [softplus(a) − y·a];
    softmax: −(1/m) ΣᵢΣₖ yₖ log softmax(a)ₖ;  identity: (1/(2m)) ΣᵢΣₖ (a − y)².
    Returns a scalar (complex if A is complex).
    """
    m = A.shape[0]
    if output == "sigmoid":
        return np.sum(_softplus(A) - Y * A) / m
    if output == "softmax":
        return -np.sum(Y * _log_softmax(A)) / m
    if output == "identity":
        D = A - Y
        return np.sum(D * D) / (2 * m)
    raise KeyError(output)
