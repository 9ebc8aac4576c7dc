"""Tests of the exact oracle (gradverify.symbolic): values, modes, backends, precision, kinks.

The independent reference here is a separate mpmath forward of the cost written in this file
(its own activations and losses) and differentiated numerically by ``mpmath.diff`` at 60+ digits;
it shares no code with the oracle.
"""

from __future__ import annotations

import functools
import itertools
import re

import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings

from gradverify import strategies, symbolic
from gradverify.symbolic import driver
from gradverify.symbolic import graph as symgraph
from gradverify.errors import InputError
from gradverify.forward import cost as forward_cost
from gradverify.params import scalar_names
from gradverify.problems import debug_network, debug_problem, random_problem
from gradverify.spec import make_problem, parse_spec
from gradverify.symbolic import (
    ExactGradient,
    cost_expression,
    exact_gradient,
    partial_expression,
)

ACTS = ("sigmoid", "tanh", "relu", "softplus", "identity")
OUTS = ("sigmoid", "softmax", "identity")
MODES = ("full", "scalable", "batched")
REGS = ((0.0, "lambda/2m", False), (1.5, "lambda/2m", False), (0.7, "lambda", True), (2.0, "lambda/2", False))


# ---- an independent reference: mpmath forward + mpmath.diff ---------------------------------

def _mp_act(name, z):
    if name == "sigmoid":
        return 1 / (1 + mpmath.exp(-z))
    if name == "tanh":
        return mpmath.tanh(z)
    if name == "relu":
        return z if z > 0 else mpmath.mpf(0)
    if name == "softplus":
        return mpmath.log1p(mpmath.exp(z))
    return z


def _mp_cost(problem, theta):
    """J at the flat parameter vector ``theta`` (mpmath numbers, scalar_names order)."""
    net, m = problem.network, problem.m
    arrays, pos = {}, 0
    for name, shape in net.param_shapes:
        size = int(np.prod(shape))
        arrays[name] = np.array(theta[pos:pos + size], dtype=object).reshape(shape)
        pos += size
    total = mpmath.mpf(0)
    for i in range(m):
        h = [mpmath.mpf(float(x)) for x in problem.X[i]]
        for k in range(1, net.depth + 1):
            W, b = arrays[f"W{k}"], arrays[f"b{k}"]
            a = [mpmath.fsum(W[j, l] * h[l] for l in range(len(h))) + b[j] for j in range(net.sizes[k])]
            h = [_mp_act(net.activations[k - 1], x) for x in a] if k < net.depth else a
        y = [mpmath.mpf(float(v)) for v in problem.Y[i]]
        if net.output == "sigmoid":  # softplus(a) − y·a, the same function as the lecture's cross-entropy
            total += mpmath.fsum(mpmath.log1p(mpmath.exp(-abs(ak))) + max(ak, 0) - yk * ak for ak, yk in zip(a, y))
        elif net.output == "softmax":
            top = max(a)
            lse = top + mpmath.log(mpmath.fsum(mpmath.exp(ak - top) for ak in a))
            total += mpmath.fsum(yk * (lse - ak) for ak, yk in zip(a, y))
        else:
            total += mpmath.fsum((ak - yk) ** 2 for ak, yk in zip(a, y)) / 2
    total /= m
    if net.lam > 0:
        lam = mpmath.mpf(net.lam)
        c = {"lambda/2m": lam / (2 * m), "lambda": lam, "lambda/2": lam / 2}[net.reg]
        pos = 0
        for name, shape in net.param_shapes:
            size = int(np.prod(shape))
            if name.startswith("W") or net.reg_bias:
                total += c * mpmath.fsum(t * t for t in theta[pos:pos + size])
            pos += size
    return total


def _mp_gradient(problem, dps=60, direction=0):
    """Every ∂J/∂θ by mpmath.diff of the independent forward, at ``dps`` digits.

    ``direction`` +1 / −1 takes one-sided (right / left) derivatives: the values at a kink.
    """
    with mpmath.workdps(dps):
        theta = [mpmath.mpf(float(v)) for v in np.concatenate([problem.params[n].reshape(-1) for n, _ in problem.network.param_shapes])]
        out = []
        for p in range(len(theta)):
            def f(t, p=p):
                trial = list(theta)
                trial[p] = t
                return _mp_cost(problem, trial)
            out.append(mpmath.diff(f, theta[p], direction=direction))
        return _mp_cost(problem, theta), out


def _flat_exact(result: ExactGradient):
    return [x for g in result.grads_exact.values() for x in g.reshape(-1)]


def _worst_relative(xs, ys):
    worst = mpmath.mpf(0)
    for x, y in zip(xs, ys, strict=True):
        scale = max(abs(x), abs(y))
        if scale > 0:
            worst = max(worst, abs(x - y) / scale)
    return worst


# ---- the classic debug network ---------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_debug_network_cost_is_2_100951_without_regularization(mode):
    result = exact_gradient(debug_problem(debug_network(lam=0.0)), mode=mode)
    assert round(result.cost, 6) == 2.100951
    assert result.mode == mode


@pytest.mark.parametrize("mode", MODES)
def test_debug_network_cost_is_2_146360_with_lambda_3(mode):
    result = exact_gradient(debug_problem(debug_network(lam=3.0)), mode=mode)
    assert round(result.cost, 6) == 2.146360


def test_the_debug_network_runs_in_full_mode_with_symengine_by_default():
    # timings belong to bench/bench_symbolic.py, not to tests
    result = exact_gradient(debug_problem())
    assert (result.mode, result.backend, result.numbers) == ("full", "symengine", "arb")
    assert result.digits >= 30 and result.kinks == () and result.seconds > 0


