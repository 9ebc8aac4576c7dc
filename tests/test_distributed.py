"""Grading and the suite on a real Dask LocalCluster (worker processes): same results, nothing lost or doubled."""

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")  # in the `test` extra: CI has it

from gradverify.cluster import Lost, connect, parse_scheduler  # noqa: E402
from gradverify.errors import InputError  # noqa: E402
from gradverify.grading import batch  # noqa: E402
from gradverify.grading.files import SubmissionError  # noqa: E402
from gradverify.grading.limits import Limits  # noqa: E402
from gradverify.grading.remote import grade_on_cluster, pack, unpack  # noqa: E402
from gradverify.profiles import get_profile  # noqa: E402

CORPUS = Path(__file__).parent / "submissions" / "ex4"
SOME = ["correct_reference", "bug_sign_flipped", "bug_bias_column_kept_in_delta", "bug_mutates_its_input", "bug_labels_shifted"]


@pytest.fixture(scope="module")
def cluster():
    with connect("local:2") as c:
        yield c


# ---- the option -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("local:2", (2, "")), ("local:16", (16, "")), ("tcp://10.0.0.5:8786", (0, "tcp://10.0.0.5:8786")),
    ("scheduler.example.org:8786", (0, "scheduler.example.org:8786")),
])
def test_scheduler_values_are_read(text, expected):
    spec = parse_scheduler(text)
    assert (spec.local_workers, spec.address) == expected


@pytest.mark.parametrize("text, words", [
    ("local:0", "local:N with N ≥ 1"), ("local:two", "local:N with N ≥ 1"), ("localhost", "an address with a port"),
    ("tcp://host", "an address with a port"), ("", "--scheduler is empty"), ("missing.json", "No scheduler file"),
])
def test_bad_scheduler_values_are_refused_with_a_fix(text, words):
    with pytest.raises(InputError, match=re.escape(words)) as info:
        parse_scheduler(text)
    assert "Fix:" in str(info.value)


def test_an_unreachable_scheduler_is_a_clear_usage_error():
    with pytest.raises(InputError, match="Cannot reach the Dask scheduler at tcp://127.0.0.1:9") as info:
        connect("tcp://127.0.0.1:9", timeout=2)
    assert "local:N" in str(info.value)


def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_without_dask_the_option_says_how_to_install_it():
    code = ("import sys; sys.modules['distributed'] = None; sys.modules['dask'] = None\n"
            "from gradverify.cli import main\n"
            "raise SystemExit(main(['suite', '--scheduler', 'local:2', '--examples', '1']))")
    res = _run_python(code)
    assert res.returncode == 2, res.stderr
    assert "pip install 'gradverify[distributed]'" in res.stderr and "Traceback" not in res.stderr


def test_the_default_commands_never_import_dask():
    code = ("import sys\nfrom gradverify.cli import build_parser; build_parser()\n"
            "import gradverify.suite, gradverify.grading.batch, gradverify.grading.remote\n"
            "print(' '.join(m for m in ('dask', 'distributed') if m in sys.modules))")
    res = _run_python(code)
    assert res.returncode == 0 and res.stdout.strip() == "", res.stdout + res.stderr


# ---- shipping a submission as bytes -----------------------------------------------------------

def test_a_folder_travels_whole_and_lands_where_it_was_packed(tmp_path):
    src = tmp_path / "alice"
    (src / "pkg" / "deep").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "nnCostFunction.py").write_text("from helpers import f\n")
    (src / "helpers.py").write_text("def f():\n    return 1\n")
    (src / "pkg" / "deep" / "data.txt").write_bytes(b"\x00\xff")
    (src / "link.py").symlink_to(src / "helpers.py")  # never followed, as in the sandbox's copy
    packed = pack(src, entry="nnCostFunction.py")
    assert packed.folder and packed.name == "alice" and "bytes" in repr(packed) and "def f" not in repr(packed)
    assert {p for p, _ in packed.files} == {"nnCostFunction.py", "helpers.py", "pkg/deep/data.txt"}
    landed = unpack(packed, tmp_path / "worker")
    assert landed == tmp_path / "worker" / "alice" and (landed / "empty").is_dir()
    assert (landed / "pkg" / "deep" / "data.txt").read_bytes() == b"\x00\xff" and not (landed / "link.py").exists()


def test_what_the_sandbox_would_refuse_is_refused_before_it_travels(tmp_path):
    big = tmp_path / "big.py"
    big.write_bytes(b"#" * 2000)
    with pytest.raises(SubmissionError, match="larger than Limits.submission_bytes"):
        pack(big, limits=Limits(submission_bytes=1000))
    none = tmp_path / "none"
    none.mkdir()
    (none / "notes.txt").write_text("")
    with pytest.raises(SubmissionError, match="holds no top-level .py file or notebook"):
        pack(none)


