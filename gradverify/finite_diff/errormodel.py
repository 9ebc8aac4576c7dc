"""What the error bars of the structured path are made of: per-example derivative sizes, the
truncation bound of central differences, and the round-off scales of every estimator.

Examples are independent, so along a parameter θₚ of unit i in layer ℓ (input column u) the cost
is J(θ + t·eₚ) = Σᵣ ψᵣ,ᵢ(aᵣᵢ + t·uᵣ) + const, where ψᵣ,ᵢ is example r's cost as a function of its
pre-activation a⁽ℓ⁾[r, i] alone. One stencil of four points per (example, unit) gives every
|ψ′|, |ψ″| and |ψ‴| of a layer, and from them the bounds of every parameter of that layer, with
no extra evaluation per parameter. These sizes only scale error bars; they are never estimates
anyone checks.
"""

from __future__ import annotations

import math

from typing import TYPE_CHECKING

import numpy as np

from gradverify.finite_diff.kernels import ACT, elementwise_rows
from gradverify.finite_diff.policy import EPS, ETA, POLICY, SATURATING, SATURATION

if TYPE_CHECKING:
    from gradverify.finite_diff.engine import Engine

__all__ = ["ErrorModel"]

_OFFSETS = np.array([-2.0, -1.0, 1.0, 2.0])


