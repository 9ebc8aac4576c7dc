"""Grading and the suite on a real Dask LocalCluster (worker processes): same results, nothing lost or doubled."""

import csv
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
from gradverify.grading.remote import pack, unpack  # noqa: E402
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

TIMINGS = ("seconds", "slowest_call", "cost_probe", "execution_time", "reproduce")  # reproduce: the path reproduce.py ran at


def _same_everywhere(text: str) -> str:
    """What differs between any two runs of one batch, local or not: the sandbox's temporary folder, measured durations."""
    text = re.sub(r"gradverify-sandbox-\w+", "gradverify-sandbox-X", text)
    return re.sub(r"\d+(\.\d+)?(e-?\d+)? ?(ms|s|µs)\b", "T", text)


def _comparable(data) -> str:
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in TIMINGS}
    return _same_everywhere(json.dumps(data, sort_keys=True, default=str))


def _outputs(out: Path) -> dict[str, str]:
    """Every file a batch wrote, comparable: the gradebook without its timing columns, each JSON without timings."""
    found = {}
    rows = list(csv.DictReader((out / "gradebook.csv").open(encoding="utf-8")))
    found["gradebook.csv"] = _comparable([{k: v for k, v in r.items() if k not in ("seconds", "slowest_call_ms")} for r in rows])
    for f in sorted(out.glob("*/*.json")):
        found[f"{f.parent.name}/{f.name}"] = _comparable(json.loads(f.read_text(encoding="utf-8")))
    for f in sorted(out.glob("*/feedback.md")):
        found[f"{f.parent.name}/{f.name}"] = _same_everywhere(f.read_text(encoding="utf-8"))
    return found


def _batch(tmp_path, names, extra=None):
    folder = tmp_path / "batch"
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(CORPUS / f"{name}.py", folder / f"{name}.py")
    for name, text in (extra or {}).items():
        (folder / f"{name}.py").write_text(text)
    return batch.discover([folder])


@pytest.mark.slow
def test_a_batch_graded_on_two_workers_equals_the_same_batch_graded_here(cluster, tmp_path):
    subs = _batch(tmp_path, SOME)
    two = tmp_path / "batch" / "two_modules"  # refused by the copy rules (no code): not shipped, its row made here as locally
    two.mkdir()
    (two / "a.txt").write_text("")
    subs = batch.discover([tmp_path / "batch"])
    prof = get_profile("ex4")
    here = batch.grade_batch(subs, prof, prof.resolve({}), tmp_path / "here", jobs=2, examples=5, seed=7)
    there = batch.grade_batch(subs, prof, prof.resolve({}), tmp_path / "there", examples=5, seed=7, cluster=cluster)
    assert [g.submission for g in there] == [g.submission for g in here] == [s.name for s in subs]
    assert _outputs(tmp_path / "there") == _outputs(tmp_path / "here")  # row for row, file for file
    verdicts = {g.submission.rsplit("-", 1)[0]: str(g.verdict) for g in there}
    assert verdicts["correct_reference"] == "pass" and verdicts["bug_sign_flipped"] == "fail"
    assert verdicts["two_modules"] == "error"
    for g in there:
        assert g.path == str(next(s.path for s in subs if s.name == g.submission))  # the client's path, not the worker's
        assert g.verdict == "error" or "isolation" in g.isolation  # each says how its sandbox, on its worker, was isolated


def _pids(cluster) -> dict[str, int]:
    return cluster.run_everywhere(os.getpid)


def _kill_when_processing(cluster, key_of, times: int, deadline: float, killed: list) -> None:
    """SIGKILL the worker processing the task ``key_of()`` names, ``times`` times (each time a new worker)."""
    seen_pids: set[int] = set()
    while len(killed) < times and time.monotonic() < deadline:
        try:
            processing = cluster.client.processing()
            pids = _pids(cluster)
        except Exception:  # a worker is restarting
            time.sleep(0.1)
            continue
        key = key_of()
        for addr, keys in processing.items():
            if key is not None and key in keys and addr in pids and pids[addr] not in seen_pids:
                time.sleep(0.3)  # mid-task: the submission is being graded
                os.kill(pids[addr], signal.SIGKILL)
                seen_pids.add(pids[addr])
                killed.append(addr)
                break
        else:
            time.sleep(0.05)