def test_a_packed_name_that_would_leave_its_folder_is_refused(tmp_path):
    from gradverify.grading.remote import Packed

    for bad in (Packed("..", True, ()), Packed("x", True, (("../escape.py", b""),)), Packed("x", True, (("/abs.py", b""),))):
        with pytest.raises(ValueError, match="unsafe"):
            unpack(bad, tmp_path)
    assert not (tmp_path.parent / "escape.py").exists()


# ---- grading on the cluster -------------------------------------------------------------------

OPTIONS = batch.BatchOptions(examples=5, seed=0)


def _grade_one(path, settings, options=OPTIONS):
    return batch._grade_one((str(path), Path(path).stem, "ex4", settings, options, options.seed))


def _job(settings, options, path):
    return _grade_one(path, settings, options)


def _items(subs, settings):
    return [(s.path.stem, s.path, None, functools.partial(_job, settings, OPTIONS)) for s in subs]


def _comparable(grade: dict) -> str:
    """A grade without what differs between any two runs: timings and the sandbox's temporary path."""
    kept = {k: v for k, v in grade.items() if k not in ("seconds", "slowest_call", "cost_probe", "reproduce")}  # reproduce.py: the path it ran at
    return re.sub(r"gradverify-sandbox-\w+", "gradverify-sandbox-X", json.dumps(kept, sort_keys=True, default=str))


def _batch(tmp_path, names, extra=None):
    folder = tmp_path / "batch"
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(CORPUS / f"{name}.py", folder / f"{name}.py")
    for name, text in (extra or {}).items():
        (folder / f"{name}.py").write_text(text)
    return batch.discover([folder])


def test_a_batch_graded_on_two_workers_equals_the_same_batch_graded_here(cluster, tmp_path):
    subs = _batch(tmp_path, SOME)
    prof = get_profile("ex4")
    settings = prof.resolve({})
    here = {s.path.stem: _grade_one(s.path, settings) for s in subs}
    there = list(grade_on_cluster(cluster, _items(subs, settings)))
    assert sorted(tag for tag, _ in there) == sorted(s.path.stem for s in subs)  # each once
    for name, grade in there:
        assert grade["path"] == str(tmp_path / "batch" / f"{name}.py")  # the client's path, not the worker's
        assert grade["isolation"], name  # the sandbox ran on the worker and says how it was isolated
        assert _comparable(grade) == _comparable(here[name]), name
    verdicts = {name: g["verdict"] for name, g in there}
    assert verdicts["correct_reference"] == "pass" and verdicts["bug_sign_flipped"] == "fail"


def test_a_submission_the_copy_rules_refuse_gets_the_row_it_gets_here(cluster, tmp_path):
    folder = tmp_path / "two_modules"
    folder.mkdir()
    (folder / "a.txt").write_text("")
    prof = get_profile("ex4")
    settings = prof.resolve({})
    subs = [batch.Submission("two_modules", folder)]
    ((name, grade),) = grade_on_cluster(cluster, _items(subs, settings))
    here = _grade_one(folder, settings)
    assert grade["verdict"] == "error" and "holds no top-level .py file or notebook" in grade["checks"][0]["message"]
    assert _comparable(grade) == _comparable(here)


def _pids(cluster) -> dict[str, int]:
    return cluster.run_everywhere(os.getpid)


def _kill_when_processing(cluster, predicate, times: int, deadline: float) -> list[str]:
    """SIGKILL the worker processing a task for which ``predicate(key)`` holds, ``times`` times."""
    killed: list[str] = []
    while len(killed) < times and time.monotonic() < deadline:
        try:
            processing = cluster.client.processing()
            pids = _pids(cluster)
        except Exception:  # a worker is restarting
            time.sleep(0.1)
            continue
        for addr, keys in processing.items():
            if any(predicate(k) for k in keys) and addr in pids and addr not in killed:
                os.kill(pids[addr], signal.SIGKILL)
                killed.append(addr)
                time.sleep(1.0)  # let the scheduler see the death before looking again
                break
        else:
            time.sleep(0.05)
    return killed


SLOW_TO_LOAD = "import time\ntime.sleep(2.5)\n" + (CORPUS / "correct_reference.py").read_text()


@pytest.mark.slow
def test_a_worker_killed_mid_task_loses_and_duplicates_nothing(cluster, tmp_path):
    subs = _batch(tmp_path, SOME[:3], {"slow_loader": SLOW_TO_LOAD})
    prof = get_profile("ex4")
    settings = prof.resolve({})
    keys: dict[str, str] = {}
    original = cluster.client.submit

    def submit(fn, *args, key=None, **kw):  # learn which task grades which submission
        future = original(fn, *args, key=key, **kw)
        keys[args[0].name.removesuffix(".py")] = future.key
        return future

    cluster.client.submit = submit
    try:
        killer = threading.Thread(target=lambda: killed.extend(_kill_when_processing(
            cluster, lambda k: k == keys.get("slow_loader"), 1, time.monotonic() + 60)))
        killed: list[str] = []
        killer.start()
        graded = list(grade_on_cluster(cluster, _items(subs, settings)))
        killer.join()
    finally:
        cluster.client.submit = original
    assert len(killed) == 1, "the worker grading slow_loader should have been killed once"
    assert sorted(name for name, _ in graded) == sorted(s.path.stem for s in subs)  # nothing lost, nothing twice
    grades = dict(graded)
    assert all(isinstance(g, dict) for g in grades.values()), grades
    assert grades["slow_loader"]["verdict"] == "pass" and grades["slow_loader"]["score"] == 100  # retried elsewhere, whole
    cluster.client.wait_for_workers(2, timeout=60)


