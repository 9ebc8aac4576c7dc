"""Finite differences: accuracy against an mpmath reference, honest error bars, the fast path
against a plain loop, kinks, random probes with bisection, and the step curve.

The reference gradient is computed here, independently of every gradverify gradient source:
an mpmath re-implementation of the cost at 90 digits, differentiated by central differences
with h = 1e−35 (truncation ≈ 1e−70·|J‴|, round-off ≈ 1e−55: exact even for the 1e−26-sized
partials of saturated units).
"""

from __future__ import annotations

import functools

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gradverify import finite_diff, forward
from gradverify.errors import InputError
from gradverify.finite_diff import numeric_gradient, numeric_gradient_of, probe_check, step_curve
from gradverify.finite_diff.blackbox import evaluation_noise
from gradverify.params import flatten, scalar_names, unflatten
from gradverify.problems import debug_problem, random_problem
from gradverify.spec import make_problem, parse_spec

# ---- an independent high-precision reference ------------------------------------------------

_MP_ACT = {
    "sigmoid": lambda a: 1 / (1 + mpmath.exp(-a)),
    "tanh": mpmath.tanh,
    "relu": lambda a: a if a > 0 else mpmath.mpf(0),
    "softplus": lambda a: mpmath.log(1 + mpmath.exp(a)),
    "identity": lambda a: a,
}


def _mp_cost(problem, vec) -> mpmath.mpf:
    net = problem.network
    params = unflatten(np.array(vec, dtype=object), net)
    H = np.array([[mpmath.mpf(float(v)) for v in row] for row in problem.X], dtype=object)
    L = net.depth
    for k in range(1, L + 1):
        A = H.dot(params[f"W{k}"].T) + params[f"b{k}"]
        if k < L:
            H = np.vectorize(_MP_ACT[net.activations[k - 1]], otypes=[object])(A)
    m = problem.m
    Y = [[mpmath.mpf(float(v)) for v in row] for row in problem.Y]
    total = mpmath.mpf(0)
    for a, y in zip(A, Y):
        if net.output == "sigmoid":
            total += mpmath.fsum(mpmath.log(1 + mpmath.exp(ak)) - yk * ak for ak, yk in zip(a, y))
        elif net.output == "softmax":
            lse = mpmath.log(mpmath.fsum(mpmath.exp(ak) for ak in a))
            total -= mpmath.fsum(yk * (ak - lse) for ak, yk in zip(a, y))
        else:
            total += mpmath.fsum((ak - yk) ** 2 for ak, yk in zip(a, y)) / 2
    penalty = mpmath.mpf(0)
    if net.lam > 0:   # read from the raw fields here too: the reference shares no reading with gradverify
        lam = mpmath.mpf(net.lam)
        c = {"lambda/2m": lam / (2 * m), "lambda": lam, "lambda/2": lam / 2}[net.reg]
        penalty = c * mpmath.fsum(v * v for name in params if name[0] == "W" or net.reg_bias
                                  for v in params[name].reshape(-1))
    return total / m + penalty


_CACHE: dict = {}


def mp_gradient(problem) -> np.ndarray:
    """The exact gradient (to float64 rounding) at the float64 parameters of ``problem``."""
    key = id(problem)
    if key not in _CACHE:
        with mpmath.workdps(90):
            theta = [mpmath.mpf(float(v)) for v in flatten(problem.params, problem.network)]
            h = mpmath.mpf("1e-35")
            grad = []
            for p in range(len(theta)):
                up, down = list(theta), list(theta)
                up[p] += h
                down[p] -= h
                grad.append(float((_mp_cost(problem, up) - _mp_cost(problem, down)) / (2 * h)))
        _CACHE[key] = (problem, np.array(grad))      # keep the problem alive so id() stays unique
    return _CACHE[key][1]


@functools.lru_cache(maxsize=None)
def debug():
    return debug_problem()


def _rel(a, b):
    return np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-300)


SPECS = [f"3-4-3:{act}/{out}" for act in ("sigmoid", "tanh", "relu", "softplus", "identity")
         for out in ("sigmoid", "softmax", "identity")]


def _problem(spec: str, *, scale: float = 1.0, seed: int = 1, lam: float = 1.0, reg_bias: bool = False, m: int = 4):
    return random_problem(parse_spec(spec, lam=lam, reg_bias=reg_bias), m=m, seed=seed, scale=scale)


# ---- accuracy on the debug network ----------------------------------------------------------------

