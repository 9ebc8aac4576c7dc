"""The command line: the default example, JSON, candidates, and bad input (exit 2, no traceback)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from gradverify.cli import main
from gradverify.problems import debug_problem

from pathlib import Path

EXAMPLES = Path(__file__).parent / "examples"
EXAMPLE = f"{EXAMPLES / 'student_native.py'}:cost_and_grad"


def test_with_no_arguments_it_verifies_the_lectures_debug_network(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "3-5-3 (38 parameters)" in out and "λ = 3" in out and "built-in example" in out
    assert "W1[0,0]" in out and "b2[2]" in out and "exact" in out and "numeric" in out
    assert out.strip().splitlines()[-1].startswith("PASS: backprop and numeric agree with the exact values on all 38 parameters")


def test_json_output_has_the_verdict_sources_and_every_value(capsys):
    assert main(["verify", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "pass" and doc["sources_run"] == ["exact", "backprop", "numeric"]
    assert len(doc["parameters"]) == 38
    row = doc["parameters"][0]
    assert row["name"] == "W1[0,0]" and set(row["values"]) == {"exact", "backprop", "numeric"}
    assert row["values"]["exact"] == pytest.approx(-0.01676797968107, rel=1e-12)


def test_the_finite_difference_estimator_can_be_chosen(capsys):
    assert main(["verify", "--fd-method", "richardson"]) == 0
    assert "finite differences (richardson)" in capsys.readouterr().out


def test_sources_can_be_chosen_and_without_exact_there_is_no_referee(capsys):
    assert main(["verify", "--sources", "backprop,numeric"]) == 0
    out = capsys.readouterr().out
    assert "referee  none" in out


def test_a_buggy_candidate_exits_1_with_the_diagnosis(capsys, monkeypatch):
    monkeypatch.setenv("GRADVERIFY_TEST_BUG", "bias")
    assert main(["verify", "--candidate", EXAMPLE]) == 1
    out = capsys.readouterr().out
    assert "<-- off" in out and "biases are regularized" in out and out.strip().splitlines()[-1].startswith("FAIL: student_native is wrong")
    monkeypatch.delenv("GRADVERIFY_TEST_BUG")
    assert main(["verify", "--candidate", EXAMPLE, "--init", "random", "--seed", "3", "4-6-2", "--lambda", "1"]) == 0


def test_the_users_own_parameters_from_an_npz_file(tmp_path, capsys):
    p = debug_problem()
    f = tmp_path / "mine.npz"
    np.savez(f, **p.params, X=p.X, y=p.labels)
    assert main(["verify", "--npz", str(f), "--lambda", "3"]) == 0
    assert "npz" in capsys.readouterr().out


BAD = [
    (["verify", "3-x-3"], "Cannot parse the network spec"),
    (["verify", "3-5-3:swish"], "Unknown activation"),
    (["verify", "--sources", "exact,autograd"], "Unknown gradient source"),
    (["verify", "-m", "0"], "-m must be at least 1"),
    (["verify", "--candidate", "nofile.py:f"], "No such candidate file"),
    (["verify", "--candidate", str(EXAMPLES / "student_native.py")], "FILE.py:FUNCTION"),
    (["verify", "--candidate", f"{EXAMPLES / 'student_native.py'}:nope"], "No function 'nope'"),
    (["verify", "--profile", "ex5", "--candidate", EXAMPLE], "Unknown assignment profile"),
    (["verify", "nope.toml"], "Cannot read the spec file"),
    (["verify", "--partial", "b9[0]"], "--partial 'b9[0]' is not a parameter of 3-5-3"),
    (["verify", "3-5-3:relu", "--fd-method", "complex-step"], "Complex-step differentiation needs an analytic cost"),
]


@pytest.mark.parametrize("argv, words", BAD)
def test_bad_usage_exits_2_with_a_paragraph_not_a_traceback(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


@pytest.mark.parametrize("change, words", [
    (lambda d: d.update(W1=d["W1"].T), "W1 has the wrong shape"),
    (lambda d: d.update(X=np.where(np.arange(15).reshape(5, 3) == 4, np.nan, d["X"])), "X holds NaN"),
    (lambda d: d.update(y=d["y"] + 1), "Labels out of range"),
    (lambda d: d.pop("b2"), "missing b2"),
    (lambda d: d.pop("y"), "Y or y"),
])
def test_bad_npz_input_exits_2_and_names_the_fix(change, words, tmp_path, capsys):
    p = debug_problem()
    data = {**p.params, "X": p.X, "y": p.labels}
    change(data)
    f = tmp_path / "bad.npz"
    np.savez(f, **data)
    assert main(["verify", "3-5-3", "--npz", str(f)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Expected" in err and "Traceback" not in err


def test_an_unreadable_npz_is_a_clear_error(tmp_path, capsys):
    f = tmp_path / "x.npz"
    f.write_text("not a zip")
    assert main(["verify", "--npz", str(f)]) == 2
    assert "Cannot read" in capsys.readouterr().err


def test_python_dash_m_runs_the_same_command():
    out = subprocess.run([sys.executable, "-m", "gradverify", "verify", "--sources", "backprop,exact"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "PASS" in out.stdout


def test_a_candidate_that_crashes_or_returns_the_wrong_form_fails_with_a_clear_message(tmp_path, capsys):
    f = tmp_path / "crash.py"
    f.write_text("def boom(network, params, X, Y):\n    return 1 / 0\n\n"
                 "def short(nn_params, a, b, c, X, y, lam):\n    return 1.0, [1.0, 2.0]\n")
    assert main(["verify", "--candidate", f"{f}:boom"]) == 1  # the candidate's failure, not bad usage
    err = capsys.readouterr().err
    assert "raised ZeroDivisionError" in err and f"{f}:2 in boom" in err and "Traceback" not in err
    assert main(["verify", "--candidate", f"{f}:short", "--profile", "ex4"]) == 1
    err = capsys.readouterr().err
    assert "grad must hold 38 numbers" in err and "Traceback" not in err


def test_the_exact_expression_of_one_partial_can_be_shown(capsys):
    assert main(["verify", "1-1-1", "-m", "1", "--partial", "b2[0]", "--latex", "--sources", "exact"]) == 0
    out = capsys.readouterr().out
    assert "∂J/∂b2[0]" in out and "\\frac" in out and "W2[0,0]" in out
