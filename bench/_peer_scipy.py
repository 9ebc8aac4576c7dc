"""Benchmark peer: SciPy (``scipy.optimize.check_grad`` and its estimate ``approx_fprime``).

Run by ``bench/run.py`` as ``python bench/_peer_scipy.py TASK.json``; prints one JSON line.
The cost is a plain numpy function of the flat parameters (``_peer_common.numpy_cost``); the
gradient it checks is gradverify's backprop engine (what a user checks with it). Both are
forward differences with SciPy's default step √eps: P + 1 cost evaluations.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peer_common import (emit, extrapolate_linear, flat, load_problem, measure, numpy_cost, read_task, restrict,  # noqa: E402
                          save_arrays, shapes, subset_indices, unflat_np)

import scipy  # noqa: E402
from scipy.optimize import approx_fprime, check_grad  # noqa: E402


def engine_grad(prob: dict):
    from gradverify.backprop import cost_and_grad
    from gradverify.spec import parse_spec

    net = parse_spec(prob["spec"], lam=prob["lam"])
    shp = shapes(prob)

    def grad(theta):
        arrs = unflat_np(theta, shp)
        params = {f"{'W' if i % 2 == 0 else 'b'}{i // 2 + 1}": a for i, a in enumerate(arrs)}
        _, g = cost_and_grad(net, params, prob["X"], prob["Y"])
        return np.concatenate([g[name].reshape(-1) for name, _ in net.param_shapes])

    return grad


def fd(task: dict) -> dict:
    out = {}
    for pid in task["problems"]:
        prob = load_problem(task, pid)
        J, grad = numpy_cost(prob), engine_grad(prob)
        theta0 = flat(prob["Ws"], prob["bs"])
        P = theta0.size
        res = {}
        if P <= max(task["subset_sizes"]):
            res["check_grad"] = measure(lambda: check_grad(J, grad, theta0), repeats=task["repeats"], budget=task["budget"])
            res["check_grad"]["value"] = float(check_grad(J, grad, theta0))
            t0 = time.perf_counter()
            est = approx_fprime(theta0, J)
            res["approx_fprime_seconds"] = time.perf_counter() - t0
            save_arrays(task, f"fd_scipy_{pid}", estimate=est, idx=np.arange(P))
        else:
            pts = []
            for k in task["subset_sizes"]:
                idx = subset_indices(P, k)
                Jk = restrict(J, theta0, idx)
                gk = lambda x, idx=idx: grad(_put(theta0, idx, x))[idx]  # noqa: E731
                t = measure(lambda: check_grad(Jk, gk, theta0[idx]), repeats=3, budget=task["budget"])
                pts.append((len(idx), t["median"]))
            est_s, slope = extrapolate_linear(pts, P)
            res["check_grad"] = {"extrapolated": True, "median": est_s, "from_subsets": pts, "per_param": slope}
            if est_s <= task["full_cap"]:
                t0 = time.perf_counter()
                value = check_grad(J, grad, theta0)
                s = time.perf_counter() - t0
                res["check_grad"] = {"median": s, "q1": s, "q3": s, "min": s, "max": s, "n": 1, "value": float(value)}
            else:
                res["check_grad"]["reason"] = (f"estimated {est_s:.0f} s > cap {task['full_cap']:.0f} s: timed on subsets of "
                                               f"{', '.join(str(k) for k, _ in pts)} parameters and extrapolated linearly")
            idx = subset_indices(P, max(task["subset_sizes"]))
            est = approx_fprime(theta0[idx], restrict(J, theta0, idx))
            save_arrays(task, f"fd_scipy_{pid}", estimate=est, idx=idx)
        out[pid] = res
    return out


def _put(theta0, idx, x):
    th = theta0.copy()
    th[idx] = x
    return th


def main() -> None:
    task = read_task()
    t0 = time.perf_counter()
    result = {"fd": fd(task), "fd_wall": time.perf_counter() - t0}
    emit({"peer": "scipy", "version": scipy.__version__, "result": result})


if __name__ == "__main__":
    main()