def test_the_reference_reproduces_the_debug_cost_of_the_lecture():
    with mpmath.workdps(30):
        theta = [mpmath.mpf(float(v)) for v in flatten(debug().params, debug().network)]
        assert abs(float(_mp_cost(debug(), theta)) - 2.146360) < 1e-6


def test_the_default_estimator_is_within_1e_10_relative_per_component_on_the_debug_network():
    ref = mp_gradient(debug())
    result = numeric_gradient(debug())
    assert result.method == "complex-step"
    assert _rel(result.flat(), ref).max() <= 1e-10


def test_complex_step_is_accurate_to_a_few_ulps_of_the_terms_it_sums():
    ref = mp_gradient(debug())
    result = numeric_gradient(debug(), method="complex-step")
    err = np.abs(result.flat() - ref)
    assert np.linalg.norm(err) / np.linalg.norm(ref) <= 1e-15
    # per component 1e-14 relative to the size of the terms: where ∂J/∂θ is a data part and a
    # penalty part λ/m·θ that cancel, float64 cannot hold the small difference any better
    net = debug().network
    pen = np.concatenate([(net.lam / debug().m) * debug().params[n].reshape(-1) * (net.lam > 0 and (n[0] == "W" or net.reg_bias))
                          for n, _ in net.param_shapes])
    assert np.all(err <= 1e-14 * (np.abs(ref) + 2 * np.abs(pen)))
    assert _rel(result.flat(), ref)[np.abs(ref) > 1e-3].max() <= 2e-14


@pytest.mark.parametrize("method, rtol", [("central", 1e-6), ("richardson", 1e-8), ("complex-step", 1e-12)])
def test_every_method_is_accurate_and_within_its_own_error_estimate_on_the_debug_network(method, rtol):
    ref = mp_gradient(debug())
    result = numeric_gradient(debug(), method=method)
    err = np.abs(result.flat() - ref)
    assert _rel(result.flat(), ref).max() <= rtol
    assert np.all(err <= result.flat("errors"))
    # the error bars are bars, not blankets: within a few hundred times the true error at most
    assert np.median(result.flat("errors") / np.maximum(err, 1e-300)) < 1e3 or method == "complex-step"


def test_the_black_box_estimators_are_accurate_and_within_their_error_estimates():
    prob = debug()
    net = prob.network
    ref = mp_gradient(prob)
    J = lambda th: forward.cost(net, unflatten(th, net), prob.X, prob.Y)  # noqa: E731
    theta = flatten(prob.params, net)
    for method, rtol in (("central", 1e-5), ("richardson", 1e-7)):
        estimate, error, step = numeric_gradient_of(J, theta, method=method)
        assert _rel(estimate, ref).max() <= rtol
        assert np.all(np.abs(estimate - ref) <= error)
        assert np.all(step > 0)


# ---- error bars on random networks, saturated ones included -------------------------------------

@pytest.mark.parametrize("scale", [1.0, 30.0])
@pytest.mark.parametrize("spec", SPECS)
def test_the_error_estimates_bound_the_true_error_on_random_networks(spec, scale):
    prob = _problem(spec, scale=scale, reg_bias=("softmax" in spec))
    ref = mp_gradient(prob)
    analytic = "relu" not in spec
    for method in ("central", "richardson") + (("complex-step",) if analytic else ()):
        result = numeric_gradient(prob, method=method)
        err = np.abs(result.flat() - ref)
        bad = np.flatnonzero(err > result.flat("errors"))
        assert bad.size == 0, (method, [(scalar_names(prob.network)[i], err[i], result.flat("errors")[i]) for i in bad])


def test_a_deeper_network_gets_the_same_honest_error_bars():
    prob = _problem("3-4-4-2:tanh,sigmoid/softmax", scale=3.0, seed=5)
    ref = mp_gradient(prob)
    for method in ("central", "richardson", "complex-step"):
        result = numeric_gradient(prob, method=method)
        assert np.all(np.abs(result.flat() - ref) <= result.flat("errors")), method


# ---- the fast path is the same computation as a plain loop over forward.cost ----------------------

def _slow_central(prob, steps):
    net = prob.network
    theta = flatten(prob.params, net)
    J = lambda th: forward.cost(net, unflatten(th, net), prob.X, prob.Y)  # noqa: E731
    out = np.empty_like(theta)
    for p, h in enumerate(steps):
        up, down = theta.copy(), theta.copy()
        up[p] += h
        down[p] -= h
        out[p] = (J(up) - J(down)) / (up[p] - down[p])
    return out


