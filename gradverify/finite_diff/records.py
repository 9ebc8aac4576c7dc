"""The records finite differences return: every estimate with its own error bar.

``NumericGradient`` (a ``Problem``'s full gradient), ``BlackBoxGradient`` (a function of a flat
vector), ``Probe`` and ``ProbeReport`` (random directional checks), ``StepCurve`` (error against step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gradverify.spec import Network

__all__ = ["NumericGradient", "BlackBoxGradient", "Probe", "ProbeReport", "StepCurve"]


@dataclass(frozen=True, eq=False)
class NumericGradient:
    """A numerical gradient of a ``Problem``'s cost, per parameter array (Wb layout).

    Attributes:
        grads: the estimates, same shapes as ``problem.params``.
        errors: the error estimate of every entry (≥ 0); the true error does not exceed it. It
            includes the absolute floor of float64 (gradual underflow: partials below ~1e−290
            carry it), and is inf where no estimate could be made (``resolved``).
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

    @property
    def resolved(self) -> dict[str, np.ndarray]:
        """True where an estimate was made. False where the cost overflowed float64 on the entry's
        stencil (or its error bound exceeds float64's range): the estimate is NaN and the error
        inf there — nothing is claimed, so such an entry is not checkable by finite differences."""
        return {name: np.isfinite(err) for name, err in self.errors.items()}

    @property
    def n_unresolved(self) -> int:
        return int(sum(int((~r).sum()) for r in self.resolved.values()))

    def __repr__(self) -> str:
        P = sum(g.size for g in self.grads.values())
        return (f"NumericGradient({self.method}, {P} parameters, max error estimate "
                f"{max(float(e.max()) for e in self.errors.values()):.2g}, {self.n_kinks} kinked, "
                + (f"{self.n_unresolved} unresolved, " if self.n_unresolved else "") +
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
