"""Benchmark: the full per-parameter numerical gradient of 784-128-10 (P = 101,770) at m = 64.

Prints a table: method, seconds, forward-evaluation equivalents, max error estimate, and the
agreement between methods (the complex-step estimate is the reference for the others; it is
accurate to a few ulps). Run from the repository root:

    PYTHONPATH=. python bench/bench_finite_diff.py [--spec 784-128-10,784-128-10:relu] [--m 64] [--repeat 3] [--loop]

(complex step is skipped for ReLU networks).

``--loop`` also times the plain numpy loop of central differences over ``forward.cost`` (2P
forward passes) on a subset of parameters and extrapolates to P.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gradverify import forward
from gradverify.finite_diff import numeric_gradient
from gradverify.params import flatten, unflatten
from gradverify.problems import random_problem
from gradverify.spec import parse_spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="784-128-10")
    parser.add_argument("--m", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--methods", default="central,richardson,complex-step")
    parser.add_argument("--loop", action="store_true", help="also time the plain loop on 2,000 parameters")
    args = parser.parse_args(argv)
    for spec in args.spec.split(","):
        _bench(spec, args)
    return 0


def _bench(spec: str, args) -> None:
    net = parse_spec(spec)
    methods = [m for m in args.methods.split(",") if not (m == "complex-step" and "relu" in net.activations)]
    problem = random_problem(net, m=args.m, seed=0)
    print(f"\n{net.describe()}, m = {args.m}, random init (seed 0)")
    results = {}
    rows = []
    for method in methods:
        best = cpu_best = None
        for _ in range(args.repeat):
            cpu = time.process_time()
            r = numeric_gradient(problem, method=method)
            cpu = time.process_time() - cpu
            best = r if best is None or r.seconds < best.seconds else best
            cpu_best = cpu if cpu_best is None else min(cpu, cpu_best)
        results[method] = best
        rows.append((method, best.seconds, cpu_best, best.n_evals, float(best.flat("errors").max()), float(np.median(best.flat("errors")))))
    ref = results.get("complex-step") or results.get("richardson")
    print(f"{'method':<14}{'wall s':>8}{'cpu s':>8}{'evals':>9}{'max err est':>13}{'median err':>12}{'max |Δ| vs ref':>16}{'Δ ≤ err':>9}")
    for method, sec, cpu, ev, emax, emed in rows:
        delta = np.abs(results[method].flat() - ref.flat())
        ok = bool(np.all(delta <= results[method].flat("errors") + ref.flat("errors")))
        print(f"{method:<14}{sec:>8.3f}{cpu:>8.3f}{ev:>9d}{emax:>13.2e}{emed:>12.2e}{delta.max():>16.2e}{str(ok):>9}")
    print(f"(best of {args.repeat}; wall time is what counts, cpu time shows what a busy machine hides; "
          f"the reference for Δ is {'complex-step' if 'complex-step' in results else 'richardson'})")
    if args.loop:
        theta = flatten(problem.params, net)
        J = lambda th: forward.cost(net, unflatten(th, net), problem.X, problem.Y)  # noqa: E731
        n = min(2000, theta.size)
        start = time.perf_counter()
        for p in range(n):
            e = np.zeros_like(theta)
            e[p] = 1e-5
            (J(theta + e) - J(theta - e)) / 2e-5
        sec = (time.perf_counter() - start) * theta.size / n
        print(f"plain loop of central differences over forward.cost: {sec:.1f} s (extrapolated from {n} parameters)")


if __name__ == "__main__":
    raise SystemExit(main())
