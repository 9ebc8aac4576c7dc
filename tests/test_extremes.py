"""Verdicts that stay true at the edges: infinities, overflow, single precision, and every summary sentence."""

import math

import numpy as np
import pytest
from hypothesis import given, settings

from gradverify import strategies as gst
from gradverify.backprop import cost_and_grad
from gradverify.compare import compare, gather, judge
from gradverify.forward import cost as forward_cost
from gradverify.params import flatten, unflatten
from gradverify.problems import debug_problem, random_problem
from gradverify.spec import make_problem, parse_spec
from planted import student_backprop


def engine(problem):
    return cost_and_grad(problem.network, problem.params, problem.X, problem.Y)


def f32_engine(problem):
    """A stable textbook backprop computed entirely in float32 (a correct single-precision engine)."""
    net = problem.network
    P = {k: v.astype(np.float32) for k, v in problem.params.items()}
    X, Y = problem.X.astype(np.float32), problem.Y.astype(np.float32)
    m = np.float32(X.shape[0])
    one = np.float32(1)
    f = {"sigmoid": lambda a: one / (one + np.exp(-a)), "tanh": np.tanh, "relu": lambda a: np.maximum(a, np.float32(0)),
         "softplus": lambda a: np.logaddexp(np.float32(0), a), "identity": lambda a: a}
    hs, as_ = [X], []
    with np.errstate(over="ignore"):
        for k, act in enumerate(net.activations, 1):
            as_.append(hs[-1] @ P[f"W{k}"].T + P[f"b{k}"])
            hs.append(f[act](as_[-1]))
        L = net.depth
        A = hs[-1] @ P[f"W{L}"].T + P[f"b{L}"]
        if net.output == "sigmoid":
            J = np.sum(np.logaddexp(np.float32(0), A) - Y * A) / m
            d = (f["sigmoid"](A) - Y) / m
        elif net.output == "softmax":
            Z = A - A.max(1, keepdims=True)
            lse = np.log(np.exp(Z).sum(1, keepdims=True))
            J = -np.sum(Y * (Z - lse)) / m
            d = (np.exp(Z - lse) * Y.sum(1, keepdims=True) - Y) / m
        else:
            J = np.sum((A - Y) ** 2) / (2 * m)
            d = (A - Y) / m
        g = {}
        for k in range(L, 0, -1):
            g[f"W{k}"], g[f"b{k}"] = d.T @ hs[k - 1], d.sum(0)
            if k > 1:
                act, a, h = net.activations[k - 2], as_[k - 2], hs[k - 1]
                fp = {"sigmoid": lambda: h * (one - h), "tanh": lambda: one - h * h, "relu": lambda: (a > 0).astype(np.float32),
                      "softplus": lambda: f["sigmoid"](a), "identity": lambda: np.ones_like(a)}[act]()
                d = (d @ P[f"W{k}"]) * fp
    if net.lam:
        lam = np.float32(net.lam)
        c = {"lambda/2m": lam / (2 * m), "lambda": lam, "lambda/2": lam / 2}[net.reg]
        for n in P:
            if n.startswith("W") or net.reg_bias:
                J += c * np.sum(P[n] ** 2)
                g[n] = g[n] + 2 * c * P[n]
    return float(J), {k: v.astype(np.float64) for k, v in g.items()}


# ---- single precision ------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(gst.problems(gst.networks(max_depth=3, max_width=6), saturating=True))
def test_a_correct_float32_engine_passes_when_its_precision_is_declared(problem):
    comp = compare(problem, ("exact",), candidates={"f32": f32_engine}, precision="float32")
    assert comp.verdict == "pass", comp.summary()


@pytest.mark.parametrize("spec, scale", [("3-5-3", 1.0), ("4-8-8-3:tanh/softmax", 1.0), ("6-7-5:softplus", 30.0)])
def test_an_undeclared_float32_engine_is_diagnosed_as_single_precision_not_as_a_numerical_gradient(spec, scale):
    problem = random_problem(parse_spec(spec, lam=1.0), m=5, seed=2, scale=scale)
    comp = compare(problem, ("exact",), candidates={"f32": f32_engine})
    assert comp.verdict == "fail"
    first = comp.diagnoses["f32"][0]
    assert first.kind == "single-precision" and "--precision float32" in first.message
    assert "numerical gradient" not in comp.summary()


def test_a_numerical_gradient_with_a_float64_cost_is_still_called_a_numerical_gradient():
    problem = random_problem(parse_spec("4-6-3", lam=1.0), m=5, seed=0)
    net, theta = problem.network, flatten(problem.params, problem.network)

    def central(p):
        g = np.empty_like(theta)
        for i in range(theta.size):
            e = np.zeros_like(theta)
            e[i] = 1e-5
            g[i] = (forward_cost(net, unflatten(theta + e, net), p.X, p.Y) - forward_cost(net, unflatten(theta - e, net), p.X, p.Y)).real / 2e-5
        return engine(p)[0], g

    comp = compare(problem, ("exact",), candidates={"fd": central})
    assert comp.diagnoses["fd"][0].kind == "numeric-noise"


