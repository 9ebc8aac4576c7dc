"""Time of the exact oracle against parameter count: full, scalable and batched mode, naive sympy.diff.

Usage::

    PYTHONPATH=. python bench/bench_symbolic.py            # the whole table (a few minutes)
    PYTHONPATH=. python bench/bench_symbolic.py --quick    # skip the slow pure-SymPy rows

Each row is one ``exact_gradient`` call on a seeded random problem (λ = 1), timed after a warm-up
of the imports (wall and process CPU time: the CPU column is what to compare on a shared machine);
"digits" is what the result certified (Arb balls). The naive baseline builds J with SymPy and
runs ``sympy.diff`` + ``evalf(30, subs=…)`` per parameter; a series stops after its first row
over ``--budget`` CPU seconds. Real sizes (m up to 5000) and the comparison with the previous
(MPFR) oracle: ``bench/bench_oracle.py``; recorded figures: bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time

import sympy

from gradverify import symbolic
from gradverify.problems import debug_problem, random_problem
from gradverify.spec import parse_spec
from gradverify.symbolic import FULL_MODE_LIMIT, cost_expression, exact_gradient


def _naive(problem) -> int:
    """Per-parameter sympy.diff of the whole cost, evaluated with evalf at 30 digits."""
    J, symbols = cost_expression(problem)
    values = {}
    for name, _ in problem.network.param_shapes:
        for s, v in zip((s for n, s in symbols.items() if n.split("[")[0] == name), problem.params[name].reshape(-1)):
            values[s] = sympy.Rational(float(v))
    for s in symbols.values():
        sympy.diff(J, s).evalf(30, subs=values)
    return 30


SERIES = {
    # (label, mode, backend, [(spec, m), ...])
    "full/symengine": ("full", "symengine", [("3-5-3", 5), ("6-8-4", 5), ("5-16-4", 5), ("10-30-5", 5), ("20-40-10", 5), ("30-60-10", 5)]),
    "full/sympy": ("full", "sympy", [("3-5-3", 5), ("6-8-4", 5), ("5-16-4", 5), ("10-30-5", 5)]),
    "naive sympy.diff": ("naive", "sympy", [("3-5-3", 5), ("6-8-4", 5), ("5-16-4", 5)]),
    "scalable/symengine": ("scalable", "symengine", [("3-5-3", 5), ("20-40-10", 5), ("100-50-10", 10), ("400-25-10", 100),
                                                     ("784-128-10", 5), ("784-128-10", 10)]),
    "scalable/sympy": ("scalable", "sympy", [("3-5-3", 5), ("100-50-10", 10), ("400-25-10", 100), ("784-128-10", 10)]),
    "batched": ("batched", "auto", [("3-5-3", 5), ("20-40-10", 5), ("100-50-10", 10), ("400-25-10", 100),
                                     ("784-128-10", 10), ("784-128-10", 100)]),
}
SLOW = {"full/sympy", "naive sympy.diff", "scalable/sympy"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the pure-SymPy series")
    parser.add_argument("--budget", type=float, default=10.0, help="stop a series after a row slower than this (s)")
    args = parser.parse_args(argv)
    exact_gradient(debug_problem(), mode="full")  # warm-up: imports, caches
    exact_gradient(debug_problem(), mode="scalable")
    exact_gradient(debug_problem(), mode="batched")
    print(f"FULL_MODE_LIMIT (P²·m) = {FULL_MODE_LIMIT}; lifted for the full/* series, which show raw full-mode times")
    limits = dict(FULL_MODE_LIMIT)
    print(f"{'series':<20} {'network':<12} {'P':>7} {'m':>4} {'wall s':>8} {'cpu s':>8} {'digits':>6}  notes")
    for label, (mode, backend, rows) in SERIES.items():
        if args.quick and label in SLOW:
            continue
        for spec, m in rows:
            problem = random_problem(parse_spec(spec, lam=1.0), m=m, seed=0)
            t0, c0 = time.perf_counter(), time.process_time()
            if mode == "naive":
                digits, note = _naive(problem), ""
            else:
                symbolic.FULL_MODE_LIMIT.update({k: (10**18 if mode == "full" else v) for k, v in limits.items()})
                result = exact_gradient(problem, mode=mode, backend=backend)
                digits = result.digits
                note = "; ".join(n[:60] for n in result.notes) + ("" if result.mode == mode else f" (ran {result.mode})")
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(f"{label:<20} {spec:<12} {problem.network.n_params:>7} {m:>4} {seconds:>8.2f} {cpu:>8.2f} {digits:>6}  {note}", flush=True)
            if cpu > args.budget:
                break
    symbolic.FULL_MODE_LIMIT.update(limits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