def test_oracle_cost_matches_the_float64_forward_cost_on_every_combination():
    for act, out, (lam, reg, rb) in itertools.product(ACTS, OUTS, REGS[:2]):
        problem = random_problem(parse_spec(f"3-4-2:{act}/{out}", lam=lam, reg=reg, reg_bias=rb), m=3, seed=7)
        result = exact_gradient(problem, mode="scalable")
        expected = forward_cost(problem.network, problem.params, problem.X, problem.Y)
        assert result.cost == pytest.approx(expected, rel=1e-13), (act, out, lam)


# ---- full vs scalable, and an independent 60-digit reference --------------------------------

@pytest.mark.parametrize("act,out,reg", list(itertools.product(ACTS, OUTS, REGS)),
                         ids=lambda v: v if isinstance(v, str) else f"lam{v[0]}-{v[1]}-bias{v[2]}")
def test_batched_scalable_and_full_modes_agree_digit_for_digit_on_every_combination(act, out, reg):
    lam, convention, reg_bias = reg
    problem = random_problem(parse_spec(f"3-4-2:{act}/{out}", lam=lam, reg=convention, reg_bias=reg_bias), m=3, seed=1)
    results = [exact_gradient(problem, mode=mode) for mode in MODES]
    assert [r.mode for r in results] == list(MODES)
    for a, b in itertools.combinations(results, 2):
        _assert_same_digits(a, b)



def _assert_same_digits(a: ExactGradient, b: ExactGradient, digits: int = 30):
    """Both certify ``digits`` digits of every value, and their balls overlap: the same digits."""
    assert min(a.digits, b.digits) >= digits, (a.notes, b.notes)
    assert abs(a.cost_exact - b.cost_exact) <= a.cost_radius + b.cost_radius
    assert _worst_relative([a.cost_exact], [b.cost_exact]) <= 10.0 ** -digits
    for name in a.grads:
        for x, y, rx, ry in zip(a.grads_exact[name].reshape(-1), b.grads_exact[name].reshape(-1),
                                a.grads_radius[name].reshape(-1), b.grads_radius[name].reshape(-1), strict=True):
            assert abs(x - y) <= rx + ry, (name, x, y)
    assert _worst_relative(_flat_exact(a), _flat_exact(b)) <= 10.0 ** -digits


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategies.problems(strategies.networks(max_params=40), max_m=4, saturating=True, avoid_kinks=False))
def test_the_three_modes_agree_on_random_architectures_including_saturated_ones(problem):
    results = [exact_gradient(problem, mode=mode) for mode in MODES]
    full = results[0]
    for other in results[1:]:
        assert full.kinks == other.kinks
        assert all(np.array_equal(full.grads_range[n], other.grads_range[n]) for n in full.grads)
        # values settled below 2^-1100 (saturated margins of thousands) are 0.0 in float64 but
        # may not be certified to full precision; everything else: 30 certified digits, balls overlap
        tiny = mpmath.mpf(2) ** -1100
        assert min(full.digits, other.digits) >= 30, (full.notes, other.notes)
        if max(abs(full.cost_exact), abs(other.cost_exact)) > tiny:
            assert abs(full.cost_exact - other.cost_exact) <= full.cost_radius + other.cost_radius
            assert _worst_relative([full.cost_exact], [other.cost_exact]) <= 1e-30
        a, b = _flat_exact(full), _flat_exact(other)
        ra = np.concatenate([r.reshape(-1) for r in full.grads_radius.values()])
        rb = np.concatenate([r.reshape(-1) for r in other.grads_radius.values()])
        big = [i for i in range(len(a)) if max(abs(a[i]), abs(b[i])) > tiny]
        assert all(abs(a[i] - b[i]) <= ra[i] + rb[i] for i in big), other.mode
        assert _worst_relative([a[i] for i in big], [b[i] for i in big]) <= 1e-30, (full.notes, other.notes)
        assert np.array_equal(full.flat(), other.flat()) or _worst_relative(list(full.flat()), list(other.flat())) <= 1e-15


@pytest.mark.parametrize("spec,lam,reg,reg_bias", [
    ("3-4-2", 0.0, "lambda/2m", False),
    ("3-4-3:tanh/softmax", 1.0, "lambda", True),
    ("2-3-3-2:softplus,sigmoid/identity", 0.5, "lambda/2", False),
    ("3-4-2:relu/softmax", 2.0, "lambda/2m", True),
    ("3-4-1:identity/sigmoid", 0.0, "lambda/2m", False),
])
def test_oracle_agrees_with_an_independent_60_digit_mpmath_derivative(spec, lam, reg, reg_bias):
    problem = random_problem(parse_spec(spec, lam=lam, reg=reg, reg_bias=reg_bias), m=3, seed=3)
    cost, grads = _mp_gradient(problem)
    for mode in MODES:
        result = exact_gradient(problem, mode=mode)
        with mpmath.workdps(60):
            assert _worst_relative([result.cost_exact], [cost]) <= 1e-25
            assert _worst_relative(_flat_exact(result), grads) <= 1e-25, mode


def test_the_independent_comparison_can_fail_when_the_oracle_answers_another_problem():
    problem = random_problem(parse_spec("3-4-2:tanh", lam=1.0), m=3, seed=3)
    _, grads = _mp_gradient(problem)
    other = problem.network.with_(reg="lambda")  # a different penalty scaling: must be caught
    result = exact_gradient(make_problem(other, problem.params, problem.X, problem.Y), mode="full")
    assert _worst_relative(_flat_exact(result), grads) > 1e-3


