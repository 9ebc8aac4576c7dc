"""The case space (issue 15): what a candidate is checked on, one definition for suite, check_candidate and grade.

Cases reach more classes than the classic 10 and pre-activations up to where the textbook cost is
still finite; code that breaks there fails, textbook code that is right passes; gradverify's own
sources pass the whole space, saturation included, over fifty seeds.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis.errors import NoSuchExample

from gradverify.casespace import case_space
from gradverify.compare import compare
from gradverify.problems import random_problem
from gradverify.profiles import get_profile
from gradverify.spec import TEXTBOOK_LIMIT, Network
from gradverify.strategies import Family, largest_preactivation
from gradverify.suite import check_candidate, run_suite

EX4 = get_profile("ex4")
CORPUS = Path(__file__).parent / "submissions" / "ex4"


def _drawn(space, n: int, seed: int = 0) -> list:
    """The first ``n`` problems the space's search draws (every one rejected, so the search goes on)."""
    out = []

    def keep(problem) -> bool:
        out.append(problem)
        return False

    hs = settings(max_examples=n, database=None, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    with pytest.raises(NoSuchExample):
        find(space.strategy(), keep, settings=hs, random=random.Random(seed))
    return out


def _student(name: str):
    spec = importlib.util.spec_from_file_location(f"corpus_{name}", CORPUS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.nnCostFunction


def test_a_candidates_cases_stay_where_the_textbook_cost_is_finite_and_reach_many_classes():
    space = case_space(EX4, EX4.resolve({}))
    drawn = _drawn(space, 200)
    peaks = np.array([largest_preactivation(p) for p in drawn])
    classes = np.array([p.network.sizes[-1] for p in drawn])
    assert peaks.max() <= TEXTBOOK_LIMIT
    assert np.mean(peaks > 8) >= 0.1, "too few cases with moderately large pre-activations"
    assert np.any(classes > 10), "no case beyond the classic exercise's 10 labels"
    for p in drawn:  # the ex4 data contract: every class present
        assert set(np.unique(p.labels)) == set(range(p.network.sizes[-1]))


def test_the_extremes_are_drawn_from_the_seed_many_classes_and_units_near_the_limit():
    space = case_space(EX4, EX4.resolve({}))
    for seed in range(6):
        extremes = space.extremes(seed)
        sizes = [p.network.sizes[-1] for p in extremes]
        assert any(11 <= k <= 13 for k in sizes), sizes
        near = [largest_preactivation(p) for p in extremes if p.network.sizes[-1] <= 10]
        assert near and all(0.75 * TEXTBOOK_LIMIT <= v <= TEXTBOOK_LIMIT for v in near), near
        assert all(p.origin.rebuildable for p in extremes)
    same = [(p.network.sizes, p.origin) for p in space.extremes(3)]
    assert same == [(p.network.sizes, p.origin) for p in space.extremes(3)]
    assert same != [(p.network.sizes, p.origin) for p in space.extremes(4)]


def test_who_is_checked_decides_saturation_unless_the_family_says():
    own, cand = case_space(candidate=False), case_space()
    assert own.family.saturating is True and own.extremes(0) == ()
    assert cand.family.saturating is False and cand.extremes(0)
    assert case_space(family=Family(saturating=True)).family.saturating is True
    assert "pre-activations within ±30" in case_space(EX4, EX4.resolve({})).describe()


def test_textbook_code_passes_the_space_that_grade_and_suite_share():
    # the naive log(1 − σ(z)) of the reference is finite up to z ≈ 36.7: every case is one it must get right
    result = check_candidate(_student("correct_reference"), profile="ex4", examples=60, seed=5)
    assert result.ok, result


@pytest.mark.parametrize("name, words", [("bug_ten_labels_hardcoded", "index 10 is out of bounds"),
                                         ("bug_nan_past_eight", "")])
def test_code_that_breaks_beyond_ten_labels_or_past_eight_fails_the_space(name, words):
    from gradverify.candidates import apart

    call, proc = apart(_student(name), profile="ex4", separate=False)
    res = run_suite(call, profile="ex4", examples=1, seed=1)  # one case: the search alone would pass
    assert not res.ok
    problem = res.minimal
    if name == "bug_ten_labels_hardcoded":
        assert problem.network.sizes[-1] > 10 and words in res.failure_error
    else:
        assert largest_preactivation(problem) > 8
        assert res.failure is not None and not res.failure.verdicts["candidate"].ok
    assert not res.shrunk  # one of the extremes, judged after the search passed


def test_a_cancelling_output_layer_widens_the_cost_budget():
    # Found by the fifty-seed sweep: softplus units of tens, an identity output of 0.2 that is their
    # cancelling sum; the cost's rounding is an ulp of the terms, not of J (backprop was "off").
    net = Network((1, 5, 4, 1), ("tanh", "softplus"), "identity", lam=0.0)
    comp = compare(random_problem(net, m=1, seed=104, scale=8.0), ("exact", "backprop", "numeric"))
    assert comp.verdict == "pass", comp.summary()


def test_a_wrong_cost_with_one_example_is_not_called_a_missing_one_over_m():
    problem = random_problem(Network((2, 3, 2), ("sigmoid",), "sigmoid", lam=0.0), m=1, seed=0)
    from gradverify.backprop import cost_and_grad

    def off(p):
        J, g = cost_and_grad(p.network, p.params, p.X, p.Y)
        return J * (1 + 1e-9), g

    comp = compare(problem, ("exact",), candidates={"yours": off})
    assert comp.verdict == "fail"
    text = comp.summary()
    assert "m = 1 times" not in text and "1/m is missing" not in text
    assert "cost" in text


@pytest.mark.slow
def test_the_projects_own_suite_passes_fifty_seeds_of_a_hundred_examples():
    failures = []
    for seed in range(50):
        res = run_suite(examples=100, seed=seed)
        if not res.ok:
            failures.append((seed, repr(res.minimal), res.failure.summary() if res.failure is not None else res.failure_error))
    assert not failures


def test_the_textbook_allowance_is_there_below_the_limit_and_never_infinite_beyond_it():
    import math

    from gradverify.budget import candidate_cost_budget, cost_budget

    # shrunk by Hypothesis (a float32 engine at scale 100): e^a overflowed, the budget was inf and the cost "wrong"
    far = random_problem(Network((1, 1, 1, 3), ("sigmoid", "relu"), "sigmoid", lam=0.0), m=1, seed=0, scale=100.0)
    for precision in ("float64", "float32"):
        budget, allowance, _ = candidate_cost_budget(far, precision)
        assert math.isfinite(budget) and budget == pytest.approx(cost_budget(far, precision) + allowance)
    from gradverify.problems import make_problem

    # one unit at a = 25 with y = 0: the textbook log(1 − σ(25)) keeps 5 digits; the allowance is what makes the budget
    unit = make_problem(Network((1, 1), (), "sigmoid", lam=0.0), {"W1": np.array([[25.0]]), "b1": np.array([0.0])},
                        np.array([[1.0]]), y=np.array([0]))
    budget, allowance, peak = candidate_cost_budget(unit)
    assert peak == 25.0 and allowance > 1e3 * cost_budget(unit) and budget == pytest.approx(cost_budget(unit) + allowance)
