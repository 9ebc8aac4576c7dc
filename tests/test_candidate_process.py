"""A candidate cannot corrupt the run: its output is kept apart, its exits, crashes and hangs are its failure.

Each way a trusted candidate can misbehave is planted, in the CLI (verify and suite) and in the
Python API, and must end as that candidate's failure — exit code 1 and a message saying what it
did — never a silent exit 0, a corrupted ``--json``, a hung run or a traceback of ours.
"""

import json
import os
import sys
import time
from pathlib import Path

import pytest

from gradverify.candidate_process import CandidateProcess, CandidateTimeout
from gradverify.cli import main
from gradverify.errors import CandidateError, InputError
from gradverify.problems import debug_problem

EXAMPLES = Path(__file__).parent / "examples"
GOOD = (EXAMPLES / "my_backprop.py").read_text()


def _candidate(tmp_path, name: str, body: str, *, header: str = "") -> str:
    path = tmp_path / f"{name}.py"
    path.write_text(header + GOOD + "\n" + body)
    return f"{path}:f"


WRAP = "def f(network, params, X, Y):\n    {line}\n    return cost_and_grad(network, params, X, Y)\n"


@pytest.fixture
def run_cli(capfd):
    """Run the command in this process (the candidate still runs in its own); (exit code, stdout, stderr)."""
    def run(*argv: str):
        code = main(list(argv))
        out, err = capfd.readouterr()
        return code, out, err
    return run


def test_what_the_candidate_prints_is_kept_out_of_json_and_shown_apart(tmp_path, run_cli):
    cand = _candidate(tmp_path, "noisy", WRAP.format(line="print('hello from the candidate'); print('{not json', file=sys.stderr)"),
                      header="import sys\nprint('loading')\n")
    code, out, err = run_cli("verify", "--sources", "exact", "--candidate", cand, "--json", "-")
    assert code == 0, err
    doc = json.loads(out)  # stdout is exactly one JSON document
    assert doc["verdict"] == "pass"
    assert "hello from the candidate" in err and "loading" in err and "{not json" in err
    assert "the candidate noisy printed (stdout, during call 1)" in err


@pytest.mark.parametrize("name, header, line, words", [
    ("exit_at_import", "import sys\nsys.exit(0)\n", "pass", "called sys.exit(0) while it was being loaded"),
    ("os_exit_at_import", "import os\nos._exit(0)\n", "pass", "ended its process with exit code 0"),
    ("exit_5", "import sys\n", "sys.exit(5)", "called sys.exit(5) during a call"),
    ("os_exit", "import os\n", "os._exit(3)", "ended its process with exit code 3"),
    ("segfault", "import ctypes\n", "ctypes.string_at(0)", "killed by SIGSEGV"),
    ("interrupt", "", "raise KeyboardInterrupt", "raised KeyboardInterrupt"),
])
def test_an_exit_or_crash_of_the_candidate_is_its_failure_with_exit_1(name, header, line, words, tmp_path, run_cli):
    cand = _candidate(tmp_path, name, WRAP.format(line=line), header=header)
    code, out, err = run_cli("verify", "--sources", "exact", "--candidate", cand)
    assert code == 1, (code, out, err)
    assert "the candidate failed" in err and words in err, err
    assert "Traceback" not in err


def test_a_hanging_candidate_is_stopped_after_its_timeout_in_verify(tmp_path, run_cli):
    cand = _candidate(tmp_path, "sleepy", WRAP.format(line="import time; time.sleep(600)"))
    start = time.monotonic()
    code, out, err = run_cli("verify", "--sources", "exact", "--candidate", cand, "--timeout", "1.5")
    assert code == 1 and "did not return within 1.5 s and was stopped" in err, err
    assert time.monotonic() - start < 60


def test_a_hanging_candidate_ends_the_suite_at_once_instead_of_shrinking_forever(tmp_path, capsys):
    cand = _candidate(tmp_path, "sleepy", WRAP.format(line="import time; time.sleep(600)"))
    start = time.monotonic()
    assert main(["suite", "--candidate", cand, "--timeout", "1", "--examples", "50"]) == 1
    out = capsys.readouterr().out
    assert "did not return within 1 s" in out and "not shrunk" in out and "reproduce: gradverify verify" in out
    assert time.monotonic() - start < 30


def test_a_candidate_that_reads_stdin_gets_end_of_file_not_a_hang(tmp_path, run_cli):
    cand = _candidate(tmp_path, "reader", WRAP.format(line="input()"))
    code, out, err = run_cli("verify", "--sources", "exact", "--candidate", cand, "--timeout", "20")
    assert code == 1 and "raised EOFError" in err