def _slow_complex(prob, h=1e-20):
    net = prob.network
    theta = flatten(prob.params, net).astype(complex)
    out = np.empty(theta.size)
    for p in range(theta.size):
        x = theta.copy()
        x[p] += 1j * h
        out[p] = forward.cost(net, unflatten(x, net), prob.X, prob.Y).imag / h
    return out


@pytest.mark.parametrize("spec", SPECS + ["3-4-4-2:relu,tanh/sigmoid", "3-4-4-2:softplus,identity/identity", "3-5-1"])
def test_the_fast_path_equals_a_plain_loop_over_forward_cost(spec):
    prob = _problem(spec, scale=2.0, seed=3, reg_bias=spec.endswith("identity"))
    fast = numeric_gradient(prob, method="central")
    steps = fast.flat("steps")
    slow = _slow_central(prob, steps)
    # the same difference quotient; they differ only by round-off: the fast one's is inside its
    # error bar, the loop's (all of J, every time) is measured on forward.cost itself
    net = prob.network
    theta = flatten(prob.params, net)
    J = lambda th: float(forward.cost(net, unflatten(th, net), prob.X, prob.Y))  # noqa: E731
    noise, _ = evaluation_noise(J, theta, J(theta), None)
    assert np.all(np.abs(fast.flat() - slow) <= fast.flat("errors") + noise / steps)
    if "relu" not in spec:
        cs = numeric_gradient(prob, method="complex-step")
        slow_cs = _slow_complex(prob)
        assert np.all(np.abs(cs.flat() - slow_cs) <= cs.flat("errors"))


def test_the_fast_path_reports_shapes_and_names_like_the_problem():
    prob = _problem("3-4-2/softmax")
    result = numeric_gradient(prob)
    for field in ("grads", "errors", "steps", "kinks"):
        mapping = getattr(result, field)
        assert list(mapping) == [name for name, _ in prob.network.param_shapes]
        for name, arr in mapping.items():
            assert arr.shape == prob.params[name].shape
    assert result.one_sided is None and result.n_kinks == 0
    assert np.all(result.flat("errors") >= 0) and np.all(result.flat("steps") > 0)
    assert result.n_evals == prob.network.n_params + 1


# ---- kinks ----------------------------------------------------------------------------------------

def _kinked_relu_problem(offset=1e-9):
    """A ReLU net whose unit 2 has the pre-activation `offset` on example 0: inside every stencil."""
    prob = random_problem(parse_spec("3-5-2:relu"), m=4, seed=7)
    params = {k: v.copy() for k, v in prob.params.items()}
    params["b1"][2] = offset - prob.X[0] @ params["W1"][2]
    return make_problem(prob.network, params, prob.X, prob.Y)


def test_a_stencil_across_a_relu_kink_is_flagged_with_one_sided_values():
    prob = _kinked_relu_problem()
    A1 = prob.X @ prob.params["W1"].T + prob.params["b1"]
    assert abs(A1[0, 2] - 1e-9) < 1e-15 and np.delete(np.abs(A1), 2, axis=1).min() > 1e-3
    result = numeric_gradient(prob)
    assert result.method == "central"
    expected = {name: np.zeros(shape, dtype=bool) for name, shape in prob.network.param_shapes}
    expected["W1"][2, :] = True
    expected["b1"][2] = True
    for name in expected:
        np.testing.assert_array_equal(result.kinks[name], expected[name], err_msg=name)
    left, right = result.one_sided["W1"]
    assert np.all(np.isnan(left[[0, 1, 3, 4]])) and np.all(np.isfinite(left[2]))
    # the two sides differ: unit 2 is on for example 0 on one side, off on the other
    assert np.all(np.abs(left[2] - right[2]) > 1e-3 * np.abs(left[2] + right[2]))
    # θ itself is on the active side (a = 1e−9 > 0): the exact derivative is one of the one-sided
    # values, and the widened error bar covers it, so the entry is not a failure
    ref = unflatten(mp_gradient(prob), prob.network)
    exact = ref["W1"][2]
    active_side = np.where(prob.X[0] > 0, right[2], left[2])
    assert np.all(np.abs(active_side - exact) < 1e-4 * (1 + np.abs(exact)))
    assert np.all(np.abs(result.grads["W1"][2] - exact) <= result.errors["W1"][2])


def test_kinks_are_not_flagged_away_from_them():
    prob = random_problem(parse_spec("3-6-2:relu/softmax", lam=1.0), m=5, seed=11)
    A1 = prob.X @ prob.params["W1"].T + prob.params["b1"]
    assert np.abs(A1).min() > 1e-3
    for method in ("central", "richardson"):
        result = numeric_gradient(prob, method=method)
        assert result.n_kinks == 0 and result.one_sided is None
        assert np.all(np.abs(result.flat() - mp_gradient(prob)) <= result.flat("errors"))


