"""Attacks written from outside, by someone who read only the README and issue 13: graded by the real CLI.

``tests/submissions/hostile_outsider/`` (written by ``make_hostile.write_outsider``) holds values that
are not what they seem (ndarray subclasses, objects with ``__array__``, object/structured/datetime
dtypes, views of 8 TiB, generators, cycles, NaN payloads), exceptions that fight back, a process
turned against its worker (signals ignored, file descriptors closed or redirected, builtins and
numpy patched, ``sys.modules`` poisoned, the call stack searched), cheats (a cost that remembers
the points it was asked, a numerical gradient in a thread), odd callables and Unicode names, and
two-layer-relu classes whose object model is the weapon; ``build_outsider_names`` adds files whose
names attack the outputs. Each is graded beside honest submissions by ``python -m gradverify grade``
and must get exactly what ``make_hostile.EXPECT`` says, with nothing forged in any output.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gradverify.grading.text import clean, csv_cell

HERE = Path(__file__).parent
SUBMISSIONS = HERE / "submissions"
sys.path.insert(0, str(SUBMISSIONS))
import make_hostile  # noqa: E402  (the corpus builder lives beside the corpus)

OUTSIDER = SUBMISSIONS / "hostile_outsider"
TWINS = ("honest_buggy", "honest_no_reg_in_gradient")
BYSTANDERS = ("correct_reference", "correct_loop")
OPTIONS = ["--examples", "3", "--timeout", "2", "--budget", "10", "--jobs", "2"]
# A secret seed as a batch draws it (63 bits), one that puts a ReLU kink inside the finite-difference stencil
# of a hidden variant of the two-layer net (5 of its 38 partials unsure): given to the two-layer batch.
RELU_KINK_SEED = 382301595974986110


def _grade(klass: Path, out: Path, assignment: str, *extra: str) -> dict:
    """``gradverify grade`` in a process of its own, as an instructor runs it: exit status, output, rows."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    res = subprocess.run([sys.executable, "-m", "gradverify", "grade", str(klass), "--assignment", assignment,
                          "--out", str(out), *OPTIONS, *extra], capture_output=True, timeout=600, env=env)
    raw = (out / "gradebook.csv").read_bytes()
    rows = list(csv.DictReader(raw.decode("utf-8").splitlines()))
    return {"code": res.returncode, "stdout": res.stdout, "stderr": res.stderr, "raw": raw, "rows": rows, "out": out,
            "by_path": {r["path"]: r for r in rows}}


@pytest.fixture(scope="module")
def ex4(tmp_path_factory):
    root = tmp_path_factory.mktemp("outsider")
    klass = root / "class"
    klass.mkdir()
    for path in OUTSIDER.glob("*.py"):
        if not path.name.startswith("two_layer_"):
            shutil.copy(path, klass / path.name)
    for name in TWINS:
        shutil.copy(SUBMISSIONS / "hostile" / f"{name}.py", klass / f"{name}.py")
    for name in BYSTANDERS:
        shutil.copy(SUBMISSIONS / "ex4" / f"{name}.py", klass / f"bystander_{name}.py")
    names = make_hostile.build_outsider_names(klass)
    links = make_hostile.build_outsider_links(klass, klass / f"bystander_{BYSTANDERS[0]}.py")
    batch = _grade(klass, root / "out", "ex4", "--report")
    batch.update(klass=klass, names=names, links=links)
    return batch


@pytest.fixture(scope="module")
def two_layer(tmp_path_factory):
    root = tmp_path_factory.mktemp("outsider2")
    klass = root / "class"
    klass.mkdir()
    for path in OUTSIDER.glob("two_layer_*.py"):
        shutil.copy(path, klass / path.name)
    shutil.copy(SUBMISSIONS / "two_layer" / "correct_two_layer.py", klass / "bystander_two_layer.py")
    batch = _grade(klass, root / "out", "two-layer-relu", "--seed", str(RELU_KINK_SEED))
    batch["klass"] = klass
    return batch


def _row(batch: dict, path: Path) -> dict:
    return batch["by_path"][csv_cell(clean(os.fsdecode(path), 2000))]  # the path as the gradebook writes it


def _feedback(batch: dict, row: dict) -> dict:
    return json.loads((batch["out"] / row["submission"] / "feedback.json").read_text(encoding="utf-8"))


def _said(feedback: dict) -> str:
    """Everything the failed checks say, the grader's words and the student's text, lower-cased."""
    return "\n".join(c["message"] + "\n" + c["details"] for c in feedback["checks"] if not c["passed"]).lower()


