"""The backprop engine against the lecture's numbers and finite differences."""

import itertools
import zlib

import numpy as np
import pytest

from gradverify.backprop import _RULES, backprop
from gradverify.compare import float64_budget
from gradverify.finite_diff import numeric_gradient
from gradverify.forward import cost
from gradverify.params import flatten
from gradverify.problems import debug_network, debug_problem, random_problem
from gradverify.spec import ACTIVATIONS, OUTPUTS, REGULARIZATIONS, parse_spec


def test_the_debug_network_costs_are_the_lectures():
    assert backprop(debug_problem(debug_network(0.0))).cost == pytest.approx(2.100951, abs=5e-7)
    assert backprop(debug_problem(debug_network(3.0))).cost == pytest.approx(2.146360, abs=5e-7)


def test_sigmoid_gradient_matches_the_lecture_table():
    a = np.array([-1, -0.5, 0, 0.5, 1.0])
    forward, _, backward = _RULES["sigmoid"]
    delta = np.ones_like(a)
    h = forward(a.copy())
    backward(delta, a, h.copy())
    assert np.round(delta, 6).tolist() == [0.196612, 0.235004, 0.25, 0.235004, 0.196612]


def test_a_central_difference_check_gives_the_classic_relative_difference():
    p = debug_problem()
    g = flatten(backprop(p).grads, p.network)
    theta = flatten(p.params, p.network)
    from gradverify.params import unflatten
    num = np.array([(cost(p.network, unflatten(theta + e, p.network), p.X, p.Y) - cost(p.network, unflatten(theta - e, p.network), p.X, p.Y)) / 2e-4
                    for e in np.eye(theta.size) * 1e-4])
    rel = np.linalg.norm(num - g) / np.linalg.norm(num + g)
    assert 1e-12 < rel < 1e-9  # the exercise reports about 2e-11


def _reldiff(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a + b), 1e-300)


@pytest.mark.parametrize("act, output, reg, reg_bias", [
    (a, o, r, rb) for a, o, r, rb in itertools.product(ACTIVATIONS, OUTPUTS, REGULARIZATIONS, (False, True))
])
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_gradients_agree_with_finite_differences_for_every_combination(act, output, reg, reg_bias, scale):
    net = parse_spec(f"4-5-3-3:{act}/{output}", lam=1.5, reg=reg, reg_bias=reg_bias)
    p = random_problem(net, m=6, seed=zlib.crc32(f"{act}{output}{reg}".encode()) % 1000, scale=scale)
    res = backprop(p)
    num = numeric_gradient(p)  # complex step where the network is analytic, central differences for ReLU
    g, n, err = flatten(res.grads, net), flatten(num.grads, net), flatten(num.errors, net)
    assert np.isfinite(res.cost) and np.all(np.isfinite(g))
    assert res.cost == pytest.approx(float(np.real(cost(net, p.params, p.X, p.Y))), rel=1e-12)
    ok = ~flatten({k: v.astype(float) for k, v in num.kinks.items()}, net).astype(bool) if num.kinks else np.ones_like(g, bool)
    # within the estimate's own error bar plus the engine's float64 budget
    assert np.all(np.abs(g - n)[ok] <= (err + float64_budget(p))[ok])
    if act == "relu" and scale > 1:
        # central differences through units at ±30 have truncation errors above 1e-9 of their own
        # (the exact oracle shows backprop right to ~1e-16 there: tests/test_compare.py)
        assert _reldiff(g[ok], n[ok]) < 1e-6
    else:
        assert _reldiff(g[ok], n[ok]) < 1e-9


@pytest.mark.parametrize("output", list(OUTPUTS))
def test_saturated_units_at_700_stay_finite_and_accurate(output):
    net = parse_spec(f"2-3-2:sigmoid/{output}")
    p = random_problem(net, m=3, seed=3)
    params = dict(p.params)
    params["b1"] = np.array([700.0, -700.0, 0.3])
    params["b2"] = np.array([700.0, -700.0])
    q = p.with_params(params)
    res = backprop(q)
    assert np.isfinite(res.cost) and all(np.all(np.isfinite(v)) for v in res.grads.values())
    # against an independent high-precision evaluation of the same cost
    import mpmath as mp
    mp.mp.dps = 50
    def J(b20):
        tot = mp.mpf(0)
        for i in range(q.m):
            h = [mp.mpf(1) / (1 + mp.exp(-(sum(mp.mpf(float(q.params["W1"][u, j])) * mp.mpf(float(q.X[i, j])) for j in range(2)) + mp.mpf(float(params["b1"][u])))))
                 for u in range(3)]
            a = [sum(mp.mpf(float(q.params["W2"][k, u])) * h[u] for u in range(3)) + mp.mpf(float(params["b2"][k])) + (b20 if k == 0 else 0) for k in range(2)]
            y = [mp.mpf(float(v)) for v in q.Y[i]]
            if output == "sigmoid":
                tot += sum(mp.log(1 + mp.exp(ak)) - yk * ak for ak, yk in zip(a, y))
            elif output == "softmax":
                lse = mp.log(sum(mp.exp(ak) for ak in a))
                tot += -sum(yk * (ak - lse) for ak, yk in zip(a, y))
            else:
                tot += sum((ak - yk) ** 2 for ak, yk in zip(a, y)) / 2
        return tot / q.m
    assert res.cost == pytest.approx(float(J(0)), rel=1e-13)
    assert res.grads["b2"][0] == pytest.approx(float(mp.diff(J, 0)), rel=1e-12, abs=1e-300)


def test_the_engine_imports_nothing_from_sympy_or_the_other_sources():
    import ast
    import gradverify.backprop as mod
    tree = ast.parse(open(mod.__file__).read())
    imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(x.startswith(("sympy", "symengine", "gradverify.symbolic", "gradverify.finite_diff", "mpmath")) for x in imported)