def test_the_full_vs_scalable_cross_check_catches_a_planted_wrong_local_derivative(monkeypatch):
    problem = random_problem(parse_spec("3-4-2:softplus", lam=1.0), m=3, seed=1)
    full = exact_gradient(problem, mode="full")
    original = symgraph.Template.partial

    def doubled_for_activations(self, j):  # a wrong f'(a): twice the right one
        d = original(self, j)
        return 2 * d if self.name == "softplus" else d

    monkeypatch.setattr(symgraph.Template, "partial", doubled_for_activations)
    broken = exact_gradient(problem, mode="scalable")
    assert _worst_relative(full.grads_exact["W1"].reshape(-1), broken.grads_exact["W1"].reshape(-1)) > 0.1
    assert _worst_relative(full.grads_exact["W2"].reshape(-1), broken.grads_exact["W2"].reshape(-1)) <= 1e-25


def test_the_cross_check_catches_a_planted_wrong_template_derivative_in_batched_mode(monkeypatch):
    from gradverify.symbolic import templates
    problem = random_problem(parse_spec("3-4-2:tanh", lam=1.0), m=3, seed=1)
    full = exact_gradient(problem, mode="full")
    original = templates._derive_vjp

    def halved_for_activations(t, base):  # a wrong f'(z) in the activation template: half the right one
        vjp = original(t, base)
        return templates.Vjp(vjp.expr / 2, vjp.axes) if t.name == "tanh" else vjp

    monkeypatch.setattr(templates, "_derive_vjp", halved_for_activations)
    monkeypatch.setattr(templates.activation("tanh"), "_vjps", {})
    broken = exact_gradient(problem, mode="batched")
    assert _worst_relative(full.grads_exact["W1"].reshape(-1), broken.grads_exact["W1"].reshape(-1)) > 0.1
    assert _worst_relative(full.grads_exact["W2"].reshape(-1), broken.grads_exact["W2"].reshape(-1)) <= 1e-30
    monkeypatch.undo()
    templates.activation("tanh")._vjps.clear()  # derive the right one again for later tests


def test_full_precision_results_carry_at_least_30_verified_digits():
    problem = random_problem(parse_spec("3-4-2:softplus/softmax", lam=1.0), m=3, seed=5)
    result = exact_gradient(problem)
    assert result.digits >= 30 and result.bits >= 100
    assert isinstance(result.cost_exact, mpmath.mpf)
    assert all(isinstance(x, mpmath.mpf) for x in _flat_exact(result))
    _, grads = _mp_gradient(problem, dps=60)
    with mpmath.workdps(60):
        assert _worst_relative(_flat_exact(result), grads) <= mpmath.mpf(10) ** -30
    for name, g in result.grads.items():  # the float64 view is the correctly rounded exact value
        assert g.dtype == np.float64 and g.shape == problem.params[name].shape
        assert all(float(x) == y for x, y in zip(result.grads_exact[name].reshape(-1), g.reshape(-1)))


def test_asking_for_50_digits_delivers_50_verified_digits():
    problem = random_problem(parse_spec("2-3-2:tanh"), m=2, seed=2)
    result = exact_gradient(problem, digits=50, mode="scalable")
    assert result.digits >= 50
    _, grads = _mp_gradient(problem, dps=80)
    with mpmath.workdps(80):
        assert _worst_relative(_flat_exact(result), grads) <= mpmath.mpf(10) ** -50


# ---- saturation, kinks ------------------------------------------------------------------------

@pytest.mark.parametrize("hidden,output", [("sigmoid", "sigmoid"), ("softplus", "sigmoid"), ("relu", "identity"), ("sigmoid", "softmax")])
def test_saturated_units_at_plus_minus_700_stay_finite_and_accurate(hidden, output):
    net = parse_spec(f"2-3-2:{hidden}/{output}", lam=1.0)
    params = {"W1": np.array([[0.5, -0.25], [0.3, 0.2], [-0.4, 0.1]]), "b1": np.array([700.0, -700.0, 0.3]),
              "W2": np.array([[1.0, 0.5, -0.5], [-1.0, 0.25, 2.0]]), "b2": np.array([-700.0, 700.0])}
    X = np.array([[1.0, -2.0], [0.5, 0.25]])
    problem = make_problem(net, params, X, np.array([[1.0, 0.0], [0.0, 1.0]]))
    # 400 digits resolve e^-700 ≈ 1e-304 against J ≈ 700
    cost, grads = _mp_gradient(problem, dps=400)
    for mode in MODES:
        result = exact_gradient(problem, mode=mode)
        assert np.isfinite(result.cost) and all(np.isfinite(g).all() for g in result.grads.values())
        with mpmath.workdps(400):
            assert _worst_relative([result.cost_exact], [cost]) <= 1e-25
            assert _worst_relative(_flat_exact(result), grads) <= 1e-25, mode


def test_a_partial_lost_to_cancellation_in_a_saturated_tanh_is_settled_and_named_in_the_notes():
    net = parse_spec("2-2-1:tanh/identity")
    params = {"W1": np.array([[0.5, -0.5], [1.0, 2.0]]), "b1": np.array([700.0, 0.1]),
              "W2": np.array([[1.5, -1.0]]), "b2": np.array([0.2])}
    problem = make_problem(net, params, np.array([[1.0, 1.0]]), np.array([[1.0]]))
    result = exact_gradient(problem, mode="scalable")
    # ∂J/∂W1[0,:] ∝ 1 − tanh²(700) ≈ 4e−609: cancels to 0 at 132 bits; the retry goes to the
    # precision that settles it for float64 (below 2^-1100) and the notes name it
    assert any("below 2^-1100" in n and "W1[0,0]" in n and "b1[0]" in n for n in result.notes)
    assert result.grads["W1"][0].tolist() == [0.0, 0.0] and result.digits >= 30