# ---- independence: the penalty is this side's own reading of the spec ------------------------------

@pytest.mark.parametrize("reg, reg_bias", [("lambda/2m", False), ("lambda", True), ("lambda/2", False)])
def test_the_penalty_reading_agrees_with_the_specs_own_in_every_convention(reg, reg_bias):
    net = parse_spec("3-4-2", lam=1.5, reg=reg, reg_bias=reg_bias)
    assert forward.penalized_arrays(net) == {n for n, _ in net.param_shapes if net.is_regularized(n)}
    assert forward.penalty_coefficient(net, 7) == net.reg_coefficient(7)
    assert forward.penalized_arrays(net.with_(lam=0.0)) == frozenset()


def test_finite_differences_do_not_use_the_networks_shared_reading_of_the_penalty(monkeypatch):
    """A wrong ``Network.is_regularized``/``reg_coefficient`` changes nothing on this side."""
    from gradverify.spec import Network

    probs = [_problem("3-4-2:tanh", lam=2.0), _problem("3-4-2:relu/softmax", lam=0.5, reg_bias=True)]
    before = [(float(forward.cost(p.network, p.params, p.X, p.Y)),
               {meth: numeric_gradient(p, method=meth) for meth in ("auto", "richardson")},
               probe_check(p, mp_gradient(p), k=3)) for p in probs]
    monkeypatch.setattr(Network, "is_regularized", lambda self, name: self.lam > 0)        # biases too
    monkeypatch.setattr(Network, "reg_coefficient", lambda self, m: 10.0 * self.lam)
    assert probs[0].network.is_regularized("b1") and probs[0].network.reg_coefficient(4) == 20.0
    for prob, (cost, grads, probes) in zip(probs, before):
        assert float(forward.cost(prob.network, prob.params, prob.X, prob.Y)) == cost
        for meth, grad in grads.items():
            again = numeric_gradient(prob, method=meth)
            np.testing.assert_array_equal(again.flat(), grad.flat())
            np.testing.assert_array_equal(again.flat("errors"), grad.flat("errors"))
        assert probe_check(prob, mp_gradient(prob), k=3).passed and probes.passed
        curve = step_curve(prob, "b1[0]")
        assert curve.reference == step_curve(prob, "b1[0]").reference


def test_a_wrong_penalty_reading_on_this_side_is_caught_by_the_comparison_naming_numeric(monkeypatch):
    """Plant the issue's bug (biases penalized whenever λ > 0) in this side's own reading only:
    the comparison itself must fail and name the finite-difference source, not pass on a constant."""
    from gradverify.compare import compare

    assert compare(debug_problem()).verdict == "pass"
    def biases_too(net):
        return frozenset(f"{k}{i}" for i in range(1, len(net.sizes)) for k in "Wb") if net.lam > 0 else frozenset()

    monkeypatch.setattr(forward, "penalized_arrays", biases_too)
    comp = compare(debug_problem())
    assert comp.verdict == "fail" and comp.wrong == ["numeric"]
    off = [comp.names[i] for i in np.flatnonzero(comp.verdicts["numeric"].status == "off")]
    assert off and all(name.startswith("b") for name in off)
    assert comp.verdicts["backprop"].ok and comp.summary().startswith("FAIL: numeric is wrong at")
    # the planted reading moves the cost this side evaluates by (λ/2m)·Σb²
    prob = debug_problem()
    extra = 3.0 / (2 * prob.m) * sum(float(prob.params[f"b{k}"] @ prob.params[f"b{k}"]) for k in (1, 2))
    assert float(forward.cost(prob.network, prob.params, prob.X, prob.Y)) == pytest.approx(2.146360 + extra, abs=1e-6)


# ---- random probes ----------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def probe_problem():
    return random_problem(parse_spec("10-20-5", lam=1.0), m=6, seed=2)


def _good_gradient(prob):
    return numeric_gradient(prob, method="complex-step").flat()


def test_probes_pass_a_correct_gradient():
    prob = probe_problem()
    g = _good_gradient(prob)
    for distribution in ("rademacher", "gaussian"):
        report = probe_check(prob, g, k=8, distribution=distribution)
        assert report.passed and report.localized == []
        assert all(p.passed for p in report.probes) and len(report.probes) == 8
        assert all(p.ratio <= 1 for p in report.probes)


