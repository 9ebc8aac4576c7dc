"""The structured fast path: a problem's unperturbed forward pass, and batched evaluation of
perturbed copies of one unit's parameters.

Perturbing θₚ in layer ℓ leaves layers < ℓ unchanged and changes one column of a⁽ℓ⁾ by
t·h⁽ℓ⁻¹⁾[:, j]; for the last hidden layer the output pre-activations change by a rank-1 term
dh ⊗ w (``kernels.OutputLayer``). All parameters of one unit are perturbed together in a
vectorized batch (perturbed copies stacked on a new axis). Only the terms of J that a perturbation
changes are evaluated, so the unchanged rest cancels exactly in every difference (and its
round-off never enters).

The penalty is read through ``forward.penalized_arrays`` and ``forward.penalty_coefficient``: the
finite-difference side's own reading of the network's λ, convention and bias flag.
"""

from __future__ import annotations

import numpy as np

from gradverify import forward
from gradverify.finite_diff.errormodel import ErrorModel
from gradverify.finite_diff.kernels import ACT, OutputLayer, loss_rows, loss_terms
from gradverify.spec import Problem

__all__ = ["Engine"]


class Engine:
    """The unperturbed forward pass of a problem and batched evaluation of perturbed copies.

    Attributes:
        L, acts, m: depth, the activation of every layer 1..L (output last), examples.
        W, b, A, H: weights, biases, pre-activations and activations per layer (index 1..L;
            ``H[0]`` is X, ``H[L]`` is None).
        penalized: names of the penalized arrays; c: the penalty coefficient (0 without one).
        separable: the loss is a sum over output elements (not softmax), so an output unit alone
            changes one column of it.
        model: the ``ErrorModel`` (the sizes the error bars are made of).
    """

    def __init__(self, problem: Problem):
        net = problem.network
        self.net, self.problem = net, problem
        self.L = net.depth
        self.acts = net.layer_activations
        self.m = problem.m
        self.W = [None] + [np.asarray(problem.params[f"W{k}"], dtype=np.float64) for k in range(1, self.L + 1)]
        self.b = [None] + [np.asarray(problem.params[f"b{k}"], dtype=np.float64) for k in range(1, self.L + 1)]
        self.Y = np.asarray(problem.Y, dtype=np.float64)
        self.H = [np.asarray(problem.X, dtype=np.float64)]
        self.A = [None]
        for k in range(1, self.L + 1):
            A = self.H[-1] @ self.W[k].T + self.b[k]
            self.A.append(A)
            self.H.append(ACT[self.acts[k - 1]](A) if k < self.L else None)
        self.penalized = forward.penalized_arrays(net)
        self.c = forward.penalty_coefficient(net, self.m) if self.penalized else 0.0
        self.separable = net.output != "softmax"       # per-element loss: an output column alone
        self.relu_layers = [k for k in range(1, self.L) if self.acts[k - 1] == "relu"]
        # magnitudes of the loss terms at θ (round-off scale), per output element
        terms, _ = loss_terms(net.output, self.A[self.L], self.Y)
        self.mag_elem = np.abs(terms) / self.m
        self.mag_total = float(self.mag_elem.sum())
        self.output = OutputLayer(self.A[self.L], self.Y)
        self.model = ErrorModel(self)

    def fan_in(self, layer: int) -> int:
        return self.W[layer].shape[1]

    def theta(self, layer: int, unit: int) -> np.ndarray:
        """The parameters of one unit: [W[unit, :], b[unit]]."""
        return np.append(self.W[layer][unit], self.b[layer][unit])

    def penalized_units(self, layer: int) -> tuple[bool, bool]:
        """Whether the weights and the bias of layer ``layer`` are in the penalty."""
        return f"W{layer}" in self.penalized, f"b{layer}" in self.penalized

    def unit_values(self, layer: int, unit: int, cols: np.ndarray, t: np.ndarray, want_mag: bool = False):
        """The changed part V of m·J for perturbed copies of one unit's parameters.

        Args:
            layer, unit: which unit (row of W_layer / entry of b_layer).
            cols: (J,) parameter indices within the unit: 0..n_in−1 for weights, n_in for the bias.
            t: (J, T) perturbations (real, or complex for complex step).

        Returns:
            (V, kink, mag): V (J, T) the data part of m·J that depends on the unit (identical
            constant elsewhere for all copies of this unit); kink (J,) whether any ReLU pattern
            differs from θ's at any stencil point (or None); mag (J, T) Σ|Im terms| if asked.
        """
        Hprev = self.H[layer - 1]
        n_in = Hprev.shape[1]
        U = np.empty((len(cols), self.m))
        wmask = cols < n_in
        U[wmask] = Hprev[:, cols[wmask]].T
        U[~wmask] = 1.0
        a0 = self.A[layer][:, unit]
        a_new = a0 + t[:, :, None] * U[:, None, :]                     # (J, T, m)
        if layer == self.L:
            val, mag = self._output_unit(unit, a_new, want_mag)
            return val, (np.zeros(len(cols), dtype=bool) if self.relu_layers else None), mag
        return self._hidden_unit(layer, unit, a0, a_new, want_mag)

    def _output_unit(self, unit: int, a_new: np.ndarray, want_mag: bool):
        """V and magnitudes when an output unit's pre-activation column is replaced by ``a_new``."""
        A_L = self.A[self.L]
        if self.separable:
            return loss_rows(self.net.output, a_new[..., None], self.Y[:, unit:unit + 1], want_mag)
        A_new = np.broadcast_to(A_L, a_new.shape + (A_L.shape[1],)).astype(a_new.dtype)
        A_new[..., unit] = a_new
        return loss_rows(self.net.output, A_new, self.Y, want_mag)

    def _hidden_unit(self, layer: int, unit: int, a0: np.ndarray, a_new: np.ndarray, want_mag: bool):
        """V, kinks and magnitudes when a hidden unit's pre-activation column becomes ``a_new``:
        the change travels through the later layers (rank-1 into the output when it is next)."""
        kink = np.zeros(a_new.shape[0], dtype=bool) if self.relu_layers else None
        if layer in self.relu_layers:
            kink |= ((a_new.real > 0) != (a0 > 0)).any(axis=(1, 2))
        dH = ACT[self.acts[layer - 1]](a_new) - self.H[layer][:, unit]  # (J, T, m)
        w = self.W[layer + 1][:, unit]
        if layer + 1 == self.L and self.net.output == "sigmoid":
            return self._with_kink(self.output.bce_rank1(dH, w, want_mag), kink)
        if layer + 1 == self.L and self.net.output == "softmax":
            return self._with_kink(self.output.softmax_rank1(dH, w, want_mag), kink)
        A_new = self.A[layer + 1] + dH[..., None] * w                     # (J, T, m, n)
        prop = 0.0
        for k in range(layer + 1, self.L):
            if k in self.relu_layers:
                kink |= ((A_new.real > 0) != (self.A[k] > 0)).any(axis=(1, 2, 3))
            Hk = ACT[self.acts[k - 1]](A_new)
            if want_mag and np.iscomplexobj(Hk):
                # Im a⁽ᵏ⁺¹⁾ = Im h⁽ᵏ⁾·Wᵀ sums terms that may cancel: its rounding, times ∂(m·J)/∂a⁽ᵏ⁺¹⁾
                sens = self.model.row_derivatives(k + 1)[0] * self.m
                prop = prop + np.einsum("...mn,mn->...", np.abs(Hk.imag) @ np.abs(self.W[k + 1]).T, sens)
            A_new = Hk @ self.W[k + 1].T + self.b[k + 1]
        val, mag = loss_rows(self.net.output, A_new, self.Y, want_mag)
        return val, kink, (None if mag is None else mag + prop)

    @staticmethod
    def _with_kink(val_mag: tuple, kink):
        val, mag = val_mag
        return val, kink, mag
