"""Benchmark peer: JAX (``jit(value_and_grad)`` in float64; ``jax.test_util.check_grads``).

Run by ``bench/run.py`` as ``python bench/_peer_jax.py TASK.json``; prints one JSON line.
float64 via ``jax_enable_x64``; every timed call ends in ``block_until_ready``. The compile time
(first call) is reported separately and excluded from the medians.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peer_common import emit, flat, load_problem, measure, read_task, save_arrays  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_platforms", "cpu")
import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402


def make_cost(prob: dict):
    m, lam, L = prob["X"].shape[0], prob["lam"], len(prob["Ws"])
    c = lam / (2 * m)

    def cost(params, X, Y):
        H = X
        for k in range(L):
            A = H @ params[2 * k].T + params[2 * k + 1]
            if k < L - 1:
                H = jax.nn.sigmoid(A)
        J = jnp.sum(jax.nn.softplus(A) - Y * A) / m  # BCE from the logits, as optax/flax write it
        if c:
            J = J + c * sum(jnp.sum(params[2 * k] ** 2) for k in range(L))
        return J

    return cost


def arrays(prob: dict):
    params = []
    for W, b in zip(prob["Ws"], prob["bs"]):
        params += [jnp.asarray(W), jnp.asarray(b)]
    return params, jnp.asarray(prob["X"]), jnp.asarray(prob["Y"])


def backprop(task: dict) -> dict:
    out = {}
    for pid in task["problems"]:
        prob = load_problem(task, pid)
        cost = make_cost(prob)
        params, X, Y = arrays(prob)
        vg = jax.jit(jax.value_and_grad(cost))
        fwd = jax.jit(cost)
        t0 = time.perf_counter()
        J, grads = jax.block_until_ready(vg(params, X, Y))
        compile_s = time.perf_counter() - t0
        jax.block_until_ready(fwd(params, X, Y))
        g = [np.asarray(x) for x in grads]
        save_arrays(task, f"backprop_jax_{pid}", grad=flat(g[0::2], g[1::2]), cost=np.float64(J))
        out[pid] = {"cost_and_grad": measure(lambda: jax.block_until_ready(vg(params, X, Y)), repeats=task["repeats"], budget=task["budget"]),
                    "forward": measure(lambda: jax.block_until_ready(fwd(params, X, Y)), repeats=task["repeats"], budget=task["budget"]),
                    "compile_first_call": compile_s, "cost": float(J)}
    return out


def fd(task: dict) -> dict:
    out = {}
    for pid in task["problems"]:
        prob = load_problem(task, pid)
        cost = make_cost(prob)
        params, X, Y = arrays(prob)
        shp = [a.shape for a in params]
        sizes = [int(np.prod(s)) for s in shp]
        splits = list(np.cumsum(sizes)[:-1])

        @jax.jit
        def f(theta):
            return cost([p.reshape(s) for p, s in zip(jnp.split(theta, splits), shp)], X, Y)

        theta = jnp.asarray(flat(prob["Ws"], prob["bs"]))

        def check():
            try:
                check_grads(f, (theta,), order=1, modes=["rev"])
                return True
            except AssertionError:
                return False

        t0 = time.perf_counter()
        ok = check()
        first = time.perf_counter() - t0
        t = measure(check, repeats=task["repeats"], warmup=0, budget=task["budget"])
        t["passed"], t["first_call"] = ok, first
        out[pid] = {"check_grads_rev": t}
    return out


def main() -> None:
    task = read_task()
    result = {}
    for section in task["sections"]:
        t0 = time.perf_counter()
        result[section] = {"backprop": backprop, "fd": fd}[section](task)
        result[section + "_wall"] = time.perf_counter() - t0
    emit({"peer": "jax", "version": jax.__version__, "devices": [str(d) for d in jax.devices()], "result": result})


if __name__ == "__main__":
    main()