def test_on_large_problems_a_cancelled_partial_is_chased_by_doubling_the_precision(monkeypatch):
    monkeypatch.setattr(driver, "_CHASE_LIMIT", 0)  # behave as on a large problem
    net = parse_spec("2-2-1:tanh/identity")
    params = {"W1": np.array([[0.5, -0.5], [1.0, 2.0]]), "b1": np.array([700.0, 0.1]),
              "W2": np.array([[1.5, -1.0]]), "b2": np.array([0.2])}
    result = exact_gradient(make_problem(net, params, np.array([[1.0, 1.0]]), np.array([[1.0]])), mode="scalable")
    steps = [tuple(map(int, re.search(r"^(\d+) bits.*redone at (\d+) bits", n).groups())) for n in result.notes if "redone at" in n]
    assert steps and all(new == 2 * old for old, new in steps), steps  # doubling, no jump to ~1100 bits more
    assert result.grads["W1"][0].tolist() == [0.0, 0.0]
    assert result.grads_range["W1"][0].tolist() == [symbolic.Range.NEGLIGIBLE] * 2  # settled below 2^-1100, not resolved


@pytest.mark.parametrize("mode", MODES)
def test_a_relu_pre_activation_exactly_at_zero_is_reported_as_a_kink(mode):
    net = parse_spec("2-2-1:relu/identity")
    params = {"W1": np.array([[0.5, -0.5], [1.0, 2.0]]), "b1": np.array([0.0, 0.1]),
              "W2": np.array([[1.5, -1.0]]), "b2": np.array([0.2])}
    X = np.array([[1.0, 1.0], [2.0, 1.0]])  # example 0: a1[0] = 0.5 − 0.5 + 0 = 0 exactly
    result = exact_gradient(make_problem(net, params, X, np.array([[1.0], [0.0]])), mode=mode)
    assert len(result.kinks) == 1
    assert "a1[0] of example 0" in result.kinks[0] and "W1[0,:]" in result.kinks[0] and "b1[0]" in result.kinks[0]
    # the convention relu'(0) = 0: only example 1 reaches W1[0,:] (a = 0.5, h = 0.5)
    a2 = 1.5 * 0.5 - 1.0 * (1.0 * 2.0 + 2.0 * 1.0 + 0.1) + 0.2  # example 1's output, target 0
    assert result.grads["W1"][0] == pytest.approx(np.array([a2 * 1.5 * 2.0, a2 * 1.5 * 1.0]) / 2, rel=1e-14)


def test_no_kink_is_reported_away_from_zero():
    problem = random_problem(parse_spec("3-4-2:relu"), m=4, seed=0)
    assert exact_gradient(problem).kinks == ()


def _kink_problem(spec="2-2-1:relu/identity"):
    net = parse_spec(spec, lam=0.5)
    params = {"W1": np.array([[0.5, -0.5], [1.0, 2.0]]), "b1": np.array([0.0, 0.1]),
              "W2": np.array([[1.5, -1.0]]), "b2": np.array([0.2])}
    X = np.array([[1.0, 1.0], [2.0, 1.0]])  # example 0: a1[0] = 0.5 − 0.5 + 0 = 0 exactly
    return make_problem(net, params, X, np.array([[1.0], [0.0]]))


@pytest.mark.parametrize("mode", MODES)
def test_kink_intervals_hold_both_one_sided_derivatives_of_an_independent_reference(mode):
    problem = _kink_problem()
    result = exact_gradient(problem, mode=mode)
    assert result.kink_lo is not None and result.kink_hi is not None
    _, right = _mp_gradient(problem, direction=1)
    _, left = _mp_gradient(problem, direction=-1)
    lo = np.concatenate([result.kink_lo[n].reshape(-1) for n in result.grads])
    hi = np.concatenate([result.kink_hi[n].reshape(-1) for n in result.grads])
    names = scalar_names(problem.network)
    for i, name in enumerate(names):
        for one_sided in (left[i], right[i]):
            assert lo[i] - 1e-20 <= one_sided <= hi[i] + 1e-20, (name, lo[i], hi[i], one_sided)
        width = hi[i] - lo[i]
        kinked = name.startswith(("W1[0,", "b1[0]"))
        # at the kink the two sides differ (by W2·(a2 − y)·x of example 0); elsewhere the interval is the value
        assert (width > 1.0) if kinked else (width <= 1e-12 * max(1.0, abs(result.grads[name.split("[")[0]]).max())), name
        assert abs(left[i] - right[i]) > 1.0 if kinked else abs(left[i] - right[i]) < 1e-30
    # the reported value is the convention of SymPy's own Piecewise (z > 0 is false at 0): the left one
    assert result.grads["b1"][0] == pytest.approx(float(left[names.index("b1[0]")]), rel=1e-15)


def test_kink_intervals_of_chained_kinks_hold_the_one_sided_derivatives_in_every_mode():
    net = parse_spec("2-2-2-1:relu,relu/identity", lam=0.5)
    params = {"W1": np.array([[0.5, -0.5], [1.0, 2.0]]), "b1": np.array([0.0, 0.125]),
              "W2": np.array([[1.0, -0.5], [0.25, 1.0]]), "b2": np.array([1.5625, 0.0]),
              "W3": np.array([[1.5, -1.0]]), "b3": np.array([0.2])}
    # a1[0] of example 0 and a2[0] of both examples are exactly 0: kinks in two layers
    problem = make_problem(net, params, np.array([[1.0, 1.0], [2.0, 1.0]]), np.array([[1.0], [0.0]]))
    full, scalable, batched = (exact_gradient(problem, mode=mode) for mode in MODES)
    assert full.kinks == scalable.kinks == batched.kinks and len(full.kinks) == 3
    _, right = _mp_gradient(problem, direction=1)
    _, left = _mp_gradient(problem, direction=-1)
    for result in (full, scalable, batched):
        lo = np.concatenate([result.kink_lo[n].reshape(-1) for n in result.grads])
        hi = np.concatenate([result.kink_hi[n].reshape(-1) for n in result.grads])
        assert all(lo[i] - 1e-20 <= v <= hi[i] + 1e-20 for i in range(len(lo)) for v in (left[i], right[i]))
        assert np.all(lo <= result.flat()) and np.all(result.flat() <= hi)
    # chained kinks make interval arithmetic depend on the order of evaluation (each mode's
    # enclosure is valid, not identical); where one kink reaches a partial the two agree
    for other in (scalable, batched):
        np.testing.assert_allclose(full.kink_lo["W3"], other.kink_lo["W3"], rtol=1e-7)
        np.testing.assert_allclose(full.kink_hi["b2"], other.kink_hi["b2"], rtol=1e-7, atol=1e-7)