def test_probes_localize_a_planted_error_with_far_fewer_than_2p_evaluations():
    prob = probe_problem()
    P = prob.network.n_params
    g = _good_gradient(prob)
    bad = g.copy()
    bad[123] += 1e-6 * (1 + abs(g[123]))
    report = probe_check(prob, bad, k=8, seed=1)
    assert not report.passed
    assert report.localized == [123]
    assert report.names == [scalar_names(prob.network)[123]]
    assert report.n_evals < 2 * P / 5
    estimate, error = report.numeric[123]
    assert abs(estimate - g[123]) <= error


def test_probes_localize_several_planted_errors_of_either_sign():
    prob = probe_problem()
    g = _good_gradient(prob)
    bad = g.copy()
    planted = [5, 200, 301]
    bad[5] *= -1
    bad[200] += 1e-4
    bad[301] -= 3e-5
    report = probe_check(prob, bad, k=8, seed=4)
    assert not report.passed
    assert report.localized == planted


def test_probes_work_on_a_black_box_function_with_central_differences():
    prob = probe_problem()
    net = prob.network
    P = net.n_params
    theta = flatten(prob.params, net)
    calls = []

    def J(th):
        calls.append(1)
        return float(forward.cost(net, unflatten(th, net), prob.X, prob.Y))

    g = _good_gradient(prob)
    assert probe_check(J, g, theta=theta, k=6).passed
    bad = g.copy()
    bad[77] += 1e-5
    calls.clear()
    report = probe_check(J, bad, theta=theta, k=6, seed=3)
    assert report.method == "central" and report.localized == [77] and report.names == ["θ[77]"]
    assert report.n_evals == len(calls) < 2 * P / 2


def test_probes_miss_nothing_bigger_than_their_budget():
    """A probe must be able to fail: an error just above the budget of every probe is caught."""
    prob = probe_problem()
    g = _good_gradient(prob)
    clean = probe_check(prob, g, k=4)
    budget = max(p.budget for p in clean.probes)
    bad = g.copy()
    bad[42] += 3 * budget
    report = probe_check(prob, bad, k=4)
    assert not report.passed and report.localized == [42]


# ---- step curve and progress ----------------------------------------------------------------

def test_the_step_curve_has_the_v_shape():
    prob = debug()
    curve = step_curve(prob, "W1[1,2]")
    ref = unflatten(mp_gradient(prob), prob.network)["W1"][1, 2]
    assert curve.reference_source == "complex-step" and abs(curve.reference - ref) < 1e-15
    best = curve.errors.min()
    assert best < 1e-3 * curve.errors[0] and best < 1e-3 * curve.errors[-1]
    assert 1e-8 < curve.best_step < 1e-2
    # the model curve follows the measured one within an order of magnitude or two at the ends
    assert curve.predicted[-1] == pytest.approx(curve.errors[-1], rel=0.5)
    given = step_curve(prob, "b2[0]", steps=[1e-8, 1e-4, 1e-1], reference=0.0)
    assert given.reference_source == "given" and given.steps.tolist() == [1e-8, 1e-4, 1e-1]
    assert np.all(given.errors == np.abs(given.estimates))


