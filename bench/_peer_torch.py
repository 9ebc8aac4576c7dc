"""Benchmark peer: PyTorch (float64 autograd; ``torch.autograd.gradcheck`` full and fast mode).

Run by ``bench/run.py`` as ``python bench/_peer_torch.py TASK.json``; prints one JSON line.
The cost is the lecture's, written the way a PyTorch user would: ``F.linear``, ``torch.sigmoid``,
``F.binary_cross_entropy_with_logits(reduction="sum") / m`` and λ/(2m)·ΣW².
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peer_common import emit, flat, load_problem, measure, read_task, save_arrays, threads  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(threads())
try:
    torch.set_num_interop_threads(1)
except RuntimeError:
    pass
torch.set_default_dtype(torch.float64)


def make_cost(prob: dict):
    X = torch.from_numpy(prob["X"])
    Y = torch.from_numpy(prob["Y"])
    m, lam, L = X.shape[0], prob["lam"], len(prob["Ws"])
    c = lam / (2 * m)

    def cost(params):
        H = X
        for k in range(L):
            A = F.linear(H, params[2 * k], params[2 * k + 1])
            if k < L - 1:
                H = torch.sigmoid(A)
        J = F.binary_cross_entropy_with_logits(A, Y, reduction="sum") / m
        if c:
            J = J + c * sum((params[2 * k] * params[2 * k]).sum() for k in range(L))
        return J

    return cost


def tensors(prob: dict, requires_grad=True):
    out = []
    for W, b in zip(prob["Ws"], prob["bs"]):
        out += [torch.from_numpy(W).clone().requires_grad_(requires_grad), torch.from_numpy(b).clone().requires_grad_(requires_grad)]
    return out


def backprop(task: dict) -> dict:
    out = {}
    for pid in task["problems"]:
        prob = load_problem(task, pid)
        cost, params = make_cost(prob), tensors(prob)

        def step():
            J = cost(params)
            return J, torch.autograd.grad(J, params)

        J, grads = step()
        save_arrays(task, f"backprop_torch_{pid}", grad=flat(*[[g.numpy() for g in grads[i::2]] for i in (0, 1)]),
                    cost=np.float64(J.item()))
        with torch.no_grad():
            t_fwd = measure(lambda: cost(params), repeats=task["repeats"], budget=task["budget"])
        out[pid] = {"cost_and_grad": measure(step, repeats=task["repeats"], budget=task["budget"]), "forward": t_fwd,
                    "cost": float(J.item())}
    return out


def flat_cost(prob: dict, idx_count: int | None = None):
    """f(θ) on the flat parameter vector (C order, W1, b1, …); with ``idx_count`` k, a function
    of the first k entries only (the rest fixed), for timing gradcheck on a subset."""
    cost = make_cost(prob)
    shp = []
    for W, b in zip(prob["Ws"], prob["bs"]):
        shp += [W.shape, b.shape]
    sizes = [int(np.prod(s)) for s in shp]
    theta0 = torch.from_numpy(flat(prob["Ws"], prob["bs"]))

    def f(theta):
        full = theta if idx_count is None else torch.cat([theta, theta0[idx_count:]])
        return cost([p.view(s) for p, s in zip(torch.split(full, sizes), shp)])

    x = theta0.clone() if idx_count is None else theta0[:idx_count].clone()
    return f, x.requires_grad_(True)


def _gradcheck(f, x, fast: bool) -> bool:
    return torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=fast, raise_exception=False)


def fd(task: dict) -> dict:
    out = {}
    for pid in task["problems"]:
        prob = load_problem(task, pid)
        P = sum(W.size + b.size for W, b in zip(prob["Ws"], prob["bs"]))
        res = {}
        f, x = flat_cost(prob)
        res["gradcheck_fast"] = measure(lambda: _gradcheck(f, x, True), repeats=task["repeats"], budget=task["budget"])
        res["gradcheck_fast"]["passed"] = bool(_gradcheck(f, x, True))
        cap = task["full_cap"]
        # estimate the full mode's time from two subsets (it is linear in P: 2 forward passes per entry)
        ks = [k for k in task["subset_sizes"] if k < P]
        if ks and P > max(task["subset_sizes"]):
            pts = []
            for k in ks:
                fk, xk = flat_cost(prob, k)
                t = measure(lambda: _gradcheck(fk, xk, False), repeats=3, budget=task["budget"])
                pts.append((k, t["median"]))
            (k1, t1), (k2, t2) = pts[0], pts[-1]
            slope = (t2 - t1) / (k2 - k1)
            est = t1 + slope * (P - k1)
            res["gradcheck_full_estimate"] = {"seconds": est, "from_subsets": pts, "per_param": slope}
        else:
            est = 0.0
        if est <= cap:
            t0 = time.perf_counter()
            ok = _gradcheck(f, x, False)
            first = time.perf_counter() - t0
            res["gradcheck_full"] = (measure(lambda: _gradcheck(f, x, False), repeats=task["repeats"], warmup=0,
                                             budget=task["budget"]) if first * 3 < task["budget"] else
                                     {"median": first, "q1": first, "q3": first, "min": first, "max": first, "n": 1})
            res["gradcheck_full"]["passed"] = bool(ok)
        else:
            res["gradcheck_full"] = {"extrapolated": True, "median": est,
                                     "reason": f"estimated {est:.0f} s > cap {cap:.0f} s: timed on subsets "
                                               f"of {', '.join(str(k) for k, _ in pts)} parameters and extrapolated linearly"}
        out[pid] = res
    return out


def main() -> None:
    task = read_task()
    result = {}
    for section in task["sections"]:
        t0 = time.perf_counter()
        result[section] = {"backprop": backprop, "fd": fd}[section](task)
        result[section + "_wall"] = time.perf_counter() - t0
    emit({"peer": "torch", "version": torch.__version__, "threads": torch.get_num_threads(),
          "config": torch.__config__.parallel_info().splitlines()[:8], "result": result})


if __name__ == "__main__":
    main()
