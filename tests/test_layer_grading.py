"""Grading a layers.py (``--assignment layers-api``): one rubric item per layer, through the sandbox.

The corpus of ``tests/layers/`` graded as a class in one batch: the correct layers at full marks;
the classic bugs planted six submissions' worth at a time (one bug per layer in each, so a bug
must fail its own item and no other), each failing with the diagnosis its corpus entry names;
hostile and broken functions (raising, exiting, hanging, returning text, NaN, no cache, too much)
each failing their own item only; a skeleton whose stubs are not attempted.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from gradverify.cli import main
from gradverify.errors import SpecError
from gradverify.grading.batch import discover, grade_batch
from gradverify.grading.grader import grade_submission
from gradverify.grading.layer_profile import ITEMS, LayerProfile, function_names
from gradverify.profiles import get_profile, load_profile

LAYERS_DIR = Path(__file__).parent / "layers"
EXTRA = Path(__file__).parent / "submissions" / "layers_api"

import sys  # noqa: E402

sys.path.insert(0, str(LAYERS_DIR))
import buggy_layers  # noqa: E402

_ENTRY = "layers.py"


def _names(bug: buggy_layers.Bug) -> list[str]:
    item = ITEMS[bug.layer]
    return {"backward": [item.backward], "loss": [item.forward], "forward": [item.forward],
            "both": [item.forward, item.backward]}[bug.replaces]


def _bug_groups() -> list[list[tuple[int, buggy_layers.Bug]]]:
    """The planted bugs, grouped so that no group has two bugs in one layer."""
    by_layer: dict[str, list] = defaultdict(list)
    for i, bug in enumerate(buggy_layers.BUGS):
        by_layer[bug.layer].append((i, bug))
    groups: list[list] = [[] for _ in range(max(map(len, by_layer.values())))]
    for bugs in by_layer.values():
        for k, entry in enumerate(bugs):
            groups[k].append(entry)
    return groups


def _folder(root: Path, name: str, entry_text: str, *, bugs: bool = False) -> Path:
    folder = root / name
    folder.mkdir()
    shutil.copy(LAYERS_DIR / "student_layers.py", folder)
    if bugs:
        shutil.copy(LAYERS_DIR / "buggy_layers.py", folder)
    (folder / _ENTRY).write_text(entry_text)
    return folder


def _build(root: Path) -> dict[str, list]:
    """The class: folder submissions whose layers.py imports the correct layers and plants bugs by name."""
    _folder(root, "correct", "from student_layers import *  # noqa\n")
    groups = {}
    for k, group in enumerate(_bug_groups()):
        lines = ["from student_layers import *  # noqa", "import buggy_layers as _bugs", ""]
        for i, bug in group:
            names = _names(bug)
            lines.append(f"{', '.join(names)} = _bugs.BUGS[{i}].function  # {bug.layer}: {bug.name}")
        _folder(root, f"bugs_{k}", "\n".join(lines) + "\n", bugs=True)
        groups[f"bugs_{k}"] = [bug for _, bug in group]
    _folder(root, "hostile", (EXTRA / "hostile_overrides.py").read_text())
    return groups


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    groups = _build(root)
    out = tmp_path_factory.mktemp("graded")
    subs = discover([*sorted(p for p in root.iterdir()), EXTRA / "skeleton_layers.py", EXTRA / "older_style_layers.py"],
                    entry=_ENTRY)
    prof = get_profile("layers-api")
    grades = grade_batch(subs, prof, prof.resolve({}), out, jobs=2, examples=3, seed=7, call_timeout=3.0, entry=_ENTRY,
                         report=True)
    return out, {Path(g.path).stem: g for g in grades}, groups


def _checks(grade) -> dict:
    return {c.name: c for c in grade.checks}


@pytest.mark.slow
def test_the_correct_layers_get_full_marks_on_every_item(graded):
    _, grades, _ = graded
    g = grades["correct"]
    assert g.verdict == "pass" and g.score == g.max_score == 10 * len(ITEMS), [c.message for c in g.checks if not c.passed]
    assert set(_checks(g)) == set(ITEMS)
    assert all("generated case" in c.message for c in g.checks)


@pytest.mark.slow
def test_every_planted_bug_fails_its_own_item_with_its_diagnosis_and_no_other(graded):
    _, grades, groups = graded
    assert sum(map(len, groups.values())) == len(buggy_layers.BUGS)
    wrong = []
    for name, bugs in groups.items():
        checks = _checks(grades[name])
        failed = {c for c, check in checks.items() if not check.passed}
        assert failed == {b.layer for b in bugs}, (name, failed ^ {b.layer for b in bugs})
        for bug in bugs:
            check = checks[bug.layer]
            findings = [f for f in grades[name].diagnosis if f.where[:1] == (bug.layer,)]
            top = findings[0] if findings else None
            if top is None or top.kind != bug.kind or bug.words not in top.message or bug.words not in check.message:
                wrong.append((bug.layer, bug.name, top and (top.kind, top.message), check.message))
            assert check.points == 0 and "Reproduce it: gradverify layer " + bug.layer in check.message
    assert not wrong, wrong


@pytest.mark.slow
def test_hostile_and_broken_functions_fail_their_own_item_only(graded):
    _, grades, _ = graded
    g = grades["hostile"]
    checks = _checks(g)
    expected = {
        "relu": "relu_backward raised an exception",
        "tanh": "died",
        "sigmoid": "did not finish in time",
        "affine": "dw is not an array of numbers (got a str of length 3)",
        "max_pool": "dx is not an array of numbers (got a dict of length 1)",
        "conv": "conv_forward_naive returned a value of type ndarray, expected (out, cache)",
        "svm_loss": "The loss is off",
        "rnn_step": "cannot be graded",
        "temporal_affine": "temporal_affine_backward raised an exception",
    }
    failed = {name for name, c in checks.items() if not c.passed}
    assert failed == set(expected), failed ^ set(expected)
    for name, words in expected.items():
        assert words in checks[name].message, (name, checks[name].message)
    assert "not implemented yet" in checks["relu"].details and "not implemented yet" not in checks["relu"].message
    assert not {"layernorm", "lstm_step", "batchnorm_alt"} & set(checks)  # not attempted: excluded, and said so
    said = " ".join(g.notes)
    assert "layernorm (layernorm_forward is a stub: it returns None)" in said and "lstm_step (there is no function lstm_step_forward)" in said
    assert "wrote into their input arrays" in checks["batchnorm"].message and checks["batchnorm"].passed
    assert checks["dropout"].passed and checks["lstm"].passed
    assert "batchnorm_alt (there is no function batchnorm_backward_alt)" in said
    assert g.max_score == 10 * (len(ITEMS) - 3) and g.score == 10 * (len(ITEMS) - 3 - len(expected))


@pytest.mark.slow
def test_a_skeleton_is_graded_on_the_layers_it_implements(graded):
    _, grades, _ = graded
    g = grades["skeleton_layers"]
    assert g.verdict == "pass" and g.score == g.max_score == 20.0
    assert [c.name for c in g.checks] == ["affine", "relu"]
    said = " ".join(g.notes)
    for stub in ("batchnorm (batchnorm_forward is a stub", "dropout (dropout_forward is a stub: AttributeError",
                 "conv (conv_forward_naive is a stub: it returns None", "max_pool (max_pool_forward_naive is a stub: NotImplementedError",
                 "svm_loss (svm_loss is a stub", "lstm (there is no function lstm_forward)"):
        assert stub in said, stub


@pytest.mark.slow
def test_older_habits_are_graded_for_what_they_are(graded):
    _, grades, _ = graded
    checks = _checks(grades["older_style_layers"])
    assert set(checks) == {"relu", "dropout", "conv", "softmax_loss"}
    assert checks["relu"].passed and checks["dropout"].passed
    assert "reads p as the drop probability" in checks["dropout"].message
    conv = checks["conv"]
    assert not conv.passed and "pad=0" in conv.message and "dx has shape (2, 2, 0, 0)" in conv.message
    softmax = checks["softmax_loss"]
    assert not softmax.passed and "The loss is off" in softmax.message and "backward pass is right" in softmax.message


@pytest.mark.slow
def test_the_batch_writes_feedback_gradescope_and_gradebook_and_resumes(graded):
    out, grades, _ = graded
    folder = next(out.glob("hostile-*"))
    results = json.loads((folder / "results.json").read_text())
    tests = {t["name"]: t for t in results["tests"]}
    assert tests["relu"]["score"] == 0 and tests["dropout"]["score"] == 10 and results["score"] == grades["hostile"].score
    md = (folder / "feedback.md").read_text()
    assert "| relu | 0 / 10 | FAILED |" in md and "not implemented yet" in md
    assert "Not attempted, so not graded" in md and "Not attempted, so not graded" in tests["How your file was read"]["output"]
    bugs = next(out.glob("bugs_0-*"))
    page = (bugs / "report" / "report.html").read_text()
    assert "<img src=\"data:image/png;base64," in page and "transpose" in page  # the first failing item: affine's dw
    assert "report/report.html" in (bugs / "feedback.md").read_text()
    book = (out / "gradebook.csv").read_text()
    assert "bugs_0" in book and "affine" in book
    before = (folder / "feedback.json").read_text()
    subs = discover([Path(g.path) for g in grades.values()], entry=_ENTRY)
    resumed = []
    prof = get_profile("layers-api")
    again = grade_batch(subs, prof, prof.resolve({}), out, jobs=2, examples=3, seed=7, call_timeout=3.0, entry=_ENTRY,
                        report=True, progress=lambda done, total, grade, was_done: resumed.append(was_done))
    assert all(resumed) and len(again) == len(grades)  # nothing graded twice
    assert (folder / "feedback.json").read_text() == before


def test_a_toml_profile_narrows_the_items_weighs_them_and_counts_stubs_as_zero(tmp_path):
    toml = tmp_path / "a1.toml"
    toml.write_text('base = "layers-api"\nname = "assignment-1"\nitems = ["affine", "relu", "conv"]\n'
                    '[settings]\nmissing = "zero"\n[rubric]\naffine = 5\nconv = 20\n[functions]\nrelu = "relu"\n')
    prof = load_profile(toml)
    assert isinstance(prof, LayerProfile) and prof.name == "assignment-1" and list(prof.rubric) == ["affine", "relu", "conv"]
    g = grade_submission(EXTRA / "skeleton_layers.py", prof, prof.resolve({}), examples=2, seed=1)
    checks = _checks(g)
    assert (checks["affine"].points, checks["relu"].points, checks["conv"].points) == (5, 10, 0)
    assert checks["conv"].max_points == 20 and "Not attempted: conv_forward_naive is a stub" in checks["conv"].message
    assert g.verdict == "fail" and g.score == 15 and g.max_score == 35


def test_bad_profiles_and_settings_are_refused_with_what_to_do(tmp_path):
    prof = get_profile("layers-api")
    with pytest.raises(SpecError, match="missing"):
        prof.resolve({"missing": "half"})
    with pytest.raises(SpecError, match="no setting"):
        prof.resolve({"unroll_order": "F"})
    bad = tmp_path / "bad.toml"
    bad.write_text('base = "layers-api"\nitems = ["affine", "transformer"]\n')
    with pytest.raises(SpecError, match="transformer"):
        load_profile(bad)
    bad.write_text('base = "layers-api"\n[rubric]\nconv = -1\n')
    with pytest.raises(SpecError, match="points"):
        load_profile(bad)
    assert function_names(ITEMS["batchnorm"], "batchnorm_backward_alt").forward == "batchnorm_forward"
    assert function_names(ITEMS["conv"], "conv").backward == "conv_backward"
    with pytest.raises(SpecError):
        function_names(ITEMS["conv"], "os.system")


def test_the_grade_command_grades_a_layers_file_and_counts_what_is_not_attempted(tmp_path, capsys):
    out = tmp_path / "graded"
    argv = ["grade", str(EXTRA / "skeleton_layers.py"), "--assignment", "layers-api", "--set", "missing=zero", "--out", str(out),
            "--examples", "2", "--seed", "3"]
    assert main(argv) == 1  # 19 layers not attempted, each worth 0 of its 10
    said = capsys.readouterr().out
    assert "layers-api profile (missing=zero, inputs=note)" in said and "20/210" in said
    feedback = json.loads(next(out.glob("skeleton_layers-*/feedback.json")).read_text())
    assert [c["name"] for c in feedback["checks"]] == list(ITEMS) and feedback["score"] == 20


_OPAQUE = '''
import numpy as np

def relu_forward(x):
    return np.maximum(x, 0), (lambda: x, object())      # a cache no pipe can carry

def relu_backward(dout, cache):
    x = cache[0]()
    return dout * (x > 0)

def tanh_forward(x):
    return np.tanh(x)                                   # no cache

def tanh_backward(dout, cache):
    raise ValueError("never reached")

def sigmoid_forward(x):
    out = 1 / (1 + np.exp(-x))
    return out, out

def sigmoid_backward(dout, cache):
    raise ZeroDivisionError("in the backward")
'''


def test_the_pair_runs_in_the_worker_so_any_cache_works_and_a_backward_failure_is_reported_cleanly(tmp_path):
    import numpy as np

    from gradverify.grading.protocol import Chain
    from gradverify.grading.sandbox import Sandbox

    path = tmp_path / "layers.py"
    path.write_text(_OPAQUE)
    x, dout = np.array([[-1.0, 2.0]]), np.array([[3.0, 4.0]])
    with Sandbox(path) as sb:
        assert sb.start().ok
        res = sb.call("relu_forward", (x,), chain=Chain("relu_backward", (dout,), 1))
        assert res.ok and res.value["form"] is None
        assert np.array_equal(res.value["head"][0], [[0.0, 2.0]]) and np.array_equal(res.value["tail"], [[0.0, 4.0]])
        alone = sb.call("relu_forward", (x,), chain=Chain(None, (), 1))
        assert alone.ok and alone.value["tail"] is None and len(alone.value["head"]) == 1
        res = sb.call("tanh_forward", (x,), chain=Chain("tanh_backward", (dout,), 1))
        assert res.ok and res.value == {"head": None, "tail": None, "form": ["ndarray", -1]}
        res = sb.call("sigmoid_forward", (x,), chain=Chain("sigmoid_backward", (dout,), 1))
        assert res.kind == "exception" and "in the backward" in res.error  # not a protocol error: the worker lives on
        res = sb.call("sigmoid_forward", (x,), chain=Chain("no_such_backward", (dout,), 1))
        assert res.kind == "target" and "no_such_backward" in res.error
        assert sb.call("relu_forward", (x,), chain=Chain(None, (), 1)).ok and sb.restarts == 0
        with pytest.raises(ValueError):
            sb.call("relu_forward", (x,), chain=Chain("os.system(1)", (), 1))


def test_a_file_that_does_not_load_fails_every_item_and_says_why_once(tmp_path):
    path = tmp_path / "layers.py"
    path.write_text("import numpy as np\n\ndef affine_forward(x, w, b):\n    return x @ w + b, None\n\nraise RuntimeError('half done')\n")
    prof = get_profile("layers-api")
    g = grade_submission(path, prof, prof.resolve({}), examples=1)
    assert g.verdict == "error" and g.score == 0 and g.max_score == 10 * len(ITEMS)
    first, *rest = g.checks
    assert "did not load" in first.message and "half done" in first.details
    assert all("the first item says why" in c.message and not c.details for c in rest)