def test_without_a_kink_there_are_no_kink_intervals():
    result = exact_gradient(random_problem(parse_spec("3-4-2:relu"), m=4, seed=0))
    assert result.kink_lo is None and result.kink_hi is None


# ---- certification, the cost at the bottom of the range, float64 range flags ----------------

def _one_unit(output_bias, target, spec="1-1-1:identity"):
    """A net whose output pre-activation is exactly ``output_bias`` (x = 0 feeds nothing through)."""
    net = parse_spec(spec)
    K = net.sizes[-1]
    params = {"W1": np.array([[1.0]]), "b1": np.array([0.0]), "W2": np.ones((K, 1)), "b2": np.array(output_bias, dtype=float)}
    return make_problem(net, params, np.array([[0.0]]), np.array([target], dtype=float))


@pytest.mark.parametrize("a", [-137.0, -400.0, -690.0])
def test_a_sigmoid_cross_entropy_cost_far_below_working_precision_is_recomputed_not_reported_as_zero(a):
    # J = log(1 + e^a) ≈ e^a: it cancels to 0 at the first precision (1 + e^-137 rounds to 1)
    result = exact_gradient(_one_unit([a], [0.0]))
    with mpmath.workdps(60):
        expected = mpmath.log1p(mpmath.exp(a))
        assert result.cost != 0 and _worst_relative([result.cost_exact], [expected]) <= 1e-30
    assert result.cost_digits >= 30 and result.digits >= 30
    assert result.cost_range == symbolic.Range.NORMAL
    assert any("redone at" in n for n in result.notes)


def test_a_softmax_cost_that_cancels_in_log_sum_exp_is_recomputed():
    result = exact_gradient(_one_unit([0.0, -200.0], [1.0, 0.0], spec="1-1-2:identity/softmax"))
    with mpmath.workdps(60):
        assert _worst_relative([result.cost_exact], [mpmath.log1p(mpmath.exp(-200))]) <= 1e-30
    assert result.cost_digits >= 30


_BALL_CASES = {
    "tanh/softmax, λ, biases": ("3-4-3:tanh/softmax", 1.0, "lambda", True),
    "relu,sigmoid/identity": ("2-3-3-2:relu,sigmoid/identity", 0.5, "lambda/2", False),
    "softplus/sigmoid, lecture": ("3-4-2:softplus", 2.0, "lambda/2m", False),
}


@functools.lru_cache(maxsize=None)
def _ball_case(key):
    spec, lam, reg, reg_bias = _BALL_CASES[key]
    problem = random_problem(parse_spec(spec, lam=lam, reg=reg, reg_bias=reg_bias), m=3, seed=11)
    return problem, _mp_gradient(problem)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("key", list(_BALL_CASES))
def test_every_ball_contains_an_independent_60_digit_reference_and_certifies_its_digits(key, mode):
    problem, (cost, grads) = _ball_case(key)
    result = exact_gradient(problem, mode=mode)
    with mpmath.workdps(60):
        assert abs(result.cost_exact - cost) <= result.cost_radius
        flat_radius = np.concatenate([r.reshape(-1) for r in result.grads_radius.values()])
        flat_digits = np.concatenate([d.reshape(-1) for d in result.grads_digits.values()])
        for exact, reference, radius, digits in zip(_flat_exact(result), grads, flat_radius, flat_digits, strict=True):
            # mpmath.diff's own error at 60 digits is far below the radii (~1e-55 at 192 bits)
            assert abs(exact - reference) <= radius + mpmath.mpf(10) ** -57 * abs(reference)
            assert digits >= 30 and radius <= abs(reference) * 10.0 ** -digits * 1.01
    assert 0 < result.cost_radius <= abs(result.cost) * 1e-30


@pytest.mark.parametrize("a,cost_flag,grad_flag", [(-720.0, "SUBNORMAL", "SUBNORMAL"), (-760.0, "UNDERFLOW", "UNDERFLOW"),
                                                     (-800.0, "NEGLIGIBLE", "UNDERFLOW"), (-30.0, "NORMAL", "NORMAL")])
def test_a_value_below_float64s_range_is_flagged_not_silently_zero(a, cost_flag, grad_flag):
    # J = log(1 + e^a) and ∂J/∂b2 = σ(a), both ≈ e^a. At a = −760 (1e-330) both are resolved: proven
    # nonzero, 0.0 in float64. At a = −800 (4e-348) the cost cancels in 1 + e^a and is only settled
    # below 2^-1100 (flagged as not proven nonzero); σ(a) has no cancellation and is resolved.
    result = exact_gradient(_one_unit([a], [0.0]))
    assert result.cost_range == symbolic.Range[cost_flag] and result.grads_range["b2"][0] == symbolic.Range[grad_flag]
    if cost_flag in ("SUBNORMAL", "NORMAL"):
        assert result.cost > 0 and result.grads["b2"][0] > 0
    else:
        assert result.cost == 0.0 and result.grads["b2"][0] == 0.0 and result.grads_exact["b2"][0] > 0
    if cost_flag == "UNDERFLOW":
        assert result.cost_digits >= 30 and result.cost_exact > 0
    if cost_flag == "NEGLIGIBLE":
        assert any("J is below 2^-1100" in n for n in result.notes)


