"""A numerical gradient, told by what it costs: the extra CPU time a large network takes, in forward passes.

Backpropagation costs a few forward passes, whatever the number of parameters P. A numerical
gradient — central, forward or complex-step differences, Richardson, perturbations batched into
one array — evaluates the cost once or more *per parameter*: at least ~P forward passes. So the
submission is timed on a small network (the debug network, from the calls the checks make
anyway) and on a large one (400-25-2, P = 10,077), and the *extra* time the large one takes is
counted in forward passes of that network. A forward pass is timed by the sandbox's worker
itself, in the same process and under the same limits, before any student code runs (its
"caged" message: unforgeable); the submission's calls are timed by the grader from the kernel's
count of the worker's CPU time (``/proc/PID/task/*/schedstat``: unforgeable too, and blind to
the machine's load — a process waiting for a CPU accrues none).

A gradient whose extra cost is at least P/2 forward passes is called numerical, whatever its
accuracy. The margins, measured in the sandbox on this project's machine (bench/RESULTS.md has
the table): honest code stays below P/5 even written with a Python loop over every weight
(≈ 0.19 P) or over every example, unit and weight (≈ 0.05 P; a batch of m = 2 keeps
per-example loops cheap); numerical gradients cost 1.6 P (forward differences with a lean
forward pass) to 5 P (perturbations batched into one array) — a factor of 2.6 or more on either
side of the line. The large call is repeated once when it looks numerical — in a fresh process, so
that nothing the first call computed is at hand — and the cheaper of the two counts, its answer
being the one judged.
A gradient computed numerically at a cost far below P forward passes (perturbing one layer at
a time with a cached forward pass) is not caught here: that is a clever algorithm, not a
careless one.
"""

from __future__ import annotations

from dataclasses import dataclass

from gradverify.grading.protocol import CallResult

__all__ = ["CostProbe", "judge_cost", "measured", "THRESHOLD", "MIN_SECONDS"]

THRESHOLD = 0.5  # extra forward passes per parameter at which a gradient is called numerical
MIN_SECONDS = 0.05  # never call one numerical on less extra CPU time than this (timer noise)


@dataclass(frozen=True)
class CostProbe:
    """What the submission's gradient cost on a small and a large network, in the worker's CPU time.

    Attributes:
        networks: the two networks (compact specs), small first.
        params: their parameter counts P.
        forward: CPU seconds of one reference forward pass on each (the worker's calibration).
        small: the submission's cheapest call on the small network (CPU seconds).
        large: its cheapest call on the large one (a lower bound when it timed out).
        timed_out: the large call hit the deadline (its CPU time is then a lower bound).
    """

    networks: tuple[str, str]
    params: tuple[int, int]
    forward: tuple[float, float]
    small: float
    large: float
    timed_out: bool = False

    @property
    def extra_passes(self) -> float:
        """The large call's cost beyond the small one's, in forward passes of the large network.

        The small call's cost is subtracted (a fixed cost per call is not a cost per parameter)
        but never more than P/8 forward passes: a submission could make its small calls slow on
        purpose, and must not hide a numerical gradient that way.
        """
        baseline = min(self.small, self.params[1] / 8 * self.forward[1])
        return max(0.0, self.large - baseline) / self.forward[1]

    @property
    def passes(self) -> tuple[float, float]:
        """Each call's cost in forward passes of its own network."""
        return self.small / self.forward[0], self.large / self.forward[1]

    @property
    def numerical(self) -> bool:
        return self.large >= MIN_SECONDS and self.extra_passes >= THRESHOLD * self.params[1]

    def message(self) -> str:
        """The finding in words, with the numbers."""
        (ps, pl), (fs, fl) = self.params, self.passes
        lower = "at least " if self.timed_out else ""
        what = (f"Your gradient's cost grows with the number of parameters: on {self.networks[0]} ({ps} parameters) a call "
                f"costs {fs:,.0f} forward passes, on {self.networks[1]} ({pl:,} parameters) {lower}{fl:,.0f} "
                f"({lower}{self.large:.3g} s of CPU); a backpropagation costs a few forward passes at any size.")
        if self.numerical:
            return what + (" That is the cost of a numerical gradient (one or more cost evaluations per parameter, "
                           "whatever its accuracy), not of backpropagation: the gradient points are not given.")
        return what


def judge_cost(small_cpu: float | None, large: list[CallResult], calibration: list[float], networks: tuple[str, str],
               params: tuple[int, int]) -> CostProbe | None:
    """The probe from the calls made, or None when it cannot be told (no CPU count, no calibration, a failed call).

    Args:
        small_cpu: the submission's cheapest CPU time on the small network.
        large: the calls on the large network (completed or timed out).
        calibration: forward-pass CPU seconds on (small, large) from the worker.
        networks, params: the two networks and their parameter counts.
    """
    if small_cpu is None or len(calibration) != 2 or min(calibration) <= 0:
        return None
    best = measured(large)
    if best is None or best.cpu is None:
        return None
    return CostProbe(networks, params, (calibration[0], calibration[1]), small_cpu, best.cpu,
                     timed_out=not best.ok)


def measured(large: list[CallResult]) -> CallResult | None:
    """The call on the large network whose cost counts — and whose answer is the one to judge.

    The cheapest completed (or timed-out) call with a CPU count; without any, the first that
    answered. Cost and answer must come from one call: a submission that answers the grader's
    repeat of a suspicious call at once (from memory, or with anything fast and wrong) must not
    have its cheap call counted and its slow, numerical but right answer judged.
    """
    usable = [r for r in large if r.cpu is not None and (r.ok or r.kind in ("timeout", "cpu"))]
    if usable:
        return min(usable, key=lambda r: r.cpu)
    return next((r for r in large if r.ok), None)
