"""Grading that no submission can break, cheat or spy through: the hostile corpus, graded in one batch.

Every attack seen on ``gradverify grade`` (``tests/submissions/make_hostile.py``) is graded in a
single batch beside correct bystanders. The batch must finish with one row per submission; the
bystanders keep 100/100; no cheat scores more than the honest code it wraps; nothing crosses
from one submission to another; student text never passes for the grader's own.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from gradverify.cli import main
from gradverify.grading.batch import CLASS_NAMES
from gradverify.grading.files import remove_tree

HERE = Path(__file__).parent
SUBMISSIONS = HERE / "submissions"
sys.path.insert(0, str(SUBMISSIONS))
import make_hostile  # noqa: E402  (the corpus builder lives beside the corpus)

BYSTANDERS = ("correct_reference", "correct_loop", "correct_stable_log", "correct_per_weight_loop", "correct_scalar_loops")
# The budget is wall-clock time: on a loaded machine an honest twin ran out of it once (35 < 40),
# so it leaves room for a slow CI machine; the attacks that spend it all are few.
TIMEOUT, BUDGET = 2.0, 20.0


def _sandbox_roots() -> set[str]:
    """Sandbox folders whose grader is gone (graders running at the same time, in other tests, keep theirs)."""
    from gradverify.grading.files import _process_start

    dead = set()
    for root in Path("/tmp").glob("gradverify-sandbox-*"):
        try:
            pid, start = (root / "owner").read_text().split()
        except (OSError, ValueError):
            continue
        if _process_start(int(pid)) != start:
            dead.add(root.name)
    return dead


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """The whole corpus in one class folder, graded once with ``gradverify grade`` (its exit code, rows, files)."""
    root = tmp_path_factory.mktemp("hostile")
    klass, out = root / "class", root / "out"
    klass.mkdir()
    for path in (SUBMISSIONS / "hostile").glob("*.py"):
        shutil.copy(path, klass / path.name)
    for name in BYSTANDERS:
        shutil.copy(SUBMISSIONS / "ex4" / f"{name}.py", klass / f"bystander_{name}.py")
    made = make_hostile.build_structures(klass)
    before = _sandbox_roots()
    code = main(["grade", str(klass), str(made["dotdot"]), "--assignment", "ex4", "--out", str(out), "--examples", "3",
                 "--timeout", str(TIMEOUT), "--budget", str(BUDGET), "--jobs", "2", "--report"])
    rows = list(csv.DictReader((out / "gradebook.csv").open(encoding="utf-8")))
    by_path = {r["path"]: r for r in rows}

    def row(name: str) -> dict:
        path = made[name] if name in made else klass / f"{name}.py"
        return by_path[os.fsdecode(path).encode("utf-16", "surrogatepass").decode("utf-16", "replace")]

    yield {"code": code, "rows": rows, "row": row, "out": out, "klass": klass, "made": made, "leftovers": _sandbox_roots() - before}
    remove_tree(made["deep_folder"])  # 1500 levels: more than pytest's own (recursive) clean-up can take


def _checks(batch, name: str) -> dict:
    feedback = json.loads((batch["out"] / batch["row"](name)["submission"] / "feedback.json").read_text(encoding="utf-8"))
    return {c["name"]: c for c in feedback["checks"]} | {"_diagnosis": [d["kind"] for d in feedback["diagnosis"]]}


def test_the_batch_finishes_with_one_row_per_submission_and_names_the_graders_failures(batch):
    klass = batch["klass"]
    discovered = [p for p in klass.iterdir() if not p.name.startswith(".")]
    assert len(batch["rows"]) == len(discovered) + 1  # + ...py, named on the command line
    assert len({r["path"] for r in batch["rows"]}) == len(batch["rows"])
    # the hard-linked pair is not graded, as not the students' fault: exit 3 lists them
    assert batch["code"] == 3
    for name in ("thief", "victim"):
        r = batch["row"](name)
        assert r["verdict"] == "grader-error" and "hard link" in r["incident"] and r["score"] == "0"
    assert batch["leftovers"] == set(), "sandboxes left files behind"


def test_bystanders_keep_full_marks_beside_every_attack(batch):
    for name in BYSTANDERS:
        r = batch["row"](f"bystander_{name}")
        assert (r["verdict"], r["score"]) == ("pass", "100"), (name, r)


def test_no_attack_scores_more_than_its_ceiling_or_the_honest_code_it_wraps(batch):
    over = {}
    for name, ceiling in make_hostile.CEILING.items():
        score = float(batch["row"](name)["score"])
        if score > ceiling:
            over[name] = score
    assert not over
    for cheat, honest in make_hostile.HONEST_TWIN.items():
        assert float(batch["row"](cheat)["score"]) <= float(batch["row"](honest)["score"]), (batch["row"](cheat), batch["row"](honest))
    for name in make_hostile.FULL_MARKS:
        assert batch["row"](name)["score"] == "100", (name, batch["row"](name))
    for name in ("cafe", "latin1", "dotdot", "formula"):  # odd names, correct code
        assert batch["row"](name)["score"] == "100", name


def test_an_empty_implementation_earns_at_most_a_quarter(batch):
    for name in ("hardcoded_only", "channel_reader", "reads_other_files"):
        assert float(batch["row"](name)["score"]) <= 25, name
    checks = _checks(batch, "hardcoded_only")
    assert not checks["cost"]["passed"] and "hidden variants" in checks["cost"]["message"]
    assert not checks["gradient_fixed"]["passed"]


def test_numerical_gradients_lose_the_gradient_points_whatever_their_accuracy(batch):
    for name in ("complex_step", "batched_numeric", "forward_differences"):
        checks = _checks(batch, name)
        assert checks["_diagnosis"][0] == "numerical-gradient", name
        assert not any(checks[c]["passed"] for c in ("gradient_fixed", "gradient_random", "self_consistency"))
        assert checks["cost"]["passed"] and "grows with the number of parameters" in checks["gradient_fixed"]["message"]
    for name in ("numeric_small_only", "numeric_refuses_large"):  # no usable answer where it would show
        assert _checks(batch, name)["_diagnosis"][0] == "unverified-gradient", name


def test_every_write_into_the_inputs_is_seen_and_memoized_noise_is_not_determinism(batch):
    for name in ("mutate_when_lambda", "mutate_and_restore"):
        checks = _checks(batch, name)
        assert not checks["inputs_unmodified"]["passed"] and "read-only" in checks["inputs_unmodified"]["message"], name
    assert not _checks(batch, "memoized_random")["determinism"]["passed"]
    jumpy = _checks(batch, "jumpy_cost")["self_consistency"]
    assert not jumpy["passed"] and any(why in jumpy["message"] for why in ("not beside it", "hidden variant", "grows", "large"))


def test_beginner_mistakes_are_named_in_the_feedback(batch):
    checks = _checks(batch, "list_of_arrays")
    assert not checks["shapes"]["passed"]
    assert "a list of 2 arrays of shapes (5, 4), (3, 6)" in checks["shapes"]["message"] and "np.concatenate" in checks["shapes"]["message"]
    assert "ragged" in _checks(batch, "ragged_list")["shapes"]["message"]
    assert "str" in _checks(batch, "list_of_strings")["shapes"]["message"]


def test_resources_are_bounded_per_submission(batch):
    slow = batch["row"]("slow_calls")
    assert float(slow["seconds"]) < BUDGET + 3 * TIMEOUT + 30  # the budget, a call in flight, the grader's own work
    assert "budget" in _checks(batch, "slow_calls")["gradient_random"]["message"] or float(slow["score"]) < 100
    for name, why in (("deep_folder", "deeper than"), ("empty_folders", "more than 1000"), ("huge_files", "larger than")):
        r = batch["row"](name)
        assert r["verdict"] == "error", name
        assert why in _checks(batch, name)["loads"]["message"], name
    for name in ("forged_huge_reply", "extra_reply_key", "forged_stale_reply"):  # refused, or so slow to forge it timed out
        message = _checks(batch, name)["shapes"]["message"]
        assert "broke the grading protocol" in message or "did not finish in time" in message, (name, message)


def test_output_names_are_safe_unique_and_never_a_class_level_name(batch):
    out = batch["out"]
    names = [r["submission"] for r in batch["rows"]]
    assert len(set(names)) == len(names)
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}-[0-9a-f]{8}", name) and name not in CLASS_NAMES, name
        assert (out / name / "feedback.json").is_file() and (out / name).resolve().parent == out.resolve()
    assert (out / "report" / "report.html").is_file()  # the class report, beside report.py's own folder
    assert sum(n.startswith("alice") for n in names) == 3
    assert not list(out.parent.glob("*.json")) and not (out.parent / "feedback.md").exists()  # nothing outside --out


def test_student_text_is_valid_escaped_and_kept_apart_from_the_graders_words(batch):
    out = batch["out"]
    md = (out / batch["row"]("forged_heading")["submission"] / "feedback.md").read_bytes().decode("utf-8")  # strict
    outside, fence = [], None
    for line in md.splitlines():
        opening = re.match(r"^(`{3,})", line)
        if fence is None and opening:
            fence = opening.group(1)
        elif fence is not None and line.strip() == fence:
            fence = None
        elif fence is None:
            outside.append(line)
    assert [line for line in outside if line.startswith("# ")] == [outside[0]]  # our one heading
    assert not any("<script" in line or "<img" in line or "](javascript" in line for line in outside)
    assert "What your code reported" in md and "PASS — 100 / 100" in md  # shown, inside its fence
    (out / batch["row"]("surrogate_message")["submission"] / "feedback.md").read_bytes().decode("utf-8")
    results = json.loads((out / batch["row"]("forged_heading")["submission"] / "results.json").read_text(encoding="utf-8"))
    assert results["output_format"] == "text" and all(t["output_format"] == "text" for t in results["tests"])
    with (out / "gradebook.csv").open(encoding="utf-8") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "@") or (c[:1] == "-" and not re.fullmatch(r"-?[\d.]+", c))]


def test_nothing_crosses_between_submissions(batch):
    reader = _checks(batch, "channel_reader")
    assert not reader["cost"]["passed"] and not reader["gradient_fixed"]["passed"]
    assert float(batch["row"]("channel_writer")["score"]) == 100
    assert not Path("/tmp/gv-answers").exists() and not Path("/dev/shm/gv-answers").exists()


MEMORY_HOGS = {
    "just_under_the_cap": "import numpy as np\n\ndef nnCostFunction(*a):\n    return 1.0, np.zeros(2_000_000)\n",
    "narrow_ints": "import numpy as np\n\ndef nnCostFunction(*a):\n    return 1.0, np.ones(15_000_000, dtype=np.int8)\n",
    "huge_message": "def nnCostFunction(*a):\n    raise ValueError('x' * 300_000_000)\n",
    "many_arrays": "import numpy as np\n\ndef nnCostFunction(*a):\n    return 1.0, [np.zeros(4000) for _ in range(4000)]\n",
    "long_list": "def nnCostFunction(*a):\n    return 1.0, [0.5] * 30_000_000\n",
}

_PEAK = """
import resource, sys
from gradverify.grading.grader import grade_submission
from gradverify.grading.limits import Limits
from gradverify.profiles import get_profile
prof = get_profile("ex4")
verdicts = []
for path in sys.argv[1:]:
    g = grade_submission(path, prof, prof.resolve({}), examples=2, seed=1, limits=Limits(call_timeout=20, budget_seconds=60))
    verdicts.append(f"{g.verdict}:{g.score:g}")
print(" ".join(verdicts))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB: this process only, never its sandboxes
"""


def test_the_graders_peak_memory_stays_under_one_gib_whatever_a_submission_returns(tmp_path):
    import subprocess

    paths = []
    for name, source in MEMORY_HOGS.items():
        paths.append(tmp_path / f"{name}.py")
        paths[-1].write_text(source)
    paths += [SUBMISSIONS / "hostile" / "forged_huge_reply.py", SUBMISSIONS / "ex4" / "correct_reference.py"]
    res = subprocess.run([sys.executable, "-c", _PEAK, *map(str, paths)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    verdicts, peak_kib = res.stdout.split("\n")[:2]
    scores = [v.split(":")[1] for v in verdicts.split()]
    assert all(score in ("0", "5") for score in scores[:-1]) and scores[-1] == "100", verdicts  # the oracle was loaded too
    assert int(peak_kib) < 1 << 20, f"grader peak RSS {int(peak_kib) / 1024:.0f} MiB"
