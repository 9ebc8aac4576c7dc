"""The judgement: budgets, verdicts, the referee, and the planted-bug catalogue (the checker tests itself)."""

import json

import numpy as np
import pytest
from hypothesis import given, settings

from gradverify import strategies as gst
from gradverify.compare import assert_gradient_matches, compare, float64_budget, gather, judge
from gradverify.errors import CandidateError, GradientMismatchError, InputError
from gradverify.params import flatten
from gradverify.problems import debug_problem, random_problem
from gradverify.spec import parse_spec
from planted import BUGS, student_backprop

PROBLEMS = {
    "debug 3-5-3, λ=3": debug_problem(),
    "4-6-5-3 tanh/softmax, λ=2": random_problem(parse_spec("4-6-5-3:tanh/softmax", lam=2), m=7, seed=3),
}


@pytest.fixture(scope="module")
def exact_sources():
    return {name: gather(p, ("exact",)) for name, p in PROBLEMS.items()}


def test_all_three_sources_agree_on_the_debug_network():
    comp = compare(debug_problem())
    assert comp.verdict == "pass" and comp.referee == "exact"
    assert set(comp.verdicts) == {"backprop", "numeric"}
    assert "PASS" in comp.summary() and "38 parameters" in comp.summary()
    json.dumps(comp.to_dict())  # the record is JSON-ready


@pytest.mark.parametrize("problem_name", list(PROBLEMS))
@pytest.mark.parametrize("bug", list(BUGS))
def test_every_planted_bug_is_caught_with_its_diagnosis(bug, problem_name, exact_sources):
    p = PROBLEMS[problem_name]
    cand = gather(p, (), candidates={"student": lambda q: student_backprop(q, bug)})
    comp = judge(p, {**exact_sources[problem_name], **cand})
    assert comp.verdict == "fail", f"{bug} was not caught"
    kind, words = BUGS[bug]
    top = comp.diagnoses["student"][0]
    assert top.kind == kind and words in top.message, f"{bug}: diagnosed as {top.kind}: {top.message}"


def test_the_assert_helper_raises_with_where_and_why():
    p = PROBLEMS["debug 3-5-3, λ=3"]
    with pytest.raises(GradientMismatchError, match=r"(?s)biases are regularized.*b1\[\d\].*ratio"):
        assert_gradient_matches(lambda network, params, X, Y: student_backprop(p, "reg-bias"), p)  # the native signature
    comp = assert_gradient_matches(lambda network, params, X, Y: student_backprop(p), p)
    assert comp.verdict == "pass"


def test_a_correct_solution_passes_and_so_does_one_that_rounds_differently(exact_sources):
    p = PROBLEMS["debug 3-5-3, λ=3"]
    ok = judge(p, {**exact_sources["debug 3-5-3, λ=3"], **gather(p, (), candidates={"s": lambda q: student_backprop(q)})})
    assert ok.verdict == "pass"
    # a few ulps off everywhere is still a correct float64 engine
    J, g = student_backprop(p)
    nudged = {k: v * (1 + 4e-16) for k, v in g.items()}
    comp = judge(p, {**exact_sources["debug 3-5-3, λ=3"], **gather(p, (), candidates={"s": lambda q: (J, nudged)})})
    assert comp.verdict == "pass"
    # but a relative error of 1e-9 everywhere is not
    off = {k: v * (1 + 1e-9) for k, v in g.items()}
    comp = judge(p, {**exact_sources["debug 3-5-3, λ=3"], **gather(p, (), candidates={"s": lambda q: (J, off)})})
    assert comp.verdict == "fail"


def test_without_the_exact_source_a_disagreement_names_no_culprit():
    p = debug_problem()
    comp = compare(p, ("backprop",), candidates={"s": lambda q: student_backprop(q, "sign")})
    assert comp.referee == "pairwise" and comp.verdict == "fail"
    assert "no exact value to say which is wrong" in comp.summary()


