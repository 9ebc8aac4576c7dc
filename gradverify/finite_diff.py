"""Numerical gradients from the forward cost alone, every estimate with its own error bar.

This is the third, independent gradient source: it evaluates J(θ) and nothing else. It never
imports the backprop engine or the symbolic oracle; the only definitions it shares with them are
the forward ones (the activations and losses of ``functions``, re-expressed here in a branch-free
batched form that the tests check against ``forward.cost``).

Estimators (one partial ∂J/∂θₚ each, with an error estimate eₚ ≥ 0 and the step used):

``"central"``
    D(h) = (J(θ+h) − J(θ−h)) / 2h with h = ∛eps · max(|θₚ|, 1): 2 evaluations per parameter.
    Error: truncation + round-off. Truncation is bounded without extra evaluations per
    parameter: examples are independent, so along θₚ (unit i of layer ℓ, input column u) J is
    Σᵣ ψᵣ(aᵣᵢ + t·uᵣ) and |J‴| ≤ Σᵣ |ψᵣ‴|·|uᵣ|³, with every ψᵣ‴ from one third difference per
    (example, unit); the bound is h²/6 · that · 2 (safety). Round-off is 2·eps·S/h, where S is the
    magnitude of what the evaluation rounds: the loss terms it changes (not |J|, which can be
    small through cancellation) plus every recomputed intermediate value times the cost's
    sensitivity to it (measured the same way). For a black box: 3 calls per parameter
    (θ−h, θ+h, θ+2h, and θ once), the third difference gives the truncation, and the round-off
    of f is measured once (ECnoise-style).
``"richardson"``
    Central differences at h, 2h, 4h (h = eps^(1/5) · max(|θₚ|, 1)) extrapolated twice
    (orders h² → h⁴ → h⁶). Error: the difference between the last two levels, plus round-off.
    6 evaluations per parameter.
``"complex-step"``
    Im J(θ + ih·eₚ) / h with h = 1e−20: no subtraction, so no cancellation and no step size to
    tune; accurate to a few ulps of the terms summed in ∂J/∂θₚ. Needs J analytic in θ, so every
    activation must be analytic (sigmoid, tanh, softplus, identity); not available for ReLU
    networks or black-box functions. Error: 8·eps·(depth)·(magnitude of the imaginary terms).
``"auto"`` (the default for a ``Problem``)
    ``"complex-step"`` when the network is analytic, else ``"central"``. Why: complex step
    is the only estimator that reaches float64 accuracy (≈1e−16 relative to the terms it sums)
    at the cost of one complex evaluation; it turns the finite-difference source from the
    loosest of the three into one as tight as backprop, so a verdict can see small bugs. For
    ReLU networks central differences: the smallest stencil (±h, h ≈ 6e−6) crosses the fewest
    kinks, it is the fastest, and its error bar (≈1e−9 absolute) still makes a verdict sound.
    ``"richardson"`` is the most accurate real-arithmetic choice (≈1e−11) at 3× the cost.

Structured fast path (``numeric_gradient``): perturbing θₚ in layer ℓ leaves layers < ℓ
unchanged and changes one column of a⁽ℓ⁾ by t·h⁽ℓ⁻¹⁾[:, j]; for the last hidden layer the output
pre-activations change by a rank-1 term dh ⊗ w (in-place kernels for sigmoid and softmax
outputs, real and complex). All parameters of one unit are perturbed together in a vectorized
batch (perturbed copies stacked on a new axis, chunked to ≈16k elements so they stay in cache).
Only the terms of J that a perturbation changes are evaluated, so the unchanged rest cancels
exactly in every difference (and its round-off never enters). 784-128-10 at m = 64: complex
step 0.9 s, central 1.1 s, Richardson 3.5 s on one core (bench/bench_finite_diff.py).

Kinks: where the sign pattern of any ReLU pre-activation changes inside a parameter's stencil,
the entry is marked in ``kinks`` and its one-sided differences are reported; its error bar is
widened to cover both sides, so it is reported as non-differentiable, never as a failure.

Tolerance policy (one place, ``_POLICY``): see the constants below.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from gradverify import forward
from gradverify.errors import InputError
from gradverify.params import flatten, scalar_names, unflatten
from gradverify.spec import Network, Problem

__all__ = [
    "METHODS",
    "NumericGradient",
    "BlackBoxGradient",
    "Probe",
    "ProbeReport",
    "StepCurve",
    "numeric_gradient",
    "numeric_gradient_of",
    "probe_check",
    "step_curve",
]

EPS = float(np.finfo(np.float64).eps)
METHODS = ("auto", "central", "richardson", "complex-step")
_ANALYTIC = frozenset({"sigmoid", "tanh", "softplus", "identity"})

# ---- tolerance policy -------------------------------------------------------------------------
# Every number below is part of the error bar; a verdict divides discrepancies by it.
_POLICY = {
    "central_step": EPS ** (1 / 3),      # h = ∛eps·max(|θ|,1): balances h²|J‴|/6 against eps·S/h
    "richardson_step": EPS ** (1 / 5),   # h = eps^(1/5)·max(|θ|,1): the level difference (≈h⁴) meets eps·S/h
    "complex_step": 1e-20,               # any tiny h: Im J(θ+ih)/h has truncation h²|J‴|/6 ≈ 1e−40
    "roundoff_units": 2.0,               # each evaluation of J is trusted to 2·eps·S (S = Σ|terms|)
    "truncation_safety": 2.0,            # truncation estimates are themselves estimates: ×2
    "complex_units": 8.0,                # complex step: 8·eps per layer crossed × the terms' magnitude
    "chunk_elements": 1 << 14,           # elements of the largest batched array (bounds memory, fits L1/L2)
}


# ---- result records ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class NumericGradient:
    """A numerical gradient of a ``Problem``'s cost, per parameter array (Wb layout).

    Attributes:
        grads: the estimates, same shapes as ``problem.params``.
        errors: the error estimate of every entry (≥ 0); the true error should not exceed it.
        steps: the step h used for every entry.
        kinks: True where the entry's stencil crosses a ReLU kink (non-differentiable there).
        one_sided: ``{name: (left, right)}`` one-sided differences, NaN where not kinked;
            ``None`` when no entry is kinked.
        method: ``"central"``, ``"richardson"`` or ``"complex-step"`` (never ``"auto"``).
        n_evals: forward evaluations, counting each perturbed copy as one.
        seconds: wall-clock time.
        network: the network the arrays belong to.
    """

    grads: dict[str, np.ndarray]
    errors: dict[str, np.ndarray]
    steps: dict[str, np.ndarray]
    kinks: dict[str, np.ndarray]
    one_sided: dict[str, tuple[np.ndarray, np.ndarray]] | None
    method: str
    n_evals: int
    seconds: float
    network: Network | None = field(repr=False, default=None)

    def flat(self, which: str = "grads") -> np.ndarray:
        """One of ``grads``, ``errors``, ``steps``, ``kinks`` as a flat vector (C order, Wb)."""
        arrays = getattr(self, which)
        return np.concatenate([np.asarray(arrays[name]).reshape(-1) for name in arrays])

    @property
    def n_kinks(self) -> int:
        return int(sum(int(k.sum()) for k in self.kinks.values()))

    def __repr__(self) -> str:
        P = sum(g.size for g in self.grads.values())
        return (f"NumericGradient({self.method}, {P} parameters, max error estimate "
                f"{max(float(e.max()) for e in self.errors.values()):.2g}, {self.n_kinks} kinked, "
                f"{self.n_evals} evaluations, {self.seconds:.3g} s)")


@dataclass(frozen=True, eq=False)
class BlackBoxGradient:
    """A numerical gradient of a black-box ``f(theta) -> float``: flat arrays.

    Attributes:
        estimate: ∂f/∂θₚ estimates. error: their error estimates (≥ 0). step: the steps.
        method: ``"central"`` or ``"richardson"``. n_evals: calls of f. seconds: wall-clock.
    """

    estimate: np.ndarray
    error: np.ndarray
    step: np.ndarray
    method: str
    n_evals: int
    seconds: float

    def __iter__(self):  # estimate, error, step = numeric_gradient_of(...)
        return iter((self.estimate, self.error, self.step))

    def __repr__(self) -> str:
        return (f"BlackBoxGradient({self.method}, {self.estimate.size} parameters, max error estimate "
                f"{float(self.error.max(initial=0)):.2g}, {self.n_evals} calls, {self.seconds:.3g} s)")


@dataclass(frozen=True)
class Probe:
    """One directional check: numeric J′(θ; v) against ⟨candidate, v⟩ on a support.

    ``level`` is 0 for the k random probes and the bisection depth otherwise.
    ``passed`` is ``|numeric − analytic| ≤ budget`` on a stencil free of ReLU kinks.
    ``kinked``: the stencil still crossed a kink after shrinking the step 1000-fold; such a probe
    is inconclusive (not passed) and is bisected like a failing one, down to the kinked entries.
    """

    index: int
    level: int
    support_size: int
    numeric: float
    analytic: float
    error: float
    budget: float
    passed: bool
    kinked: bool = False

    @property
    def ratio(self) -> float:
        """|numeric − analytic| / budget (≤ 1 passes)."""
        return abs(self.numeric - self.analytic) / self.budget if self.budget > 0 else math.inf


@dataclass(frozen=True, eq=False)
class ProbeReport:
    """The record of ``probe_check``.

    Attributes:
        passed: no random probe failed (kinked ones are inconclusive) and no entry was localized.
        probes: every probe made, random ones first then the bisection probes.
        localized: flat indices of the entries the bisection found wrong (sorted).
        names: readable names of those entries when known (``W1[0,2]``), else ``"θ[i]"``.
        numeric: {index: (estimate, error)} the numeric partial of each localized entry.
        n_evals: evaluations of J used (the per-parameter check would use about 2P or more).
        n_params: P.
        distribution: ``"rademacher"`` or ``"gaussian"``; method: the directional estimator.
        kinked, kinked_names: entries whose own stencil crosses a ReLU kink even at a 1000×
            smaller step: not differentiable there, so not checked (and not failed).
    """

    passed: bool
    probes: list[Probe]
    localized: list[int]
    names: list[str]
    numeric: dict[int, tuple[float, float]]
    n_evals: int
    n_params: int
    distribution: str
    method: str
    kinked: list[int] = field(default_factory=list)
    kinked_names: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        failing = sum(not p.passed and not p.kinked for p in self.probes if p.level == 0)
        return (f"ProbeReport({'passed' if self.passed else 'FAILED'}: {failing} of "
                f"{sum(p.level == 0 for p in self.probes)} random probes failed, localized "
                f"{self.names[:5]}{'…' if len(self.names) > 5 else ''}, {self.n_evals} evaluations for P={self.n_params})")


@dataclass(frozen=True, eq=False)
class StepCurve:
    """Error of the central difference against the step: the classic V.

    Attributes:
        name: the scalar (``W1[0,2]``). steps, estimates: D(h) for each h.
        errors: |D(h) − reference|. reference: the exact value given, or the best estimate
            (complex step where analytic, else Richardson). predicted: the model
            h²|J‴|/6 + eps·S/h. best_step: the step with the smallest error.
    """

    name: str
    steps: np.ndarray
    estimates: np.ndarray
    errors: np.ndarray
    predicted: np.ndarray
    reference: float
    reference_source: str
    best_step: float


# ---- batched forward definitions --------------------------------------------------------------
# The same functions as ``gradverify.functions``, written branch-free so one call covers a whole
# batch: both branches are computed on the half that cannot overflow and selected on the real
# part, so each stays analytic (complex step) and finite for |a| ≫ 700.

def _sign_re(z):
    return np.where(z.real >= 0, 1.0, -1.0)


def _sigmoid(z):
    if not np.iscomplexobj(z):
        e = np.exp(-np.abs(z))
        r = 1.0 / (1.0 + e)
        return np.where(z >= 0, r, e * r)
    s = _sign_re(z)
    e = np.exp(-s * z)
    r = 1.0 / (1.0 + e)
    return np.where(s > 0, r, e * r)


def _softplus(z):
    if not np.iscomplexobj(z):
        return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))
    s = _sign_re(z)
    return np.where(s > 0, z, 0) + np.log1p(np.exp(-s * z))


def _relu(z):
    return np.where(z.real > 0, z, 0)


_ACT = {"sigmoid": _sigmoid, "tanh": np.tanh, "softplus": _softplus, "relu": _relu, "identity": lambda z: z}


def _loss_terms(output: str, A, Y):
    """The per-element loss terms of a batch of output pre-activations (…, m, K), not yet / m.

    sigmoid: softplus(a) − y·a, written for real input as ½((1 − 2y)·a + |a|) + log1p(e^(−|a|)):
    for 0/1 targets the first part is exact (0 or |a|), so a saturated unit costs no round-off
    of the size of a; softmax: y·(logΣe^a − a), with logΣ as log1p of the non-maximal terms (a
    well-classified row's loss is small, and log(1 + small) would round it to eps absolute);
    identity: ½(a − y)².
    Also returns, for complex input, the magnitude of the imaginary parts that cancel inside a term.
    """
    if output == "sigmoid":
        if not np.iscomplexobj(A):
            absA = np.abs(A)
            return 0.5 * ((1 - 2 * Y) * A + absA) + np.log1p(np.exp(-absA)), None
        sp = _softplus(A)
        YA = Y * A
        return sp - YA, np.abs(sp.imag) + np.abs(YA.imag)
    if output == "identity":
        D = A - Y
        return 0.5 * D * D, None
    if output == "softmax":
        idx = np.argmax(A.real, axis=-1)[..., None]
        Z = A - np.take_along_axis(A, idx, axis=-1)          # shift by the max real part: analytic
        E = np.exp(Z)
        np.put_along_axis(E, idx, 0.0, axis=-1)              # e^0 = 1 exactly (Z there is 0 + 0i) …
        lse = np.log1p(E.sum(axis=-1, keepdims=True))        # … so log Σeᶻ = log1p(the rest): no eps·1 loss
        terms = Y * (lse - Z)
        if not np.iscomplexobj(A):
            return terms, None
        # Im z = Im a − Im a_max can cancel: what it rounds is |Im a| + |Im a_max|, not |Im z|
        size = np.abs(A.imag) + np.abs(np.take_along_axis(A.imag, idx, axis=-1))
        return terms, np.abs((Y * lse).imag) + np.abs(Y) * size
    raise KeyError(output)


def _loss_rows(output: str, A, Y, want_mag: bool = False):
    """Σ over the last two axes (m, K) of the per-element loss (not yet divided by m).

    Returns (values, magnitude): magnitude (if asked) is Σ|terms| — for complex A, of the
    imaginary parts — the scale of the round-off in the sum.
    """
    terms, imag_parts = _loss_terms(output, A, Y)
    val = terms.sum(axis=(-2, -1))
    if not want_mag:
        return val, None
    if np.iscomplexobj(A):
        return val, (imag_parts if imag_parts is not None else np.abs(terms.imag)).sum(axis=(-2, -1))
    return val, np.abs(terms).sum(axis=(-2, -1))


def _elementwise_rows(output: str, Z, Y):
    """The loss of each row (last axis = the K outputs) of a batch of output pre-activations."""
    val, _ = _loss_rows(output, Z[..., None, :], Y[..., None, :])
    return val


def _softplus_imag(X, Yi, yi_bound: float):
    """Im softplus(X + i·Yi), evaluated in complex arithmetic on real arrays (fast, in batches).

    The same branch-free form as ``_softplus``: with s = sign(X), softplus(z) = [X ≥ 0]·z +
    log1p(w), w = exp(−s·z) = e^(−|X|)·(cos Yi − i·s·sin Yi) and Im log1p(w) = atan2(Im w, 1 + Re w).
    When every |Yi| < 1e−8 (``yi_bound``; always so in complex step) cos Yi and sin Yi round to
    exactly 1 and Yi in float64, and atan2(v, c) with c ≥ 1, |v/c| < 1e−8 rounds to v/c, so those
    are used; otherwise the functions themselves. Overwrites X.
    """
    pos = X >= 0
    ex = np.abs(X, out=X)
    np.negative(ex, out=ex)
    np.exp(ex, out=ex)                                # e^(−|X|)
    if yi_bound < 1e-8:
        v = ex * Yi                                   # −s·Im w
        ex += 1.0                                     # 1 + Re w
        v /= ex
        return np.where(pos, Yi - v, v)
    u, v = ex * np.cos(Yi), ex * np.sin(Yi)
    return np.where(pos, Yi - np.arctan2(v, 1.0 + u), np.arctan2(v, 1.0 + u))


# ---- the structured engine --------------------------------------------------------------------

class _Engine:
    """The unperturbed forward pass of a problem and batched evaluation of perturbed copies."""

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
            self.H.append(_ACT[self.acts[k - 1]](A) if k < self.L else None)
        self.c = net.reg_coefficient(self.m) if net.lam > 0 else 0.0
        self.separable = net.output != "softmax"       # per-element loss: an output column alone
        self.relu_layers = [k for k in range(1, self.L) if self.acts[k - 1] == "relu"]
        # magnitudes of the loss terms at θ (round-off scale), per output element
        terms, _ = _loss_terms(net.output, self.A[self.L], self.Y)
        self.mag_elem = np.abs(terms) / self.m
        self.mag_total = float(self.mag_elem.sum())
        self._one_minus_2y = 1 - 2 * self.Y
        self._q = np.argmax(self.A[self.L], axis=1)                       # softmax: each row's argmax
        self._not_q = np.ones_like(self.Y)
        self._not_q[np.arange(self.m), self._q] = 0.0
        self._sum_y = self.Y.sum(axis=1)
        self._rows: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._extra: dict[int, np.ndarray] = {}

    def fan_in(self, layer: int) -> int:
        return self.W[layer].shape[1]

    def theta(self, layer: int, unit: int) -> np.ndarray:
        """The parameters of one unit: [W[unit, :], b[unit]]."""
        return np.append(self.W[layer][unit], self.b[layer][unit])

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
        kink = None
        if self.relu_layers:
            kink = np.zeros(len(cols), dtype=bool)
        if layer == self.L:
            if self.separable:
                A_new = a_new[..., None]                                 # (J, T, m, 1)
                Y = self.Y[:, unit:unit + 1]
            else:
                A_new = np.broadcast_to(self.A[layer], a_new.shape + (self.A[layer].shape[1],)).astype(a_new.dtype)
                A_new[..., unit] = a_new
                Y = self.Y
            val, mag = _loss_rows(self.net.output, A_new, Y, want_mag)
            return val, kink, mag
        if layer in self.relu_layers:
            kink |= ((a_new.real > 0) != (a0 > 0)).any(axis=(1, 2))
        dH = _ACT[self.acts[layer - 1]](a_new) - self.H[layer][:, unit]  # (J, T, m)
        if layer + 1 == self.L and self.net.output == "sigmoid":
            val, mag = self._bce_rank1(dH, self.W[layer + 1][:, unit], want_mag)
            return val, kink, mag
        if layer + 1 == self.L and self.net.output == "softmax":
            val, mag = self._softmax_rank1(dH, self.W[layer + 1][:, unit], want_mag)
            return val, kink, mag
        A_new = self.A[layer + 1] + dH[..., None] * self.W[layer + 1][:, unit]   # (J, T, m, n)
        prop = 0.0
        for k in range(layer + 1, self.L):
            if k in self.relu_layers:
                kink |= ((A_new.real > 0) != (self.A[k] > 0)).any(axis=(1, 2, 3))
            Hk = _ACT[self.acts[k - 1]](A_new)
            if want_mag and np.iscomplexobj(Hk):
                # Im a⁽ᵏ⁺¹⁾ = Im h⁽ᵏ⁾·Wᵀ sums terms that may cancel: its rounding, times ∂(m·J)/∂a⁽ᵏ⁺¹⁾
                sens = self.row_derivatives(k + 1)[0] * self.m
                prop = prop + np.einsum("...mn,mn->...", np.abs(Hk.imag) @ np.abs(self.W[k + 1]).T, sens)
            A_new = Hk @ self.W[k + 1].T + self.b[k + 1]
        val, mag = _loss_rows(self.net.output, A_new, self.Y, want_mag)
        return val, kink, (None if mag is None else mag + prop)

    def _bce_rank1(self, dH: np.ndarray, w: np.ndarray, want_mag: bool):
        """The hot path: sigmoid outputs after the last hidden layer, A_L' = A_L + dH ⊗ w.

        Σ[softplus(z) − y·z] is evaluated as ½Σ((1 − 2y)·z + |z|) + Σ log1p(e^(−|z|)), the form of
        ``_loss_terms``, in place with two buffers. For complex dH only the imaginary part of the
        value is computed (complex step needs nothing else); its real part is returned as 0.
        """
        A, Y = self.A[self.L], self.Y
        lead = dH.shape[:-1]
        if not np.iscomplexobj(dH):
            Z = dH[..., None] * w
            Z += A
            T = np.abs(Z)
            Z *= self._one_minus_2y
            Z += T
            np.negative(T, out=T)
            np.exp(T, out=T)
            np.log1p(T, out=T)
            val = 0.5 * Z.reshape(*lead, -1).sum(axis=-1) + T.reshape(*lead, -1).sum(axis=-1)
            return val, None
        Xr = dH.real[..., None] * w
        Xr += A
        Yi = dH.imag[..., None] * w
        im = _softplus_imag(Xr, Yi, float(np.abs(dH.imag).max(initial=0.0) * np.abs(w).max(initial=0.0)))
        lin = dH.imag @ (Y @ w)                         # Σ Im(y·z), linear in z
        val = im.reshape(*lead, -1).sum(axis=-1) - lin
        mag = None
        if want_mag:
            np.abs(im, out=im)
            mag = im.reshape(*lead, -1).sum(axis=-1) + np.abs(dH.imag) @ (np.abs(Y) @ np.abs(w))
        return 1j * val, mag

    def _softmax_rank1(self, dH: np.ndarray, w: np.ndarray, want_mag: bool):
        """Softmax outputs after the last hidden layer, A_L' = A_L + dH ⊗ w, row loss Σₖ yₖ(lse − zₖ).

        Shifted by z at each row's *unperturbed* argmax q (a fixed index, so no per-copy argmax):
        lse = z_q + log1p(Σ_{k≠q} e^(z_k − z_q)), exact algebra and as accurate as ``_loss_terms``
        while the perturbation is small against the gaps to the maximum. Σₖ yₖ(zₖ − z_q) is
        linear in dH: its per-copy part is dH·(Y·w − Σy·w_q), its constant is left out.
        For complex dH only the imaginary part is computed (see ``_bce_rank1``).
        """
        A, q, mask, sy = self.A[self.L], self._q, self._not_q, self._sum_y
        wq = w[q]                                              # (m,)
        c = self.Y @ w - sy * wq
        if not np.iscomplexobj(dH):
            D = dH[..., None] * w
            D += A
            D -= (A[np.arange(self.m), q] + dH * wq)[..., None]
            np.exp(D, out=D)
            D *= mask
            S = D.sum(axis=-1)
            return (sy * np.log1p(S)).sum(axis=-1) - dH @ c, None
        dr, di = dH.real, dH.imag
        Dr = dr[..., None] * w
        Dr += A
        Dr -= (A[np.arange(self.m), q] + dr * wq)[..., None]
        Di = di[..., None] * w
        Di -= (di * wq)[..., None]
        Er = np.exp(Dr, out=Dr)
        Er *= mask
        tiny = float(np.abs(di).max(initial=0.0)) * 2 * float(np.abs(w).max(initial=0.0)) < 1e-8
        Ei = Er * Di if tiny else Er * np.sin(Di)              # e^(Dr)·sin(Di); sin rounds to Di below 1e−8
        if not tiny:
            Er *= np.cos(Di)
        Sr, Si = Er.sum(axis=-1), Ei.sum(axis=-1)
        im_lse = Si / (1.0 + Sr)
        if not (tiny and bool(np.all(np.abs(im_lse) < 1e-8))):
            im_lse = np.arctan2(Si, 1.0 + Sr)                  # Im log1p(S)
        val = (sy * im_lse).sum(axis=-1) - di @ c
        mag = None
        if want_mag:
            np.abs(Ei, out=Ei)
            mag = (np.abs(sy) * Ei.sum(axis=-1) / (1.0 + Sr)).sum(axis=-1) \
                + np.abs(di) @ (np.abs(self.Y) @ np.abs(w) + np.abs(sy) * np.abs(wq))
        return 1j * val, mag

    def row_derivatives(self, layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(|ψ′|, |ψ‴|, |ψ″|) / m for every row r and unit i of layer ``layer``: ψ_{r,i}(s) is
        example r's cost as a function of its pre-activation a⁽ˡᵃʸᵉʳ⁾[r, i] alone.

        Examples are independent, so J(θ + t·eₚ) − J(θ) = Σᵣ ψ_{r,i}(a + t·uᵣ) − ψ_{r,i}(a) for a
        parameter p of unit i with input column u, and J‴ = Σᵣ ψ‴·uᵣ³: the truncation error of
        every such parameter is bounded by h²/6 · Σᵣ |ψ‴_{r,i}|·|uᵣ|³. ψ‴ comes from a third
        difference with step δ = eps^(1/5)·max(|a|, 1) (kept inside a ReLU unit's linear piece);
        ψ′ and ψ″ (sensitivities for the round-off models, not estimates anyone checks) from the
        same points.
        """
        if layer in self._rows:
            return self._rows[layer]
        A = self.A[layer]
        m, n = A.shape
        delta = _POLICY["richardson_step"] * np.maximum(np.abs(A), 1.0)
        if layer in self.relu_layers:
            delta = np.minimum(delta, np.maximum(np.abs(A) / 3, 1e-8))   # |a| < 3e−8: the entry is kinked anyway
        offsets = np.array([-2.0, -1.0, 1.0, 2.0])
        out = np.empty((m, n))
        first = np.empty((m, n))
        second = np.empty((m, n))
        width = max([self.W[k].shape[0] for k in range(layer, self.L + 1)])
        chunk = max(1, _POLICY["chunk_elements"] // (4 * m * width))
        for lo in range(0, n, chunk):
            cols = slice(lo, min(n, lo + chunk))
            s = delta[:, cols, None] * offsets                          # (m, c, 4)
            a_new = A[:, cols, None] + s
            if layer == self.L:
                if self.separable:
                    Z = a_new[..., None]                                  # (m, c, 4, 1)
                    Yr = self.Y[:, cols, None, None]
                else:
                    Z = np.broadcast_to(A[:, None, None, :], a_new.shape + (n,)).copy()
                    idx = np.arange(lo, cols.stop)
                    Z[:, np.arange(len(idx)), :, idx] = np.moveaxis(a_new, 1, 0)
                    Yr = self.Y[:, None, None, :]
                vals = _elementwise_rows(self.net.output, Z, Yr)
            else:
                dH = _ACT[self.acts[layer - 1]](a_new) - self.H[layer][:, cols, None]   # (m, c, 4)
                Z = self.A[layer + 1][:, None, None, :] + dH[..., None] * self.W[layer + 1][:, cols].T[None, :, None, :]
                for k in range(layer + 1, self.L):
                    Z = _ACT[self.acts[k - 1]](Z) @ self.W[k + 1].T + self.b[k + 1]
                vals = _elementwise_rows(self.net.output, Z, self.Y[:, None, None, :])
            third = (vals[..., 3] - 2 * vals[..., 2] + 2 * vals[..., 1] - vals[..., 0]) / (2 * delta[:, cols] ** 3)
            out[:, cols] = np.abs(third) / m
            d = delta[:, cols]
            first[:, cols] = np.abs(8 * (vals[..., 2] - vals[..., 1]) - (vals[..., 3] - vals[..., 0])) / (12 * d) / m
            second[:, cols] = np.abs(vals[..., 3] - vals[..., 2] - vals[..., 1] + vals[..., 0]) / (3 * d ** 2) / m
        self._rows[layer] = (first, out, second)
        return self._rows[layer]

    def truncation_bound(self, layer: int) -> np.ndarray:
        """(n_out, n_in + 1): Σᵣ |ψ‴_{r,i}|·|uᵣ|³ for every weight (u = h⁽ˡ⁻¹⁾[:, j]) and the bias (u = 1)."""
        T3 = self.row_derivatives(layer)[1]
        return np.column_stack([T3.T @ np.abs(self.H[layer - 1]) ** 3, T3.sum(axis=0)])

    def complex_direction(self, dparams: dict, h: float) -> tuple[float, float]:
        """Im J(θ + i·h·v) for a direction v (Wb layout) and the magnitude of the imaginary terms summed."""
        H = self.H[0]
        prop = 0.0
        for k in range(1, self.L + 1):
            dW, db = h * dparams[f"W{k}"], h * dparams[f"b{k}"]
            A = H @ (self.W[k] + 1j * dW).T + (self.b[k] + 1j * db)
            # the rounding of Im a⁽ᵏ⁾ (sums that may cancel), times ∂J/∂a⁽ᵏ⁾
            size = np.abs(H.imag) @ np.abs(self.W[k]).T + np.abs(H.real) @ np.abs(dW).T + np.abs(db)
            prop += float(np.sum(self.row_derivatives(k)[0] * size))
            if k < self.L:
                H = _ACT[self.acts[k - 1]](A)
        terms, imag_parts = _loss_terms(self.net.output, A, self.Y)
        im = float(terms.imag.sum()) / self.m
        mag = float((imag_parts if imag_parts is not None else np.abs(terms.imag)).sum()) / self.m + prop
        if self.c:
            for name, _ in self.net.param_shapes:
                if self.net.is_regularized(name):
                    base = self.W[int(name[1:])] if name[0] == "W" else self.b[int(name[1:])]
                    pen = self.c * (base + 1j * h * dparams[name]) ** 2
                    im += float(pen.imag.sum())
                    mag += float(np.abs(pen.imag).sum())
        return im, mag

    def complex_rounding(self, layer: int) -> np.ndarray:
        """(n_out, n_in + 1): 2·eps·Σᵣ |ψ″ᵣᵢ|·|uᵣ|·Rᵣᵢ, what the rounding of the real part of
        a⁽ˡ⁾[r, i] (size Rᵣᵢ = |a| + Σⱼ|Wᵢⱼ·hᵣⱼ| + |bᵢ|) changes a complex-step derivative by:
        where ∂J/∂a = Σ terms that cancel across examples, |est| says nothing about it."""
        second = self.row_derivatives(layer)[2]
        Hprev = np.abs(self.H[layer - 1])
        R = np.abs(self.A[layer]) + Hprev @ np.abs(self.W[layer]).T + np.abs(self.b[layer])
        G = second * R
        return 2 * EPS * np.column_stack([G.T @ Hprev, G.sum(axis=0)])

    def condition(self, layer: int) -> float:
        """Relative condition of a complex-step derivative through layers ``layer``..L: depth + Σ max|a⁽ᵏ⁾|."""
        return (self.L - layer + 1) + sum(float(np.abs(self.A[k]).max(initial=0.0)) for k in range(layer, self.L + 1))

    def total_roundoff_scale(self) -> float:
        """S for a perturbation of every parameter at once (a probe direction)."""
        return self.mag_total + sum(
            float(np.sum(self.row_derivatives(k)[0] * (np.abs(self.A[k]) + np.abs(self.H[k - 1]) @ np.abs(self.W[k]).T)))
            for k in range(1, self.L + 1))

    def roundoff_scale(self, layer: int, unit: int) -> float:
        """S for one unit's parameters: each evaluation of the changed part of J is trusted to ≈ eps·S.

        S = the loss terms a perturbation changes (one output column when the loss is
        per-element and the unit is an output) + the rounding of every intermediate value x it
        recomputes, weighted by the cost's sensitivity to x: Σᵣ|ψ′ᵣ|·|a⁽ˡ⁾ᵣᵢ| for the perturbed
        pre-activation and Σ|∂J/∂a⁽ᵏ⁾|·(|a⁽ᵏ⁾| + |W⁽ᵏ⁾|·|h⁽ᵏ⁻¹⁾|) for every later layer k.
        """
        first = self.row_derivatives(layer)[0]
        own = float(first[:, unit] @ np.abs(self.A[layer][:, unit]))
        if layer == self.L:
            loss = float(self.mag_elem[:, unit].sum()) if self.separable else self.mag_total
            return loss + own
        if layer not in self._extra:
            later = 0.0
            for k in range(layer + 1, self.L + 1):
                Fk = self.row_derivatives(k)[0]
                later += float(np.sum(Fk * (np.abs(self.A[k]) + np.abs(self.H[k - 1]) @ np.abs(self.W[k]).T)))
            self._extra[layer] = later
        return self.mag_total + own + self._extra[layer]


def _resolve_method(method: str, analytic: bool, *, allow_complex: bool = True) -> str:
    if method not in METHODS:
        raise InputError(f"Unknown finite-difference method {method!r}", expected="one of " + ", ".join(METHODS),
                         received=repr(method), fix='use "auto" unless you need a particular estimator')
    if method == "auto":
        return "complex-step" if (analytic and allow_complex) else "central"
    if method == "complex-step" and not allow_complex:
        raise InputError("Complex-step differentiation needs the cost itself, not a black-box function",
                         expected='method "central" or "richardson"', received='"complex-step"',
                         fix='use method="richardson" for the most accurate real-arithmetic estimate')
    if method == "complex-step" and not analytic:
        raise InputError("Complex-step differentiation needs an analytic cost; ReLU is not analytic at 0",
                         expected="a network of sigmoid, tanh, softplus or identity units",
                         received="a network with ReLU units",
                         fix='use method="auto" (central with kink detection) or "richardson"')
    return method


def _stencil(method: str, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Base steps h (J,) and the perturbations t (J, T) of a method, for parameters of size ``scale``."""
    if method == "central":
        h = _POLICY["central_step"] * scale
        return h, np.stack([-h, h], axis=1)
    if method == "richardson":
        h = _POLICY["richardson_step"] * scale
        return h, np.stack([-h, h, -2 * h, 2 * h, -4 * h, 4 * h], axis=1)
    h = _POLICY["complex_step"] * scale
    return h, (1j * h)[:, None]


# Richardson's estimate is (64·D(h) − 20·D(2h) + D(4h))/45; D(kh) carries round-off ro·S/(kh)
_RICH_RO = 64 / 45 + 20 / 90 + 1 / 180


def _combine(method: str, V: np.ndarray, V0: np.ndarray, h: np.ndarray, S: np.ndarray, depth_factor: float = 1.0,
             imag_mag: np.ndarray | None = None, third: np.ndarray | None = None, cond: float = 1.0):
    """Estimates and error estimates from the values V (J, T) at the stencil (and V0 at θ).

    ``third`` bounds |J‴| near θ (central only; see ``_Engine.row_derivatives``). ``cond`` (complex
    step) is the relative condition of the derivative to the rounding of the real parts: a
    saturated unit's derivative is ∝ e^(−|a|), so an error eps·|a| in a costs eps·|a| relatively.
    Returns (estimate, error, left, right) with one-sided differences at step h.
    """
    ro = _POLICY["roundoff_units"] * EPS
    safety = _POLICY["truncation_safety"]
    if method == "complex-step":
        est = V[:, 0].imag / h
        err = _POLICY["complex_units"] * EPS * (depth_factor * imag_mag / h + cond * np.abs(est))
        return est, err, None, None
    if method == "central":
        vm, vp = V[:, 0], V[:, 1]
        est = (vp - vm) / (2 * h)
        err = safety * h ** 2 * third / 6 + ro * S / h
        return est, err, (V0 - vm) / h, (vp - V0) / h
    d1 = (V[:, 1] - V[:, 0]) / (2 * h)
    d2 = (V[:, 3] - V[:, 2]) / (4 * h)
    d4 = (V[:, 5] - V[:, 4]) / (8 * h)
    r1a, r1b = (4 * d1 - d2) / 3, (4 * d2 - d4) / 3
    est = (16 * r1a - r1b) / 15
    err = safety * np.abs(est - r1a) + _RICH_RO * ro * S / h
    return est, err, (V0 - V[:, 0]) / h, (V[:, 1] - V0) / h


def _kinked(method: str, V: np.ndarray, h: np.ndarray, left: np.ndarray, right: np.ndarray, err: np.ndarray,
            ro_S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Estimate and error bar of entries whose stencil crosses a ReLU kink.

    The estimate is D(h), the midpoint of the one-sided differences at the smallest step. The
    derivative at θ (where it exists) is that of the piece holding θ: within ±h it is D(h) or
    one of the one-sided values, so the bar spans both (|right − left|); if the kink lies
    beyond h (Richardson's ±4h), D(h) is clean and |D(h) − D(2h)| covers its truncation.
    At the kink itself any value between the one-sided ones is a valid subgradient.
    """
    d1 = 0.5 * (left + right)
    spread = np.abs(right - left)
    if method == "central":
        return d1, err + spread
    d2 = (V[:, 3] - V[:, 2]) / (4 * h)
    return d1, spread + np.abs(d1 - d2) + 2 * ro_S / h


def numeric_gradient(problem: Problem, *, method: str = "auto",
                     progress: Callable[[int, int], None] | None = None) -> NumericGradient:
    """The full per-parameter numerical gradient of ``problem``'s cost, with error estimates.

    Args:
        problem: network, parameters and data.
        method: ``"auto"`` (complex step if the network is analytic, else central),
            ``"central"``, ``"richardson"`` or ``"complex-step"``.
        progress: called as ``progress(done, total)`` (parameters done) while it runs.

    Returns:
        A ``NumericGradient`` (estimates, error estimates, steps, kink flags, one-sided values).

    Raises:
        InputError: an unknown method, or complex step asked of a ReLU network.
    """
    if not isinstance(problem, Problem):
        raise InputError("numeric_gradient needs a Problem", received=type(problem).__name__,
                         fix="build one with spec.make_problem or problems.debug_problem; for a plain function use numeric_gradient_of")
    start = time.perf_counter()
    net = problem.network
    analytic = all(a in _ANALYTIC for a in net.activations)
    method = _resolve_method(method, analytic)
    eng = _Engine(problem)
    total = net.n_params
    done = 0
    n_evals = 1
    out = {key: {} for key in ("grads", "errors", "steps", "left", "right", "kinks")}
    for layer in range(1, eng.L + 1):
        n_out, n_in = eng.W[layer].shape
        shape_w, shape_b = (n_out, n_in), (n_out,)
        acc = {key: np.zeros((n_out, n_in + 1)) for key in ("grads", "errors", "steps", "left", "right")}
        acc["kinks"] = np.zeros((n_out, n_in + 1), dtype=bool)
        regularized = [net.is_regularized(f"W{layer}"), net.is_regularized(f"b{layer}")]
        bounds = eng.truncation_bound(layer) if method == "central" else None
        crounding = eng.complex_rounding(layer) if method == "complex-step" else None
        width = eng.m * (max(eng.W[k].shape[0] for k in range(layer + 1, eng.L + 1)) if layer < eng.L else
                         (1 if eng.separable else eng.W[eng.L].shape[0]))
        for unit in range(n_out):
            theta = eng.theta(layer, unit)
            cols_all = np.arange(n_in + 1)
            h_all, t_all = _stencil(method, np.maximum(np.abs(theta), 1.0))
            T = t_all.shape[1]
            chunk = max(1, _POLICY["chunk_elements"] // (T * width))
            V0_data = None
            if method != "complex-step":
                V0_data, _, _ = eng.unit_values(layer, unit, cols_all[:1], np.zeros((1, 1)))
                V0_data = V0_data[0, 0]
                n_evals += 1
            S = eng.roundoff_scale(layer, unit)
            depth_factor = eng.L - layer + 1
            E3 = bounds[unit] if bounds is not None else None
            for lo in range(0, n_in + 1, chunk):
                cols = cols_all[lo:lo + chunk]
                t = t_all[lo:lo + chunk]
                h = h_all[lo:lo + chunk]
                th = theta[lo:lo + chunk]
                V, kink, mag = eng.unit_values(layer, unit, cols, t, want_mag=(method == "complex-step"))
                n_evals += V.size
                V = V / eng.m
                reg = np.where(cols < n_in, regularized[0], regularized[1])
                pen = eng.c * reg[:, None] * (th[:, None] + t) ** 2       # the one changed penalty term
                V = V + pen
                V0 = (V0_data / eng.m + eng.c * reg * th ** 2) if V0_data is not None else None
                if method == "complex-step":
                    imag_mag = mag[:, 0] / eng.m + np.abs(pen[:, 0].imag)
                    est, err, left, right = _combine(method, V, V0, h, S, depth_factor, imag_mag, cond=eng.condition(layer))
                    err = err + crounding[unit, lo:lo + len(cols)]
                else:
                    S_p = S + eng.c * reg * (np.abs(th) + 4 * h) ** 2
                    est, err, left, right = _combine(method, V, V0, h, S_p, third=None if E3 is None else E3[lo:lo + len(cols)])
                sl = slice(lo, lo + len(cols))
                acc["grads"][unit, sl], acc["errors"][unit, sl], acc["steps"][unit, sl] = est, err, h
                if kink is not None and kink.any():
                    acc["kinks"][unit, sl] = kink
                    acc["left"][unit, sl] = np.where(kink, left, np.nan)
                    acc["right"][unit, sl] = np.where(kink, right, np.nan)
                    k_est, k_err = _kinked(method, V, h, left, right, err, ro_S=_POLICY["roundoff_units"] * EPS * S_p)
                    acc["grads"][unit, sl] = np.where(kink, k_est, est)
                    acc["errors"][unit, sl] = np.where(kink, k_err, err)
                else:
                    acc["left"][unit, sl] = np.nan
                    acc["right"][unit, sl] = np.nan
            done += n_in + 1
            if progress is not None:
                progress(done, total)
        for key in out:
            out[key][f"W{layer}"] = acc[key][:, :n_in].reshape(shape_w).copy()
            out[key][f"b{layer}"] = acc[key][:, n_in].reshape(shape_b).copy()
    names = [name for name, _ in net.param_shapes]
    order = lambda d: {n: d[n] for n in names}  # noqa: E731
    any_kink = any(out["kinks"][n].any() for n in names)
    one_sided = {n: (out["left"][n], out["right"][n]) for n in names} if any_kink else None
    return NumericGradient(order(out["grads"]), order(out["errors"]), order(out["steps"]), order(out["kinks"]),
                           one_sided, method, int(n_evals), time.perf_counter() - start, net)


# ---- black box ------------------------------------------------------------------------------------

def _as_theta(theta) -> np.ndarray:
    try:
        vec = np.array(theta, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InputError("theta is not a numeric vector", received=str(exc), fix="pass a flat float array") from None
    if not np.all(np.isfinite(vec)):
        raise InputError("theta holds NaN or infinite values", fix="pass finite parameters")
    return vec


def _call(f: Callable, x: np.ndarray) -> float:
    value = f(x.copy())
    try:
        value = float(np.real_if_close(np.asarray(value, dtype=np.complex128)).reshape(()))  # accepts 0-d, 1-element
    except (TypeError, ValueError):
        raise InputError("The cost function did not return a real number", expected="a float",
                         received=f"{type(value).__name__}", fix="return the scalar cost J(theta)") from None
    if not math.isfinite(value):
        raise InputError("The cost function returned NaN or inf", received=repr(value), fix="check the cost at this theta")
    return value


# the estimate as a linear combination Σₖ wₖ·f(θ + k·h·v) / h (the error terms use more points)
_WEIGHTS = {
    "central": {-1: -0.5, 1: 0.5},
    "richardson": {1: 64 / 90, -1: -64 / 90, 2: -20 / 180, -2: 20 / 180, 4: 1 / 360, -4: -1 / 360},
}
_POINTS = {"central": (-1, 1, 2), "richardson": (-1, 1, -2, 2, -4, 4)}


def _estimate_1d(fvals: dict[int, float], f0: float, h: float, method: str, noise: float) -> tuple[float, float]:
    """Estimate and error from f at the stencil points (keys: multiples of h); ``noise`` is
    the absolute error of one evaluation of f."""
    safety = _POLICY["truncation_safety"]
    if method == "central":
        vm, vp, v2 = fvals[-1], fvals[1], fvals[2]
        est = (vp - vm) / (2 * h)
        third = (v2 - 3 * vp + 3 * f0 - vm) / h ** 3
        return est, safety * h ** 2 * abs(third) / 6 + noise / h
    d1 = (fvals[1] - fvals[-1]) / (2 * h)
    d2 = (fvals[2] - fvals[-2]) / (4 * h)
    d4 = (fvals[4] - fvals[-4]) / (8 * h)
    r1a, r1b = (4 * d1 - d2) / 3, (4 * d2 - d4) / 3
    est = (16 * r1a - r1b) / 15
    return est, safety * abs(est - r1a) + _RICH_RO * noise / h


def _fd_along(f: Callable, theta: np.ndarray, v: np.ndarray, h: float, method: str, f0: float, noise: float):
    """d/ds f(θ + s·v) at s = 0: (estimate, error, calls, v_eff).

    θ + k·h·v is rounded, so the steps actually taken are dₖ = (θ + k·h·v) − θ (exact in
    float64), not k·h·v; the estimate measures ⟨∇f, v_eff⟩ with v_eff = Σₖ wₖ·dₖ / h, which
    is what a candidate gradient must be compared with.
    """
    fvals = {}
    v_eff = np.zeros_like(theta)
    weights = _WEIGHTS[method]
    for k in _POINTS[method]:
        x = theta + (k * h) * v
        fvals[k] = _call(f, x)
        if k in weights:
            v_eff += weights[k] * (x - theta) / h
    est, err = _estimate_1d(fvals, f0, h, method, noise)
    return est, err, len(fvals), v_eff


def _noise_level(f: Callable, theta: np.ndarray, f0: float, *, n: int = 9, seed: int = 0) -> tuple[float, int]:
    """The round-off noise σ of f near θ, measured (after Moré & Wild's ECnoise): f at n points
    θ + k·δ·v (δ small, v random ±1) whose smooth part has negligible differences of order 3..6;
    for noise of deviation σ, mean((Δᵏf)²) = C(2k, k)·σ². Returns (σ, calls)."""
    if theta.size == 0:
        return 0.0, 0
    v = np.random.default_rng(seed).choice([-1.0, 1.0], size=theta.size)
    # δ: a tenth of the central step, so the n points sweep about one step and see the rounding
    # of quantized intermediates (a saturated tanh moves by less than an ulp over 1e−9), while
    # the smooth part's differences of order ≥ 3 (≈ δ³·|f‴| ≈ 2e−19·|f‴|) stay below the noise
    delta = 0.1 * _POLICY["central_step"] * max(1.0, float(np.abs(theta).max()))
    vals = np.array([f0] + [_call(f, theta + (k * delta) * v) for k in range(1, n)])
    sigma = 0.0
    diff = vals
    for order in range(1, 7):
        diff = np.diff(diff)
        if order >= 3:
            sigma = max(sigma, math.sqrt(float(np.mean(diff ** 2)) / math.comb(2 * order, order)))
    return sigma, n - 1


def _evaluation_noise(f: Callable, theta: np.ndarray, f0: float, noise: float | None) -> tuple[float, int]:
    """The absolute error trusted to one evaluation of a black box: given, or
    max(2·eps·|f(θ)|, 3σ) with σ measured by ``_noise_level`` (2·eps·max(|f(θ)|, 1) when f is
    flat to float64 there). Returns (noise, calls)."""
    if noise is not None:
        value = float(noise)
        if not (math.isfinite(value) and value >= 0):
            raise InputError("noise must be a finite number ≥ 0", received=repr(noise),
                             fix="give the absolute error of one evaluation of f, or leave it out to measure it")
        return value, 0
    sigma, calls = _noise_level(f, theta, f0)
    if sigma == 0:
        # f did not change at all near θ: it is flat to float64 (e.g. a loss that rounded to 0),
        # so its rounding cannot be seen; assume the terms it summed were of order max(|f|, 1)
        return _POLICY["roundoff_units"] * EPS * max(abs(f0), 1.0), calls
    return max(_POLICY["roundoff_units"] * EPS * abs(f0), 3 * sigma), calls


def numeric_gradient_of(f: Callable[[np.ndarray], float], theta, *, method: str = "central",
                        noise: float | None = None,
                        progress: Callable[[int, int], None] | None = None) -> BlackBoxGradient:
    """The numerical gradient of a black-box cost ``f(theta_flat) -> float``, one parameter at a time.

    Every call of ``f`` may be expensive (a sandboxed student function), so the default is
    central differences: 3 calls per parameter (θ−h, θ+h, θ+2h) plus one at θ, which give the
    estimate and a truncation estimate from the third difference. The round-off of f itself is
    measured once (8 calls, see ``_noise_level``), since a black box's sums are unknown. Complex
    step is not offered: a black box cannot be trusted to be analytic or to accept complex input.
    A ReLU kink inside a stencil shows up as a large third difference, hence a large error bar
    (there is no sign pattern to inspect in a black box).

    Args:
        f: the cost; called with a fresh float64 copy of the flat parameters.
        theta: the flat parameters.
        method: ``"central"`` (3P + 9 calls) or ``"richardson"`` (6P + 9 calls).
        noise: the absolute error of one evaluation of f, if known; default measured.
        progress: called as ``progress(done, total)``.

    Returns:
        A ``BlackBoxGradient``; it unpacks as ``estimate, error, step``.

    Raises:
        InputError: an unknown method, complex step, non-finite θ, or f returning NaN/inf.
    """
    start = time.perf_counter()
    method = _resolve_method(method, False, allow_complex=False)
    if method == "auto":
        method = "central"
    theta = _as_theta(theta)
    f0 = _call(f, theta)
    noise_abs, calls = _evaluation_noise(f, theta, f0, noise)
    calls += 1
    P = theta.size
    est, err, steps = np.zeros(P), np.zeros(P), np.zeros(P)
    base = _POLICY["central_step"] if method == "central" else _POLICY["richardson_step"]
    e = np.zeros(P)
    for p in range(P):
        h = base * max(abs(theta[p]), 1.0)
        h = (theta[p] + h) - theta[p]            # exactly representable: θ + h − θ == h
        e[p] = 1.0
        est[p], err[p], n, _ = _fd_along(f, theta, e, h, method, f0, noise_abs)
        e[p] = 0.0
        steps[p] = h
        calls += n
        if progress is not None:
            progress(p + 1, P)
    return BlackBoxGradient(est, err, steps, method, calls, time.perf_counter() - start)


# ---- random probes --------------------------------------------------------------------------------

def _cost_function(problem: Problem) -> Callable[[np.ndarray], complex]:
    net = problem.network

    def J(vec):
        return forward.cost(net, unflatten(vec, net), problem.X, problem.Y)
    return J


def probe_check(target: Problem | Callable[[np.ndarray], float], candidate_grad, *, theta=None, k: int = 8,
                seed: int = 0, distribution: str = "rademacher", method: str = "auto",
                rtol: float = 0.0, max_evals: int | None = None) -> ProbeReport:
    """Check a candidate gradient with k random directional derivatives; localize failures.

    For each random signed direction v, the numeric J′(θ; v) is compared with ⟨g, v⟩ within a
    budget = the numeric error estimate + 4·eps·Σ|gᵢvᵢ| (rounding of the dot product, and of a
    correct float64 g) + rtol·Σ|gᵢvᵢ|. A failing probe's support is split in halves and each half
    re-probed, recursively, down to single entries: O(k + b·log P) directional derivatives for b
    wrong entries, instead of P partials.

    Args:
        target: a ``Problem`` (flat vector in the canonical Wb/C layout; complex step where
            analytic) or a black-box ``f(theta_flat) -> float`` (then ``theta`` is required).
        candidate_grad: the gradient to check, flat, same layout.
        theta: the parameters (black box only).
        k: number of random probes (≥ 1).
        seed: random seed for the directions.
        distribution: ``"rademacher"`` (±1, default: every entry weighs the same) or ``"gaussian"``.
        method: directional estimator: ``"auto"``, ``"central"``, ``"richardson"`` or ``"complex-step"``.
        rtol: extra relative slack on ⟨g, v⟩ (0: the error budget alone).
        max_evals: stop bisecting once this many evaluations have been used (default 40·(k + log₂P)).

    Returns:
        A ``ProbeReport``.

    Raises:
        InputError: bad arguments or a candidate of the wrong size.
    """
    relu_pattern = pattern0 = None
    if isinstance(target, Problem):
        net = target.network
        theta_vec = flatten(target.params, net)
        f = _cost_function(target)
        relu = [k for k, act in enumerate(net.activations) if act == "relu"]
        if relu:
            def relu_pattern(vec):
                pre = forward.pre_activations(net, unflatten(vec, net), target.X)
                return np.concatenate([(pre[k] > 0).reshape(-1) for k in relu])
            pattern0 = relu_pattern(theta_vec)
        analytic = all(a in _ANALYTIC for a in net.activations)
        method = _resolve_method(method, analytic)
        names = scalar_names(net)
        eng = _Engine(target)
        noise = _POLICY["roundoff_units"] * EPS * (
            eng.total_roundoff_scale() + (forward.penalty(net, target.params, target.m) if net.lam else 0.0))
    elif callable(target):
        if theta is None:
            raise InputError("probe_check on a black-box function needs theta", fix="pass theta=the flat parameters")
        theta_vec = _as_theta(theta)
        f = target
        method = _resolve_method(method, False, allow_complex=False)
        names = None
        noise = None
    else:
        raise InputError("probe_check needs a Problem or a callable f(theta)", received=type(target).__name__)
    if distribution not in ("rademacher", "gaussian"):
        raise InputError("Unknown probe distribution", expected='"rademacher" or "gaussian"', received=repr(distribution))
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError("k must be a positive integer", received=repr(k))
    g = _as_theta(candidate_grad)
    P = theta_vec.size
    if g.size != P:
        raise InputError("The candidate gradient has the wrong size", expected=f"{P} entries", received=f"{g.size}")
    f0 = float(np.real(f(theta_vec.copy()))) if isinstance(target, Problem) else _call(f, theta_vec)
    evals = 1
    if noise is None:
        noise, calls = _evaluation_noise(f, theta_vec, f0, None)
        evals += calls
    max_evals = max_evals if max_evals is not None else 40 * (k + int(math.ceil(math.log2(max(P, 2)))))
    rng = np.random.default_rng(seed)
    scale = max(1.0, float(np.sqrt(np.mean(theta_vec ** 2))) if P else 1.0)

    def directional(v: np.ndarray) -> tuple[float, float, int, np.ndarray, bool]:
        if method == "complex-step":
            h = _POLICY["complex_step"]
            im, mag = eng.complex_direction(unflatten(v, net), h)
            d = im / h
            return d, _POLICY["complex_units"] * EPS * (eng.L * mag / h + eng.condition(1) * abs(d)), 1, v, False
        base = _POLICY["central_step"] if method == "central" else _POLICY["richardson_step"]
        # the step along the unit direction v/‖v‖ is the 1-D step: J‴ along v grows as ‖v‖³
        h = base * scale / max(float(np.linalg.norm(v)), 1e-300)
        kinked = False
        for _ in range(4):           # a stencil across a ReLU kink: shrink the step (at most 1000×)
            kinked = relu_pattern is not None and any(
                not np.array_equal(relu_pattern(theta_vec + (k * h) * v), pattern0) for k in _POINTS[method])
            if not kinked:
                break
            h /= 10
        return (*_fd_along(lambda x: float(np.real(f(x))), theta_vec, v, h, method, f0, noise), kinked)

    probes: list[Probe] = []

    def probe(v: np.ndarray, level: int) -> Probe:
        nonlocal evals
        d, err, n, v_eff, kinked = directional(v)
        evals += n
        gv = g * v_eff
        analytic_val = float(np.sum(gv))
        mag = float(np.abs(gv).sum())
        budget = err + 4 * EPS * mag + rtol * mag
        pr = Probe(len(probes), level, int(np.count_nonzero(v)), d, analytic_val, err, budget,
                   bool(not kinked and abs(d - analytic_val) <= budget), kinked)
        probes.append(pr)
        return pr

    directions = []
    for _ in range(k):
        v = rng.choice([-1.0, 1.0], size=P) if distribution == "rademacher" else rng.standard_normal(P)
        directions.append(v)
        probe(v, 0)
    failed = any(not p.passed and not p.kinked for p in probes)
    localized: set[int] = set()
    kinked: set[int] = set()
    numeric: dict[int, tuple[float, float]] = {}

    def bisect(support: np.ndarray, v: np.ndarray, level: int) -> None:
        if evals >= max_evals:
            return
        if support.size == 1:
            p = int(support[0])
            last = probes[-1]
            if last.kinked:
                kinked.add(p)
            else:
                localized.add(p)
                numeric[p] = (last.numeric / v[p], last.error / abs(v[p]))
            return
        half = support.size // 2
        for part in (support[:half], support[half:]):
            w = np.zeros(P)
            w[part] = v[part]
            if not probe(w, level + 1).passed:
                bisect(part, v, level + 1)

    for i, v in enumerate(directions):
        if probes[i].passed:
            continue
        support = np.flatnonzero(v)
        support = support[~np.isin(support, list(localized | kinked))]
        if support.size == 0:
            continue
        if localized or kinked:   # is this failure explained by the entries already found?
            w = np.zeros(P)
            w[support] = v[support]
            if probe(w, 1).passed:
                continue
        bisect(support, v, 1)
    loc = sorted(localized)
    name = lambda i: names[i] if names else f"θ[{i}]"  # noqa: E731
    return ProbeReport(not failed and not loc, probes, loc, [name(i) for i in loc], {i: numeric[i] for i in loc},
                       int(evals), int(P), distribution, method, sorted(kinked), [name(i) for i in sorted(kinked)])


# ---- step curve -------------------------------------------------------------------------------

_NAME_RE = re.compile(r"^\s*([A-Za-z]+\d+)\s*\[\s*(\d+)\s*(?:,\s*(\d+)\s*)?\]\s*$")


def _locate(problem: Problem, name: str) -> tuple[int, int, int, str]:
    """``"W2[1,3]"`` → (layer 2, unit 1, column 3, canonical name); ``"b1[0]"`` → (1, 0, n_in, …)."""
    match = _NAME_RE.match(name) if isinstance(name, str) else None
    shapes = dict(problem.network.param_shapes)
    if not match or match[1] not in shapes:
        raise InputError(f"Unknown parameter {name!r}", expected='a scalar name such as "W1[0,2]" or "b2[1]"',
                         received=repr(name), fix="use params.scalar_names(network) for the list")
    arr, i, j = match[1], int(match[2]), match[3]
    shape = shapes[arr]
    layer = int(arr[1:])
    if arr.startswith("W"):
        if j is None or i >= shape[0] or int(j) >= shape[1]:
            raise InputError(f"{name} is outside {arr}", expected=f"indices within {shape}", received=name)
        return layer, i, int(j), f"{arr}[{i},{int(j)}]"
    if j is not None or i >= shape[0]:
        raise InputError(f"{name} is outside {arr}", expected=f"an index within {shape}", received=name)
    return layer, i, problem.network.sizes[layer - 1], f"{arr}[{i}]"


def step_curve(problem: Problem, name: str, *, steps: Sequence[float] | None = None,
               reference: float | None = None) -> StepCurve:
    """Central-difference error against step size for one parameter (the V-shaped curve).

    Args:
        problem: network, parameters and data.
        name: the scalar, e.g. ``"W1[0,2]"`` or ``"b2[1]"``.
        steps: the steps h (default 10⁻¹⁴ … 10⁻¹, 40 of them, times max(|θ|, 1)).
        reference: the exact derivative if known (e.g. from the symbolic oracle); default the
            best numeric estimate (complex step where analytic, else Richardson).

    Returns:
        A ``StepCurve``.

    Raises:
        InputError: an unknown parameter name or non-positive steps.
    """
    layer, unit, col, canonical = _locate(problem, name)
    eng = _Engine(problem)
    theta = eng.theta(layer, unit)[col]
    scale = max(abs(theta), 1.0)
    hs = np.logspace(-14, -1, 40) * scale if steps is None else np.asarray(steps, dtype=np.float64).reshape(-1)
    if hs.size == 0 or not np.all(hs > 0):
        raise InputError("steps must be positive numbers", received=repr(steps))
    net = problem.network
    regularized = net.is_regularized(f"{'W' if col < eng.fan_in(layer) else 'b'}{layer}")
    c = eng.c if regularized else 0.0

    def values(t: np.ndarray):
        V, _, mag = eng.unit_values(layer, unit, np.array([col]), t[None, :], want_mag=np.iscomplexobj(t))
        return V[0] / eng.m + c * (theta + t) ** 2, mag

    V, _ = values(np.concatenate([hs, -hs]))
    est = (V[:hs.size] - V[hs.size:]) / (2 * hs)
    source = "given"
    if reference is None:
        analytic = all(a in _ANALYTIC for a in net.activations)
        method = "complex-step" if analytic else "richardson"
        h, t = _stencil(method, np.array([scale]))
        Vr, _, mag = eng.unit_values(layer, unit, np.array([col]), t, want_mag=analytic)
        Vr = Vr / eng.m + c * (theta + t) ** 2
        V0 = values(np.zeros(1))[0][0]
        S = eng.roundoff_scale(layer, unit)
        ref, _, _, _ = _combine(method, Vr, np.array([V0]), h, np.array([S]), eng.L - layer + 1,
                                None if mag is None else mag[:, 0] / eng.m)
        reference, source = float(ref[0]), method
    errors = np.abs(est - reference)
    # the model curve: truncation h²|J‴|/6 (J‴ from a third difference at a moderate step) + round-off
    h3 = 1e-2 * scale
    V3 = values(np.array([-h3, 0.0, h3, 2 * h3]))[0]
    third = abs(V3[3] - 3 * V3[2] + 3 * V3[1] - V3[0]) / h3 ** 3
    S = eng.roundoff_scale(layer, unit)
    predicted = hs ** 2 * third / 6 + EPS * S / hs
    best = int(np.argmin(errors))
    return StepCurve(canonical, hs, est, errors, predicted, float(reference), source, float(hs[best]))
