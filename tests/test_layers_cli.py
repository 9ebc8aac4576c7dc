"""``gradverify layer``: the catalogue, verdicts and exit codes, candidates, reports and the suite."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from gradverify.cli import main

sys.path.insert(0, str(Path(__file__).parent / "layers"))

LAYERS_DIR = Path(__file__).parent / "layers"
STUDENT = str(LAYERS_DIR / "student_layers.py")
BUGGY = str(LAYERS_DIR / "buggy_cs231n.py")


def test_the_catalogue_lists_every_layer_with_its_cs231n_functions(capsys):
    assert main(["layer", "--list"]) == 0
    out = capsys.readouterr().out
    from gradverify.layers import LAYERS
    for spec in LAYERS.values():
        assert spec.name in out and spec.api[0] in out


def test_a_layer_with_gradverifys_own_sources_passes_and_prints_the_table(capsys):
    assert main(["layer", "conv", "--shape", "N=1,C=2,H=5,W=5,F=2", "--set", "stride=2", "--rows", "5"]) == 0
    out = capsys.readouterr().out
    assert "PASS: backprop, numeric agree with the exact partials" in out
    assert "stride=2" in out and "more partials not shown" in out


def test_json_output_is_machine_readable(capsys):
    assert main(["layer", "lstm_step", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "pass" and doc["case"]["layer"] == "lstm_step"
    assert len(doc["parameters"]) == doc["case"]["n_partials"] == 3 * 5 + 3 * 6 * 2 + 5 * 24 + 6 * 24 + 24
    assert set(doc["verdicts"]) == {"backprop", "numeric"}


def test_a_correct_candidate_passes_even_with_the_alt_backward(capsys):
    assert main(["layer", "batchnorm", "--candidate", f"{STUDENT}:batchnorm_backward_alt", "--sources", "exact"]) == 0
    assert "PASS: student_layers agrees with the exact partials" in capsys.readouterr().out


def test_a_buggy_candidate_fails_with_the_diagnosis_in_plain_words(capsys):
    assert main(["layer", "batchnorm", "--candidate", BUGGY]) == 1
    out = capsys.readouterr().out
    assert "FAIL: buggy_cs231n is wrong" in out
    assert "dx misses the mean term" in out
    assert "backprop" in out  # gradverify's own sources still shown agreeing


def test_stride_ignored_in_dw_is_named(capsys):
    assert main(["layer", "conv", "--candidate", BUGGY, "--set", "stride=2", "--shape", "H=7,W=7", "--sources", "exact"]) == 1
    assert "stride ignored in dw" in capsys.readouterr().out


def test_a_candidate_that_crashes_is_a_failed_check_naming_its_line(capsys):
    assert main(["layer", "relu", "--candidate", BUGGY]) == 1
    out = capsys.readouterr().out
    assert "FAIL: The relu_backward of 'buggy_cs231n' raised RuntimeError: not implemented yet" in out
    assert "buggy_cs231n.py:" in out


@pytest.mark.parametrize("argv, words", [
    (["layer"], "No layer given"),
    (["layer", "convolution"], "No layer named 'convolution'"),
    (["layer", "conv", "--shape", "N=0"], "must be a positive integer"),
    (["layer", "conv", "--shape", "N"], "Cannot read --shape"),
    (["layer", "conv", "--set", "stride=0"], "stride must be an integer"),
    (["layer", "conv", "--sources", "exact,oracle"], "Unknown gradient source"),
    (["layer", "affine", "--candidate", f"{STUDENT}:dense_forward"], "No function 'dense_forward'"),
    (["layer", "affine", "--candidate", "no/such/file.py"], "No such candidate file"),
])
def test_bad_input_is_a_clear_error_and_exit_2(argv, words, capsys):
    assert main(argv) == 2
    assert words in capsys.readouterr().err


def test_integers_plant_kinks_that_pass_as_kinks(capsys):
    assert main(["layer", "max_pool", "--integers", "--seed", "1", "--set", "stride=1"]) == 0
    out = capsys.readouterr().out
    assert "sit on a kink" in out and "more than once" in out


def test_report_writes_json_markdown_and_html(tmp_path, capsys):
    out_dir = tmp_path / "rep"
    assert main(["layer", "batchnorm", "--candidate", BUGGY, "--report", str(out_dir)]) == 1
    doc = json.loads((out_dir / "report.json").read_text())
    assert doc["kind"] == "layer" and doc["verdict"] == "fail"
    assert doc["reproduce"].startswith("gradverify layer batchnorm --shape N=4,D=5") and "--candidate" in doc["reproduce"]
    assert any(d["kind"] == "norm-mean-term" for d in doc["comparison"]["diagnoses"]["buggy_cs231n"])
    md = (out_dir / "report.md").read_text()
    assert "misses the mean term" in md and "## Reproduce" in md
    html = (out_dir / "report.html").read_text()
    assert html.count("<img src=\"data:image/png;base64,") == 3 * 3  # backprop, numeric, candidate × x, gamma, beta
    assert "<script" not in html


def test_the_suite_passes_a_correct_candidate(capsys):
    assert main(["layer", "conv", "--suite", "--examples", "8", "--candidate", STUDENT]) == 0
    assert "PASS: all 8 cases agree" in capsys.readouterr().out


def test_the_suite_shrinks_a_failure_and_its_reproduce_command_fails_the_same_way(capsys, tmp_path):
    assert main(["layer", "batchnorm", "--suite", "--examples", "10", "--candidate", BUGGY, "--report", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert json.loads((tmp_path / "report.json").read_text())["verdict"] == "fail"
    assert "smallest failing case (shrunk)" in out and "misses the mean term" in out
    command = next(line.split("reproduce: ", 1)[1] for line in out.splitlines() if line.startswith("reproduce: "))
    argv = shlex.split(command)
    assert argv[:3] == ["gradverify", "layer", "batchnorm"]
    assert main(argv[1:]) == 1
    assert "misses the mean term" in capsys.readouterr().out


def _readme_layer_section() -> str:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    return text.split("## Layers: CS231n's forward/backward pairs", 1)[1].split("\n## ", 1)[0]


def test_the_readmes_layer_commands_run_with_the_exit_codes_it_implies(capsys, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    block = _readme_layer_section().split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    assert len(commands) >= 6
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "gradverify"
        expected = 1 if "buggy" in command else 0
        assert main(argv[1:]) == expected, command
        out = capsys.readouterr().out
        if "buggy" in command:
            assert "dx misses the mean term" in out


def test_the_readmes_layer_python_example_runs(monkeypatch):
    import sys

    import student_layers
    block = _readme_layer_section().split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setitem(sys.modules, "my_layers", student_layers)
    namespace: dict = {"print": lambda *a: None}
    exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["comp"].verdict == "pass"


def test_a_loss_layer_returning_a_dict_as_its_loss_is_its_failure_said_truly(tmp_path, capsys):
    """({"loss": loss}, dx) with a right dx: the diagnosis formatted a missing cost error (None) and crashed, a
    grader-error in layers-api grading; and the summary said the layer was 'wrong at its partials'."""
    (tmp_path / "layers.py").write_text(
        "import numpy as np\n\ndef svm_loss(x, y):\n    N = x.shape[0]\n    correct = x[np.arange(N), y]\n"
        "    margins = np.maximum(0, x - correct[:, None] + 1.0)\n    margins[np.arange(N), y] = 0\n"
        "    num_pos = np.sum(margins > 0, axis=1)\n    dx = np.zeros_like(x)\n    dx[margins > 0] = 1\n"
        "    dx[np.arange(N), y] -= num_pos\n    return {'loss': np.sum(margins) / N}, dx / N\n")
    assert main(["layer", "svm_loss", "--candidate", str(tmp_path / "layers.py")]) == 1
    out = capsys.readouterr().out
    assert "FAIL: layers has the right partials, but its forward output could not be used" in out
    assert "could not be used: it is not numbers of the expected shape" in out
