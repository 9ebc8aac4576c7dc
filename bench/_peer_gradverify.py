"""Benchmark peer: gradverify itself (backprop engine, finite differences, exact oracle, suite, sandbox).

Run by ``bench/run.py`` as ``python bench/_peer_gradverify.py TASK.json``; prints one JSON line.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peer_common import emit, load_problem, measure, read_task, save_arrays, time_once  # noqa: E402

from gradverify import forward  # noqa: E402
from gradverify.backprop import cost_and_grad  # noqa: E402
from gradverify.finite_diff import numeric_gradient  # noqa: E402
from gradverify.params import flatten  # noqa: E402
from gradverify.problems import debug_problem, random_problem  # noqa: E402
from gradverify.spec import Origin, make_problem, parse_spec  # noqa: E402
from gradverify.symbolic import exact_gradient  # noqa: E402


def problem_of(task: dict, pid: str):
    p = load_problem(task, pid)
    net = parse_spec(p["spec"], lam=p["lam"])
    params = {}
    for k, (W, b) in enumerate(zip(p["Ws"], p["bs"]), start=1):
        params[f"W{k}"], params[f"b{k}"] = W, b
    return make_problem(net, params, p["X"], Y=p["Y"], origin=Origin(note=pid))


# ---- sections ---------------------------------------------------------------------------------

def backprop(task: dict) -> dict:
    out = {}
    for pid in task["problems"]:
        pr = problem_of(task, pid)
        net, params, X, Y = pr.network, pr.params, pr.X, pr.Y
        J, grads = cost_and_grad(net, params, X, Y)
        save_arrays(task, f"backprop_gradverify_{pid}", grad=flatten(grads, net), cost=np.float64(J))
        t_grad = measure(lambda: cost_and_grad(net, params, X, Y), repeats=task["repeats"], budget=task["budget"])
        t_fwd = measure(lambda: forward.cost(net, params, X, Y), repeats=task["repeats"], budget=task["budget"])
        out[pid] = {"cost_and_grad": t_grad, "forward": t_fwd, "cost": float(J)}
    return out


def fd(task: dict) -> dict:
    out = {}
    for pid in task["problems"]:
        pr = problem_of(task, pid)
        res = {}
        for method in task.get("fd_methods", ["auto"]):
            r, first = time_once(lambda: numeric_gradient(pr, method=method))
            t = measure(lambda: numeric_gradient(pr, method=method), repeats=task["repeats"], warmup=0,
                        budget=task["budget"]) if first < task["budget"] else None
            save_arrays(task, f"fd_gradverify-{method}_{pid}", estimate=r.flat(), error=r.flat("errors"))
            res[method] = {"time": t or {"median": first, "q1": first, "q3": first, "min": first, "max": first, "n": 1},
                           "resolved": r.method, "n_evals": r.n_evals}
        out[pid] = res
    return out


def exact_ref(task: dict) -> dict:
    """The oracle's gradient of every fd problem, the reference for accuracy (and its time)."""
    out = {}
    for pid in task["problems"]:
        pr = problem_of(task, pid)
        if pr.network.n_params > task.get("exact_max_params", 10**9):
            # the oracle at this size takes minutes (scalable mode, m = 64): use the float64
            # engine, itself verified against the oracle by the tests, and say so
            (J, g), sec = time_once(lambda: cost_and_grad(pr.network, pr.params, pr.X, pr.Y))
            save_arrays(task, f"exact_{pid}", grad=flatten(g, pr.network))
            out[pid] = {"seconds": sec, "reference": "backprop engine (float64)"}
            continue
        e, sec = time_once(lambda: exact_gradient(pr))
        save_arrays(task, f"exact_{pid}", grad=flatten(e.grads, pr.network))
        out[pid] = {"seconds": sec, "reference": f"exact oracle ({e.mode}, {e.backend}, {e.digits} digits)"}
    return out


def _sym_problem(spec: str, m: int):
    if spec == "debug":
        return debug_problem()
    return random_problem(parse_spec(spec, lam=1.0), m=m, seed=0)