def test_a_value_above_float64s_range_is_flagged_as_overflow():
    net = parse_spec("1-1-1:identity/identity")
    params = {"W1": np.array([[1e300]]), "b1": np.array([0.0]), "W2": np.array([[1.0]]), "b2": np.array([0.0])}
    result = exact_gradient(make_problem(net, params, np.array([[1e10]]), np.array([[0.0]])))
    assert result.cost == np.inf and result.cost_range == symbolic.Range.OVERFLOW
    assert all((r == symbolic.Range.OVERFLOW).all() for r in result.grads_range.values())
    with mpmath.workdps(40):  # J = (1e310)²/2: the exact value is kept beyond float64
        assert _worst_relative([result.cost_exact], [mpmath.mpf(1e300) ** 2 * mpmath.mpf(1e10) ** 2 / 2]) <= 1e-30


def test_an_exact_zero_partial_is_flagged_zero_with_infinite_certified_digits():
    result = exact_gradient(_one_unit([-3.0], [0.0]))  # x = 0: ∂J/∂W1 = W2·σ'…·x = 0 exactly
    assert result.grads_range["W1"][0, 0] == symbolic.Range.ZERO
    assert result.grads_digits["W1"][0, 0] == np.inf and result.grads_radius["W1"][0, 0] == 0.0


# ---- the oracle's own reading of the specification -------------------------------------------

def test_a_planted_change_to_the_shared_spec_reading_does_not_change_the_oracles_answer(monkeypatch):
    problem = random_problem(parse_spec("3-4-2:tanh", lam=2.0), m=3, seed=2)
    before = exact_gradient(problem)
    from gradverify.spec import Network
    monkeypatch.setattr(Network, "is_regularized", lambda self, name: self.lam > 0)  # biases too: wrong
    monkeypatch.setattr(Network, "reg_coefficient", lambda self, m: self.lam)  # λ instead of λ/2m: wrong
    after = exact_gradient(problem)
    assert after.cost == before.cost and np.array_equal(after.flat(), before.flat())


def test_an_inconsistency_inside_the_oracle_is_an_internal_error_not_an_input_error(monkeypatch):
    from gradverify.errors import InternalError
    from gradverify.symbolic import reading
    problem = random_problem(parse_spec("3-4-2", lam=1.0, reg="lambda"), m=2, seed=0)
    monkeypatch.delitem(reading._CONVENTIONS, "lambda")  # the spec accepts it, the oracle forgot it
    with pytest.raises(InternalError, match="does not know the regularization convention 'lambda'.*bug in gradverify"):
        exact_gradient(problem)


def test_a_mode_that_loses_a_partial_is_an_internal_error(monkeypatch):
    from gradverify.errors import InternalError
    from gradverify.symbolic import batched
    original = batched.batched_evaluator

    def one_short(problem, progress):
        run, steps = original(problem, progress)

        def run_short(bits, hull):
            ev = run(bits, hull)
            ev.grads = ev.grads[:-1]
            return ev
        return run_short, steps

    monkeypatch.setattr(driver, "batched_evaluator", one_short)
    with pytest.raises(InternalError, match="batched mode returned 37 partials for 38 parameters"):
        exact_gradient(debug_problem(), mode="batched")


# ---- backends, expressions --------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["full", "scalable"])
def test_the_pure_sympy_backend_agrees_with_symengine(mode):
    problem = random_problem(parse_spec("3-3-2:relu/softmax", lam=1.0, reg_bias=True), m=2, seed=4)
    a = exact_gradient(problem, mode=mode, backend="sympy")
    b = exact_gradient(problem, mode=mode, backend="symengine")
    assert (a.backend, b.backend) == ("sympy", "symengine")
    assert _worst_relative(_flat_exact(a), _flat_exact(b)) <= 1e-30


def test_the_cost_expression_holds_exact_rationals_and_no_float_atoms():
    problem = debug_problem(debug_network(lam=3.0))
    J, symbols = cost_expression(problem)
    assert J.atoms(sympy.Float) == set()
    assert list(symbols) == scalar_names(problem.network)
    assert str(symbols["W2[1,3]"]) == "W2[1,3]"
    values = {symbols[n]: sympy.Rational(float(v)) for n, v in zip(symbols, np.concatenate([problem.params[k].reshape(-1) for k, _ in problem.network.param_shapes]))}
    assert float(J.xreplace(values).evalf(30)) == pytest.approx(2.146360, abs=5e-7)


def test_partial_expression_of_b2_0_is_readable_and_evaluates_to_the_oracle_value():
    problem = debug_problem(debug_network(lam=0.0), m=2)
    expr = partial_expression(problem, "b2[0]")
    assert "exp" in str(expr) and "b2[0]" in sympy.pretty(expr) and "e^" in sympy.latex(expr)
    assert expr.atoms(sympy.Float) == set()
    _, symbols = cost_expression(problem)
    values = {symbols[n]: sympy.Rational(float(v)) for n, v in zip(symbols, np.concatenate([problem.params[k].reshape(-1) for k, _ in problem.network.param_shapes]))}
    exact = exact_gradient(problem, mode="full").grads_exact["b2"][0]
    with mpmath.workdps(40):
        assert _worst_relative([mpmath.mpf(str(expr.xreplace(values).evalf(40)))], [exact]) <= 1e-30


def test_partial_expression_of_an_unknown_parameter_says_which_names_exist():
    with pytest.raises(InputError, match=r"'W3\[0,0\]' is not a parameter of 3-5-3.*W1\[0,0\]"):
        partial_expression(debug_problem(), "W3[0,0]")


