"""Every example in the README runs as written and does what the README says it does.

The commands are read from the README itself (every ```bash block, every `gradverify …` written
inline, every output block that starts with `$ gradverify …`, every ```python and ```toml block);
each must have an expectation below (its exit code and words it must print), so an example added
to the README without a test, or an expectation left for an example that is gone, fails here.
They run in a workspace holding what the README says the reader has: `my_backprop.py` (their
function), `mine.npz` (their arrays), `submissions/`, `alice.py`, `bob/`, `my_course.toml`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

# The setup commands (block "Two commands") are run elsewhere: the first in a fresh venv by
# tests/test_packaging.py, the second verbatim by CI (tests/test_project.py checks .ci/run). The
# benchmark command installs PyTorch and JAX from the network and runs for minutes: it is run on
# demand only (its output, bench/RESULTS.md, is checked against the README by test_project).
ELSEWHERE = {
    "python3 -m pip install . && python3 -m gradverify verify": "tests/test_packaging.py",
    "python3 -m pip install -e '.[test]' && python3 -m pytest --slow": ".ci/run (tests/test_project.py)",
    "python3 -m pip install -e '.[bench]' && python3 bench/run.py": "on demand: network and minutes",
    # The Dask section: the extra is in the test extra; a scheduler and workers of the reader's own
    # machines (HOST, scheduler.json) are placeholders, the same path run by tests/test_distributed.py
    # against a scheduler it starts by address and by scheduler file.
    "python3 -m pip install 'gradverify[distributed]'": "the test extra installs distributed",
    "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=1 dask scheduler": "tests/test_distributed.py (a scheduler started by the test)",
    "dask worker tcp://HOST:8786 --nworkers 8 --nthreads 1": "tests/test_distributed.py (workers started by the test)",
    "gradverify grade submissions/ --assignment ex4 --out graded/ --scheduler tcp://HOST:8786": "tests/test_distributed.py",
    "gradverify grade submissions/ --assignment ex4 --out graded/ --scheduler scheduler.json": "tests/test_distributed.py",
}

# command -> (exit code, words its output must hold)
EXPECT = {
    # A short tour
    "gradverify verify": (0, ["built-in example", "PASS: backprop and numeric agree with the exact values on all 38 parameters"]),
    "gradverify verify 4-8-8-2:tanh/softmax --init random --seed 1 --lambda 1 -m 16": (0, ["4-8-8-2:tanh/softmax", "PASS"]),
    "gradverify verify 784-128-10 --init random -m 10": (0, ["101770 parameters", "PASS"]),
    "gradverify verify --npz mine.npz --lambda 3": (0, ["npz mine.npz", "PASS"]),
    "gradverify verify --candidate my_backprop.py:cost_and_grad": (0, ["my_backprop", "PASS"]),
    "gradverify verify --candidate my_backprop.py:cost_and_grad --report": (0, ["report: reports/verify-3-5-3/report.json"]),
    "gradverify suite --examples 200": (0, ["PASS: all"]),
    "gradverify suite --candidate my_backprop.py:cost_and_grad --lecture": (0, ["hidden sigmoid; outputs sigmoid", "PASS: all"]),
    "gradverify grade submissions/ --assignment ex4 --out graded/": (1, ["correct_reference", "bug_regularized_bias"]),
    "gradverify graph add-mul": (0, ["-12"]),
    # Grading a class
    "gradverify grade submissions/ --assignment ex4 --out graded/ --jobs 2": (1, ["1 of 3 passed"]),
    "gradverify grade alice.py bob/ --assignment two-layer-relu --set reg_scale=0.5": (1, ["alice", "bob"]),
    "gradverify grade layers/ --assignment layers-api --set missing=zero": (1, ["alice", "bob", "1 of 2 passed"]),
    # Beyond one machine
    "gradverify grade submissions/ --assignment ex4 --out graded/ --scheduler local:2": (1, ["1 of 3 passed"]),
    "gradverify suite --candidate my_backprop.py:cost_and_grad --lecture --examples 500 --scheduler local:2": (0, ["PASS: all"]),
    "gradverify grade submissions/ --assignment my_course.toml --report": (1, ["report: "]),
    # inline
    "gradverify --help": (0, ["usage: gradverify", "verify", "grade"]),  # the benchmark row's start-up commands
    "gradverify verify --sources backprop": (0, ["NO VERDICT: only backprop ran"]),
    "gradverify graph sigmoid-neuron": (0, ["0.73"]),
    'gradverify graph "max(x*y, log(1+x^2)) / tanh(y)" --at x=1.5,y=0.5': (0, ["SymPy"]),
    "gradverify report --schema": (0, ['"$schema"']),
    "gradverify report reports/example/report.json --format md": (0, ["# ", "b1"]),
    "gradverify verify --candidate tests/examples/buggy_bias.py:cost_and_grad --report reports/example": (1, ["report: reports/example"]),
    'gradverify verify 1-1-1 -m 1 --partial "b2[0]"': (0, ["∂J/∂b2[0]"]),
    # output blocks
    "gradverify verify --candidate tests/examples/student_native.py:cost_and_grad --rows 3 --sources exact,backprop": (1, []),
    "gradverify verify 10000-10000-10": (2, []),
}
SLOW = {"gradverify verify 784-128-10 --init random -m 10", "gradverify suite --examples 200",
        "gradverify verify --candidate my_backprop.py:cost_and_grad --report",
        "gradverify verify --candidate tests/examples/buggy_bias.py:cost_and_grad --report reports/example",
        "gradverify suite --candidate my_backprop.py:cost_and_grad --lecture",
        "gradverify suite --candidate my_backprop.py:cost_and_grad --lecture --examples 500 --scheduler local:2",
        "gradverify verify 4-8-8-2:tanh/softmax --init random --seed 1 --lambda 1 -m 16"}


def _fenced() -> list[tuple[str, str]]:
    """Every fenced block of the README as (language, text), read fence by fence."""
    out, lang, lines = [], None, []
    for line in README.splitlines():
        if line.startswith("```"):
            if lang is None:
                lang, lines = line[3:].strip(), []
            else:
                out.append((lang, "\n".join(lines) + "\n"))
                lang = None
        elif lang is not None:
            lines.append(line)
    return out


def _blocks(lang: str) -> list[str]:
    return [text for kind, text in _fenced() if kind == lang]


def _bash_commands() -> list[str]:
    out = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def _inline_commands() -> list[str]:
    found = re.findall(r"`((?:gradverify )?verify [^`]*|gradverify [^`]*)`", README)
    out = []
    for cmd in found:
        cmd = " ".join(cmd.split())  # an inline command may be wrapped across lines
        cmd = cmd if cmd.startswith("gradverify ") else "gradverify " + cmd
        if re.search(r"\b[A-Z]{2,}|[\[…|]", cmd.replace('"b2[0]"', "")) or cmd == "gradverify verify":
            continue  # a synopsis with placeholders, not a command
        out.append(cmd)
    return out


def _output_blocks() -> list[tuple[str, list[str]]]:
    out = []
    for block in _blocks(""):
        lines = block.splitlines()
        if lines and lines[0].startswith("$ gradverify "):
            out.append((lines[0][2:], lines[1:]))
    return out


WORKSPACE_SUBMISSIONS = ("correct_reference.py", "bug_regularized_bias.py", "bug_sign_flipped.py")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """What the README's reader has: their function, their arrays, a class's submissions, a profile."""
    from gradverify.problems import debug_problem

    ws = tmp_path_factory.mktemp("readme")
    (ws / "tests").symlink_to(ROOT / "tests")
    shutil.copy(ROOT / "tests" / "examples" / "my_backprop.py", ws / "my_backprop.py")
    p = debug_problem()
    np.savez(ws / "mine.npz", X=p.X, y=p.labels, **p.params)
    (ws / "submissions").mkdir()
    for name in WORKSPACE_SUBMISSIONS:
        shutil.copy(ROOT / "tests" / "submissions" / "ex4" / name, ws / "submissions" / name)
    shutil.copy(ROOT / "tests" / "submissions" / "two_layer" / "correct_two_layer.py", ws / "alice.py")
    for student, name in (("alice", "student_layers.py"), ("bob", "buggy_layers.py")):  # a class: a folder per student
        (ws / "layers" / student).mkdir(parents=True)
        shutil.copy(ROOT / "tests" / "layers" / name, ws / "layers" / student / "layers.py")
    (ws / "bob").mkdir()
    shutil.copy(ROOT / "tests" / "submissions" / "two_layer" / "bug_half_reg_gradient.py", ws / "bob" / "bob.py")
    (ws / "my_course.toml").write_text('base = "ex4"\nname = "my_course"\n[rubric]\ncost = 20\n', encoding="utf-8")
    shutil.copytree(ROOT / "reports" / "example", ws / "reports" / "example")
    grader = ws / "autograder"
    (grader / "submission").mkdir(parents=True)
    (grader / "results").mkdir()
    shutil.copy(ROOT / "tests" / "submissions" / "ex4" / "correct_reference.py", grader / "submission" / "nnCostFunction.py")
    return ws


def _run(command: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    argv = shlex.split(command)
    assert argv[0] == "gradverify"
    return subprocess.run([sys.executable, "-m", "gradverify", *argv[1:]], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "100", **(env or {})})


def _layers_commands() -> set[str]:
    """The Layers section's commands: run, with their exit codes, by tests/test_layers_cli.py."""
    section = README.split("## Layers", 1)[1].split("\n## ", 1)[0] if "## Layers" in README else ""
    found = {re.sub(r"\s+#.*$", "", line).strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)
             for line in block.splitlines() if line.strip()}
    return found | {c for c in _inline_commands() if c.startswith("gradverify layer")}