def symbolic(task: dict) -> dict:
    """Exact oracle: seconds vs P for each (spec, m, mode, backend) case; a naive sympy.diff baseline."""
    rows = []
    deadline = time.perf_counter() + task.get("section_budget", 600)
    for case in task["symbolic_cases"]:
        pr = _sym_problem(case["spec"], case["m"])
        row = dict(case, P=pr.network.n_params)
        if time.perf_counter() > deadline:
            row["skipped"] = "section time budget spent"
            rows.append(row)
            continue
        try:
            e, first = time_once(lambda: exact_gradient(pr, mode=case["mode"], backend=case["backend"]))
        except Exception as exc:  # record, don't stop the run
            row["error"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
            continue
        n_more = case.get("repeats", 1) - 1 if first < 15 else 0
        samples = [first]
        for _ in range(n_more):
            samples.append(time_once(lambda: exact_gradient(pr, mode=case["mode"], backend=case["backend"]))[1])
        row.update(seconds=float(np.median(samples)), min=min(samples), max=max(samples), n=len(samples),
                   used_mode=e.mode, used_backend=e.backend, digits=e.digits)
        rows.append(row)
    naive = []
    for case in task.get("naive_cases", []):
        naive.append(_naive_diff(_sym_problem(case["spec"], case["m"]), cap=case.get("cap", 60.0)) | case)
    return {"rows": rows, "naive": naive}


def _naive_diff(pr, cap: float) -> dict:
    """Per-parameter ``sympy.diff`` of the whole cost, each partial evaluated at 30 digits; capped."""
    import sympy

    from gradverify.params import scalar_names
    from gradverify.symbolic import cost_expression

    t0 = time.perf_counter()
    J, syms = cost_expression(pr)
    build = time.perf_counter() - t0
    values = dict(zip(scalar_names(pr.network), flatten(pr.params, pr.network)))
    subs = {syms[n]: sympy.Float(float(v), 40) for n, v in values.items()}
    done, t1 = 0, time.perf_counter()
    names = list(syms)
    for name in names:
        sympy.diff(J, syms[name]).evalf(30, subs=subs)
        done += 1
        if time.perf_counter() - t0 > cap:
            break
    per = (time.perf_counter() - t1) / max(done, 1)
    total = build + per * len(names)
    return {"P": len(names), "done": done, "build_seconds": build, "per_param": per, "seconds": total,
            "extrapolated": done < len(names), "cap": cap}


def suite(task: dict) -> dict:
    from gradverify.suite import run_suite

    run_suite(examples=10, max_params=60, seed=1)  # warm-up: imports, Hypothesis set-up
    samples, verdicts, records = [], [], []
    for i in range(task.get("suite_repeats", 1)):
        r = run_suite(examples=task["suite_examples"], max_params=60, seed=i)
        samples.append(r.seconds)
        verdicts.append("failure" if r.failure is not None or r.failure_error else "all pass")
        records.append(len(r.records))
    return {"examples": task["suite_examples"], "records": records, "seconds": samples, "verdicts": verdicts}


def sandbox(task: dict) -> dict:
    """Per-call overhead of the grading sandbox (start + import, and a trivial round trip)."""
    try:
        from gradverify.grading.sandbox import Sandbox, detect_isolation
    except Exception as exc:
        return {"error": f"gradverify.grading.sandbox not importable: {type(exc).__name__}: {exc}"}
    out = {}
    with tempfile.TemporaryDirectory() as d:
        sub = Path(d) / "submission.py"
        sub.write_text("import numpy as np\n\ndef echo(x):\n    return x\n\ndef cost(W, X):\n    return float(np.sum(X @ W.T))\n")
        try:
            iso, sec = time_once(detect_isolation)
            out["isolation"] = str(iso)
            out["detect_seconds"] = sec
            starts = []
            for _ in range(task.get("sandbox_starts", 3)):
                with Sandbox(sub) as sb:
                    r, s = time_once(sb.start)
                    if not r.ok:
                        return out | {"error": f"sandbox start: {r.kind}: {r.error}"}
                    starts.append(s)
            out["start"] = {"median": float(np.median(starts)), "min": min(starts), "max": max(starts), "n": len(starts)}
            with Sandbox(sub) as sb:
                sb.start()
                x = np.zeros(10)
                r = sb.call("echo", (x,))
                if not r.ok:
                    return out | {"error": f"sandbox call: {r.kind}: {r.error}"}
                out["call_small"] = measure(lambda: sb.call("echo", (x,)), repeats=15, budget=5)
                W, X = np.ones((25, 400)), np.ones((5000, 400))
                out["call_5000x400"] = measure(lambda: sb.call("cost", (W, X)), repeats=7, budget=5)
        except Exception as exc:
            out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def grading(task: dict) -> dict:
    """Submissions per minute of ``grade_batch`` on the ex4 corpus of the tests (bugs and correct ones)."""
    try:
        from gradverify.grading.batch import discover, grade_batch
        from gradverify.profiles import get_profile
    except Exception as exc:
        return {"error": f"gradverify.grading.batch not importable: {type(exc).__name__}: {exc}"}
    corpus = Path(__file__).resolve().parent.parent / "tests" / "submissions" / "ex4"
    if not corpus.is_dir():
        return {"error": f"no corpus at {corpus}"}
    subs = discover([corpus])[: task.get("grading_limit") or None]
    prof = get_profile("ex4")
    out = {"submissions": len(subs), "runs": []}
    for jobs in task.get("grading_jobs", [1, 2]):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            grades = grade_batch(subs, prof, prof.resolve({}), d, jobs=jobs, examples=task.get("grading_examples", 20))
            sec = time.perf_counter() - t0
        out["runs"].append({"jobs": jobs, "seconds": sec, "per_minute": 60 * len(subs) / sec,
                            "verdicts": {v: sum(1 for g in grades if g.verdict == v) for v in {g.verdict for g in grades}}})
    n = task.get("grading_batch") or 0
    if n:  # the batch: n distinct files (the corpus repeated, each copy with its own header)
        with tempfile.TemporaryDirectory() as d:
            folder = Path(d) / "batch"
            folder.mkdir()
            files = sorted(corpus.glob("*.py"))
            for i in range(n):
                src = files[i % len(files)]
                (folder / f"{src.stem}_{i:03d}.py").write_text(f"# student {i}\n" + src.read_text())
            t0 = time.perf_counter()
            grades = grade_batch(discover([folder]), prof, prof.resolve({}), Path(d) / "out", jobs=2,
                                 examples=task.get("grading_examples", 20))
            sec = time.perf_counter() - t0
        out["batch"] = {"submissions": n, "jobs": 2, "seconds": sec,
                        "verdicts": {v: sum(1 for g in grades if g.verdict == v) for v in {g.verdict for g in grades}}}
    return out


SECTIONS = {"grading": grading, "backprop": backprop, "fd": fd, "exact_ref": exact_ref, "symbolic": symbolic, "suite": suite, "sandbox": sandbox}


def main() -> None:
    task = read_task()
    import gradverify
    info = {"peer": "gradverify", "pid": os.getpid()}
    result = {}
    for section in task["sections"]:
        t0 = time.perf_counter()
        result[section] = SECTIONS[section](task)
        result[section + "_wall"] = time.perf_counter() - t0
    emit(info | {"result": result, "gradverify_file": gradverify.__file__})


if __name__ == "__main__":
    main()