def test_progress_is_reported_up_to_the_total():
    prob = _problem("3-4-3")
    seen = []
    numeric_gradient(prob, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (prob.network.n_params,) * 2
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    seen.clear()
    theta = flatten(prob.params, prob.network)
    numeric_gradient_of(lambda th: float(th @ th), theta, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (theta.size, theta.size)


# ---- validation and the public surface ------------------------------------------------------

def test_bad_calls_raise_input_errors_that_say_what_to_do():
    relu = _problem("3-4-2:relu")
    with pytest.raises(InputError, match="Unknown finite-difference method"):
        numeric_gradient(debug(), method="forward")
    with pytest.raises(InputError, match="ReLU"):
        numeric_gradient(relu, method="complex-step")
    with pytest.raises(InputError, match="black-box"):
        numeric_gradient_of(lambda th: 0.0, np.zeros(3), method="complex-step")
    with pytest.raises(InputError, match="NaN"):
        numeric_gradient_of(lambda th: float("nan"), np.zeros(3))
    with pytest.raises(InputError, match="Unknown parameter"):
        step_curve(debug(), "W9[0,0]")
    with pytest.raises(InputError, match="outside"):
        step_curve(debug(), "W1[5,0]")
    with pytest.raises(InputError, match="wrong size"):
        probe_check(debug(), np.zeros(3))
    with pytest.raises(InputError, match="needs theta"):
        probe_check(lambda th: 0.0, np.zeros(3))
    with pytest.raises(InputError, match="Problem"):
        numeric_gradient(lambda th: 0.0)


def test_the_public_api_is_exactly_all():
    import types

    public = {name for name, value in vars(finite_diff).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"}
    assert public == set(finite_diff.__all__)


# ---- honest at the extremes of float64: underflow, subnormals, saturation, overflow -------------------
# The referee is the exact oracle (``symbolic.exact_gradient``): its partials are compared at full
# precision (mpmath), so no float64 rounding of the referee hides or fakes an error; its own proven
# radius is added to the bar.

def _outside_own_bar(prob, result) -> list:
    """Entries whose estimate is farther from the exact partial than the estimate's own error bar."""
    from gradverify.symbolic import exact_gradient

    ex = exact_gradient(prob)
    net = prob.network
    exact = [v for n, _ in net.param_shapes for v in ex.grads_exact[n].reshape(-1)]
    radius = flatten(ex.grads_radius, net)
    est, err = result.flat(), result.flat("errors")
    assert not np.isnan(err).any()                      # a bar is a number or inf (nothing claimed)
    bad = []
    for i, g in enumerate(exact):
        if np.isfinite(err[i]) and abs(mpmath.mpf(float(est[i])) - g) > mpmath.mpf(float(err[i])) + mpmath.mpf(float(radius[i])):
            bad.append((scalar_names(net)[i], float(est[i]), float(g), float(err[i])))
    return bad


def _exact_flat(prob) -> np.ndarray:
    from gradverify.symbolic import exact_gradient

    return exact_gradient(prob).flat()


ANALYTIC_METHODS = ("complex-step", "central", "richardson")


def test_the_issues_case_with_partials_near_1e_minus_293_is_within_its_error_bars():
    """`suite --seed 3` shrank to this: numeric was judged off (41× its budget) at W3 ≈ 3.7e−295."""
    from gradverify.compare import compare

    prob = random_problem(parse_spec("2-1-1-1:softplus,sigmoid"), m=1, seed=1, scale=30)
    exact = _exact_flat(prob)
    assert 0 < np.abs(exact).min() < 1e-292           # the imaginary parts of complex step go subnormal
    for method in ANALYTIC_METHODS:
        assert _outside_own_bar(prob, numeric_gradient(prob, method=method)) == [], method
    comp = compare(prob)
    assert comp.verdicts["numeric"].ok, comp.summary()


def _saturate(prob, depth: float):
    """The same problem with every first-layer pre-activation of example 0 set to −depth."""
    params = {k: v.copy() for k, v in prob.params.items()}
    params["b1"] = -depth - prob.X[0] @ params["W1"].T
    return make_problem(prob.network, params, prob.X, prob.Y)


def test_subnormal_partials_are_within_their_error_bars_and_normal_ones_stay_tight():
    prob = _saturate(random_problem(parse_spec("3-3-3:softplus"), m=1, seed=4), 727.35)
    exact = _exact_flat(prob)
    assert (np.abs(exact) < 2.2e-308).sum() >= 9 and (np.abs(exact) > 1e-3).sum() >= 3
    for method in ANALYTIC_METHODS:
        result = numeric_gradient(prob, method=method)
        assert _outside_own_bar(prob, result) == [], method
        if method == "complex-step":                   # the floor is absolute: normal partials keep tight bars
            normal = np.abs(exact) > 1e-250
            assert np.all(result.flat("errors")[normal] <= 1e-12 * np.abs(exact[normal]))


@st.composite
def saturated_problems(draw):
    """Small analytic networks whose first hidden layer sits deep in saturation: slopes from e^−100
    down to below the smallest subnormal (partials from 1e−40 to 0 through the subnormal range)."""
    act = draw(st.sampled_from(["sigmoid", "tanh", "softplus"]))
    out = draw(st.sampled_from(["sigmoid", "softmax", "identity"]))
    n0, n1 = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    K = draw(st.integers(2 if out == "softmax" else 1, 3))
    net = parse_spec(f"{n0}-{n1}-{K}:{act}/{out}", lam=draw(st.sampled_from([0.0, 1.0])), reg_bias=draw(st.booleans()))
    prob = random_problem(net, m=draw(st.integers(1, 2)), seed=draw(st.integers(0, 10_000)))
    limit = 372.6 if act == "tanh" else 745.2       # where tanh's slope 4e^(−2|a|), resp. e^(−|a|), underflows
    return _saturate(prob, draw(st.floats(100 / 745.2, 1.0)) * limit)


def _check_saturated(prob):
    for method in ANALYTIC_METHODS:
        result = numeric_gradient(prob, method=method)
        assert result.n_unresolved == 0
        assert _outside_own_bar(prob, result) == [], method


# shrunk by Hypothesis: saturated σ units (a ≈ −372) whose e^a-sized sensitivities are below the
# resolution of a squared-error loss of size 0.1, and two examples that cancel in the partial
_CANCELLING_SATURATED = make_problem(
    parse_spec("2-3-1/identity"),
    {"W1": np.array([[-0.34657493, -0.54857987], [0.03514989, -0.78388784], [-0.10266541, 0.22549736]]),
     "b1": np.array([-371.80754248, -371.55730941, -372.8842958]),
     "W2": np.array([[0.30032322, 0.27141175, 0.23745823]]), "b2": np.array([-0.15463408])},
    np.array([[0.16909204, 1.33773495], [0.27054978, 0.66102841]]), np.array([[-0.41432065], [0.20762333]]))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prob=saturated_problems())
@example(prob=_CANCELLING_SATURATED)
def test_error_bars_hold_near_underflow_and_in_saturation(prob):
    _check_saturated(prob)


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prob=saturated_problems())
def test_error_bars_hold_near_underflow_and_in_saturation_on_many_networks(prob):
    _check_saturated(prob)


@st.composite
def huge_problems(draw):
    """Weights of 10^20 to 10^154: pre-activations, partials and costs up to and past float64's largest value."""
    act = draw(st.sampled_from(["sigmoid", "tanh", "softplus", "identity"]))
    out = draw(st.sampled_from(["sigmoid", "softmax", "identity"]))
    n0, n1 = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    K = draw(st.integers(2 if out == "softmax" else 1, 3))
    net = parse_spec(f"{n0}-{n1}-{K}:{act}/{out}", lam=draw(st.sampled_from([0.0, 1.0])), reg_bias=draw(st.booleans()))
    return random_problem(net, m=draw(st.integers(1, 2)), seed=draw(st.integers(0, 10_000)),
                          scale=10.0 ** draw(st.floats(20, 154)))


def _check_huge(prob):
    from gradverify.symbolic import exact_gradient

    finite_cost = abs(exact_gradient(prob).cost) < 1e300
    for method in ANALYTIC_METHODS:
        result = numeric_gradient(prob, method=method)
        assert _outside_own_bar(prob, result) == [], method
        # where the cost itself is well inside float64, every entry gets a (finite) estimate
        assert result.n_unresolved == 0 or not finite_cost, method
        assert np.array_equal(np.isnan(result.flat()), ~np.isfinite(result.flat("errors")))


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prob=huge_problems())
@example(prob=random_problem(parse_spec("2-3-2:identity/softmax", lam=1.0), m=2, seed=1, scale=1e150))
def test_error_bars_hold_near_overflow(prob):
    _check_huge(prob)


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prob=huge_problems())
def test_error_bars_hold_near_overflow_on_many_networks(prob):
    _check_huge(prob)