def test_every_readme_command_has_an_expectation_and_every_expectation_a_command():
    commands = set(_bash_commands()) | set(_inline_commands()) | {c for c, _ in _output_blocks()}
    layers = _layers_commands()
    assert all(c.startswith("gradverify layer") for c in layers)
    commands -= layers
    block = next(b for b in _blocks("bash") if "AUTOGRADER" in b)  # run whole by test_the_gradescope_block_runs_as_written
    gradescope = {re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines()}
    unexplained = commands - set(EXPECT) - set(ELSEWHERE) - gradescope
    assert not unexplained, f"README commands without an expectation in this test: {sorted(unexplained)}"
    stale = set(EXPECT) - commands
    assert not stale, f"expectations for commands the README no longer has: {sorted(stale)}"


def _check(command: str, workspace: Path) -> None:
    code, words = EXPECT[command]
    res = _run(command, workspace)
    out = res.stdout + res.stderr
    assert res.returncode == code, f"{command!r} exited {res.returncode}, the README implies {code}:\n{out[-3000:]}"
    assert "Traceback" not in out
    for w in words:
        assert w in out, f"{command!r} did not print {w!r}:\n{out[-3000:]}"


@pytest.mark.parametrize("command", [c for c in EXPECT if c not in SLOW and not c.startswith("gradverify grade")])
def test_a_readme_command_does_what_the_readme_says(command, workspace):
    _check(command, workspace)


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c in EXPECT if c in SLOW or c.startswith("gradverify grade")])
def test_a_slower_readme_command_does_what_the_readme_says(command, workspace):
    _check(command, workspace)