class _Keys:
    """Learns which task grades which submission (the keys the client gives its tasks)."""

    def __init__(self, cluster):
        self.cluster, self.keys, self.original = cluster, {}, cluster.client.submit

    def __enter__(self):
        def submit(fn, *args, key=None, **kw):
            future = self.original(fn, *args, key=key, **kw)
            self.keys[args[0].name.removesuffix(".py")] = future.key
            return future

        self.cluster.client.submit = submit
        return self

    def __exit__(self, *exc):
        self.cluster.client.submit = self.original


SLOW_TO_LOAD = "import time\ntime.sleep(3)\n" + (CORPUS / "correct_reference.py").read_text()


def _kill_during(cluster, name: str, times: int, grade):
    killed: list = []
    with _Keys(cluster) as keys:
        killer = threading.Thread(target=_kill_when_processing,
                                  args=(cluster, lambda: keys.keys.get(name), times, time.monotonic() + 120, killed))
        killer.start()
        try:
            result = grade()
        finally:
            killer.join()
    return killed, result


@pytest.mark.slow
def test_a_worker_killed_mid_task_loses_and_duplicates_nothing(tmp_path):
    cluster = connect("local:2")  # its own: its workers are killed
    subs = _batch(tmp_path, SOME[:3], {"slow_loader": SLOW_TO_LOAD})
    prof = get_profile("ex4")
    out = tmp_path / "out"
    with cluster:
        killed, grades = _kill_during(cluster, "slow_loader", 1, lambda: batch.grade_batch(
            subs, prof, prof.resolve({}), out, examples=5, seed=7, cluster=cluster))
    assert len(killed) == 1, "the worker grading slow_loader should have been killed mid-task"
    rows = list(csv.DictReader((out / "gradebook.csv").open(encoding="utf-8")))
    assert sorted(r["submission"] for r in rows) == sorted(s.name for s in subs)  # nothing lost, nothing twice
    assert sorted(p.parent.name for p in out.glob("*/feedback.json")) == sorted(s.name for s in subs)
    slow = next(g for g in grades if g.submission.startswith("slow_loader"))
    assert slow.verdict == "pass" and slow.score == 100  # retried on another worker, graded whole
    assert not any(g.verdict == "grader-error" for g in grades)


@pytest.mark.slow
def test_a_submission_whose_worker_dies_twice_is_a_grader_error_row_and_a_rerun_grades_it(tmp_path):
    subs = _batch(tmp_path, SOME[:2], {"doomed": SLOW_TO_LOAD})
    prof = get_profile("ex4")
    out = tmp_path / "out"
    with connect("local:2") as cluster:  # its own: its workers are killed
        killed, grades = _kill_during(cluster, "doomed", 2, lambda: batch.grade_batch(
            subs, prof, prof.resolve({}), out, examples=5, seed=7, cluster=cluster))
    assert len(killed) == 2
    by_name = {g.submission.rsplit("-", 1)[0]: g for g in grades}
    assert by_name["doomed"].verdict == "grader-error" and by_name["doomed"].score == 0
    assert "died" in by_name["doomed"].incident and "on the cluster" in by_name["doomed"].incident
    assert {str(g.verdict) for n, g in by_name.items() if n != "doomed"} == {"pass", "fail"}  # the batch went on
    with connect("local:2") as cluster:
        again = batch.grade_batch(subs, prof, prof.resolve({}), out, examples=5, seed=7, cluster=cluster)
    assert {g.submission.rsplit("-", 1)[0]: str(g.verdict) for g in again}["doomed"] == "pass"  # graded again, alone
    rows = list(csv.DictReader((out / "gradebook.csv").open(encoding="utf-8")))
    assert len(rows) == len(subs) and not any(r["verdict"] == "grader-error" for r in rows)


