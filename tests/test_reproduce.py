"""A reproduce command rebuilds the very problem it was printed for, for every origin: run what it prints."""

import json
import shlex

import numpy as np
import pytest

from gradverify.backprop import cost_and_grad
from gradverify.cli import main
from gradverify.errors import InputError
from gradverify.problems import debug_problem, random_problem
from gradverify.reproduce import reproduce_command
from gradverify.spec import Origin, make_problem, parse_spec


def _run(command: str, capsys) -> dict:
    argv = shlex.split(command)
    assert argv[0] == "gradverify"
    assert main(argv[1:] + ["--sources", "backprop", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _same_numbers(problem, doc):
    J, grads = cost_and_grad(problem.network, problem.params, problem.X, problem.Y)
    assert doc["sources"]["backprop"]["cost"] == J  # bit for bit: the same problem, not a similar one
    flat = np.concatenate([grads[n].reshape(-1) for n, _ in problem.network.param_shapes])
    assert [row["values"]["backprop"] for row in doc["parameters"]] == list(flat)
    assert doc["problem"]["m"] == problem.m and doc["problem"]["network"] == problem.network.compact


@pytest.mark.parametrize("problem", [
    debug_problem(),
    debug_problem(parse_spec("4-6-3:tanh/softmax", lam=0.5, reg="lambda", reg_bias=True), m=7),
    random_problem(parse_spec("3-4-4-2:relu,softplus/identity", lam=1.25), m=4, seed=11, scale=0.3),
    random_problem(parse_spec("2-1-1-1:softplus,sigmoid"), m=1, seed=1, scale=30),
    random_problem(parse_spec("3-3-2", lam=0.1), m=2, seed=5, scale=0.123456789),
], ids=["debug", "debug-variants", "random", "random-saturated", "random-awkward-floats"])
def test_the_command_printed_for_a_generated_problem_rebuilds_it(problem, capsys):
    _same_numbers(problem, _run(reproduce_command(problem), capsys))


def test_a_problem_read_from_an_npz_file_is_rebuilt_from_that_file_not_from_a_generator(tmp_path, capsys):
    original = random_problem(parse_spec("3-5-2:tanh/softmax", lam=2.0), m=6, seed=3)
    path = tmp_path / "mine.npz"
    np.savez(path, X=original.X, y=original.labels, **original.params)
    assert main(["verify", "3-5-2:tanh/softmax", "--lambda", "2", "--npz", str(path), "--sources", "backprop", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["problem"]["origin"] == f"npz {path}"
    from gradverify.cli._npz import open_npz  # noqa: F401  (the CLI's reader)
    loaded = make_problem(original.network, original.params, original.X, y=original.labels, origin=Origin("npz", path=str(path)))
    command = reproduce_command(loaded)
    assert f"--npz {path}" in command and "--init" not in command and " -m " not in command
    _same_numbers(original, _run(command, capsys))


def test_a_problem_built_from_arrays_is_saved_so_that_its_command_rebuilds_it(tmp_path, capsys):
    rng = np.random.default_rng(0)
    net = parse_spec("2-3-2/softmax", lam=0.1, reg="lambda/2")
    params = {n: rng.standard_normal(s) for n, s in net.param_shapes}
    problem = make_problem(net, params, rng.standard_normal((3, 2)), y=np.array([0, 1, 1]))
    with pytest.raises(InputError, match="built from arrays.*save_problem"):
        reproduce_command(problem)
    command = reproduce_command(problem, npz=tmp_path / "case.npz")
    _same_numbers(problem, _run(command, capsys))


def test_settings_and_profile_are_part_of_the_command():
    command = reproduce_command(debug_problem(), candidate="mine.py:nnCostFunction", profile="ex4",
                                settings={"unroll_order": "F", "label_base": 1, "target": "nnCostFunction"})
    assert command.endswith("--candidate mine.py:nnCostFunction --profile ex4 --set label_base=1 --set unroll_order=F")


def test_an_origin_says_what_it_needs():
    with pytest.raises(Exception, match="seed and scale"):
        Origin("random")
    with pytest.raises(Exception, match="path"):
        Origin("npz")
    assert str(Origin("random", seed=3, scale=0.5)) == "random init, seed=3, scale=0.5"
    assert str(Origin("arrays", note="hidden variant 2")) == "arrays (hidden variant 2)"