@pytest.mark.slow
def test_the_gradescope_block_runs_as_written(workspace):
    block = next(b for b in _blocks("bash") if "AUTOGRADER" in b)
    env = {**os.environ, "AUTOGRADER": str(workspace / "autograder"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    res = subprocess.run(["bash", "-e", "-c", block], cwd=workspace, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    import json

    results = json.loads((workspace / "autograder" / "results" / "results.json").read_text())
    assert results["score"] == results["max_score"] > 0


def test_the_failing_candidate_example_prints_what_the_readme_shows(workspace):
    (command, shown), = [(c, lines) for c, lines in _output_blocks() if "student_native" in c]
    res = _run(command, workspace)
    assert res.returncode == 1, res.stdout + res.stderr  # fails, and for the reason shown: the biases are regularized
    printed = res.stdout.splitlines()
    for line in shown:
        if line.strip() != "…":
            assert line in printed, f"the README shows {line!r}; the command printed:\n{res.stdout}"


def test_the_memory_refusal_example_is_what_the_command_says(workspace):
    (command, shown), = [(c, lines) for c, lines in _output_blocks() if "10000-10000-10" in c]
    from gradverify import sizing
    from gradverify.spec import parse_spec

    if sizing.estimate(parse_spec("10000-10000-10"), 5, ("exact", "backprop", "numeric")).fits():
        pytest.skip("this machine has the memory for 10000-10000-10: the README's refusal is for one with less")
    res = _run(command, workspace)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    pattern = re.escape(shown[0])
    for size in set(re.findall(r"[\d.]+ [GMT]B", shown[0])):  # what the machine has left varies; the message does not
        pattern = pattern.replace(re.escape(size), r"[\d.]+ [GMT]B")
    assert re.fullmatch(pattern, res.stderr.strip()), res.stderr


def test_the_spec_file_example_builds_the_network_it_describes(workspace):
    block, = _blocks("toml")
    (workspace / "spec.toml").write_text(block, encoding="utf-8")
    from gradverify.spec import load_spec_file, parse_spec

    assert load_spec_file(workspace / "spec.toml") == parse_spec("4-8-8-2:tanh/softmax", lam=1.0)
    assert _run("gradverify verify spec.toml --sources exact,backprop", workspace).returncode == 0


def _python_block(marker: str) -> str:
    return next(b for b in _blocks("python") if marker in b)


def test_the_python_api_example_runs(workspace, capsys):
    namespace: dict = {}
    exec(compile(_python_block("assert_gradient_matches(mine"), "README.md", "exec"), namespace)
    assert namespace["comp"].verdict == "pass"
    assert capsys.readouterr().out.startswith("PASS")


def test_the_gradcheck_example_prints_what_its_comments_say(capsys):
    block = _python_block("gradcheck(f,")
    exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    said = [m.strip() for m in re.findall(r"print\(.*\)\s+#\s*(.*)", block)]
    assert len(printed) == len(said) == 2
    for out, comment in zip(printed, said):
        pattern = ".*".join(re.escape(part) for part in comment.split("…"))
        assert re.fullmatch(pattern, out), f"the README says {comment!r}; it printed {out!r}"
    assert printed[0].startswith("PASS") and "complex-step" in printed[0]
    assert printed[1].startswith("FAIL") and "worst x[" in printed[1]


@pytest.mark.slow
def test_the_test_suite_example_passes_under_pytest_with_the_plugin(tmp_path):
    (tmp_path / "test_mine.py").write_text(_python_block("def test_my_engine"), encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_mine.py"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and "2 passed" in res.stdout, res.stdout + res.stderr