def test_partial_expression_refuses_a_network_too_large_to_read():
    with pytest.raises(InputError, match="too large to show.*fewer examples"):
        partial_expression(random_problem(parse_spec("400-25-10"), m=5), "b2[0]")


# ---- modes, limits, progress, validation -------------------------------------------------------

def test_auto_mode_picks_full_for_small_and_batched_for_large_networks():
    assert exact_gradient(debug_problem()).mode == "full"
    big = random_problem(parse_spec("40-40-10"), m=5)
    result = exact_gradient(big)
    assert (result.mode, result.backend) == ("batched", "sympy")


def test_full_mode_beyond_the_limit_falls_back_to_batched_with_a_note():
    problem = random_problem(parse_spec("10-12-3"), m=2, seed=0)
    result = exact_gradient(problem, mode="full", backend="sympy")  # P = 171: P²·m > 25,000
    assert result.mode == "batched"
    assert any("full mode was asked for" in n and "batched" in n for n in result.notes)


@pytest.mark.parametrize("mode", MODES)
def test_progress_is_reported_monotonically_up_to_the_total(mode):
    calls = []
    exact_gradient(debug_problem(), mode=mode, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1]
    assert all(d1 <= d2 for (d1, _), (d2, _) in itertools.pairwise(calls))
    assert all(0 < d <= t for d, t in calls)


@pytest.mark.parametrize("kwargs,match", [
    ({"mode": "fast"}, "Unknown mode"),
    ({"backend": "maple"}, "Unknown symbolic backend"),
    ({"digits": 10}, "digits must be an integer"),
    ({"digits": 30.0}, "digits must be an integer"),
])
def test_bad_options_raise_input_errors_that_say_what_to_do(kwargs, match):
    with pytest.raises(InputError, match=match):
        exact_gradient(debug_problem(), **kwargs)


def test_a_non_problem_is_rejected():
    with pytest.raises(InputError, match="needs a Problem"):
        exact_gradient(debug_network())


def test_the_public_api_is_exactly_all():
    assert set(symbolic.__all__) == {"FULL_MODE_LIMIT", "ExactGradient", "Range", "cost_expression", "exact_gradient",
                                     "partial_expression"}
    public = {n for n in vars(symbolic) if not n.startswith("_") and not isinstance(getattr(symbolic, n), type(symbolic))}
    assert public == set(symbolic.__all__)


# ---- scale (slow) -------------------------------------------------------------------------------

@pytest.mark.slow
def test_scalable_mode_on_400_25_10_agrees_with_forward_cost_differences():
    problem = random_problem(parse_spec("400-25-10", lam=1.0), m=20, seed=0)
    result = exact_gradient(problem, mode="scalable")
    assert result.digits >= 30
    assert result.cost == pytest.approx(forward_cost(problem.network, problem.params, problem.X, problem.Y), rel=1e-13)
    rng = np.random.default_rng(0)
    for name in ("W1", "b1", "W2", "b2"):  # spot checks by complex step on the float64 forward
        idx = tuple(int(rng.integers(0, s)) for s in problem.params[name].shape)
        params = {k: v.astype(complex) for k, v in problem.params.items()}
        params[name][idx] += 1e-30j
        estimate = forward_cost(problem.network, params, problem.X, problem.Y).imag / 1e-30
        assert result.grads[name][idx] == pytest.approx(estimate, rel=1e-9, abs=1e-15)


@pytest.mark.slow
def test_the_pure_sympy_backend_still_handles_a_mid_sized_network():
    problem = random_problem(parse_spec("20-10-3:tanh/softmax", lam=1.0), m=10, seed=0)
    a = exact_gradient(problem, backend="sympy", mode="scalable")
    b = exact_gradient(problem, backend="symengine", mode="scalable")
    assert a.backend == "sympy" and _worst_relative(_flat_exact(a), _flat_exact(b)) <= 1e-30


@pytest.mark.slow
def test_scalable_mode_handles_784_128_10_with_a_hundred_thousand_parameters():
    problem = random_problem(parse_spec("784-128-10", lam=1.0), m=2, seed=1)
    result = exact_gradient(problem, mode="scalable")
    assert result.mode == "scalable" and result.digits >= 30
    assert sum(g.size for g in result.grads.values()) == 101_770
    assert result.cost == pytest.approx(forward_cost(problem.network, problem.params, problem.X, problem.Y), rel=1e-13)
    params = {k: v.astype(complex) for k, v in problem.params.items()}
    params["W1"][5, 300] += 1e-30j
    estimate = forward_cost(problem.network, params, problem.X, problem.Y).imag / 1e-30
    assert result.grads["W1"][5, 300] == pytest.approx(estimate, rel=1e-9, abs=1e-15)


@pytest.mark.slow
def test_batched_and_scalable_modes_agree_digit_for_digit_on_all_of_784_128_10():
    problem = random_problem(parse_spec("784-128-10", lam=1.0), m=2, seed=3)
    batched, scalable = exact_gradient(problem, mode="batched"), exact_gradient(problem, mode="scalable")
    _assert_same_digits(batched, scalable)


@pytest.mark.slow
def test_batched_mode_at_the_exercises_full_data_size_certifies_every_partial():
    # 400-25-10 with m = 5000: bench/bench_oracle.py times it; here only what it answers
    problem = random_problem(parse_spec("400-25-10", lam=1.0), m=5000, seed=0)
    result = exact_gradient(problem, mode="auto")
    assert result.mode == "batched" and result.digits >= 30
    assert all((d >= 30).all() for d in result.grads_digits.values()) and result.cost_digits >= 30
    assert result.cost == pytest.approx(forward_cost(problem.network, problem.params, problem.X, problem.Y), rel=1e-13)
    params = {k: v.astype(complex) for k, v in problem.params.items()}
    params["W1"][7, 123] += 1e-30j  # complex step on the float64 forward: an independent spot check
    estimate = forward_cost(problem.network, params, problem.X, problem.Y).imag / 1e-30
    assert result.grads["W1"][7, 123] == pytest.approx(estimate, rel=1e-9, abs=1e-15)