# ---- infinities, NaN and overflow --------------------------------------------------------------

@pytest.mark.parametrize("bad_cost", [math.inf, -math.inf, math.nan, 1e300, -1e300])
def test_a_non_finite_or_absurd_cost_is_never_ok_even_with_a_right_gradient(bad_cost):
    comp = compare(debug_problem(), ("exact",), candidates={"c": lambda p: (bad_cost, engine(p)[1])})
    v = comp.verdicts["c"]
    assert v.n_off == 0 and v.cost_ok is False and comp.verdict == "fail"
    assert "right gradient but a wrong cost" in comp.summary()


def test_a_nan_or_infinite_partial_is_off_unless_the_exact_value_is_that_infinity():
    def nan_one(p):
        J, g = engine(p)
        g = dict(g)
        g["W1"] = g["W1"].copy()
        g["W1"][0, 0] = np.nan
        g["b2"] = np.full_like(g["b2"], np.inf)
        return J, g

    v = compare(debug_problem(), ("exact",), candidates={"c": nan_one}).verdicts["c"]
    assert v.status[0] == "off" and v.n_off == 1 + 3 and np.isinf(v.ratio[0])


def _overflowing(scale: float):
    net = parse_spec("1-1/identity")
    return make_problem(net, {"W1": np.array([[scale]]), "b1": np.array([0.0])}, np.array([[scale]]), np.array([[1.0]]))


def test_an_exact_value_beyond_float64_is_matched_by_the_same_infinity_and_the_summary_says_so():
    problem = _overflowing(1e200)  # a = 1e400: J ≈ 5e799 and ∂J/∂W ≈ 1e600 overflow float64
    comp = compare(problem, ("exact", "backprop"))
    assert math.isinf(comp.sources["exact"].cost) and math.isinf(comp.sources["backprop"].cost)
    assert comp.verdict == "pass", comp.summary()
    assert "overflows float64" in comp.summary()


def test_an_engine_that_overflows_where_the_exact_value_is_finite_is_wrong():
    problem = _overflowing(1.2e77)  # a² ≈ 2e308 overflows inside a plain engine, J ≈ 1.04e308 does not
    comp = compare(problem, ("exact",), candidates={"naive": lambda p: (float(np.sum((p.X @ p.params["W1"].T - p.Y) ** 2)) / 2, engine(p)[1])})
    assert math.isfinite(comp.sources["exact"].cost) and comp.verdicts["naive"].cost_ok is False


# ---- every summary sentence is grammatical and true -------------------------------------------

def test_summary_with_nothing_to_compare_says_so_instead_of_claiming_agreement():
    comp = compare(debug_problem(), ("backprop",))
    assert comp.summary().startswith("NO VERDICT: only backprop ran")


@pytest.mark.parametrize("sources, start", [
    (("exact", "backprop"), "PASS: backprop agrees with the exact values on all 38 parameters."),
    (("exact", "backprop", "numeric"), "PASS: backprop and numeric agree with the exact values on all 38 parameters."),
    (("backprop", "numeric"), "PASS: numeric agrees with backprop on all 38 parameters."),
])
def test_summary_of_a_pass_names_who_agrees_with_whom(sources, start):
    assert compare(debug_problem(), sources).summary() == start


def test_summary_of_a_pairwise_disagreement_names_no_culprit():
    srcs = gather(debug_problem(), ("backprop",), candidates={"c": lambda p: (engine(p)[0], {k: 2 * v for k, v in engine(p)[1].items()})})
    text = judge(debug_problem(), srcs).summary()
    assert text.startswith("FAIL: c and backprop disagree at 38 of 38 parameters") and "no exact value to say which is wrong" in text


def test_summary_of_a_wrong_gradient_with_a_wrong_cost_says_both():
    comp = compare(debug_problem(), ("exact",), candidates={"c": lambda p: student_backprop(p, "cost-missing-1/m")[:1] + ({k: 2 * v for k, v in engine(p)[1].items()},)})
    assert "is wrong at 38 of 38 parameters" in comp.summary() and "and its cost is off" in comp.summary()


def test_summary_states_the_coverage_of_a_source_that_checked_a_sample():
    from dataclasses import replace

    srcs = gather(debug_problem(), ("exact", "backprop"))
    checked = np.zeros(38, bool)
    checked[:10] = True
    srcs["backprop"] = replace(srcs["backprop"], grad=np.where(checked, srcs["backprop"].grad, np.nan), checked=checked)
    comp = judge(debug_problem(), srcs)
    assert comp.verdict == "pass" and "backprop checked 10 of 38" in comp.summary()
    assert set(comp.verdicts["backprop"].status[10:]) == {"unchecked"}


# ---- diagnoses in the words of the convention in use, at any depth ------------------------------

