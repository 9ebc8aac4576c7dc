"""Shared by every benchmark peer: the task protocol, the timer, and loading the problems.

A peer is run by ``bench/run.py`` as ``python bench/_peer_NAME.py TASK.json``. The task names the
problems file (one ``.npz`` the parent wrote, so every peer sees the same float64 arrays), the
problems to run, and the timing budget. The peer prints one JSON object on its last stdout line;
large arrays (numerical gradient estimates, for accuracy) go to ``TASK['out_dir']`` as ``.npz``.

This module imports numpy only, so the torch/JAX peers do not pull gradverify in.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def read_task() -> dict:
    return json.loads(Path(sys.argv[1]).read_text())


def emit(result: dict) -> None:
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()


def load_problem(task: dict, pid: str) -> dict:
    """One problem as plain arrays: sizes, lam, Ws, bs (Wₖ of shape (nₖ, nₖ₋₁)), X (m, n₀), Y (m, n_L)."""
    with np.load(task["npz"]) as z:
        meta = json.loads(str(z[f"{pid}/meta"]))
        L = len(meta["sizes"]) - 1
        Ws = [z[f"{pid}/W{k}"].copy() for k in range(1, L + 1)]
        bs = [z[f"{pid}/b{k}"].copy() for k in range(1, L + 1)]
        X, Y = z[f"{pid}/X"].copy(), z[f"{pid}/Y"].copy()
    return {"id": pid, **meta, "Ws": Ws, "bs": bs, "X": X, "Y": Y}


def flat(Ws, bs) -> np.ndarray:
    """W1, b1, W2, b2, … flattened in C order: gradverify's canonical flat layout."""
    return np.concatenate([a.reshape(-1) for W, b in zip(Ws, bs) for a in (W, b)])


def shapes(prob: dict) -> list[tuple[int, ...]]:
    out = []
    for W, b in zip(prob["Ws"], prob["bs"]):
        out += [W.shape, b.shape]
    return out


def unflat_np(theta: np.ndarray, shp) -> list[np.ndarray]:
    out, pos = [], 0
    for s in shp:
        n = int(np.prod(s))
        out.append(theta[pos:pos + n].reshape(s))
        pos += n
    return out


def numpy_cost(prob: dict):
    """J(θ) of the lecture (sigmoid units, sigmoid outputs + BCE from the logits, λ/(2m)ΣW²) in plain numpy.

    Written independently of gradverify for the scipy/numdifftools peers: they only need a cost.
    """
    shp, X, Y, lam = shapes(prob), prob["X"], prob["Y"], prob["lam"]
    m, L = X.shape[0], len(prob["Ws"])

    def softplus(a):
        return np.maximum(a, 0.0) + np.log1p(np.exp(-np.abs(a)))

    def J(theta):
        arrs = unflat_np(np.asarray(theta, dtype=np.float64), shp)
        H = X
        for k in range(L):
            A = H @ arrs[2 * k].T + arrs[2 * k + 1]
            if k < L - 1:
                H = 0.5 * (1.0 + np.tanh(0.5 * A))  # σ(a), overflow-free
        data = np.sum(softplus(A) - Y * A) / m
        reg = lam / (2 * m) * sum(np.sum(arrs[2 * k] ** 2) for k in range(L))
        return float(data + reg)

    return J


def stats(samples: list[float], number: int = 1) -> dict:
    a = np.asarray(samples, dtype=float)
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {"median": float(med), "q1": float(q1), "q3": float(q3), "min": float(a.min()), "max": float(a.max()),
            "n": int(a.size), "number": int(number)}


def measure(fn, *, repeats: int = 7, warmup: int = 1, min_sample: float = 0.02, budget: float = 20.0) -> dict:
    """Median (IQR, min/max) seconds per call of ``fn()`` after ``warmup`` untimed calls.

    Fast calls are looped ``number`` times per sample so each sample lasts ≥ ``min_sample`` s;
    slow calls get fewer samples so the whole measurement stays near ``budget`` seconds (≥ 3 samples
    unless a single call exceeds the budget, then 1).
    """
    t0 = time.perf_counter()
    for _ in range(warmup):
        fn()
    first = (time.perf_counter() - t0) / max(warmup, 1) if warmup else None
    if first is None:
        t0 = time.perf_counter()
        fn()
        first = time.perf_counter() - t0
    number = max(1, int(min_sample / max(first, 1e-9)))
    per_sample = first * number
    n = int(max(1, min(repeats, budget // max(per_sample, 1e-9))))
    if n < 3 and per_sample * 3 <= 2.5 * budget:
        n = 3
    samples, cpu = [], []
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t0) / number)
        cpu.append((time.process_time() - c0) / number)
    out = stats(samples, number)
    out["cpu"] = stats(cpu, number)  # CPU time of the whole process (all its threads)
    out["first_call"] = first
    return out


def time_once(fn):
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def threads() -> int:
    return int(os.environ.get("GRADVERIFY_BENCH_THREADS", "1"))


def save_arrays(task: dict, name: str, **arrays) -> str:
    path = Path(task["out_dir"]) / f"{name}.npz"
    np.savez(path, **arrays)
    return str(path)


def subset_indices(P: int, k: int) -> np.ndarray:
    """k indices spread evenly over all layers' parameters (for timing/accuracy on a subset)."""
    return np.unique(np.linspace(0, P - 1, k).round().astype(np.int64))


def restrict(J, theta0: np.ndarray, idx: np.ndarray):
    """J as a function of theta[idx] only, the other entries fixed at theta0."""
    def Jk(x):
        th = theta0.copy()
        th[idx] = x
        return J(th)
    return Jk


def extrapolate_linear(points: list[tuple[int, float]], P: int) -> tuple[float, float]:
    """Seconds at P from (k, seconds) points by a straight line through the first and last."""
    (k1, t1), (k2, t2) = points[0], points[-1]
    slope = (t2 - t1) / (k2 - k1) if k2 != k1 else t2 / k2
    return t1 + slope * (P - k1), slope