def test_the_record_never_raises_on_a_nan_gradient(exact_sources):
    p = PROBLEMS["debug 3-5-3, λ=3"]
    J, g = student_backprop(p)
    g = {k: v.copy() for k, v in g.items()}
    g["W2"][0, 0] = np.nan
    comp = judge(p, {**exact_sources["debug 3-5-3, λ=3"], **gather(p, (), candidates={"s": lambda q: (J, g)})})
    w2_00 = comp.names.index("W2[0,0]")
    assert comp.verdict == "fail" and comp.verdicts["s"].status[w2_00] == "off" and comp.verdicts["s"].n_off == 1
    assert comp.diagnoses["s"][0].kind == "non-finite"


def test_a_candidate_of_the_wrong_shape_is_the_candidates_failure():
    p = debug_problem()
    with pytest.raises(CandidateError, match="W1 of the wrong shape"):
        gather(p, (), candidates={"s": lambda q: (1.0, {k: (v.T if k == "W1" else v) for k, v in student_backprop(q)[1].items()})})


def _grads(q):
    return student_backprop(q)[1]


@pytest.mark.parametrize("returned, message", [
    (lambda q: (1.0, {("d" + k): v for k, v in _grads(q).items()}), r"W1, b1, W2, b2 are missing; unexpected dW1"),
    (lambda q: (1.0, {k: v for k, v in _grads(q).items() if k != "b2"}), r"wrong arrays: b2 is missing"),
    (lambda q: (1.0, list(_grads(q).values())), r"as a list of 4 item\(s\).*Expected a dict"),
    (lambda q: (1.0, None), r"returned a NoneType as the gradient"),
    (lambda q: (1.0, [[1.0, 2.0], [3.0]]), r"not an array of numbers"),
    (lambda q: (1.0, ["a", "b"]), r"not an array of numbers|wrong size"),
    (lambda q: (1.0, {k: v.astype(complex) for k, v in _grads(q).items()}), r"complex numbers"),
    (lambda q: (np.ones(3), _grads(q)), r"cost J that is not a single number"),
    (lambda q: ("2.1", _grads(q)), r"returned a str as the cost J"),
    (lambda q: 1 / 0, r"raised ZeroDivisionError"),
])
def test_every_wrong_form_a_candidate_returns_is_named_as_its_failure(returned, message):
    with pytest.raises(CandidateError, match=message):
        gather(debug_problem(), (), candidates={"s": returned})


def test_the_float64_budget_covers_a_long_double_run_of_the_engine():
    from gradverify.backprop import cost_and_grad
    for spec, scale in (("6-7-5-3:tanh/softmax", 30.0), ("5-6-4:sigmoid", 100.0), ("5-8-3:relu/identity", 1.0)):
        p = random_problem(parse_spec(spec, lam=1), m=9, seed=2, scale=scale)
        _, g = cost_and_grad(p.network, p.params, p.X, p.Y)
        ld = {k: v.astype(np.longdouble) for k, v in p.params.items()}
        _, g2 = cost_and_grad(p.network, ld, p.X.astype(np.longdouble), p.Y.astype(np.longdouble))
        err = np.abs(flatten(g, p.network) - flatten(g2, p.network).astype(float))
        assert np.all(err <= float64_budget(p))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the student code's naive log(σ) overflows when saturated
@settings(max_examples=25)
@given(gst.problems(gst.networks(max_params=50), saturating=True))
def test_no_false_alarm_on_correct_solutions_over_random_architectures(problem):
    comp = compare(problem, ("exact", "backprop"), candidates={"student": lambda q: student_backprop(q)})
    assert comp.verdicts["backprop"].ok, comp.summary()
    # the student code's naive log(σ) may overflow at saturation; that is its bug, not a false alarm
    if np.all(np.isfinite(comp.sources["student"].grad)) and np.isfinite(comp.sources["student"].cost):
        assert comp.verdicts["student"].n_off == 0, comp.summary()


def test_sources_that_do_not_exist_are_refused():
    with pytest.raises(InputError, match="Unknown gradient source"):
        gather(debug_problem(), ("exact", "autograd"))