@pytest.mark.parametrize("reg, term", [("lambda/2m", "λ/m·b"), ("lambda", "2λ·b"), ("lambda/2", "λ·b")])
def test_the_regularized_bias_diagnosis_names_the_extra_term_of_the_convention_in_use(reg, term):
    problem = random_problem(parse_spec("3-4-3", lam=2.0, reg=reg), m=4, seed=0)
    wrong = random_problem(parse_spec("3-4-3", lam=2.0, reg=reg, reg_bias=True), m=4, seed=0)
    comp = compare(problem, ("exact",), candidates={"c": lambda p: engine(wrong)})
    assert comp.diagnoses["c"][0].kind == "regularized-bias"
    assert f"extra {term} " in comp.diagnoses["c"][0].message


def _with(arrays_fn):
    def fn(p):
        J, g = engine(p)
        return J, arrays_fn(dict(g))
    return fn


def test_a_detached_first_layer_in_a_deep_net_is_named_as_such():
    problem = random_problem(parse_spec("4-5-5-5-3:tanh"), m=6, seed=1)
    comp = compare(problem, ("exact",), candidates={"c": _with(lambda g: {**g, "W1": 0 * g["W1"], "b1": 0 * g["b1"]})})
    first = comp.diagnoses["c"][0]
    assert first.kind == "detached" and "W1, b1 get no gradient" in first.message and "layer 1" in first.message


def test_a_transposed_first_layer_gradient_in_a_deep_net_is_named_as_such():
    problem = random_problem(parse_spec("5-5-6-6-3:tanh"), m=6, seed=2)
    comp = compare(problem, ("exact",), candidates={"c": _with(lambda g: {**g, "W1": g["W1"].T.copy()})})
    first = comp.diagnoses["c"][0]
    assert first.kind == "layout" and "W1's gradient is transposed" in first.message and first.where == ("W1",)


def test_a_reordered_middle_layer_gradient_is_named_as_such():
    problem = random_problem(parse_spec("3-4-6-2:sigmoid"), m=5, seed=3)
    comp = compare(problem, ("exact",), candidates={"c": _with(lambda g: {**g, "W2": g["W2"].T.reshape(g["W2"].shape)})})
    first = comp.diagnoses["c"][0]
    assert first.kind == "layout" and first.where == ("W2",) and "wrong order" in first.message


# ---- kinks: any one-sided value is right there ------------------------------------------------

def _relu_at_kink():
    """2-3-2 ReLU network where the first hidden unit of example 0 sits exactly at a = 0 (dyadic numbers)."""
    net = parse_spec("2-3-2:relu/softmax", lam=0.5)
    params = {"W1": np.array([[1.0, -2.0], [0.5, 0.25], [-1.0, 0.75]]), "b1": np.array([0.0, 0.125, -0.25]),
              "W2": np.array([[0.5, -0.25, 1.0], [-0.75, 1.5, 0.25]]), "b2": np.array([0.1, -0.2])}
    X = np.array([[0.5, 0.25], [1.0, -0.5], [-0.25, 0.75]])
    return make_problem(net, params, X, y=np.array([1, 0, 1]))


def _one_layer_relu(problem, slope_at_zero: float):
    """A hand-written 1-hidden-layer ReLU/softmax backprop with relu'(0) = ``slope_at_zero``."""
    P, X, Y, m = problem.params, problem.X, problem.Y, problem.m
    A1 = X @ P["W1"].T + P["b1"]
    H = np.maximum(A1, 0)
    A2 = H @ P["W2"].T + P["b2"]
    E = np.exp(A2 - A2.max(1, keepdims=True))
    S = E / E.sum(1, keepdims=True)
    c = problem.network.lam / (2 * m)
    J = -np.sum(Y * np.log(S)) / m + c * (np.sum(P["W1"] ** 2) + np.sum(P["W2"] ** 2))
    d2 = (S - Y) / m
    d1 = (d2 @ P["W2"]) * np.where(A1 > 0, 1.0, np.where(A1 == 0, slope_at_zero, 0.0))
    return J, {"W1": d1.T @ X + 2 * c * P["W1"], "b1": d1.sum(0), "W2": d2.T @ H + 2 * c * P["W2"], "b2": d2.sum(0)}


@pytest.mark.parametrize("slope", [0.0, 1.0, 0.5])
def test_at_a_relu_kink_every_one_sided_derivative_is_a_right_answer(slope):
    problem = _relu_at_kink()
    comp = compare(problem, ("exact", "backprop"), candidates={"mine": lambda p: _one_layer_relu(p, slope)})
    assert comp.sources["exact"].kink_lo is not None
    v = comp.verdicts["mine"]
    assert comp.verdict == "pass", comp.summary()
    assert v.n_kinks >= 1 and "inside the interval of one-sided values" in comp.summary()


def test_at_a_relu_kink_a_value_outside_the_one_sided_interval_is_still_wrong():
    problem = _relu_at_kink()

    def outside(p):
        J, g = _one_layer_relu(p, 3.0)  # relu'(0) = 3 is no one-sided derivative
        return J, g

    comp = compare(problem, ("exact",), candidates={"mine": outside})
    assert comp.verdict == "fail" and comp.verdicts["mine"].n_off >= 1
