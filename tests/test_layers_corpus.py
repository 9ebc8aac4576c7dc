"""The verifier tested by breaking things: a corpus of layer implementations, correct and with the classic bugs.

``tests/layers/student_layers.py`` is a correct CS231n-style layers.py (loops, staged backward
passes); every layer of it must pass. ``tests/layers/buggy_layers.py`` plants one classic bug at a
time; each must fail with the diagnosis named in its entry.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "layers"))

import buggy_layers  # noqa: E402
import student_layers  # noqa: E402

from gradverify.layers import LAYERS, Pair, compare_layer, random_case, resolve_pair  # noqa: E402

STUDENT = vars(student_layers)


def _student(layer: str) -> Pair:
    return resolve_pair(STUDENT, layer, label="student")


@pytest.mark.parametrize("layer", list(LAYERS))
def test_the_correct_student_layers_pass_against_the_exact_partials(layer):
    settings_list = [{}, {"mode": "test"}] if "mode" in LAYERS[layer].settings else [{}]
    for settings in settings_list:
        case = random_case(layer, settings=settings, seed=3)
        comp = compare_layer(case, ("exact",), candidates={"student": _student(layer)})
        assert comp.verdict == "pass", comp.summary()
        assert comp.verdicts["student"].cost_ok, "the student's forward output should reproduce J"


def test_the_alt_batchnorm_backward_is_found_from_its_name_and_passes():
    pair = resolve_pair(STUDENT, "batchnorm", "batchnorm_backward_alt", label="student")
    assert pair.names == ("batchnorm_forward", "batchnorm_backward_alt")
    assert compare_layer(random_case("batchnorm", seed=1), ("exact",), candidates={"student": pair}).verdict == "pass"


def test_a_db_of_shape_1_by_m_is_accepted_with_a_note():
    comp = compare_layer(random_case("affine"), ("exact",), candidates={"student": _student("affine")})
    assert comp.verdict == "pass"
    assert any("db has shape (1, 5); read as (5,)" in n for n in comp.notes)


def _pair(bug: buggy_layers.Bug) -> Pair:
    fwd_name, bwd_name = LAYERS[bug.layer].api
    forward, backward = STUDENT[fwd_name], STUDENT.get(bwd_name) if bwd_name else None
    if bug.replaces == "backward":
        backward = bug.function
    elif bug.replaces in ("loss", "forward"):
        forward = bug.function
    else:
        forward, backward = bug.function
    return Pair(forward, backward, (fwd_name, bwd_name), label="student")


@pytest.mark.parametrize("bug", buggy_layers.BUGS, ids=lambda b: f"{b.layer}: {b.name}")
def test_every_planted_bug_is_caught_with_its_diagnosis(bug):
    case = random_case(bug.layer, dims=bug.dims, settings=bug.settings, seed=5, scale=bug.scale)
    with np.errstate(all="ignore"):
        comp = compare_layer(case, ("exact",), candidates={"student": _pair(bug)})
    assert comp.verdict == "fail", f"{bug.name} was not caught: {comp.summary()}"
    findings = comp.diagnoses["student"]
    assert findings, f"{bug.name}: no diagnosis"
    top = findings[0]
    assert top.kind == bug.kind, f"{bug.name}: expected a {bug.kind} diagnosis, got {[(f.kind, f.message) for f in findings]}"
    assert bug.words in top.message, f"{bug.name}: {top.message!r} does not say {bug.words!r}"
    assert top.message in comp.summary()


def test_a_relu_that_differs_only_at_exact_zeros_passes_with_the_kinks_named():
    case = random_case("relu", seed=2, integers=True)
    assert np.any(case.arrays["x"] == 0)
    pair = Pair(student_layers.relu_forward, buggy_layers.relu_backward_ge, ("relu_forward", "relu_backward"), "student")
    comp = compare_layer(case, ("exact", "numeric"), candidates={"student": pair})
    assert comp.verdict == "pass", comp.summary()
    student = comp.verdicts["student"]
    zeros = case.flat({"x": (case.arrays["x"] == 0).astype(float)}) > 0
    assert np.all(student.status[zeros] == "kink") and not np.any(student.status[~zeros] == "kink")
    assert "sit on a kink" in comp.summary()
    assert any("exactly 0 at a ReLU" in n for n in comp.notes)