class ErrorModel:
    """The sizes behind the error bars of one ``Engine`` (computed lazily, once per layer)."""

    def __init__(self, engine: Engine):
        self.eng = engine
        self._rows: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._extra: dict[int, float] = {}

    # ---- per-example derivatives ----------------------------------------------------------

    def row_derivatives(self, layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(|ψ′|, |ψ‴|, |ψ″|) / m for every row r and unit i of layer ``layer``.

        J‴ = Σᵣ ψ‴·uᵣ³ along a parameter with input column u, so the truncation error of every
        such parameter is bounded by h²/6 · Σᵣ |ψ‴ᵣ,ᵢ|·|uᵣ|³. Read at the points a + kδ (k = ±1,
        ±2; δ = eps^(1/5)·max(|a|, 1), kept inside a ReLU unit's linear piece) from differences of
        ψ; where ψ hardly moves in float64 over them, also from differences of ψ′ taken there by
        complex step, the larger kept. The second sees what the first cannot: a saturated unit's
        e^(−|a|)-sized change of a loss of size 1 is below float64's resolution of ψ, not of
        Im ψ(a + ih)/h.
        """
        if layer in self._rows:
            return self._rows[layer]
        eng = self.eng
        A = eng.A[layer]
        m, n = A.shape
        delta = POLICY["richardson_step"] * np.maximum(np.abs(A), 1.0)
        if layer in eng.relu_layers:
            delta = np.minimum(delta, np.maximum(np.abs(A) / 3, 1e-8))   # |a| < 3e−8: the entry is kinked anyway
        hc = self._probe_step(layer)
        first, third, second = np.empty((m, n)), np.empty((m, n)), np.empty((m, n))
        width = max([eng.W[k].shape[0] for k in range(layer, eng.L + 1)])
        chunk = max(1, POLICY["chunk_elements"] // (4 * m * width))
        for lo in range(0, n, chunk):
            cols = slice(lo, min(n, lo + chunk))
            d = delta[:, cols]
            a = A[:, cols, None] + d[..., None] * _OFFSETS
            v = self._stencil_values(layer, cols, a)                       # ψ(a + kδ), k = −2, −1, 1, 2
            third[:, cols] = np.abs(v[..., 3] - 2 * v[..., 2] + 2 * v[..., 1] - v[..., 0]) / (2 * d ** 3) / m
            first[:, cols] = np.abs(8 * (v[..., 2] - v[..., 1]) - (v[..., 3] - v[..., 0])) / (12 * d) / m
            second[:, cols] = np.abs(v[..., 3] - v[..., 2] - v[..., 1] + v[..., 0]) / (3 * d ** 2) / m
            # where ψ barely moves in float64 over the stencil, its differences say nothing: ask Im ψ
            spread = np.abs(v - v.mean(axis=-1, keepdims=True)).max(axis=-1)
            if np.any(~(spread > 64 * EPS * np.abs(v).max(axis=-1))):
                g = self._stencil_values(layer, cols, a + 1j * hc).imag / hc    # ψ′(a + kδ)
                g3 = np.abs(g[..., 3] + g[..., 0] - g[..., 2] - g[..., 1]) / (3 * d ** 2)
                g1 = np.abs(4 * (g[..., 2] + g[..., 1]) - (g[..., 3] + g[..., 0])) / 6
                g2 = np.abs(8 * (g[..., 2] - g[..., 1]) - (g[..., 3] - g[..., 0])) / (12 * d)
                third[:, cols] = np.fmax(third[:, cols], g3 / m)
                first[:, cols] = np.fmax(first[:, cols], g1 / m)
                second[:, cols] = np.fmax(second[:, cols], g2 / m)
        self._rows[layer] = (first, third, second)
        return self._rows[layer]

    def _probe_step(self, layer: int) -> float:
        """The complex step for ``row_derivatives``: 1e−8 divided by how much the later layers can
        amplify an imaginary part (n·max|W| per layer), so every imaginary part stays below 1e−8 —
        near the real axis — and far above underflow for any sensitivity above ~1e−290."""
        eng = self.eng
        amp = 1.0
        for k in range(layer + 1, eng.L + 1):
            amp *= max(1.0, eng.W[k].shape[1] * float(np.abs(eng.W[k]).max(initial=0.0)))
        return 1e-8 / amp if np.isfinite(amp) and amp < 1e290 else 1e-300

    def _stencil_values(self, layer: int, cols: slice, a_new: np.ndarray) -> np.ndarray:
        """(m, c, 4): example r's cost with only its pre-activation a⁽ˡᵃʸᵉʳ⁾[r, i] (i in ``cols``)
        replaced by the stencil values ``a_new``."""
        eng = self.eng
        A = eng.A[layer]
        if layer == eng.L:
            if eng.separable:
                return elementwise_rows(eng.net.output, a_new[..., None], eng.Y[:, cols, None, None])
            Z = np.broadcast_to(A[:, None, None, :], a_new.shape + (A.shape[1],)).astype(a_new.dtype)
            idx = np.arange(cols.start, cols.stop)
            Z[:, np.arange(len(idx)), :, idx] = np.moveaxis(a_new, 1, 0)
            return elementwise_rows(eng.net.output, Z, eng.Y[:, None, None, :])
        dH = ACT[eng.acts[layer - 1]](a_new) - eng.H[layer][:, cols, None]   # (m, c, 4)
        Z = eng.A[layer + 1][:, None, None, :] + dH[..., None] * eng.W[layer + 1][:, cols].T[None, :, None, :]
        for k in range(layer + 1, eng.L):
            Z = ACT[eng.acts[k - 1]](Z) @ eng.W[k + 1].T + eng.b[k + 1]
        return elementwise_rows(eng.net.output, Z, eng.Y[:, None, None, :])

    # ---- bounds built from them -----------------------------------------------------------

    def truncation_bound(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """Σᵣ |ψ‴_{r,i}|·|uᵣ|³ for every weight (u = h⁽ˡ⁻¹⁾[:, j]) and the bias (u = 1), as a pair
        (B, s): B (n_out, n_in + 1) the sums with every column u scaled by s = max|u| (so ≤ 1 per
        term) and s (n_in + 1,) the scales; the bound is B·s³. Kept apart because s³ overflows for
        inputs above 1e102 while the truncation h²·B·s³/6 often does not (``truncation``)."""
        T3 = self.row_derivatives(layer)[1]
        U = np.abs(self.eng.H[layer - 1])
        s = np.append(U.max(axis=0, initial=0.0), 1.0)
        s = np.where(s > 0, s, 1.0)
        return np.column_stack([T3.T @ (U / s[:-1]) ** 3, T3.sum(axis=0)]), s

    @staticmethod
    def truncation(B: np.ndarray, s: np.ndarray, h: np.ndarray) -> np.ndarray:
        """h²·B·s³/6, the central difference's truncation bound, without overflow in between:
        0 where B is 0 (a cost linear along the parameter), inf only where the bound itself is."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            direct = h ** 2 * B * s ** 3 / 6
            if np.isfinite(direct).all():
                return direct
            logs = 2 * np.log(h) + np.log(B) + 3 * np.log(s) - np.log(6.0)
            safe = np.where(B > 0, np.exp(np.minimum(logs, 1e4)), 0.0)
        return np.where(np.isfinite(direct), direct, safe)

    def complex_rounding(self, layer: int) -> np.ndarray:
        """(n_out, n_in + 1): k·eps·Σᵣ |ψ″ᵣᵢ|·|uᵣ|·Rᵣᵢ, what the rounding of the real part of
        a⁽ˡ⁾[r, i] (size Rᵣᵢ = |a| + Σⱼ|Wᵢⱼ·hᵣⱼ| + |bᵢ|) changes a complex-step derivative by:
        where ∂J/∂a = Σ terms that cancel across examples, |est| says nothing about it."""
        eng = self.eng
        second = self.row_derivatives(layer)[2]
        Hprev = np.abs(eng.H[layer - 1])
        R = np.abs(eng.A[layer]) + Hprev @ np.abs(eng.W[layer]).T + np.abs(eng.b[layer])
        G = second * R
        return _sum_units(Hprev.shape[1]) * EPS * np.column_stack([G.T @ Hprev, G.sum(axis=0)])

    def input_rounding(self, layer: int) -> np.ndarray:
        """(n_out, n_in + 1): k·eps·Σᵣ |ψ′ᵣᵢ|·δuᵣⱼ, what the rounding δu of a weight's input
        u = h⁽ˡ⁻¹⁾[:, j] moves its derivative Σᵣ ψ′ᵣᵢ·uᵣ by (every estimator differentiates along
        the rounded u). δu = |u| + |f′(a)|·R for an activation of the pre-activation a of size R
        (a saturated σ(a) ≈ e^a is off by eps·|a| relatively); X and the bias's 1 are exact.
        f′ is a size here, taken by a central difference of the forward kernel."""
        eng = self.eng
        n_out = eng.W[layer].shape[0]
        if layer == 1:
            return np.zeros((n_out, eng.W[1].shape[1] + 1))
        a, k = eng.A[layer - 1], layer - 1
        f = ACT[eng.acts[k - 1]]
        d = 1e-4 * np.maximum(np.abs(a), 1.0)
        with np.errstate(over="ignore", invalid="ignore"):
            slope = np.abs(f(a + d) - f(a - d)) / (2 * d)
            R = np.abs(a) + np.abs(eng.H[k - 1]) @ np.abs(eng.W[k]).T + np.abs(eng.b[k])
            D = np.abs(eng.H[k]) + slope * R
            out = _sum_units(eng.H[k - 1].shape[1]) * EPS * (self.row_derivatives(layer)[0].T @ D)
        return np.column_stack([out, np.zeros(n_out)])

    def condition(self, layer: int) -> float:
        """Relative condition of a complex-step derivative to the rounding of the real parts, through
        layers ``layer``..L: depth + Σₖ min(max|a⁽ᵏ⁾|, 745) over the saturating layers.

        A saturating unit's slope decays like e^(−|a|), so a rounding eps·|a| of a moves it by
        eps·|a| relatively — until the slope underflows (|a| > 745), after which what is left is
        the absolute floor of ``underflow_floor``. Identity units have slope 1 whatever a is; the
        squared error's own cancellation (a ≈ y) is in the magnitudes of its terms instead.
        """
        eng = self.eng
        return (eng.L - layer + 1) + sum(min(float(np.abs(eng.A[k]).max(initial=0.0)), SATURATION)
                                         for k in range(layer, eng.L + 1) if eng.acts[k - 1] in SATURATING)

    def underflow_floor(self, layer: int) -> np.ndarray:
        """(n_out,): ETA·Σ |∂J/∂q|·(roundings of q) over every value q that perturbing a parameter
        of unit i of layer ``layer`` recomputes: the absolute error gradual underflow can add to
        the changed part of J, however small the values are (complex step: the imaginary parts are
        ∂J/∂θ·h, subnormal for partials below about 1e−288).

        The values: the unit's pre-activations (sensitivity |ψ′⁽ˡ⁾|), its activations (|ψ′⁽ˡ⁺¹⁾|·|W|),
        every later layer's pre-activations and activations, the loss terms (1/m each) and their
        sum, each charged ``floor_ops`` roundings. The sum is linear in the sensitivities, so where
        it overflows (weights near 1e154) it is taken with them scaled by 2⁻⁶⁰⁰ and scaled back
        after multiplying by ETA: the floor itself is tiny, only the sum in between is not.
        """
        loss = POLICY["floor_ops"] * (self.eng.Y.shape[1] + 2)   # K terms per example (1/m each), the sum, the penalty
        with np.errstate(over="ignore", invalid="ignore"):
            F = self._sensitivities(layer, 1.0)
            if np.all(np.isfinite(F)):
                return ETA * (F + loss)
            scaled = (ETA * 2.0 ** 600) * self._sensitivities(layer, 2.0 ** -600)
        return ETA * loss + np.where(np.isfinite(F), ETA * F, scaled)

    def total_underflow_floor(self) -> float:
        """``underflow_floor`` for a perturbation of every parameter at once (a probe direction)."""
        return float(sum(self.underflow_floor(k).sum() for k in range(1, self.eng.L + 1)))

    def _sensitivities(self, layer: int, c: float) -> np.ndarray:
        """The ψ′-proportional part of the floor's sum for every unit of ``layer``, with every
        sensitivity multiplied by c."""
        eng, ops = self.eng, POLICY["floor_ops"]
        own = ops * (c * self.row_derivatives(layer)[0]).sum(axis=0)
        if layer < eng.L:
            own = own + ops * self._activation_sensitivity(layer, c).sum(axis=0)
        later = 0.0
        for k in range(layer + 1, eng.L + 1):
            later += ops * (eng.W[k].shape[1] + 1) * float((c * self.row_derivatives(k)[0]).sum())
            if k < eng.L:
                later += ops * float(self._activation_sensitivity(k, c).sum())
        return own + later

    def _activation_sensitivity(self, k: int, c: float = 1.0) -> np.ndarray:
        """(m, n_k): |∂J/∂h⁽ᵏ⁾| bounded by Σᵢ |ψ′⁽ᵏ⁺¹⁾ᵣᵢ|·|W⁽ᵏ⁺¹⁾ᵢⱼ| (times c)."""
        return (c * self.row_derivatives(k + 1)[0]) @ np.abs(self.eng.W[k + 1])

    def _layer_rounding(self, k: int) -> float:
        """Σ|∂J/∂a⁽ᵏ⁾|·(|a⁽ᵏ⁾| + |W⁽ᵏ⁾|·|h⁽ᵏ⁻¹⁾|): what recomputing layer k's pre-activations rounds."""
        eng = self.eng
        return float(np.sum(self.row_derivatives(k)[0] * (np.abs(eng.A[k]) + np.abs(eng.H[k - 1]) @ np.abs(eng.W[k]).T)))

    def total_roundoff_scale(self) -> float:
        """S for a perturbation of every parameter at once (a probe direction)."""
        return self.eng.mag_total + sum(self._layer_rounding(k) for k in range(1, self.eng.L + 1))

    def roundoff_scale(self, layer: int, unit: int) -> float:
        """S for one unit's parameters: each evaluation of the changed part of J is trusted to ≈ eps·S.

        S = the loss terms a perturbation changes (one output column when the loss is
        per-element and the unit is an output) + the rounding of every intermediate value x it
        recomputes, weighted by the cost's sensitivity to x: Σᵣ|ψ′ᵣ|·|a⁽ˡ⁾ᵣᵢ| for the perturbed
        pre-activation and Σ|∂J/∂a⁽ᵏ⁾|·(|a⁽ᵏ⁾| + |W⁽ᵏ⁾|·|h⁽ᵏ⁻¹⁾|) for every later layer k.
        """
        eng = self.eng
        first = self.row_derivatives(layer)[0]
        own = float(first[:, unit] @ np.abs(eng.A[layer][:, unit]))
        if layer == eng.L:
            loss = float(eng.mag_elem[:, unit].sum()) if eng.separable else eng.mag_total
            return loss + own
        if layer not in self._extra:
            self._extra[layer] = sum(self._layer_rounding(k) for k in range(layer + 1, eng.L + 1))
        return eng.mag_total + own + self._extra[layer]


def _sum_units(fan_in: int) -> float:
    """Roundings (eps each, relative to Σ|terms|) a pre-activation a = Σⱼ Wⱼ·hⱼ + b carries: 2, plus
    the depth of its summation tree. Two alone was found short by 11 % on a tanh layer of width 3
    saturated at scale 30 (the own suite's seed 192), whose output sum cancelled."""
    return 2.0 + math.log2(fan_in + 1)
