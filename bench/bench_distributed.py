"""Grading on a Dask cluster: `--jobs 2` against `--scheduler local:2` on one batch, and an estimate for 10 and 100 workers.

Run from the repository root (needs ``pip install -e '.[distributed]'``):

    python3 bench/bench_distributed.py                 # ~8 min on 2 cores; writes its section of bench/RESULTS.md
    python3 bench/bench_distributed.py --batch 40 --rounds 1 --out /tmp/r.md   # a quick look

What it measures, all on the same batch (the ex4 corpus of the tests repeated, each copy a
distinct file, as in section 4 of RESULTS.md):

1. ``grade_batch(jobs=2)`` (also in the environment Dask gives its workers: one BLAS thread,
   malloc trimming) and ``grade_batch(cluster=local:2)``, in alternating rounds (the machine is
   shared), best round of each; the cluster's start-up timed apart and also added
   (what one ``gradverify grade --scheduler local:2`` command pays);
2. the engine's own costs, with no grading in them: tasks that do nothing, one per worker thread
   in flight (how grading submits them: the idle time of a worker between two tasks) and many in
   flight (what the scheduler and this client can dispatch per second at most);
3. the client's serial work per result: writing a submission's three files (atomically, with
   fsync) and rewriting the gradebook at 1,000 and 10,000 rows;
4. from those, throughput at 10 and 100 workers:
   ``min(W / (t_task + t_gap), 1 / (t_dispatch + t_write + t_gradebook(N)))``.

The section it writes in RESULTS.md sits between two markers; ``bench/run.py`` keeps it when it
rewrites the rest of the file, and this script replaces only it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _results import write_section

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

BEGIN, END = "<!-- bench_distributed: begin -->", "<!-- bench_distributed: end -->"
T_OVERHEAD = 0.10  # the target: the engine costs at most 10 % on one machine
LABELS = {"jobs": "jobs 2", "jobs_env": "jobs 2 in the workers' environment", "cold": "local:2, new cluster",
          "warm": "local:2, running cluster"}


def make_batch(folder: Path, n: int) -> None:
    corpus = ROOT / "tests" / "submissions" / "ex4"
    files = sorted(corpus.glob("*.py"))
    folder.mkdir(parents=True)
    for i in range(n):
        src = files[i % len(files)]
        (folder / f"{src.stem}_{i:03d}.py").write_text(f"# student {i}\n" + src.read_text())


def grade(folder: Path, out: Path, examples: int, cluster=None) -> tuple[float, list]:
    from gradverify.grading.batch import discover, grade_batch
    from gradverify.profiles import get_profile

    prof = get_profile("ex4")
    t0 = time.perf_counter()
    grades = grade_batch(discover([folder]), prof, prof.resolve({}), out, jobs=2, examples=examples, seed=0, cluster=cluster)
    return time.perf_counter() - t0, grades


@contextlib.contextmanager
def worker_environment():
    """The environment Dask's nannies give their workers (one BLAS thread, malloc trimming), for a pool to compare with."""
    import dask

    extra = {k: str(v) for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items()}
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield extra
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _nothing(x):
    return x


def dispatch(cluster, n: int, window: int | None) -> float:
    """Seconds per task for ``n`` tasks that do nothing, ``window`` in flight (None: one per worker thread)."""
    t0 = time.perf_counter()
    count = sum(1 for _ in cluster.stream(((i, _nothing, (i,)) for i in range(n)), name="bench", window=window))
    assert count == n
    return (time.perf_counter() - t0) / n


def client_writes(grade_, rows: tuple[int, ...]) -> dict:
    """The client's work per result: a submission's files, and the gradebook rewritten at ``rows`` rows."""
    from gradverify._io import write_atomic
    from gradverify.grading import batch
    from gradverify.grading.feedback import gradebook_csv
    from gradverify.grading.grader import Grade

    out = {}
    with tempfile.TemporaryDirectory(prefix="gradverify-bench-") as d:
        d = Path(d)
        times = []
        for i in range(40):
            g = Grade.from_dict({**grade_.to_dict(), "submission": f"s{i:03d}"})
            t0 = time.perf_counter()
            batch._write_outputs(d, g)
            times.append(time.perf_counter() - t0)
        out["files"] = statistics.median(times)
        for n in rows:
            grades = [Grade.from_dict({**grade_.to_dict(), "submission": f"s{i:05d}"}) for i in range(n)]
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                write_atomic(d / "gradebook.csv", gradebook_csv(grades))
                times.append(time.perf_counter() - t0)
            out[f"gradebook_{n}"] = statistics.median(times)
    return out


