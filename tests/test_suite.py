"""Strategies (validated, shrinking) and the suite: own engines, a user's candidate, shrinking to the smallest failure."""

import re

import numpy as np
import pytest
from hypothesis import given, settings

from gradverify import strategies as gst
from gradverify.cli import main
from gradverify.errors import GradientMismatchError
from gradverify.forward import pre_activations
from gradverify.suite import check_candidate, run_suite

BAD_CALLS = [
    (lambda: gst.networks(min_depth=0), "min_depth=0 must be an integer ≥ 1"),
    (lambda: gst.networks(min_depth=3, max_depth=2), "the range is empty. Consider max_depth=3"),
    (lambda: gst.networks(activations=("swish",)), "swish is unknown"),
    (lambda: gst.networks(outputs=()), "non-empty selection"),
    (lambda: gst.networks(outputs=("softmax",), max_width=1), "needs max_width ≥ 2"),
    (lambda: gst.networks(lam=-1.0), "lam=-1.0 must be a number ≥ 0"),
    (lambda: gst.networks(max_params=1), "max_params=1"),
    (lambda: gst.problems(min_m=0), "min_m=0"),
    (lambda: gst.problems(scale=-2.0), "scale=-2.0 must be a positive number"),
    (lambda: gst.problems(network="3-5-3"), "Consider gradverify.strategies.networks"),
    (lambda: gst.problems(kink_margin=-1), "kink_margin"),
]


@pytest.mark.parametrize("call, words", BAD_CALLS)
def test_strategies_reject_bad_options_with_a_fix(call, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        call()


def test_strategy_options_are_keyword_only():
    with pytest.raises(TypeError):
        gst.networks(1, 3)


@settings(max_examples=40)
@given(gst.problems(gst.networks(activations=("relu",), max_depth=3), max_m=6))
def test_relu_networks_are_sampled_away_from_kinks(problem):
    for act, A in zip(problem.network.activations, pre_activations(problem.network, problem.params, problem.X)):
        if act == "relu":
            assert np.min(np.abs(A)) >= 1e-3


@settings(max_examples=40)
@given(gst.networks(max_params=30, outputs=("softmax",), regularizations=("lambda",), lam=2.0))
def test_networks_respect_their_options(net):
    assert net.n_params <= 30 and net.output == "softmax" and net.reg == "lambda" and net.lam == 2.0 and net.sizes[-1] >= 2


def test_the_suite_of_gradverifys_own_engines_passes():
    res = run_suite(examples=40, seed=1)
    assert res.ok and len(res.records) >= 40
    assert {r.verdict for r in res.records} == {"pass"}


def _buggy_on_wide_outputs(network, params, X, Y):
    """Correct, except that it forgets the 1/m on b2 when the output layer has 3 or more units."""
    from gradverify.backprop import cost_and_grad
    J, g = cost_and_grad(network, params, X, Y)
    if network.sizes[-1] >= 3 and X.shape[0] >= 2:
        g = {**g, f"b{network.depth}": g[f"b{network.depth}"] * X.shape[0]}
    return J, g


def test_a_failure_is_shrunk_to_the_smallest_network_and_batch():
    with pytest.raises(GradientMismatchError) as info:
        check_candidate(_buggy_on_wide_outputs, examples=60, seed=0)
    msg = str(info.value)
    # the smallest case that still shows the bug: one weight layer, 3 outputs, m = 2, a tiny input
    assert "smallest failing case" in msg and "m=2" in msg and re.search(r"Problem\(1-3[ /]", msg), msg
    assert "off by a factor m = 2" in msg
    assert "reproduce: gradverify verify 1-3" in msg and "--seed" in msg


def test_a_correct_candidate_passes_check_candidate():
    from gradverify.backprop import cost_and_grad
    res = check_candidate(cost_and_grad, examples=20)
    assert res.ok


def test_the_suite_command_reports_the_shrunk_case_and_exit_code(tmp_path, capsys):
    f = tmp_path / "mine.py"
    f.write_text("from gradverify.backprop import cost_and_grad as _c\n"
                 "def mine(network, params, X, Y):\n"
                 "    J, g = _c(network, params, X, Y)\n"
                 "    return J, {k: (-v if k == 'W1' else v) for k, v in g.items()}\n")
    assert main(["suite", "--candidate", f"{f}:mine", "--examples", "30"]) == 1
    out = capsys.readouterr().out
    assert "smallest failing case (shrunk)" in out and "W1 has the wrong sign" in out and "reproduce: gradverify verify" in out
    assert main(["suite", "--examples", "15"]) == 0
    assert "PASS: all" in capsys.readouterr().out
    assert main(["suite", "--examples", "0"]) == 2


# ---- narrowing the family ------------------------------------------------------------------------

def _lecture_only(network, params, X, Y):
    """A correct engine for the lecture's network only: sigmoid everywhere, λ/(2m)·ΣW², biases left out."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("my_backprop_example", Path(__file__).parent / "examples" / "my_backprop.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cost_and_grad(network, params, X, Y)


def test_a_lecture_only_engine_passes_on_the_lecture_family_and_fails_on_everything():
    from gradverify.strategies import Family

    assert check_candidate(_lecture_only, family=Family.lecture(), examples=25).ok
    with pytest.raises(GradientMismatchError):
        check_candidate(_lecture_only, examples=40)


@settings(max_examples=30)
@given(gst.Family(activations=("tanh",), outputs=("softmax",), regularizations=("lambda",), reg_bias=True, max_width=4,
                  max_depth=2, max_m=3, saturating=False).problems())
def test_a_family_draws_only_what_it_names(problem):
    net = problem.network
    assert set(net.activations) <= {"tanh"} and net.output == "softmax" and net.reg == "lambda" and net.reg_bias
    # outputs may go past max_width up to max_classes (13 by default: beyond the classic 10 labels)
    assert max(net.sizes[:-1]) <= 4 and net.sizes[-1] <= 13 and net.depth <= 2
    assert problem.m <= 3


@pytest.mark.parametrize("options, words", [
    (dict(activations=("swish",)), "swish is unknown"),
    (dict(reg_bias="no"), "reg_bias='no' must be True, False or None"),
    (dict(max_depth=0), "max_depth=0"),
    (dict(lam=-1.0), "lam=-1.0"),
    (dict(outputs=("softmax",), max_width=1), "needs max_width ≥ 2"),
])
def test_a_family_validates_its_options(options, words):
    with pytest.raises(gst.InvalidArgument, match=re.escape(words)):
        gst.Family(**options)


def test_the_suite_command_narrows_the_family_and_says_what_it_drew(tmp_path, capsys):
    from pathlib import Path

    cand = f"{Path(__file__).parent / 'examples' / 'my_backprop.py'}:cost_and_grad"
    assert main(["suite", "--candidate", cand, "--lecture", "--examples", "20"]) == 0
    out = capsys.readouterr().out
    assert "family   hidden sigmoid; outputs sigmoid; regularization lambda/2m; biases not regularized" in out
    assert main(["suite", "--candidate", cand, "--activations", "tanh", "--examples", "20"]) == 1
    capsys.readouterr()
    assert main(["suite", "--activations", "swish"]) == 2
    assert "--activations names unknown swish" in capsys.readouterr().err
    assert main(["suite", "--outputs", "softmax", "--max-width", "1"]) == 2
    assert "cannot draw any network" in capsys.readouterr().err
