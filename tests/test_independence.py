"""Each source reads the user's specification its own way: a wrong reading in one place is a disagreement.

The facts planted here are the ones a shared helper used to decide for every source at once (which
arrays the penalty covers, its coefficient). Planted wrong in the shared reading, no source follows it;
planted wrong in one source's own reading, the comparison itself catches it — not a hard-coded constant.
"""

import pytest

from gradverify import backprop
from gradverify.compare import compare
from gradverify.problems import debug_problem
from gradverify.spec import Network

DEBUG_J = 2.146359815024  # the classic exercise's published cost at λ = 3 (2.146360)


def _wrong_shared_reading(monkeypatch):
    monkeypatch.setattr(Network, "is_regularized", lambda self, name: self.lam > 0)  # biases too
    monkeypatch.setattr(Network, "reg_coefficient", lambda self, m: self.lam / m)      # twice λ/(2m)


def test_a_wrong_shared_reading_of_the_penalty_changes_no_source(monkeypatch):
    _wrong_shared_reading(monkeypatch)
    comp = compare(debug_problem())
    assert comp.sources["exact"].cost == pytest.approx(DEBUG_J, abs=5e-13)
    assert comp.sources["backprop"].cost == pytest.approx(DEBUG_J, abs=5e-13)
    assert comp.verdict == "pass", comp.summary()  # and in particular never a PASS at another J


def test_a_wrong_penalty_reading_inside_backprop_is_caught_by_the_comparison_and_named(monkeypatch):
    right = backprop._penalty
    monkeypatch.setattr(backprop, "_penalty", lambda net, m: (right(net, m)[0], [f"{p}{k}" for k in range(1, net.depth + 1) for p in "Wb"]))
    comp = compare(debug_problem())
    assert comp.verdict == "fail" and comp.wrong == ["backprop"]
    assert comp.diagnoses["backprop"][0].kind == "regularized-bias"