def client_rate(t_dispatch: float, t_files: float, t_gradebook: float, every: float) -> float:
    """Results per second the client can take in: its serial work per result, and the gradebook's.

    ``every`` is the batch's ``GRADEBOOK_EVERY``: 0 rewrites the gradebook after every result (its
    size grows from 0 to N rows: ½·t(N) per result on average); otherwise at most once per
    ``every`` seconds, a fixed share t(N)/every of the client's time.
    """
    per_result = t_dispatch + t_files
    if every:
        return max(0.0, 1.0 - t_gradebook / every) / per_result
    return 1.0 / (per_result + 0.5 * t_gradebook)


def estimate(workers: int, t_task: float, t_gap: float, by_client: float) -> tuple[float, str]:
    """Submissions per second at ``workers`` one-thread workers, and what limits it."""
    by_workers = workers / (t_task + t_gap)
    return (by_workers, "the workers") if by_workers <= by_client else (by_client, "the client")


def render(r: dict) -> str:
    L = [BEGIN, "## 7. Grading on a Dask cluster (`--scheduler`)", ""]
    add = L.append
    add(f"Generated by `python3 bench/bench_distributed.py{(' ' + ' '.join(r['argv'])) if r['argv'] else ''}` on {r['started']} (UTC) "
        f"in {r['seconds'] / 60:.1f} min; replaced by that command only (`bench/run.py` keeps this section as it is).")
    add("")
    add(f"- Machine: {r['cores']} cores, shared; load average at start {r['load_start']}, at end {r['load_end']}. "
        f"Versions: dask {r['dask']}, distributed {r['distributed']}, gradverify {r['gradverify']}.")
    add(f"- Batch: {r['n']} distinct submissions (the ex4 corpus of the tests repeated, each copy its own file), "
        f"{r['examples']} generated cases each, seed 0; verdicts {r['verdicts']}. "
        f"{r['rounds']} alternating round(s) per mode, the best kept: rounds {r['round_text']}.")
    add("")
    n, jobs, same, cold, warm = r["n"], r["jobs"], r["jobs_env"], r["cold"], r["warm"]
    over = cold / same - 1
    add("| what | measured | target |")
    add("|---|---:|---|")
    add(f"| `--jobs 2`: `grade_batch(…, jobs=2)`, a new pool of 2 processes | {n / jobs:.2f} submissions/s ({jobs:.1f} s) | |")
    add(f"| the same in the environment Dask gives its workers ({r['env']}) | {n / same:.2f} submissions/s ({same:.1f} s) | |")
    add(f"| `--scheduler local:2`: a new LocalCluster, `grade_batch(…, cluster=…)`, closed (start-up included) | "
        f"{n / cold:.2f} submissions/s ({cold:.1f} s) | |")
    add(f"| engine overhead on one machine: `--scheduler local:2` vs `--jobs 2` in the same environment | {100 * over:+.1f} % | "
        f"≤ 10 % {'**hit**' if over <= T_OVERHEAD else '**missed**'} |")
    add(f"| `--scheduler local:2` vs `--jobs 2` as it runs | {100 * (cold / jobs - 1):+.1f} % | |")
    add(f"| a cluster left running (its workers past their first tasks) | {n / warm:.2f} submissions/s ({warm:.1f} s) | |")
    add(f"| LocalCluster start-up (2 worker processes, version check) | {r['startup']:.2f} s | |")
    add(f"| time per submission on a worker (2 workers busy: 2 × wall ÷ N) | {r['t_task'] * 1e3:.0f} ms | |")
    add(f"| engine dispatch, one task per worker in flight (a worker's idle gap between two tasks) | "
        f"{r['t_gap'] * 1e3:.2f} ms per task per worker | |")
    add(f"| engine dispatch, {r['wide']} tasks in flight (scheduler + client, the most they pass per second) | "
        f"{r['t_dispatch'] * 1e3:.2f} ms per task ({1 / r['t_dispatch']:.0f} tasks/s) | |")
    w = r["writes"]
    add(f"| client: one submission's files written (3 files, atomic, fsync) | {w['files'] * 1e3:.1f} ms | |")
    add(f"| client: gradebook rewritten at 1,000 / 10,000 rows | {w['gradebook_1000'] * 1e3:.0f} ms / "
        f"{w['gradebook_10000'] * 1e3:.0f} ms | |")
    add("")
    every = r["gradebook_every"]
    add("**Estimate at 10 and 100 workers** (one thread each, the same submissions), from the figures above: a worker grades "
        f"one submission per t_task + t_gap = {(r['t_task'] + r['t_gap']) * 1e3:.0f} ms; the client takes in one result per "
        "t_dispatch + t_files, serially, whatever the number of workers, and "
        + (f"rewrites the gradebook at most every {every:g} s (a share t_gradebook(N) ÷ {every:g} s of its time)."
           if every else "rewrites the gradebook after every result (½ t_gradebook(N) per result on average)."))
    add("")
    add("| workers | batch of 1,000 | batch of 10,000 |")
    add("|---:|---:|---|")
    for workers in (10, 100):
        cells = []
        for rows in (1000, 10000):
            by_client = client_rate(r["t_dispatch"], w["files"], w[f"gradebook_{rows}"], r["gradebook_every"])
            rate, limit = estimate(workers, r["t_task"], r["t_gap"], by_client)
            cells.append(f"{rate:.0f} submissions/s ({limit})")
        add(f"| {workers} | {cells[0]} | {cells[1]} |")
    add("")
    add("Overheads are time ÷ time − 1 (negative: the cluster was faster). Both one-command modes start their processes and pay "
        "each process's first-submission costs (imports, the sandbox's isolation probe); a running cluster has paid them. Dask "
        "starts its workers with one BLAS thread and malloc trimming, which a pool inherits only from its parent's environment, "
        "so the engine is judged against the pool in that same environment.")
    add("")
    add("Reading: the workers scale linearly as long as the client keeps up; past that, the client's serial work per result "
        "(above all the three files written with fsync) caps the rate, before the scheduler does. t_task was measured on 2 "
        "shared cores (the client and the scheduler took their share), so a dedicated worker core is somewhat faster. Not "
        "measured: a network between client, scheduler and workers (a submission of a few KB each way; add the round trip to "
        "t_gap).")
    add(END)
    return "\n".join(L)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=60, help="submissions in the batch (default 60)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per mode (default 2)")
    parser.add_argument("--examples", type=int, default=20, help="generated cases per submission (default 20)")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"), help="the file whose section to replace (default bench/RESULTS.md)")
    args = parser.parse_args(argv)

    import dask
    import distributed

    from gradverify import __version__
    from gradverify.cluster import connect

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    started, t_start = dt.datetime.now(dt.timezone.utc), time.perf_counter()
    r = {"argv": sys.argv[1:] if argv is None else argv, "started": started.isoformat(timespec="seconds"), "n": args.batch,
         "examples": args.examples, "rounds": args.rounds, "cores": os.cpu_count(),
         "load_start": ", ".join(f"{x:.2f}" for x in os.getloadavg()), "dask": dask.__version__,
         "distributed": distributed.__version__, "gradverify": __version__}
    with tempfile.TemporaryDirectory(prefix="gradverify-bench-") as tmp:
        tmp = Path(tmp)
        make_batch(tmp / "batch", args.batch)
        make_batch(tmp / "warm", 4)
        log("starting a LocalCluster of 2 workers (kept running: the warm mode)")
        t0 = time.perf_counter()
        cluster = connect("local:2")
        r["startup"] = time.perf_counter() - t0
        try:
            grade(tmp / "warm", tmp / "warm-out-c", args.examples, cluster)  # the workers' first tasks: imports, probes
            times: dict[str, list[float]] = {"jobs": [], "jobs_env": [], "cold": [], "warm": []}
            for i in range(args.rounds):
                log(f"round {i + 1}: --jobs 2")
                times["jobs"].append(grade(tmp / "batch", tmp / f"out-jobs-{i}", args.examples)[0])
                log(f"round {i + 1}: --jobs 2 in the workers' environment")
                with worker_environment() as env:
                    times["jobs_env"].append(grade(tmp / "batch", tmp / f"out-env-{i}", args.examples)[0])
                log(f"round {i + 1}: --scheduler local:2, a new cluster (what one command does)")
                t0 = time.perf_counter()
                with connect("local:2") as fresh:
                    grade(tmp / "batch", tmp / f"out-cold-{i}", args.examples, fresh)
                times["cold"].append(time.perf_counter() - t0)
                log(f"round {i + 1}: --scheduler local:2, the running cluster")
                sec, grades = grade(tmp / "batch", tmp / f"out-warm-{i}", args.examples, cluster)
                times["warm"].append(sec)
            r["env"] = ", ".join(f"{k}={v}" for k, v in env.items())
            r.update({mode: min(ts) for mode, ts in times.items()})
            r["round_text"] = "; ".join(f"{LABELS[mode]}: " + ", ".join(f"{t:.1f} s" for t in ts) for mode, ts in times.items())
            r["verdicts"] = ", ".join(f"{sum(g.verdict == v for g in grades)} {v}" for v in sorted({str(g.verdict) for g in grades}))
            r["t_task"] = 2 * r["warm"] / args.batch
            from gradverify.grading import batch

            r["gradebook_every"] = float(getattr(batch, "GRADEBOOK_EVERY", 0.0))
            log("engine dispatch")
            dispatch(cluster, 100, None)  # warm-up
            r["t_gap"] = dispatch(cluster, 600, None) * 2  # per task per worker: two workers share the stream
            r["wide"] = 2000
            r["t_dispatch"] = dispatch(cluster, 3000, r["wide"])
        finally:
            cluster.close()
        log("client writes")
        r["writes"] = client_writes(grades[0], (1000, 10000))
    r["load_end"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    r["seconds"] = time.perf_counter() - t_start
    section = render(r)
    write_section(Path(args.out), "bench_distributed", section)
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
