"""Parameter layouts: separate ``W1, b1, …`` or the lecture's Θ⁽ˡ⁾ = [b | W]; flat vectors; names.

Two layouts of the same numbers:

- ``"Wb"``: ``W1, b1, W2, b2, …`` with Wₖ of shape (nₖ, nₖ₋₁) — the canonical one;
- ``"theta"``: ``Theta1, Theta2, …`` with Θₖ = [bₖ | Wₖ] of shape (nₖ, 1 + nₖ₋₁), the bias as
  column 0, as in a = Θ·[1; h].

A flat vector concatenates the arrays of a layout in order, each flattened in C (row-major) or
Fortran (column-major, MATLAB's ``Theta(:)``) order. Every scalar has a readable name
(``W2[1,3]``, ``b1[0]``, ``Theta1[0,2]``), always with 0-based indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradverify.errors import InputError
from gradverify.spec import Network

__all__ = ["Layout", "CANONICAL", "array_shapes", "scalar_names", "flatten", "unflatten", "to_theta", "from_theta"]


@dataclass(frozen=True)
class Layout:
    """How parameters are laid out: ``kind`` is ``"Wb"`` or ``"theta"``, ``order`` ``"C"`` or ``"F"``."""

    kind: str = "Wb"
    order: str = "C"

    def __post_init__(self) -> None:
        if self.kind not in ("Wb", "theta") or self.order not in ("C", "F"):
            raise InputError("Unknown parameter layout", expected='kind "Wb" or "theta", order "C" or "F"',
                             received=f"kind {self.kind!r}, order {self.order!r}")

    def __str__(self) -> str:
        return f"{self.kind}/{self.order}"


CANONICAL = Layout()


def array_shapes(network: Network, layout: Layout = CANONICAL) -> list[tuple[str, tuple[int, ...]]]:
    """The (name, shape) of every parameter array of ``network`` in ``layout``, in order."""
    if layout.kind == "Wb":
        return network.param_shapes
    s = network.sizes
    return [(f"Theta{k}", (s[k], 1 + s[k - 1])) for k in range(1, network.depth + 1)]


def _index_names(name: str, shape: tuple[int, ...], order: str) -> list[str]:
    idx = np.indices(shape).reshape(len(shape), -1, order=order).T if shape else [()]
    return [f"{name}[{','.join(map(str, i))}]" for i in idx]


def scalar_names(network: Network, layout: Layout = CANONICAL) -> list[str]:
    """A readable name for every scalar, in the order of ``flatten(…, layout)``."""
    names: list[str] = []
    for name, shape in array_shapes(network, layout):
        names += _index_names(name, shape, layout.order)
    return names


def to_theta(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``W1, b1, …`` → ``Theta1, …`` with the bias as column 0."""
    L = sum(1 for k in params if k.startswith("W"))
    return {f"Theta{k}": np.column_stack([params[f"b{k}"], params[f"W{k}"]]) for k in range(1, L + 1)}


def from_theta(thetas: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``Theta1, …`` → ``W1, b1, …``."""
    out: dict[str, np.ndarray] = {}
    for k in range(1, len(thetas) + 1):
        theta = np.asarray(thetas[f"Theta{k}"], dtype=np.float64)
        out[f"W{k}"], out[f"b{k}"] = theta[:, 1:].copy(), theta[:, 0].copy()
    return out


def flatten(params: dict[str, np.ndarray], network: Network, layout: Layout = CANONICAL) -> np.ndarray:
    """Concatenate ``params`` (given in the Wb layout) into one float64 vector in ``layout``."""
    arrays = to_theta(params) if layout.kind == "theta" else params
    parts = [np.asarray(arrays[name], dtype=np.float64).reshape(-1, order=layout.order) for name, _ in array_shapes(network, layout)]
    return np.concatenate(parts) if parts else np.zeros(0)


def unflatten(vector, network: Network, layout: Layout = CANONICAL) -> dict[str, np.ndarray]:
    """Split a flat vector in ``layout`` back into ``W1, b1, …`` (always the Wb layout)."""
    vec = np.asarray(vector)
    if vec.ndim != 1 or vec.size != network.n_params:
        raise InputError(
            "The flat parameter vector has the wrong size",
            expected=f"a 1-D vector of {network.n_params} numbers for {network.compact}",
            received=f"shape {vec.shape}",
            fix="check the layer sizes; the bias of every layer counts too",
        )
    out: dict[str, np.ndarray] = {}
    start = 0
    for name, shape in array_shapes(network, layout):
        size = int(np.prod(shape))
        out[name] = vec[start:start + size].reshape(shape, order=layout.order)
        start += size
    return from_theta(out) if layout.kind == "theta" else out
