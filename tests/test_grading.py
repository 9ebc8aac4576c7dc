"""Grading: the corpus (every bug fails, every correct one passes, diagnoses named), outputs, resume."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gradverify.cli import main
from gradverify.grading.batch import discover, grade_batch
from gradverify.grading.grader import grade_submission
from gradverify.profiles import get_profile

CORPUS = Path(__file__).parent / "submissions"
# The classic corpus is written for fixed conventions (labels 0..K-1, C order): pinned, as an instructor
# pins them with --set, so that a shifted label or a Fortran-order gradient is a bug, not a convention.
FIXED = ("label_base", "unroll_order", "y_form")

# submission -> what the grader must name: a diagnosis kind (top finding) or, for bugs that only
# a check can see, the failing check.
EXPECTED = {
    "bug_averaged_over_outputs_too": ("diagnosis", "scale"),
    "bug_bias_column_kept_in_delta": ("check", "shapes"),
    "bug_bias_gradient_not_averaged": ("diagnosis", "scale"),
    "bug_cost_missing_1_over_m": ("diagnosis", "cost-only"),
    "bug_derivative_on_preactivation": ("diagnosis", "activation-derivative"),
    "bug_grad_missing_1_over_m": ("diagnosis", "scale"),
    "bug_labels_shifted": ("diagnosis", "labels"),
    "bug_mutates_its_input": ("check", "inputs_unmodified"),
    "bug_no_activation_derivative": ("diagnosis", "activation-derivative"),
    "bug_no_reg_in_cost": ("diagnosis", "cost-only"),
    "bug_no_reg_in_gradient": ("diagnosis", "missing-regularization"),
    "bug_no_regularization_anywhere": ("diagnosis", "missing-regularization"),
    "bug_numerical_gradient": ("diagnosis", "numerical-gradient"),  # told by its cost on a large network
    "bug_reg_missing_m": ("diagnosis", "regularization-scale"),
    "bug_regularized_bias": ("diagnosis", "regularized-bias"),
    "bug_sigmoid_gradient_of_activation": ("diagnosis", "activation-derivative"),
    "bug_sign_flipped": ("diagnosis", "sign"),
    "bug_unrolled_in_fortran_order": ("diagnosis", "layout"),
    # the case space's extremes (issue 15): more classes than 10, pre-activations near the textbook limit
    "bug_ten_labels_hardcoded": ("check", "gradient_random"),
    "bug_nan_past_eight": ("check", "gradient_random"),
}


def _by_stem(grades) -> dict:
    return {Path(g.path).stem: g for g in grades}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    out = tmp_path_factory.mktemp("graded")
    subs = discover([CORPUS / "ex4"])
    prof = get_profile("ex4")
    grades = grade_batch(subs, prof, prof.resolve({}), out, pinned=FIXED, jobs=2, examples=8)
    return out, _by_stem(grades)


def test_the_corpus_has_at_least_fifteen_bug_kinds_and_several_correct_variants():
    names = {p.stem for p in (CORPUS / "ex4").glob("*.py")}
    assert len({n for n in names if n.startswith("bug_")}) >= 15
    assert len({n for n in names if n.startswith("correct_")}) >= 3
    assert set(EXPECTED) == {n for n in names if n.startswith("bug_")}


def test_every_correct_solution_passes_including_a_numerically_different_one(graded):
    _, grades = graded
    for name in ("correct_reference", "correct_loop", "correct_stable_log"):
        g = grades[name]
        assert g.verdict == "pass" and g.score == g.max_score, (name, [c.message for c in g.checks if not c.passed])


def test_every_bug_fails_and_at_least_ninety_percent_are_diagnosed_right(graded):
    _, grades = graded
    right = []
    for name, (how, what) in EXPECTED.items():
        g = grades[name]
        assert g.verdict == "fail" and g.score < g.max_score, name
        if how == "diagnosis":
            right.append(bool(g.diagnosis) and g.diagnosis[0].kind == what)
        else:
            right.append(not next(c for c in g.checks if c.name == what).passed)
    assert sum(right) / len(right) >= 0.9, [n for n, ok in zip(EXPECTED, right) if not ok]


def test_a_solution_that_passes_the_classic_gradient_check_still_fails(graded):
    g = graded[1]["bug_no_regularization_anywhere"]
    checks = {c.name: c for c in g.checks}
    assert checks["self_consistency"].passed  # its gradient agrees with its own (wrong) cost
    assert not checks["cost"].passed and not checks["gradient_fixed"].passed
    assert any(d.kind == "consistent-wrong-cost" for d in g.diagnosis)


def test_outputs_are_feedback_gradescope_and_a_gradebook(graded):
    out, grades = graded
    g = grades["bug_regularized_bias"]
    md = (out / g.submission / "feedback.md").read_text()
    assert "FAIL" in md and "biases are regularized" in md and "| parameter | expected (exact) | yours |" in md and "Reproduce it" in md
    gs = json.loads((out / g.submission / "results.json").read_text())
    assert gs["score"] == g.score and gs["max_score"] == 100 and gs["stdout_visibility"] == "hidden"
    assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(gs["tests"][0])
    assert sum(t["max_score"] for t in gs["tests"]) == gs["max_score"]
    rows = list(csv.DictReader((out / "gradebook.csv").open()))
    assert len(rows) == len(grades) and {r["submission"] for r in rows} == {g.submission for g in grades.values()}
    assert next(r for r in rows if r["submission"] == grades["correct_reference"].submission)["verdict"] == "pass"
    assert len({r["seed"] for r in rows}) == 1 and rows[0]["seed"].isdigit()  # the batch's secret, for the instructor
    assert rows[0]["seed"] not in md and rows[0]["seed"] not in json.dumps(gs)  # never in a student's files


def test_a_rerun_resumes_without_regrading_or_losing_anything(graded, tmp_path):
    out, grades = graded
    work = tmp_path / "out"
    shutil.copytree(out, work)
    (work / grades["correct_loop"].submission / "feedback.json").unlink()  # as if the grader was killed before it finished this one
    seen = []
    prof = get_profile("ex4")
    again = grade_batch(discover([CORPUS / "ex4"]), prof, prof.resolve({}), work, pinned=FIXED, jobs=1, examples=8,
                        progress=lambda d, t, g, resumed: seen.append((g.submission, resumed)))
    regraded = [name for name, resumed in seen if not resumed]
    assert regraded == [grades["correct_loop"].submission] and len(again) == len(grades)
    assert len(list(csv.DictReader((work / "gradebook.csv").open()))) == len(grades)


def test_other_profiles_grade_their_own_forms():
    for profile, file, verdict, kind in [
        ("layers", "layers/correct_layers.py", "pass", None),
        ("layers", "layers/bug_regularized_bias.py", "fail", "regularized-bias"),
        ("two-layer-relu", "two_layer/correct_two_layer.py", "pass", None),
        ("two-layer-relu", "two_layer/bug_half_reg_gradient.py", "fail", "regularization-scale"),
    ]:
        prof = get_profile(profile)
        g = grade_submission(CORPUS / file, prof, prof.resolve({}), examples=6, pinned=tuple(prof.conventions))
        assert g.verdict == verdict, (file, [c.message for c in g.checks if not c.passed])
        if kind:
            assert g.diagnosis[0].kind == kind


def test_profile_settings_and_toml_profiles_change_how_code_is_called(tmp_path):
    ref = (CORPUS / "ex4" / "correct_reference.py").read_text()
    fortran = tmp_path / "fortran.py"
    fortran.write_text(ref.replace(".ravel()", ".ravel(order='F')").replace(
        "np.reshape(nn_params[:hidden_layer_size * (input_layer_size + 1)],\n                        (hidden_layer_size, input_layer_size + 1))",
        "nn_params[:hidden_layer_size * (input_layer_size + 1)].reshape((hidden_layer_size, input_layer_size + 1), order='F')").replace(
        "np.reshape(nn_params[hidden_layer_size * (input_layer_size + 1):],\n                        (num_labels, hidden_layer_size + 1))",
        "nn_params[hidden_layer_size * (input_layer_size + 1):].reshape((num_labels, hidden_layer_size + 1), order='F')"))
    assert fortran.read_text().count("order='F'") == 4
    one_based = tmp_path / "one_based.py"
    one_based.write_text(ref.replace("np.eye(num_labels)[y]", "np.eye(num_labels)[y - 1]"))
    prof = get_profile("ex4")
    assert grade_submission(one_based, prof, prof.resolve({"label_base": "1"}), examples=5).verdict == "pass"
    toml = tmp_path / "course.toml"
    toml.write_text('base = "ex4"\nname = "course-ex4"\n[settings]\nunroll_order = "F"\n[rubric]\ncost = 20\n')
    course = get_profile(str(toml))
    g = grade_submission(fortran, course, course.resolve({}), examples=5)
    assert g.verdict == "pass", [c.message for c in g.checks if not c.passed]
    assert g.max_score == 105 and g.profile == "course-ex4"


def test_hostile_submissions_fail_cleanly_and_leave_the_others_alone(tmp_path):
    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.copy(CORPUS / "ex4" / "correct_reference.py", batch / "good.py")
    (batch / "loops.py").write_text("def nnCostFunction(*a):\n    while True:\n        pass\n")
    (batch / "exits.py").write_text("import os\nos._exit(3)\n")
    (batch / "cheats.py").write_text("import gradverify\n")
    (batch / "prints.py").write_text('print(\'{"score": 100}\')\ndef nnCostFunction(*a):\n    print("FAKE" * 1000)\n    return 0.0, [0.0]\n')
    prof = get_profile("ex4")
    from gradverify.grading import batch as batch_mod
    grades = _by_stem(batch_mod.grade_batch(discover([batch]), prof, prof.resolve({}), tmp_path / "out", pinned=FIXED, jobs=2, examples=5,
                                            call_timeout=3.0))
    assert grades["good"].verdict == "pass" and grades["good"].score == 100
    for name in ("loops", "exits", "cheats", "prints"):
        assert grades[name].verdict in ("fail", "error") and grades[name].score <= 10, (name, grades[name].score)
    assert "did not finish in time" in grades["loops"].to_dict()["checks"][1]["message"] + grades["loops"].to_dict()["checks"][0]["message"]


def test_the_grade_command_prints_a_table_and_sets_the_exit_code(tmp_path, capsys):
    code = main(["grade", str(CORPUS / "ex4" / "correct_reference.py"), str(CORPUS / "ex4" / "bug_sign_flipped.py"),
                 "--assignment", "ex4", "--out", str(tmp_path), "--examples", "5", "--jobs", "1"])
    out = capsys.readouterr().out
    assert code == 1 and "correct_reference-" in out and "wrong sign" in out and "1 of 2 passed" in out
    assert main(["grade", str(CORPUS / "ex4"), "--assignment", "ex9"]) == 2
    assert "Unknown assignment profile" in capsys.readouterr().err
    assert main(["grade", str(tmp_path / "nothing.py"), "--assignment", "ex4"]) == 2


def _field(stat: Path, index: int) -> str | None:
    """A field of /proc/PID/stat after the command name (0: state, 1: ppid, 2: process group)."""
    try:
        text = stat.read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()[index]


@pytest.mark.slow
def test_a_batch_killed_midway_resumes_without_loss_or_duplicates(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    batch = tmp_path / "batch"
    shutil.copytree(CORPUS / "ex4", batch)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "gradverify", "grade", str(batch), "--assignment", "ex4", "--out", str(out), "--examples", "5", "--jobs", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*/feedback.json"))) < 4:
        time.sleep(0.2)
    group = [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/stat")
             if _field(p, 2) == str(proc.pid)]  # the grader and its pool processes (their process group)
    os.killpg(proc.pid, signal.SIGKILL)  # the grader and its pool, mid-batch
    proc.wait()
    done_before = {p.parent.name for p in out.glob("*/feedback.json")}
    n = len(list(batch.glob("*.py")))
    assert 0 < len(done_before) < n, "the kill should land mid-batch"
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 1 and f"{len(done_before)} already graded (resumed)" in res.stdout
    rows = list(csv.DictReader((out / "gradebook.csv").open()))
    assert sorted(Path(r["path"]).stem for r in rows) == sorted(p.stem for p in batch.glob("*.py"))  # each once
    assert not list(out.glob("**/.*.tmp"))  # torn temporaries of the killed run are cleaned up
    def owner(root: Path) -> int | None:
        try:
            return int((root / "owner").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    left = {p.name for p in Path("/tmp").glob("gradverify-sandbox-*") if owner(p) in group}
    assert group and not left, "the killed grader's sandbox folders were not swept"
    for p in out.glob("*/feedback.json"):
        json.loads(p.read_text())  # every file whole


def test_with_report_every_failing_submission_gets_a_picture_of_its_error(tmp_path):
    prof = get_profile("ex4")
    subs = discover([CORPUS / "ex4" / "bug_regularized_bias.py", CORPUS / "ex4" / "correct_reference.py"])
    grades = _by_stem(grade_batch(subs, prof, prof.resolve({}), tmp_path, pinned=FIXED, jobs=1, examples=5, report=True))
    folder = {stem: tmp_path / g.submission for stem, g in grades.items()}
    page = folder["bug_regularized_bias"] / "report" / "report.html"
    assert page.exists() and "data:image/png;base64," in page.read_text()
    doc = json.loads((folder["bug_regularized_bias"] / "report" / "report.json").read_text())
    assert doc["comparison"]["verdicts"]["yours"]["arrays"]["b1"]["off"] == 5  # the bias column is what is wrong
    assert "report/report.html" in (folder["bug_regularized_bias"] / "feedback.md").read_text()
    assert json.loads((folder["bug_regularized_bias"] / "feedback.json").read_text()).get("report_doc") is None  # kept apart
    assert not (folder["correct_reference"] / "report").exists()


def test_a_submission_of_several_files_is_graded_through_its_entry_module(tmp_path):
    for student in ("alice", "bob"):
        folder = tmp_path / "class" / student
        folder.mkdir(parents=True)
        (folder / "helpers.py").write_text("import numpy as np\n\ndef sigmoid(z):\n    return 1.0 / (1.0 + np.exp(-z))\n")
        ref = (CORPUS / "ex4" / ("correct_reference.py" if student == "alice" else "bug_sign_flipped.py")).read_text()
        (folder / "nnCostFunction.py").write_text("from helpers import sigmoid\n" + ref.replace("def sigmoid(z):", "def _own_sigmoid(z):"))
    subs = discover([tmp_path / "class"], entry="nnCostFunction.py")
    assert [s.path.name for s in subs] == ["alice", "bob"] and [s.name[:-9] for s in subs] == ["alice", "bob"]
    prof = get_profile("ex4")
    grades = _by_stem(grade_batch(subs, prof, prof.resolve({}), tmp_path / "out", pinned=FIXED, jobs=1, examples=5, entry="nnCostFunction.py"))
    assert grades["alice"].verdict == "pass" and grades["bob"].verdict == "fail"
    assert grades["bob"].diagnosis[0].kind == "sign"


# ============================================================================================
# A batch always finishes; names; the lock; student text; reading what came back
# ============================================================================================


def test_a_failure_inside_the_grader_is_that_submissions_grader_error_and_a_rerun_grades_it_again(tmp_path):
    prof = get_profile("ex4")
    settings = dict(prof.resolve({}), unroll_order="X")  # a setting no profile accepts: the grader itself fails
    subs = discover([CORPUS / "ex4" / "correct_reference.py", CORPUS / "ex4" / "bug_sign_flipped.py"])
    grades = grade_batch(subs, prof, settings, tmp_path, jobs=2, examples=3, pinned=("unroll_order",))
    assert [g.verdict for g in grades] == ["grader-error", "grader-error"] and all(g.score == 0 for g in grades)
    assert all("Unknown parameter layout" in g.incident and "profiles.py" in g.incident for g in grades), grades[0].incident
    md = (tmp_path / grades[0].submission / "feedback.md").read_text()
    assert "not your fault" in md
    rows = list(csv.DictReader((tmp_path / "gradebook.csv").open()))
    assert len(rows) == 2 and all(r["incident"] for r in rows)
    again = grade_batch(subs, prof, prof.resolve({}), tmp_path, pinned=FIXED, jobs=1, examples=3)  # grader-error rows are graded again
    assert [g.verdict for g in again] == ["pass", "fail"]


def test_a_writer_that_fails_leaves_a_row_and_the_rest_of_the_batch(tmp_path):
    prof = get_profile("ex4")
    subs = discover([CORPUS / "ex4" / "correct_reference.py", CORPUS / "ex4" / "correct_loop.py"])
    (tmp_path / subs[0].name / "feedback.md").mkdir(parents=True)  # writing feedback.md there cannot work
    grades = grade_batch(subs, prof, prof.resolve({}), tmp_path, pinned=FIXED, jobs=1, examples=3)
    assert grades[0].verdict == "grader-error" and "writing the outputs failed" in grades[0].incident
    assert grades[1].verdict == "pass"
    assert len(list(csv.DictReader((tmp_path / "gradebook.csv").open()))) == 2


def test_two_batches_on_one_output_folder_are_refused(tmp_path, capsys):
    import fcntl
    import os

    from gradverify.errors import InputError

    fd = os.open(tmp_path / ".gradverify.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another batch holds the folder
    try:
        prof = get_profile("ex4")
        with pytest.raises(InputError, match="Another batch is grading into"):
            grade_batch(discover([CORPUS / "ex4" / "correct_reference.py"]), prof, prof.resolve({}), tmp_path, pinned=FIXED)
        assert main(["grade", str(CORPUS / "ex4" / "correct_reference.py"), "--assignment", "ex4", "--out", str(tmp_path)]) == 2
        assert "Another batch" in capsys.readouterr().err
    finally:
        os.close(fd)
    assert not list(tmp_path.glob("*/feedback.json"))  # nothing merged


@pytest.mark.parametrize("name, stem", [
    ("alice.py", "alice"), ("...py", "submission"), ("gradebook.csv.py", "gradebook_csv"), ("report.py", "report"),
    ("=cmd|' -C calc'!A0.py", "cmd_-C_calc_A0"), ("été 2024.py", "t_2024"), ("-rf.py", "rf"), ("folder", "folder"),
])
def test_output_names_are_a_safe_stem_and_a_hash_of_the_name(name, stem):
    from gradverify.grading.batch import CLASS_NAMES, output_name

    out = output_name(Path(name))
    assert out.rsplit("-", 1)[0] == stem and out not in CLASS_NAMES and out == output_name(Path(name))
    assert output_name(Path("alice.py")) != output_name(Path("alice")) != output_name(Path("alice-2.py"))


def test_discovery_gives_unique_names_to_same_named_submissions_in_different_folders(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(CORPUS / "ex4" / "correct_reference.py", tmp_path / folder / "alice.py")
    subs = discover([tmp_path / "a" / "alice.py", tmp_path / "b" / "alice.py"])
    assert len({s.name for s in subs}) == 2 and all(s.name.startswith("alice-") for s in subs)


def test_student_text_is_made_valid_and_escaped_for_each_file():
    from gradverify.grading.text import clean, csv_cell, md_block, md_text, one_line

    assert clean("a\ud800b\x1b[2J\u202ec") == "a\ufffdb\ufffd[2J\ufffdc"
    assert clean("x" * 50, 10).startswith("x" * 10) and "40 characters cut" in clean("x" * 50, 10)
    escaped = md_text("# PASS\n- item\n<script>x</script> [a](b) `c` | d")
    assert not any(line.startswith(("#", "-")) for line in escaped.splitlines())
    assert "<" not in escaped and "\\[a\\]" in escaped and "\\`c\\`" in escaped and "\\|" in escaped
    block = md_block("text\n````\nmore")
    assert block.startswith("`````") and block.endswith("`````")
    assert [csv_cell(v) for v in ("=1+2", "+1", "-2", "@SUM", "ok")] == ["'=1+2", "'+1", "'-2", "'@SUM", "ok"]
    assert one_line("a\n\n b\tc") == "a b c"


@pytest.mark.parametrize("returned, words", [
    ((1.0, [np.zeros((5, 4)), np.zeros((3, 6))]), "a list of 2 arrays of shapes (5, 4), (3, 6)"),
    ((1.0, [[1.0, 2.0], [3.0]]), "ragged"),
    ((1.0, ["a", "b"]), "a list holding a str"),
    ((1.0, np.zeros(38, complex)), "complex"),
    ((1.0, {"x": 1}), "a dict with keys 'x'"),
    ((1.0, None), "None"),
    (("J", np.zeros(38)), "J must be a single number; returned a str"),
    ([1.0, np.zeros(38), 3, 4], "a tuple of 2; returned a list of 4"),
    ((1.0, np.zeros(38), np.zeros(20)), "Theta1_grad has shape (38,), expected (5, 4)"),  # the split form, checked too
    ((1.0, np.zeros((5, 4)), "x"), "Theta2_grad must be a numeric array"),
    ((1.0, np.zeros(38, bool)), "dtype bool"),
    ((1.0, [[[0.0] * 40] * 40] * 40), "must hold 38 numbers"),
])
def test_every_returned_value_is_read_defensively_and_named(returned, words):
    from gradverify.profiles import ResultError

    prof = get_profile("ex4")
    settings = prof.resolve({})
    _, problem = prof.fixed_cases(settings)[0]
    with pytest.raises(ResultError) as err:
        prof.read(problem, settings, returned)
    assert words in err.value.detail


def test_the_cost_probe_tells_backpropagation_from_a_numerical_gradient():
    from gradverify.grading.timing import CostProbe

    def probe(small, large):
        return CostProbe(("3-5-3", "400-25-10"), (38, 10285), (12e-6, 13e-6), small, large)

    honest_loops = probe(3e-4, 0.027)  # a Python loop over every weight (measured: 0.19 P forward passes)
    numerical = probe(1e-3, 0.23)  # forward differences with a lean forward pass (1.6 P)
    assert not honest_loops.numerical and numerical.numerical
    assert "grows with the number of parameters" in numerical.message() and "numerical gradient" in numerical.message()
    # slowing the small calls down on purpose buys at most P/8 forward passes
    assert probe(0.2, 0.23).numerical
    assert not probe(0.0, 0.04).numerical  # too little CPU time to accuse anyone


@pytest.mark.slow
def test_a_pool_process_that_dies_costs_no_row(tmp_path):
    import os
    import signal

    def pool_children() -> list[int]:
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2:].split()[1]) == os.getpid() and b"spawn_main" in cmdline:
                found.append(int(name))
        return found

    killed = []

    def progress(done, total, grade, resumed):
        if not killed:
            for pid in pool_children()[:1]:
                os.kill(pid, signal.SIGKILL)  # a grading process dies mid-batch (out of memory, say)
                killed.append(pid)

    prof = get_profile("ex4")
    names = ["correct_reference", "correct_loop", "bug_sign_flipped", "bug_regularized_bias", "correct_stable_log", "bug_labels_shifted"]
    subs = discover([CORPUS / "ex4" / f"{n}.py" for n in names])
    grades = grade_batch(subs, prof, prof.resolve({}), tmp_path, pinned=FIXED, jobs=2, examples=3, progress=progress)
    assert killed and len(grades) == len(names)
    by_stem = _by_stem(grades)
    assert [by_stem[n].verdict for n in names] == ["pass", "pass", "fail", "fail", "pass", "fail"]  # regraded, not lost
    assert len(list(csv.DictReader((tmp_path / "gradebook.csv").open()))) == len(names)
