"""The step curve: the central difference's error against the step size for one parameter (the V).

Truncation h²|J‴|/6 falls with h, round-off eps·S/h rises; the measured curve and the model are
returned side by side, with the best step. The report draws it for the worst judged parameter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from gradverify.errors import InputError
from gradverify.finite_diff.engine import Engine
from gradverify.finite_diff.estimators import combine, stencil
from gradverify.finite_diff.policy import ANALYTIC, EPS
from gradverify.finite_diff.records import StepCurve
from gradverify.spec import Problem

__all__ = ["step_curve"]

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
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):   # extremes: see numeric_gradient
        return _curve(problem, layer, unit, col, canonical, steps, reference)


def _curve(problem: Problem, layer: int, unit: int, col: int, canonical: str, steps, reference) -> StepCurve:
    eng = Engine(problem)
    theta = eng.theta(layer, unit)[col]
    scale = max(abs(theta), 1.0)
    hs = np.logspace(-14, -1, 40) * scale if steps is None else np.asarray(steps, dtype=np.float64).reshape(-1)
    if hs.size == 0 or not np.all(hs > 0):
        raise InputError("steps must be positive numbers", received=repr(steps))
    net = problem.network
    c = eng.c if eng.penalized_units(layer)[0 if col < eng.fan_in(layer) else 1] else 0.0

    def values(t: np.ndarray):
        V, _, mag = eng.unit_values(layer, unit, np.array([col]), t[None, :], want_mag=np.iscomplexobj(t))
        return V[0] / eng.m + (c * (theta + t) ** 2 if c else 0.0), mag

    V, _ = values(np.concatenate([hs, -hs]))
    est = (V[:hs.size] - V[hs.size:]) / (2 * hs)
    source = "given"
    if reference is None:
        analytic = all(a in ANALYTIC for a in net.activations)
        method = "complex-step" if analytic else "richardson"
        h, t = stencil(method, np.array([scale]))
        Vr, _, mag = eng.unit_values(layer, unit, np.array([col]), t, want_mag=analytic)
        Vr = Vr / eng.m + (c * (theta + t) ** 2 if c else 0.0)
        V0 = values(np.zeros(1))[0][0]
        S = eng.model.roundoff_scale(layer, unit)
        ref, _, _, _ = combine(method, Vr, np.array([V0]), h, np.array([S]), eng.L - layer + 1,
                               None if mag is None else mag[:, 0] / eng.m)
        reference, source = float(ref[0]), method
    errors = np.abs(est - reference)
    # the model curve: truncation h²|J‴|/6 (J‴ from a third difference at a moderate step) + round-off
    h3 = 1e-2 * scale
    V3 = values(np.array([-h3, 0.0, h3, 2 * h3]))[0]
    third = abs(V3[3] - 3 * V3[2] + 3 * V3[1] - V3[0]) / h3 ** 3
    S = eng.model.roundoff_scale(layer, unit)
    predicted = hs ** 2 * third / 6 + EPS * S / hs
    best = int(np.argmin(errors))
    return StepCurve(canonical, hs, est, errors, predicted, float(reference), source, float(hs[best]))
