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
CORRECT = f"{EXAMPLES / 'my_backprop.py'}:cost_and_grad"


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


def test_a_buggy_candidate_exits_1_with_the_diagnosis_and_a_correct_one_passes(capsys):
    assert main(["verify", "--candidate", EXAMPLE]) == 1
    out = capsys.readouterr().out
    assert "<-- off" in out and "biases are regularized" in out and out.strip().splitlines()[-1].startswith("FAIL: student_native is wrong")
    assert main(["verify", "--candidate", CORRECT, "--init", "random", "--seed", "3", "4-6-2", "--lambda", "1"]) == 0


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
    (["verify", "-m", "0"], "-m is out of range. Expected an integer ≥ 1. Received 0"),
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


# ---- every bad input, path or argument: exit 2 and one paragraph (what, expected, received, fix) ----

def _paragraph_exit_2(argv, capsys, *words):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "internal error" not in err
    assert "Expected" in err and "Received" in err, err  # the what/expected/received paragraph
    for w in words:
        assert w in err, err
    return err


def test_a_negative_seed_is_refused_with_the_range(capsys):
    _paragraph_exit_2(["verify", "--init", "random", "--seed", "-1"], capsys, "--seed", "0 to 4,294,967,295", "Received -1")


def test_an_empty_npz_file_is_refused(tmp_path, capsys):
    (tmp_path / "empty.npz").write_bytes(b"")
    _paragraph_exit_2(["verify", "--npz", str(tmp_path / "empty.npz")], capsys, "is empty (0 bytes)", "numpy.savez")


def test_a_spec_file_that_is_not_utf8_is_refused(tmp_path, capsys):
    (tmp_path / "net.toml").write_bytes(b"\xff\xfe network = 1")
    _paragraph_exit_2(["verify", str(tmp_path / "net.toml")], capsys, "not UTF-8", "byte 0xff")


def test_a_candidate_that_is_not_a_python_file_is_refused(tmp_path, capsys):
    (tmp_path / "engine.txt").write_text("def f(network, params, X, Y): pass\n")
    _paragraph_exit_2(["verify", "--candidate", f"{tmp_path / 'engine.txt'}:f"], capsys, "ending in .py", "engine.txt")


def test_a_report_folder_that_is_an_existing_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    from gradverify import sources

    ran = []
    monkeypatch.setitem(sources._SOURCES, "backprop", lambda *a, **k: ran.append(1))
    (tmp_path / "taken").write_text("x")
    _paragraph_exit_2(["verify", "--sources", "backprop", "--report", str(tmp_path / "taken")], capsys, "is a file", "a folder")
    assert not ran  # refused at parse time: nothing was computed and then lost


def test_a_report_folder_that_cannot_be_created_is_refused(capsys):
    _paragraph_exit_2(["verify", "--report", "/proc/gradverify-report"], capsys, "cannot be written", "/proc")