def test_the_same_broken_candidate_exits_1_in_verify_and_in_suite(tmp_path, capsys):
    cand = _candidate(tmp_path, "wrong_keys", "def f(network, params, X, Y):\n    J, g = cost_and_grad(network, params, X, Y)\n"
                      "    return J, {'d' + k: v for k, v in g.items()}\n")
    assert main(["verify", "--sources", "exact", "--candidate", cand]) == 1
    err = capsys.readouterr().err
    assert "W1, b1, W2, b2 are missing" in err and "unexpected dW" in err and "named like the parameters" in err
    assert main(["suite", "--examples", "3", "--candidate", cand]) == 1
    assert "are missing" in capsys.readouterr().out


def test_a_missing_b2_is_named_as_missing(tmp_path, capsys):
    cand = _candidate(tmp_path, "no_b2", "def f(network, params, X, Y):\n    J, g = cost_and_grad(network, params, X, Y)\n"
                      "    g.pop('b2')\n    return J, g\n")
    assert main(["verify", "--sources", "exact", "--candidate", cand]) == 1
    assert "b2 is missing" in capsys.readouterr().err


def test_a_missing_function_is_the_users_error_not_the_candidates(tmp_path, capsys):
    cand = _candidate(tmp_path, "nofunc", "")
    assert main(["verify", "--sources", "exact", "--candidate", cand.replace(":f", ":nope")]) == 2
    err = capsys.readouterr().err
    assert "No function 'nope'" in err and "cost_and_grad" in err  # names what the file does define


def test_the_process_is_reforked_after_it_dies_and_keeps_its_module_between_calls():
    calls = []

    def load():
        calls.append("loaded")  # runs in the child: the parent's list never sees it
        state = {"n": 0}

        def fn(problem):
            state["n"] += 1
            if state["n"] == 2:
                os._exit(9)
            return state["n"]

        return fn

    p = debug_problem()
    with CandidateProcess(load, label="flaky", timeout=10) as proc:
        assert proc(p) == 1  # the module state persists between calls in one child
        with pytest.raises(CandidateError, match="exit code 9"):
            proc(p)
        assert proc(p) == 1  # a fresh child after the death
        assert proc.forks == 2 and calls == []


def test_an_object_the_candidate_returns_crosses_as_its_type_name():
    class Mine:
        pass

    with CandidateProcess(lambda: (lambda problem: (1.0, Mine())), label="obj") as proc:
        J, grads = proc(debug_problem())
    assert J == 1.0 and repr(grads) == "<Mine object>"
    from gradverify.compare import gather

    with pytest.raises(CandidateError, match="returned a Mine object as the gradient"):
        with CandidateProcess(lambda: (lambda problem: (1.0, Mine())), label="obj") as proc:
            gather(debug_problem(), (), candidates={"obj": proc})


def test_a_timeout_is_a_candidate_timeout_and_the_child_is_gone():
    with CandidateProcess(lambda: (lambda problem: time.sleep(60)), label="slow", timeout=0.5) as proc:
        with pytest.raises(CandidateTimeout, match="did not return within 0.5 s"):
            proc(debug_problem())
        assert proc._pid is None


def test_a_bad_timeout_is_an_input_error():
    with pytest.raises(InputError, match="timeout must be a positive number"):
        CandidateProcess(lambda: None, timeout=0)


# ---- the Python API runs candidates apart too ---------------------------------------------------

def test_assert_gradient_matches_takes_the_native_signature_and_survives_a_sys_exit():
    from gradverify.backprop import cost_and_grad
    from gradverify.compare import assert_gradient_matches

    p = debug_problem()
    assert assert_gradient_matches(cost_and_grad, p).verdict == "pass"

    def exits(network, params, X, Y):
        sys.exit(0)

    with pytest.raises(CandidateError, match=r"called sys.exit\(0\) during a call"):
        assert_gradient_matches(exits, p)


def test_a_list_of_arrays_through_assert_gradient_matches_is_a_clear_candidate_error():
    from gradverify.backprop import cost_and_grad
    from gradverify.compare import assert_gradient_matches

    def as_list(network, params, X, Y):
        J, g = cost_and_grad(network, params, X, Y)
        return J, list(g.values())

    with pytest.raises(CandidateError, match=r"returned the gradient as a list of 4 item\(s\).*dict\(zip"):
        assert_gradient_matches(as_list, debug_problem())


def test_none_as_the_gradient_is_said_to_be_none():
    from gradverify.compare import assert_gradient_matches

    with pytest.raises(CandidateError, match="returned a NoneType as the gradient"):
        assert_gradient_matches(lambda network, params, X, Y: (1.0, None), debug_problem())


def test_check_candidate_runs_the_candidate_apart():
    from gradverify import GradientMismatchError
    from gradverify.suite import check_candidate

    def prints_and_exits(network, params, X, Y):
        print("noise")
        os._exit(1)

    with pytest.raises(GradientMismatchError, match="ended its process with exit code 1"):
        check_candidate(prints_and_exits, examples=3)
