"""Every failure is blamed on the party that caused it: the user (exit 2), the candidate (exit 1), gradverify (exit 3)."""

import pytest

from gradverify import sources
from gradverify.cli import main
from gradverify.errors import CandidateError, InternalError
from gradverify.problems import debug_problem
from gradverify.suite import run_suite


def _write(tmp_path, name, body):
    path = tmp_path / name
    path.write_text(body)
    return path


def test_a_crash_inside_gradverify_is_an_internal_error_with_exit_3_and_the_versions(monkeypatch, capsys):
    def broken(problem, progress=None, **options):
        raise ZeroDivisionError("planted bug in gradverify")

    monkeypatch.setitem(sources._SOURCES, "backprop", broken)
    assert main(["verify", "--sources", "backprop"]) == 3
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError: planted bug in gradverify" in err
    assert "bug in gradverify, not in your input or your code" in err and "gradverify 0." in err and "numpy" in err
    path = err.split("The traceback is in ")[1].strip().rstrip(".")
    assert "planted bug in gradverify" in open(path, encoding="utf-8").read()


def test_an_internal_error_raised_on_purpose_is_exit_3_too(monkeypatch, capsys):
    def inconsistent(problem, progress=None, **options):
        raise InternalError("two passes disagree")

    monkeypatch.setitem(sources._SOURCES, "backprop", inconsistent)
    assert main(["verify", "--sources", "backprop"]) == 3
    assert "internal error: InternalError: two passes disagree" in capsys.readouterr().err


def test_a_crashing_candidate_fails_with_exit_1_in_verify_and_in_suite_alike(tmp_path, capsys):
    cand = _write(tmp_path, "crash.py", "def cost_and_grad(network, params, X, Y):\n    return 1 / 0\n")
    assert main(["verify", "--sources", "exact", "--candidate", f"{cand}:cost_and_grad"]) == 1
    assert "raised ZeroDivisionError" in capsys.readouterr().err
    assert main(["suite", "--examples", "3", "--candidate", f"{cand}:cost_and_grad"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "ZeroDivisionError" in out


def test_a_missing_candidate_function_is_the_users_input_error(tmp_path, capsys):
    cand = _write(tmp_path, "ok.py", "def something_else():\n    pass\n")
    assert main(["verify", "--candidate", f"{cand}:cost_and_grad"]) == 2
    assert "No function 'cost_and_grad'" in capsys.readouterr().err


def test_the_suite_never_records_a_bug_of_gradverify_as_the_candidates_error(monkeypatch):
    def broken(problem, progress=None, **options):
        raise KeyError("planted bug in the oracle")

    monkeypatch.setitem(sources._SOURCES, "exact", broken)
    from gradverify.backprop import cost_and_grad

    with pytest.raises(KeyError, match="planted bug in the oracle"):
        run_suite(lambda p: cost_and_grad(p.network, p.params, p.X, p.Y), examples=3)


def test_a_candidate_whose_answers_change_on_replay_fails_as_nondeterministic_not_as_a_crash():
    from gradverify.backprop import cost_and_grad

    seen = set()

    def flaky(problem):  # wrong the first time it sees a case, right on replay
        J, g = cost_and_grad(problem.network, problem.params, problem.X, problem.Y)
        key = (problem.network, problem.X.tobytes())
        if key not in seen:
            seen.add(key)
            g = {k: 2 * v for k, v in g.items()}
        return J, g

    res = run_suite(flaky, examples=5, max_params=20)
    assert not res.ok and res.failure is None
    assert "changed between calls on the same case" in res.failure_error


def test_a_candidate_error_is_a_gradverify_error_that_a_caller_can_catch_as_value_error():
    assert issubclass(CandidateError, ValueError) and issubclass(InternalError, RuntimeError)
    with pytest.raises(CandidateError):
        from gradverify.compare import gather
        gather(debug_problem(), (), candidates={"c": lambda p: None})


# ---- the Python API: a caller's mistake is an InputError saying what was expected, never a deep AttributeError ----

@pytest.mark.parametrize("call, words", [
    (lambda g, P: g.compare(None), "compare needs a Problem"),
    (lambda g, P: g.compare("3-5-3"), "Received str"),
    (lambda g, P: g.compare(P, precision="float16"), "Unknown precision 'float16'"),
    (lambda g, P: g.compare(P, options={"exact": {"bogus": 3}}), "The exact source has no option 'bogus'"),
    (lambda g, P: g.compare(P, options={"exakt": {}}), "options names no source: 'exakt'"),
    (lambda g, P: g.compare(P, candidates={"mine": 5}), "'mine' is not one"),
    (lambda g, P: g.random_problem("3-5-3"), "random_problem needs a Network"),
    (lambda g, P: g.random_problem(g.parse_spec("3-5-3"), m=-1), "m is out of range"),
    (lambda g, P: g.random_problem(g.parse_spec("3-5-3"), seed=-1), "seed is out of range"),
    (lambda g, P: g.random_problem(g.parse_spec("3-5-3"), scale=-1.0), "scale must be a finite number > 0"),
    (lambda g, P: g.check_candidate(None), "The candidate must be a function"),
    (lambda g, P: g.assert_gradient_matches("cost_and_grad", P), "Received str"),
    (lambda g, P: g.assert_gradient_matches(lambda *a: None, None), "compare needs a Problem"),
    (lambda g, P: g.gradcheck(None, None), "gradcheck's f must be a function"),
    (lambda g, P: g.gradcheck(lambda x: ((x ** 2).sum(), 2 * x), None), "gradcheck needs the point to check at"),
])
def test_api_misuse_is_an_input_error_with_what_was_expected(call, words):
    import gradverify
    from gradverify.errors import InputError

    with pytest.raises(InputError) as info:
        call(gradverify, debug_problem())
    text = str(info.value)
    assert words in text and "Expected" in text and "Received" in text, text


def test_sources_may_be_named_in_one_string_as_on_the_command_line():
    from gradverify import compare

    assert set(compare(debug_problem(), "exact, backprop").sources) == {"exact", "backprop"}