@pytest.mark.slow
def test_the_grade_command_on_a_local_cluster(tmp_path, capsys):
    from gradverify.cli import main

    subs = [str(CORPUS / f"{n}.py") for n in ("correct_reference", "bug_sign_flipped")]
    code = main(["grade", *subs, "--assignment", "ex4", "--out", str(tmp_path / "out"), "--examples", "5",
                 "--scheduler", "local:2"])
    out = capsys.readouterr().out
    assert code == 1 and "a local cluster: 2 worker(s)" in out and "1 of 2 passed" in out
    assert re.search(r"sandbox  \w+ isolation \(.*\) on tcp://127\.0\.0\.1:\d+", out)  # each worker's sandbox, before
    assert "sandbox  2 submission(s) graded under" in out  # and each submission's, after
    assert main(["grade", *subs, "--assignment", "ex4", "--scheduler", "local:0"]) == 2


def _die(_):
    os.kill(os.getpid(), signal.SIGKILL)


def _square(x):
    return x * x


def test_a_task_that_kills_its_worker_twice_is_given_up_and_the_others_finish():
    tasks = [(i, _die if i == 3 else _square, (i,)) for i in range(8)]
    with connect("local:2") as cluster:  # its own: its workers die
        out = dict(cluster.stream(tasks, name="test"))
    assert sorted(out) == list(range(8))
    assert isinstance(out[3], Lost) and out[3].kind == "worker-died" and "died" in out[3].detail
    assert all(out[i] == i * i for i in range(8) if i != 3)


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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_dask(*args, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})}, start_new_session=True)


@pytest.mark.slow
def test_an_existing_scheduler_by_address_and_losing_it_mid_batch_keeps_what_is_done(tmp_path, capsys):
    from gradverify.cli import main

    address = f"tcp://127.0.0.1:{_free_port()}"
    policy = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}  # the README's scheduler command
    scheduler = _start_dask("scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard", env=policy)
    workers = _start_dask("worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard")
    try:
        with connect(address, timeout=60) as c:
            c.client.wait_for_workers(2, timeout=60)
            assert "the scheduler at tcp://127.0.0.1" in c.describe() and "dies 2 time(s)" in c.describe()
        subs = _batch(tmp_path, SOME[:4])
        prof = get_profile("ex4")
        out = tmp_path / "out"

        def lose_the_scheduler(done, total, grade, resumed):
            if done == 1:
                os.killpg(scheduler.pid, signal.SIGKILL)

        with connect(address) as c, pytest.raises(InputError, match="Lost the connection to the Dask scheduler"):
            batch.grade_batch(subs, prof, prof.resolve({}), out, examples=5, seed=7, cluster=c, progress=lose_the_scheduler)
        done = {p.parent.name for p in out.glob("*/feedback.json")}
        assert 1 <= len(done) < len(subs)  # what was done before the loss is kept
        scheduler.wait()
        os.killpg(workers.pid, signal.SIGKILL)  # workers whose scheduler died shut down; start a new cluster
        workers.wait()
        scheduler = _start_dask("scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard", env=policy)
        workers = _start_dask("worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard")
        with connect(address, timeout=60) as c:
            c.client.wait_for_workers(2, timeout=60)
        code = main(["grade", str(tmp_path / "batch"), "--assignment", "ex4", "--out", str(out), "--examples", "5",
                     "--seed", "7", "--scheduler", address])
        printed = capsys.readouterr().out
        assert code == 1 and f"{len(done)} already graded (resumed)" in printed  # the rest graded by address, once
        rows = list(csv.DictReader((out / "gradebook.csv").open(encoding="utf-8")))
        assert sorted(r["submission"] for r in rows) == sorted(s.name for s in subs)
    finally:
        for proc in (workers, scheduler):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
