"""Finite differences that scale: a sample of the partials says what it covered; probes cover the rest.

A bug planted outside the sample must still be caught — by the random probes, which weigh every
partial — and localized to its entry by bisection; a sampled run's verdict states its coverage.
"""

import numpy as np
import pytest

from gradverify.cli import main
from gradverify.compare import compare
from gradverify.params import flatten, scalar_names
from gradverify.problems import random_problem
from gradverify.sampling import probe_gradient, sample_indices, sampled_gradient
from gradverify.sizing import FdPlan
from gradverify.spec import parse_spec


def test_a_sample_is_sorted_unique_reproducible_and_covers_every_array():
    p = random_problem(parse_spec("20-30-4"), m=3, seed=1)
    idx = sample_indices(p, 40, seed=0)
    assert len(idx) == 40 == len(set(idx.tolist())) and np.all(np.diff(idx) > 0)
    assert np.array_equal(idx, sample_indices(p, 40, seed=0)) and not np.array_equal(idx, sample_indices(p, 40, seed=1))
    names = [scalar_names(p.network)[i].split("[")[0] for i in idx]
    assert set(names) == {"W1", "b1", "W2", "b2"}


def test_sampled_partials_agree_with_the_exact_values_within_their_error_bars():
    p = random_problem(parse_spec("4-6-3:tanh/softmax", lam=0.5), m=5, seed=2)
    sg = sampled_gradient(p, 15)
    exact = compare(p, ("exact",)).sources["exact"].grad
    assert sg.n == 15 and np.isnan(sg.grad[~sg.checked]).all()
    assert np.all(np.abs(sg.grad[sg.checked] - exact[sg.checked]) <= sg.error[sg.checked])


def test_a_sampled_numeric_source_is_judged_on_its_sample_and_says_its_coverage():
    p = random_problem(parse_spec("5-7-3:tanh"), m=4, seed=3)
    comp = compare(p, options={"numeric": {"plan": FdPlan("sample", 12, 0.0, "asked for")}})
    v = comp.verdicts["numeric"]
    assert comp.verdict == "pass" and v.n_checked == 12 and int(np.sum(v.status == "unchecked")) == p.network.n_params - 12
    assert f"numeric checked 12 of {p.network.n_params}" in comp.summary()
    assert "12 sampled partials" in comp.sources["numeric"].detail


def _planted(tmp_path, index: int) -> str:
    path = tmp_path / "planted.py"
    path.write_text("from gradverify.backprop import cost_and_grad as _c\n"
                    "from gradverify.params import flatten, unflatten\n"
                    "def f(network, params, X, Y):\n"
                    "    J, g = _c(network, params, X, Y)\n"
                    "    v = flatten(g, network)\n"
                    f"    v[{index}] += 1e-4\n"
                    "    return J, unflatten(v, network)\n")
    return f"{path}:f"


def test_a_bug_outside_the_sample_is_caught_by_the_probes_and_localized(tmp_path, capsys):
    p = random_problem(parse_spec("6-8-3:tanh"), m=4, seed=0)
    sample = set(sample_indices(p, 10, seed=0).tolist())
    index = next(i for i in range(p.network.n_params) if i not in sample)
    name = scalar_names(p.network)[index]
    argv = ["verify", "6-8-3:tanh", "--init", "random", "-m", "4", "--sources", "numeric", "--fd", "sample", "--fd-sample", "10",
            "--candidate", _planted(tmp_path, index), "--wide"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "probes   planted: " in out and f"bisection found 1 wrong entry: {name}" in out
    assert out.strip().splitlines()[-1].startswith("FAIL: planted fails the random probes")


def test_a_correct_engine_passes_every_probe_on_a_sampled_run(capsys):
    assert main(["verify", "6-8-8-3:tanh", "--init", "random", "--fd", "sample", "--fd-sample", "30"]) == 0
    out = capsys.readouterr().out
    assert "probes   backprop: 8 of 8 random signed probes" in out and "numeric checked 30 of" in out


def test_a_gradient_with_nan_is_failed_by_the_probes_without_probing():
    p = random_problem(parse_spec("3-4-2"), m=2, seed=0)
    g = flatten(p.params, p.network) * 0
    g[5] = np.nan
    res = probe_gradient(p, g, source="nan")
    assert not res.passed and res.localized == [scalar_names(p.network)[5]] and "NaN or infinite" in res.describe()


@pytest.mark.slow
def test_a_large_network_is_checked_in_seconds_with_a_stated_coverage(capsys):
    assert main(["verify", "256-256-256-256-256-10", "--init", "random", "--sources", "backprop,numeric"]) == 0
    out = capsys.readouterr().out
    assert "sampled partials of 265,738" in out and "of all 265,738 partials agree" in out
