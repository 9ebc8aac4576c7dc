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

At the edges of float64 the bars stay honest (checked against the exact oracle): every value a
perturbation recomputes is charged the absolute floor of float64 rounding (gradual underflow: the
imaginary parts of complex step are ∂J/∂θ·h, subnormal for partials below about 1e−288), the
rounding of a weight's input is charged (a saturated σ(a) ≈ e^a is off by eps·|a| relatively), a
saturated slope's sensitivity stops growing where the slope underflows (|a| > 745), and bounds
whose intermediate products overflow are taken in scaled form. Where the cost itself overflows on
a stencil, the entry is *unresolved*: NaN with an infinite bar (``NumericGradient.resolved``).

Kinks: where the sign pattern of any ReLU pre-activation changes inside a parameter's stencil,
the entry is marked in ``kinks`` and its one-sided differences are reported; its error bar is
widened to cover both sides, so it is reported as non-differentiable, never as a failure.

The package, one idea per module (numdifftools' split):

``policy``      the tolerance policy: steps, round-off units, safety factors (one place)
``records``     what is returned: ``NumericGradient``, ``BlackBoxGradient``, ``Probe``, ``ProbeReport``, ``StepCurve``
``kernels``     batched, branch-free forward kernels (activations, losses, rank-1 output updates)
``engine``      the structured fast path: unperturbed forward pass, perturbed copies of one unit
``errormodel``  the sizes the error bars are made of (per-example derivatives, round-off scales)
``estimators``  central / Richardson / complex step, kinks, and ``numeric_gradient``
``blackbox``    ``numeric_gradient_of`` for any f(θ) (measured noise, third-difference truncation)
``probes``      ``probe_check``: random directional derivatives and bisection
``stepcurve``   ``step_curve``: error against step size (the V)

The penalty (which arrays, which coefficient) is read through ``forward.penalized_arrays`` and
``forward.penalty_coefficient``, this side's own reading of the network's raw fields.
"""

from __future__ import annotations

from gradverify.finite_diff.blackbox import numeric_gradient_of
from gradverify.finite_diff.estimators import numeric_gradient
from gradverify.finite_diff.policy import METHODS
from gradverify.finite_diff.probes import probe_check
from gradverify.finite_diff.records import BlackBoxGradient, NumericGradient, Probe, ProbeReport, StepCurve
from gradverify.finite_diff.stepcurve import step_curve

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