@pytest.mark.slow
@pytest.mark.parametrize("which", ["ex4", "two_layer"])
def test_every_batch_finishes_with_one_line_per_submission_and_blames_no_one_but_the_students(which, request):
    batch = request.getfixturevalue(which)
    given = [p for p in batch["klass"].iterdir()]
    assert batch["code"] == 1, batch["stderr"][-3000:]  # some failed; the grader failed on none
    assert len(batch["rows"]) == len(given) and len({r["path"] for r in batch["rows"]}) == len(given)
    assert batch["raw"].count(b"\n") == len(given) + 1  # one line each, whatever the file names hold
    assert not [r["submission"] for r in batch["rows"] if r["verdict"] == "grader-error"]
    assert b"Traceback" not in batch["stdout"] + batch["stderr"]
    assert f"{len(given)} submissions given, {len(given)} graded".encode() in batch["stdout"]


@pytest.mark.slow
@pytest.mark.parametrize("which", ["ex4", "two_layer"])
def test_each_attack_gets_exactly_what_it_should_and_never_more_than_its_honest_twin(which, request):
    batch = request.getfixturevalue(which)
    wrong = {}
    for path in sorted(batch["klass"].glob("*.py")):
        expect = make_hostile.EXPECT.get(path.stem)
        if expect is None:
            continue
        row = _row(batch, path)
        score, said = float(row["score"]), _said(_feedback(batch, row))
        problems = [f"verdict {row['verdict']}"] * (row["verdict"] not in expect.verdicts)
        problems += [f"score {score}"] * (not expect.at_least <= score <= expect.at_most)
        problems += [f"does not say {word!r}" for word in expect.says if word not in said]
        if expect.twin is not None and score > float(_row(batch, batch["klass"] / f"{expect.twin}.py")["score"]):
            problems.append(f"beats {expect.twin}")
        if problems:
            wrong[path.stem] = (problems, said[:600])
    assert not wrong


@pytest.mark.slow
def test_bystanders_and_the_honest_twins_get_what_they_deserve(ex4, two_layer):
    for name in BYSTANDERS:
        assert _row(ex4, ex4["klass"] / f"bystander_{name}.py")["score"] == "100", name
    assert _row(two_layer, two_layer["klass"] / "bystander_two_layer.py")["score"] == "100"
    assert [_row(ex4, ex4["klass"] / f"{name}.py")["score"] for name in TWINS] == ["35", "35"]


@pytest.mark.slow
def test_links_and_fifos_where_a_submission_would_be_get_a_row_each_and_nothing_of_what_they_point_to(ex4):
    for key, (path, says) in ex4["links"].items():
        row = _row(ex4, path)
        assert (row["verdict"], row["score"]) == ("error", "0"), (key, row)
        assert says in _feedback(ex4, row)["checks"][0]["message"], key
    assert _row(ex4, ex4["klass"] / f"bystander_{BYSTANDERS[0]}.py")["score"] == "100"  # the victim keeps its own


@pytest.mark.slow
def test_a_cost_that_remembers_its_points_loses_self_consistency_and_says_why(ex4):
    checks = {c["name"]: c for c in _feedback(ex4, _row(ex4, ex4["klass"] / "memo_linearized.py"))["checks"]}
    consistency = checks["self_consistency"]
    assert not consistency["passed"] and "right at the point but not beside it" in consistency["message"]
    twin = {c["name"]: c for c in _feedback(ex4, _row(ex4, ex4["klass"] / "honest_no_reg_in_gradient.py"))["checks"]}
    assert not twin["self_consistency"]["passed"] and "not beside it" not in twin["self_consistency"]["message"]


