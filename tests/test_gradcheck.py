"""gradcheck: any numpy function of arrays, checked with error bars, complex step where analytic, names, probes.

The checker is tested by breaking things: a gradient wrong at one element must fail there, by name
and with its values; a function that is not analytic must not be trusted to the complex step; a
correct gradient computed with cancellation must not fail because of its own rounding.
"""

import numpy as np
import pytest

from gradverify import GradientMismatchError, assert_gradcheck, gradcheck
from gradverify.errors import CandidateError, InputError

rng = np.random.default_rng(7)
W, x = rng.standard_normal((3, 4)), rng.standard_normal(4)


def f(W, x):
    return np.tanh(W @ x).sum()


def df(W, x):
    t = 1 - np.tanh(W @ x) ** 2
    return np.outer(t, x), W.T @ t


def test_a_correct_gradient_passes_by_complex_step_with_error_bars_on_both_sides():
    res = gradcheck(f, (W, x), df=df)
    assert res.ok and res.method == "complex-step" and len(res.names) == 16
    assert res.names[:2] == ["W[0,0]", "W[0,1]"] and res.names[-1] == "x[3]"  # f's own parameter names
    assert np.all(res.numeric_error < 1e-13) and np.all(res.analytic_error > 0) and np.all(res.ratio <= 1)


@pytest.mark.parametrize("where, scale", [((0, 1, 2), 1 + 1e-7), ((1, 3), 1.001)])
def test_a_gradient_wrong_at_one_element_fails_there_by_name(where, scale):
    def wrong(W, x):
        dW, dx = df(W, x)
        (dW if len(where) == 3 else dx)[where[1:]] *= scale
        return dW, dx

    res = gradcheck(f, (W, x), df=wrong)
    name = f"W[{where[1]},{where[2]}]" if len(where) == 3 else f"x[{where[1]}]"
    assert not res.ok and res.n_off == 1 and res.names[res.worst(1)[0]] == name
    assert res.summary().startswith(f"FAIL: the analytic gradient is off at 1 of 16 entries; worst {name}: analytic")
    with pytest.raises(GradientMismatchError, match=rf"worst {name.replace('[', '.').replace(']', '.')}"):
        res.raise_if_failed()


def test_a_non_analytic_function_is_checked_by_central_differences_and_says_why():
    def g(x):
        return np.abs(x).sum() + np.maximum(x, 0).sum()

    res = gradcheck(g, x, df=lambda x: np.sign(x) + (x > 0))
    assert res.ok and res.method == "central" and any("complex step not used" in n for n in res.notes)
    with pytest.raises(InputError, match="Complex step cannot check this function"):
        gradcheck(g, x, df=lambda x: np.sign(x) + (x > 0), method="complex-step")


def test_a_vector_output_is_checked_output_by_output_with_names():
    def h(x):
        return 2 * np.sin(x)

    def dh(x):
        J = np.diag(2 * np.cos(x))
        J[1, 2] = 1e-3  # planted: output 1 does not depend on input 2
        return J

    res = gradcheck(h, {"x": x}, df=lambda x: dh(x))
    assert [res.names[i] for i in np.flatnonzero(res.status == "off")] == ["y[1] / x[2]"]


def test_the_gradient_may_come_from_the_functions_own_return_and_inputs_from_a_dict():
    def fg(W, b):
        r = W + b
        return np.sum(r ** 2), {"W": 2 * r, "b": 2 * r.sum(axis=0)}

    res = gradcheck(fg, {"W": rng.standard_normal((2, 3)), "b": rng.standard_normal(3)})
    assert res.ok and res.names[-1] == "b[2]"


@pytest.mark.parametrize("seed", range(5))
def test_a_correct_gradient_computed_with_cancellation_is_not_failed_for_its_rounding(seed):
    big = 1e8 + np.random.default_rng(seed).standard_normal(6)

    def q(v):
        return np.sum(v ** 2 - 2e8 * v)  # terms of 1e16 cancel to the value

    res = gradcheck(q, big, df=lambda v: 2 * v - 2e8)  # each partial ≈ 1, from terms of 2e8: rounding of ~1e-8
    assert res.ok, res.report()


def test_a_large_input_is_checked_by_probes_and_the_wrong_element_found():
    v = rng.standard_normal(30_000)

    def dF(v):
        g = 2 * np.sin(v) * np.cos(v)
        g[12345] += 1e-3
        return g

    res = gradcheck(lambda v: np.sum(np.sin(v) ** 2), v, df=dF, max_elements=1000)
    assert not res.ok and res.names == ["v[12345]"] and res.probes is not None
    assert "random signed probes" in " ".join(res.notes)


@pytest.mark.parametrize("call, error, words", [
    (lambda: gradcheck(f, (W, x + 1j), df=df), InputError, "complex"),
    (lambda: gradcheck(f, (W, np.array([np.nan, 1, 2, 3])), df=df), InputError, "NaN or inf"),
    (lambda: gradcheck(f, (W, x), df=lambda W, x: (W, x[:2])), CandidateError, "wrong shape"),
    (lambda: gradcheck(f, (W, x), df=lambda W, x: df(W, x)[0]), CandidateError, "wrong form"),
    (lambda: gradcheck(f, (W, x)), CandidateError, "must return (value, gradient)"),
    (lambda: gradcheck(lambda W, x: 1 / 0, (W, x), df=df), CandidateError, "raised ZeroDivisionError"),
    (lambda: gradcheck(f, (W, x), df=df, method="magic"), InputError, "Unknown method"),
    (lambda: gradcheck(f, (W, x), df=df, rtol=-1), InputError, "rtol"),
])
def test_bad_calls_and_bad_functions_are_named_errors(call, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_assert_gradcheck_raises_for_pytest():
    assert assert_gradcheck(f, (W, x), df=df).ok
    with pytest.raises(GradientMismatchError):
        assert_gradcheck(f, (W, x), df=lambda W, x: (df(W, x)[0] * 2, df(W, x)[1]))