def test_a_cost_that_overflows_float64_leaves_the_entries_unresolved_not_wrong():
    """J = inf on the stencil: no estimate is claimed (NaN, infinite bar), never a NaN bar or a number."""
    prob = random_problem(parse_spec("3-2-2:softplus/identity"), m=1, seed=3, scale=1e140)
    with np.errstate(over="ignore"):
        assert not np.isfinite(float(forward.cost(prob.network, prob.params, prob.X, prob.Y)))
    for method in ANALYTIC_METHODS:
        result = numeric_gradient(prob, method=method)
        assert result.n_unresolved > 0 and "unresolved" in repr(result)
        resolved = np.concatenate([r.reshape(-1) for r in result.resolved.values()])
        assert np.all(np.isnan(result.flat()[~resolved])) and np.all(np.isinf(result.flat("errors")[~resolved]))


def test_the_underflow_floor_is_what_covers_subnormal_partials(monkeypatch):
    """Planted: without the absolute floor the issue's case is outside its bars again."""
    from gradverify.finite_diff import policy

    prob = random_problem(parse_spec("2-1-1-1:softplus,sigmoid"), m=1, seed=1, scale=30)
    monkeypatch.setattr(policy, "ETA", 0.0)
    monkeypatch.setattr("gradverify.finite_diff.errormodel.ETA", 0.0)
    bad = _outside_own_bar(prob, numeric_gradient(prob, method="complex-step"))
    assert "W3[0,0]" in [name for name, *_ in bad]