def test_suite_report_into_an_existing_file_is_refused(tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    _paragraph_exit_2(["suite", "--examples", "1", "--report", str(tmp_path / "taken")], capsys, "is a file")


def test_grade_out_into_an_existing_file_is_refused(tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    sub = Path(__file__).parent / "submissions" / "ex4" / "correct_reference.py"
    _paragraph_exit_2(["grade", str(sub), "--assignment", "ex4", "--out", str(tmp_path / "taken")], capsys, "--out", "is a file")


def test_json_into_a_missing_folder_is_refused(tmp_path, capsys):
    _paragraph_exit_2(["verify", "--json", str(tmp_path / "no" / "such" / "out.json")], capsys, "does not exist")


def test_regularize_bias_given_as_a_string_is_refused_not_read_as_true(tmp_path, capsys):
    (tmp_path / "n.toml").write_text('network = "3-5-3"\nregularize_bias = "false"\n')
    _paragraph_exit_2(["verify", str(tmp_path / "n.toml")], capsys, "regularize_bias", "'false' (a string)", "true or false")


def test_json_lambda_true_is_refused_not_read_as_one(tmp_path, capsys):
    (tmp_path / "n.json").write_text('{"network": "3-5-3", "lambda": true}')
    _paragraph_exit_2(["verify", str(tmp_path / "n.json")], capsys, "'lambda'", "True (a boolean)")


def _npz(tmp_path, **arrays):
    p = debug_problem()
    data = {**p.params, "X": p.X, "y": p.labels, **arrays}
    data = {k: v for k, v in data.items() if v is not None}
    np.savez(tmp_path / "mine.npz", **data)
    return str(tmp_path / "mine.npz")


def test_an_npz_with_y_and_Y_that_disagree_is_refused(tmp_path, capsys):
    p = debug_problem()
    path = _npz(tmp_path, Y=np.roll(p.Y, 1, axis=0))
    _paragraph_exit_2(["verify", "--npz", path, "--lambda", "3"], capsys, "both Y and y", "disagree")


def test_an_npz_with_y_and_Y_that_agree_is_used_with_a_warning(tmp_path, capsys):
    path = _npz(tmp_path, Y=debug_problem().Y)
    assert main(["verify", "--npz", path, "--lambda", "3", "--sources", "exact,backprop"]) == 0
    assert "warning: " in capsys.readouterr().err


def test_a_complex_array_in_the_npz_is_refused_not_truncated(tmp_path, capsys):
    path = _npz(tmp_path, W1=debug_problem().params["W1"] + 1e-3j)
    _paragraph_exit_2(["verify", "--npz", path], capsys, "'W1'", "complex")


@pytest.mark.parametrize("extra", [["--init", "random"], ["--seed", "3"], ["--scale", "2"], ["-m", "7"]])
def test_options_that_npz_would_silently_ignore_are_refused(extra, tmp_path, capsys):
    path = _npz(tmp_path)
    _paragraph_exit_2(["verify", "--npz", path, *extra], capsys, extra[0])


def test_seed_without_init_random_is_refused(capsys):
    _paragraph_exit_2(["verify", "--seed", "3"], capsys, "only to --init random", "add --init random")


def test_digits_bounds_are_the_same_in_help_and_in_the_error(capsys):
    from gradverify.cli import build_parser

    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["verify"].format_help().split())
    assert "20 to 10,000" in help_text
    _paragraph_exit_2(["verify", "--digits", "19"], capsys, "from 20 to 10,000")
    _paragraph_exit_2(["verify", "--digits", "10001"], capsys, "from 20 to 10,000")


def test_an_unknown_option_is_a_paragraph_with_the_usage(capsys):
    assert main(["verify", "--nope"]) == 2
    err = capsys.readouterr().err
    assert "Unrecognized arguments: --nope" in err and "Expected" in err and "Traceback" not in err


# ---- output for people -----------------------------------------------------------------------------

def test_a_closed_pipe_ends_quietly_with_the_verdict_as_exit_code():
    cmd = [sys.executable, "-m", "gradverify", "verify", "--candidate", EXAMPLE, "--sources", "exact"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()  # `| head -1`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1  # the candidate is wrong: the exit code says so even though nobody read the table
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_tables_fit_the_terminal_and_wide_shows_every_column(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "90")
    assert main(["verify", "--candidate", EXAMPLE]) == 1
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith(("parameter", "W1[", "b1[", "cost J"))]
    assert table and max(len(line) for line in table) <= 90
    assert "hidden to fit 90 columns" in out and "rel.err" not in table[0]
    assert main(["verify", "--candidate", EXAMPLE, "--wide"]) == 1
    wide = capsys.readouterr().out
    assert "student_native rel.err" in wide and "hidden to fit" not in wide


def test_json_dash_prints_only_json_and_json_file_writes_it_beside_the_table(tmp_path, capsys):
    assert main(["verify", "--sources", "exact,backprop", "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "pass" and doc["parameters_shown"]["complete"] is True
    out_file = tmp_path / "r.json"
    assert main(["verify", "--sources", "exact,backprop", "--json", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and f"json: {out_file}" in out
    assert json.loads(out_file.read_text())["verdict"] == "pass"


def test_suite_layer_runs_the_layer_catalogues_suite_and_catches_a_planted_layer_bug(capsys):
    # issue 18: `suite --layer NAME` is `layer NAME --suite`
    assert main(["suite", "--layer", "affine", "--examples", "5"]) == 0
    assert "PASS: all 5 cases agree with the exact oracle" in capsys.readouterr().out
    buggy = Path(__file__).parent / "layers" / "buggy_cs231n.py"
    assert main(["suite", "--layer", "batchnorm", "--examples", "10", "--candidate", f"{buggy}:batchnorm_backward"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "batchnorm" in out
    assert main(["suite", "--layer", "affine", "--profile", "ex4"]) == 2
    assert "--layer draws the layer's own cases" in capsys.readouterr().err


# ---- found by fuzzing the command line with inputs nobody had tried (each was exit 3, "a bug in gradverify") ----

def test_a_missing_profile_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "c.py").write_text("def f(network, params, X, Y):\n    return 0.0, {}\n")
    _paragraph_exit_2(["verify", "--profile", str(tmp_path / "nosuch.toml"), "--candidate", f"{tmp_path / 'c.py'}:f"],
                      capsys, "No such profile file", "nosuch.toml")


def test_a_cost_beyond_float64_is_the_candidates_failure(tmp_path, capsys):
    (tmp_path / "c.py").write_text("import numpy as np\n\ndef f(network, params, X, Y):\n"
                                   "    return 10**400, {k: np.zeros_like(v) for k, v in params.items()}\n")
    assert main(["verify", "--candidate", f"{tmp_path / 'c.py'}:f", "--sources", "exact"]) == 1
    err = capsys.readouterr().err
    assert "the candidate failed" in err and "not an array of numbers" in err and "an int: int too large" in err


@pytest.mark.parametrize("option, value, words", [
    ("--seed", "-5", "--seed is out of range"), ("--digits", "5", "from 20 to 2,000"), ("--rows", "0", "--rows is out of range"),
    ("--scale", "1e300", "--scale is out of range"), ("--examples", "0", "--examples is out of range"),
])
def test_layer_options_are_checked_like_verifys(option, value, words, capsys):
    _paragraph_exit_2(["layer", "affine", option, value], capsys, words, value)


def test_layer_report_into_an_existing_file_is_refused(tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    _paragraph_exit_2(["layer", "affine", "--report", str(tmp_path / "taken")], capsys, "is a file", "taken")