# ---- values whose exact answer is 0 but whose ball has a radius -----------------------------------

def test_integer_powers_of_a_ball_holding_zero_stay_finite():
    """python-flint's ``arb ** n`` is nan for every ball containing 0, even n = 1: the oracle multiplies."""
    from flint import arb

    from gradverify.symbolic.balls import int_power

    z = arb(0, 1e-40)
    assert not (z ** 2).is_finite()  # the library behaviour worked around (if this fails, int_power may go)
    for n in (1, 2, 3, 4):
        p = int_power(z, n)
        assert p.is_finite() and p.contains(0) and float(p.rad()) <= 1.1e-40 ** n * 2
    assert int_power(arb(-2), 3) == -8 and int_power(arb(3), 2) == 9 and int_power(arb(2), -2) == arb(1) / 4
    with_rounding = arb(1) / 3 - arb(1) / 3 * 1  # 0 ± a rounding radius
    assert all(x.is_finite() for x in int_power(np.array([with_rounding, arb(5)], dtype=object), 2))


def test_a_unit_whose_exact_preactivation_is_zero_is_certified_and_blames_nobody():
    """h = (tanh(½), tanh(−½)) summed by W2 = (1, 1): the second unit's input is 0 ± rounding, and its
    tanh' = 1 − tanh(z)² was nan in ball arithmetic, so every partial behind it went uncertified and a
    correct backprop and finite differences were called wrong."""
    from gradverify.compare import compare

    network = parse_spec("1-2-1-1:tanh/identity", lam=0.0)
    params = {"W1": np.array([[1.0], [-1.0]]), "b1": np.zeros(2), "W2": np.array([[1.0, 1.0]]), "b2": np.zeros(1),
              "W3": np.array([[0.75]]), "b3": np.array([0.25])}
    problem = make_problem(network, params, np.array([[0.5]]), np.array([[0.3]]))
    for mode in ("full", "scalable", "batched"):
        ex = symbolic.exact_gradient(problem, mode=mode)
        assert all(np.all(np.isfinite(g)) for g in ex.grads.values()), (mode, ex.notes)
        assert ex.digits >= 30, (mode, ex.notes)
    comp = compare(problem)
    assert comp.verdict == "pass", comp.summary()
    assert not any("could not certify" in n for n in comp.notes)


def test_a_referee_without_a_value_blames_no_source_there():
    """Defence in depth: an exact partial the oracle could not certify (nan) is not judged, and a note says so."""
    import dataclasses

    from gradverify.compare import gather, judge

    problem = debug_problem()
    sources = gather(problem, ("exact", "backprop"))
    grad = sources["exact"].grad.copy()
    grad[[0, 5]] = np.nan
    sources["exact"] = dataclasses.replace(sources["exact"], grad=grad)
    comp = judge(problem, sources)
    v = comp.verdicts["backprop"]
    assert comp.verdict == "pass" and list(np.flatnonzero(v.status == "unchecked")) == [0, 5]
    assert any("could not certify ∂J/∂θ for W1[0,0], W1[1,2]" in n for n in comp.notes), comp.notes
    assert "backprop checked 36 of 38" in comp.summary()


def test_a_relu_input_that_is_zero_only_after_rounding_is_a_kink_with_certified_one_sided_values():
    """tanh(½) + tanh(−½) feeds a ReLU: exactly 0, but no precision can prove it (its ball always straddles 0).
    The oracle climbs to its highest precision, then takes the point as a kink: certified values (relu'(0) = 0),
    the interval of one-sided values, a note; a source at either side passes as a kink, one outside fails."""
    import dataclasses

    from gradverify.compare import gather, judge

    network = parse_spec("1-2-2-1:tanh,relu/identity", lam=0.0)
    params = {"W1": np.array([[1.0], [-1.0]]), "b1": np.zeros(2), "W2": np.array([[1.0, 1.0], [0.5, -0.25]]),
              "b2": np.array([0.0, 0.1]), "W3": np.array([[0.75, 0.5]]), "b3": np.array([0.25])}
    problem = make_problem(network, params, np.array([[0.5], [0.3]]), np.array([[0.3], [0.1]]))
    for mode in ("full", "scalable", "batched"):
        ex = symbolic.exact_gradient(problem, mode=mode)
        assert ex.digits >= 30 and ex.kink_lo is not None, (mode, ex.notes)
        assert any("taken as exactly on it, a kink" in n for n in ex.notes), ex.notes
        assert ex.grads["W2"][0, 0] == 0.0 and ex.kink_hi["W2"][0, 0] > 0  # relu'(0) = 0, and the other side
    sources = gather(problem, ("exact", "backprop"))
    lo, hi = sources["exact"].kink_lo, sources["exact"].kink_hi
    at_kink = ~np.isnan(lo)
    assert at_kink.sum() >= 3
    other_side = np.where(at_kink, hi, sources["exact"].grad)
    sources["other_side"] = dataclasses.replace(sources["backprop"], name="other_side", grad=other_side)
    beyond = other_side + np.where(at_kink, 1e-3 * (np.abs(hi) + 1e-3), 0.0)
    sources["beyond"] = dataclasses.replace(sources["backprop"], name="beyond", grad=beyond)
    comp = judge(problem, sources)
    assert comp.verdicts["backprop"].ok and comp.verdicts["other_side"].ok
    assert np.all(comp.verdicts["other_side"].status[at_kink] == "kink")
    assert not comp.verdicts["beyond"].ok and np.all(comp.verdicts["beyond"].status[at_kink] == "off")