# ---- the big one --------------------------------------------------------------------------------

@pytest.mark.slow
def test_784_128_10_central_and_complex_step_agree_within_their_error_bars():
    prob = random_problem(parse_spec("784-128-10"), m=64, seed=0)
    central = numeric_gradient(prob, method="central")
    complex_step = numeric_gradient(prob, method="complex-step")
    assert central.network.n_params == 101_770
    assert np.all(np.abs(central.flat() - complex_step.flat()) <= central.flat("errors") + complex_step.flat("errors"))
    assert complex_step.seconds < 10 and central.seconds < 10


def test_probes_on_a_relu_network_step_around_kinks_and_still_localize():
    prob = _kinked_relu_problem()
    exact = mp_gradient(prob)
    clean = probe_check(prob, exact, k=6)
    assert clean.method == "central" and clean.passed and clean.localized == []
    assert any(p.kinked for p in clean.probes)          # unit 2 sits 1e−9 from its kink on example 0
    unit2 = {scalar_names(prob.network).index(n) for n in ("W1[2,0]", "W1[2,1]", "W1[2,2]", "b1[2]")}
    assert clean.kinked and set(clean.kinked) <= unit2
    bad = exact.copy()
    w2 = scalar_names(prob.network).index("W2[1,3]")
    bad[w2] += 1e-6
    report = probe_check(prob, bad, k=6)
    assert not report.passed and report.localized == [w2]


def test_a_kink_beyond_the_smallest_step_keeps_richardson_honest():
    """A pre-activation 1e−3 from its kink: outside ±h but inside Richardson's ±4h stencil."""
    prob = _kinked_relu_problem(offset=1e-3)
    exact = mp_gradient(prob)
    for method in ("central", "richardson"):
        result = numeric_gradient(prob, method=method)
        assert np.all(np.abs(result.flat() - exact) <= result.flat("errors")), method
        if method == "richardson":
            assert result.kinks["b1"][2] and result.n_kinks <= 4
            # D(h) is clean here, so the estimate is still good to about h²
            assert abs(result.grads["b1"][2] - unflatten(exact, prob.network)["b1"][2]) < 1e-5
        else:
            assert result.n_kinks == 0


@pytest.mark.slow
def test_error_bars_hold_on_many_random_architectures_scales_and_regularizations():
    """Every estimator, the black box and the probes, on 120 random problems (depth 1–3, every
    activation and output, λ conventions, bias regularization, scales up to 30, m from 1)."""
    rng = np.random.default_rng(123)
    acts, outs = ["sigmoid", "tanh", "relu", "softplus", "identity"], ["sigmoid", "softmax", "identity"]
    failures = []
    for trial in range(120):
        depth = int(rng.integers(1, 4))
        sizes = [int(rng.integers(1, 5)) for _ in range(depth + 1)]
        out = outs[rng.integers(3)]
        sizes[-1] = max(2, sizes[-1]) if out == "softmax" else sizes[-1]
        hidden = [acts[rng.integers(5)] for _ in range(depth - 1)]
        spec = "-".join(map(str, sizes)) + (":" + ",".join(hidden) if hidden else "") + "/" + out
        net = parse_spec(spec, lam=float(rng.choice([0, 0.5, 3])), reg=str(rng.choice(["lambda/2m", "lambda", "lambda/2"])),
                         reg_bias=bool(rng.integers(2)))
        prob = random_problem(net, m=int(rng.integers(1, 6)), seed=trial, scale=float(rng.choice([0.3, 1, 5, 30])))
        ref = mp_gradient(prob)
        J0 = abs(float(forward.cost(net, prob.params, prob.X, prob.Y)))
        resolvable = np.abs(ref) > 1e-40 * max(1.0, J0)       # the reference resolves ≈1e−55·J
        for method in ("central", "richardson") + (() if "relu" in hidden else ("complex-step",)):
            result = numeric_gradient(prob, method=method)
            if np.any((np.abs(result.flat() - ref) > result.flat("errors")) & resolvable):
                failures.append((spec, method))
        theta = flatten(prob.params, net)
        J = lambda th: float(forward.cost(net, unflatten(th, net), prob.X, prob.Y))  # noqa: E731
        box = numeric_gradient_of(J, theta)
        if np.any((np.abs(box.estimate - ref) > box.error) & resolvable):
            failures.append((spec, "black box"))
        if not probe_check(prob, ref, k=4).passed or not probe_check(J, ref, theta=theta, k=4).passed:
            failures.append((spec, "probe"))
    assert failures == []