def _die(_):
    os.kill(os.getpid(), signal.SIGKILL)


def _square(x):
    return x * x


def test_a_task_that_kills_its_worker_twice_is_given_up_and_the_others_finish(cluster):
    tasks = [(i, _die if i == 3 else _square, (i,)) for i in range(8)]
    out = dict(cluster.stream(tasks, name="test"))
    assert sorted(out) == list(range(8))
    assert isinstance(out[3], Lost) and out[3].kind == "worker-died" and "died" in out[3].detail
    assert all(out[i] == i * i for i in range(8) if i != 3)
    cluster.client.wait_for_workers(2, timeout=60)


def test_a_task_that_raises_comes_back_as_lost_with_its_error(cluster):
    ((tag, outcome),) = cluster.stream([("x", _square, ("text",))], name="test")
    assert tag == "x" and isinstance(outcome, Lost) and outcome.kind == "error" and "TypeError" in outcome.detail


def test_only_a_window_of_tasks_is_in_flight(cluster):
    made = []

    def tasks():
        for i in range(20):
            made.append(i)
            yield i, _square, (i,)

    seen = 0
    for _ in cluster.stream(tasks(), name="test", window=3):
        seen += 1
        assert len(made) <= seen + 3  # read lazily: never more than the window ahead
    assert seen == 20


# ---- the suite on the cluster -----------------------------------------------------------------

BUGGY = '''from gradverify.backprop import cost_and_grad


def grad(network, params, X, Y):
    """Correct, except that it forgets the 1/m on the last bias when the output layer has 3 or more units."""
    J, g = cost_and_grad(network, params, X, Y)
    if network.sizes[-1] >= 3 and X.shape[0] >= 2:
        g = {**g, f"b{network.depth}": g[f"b{network.depth}"] * X.shape[0]}
    return J, g
'''


def _records(res):
    return [(r.spec, r.m, r.origin, str(r.verdict), r.worst_ratio, r.error) for r in res.records]


def test_the_suite_on_a_cluster_finds_and_shrinks_the_same_failure(cluster, tmp_path):
    from gradverify.profiles import local_candidate
    from gradverify.suite import reproduce_command, run_suite
    from gradverify.suite_remote import FileCandidate

    path = tmp_path / "buggy.py"
    path.write_text(BUGGY)
    prof = get_profile("native")
    settings = prof.resolve({})
    there = run_suite(FileCandidate(path, "grad", prof, settings), profile=prof, examples=40, seed=0, cluster=cluster)
    namespace: dict = {}
    exec(compile(BUGGY, str(path), "exec"), namespace)
    here = run_suite(local_candidate(namespace, prof, {**settings, "target": "grad"}), profile=prof, examples=40, seed=0)
    assert here.failure is not None and there.failure is not None
    assert _records(there) == _records(here)
    assert repr(there.minimal) == repr(here.minimal) and "m=2" in repr(there.minimal)
    assert reproduce_command(there.minimal) == reproduce_command(here.minimal)
    assert (there.failure.sources["candidate"].grad == here.failure.sources["candidate"].grad).all()


def test_the_suite_of_gradverifys_own_engines_on_a_cluster_judges_the_same_cases(cluster):
    from gradverify.suite import run_suite

    there = run_suite(examples=30, seed=5, cluster=cluster)
    here = run_suite(examples=30, seed=5)
    assert there.ok and _records(there) == _records(here)


@pytest.mark.slow
def test_the_suite_command_on_a_local_cluster_prints_the_same_failure_and_reproduce_command(tmp_path, capsys):
    from gradverify.cli import main

    (tmp_path / "buggy.py").write_text(BUGGY)
    cand = str(tmp_path / "buggy.py") + ":grad"
    assert main(["suite", "--candidate", cand, "--examples", "30", "--scheduler", "local:2"]) == 1
    there = capsys.readouterr().out
    assert main(["suite", "--candidate", cand, "--examples", "30"]) == 1
    here = capsys.readouterr().out
    assert "a local cluster: 2 worker(s)" in there

    def lines(text, prefix):
        return [ln for ln in text.splitlines() if ln.startswith(prefix)]

    assert lines(there, "reproduce: gradverify verify 1-3") == lines(here, "reproduce: gradverify verify 1-3") != []
    assert lines(there, "FAIL:") == lines(here, "FAIL:") != []
