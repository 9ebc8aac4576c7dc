"""The layer catalogue: three independent sources agree, an independent reference agrees, kinks, budgets, adapters."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings

from gradverify.errors import CandidateError, InputError
from gradverify.layers import (LAYERS, Pair, compare_layer, exact_layer_gradient, get_layer, numeric_layer_gradient, random_case,
                               resolve_pair, run_pair, scalar_names)
from gradverify.layers import engine
from gradverify.layers import strategies as lst


# ---- three sources, every layer, drawn cases --------------------------------------------------------

def _check_three_way(case):
    comp = compare_layer(case, options={"exact": {"digits": 20}})
    assert comp.verdict == "pass", f"{case!r}: {comp.summary()}"
    for name, v in comp.verdicts.items():
        assert v.referee == "exact"
        assert np.all(v.ratio[v.status == "ok"] <= 1.0)
    # the oracle verified its own digits, so the float64 rounding of its values is exact to ½ ulp
    assert comp.sources["exact"].facts["digits"] >= 20


def _three_way_test(layer: str, examples: int):
    @settings(max_examples=examples, deadline=None)
    @given(lst.layer_cases(layer))
    def check(case):
        _check_three_way(case)
    return check


@pytest.mark.parametrize("layer", list(LAYERS))
def test_exact_backprop_and_finite_differences_agree_on_drawn_cases(layer):
    _three_way_test(layer, 6)()


@pytest.mark.slow
@pytest.mark.parametrize("layer", list(LAYERS))
def test_exact_backprop_and_finite_differences_agree_on_many_drawn_cases(layer):
    _three_way_test(layer, 40)()


@settings(max_examples=30, deadline=None)
@given(lst.any_layer_case(max_dim=3, scales=lst.ORDINARY_SCALES))
def test_the_finite_difference_error_bars_cover_the_true_error(case):
    ex = exact_layer_gradient(case, digits=20)
    num = numeric_layer_gradient(case)
    for name in ex.grads:
        err = np.abs(num.grads[name] - ex.grads[name])
        ok = (err <= num.errors[name]) | num.kinks[name] | ex.kinks[name]
        assert ok.all(), f"{name}: error {err[~ok]} > bar {num.errors[name][~ok]}"


def test_a_forward_value_both_precisions_round_alike_is_beyond_the_bar_but_within_the_judged_budget():
    # the LSTM cell at t = 1 is f·c0 + i·g ≈ (1 − 7e-29) − 1: float64 and extended precision both round it to 0,
    # so ∂J/∂b[5] (3.0e-80, checked at 300 digits) comes out 5.7e-83 in both, and their difference sees nothing
    case = random_case("lstm", dims={"N": 1, "T": 3, "D": 3, "H": 4}, seed=1, scale=10)
    ex, num = exact_layer_gradient(case, digits=20), numeric_layer_gradient(case)
    assert abs(ex.grads["b"][5] - 3.0166972856862e-80) < 1e-92
    assert abs(num.grads["b"][5] - ex.grads["b"][5]) > num.errors["b"][5]  # the documented blind spot of the bar
    assert compare_layer(case).verdict == "pass"  # the judge adds the float64 budget (rounding scale 2.5e-8 here)


# ---- an independent reference: mpmath forwards, complex step at 60 digits -----------------------------

def _mp_case_gradient(case, J):
    """∂J/∂θ for every input entry by complex step on a plain-Python mpmath forward (no SymPy, no numpy math)."""
    arrays = {n: np.array([mpmath.mpf(float(v)) for v in case.arrays[n].reshape(-1)], dtype=object).reshape(case.arrays[n].shape)
              for n in case.layer.inputs}
    h = mpmath.mpf(10) ** -40
    out = {}
    for name in case.layer.inputs:
        g = np.empty(arrays[name].shape, dtype=object)
        for idx in np.ndindex(*arrays[name].shape):
            pert = dict(arrays)
            pert[name] = arrays[name].copy()
            pert[name][idx] = pert[name][idx] + mpmath.mpc(0, h)
            g[idx] = mpmath.im(J(pert)) / h
        out[name] = g
    return out


def _mp_dot(up, out):
    return mpmath.fsum(mpmath.mpf(float(u)) * o for u, o in zip(up.reshape(-1), out.reshape(-1)))


def _mp_batchnorm(case):
    eps, (N, D) = mpmath.mpf(float(case.settings["eps"])), case.arrays["x"].shape

    def J(a):
        out = np.empty((N, D), dtype=object)
        for d in range(D):
            col = [a["x"][n, d] for n in range(N)]
            mu = mpmath.fsum(col) / N
            var = mpmath.fsum((v - mu) ** 2 for v in col) / N
            for n in range(N):
                out[n, d] = a["gamma"][d] * (col[n] - mu) / mpmath.sqrt(var + eps) + a["beta"][d]
        return _mp_dot(case.upstream["out"], out)
    return J


def _mp_conv(case):
    s, p = int(case.settings["stride"]), int(case.settings["pad"])
    N, C, H, W = case.arrays["x"].shape
    F, _, HH, WW = case.arrays["w"].shape
    Ho, Wo = case.shapes()["out"][2:]

    def J(a):
        out = np.empty((N, F, Ho, Wo), dtype=object)
        for n, f, i, j in np.ndindex(N, F, Ho, Wo):
            terms = [a["b"][f]]
            for c, di, dj in np.ndindex(C, HH, WW):
                r, q = i * s + di - p, j * s + dj - p
                if 0 <= r < H and 0 <= q < W:
                    terms.append(a["x"][n, c, r, q] * a["w"][f, c, di, dj])
            out[n, f, i, j] = mpmath.fsum(terms)
        return _mp_dot(case.upstream["out"], out)
    return J


def _mp_lstm_step(case):
    N, H = case.arrays["prev_h"].shape
    D = case.arrays["x"].shape[1]
    sig = lambda z: 1 / (1 + mpmath.exp(-z))  # noqa: E731

    def J(a):
        hs, cs = np.empty((N, H), dtype=object), np.empty((N, H), dtype=object)
        for n in range(N):
            z = [mpmath.fsum([a["x"][n, d] * a["Wx"][d, k] for d in range(D)] + [a["prev_h"][n, m] * a["Wh"][m, k] for m in range(H)]
                             + [a["b"][k]]) for k in range(4 * H)]
            for k in range(H):
                i, f, o, g = sig(z[k]), sig(z[H + k]), sig(z[2 * H + k]), mpmath.tanh(z[3 * H + k])
                cs[n, k] = f * a["prev_c"][n, k] + i * g
                hs[n, k] = o * mpmath.tanh(cs[n, k])
        return _mp_dot(case.upstream["next_h"], hs) + _mp_dot(case.upstream["next_c"], cs)
    return J


def _mp_softmax_loss(case):
    N, C = case.arrays["x"].shape
    y = case.arrays["y"]

    def J(a):
        return mpmath.fsum(mpmath.log(mpmath.fsum(mpmath.exp(a["x"][n, j]) for j in range(C))) - a["x"][n, y[n]] for n in range(N)) / N
    return J


@pytest.mark.parametrize("layer, dims, settings_, reference", [
    ("batchnorm", {"N": 3, "D": 2}, {}, _mp_batchnorm),
    ("conv", {"N": 1, "C": 2, "H": 4, "W": 5, "F": 2, "HH": 3, "WW": 2}, {"stride": 2, "pad": 1}, _mp_conv),
    ("lstm_step", {"N": 2, "D": 2, "H": 2}, {}, _mp_lstm_step),
    ("softmax_loss", {"N": 3, "C": 4}, {}, _mp_softmax_loss),
])
def test_the_oracle_matches_an_mpmath_forward_differentiated_by_complex_step_to_28_digits(layer, dims, settings_, reference):
    case = random_case(layer, dims=dims, settings=settings_, seed=11)
    ex = exact_layer_gradient(case, digits=30)
    with mpmath.workdps(60):
        ref = _mp_case_gradient(case, reference(case))
        for name in case.layer.inputs:
            for idx in np.ndindex(*ref[name].shape):
                a, b = ex.grads_exact[name][idx], ref[name][idx]
                assert abs(a - b) <= mpmath.mpf(10) ** -28 * max(abs(b), mpmath.mpf(10) ** -30), f"{name}{list(idx)}: {a} vs {b}"


def test_the_sympy_and_symengine_backends_give_the_same_partials():
    case = random_case("layernorm", dims={"N": 2, "D": 3}, seed=4)
    a = exact_layer_gradient(case, backend="symengine")
    b = exact_layer_gradient(case, backend="sympy")
    for name in a.grads:
        for u, v in zip(a.grads_exact[name].reshape(-1), b.grads_exact[name].reshape(-1)):
            assert abs(u - v) <= 1e-30 * max(abs(u), 1e-300)


# ---- kinks -------------------------------------------------------------------------------------------

def test_a_tie_in_a_pooling_window_is_a_kink_for_every_source_and_never_a_failure():
    case = random_case("max_pool", dims={"N": 1, "C": 1, "H": 2, "W": 2}, seed=0)
    case = case.with_arrays(x=np.array([[[[1.0, 3.0], [3.0, -2.0]]]]))
    ex = exact_layer_gradient(case)
    assert ex.kinks["x"].tolist() == [[[[False, True], [True, False]]]]
    assert ex.grads["x"][0, 0, 0, 1] == case.upstream["out"][0, 0, 0, 0] and ex.grads["x"][0, 0, 1, 0] == 0  # the first maximum
    assert any("more than once" in m for m in ex.kink_messages)
    num = numeric_layer_gradient(case)
    assert num.kinks["x"][0, 0, 0, 1] and num.kinks["x"][0, 0, 1, 0] and not num.kinks["x"][0, 0, 0, 0]

    def last_max(dout, cache):  # sends the gradient to the last maximum instead: right except at the tie
        x, _ = cache
        dx = np.zeros_like(x)
        dx[0, 0, 1, 0] = dout[0, 0, 0, 0]
        return dx
    pair = Pair(engine.max_pool_forward_naive, last_max, ("max_pool_forward_naive", "max_pool_backward_naive"), "last")
    comp = compare_layer(case, candidates={"last": pair})
    assert comp.verdict == "pass", comp.summary()


def test_a_hinge_margin_at_exactly_zero_is_a_kink():
    case = random_case("svm_loss", dims={"N": 1, "C": 3}, seed=0).with_arrays(x=np.array([[0.5, 1.5, -3.0]]), y=np.array([1]))
    ex = exact_layer_gradient(case)
    assert ex.kinks["x"].tolist() == [[True, True, False]]
    assert ex.grads["x"].tolist() == [[0.0, 0.0, 0.0]]  # the hinge at 0 passes nothing


@settings(max_examples=15, deadline=None)
@given(lst.layer_cases("relu", kinks=True))
def test_relu_kinks_are_found_by_the_oracle_exactly_where_inputs_are_zero(case):
    ex = exact_layer_gradient(case, digits=20)
    assert np.array_equal(ex.kinks["x"], case.arrays["x"] == 0)


# ---- budgets -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layer", ["lstm_step", "rnn", "sigmoid", "batchnorm", "softmax_loss"])
def test_the_engine_stays_within_budget_with_saturated_units_and_large_offsets(layer):
    for seed in range(4):
        case = random_case(layer, seed=seed, scale=30.0)
        if layer == "batchnorm":  # a large common offset: x − μ cancels
            case = case.with_arrays(x=case.arrays["x"] / 30 + 1e4)
        comp = compare_layer(case, ("exact", "backprop"))
        assert comp.verdict == "pass", comp.summary()


def test_a_perturbation_of_a_few_ulps_beyond_the_budget_is_caught():
    case = random_case("conv", seed=1)
    comp = compare_layer(case, ("exact", "backprop"))
    v = comp.verdicts["backprop"]
    i = int(np.argmax(np.abs(comp.sources["exact"].grad)))
    wrong = comp.sources["backprop"].grad.copy()
    wrong[i] += 4 * v.budget[i]

    def bwd(dout, cache):
        g = case.unflat(wrong)
        return g["x"], g["w"], g["b"]
    comp2 = compare_layer(case, ("exact",), candidates={"c": Pair(engine.conv_forward_naive, bwd, ("f", "b"), "c")})
    assert comp2.verdict == "fail" and comp2.verdicts["c"].n_off == 1 and comp2.names[comp2.verdicts["c"].worst] == comp.names[i]


# ---- the adapter: names, hostile returns, candidates' own failures -----------------------------------------

def test_names_are_resolved_from_forward_backward_or_stem():
    ns = vars(engine)
    assert resolve_pair(ns, "conv").names == ("conv_forward_naive", "conv_backward_naive")
    assert resolve_pair(ns, "conv", "conv_backward_naive").names == ("conv_forward_naive", "conv_backward_naive")
    assert resolve_pair(ns, "affine", "affine").names == ("affine_forward", "affine_backward")
    assert resolve_pair(ns, "svm_loss").backward is None
    with pytest.raises(InputError, match="No function 'conv_forward_fast'"):
        resolve_pair(ns, "conv", "conv_forward_fast")


def _pair(fwd, bwd, label="c"):
    return Pair(fwd, bwd, ("affine_forward", "affine_backward"), label)


def test_a_candidate_that_raises_is_its_own_failure_naming_its_line():
    def bwd(dout, cache):
        raise ZeroDivisionError("oops")
    with pytest.raises(CandidateError, match=r"affine_backward of 'c' raised ZeroDivisionError: oops.*test_layers.py:\d+ in bwd"):
        run_pair(_pair(engine.affine_forward, bwd), random_case("affine"))


@pytest.mark.parametrize("ret, message", [
    ((1, 2), "did not return the gradients"),
    ("dx", "did not return the gradients"),
])
def test_a_backward_returning_the_wrong_form_is_a_candidate_error(ret, message):
    with pytest.raises(CandidateError, match=message):
        run_pair(_pair(engine.affine_forward, lambda dout, cache: ret), random_case("affine"))


def test_unreadable_or_misshapen_gradients_are_findings_not_crashes():
    case = random_case("affine")

    def bwd(dout, cache):
        return "not numbers", {"a": 1}, np.zeros((2, 2, 2))
    res = run_pair(_pair(engine.affine_forward, bwd), case)
    assert res.grads == {"x": None, "w": None, "b": None}
    assert [p.array for p in res.problems] == ["x", "w", "b"]
    comp = compare_layer(case, ("exact",), candidates={"c": _pair(engine.affine_forward, bwd)})
    assert comp.verdict == "fail" and comp.verdicts["c"].n_off == case.size
    kinds = {f.kind for f in comp.diagnoses["c"]}
    assert "shape" in kinds
    assert "(dx, dw, db could not be used)" in comp.summary()


def test_a_candidate_that_writes_into_its_inputs_cannot_corrupt_the_case():
    case = random_case("affine")
    before = {k: v.copy() for k, v in case.arrays.items()}

    def fwd(x, w, b):
        out = x.reshape(x.shape[0], -1) @ w + b
        x[...] = 0
        w[...] = 0
        return out, None

    def bwd(dout, cache):
        dout[...] = 7
        return np.zeros((3, 4)), np.zeros((4, 5)), np.zeros(5)
    run_pair(_pair(fwd, bwd), case)
    assert all(np.array_equal(before[k], case.arrays[k]) for k in before)
    assert not np.any(case.upstream["out"] == 7)


def test_dropout_reads_the_candidates_own_mask_and_its_p_convention():
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent / "layers"))
    import student_layers

    case = random_case("dropout", dims={"N": 6, "D": 7}, settings={"p": 0.8, "seed": 3})
    pair = resolve_pair(vars(student_layers), "dropout", label="student")
    comp = compare_layer(case, candidates={"student": pair})
    assert comp.verdict == "pass", comp.summary()
    np.random.seed(3)
    assert np.array_equal(comp.case.arrays["mask"] > 0, np.random.rand(6, 7) < 0.8)
    assert any("mask was read from dropout_forward" in n for n in comp.notes)

    def old_forward(x, dropout_param):  # CS231n before 2017: p is the probability of dropping a unit
        np.random.seed(dropout_param["seed"])
        mask = (np.random.rand(*x.shape) >= dropout_param["p"]) / (1 - dropout_param["p"])
        return x * mask, mask
    old = Pair(old_forward, lambda dout, mask: dout * mask, ("dropout_forward", "dropout_backward"), "old")
    comp = compare_layer(case, candidates={"old": old})
    assert comp.verdict == "pass", comp.summary()
    assert comp.case.settings["convention"] == "drop" and any("drop probability" in n for n in comp.notes)


def test_without_the_exact_source_disagreements_are_reported_without_a_culprit():
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent / "layers"))
    import buggy_layers
    import student_layers

    case = random_case("batchnorm", seed=2)
    pair = Pair(student_layers.batchnorm_forward, buggy_layers.batchnorm_backward_no_mean_term, ("batchnorm_forward", "batchnorm_backward"), "c")
    comp = compare_layer(case, ("numeric",), candidates={"c": pair})
    assert comp.referee == "pairwise" and comp.verdict == "fail"
    assert "no exact value to say which is wrong" in comp.summary()


# ---- the catalogue and cases ---------------------------------------------------------------------------

def test_layers_are_found_by_catalogue_or_cs231n_name():
    assert get_layer("conv_forward_naive").name == "conv"
    assert get_layer("temporal_softmax_loss").name == "temporal_softmax_loss"
    with pytest.raises(InputError, match="No layer named 'convolution'"):
        get_layer("convolution")


@pytest.mark.parametrize("layer, dims, settings_, match", [
    ("conv", {"H": 2, "HH": 5}, {"pad": 0}, "filter is larger than the padded input"),
    ("conv", {}, {"stride": 0}, "stride must be an integer"),
    ("max_pool", {"H": 2}, {"pool_height": 3}, "window is larger than the input"),
    ("batchnorm", {"N": 1}, {}, "at least 2"),
    ("dropout", {}, {"p": 1.5}, "probability"),
    ("spatial_groupnorm", {"C": 5}, {"G": 2}, "split into G groups"),
    ("affine", {"D": 5}, {"in_dims": "2x3"}, "multiply to D"),
    ("affine", {"Q": 5}, {}, "no dimension 'Q'"),
    ("affine", {}, {"stride": 1}, "no setting 'stride'"),
    ("conv", {}, {"stride": "two"}, "Cannot read the setting stride"),
])
def test_impossible_shapes_and_settings_are_refused_with_a_fix(layer, dims, settings_, match):
    with pytest.raises(InputError, match=match) as info:
        random_case(layer, dims=dims, settings=settings_)
    assert info.value.expected or info.value.fix


def test_scalar_names_follow_the_arrays_in_backward_order():
    case = random_case("affine", dims={"N": 1, "D": 2, "M": 1})
    assert scalar_names(case) == ["x[0,0]", "x[0,1]", "w[0,0]", "w[1,0]", "b[0]"]


def test_strategies_refuse_impossible_options_with_a_fix():
    with pytest.raises(lst.InvalidArgument, match="Consider"):
        lst.layer_cases("convolution")
    with pytest.raises(lst.InvalidArgument, match="Consider max_dim=4"):
        lst.layer_cases("conv", max_dim=0)


def test_the_oracle_meets_its_digits_and_reports_its_precision():
    case = random_case("lstm_step", scale=3.0, seed=2)
    ex = exact_layer_gradient(case, digits=50)
    assert ex.digits >= 50 and ex.bits >= math.ceil(50 * math.log2(10))
    with pytest.raises(InputError, match="digits"):
        exact_layer_gradient(case, digits=8)


def test_a_saturated_lstm_is_certified_and_its_correct_sources_pass():
    """At input scale 1000 every gate saturates and the cell state's exact tanh' input is 0 ± rounding: the
    oracle's 1 − tanh(c)² was nan in ball arithmetic, every partial uncertified, and backprop and finite
    differences were called wrong ("dx is all zeros")."""
    comp = compare_layer(random_case(get_layer("lstm"), seed=0, scale=1000))
    assert comp.verdict == "pass", comp.summary()
    assert not any("could not certify" in n for n in comp.notes)


@pytest.mark.parametrize("call, words", [
    (lambda: get_layer(None), "A layer is named by a string"),
    (lambda: random_case(get_layer("affine"), seed=-1), "seed must be an integer"),
    (lambda: random_case(get_layer("affine"), dims={"N": 10 ** 9}), "too large to verify exactly"),
    (lambda: numeric_layer_gradient(None), "numeric_layer_gradient needs a LayerCase"),
])
def test_layer_api_misuse_is_an_input_error_before_any_allocation(call, words):
    with pytest.raises(InputError, match=words):
        call()