@pytest.mark.slow
def test_file_names_forge_nothing_in_any_output(ex4):
    buggy = _row(ex4, ex4["klass"] / "honest_buggy.py")["score"]
    for key, (path, correct) in ex4["names"].items():
        row = _row(ex4, path)
        assert row["score"] == ("100" if correct else buggy), (key, row)
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}-[0-9a-f]{8}", row["submission"]), key
    with (ex4["out"] / "gradebook.csv").open(encoding="utf-8", newline="") as fh:
        cells = [cell for line in csv.reader(fh) for cell in line]
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t") or (c[:1] == "-" and not re.fullmatch(r"-?[\d.]+", c))]
    assert not [line for line in ex4["raw"].decode().splitlines() if line.startswith("# ")]  # the forged heading
    html = (ex4["out"] / "report" / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html and "<img src=x" not in html


@pytest.mark.slow
def test_no_terminal_escape_bidi_override_or_forged_line_anywhere(ex4):
    forged = (b"\x1b", "\u202e".encode(), b"owned", b"FAKE", b'{"score": 100')
    assert not [f for f in forged if f in ex4["stdout"] + ex4["stderr"]]
    for path in ex4["out"].rglob("*"):
        if path.is_file() and path.suffix in (".md", ".json", ".csv", ".html"):
            data = path.read_bytes()
            data.decode("utf-8")  # strict: valid UTF-8
            assert b"\x1b" not in data and "\u202e".encode() not in data, path


@pytest.mark.slow
def test_student_text_never_reads_as_the_graders_own(ex4):
    for md in ex4["out"].glob("*/feedback.md"):
        outside, fence = [], None
        for line in md.read_text(encoding="utf-8").splitlines():
            opening = re.match(r"^(`{3,})", line)
            if fence is None and opening:
                fence = opening.group(1)
            elif fence is not None and line.strip() == fence:
                fence = None
            elif fence is None:
                outside.append(line)
        assert [line for line in outside if line.startswith("# ")] == [outside[0]], md
        assert not [line for line in outside if "<script" in line or "](javascript" in line], md
    results = json.loads((ex4["out"] / _row(ex4, ex4["klass"] / "forges_fd_output.py")["submission"] / "results.json")
                         .read_text(encoding="utf-8"))
    assert all(t["visibility"] == "hidden" for t in results["tests"] if t["name"] == "Your program's output")


@pytest.mark.slow
def test_what_a_spy_finds_holds_no_secret_of_the_batch(ex4):
    seed = ex4["rows"][0]["seed"]
    assert seed and all(r["seed"] == seed for r in ex4["rows"])
    spy = ex4["out"] / _row(ex4, ex4["klass"] / "stack_spy.py")["submission"]
    assert "LOOT" in (spy / "feedback.json").read_text(encoding="utf-8")  # it did report what it found, to itself
    for row in ex4["rows"]:  # every file a student may see (the seed is the instructor's: gradebook.csv, .gradverify/)
        for path in (ex4["out"] / row["submission"]).rglob("*"):
            if path.is_file():
                assert seed not in path.read_text(encoding="utf-8", errors="replace"), path


@pytest.mark.slow
def test_the_recorded_seed_is_accepted_again_and_a_relu_kink_in_the_stencil_costs_a_correct_net_nothing(two_layer):
    """``--seed`` took only 0 to 2^32-1, so a case recorded in gradebook.csv (63 bits) could not be graded again;
    and with this seed the correct two-layer net lost self-consistency ("your cost is not smooth", 95/100): its
    cost is the true one at every point asked, so the unsure partials are the kinks of the function itself."""
    assert {r["seed"] for r in two_layer["rows"]} == {str(RELU_KINK_SEED)}
    row = _row(two_layer, two_layer["klass"] / "bystander_two_layer.py")
    checks = {c["name"]: c for c in _feedback(two_layer, row)["checks"]}
    assert row["score"] == "100" and checks["self_consistency"]["passed"], checks["self_consistency"]["message"]


def test_names_are_any_python_identifiers_on_the_wire_and_nothing_else():
    from gradverify.grading.protocol import is_target, load_info

    info = {"entry": "x.py", "notes": [], "cell_errors": [], "python2": False, "missing_module": None}
    for name in ("nnCostFunction", "σ", "coût", "Réseau.pérte", "_x"):
        assert is_target(name) and load_info({**info, "callables": {name: None}}) is not None, name
    for name in ("a b", "a.b.c", "1x", "", "x" * 201, "f()", "a;import os", 3):
        assert not is_target(name) and load_info({**info, "callables": {name: None}}) is None, name


def test_a_gradebook_cell_is_one_line_and_a_lookalike_name_is_spelled_out():
    assert csv_cell("k/evil\n# correct: PASS\r\n.py") == "k/evil / # correct: PASS\ufffd / .py"
    assert csv_cell("\n=1+1") == "'=1+1" and csv_cell("  @SUM(A1)") == "'@SUM(A1)"
    from gradverify.grading.text import non_ascii_note

    assert non_ascii_note("nnCostFunction") == ""
    assert "U+0441 CYRILLIC SMALL LETTER ES" in non_ascii_note("nnCostFunсtion")


def test_the_answer_judged_on_the_large_network_is_the_one_whose_cost_counts():
    from gradverify.grading.protocol import CallResult
    from gradverify.grading.timing import measured

    slow_right = CallResult("ok", value="right", cpu=2.0)
    fast_wrong = CallResult("ok", value="wrong", cpu=0.001)
    assert measured([slow_right, fast_wrong]) is fast_wrong  # not the slow right one
    timed_out = CallResult("timeout", cpu=0.0)
    assert measured([slow_right, timed_out]) is timed_out  # a lower bound: cheaper, and no answer to judge
    assert measured([CallResult("ok", value=1), CallResult("crashed")]).value == 1  # no CPU count: the first answer
    assert measured([CallResult("crashed")]) is None
