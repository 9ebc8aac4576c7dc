"""How far apart backpropagation and numerical gradients are, in the unit the grader uses to tell them.

Run from the repository root:

    PYTHONPATH=. python bench/bench_cost_probe.py [--repeats 3]

For honest gradients (vectorized, per-example loops, a Python loop over every weight, loops over
every example, unit and weight) and numerical ones (central, forward and complex-step
differences, perturbations batched into arrays), each in its own sandbox exactly as
``grading.timing`` measures them: the worker's CPU time (from the kernel) on the debug network
3-5-3 and on 400-25-10 (m = 2), in forward passes of the large network timed by the worker
itself before the submission loads. Prints the extra forward passes per parameter (the grader
calls a gradient numerical at 0.5) and the margin of each to that line. No assertion: the
numbers depend on the machine and its load; the line must stay between the two groups.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUBMISSIONS = ROOT / "tests" / "submissions"
HONEST = ["ex4/correct_reference", "ex4/correct_loop", "ex4/correct_per_weight_loop", "ex4/correct_scalar_loops"]
NUMERICAL = ["ex4/bug_numerical_gradient", "hostile/forward_differences", "hostile/complex_step", "hostile/batched_numeric"]


def measure(path: Path, repeats: int) -> tuple[float, float, int]:
    """(extra forward passes per parameter, seconds of the large call, P) for one submission."""
    from gradverify.grading.cases import cases_for
    from gradverify.grading.runner import Runner
    from gradverify.grading.sandbox import Sandbox
    from gradverify.grading.timing import judge_cost
    from gradverify.profiles import get_profile

    prof = get_profile("ex4")
    settings = prof.resolve({})
    cases = cases_for(prof, settings, seed=1)
    small, large = cases.small.problem, cases.large.problem
    calibrate = [(small.network.sizes, small.m), (large.network.sizes, large.m)]
    with Sandbox(path, calibrate=calibrate) as box:
        run = Runner(box, prof, settings)
        for _ in range(5):
            run.call(small, "small")
        results = [run.call(large, "large") for _ in range(repeats)]
        probe = judge_cost(run.cheapest_cpu(small), results, box.calibration,
                           (small.network.compact, large.network.compact), (small.network.n_params, large.network.n_params))
    if probe is None:
        return float("nan"), float("nan"), large.network.n_params
    return probe.extra_passes / probe.params[1], probe.large, probe.params[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from gradverify.grading.sandbox import detect_isolation
    from gradverify.grading.timing import THRESHOLD

    print(detect_isolation())
    print(f"{'submission':<34} {'kind':<10} {'passes / P':>10} {'large call':>11} {'margin':>7}")
    for group, names in (("honest", HONEST), ("numerical", NUMERICAL)):
        for name in names:
            per_param, seconds, _ = measure(SUBMISSIONS / f"{name}.py", args.repeats)
            margin = (THRESHOLD / per_param if per_param > 0 else float("inf")) if group == "honest" else per_param / THRESHOLD
            print(f"{name:<34} {group:<10} {per_param:>10.3f} {seconds * 1e3:>9.1f}ms {margin:>6.1f}×", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
