"""Benchmark peer: numdifftools (``nd.Gradient``, its defaults: central differences, Richardson extrapolation).

Run by ``bench/run.py`` as ``python bench/_peer_numdifftools.py TASK.json``; prints one JSON line.
``full_output=True`` also returns numdifftools' own error estimate, checked against the oracle.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peer_common import (emit, extrapolate_linear, flat, load_problem, measure, numpy_cost, read_task, restrict,  # noqa: E402
                          save_arrays, subset_indices)

import numdifftools as nd  # noqa: E402


def fd(task: dict) -> dict:
    out = {}
    for pid in task["problems"]:
        prob = load_problem(task, pid)
        J = numpy_cost(prob)
        theta0 = flat(prob["Ws"], prob["bs"])
        P = theta0.size
        res = {}
        subsets = task["nd_subset_sizes"]
        if P <= max(task["subset_sizes"]):
            grad = nd.Gradient(J, full_output=True)
            res["gradient"] = measure(lambda: grad(theta0), repeats=task["repeats"], budget=task["budget"])
            r = grad(theta0)
            est, info = r.estimate, r
            save_arrays(task, f"fd_numdifftools_{pid}", estimate=np.asarray(est, dtype=float).reshape(-1),
                        error=np.asarray(info.error_estimate, dtype=float).reshape(-1), idx=np.arange(P))
        else:
            pts, last = [], None
            for k in subsets:
                idx = subset_indices(P, k)
                grad = nd.Gradient(restrict(J, theta0, idx), full_output=True)
                t0 = time.perf_counter()
                last = (idx, grad(theta0[idx]))
                pts.append((len(idx), time.perf_counter() - t0))
            est_s, slope = extrapolate_linear(pts, P)
            res["gradient"] = {"extrapolated": True, "median": est_s, "from_subsets": pts, "per_param": slope,
                               "reason": f"estimated {est_s:.0f} s > cap {task['full_cap']:.0f} s: timed on subsets of "
                                         f"{', '.join(str(k) for k, _ in pts)} parameters and extrapolated linearly"
                               if est_s > task["full_cap"] else ""}
            idx, r = last
            est, info = r.estimate, r
            save_arrays(task, f"fd_numdifftools_{pid}", estimate=np.asarray(est, dtype=float).reshape(-1),
                        error=np.asarray(info.error_estimate, dtype=float).reshape(-1), idx=idx)
        out[pid] = res
    return out


def main() -> None:
    task = read_task()
    t0 = time.perf_counter()
    result = {"fd": fd(task), "fd_wall": time.perf_counter() - t0}
    emit({"peer": "numdifftools", "version": nd.__version__, "result": result})


if __name__ == "__main__":
    main()
