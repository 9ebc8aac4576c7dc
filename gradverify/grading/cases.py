"""The cases a submission is graded on, and the secret they are drawn from.

Students know the classic debug network and its published answers, so answers hard-coded for it
must earn nothing: its points count only together with **hidden variants** (the same shapes and
batch size, other values) drawn from the batch's secret seed. The generated cases (Hypothesis)
are drawn from the same secret, and so is the large network that times the gradient. The seed is
secret per batch (a fresh one unless the instructor gives ``--seed``) and recorded for the
instructor in the gradebook, so any case can be rebuilt: every case is a seeded random problem
whose own seed is derived from the batch seed (``derive``), one-way, so a student shown one
case learns nothing about the others.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace

from gradverify.problems import random_problem
from gradverify.profiles import Profile
from gradverify.spec import Problem

__all__ = ["Case", "Cases", "cases_for", "derive", "new_seed", "HIDDEN_VARIANTS", "LARGE_SIZES", "LARGE_M"]

HIDDEN_VARIANTS = 2
# m = 2: see timing.py for why a small batch. Two classes, so that both occur (the data contract:
# code that sizes its one-hot matrix from the labels present is right on the assignment's data).
LARGE_SIZES, LARGE_M = (400, 25, 2), 2
_HIDDEN_LAMBDAS = (0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)


@dataclass(frozen=True)
class Case:
    """One case: what the student is told it is (``title``), the problem, and whether it is hidden."""

    title: str
    problem: Problem
    hidden: bool = False


@dataclass(frozen=True)
class Cases:
    """Every case of a batch: the fixed ones (public first, then hidden) and the timing pair."""

    fixed: tuple[Case, ...]
    small: Case  # the first public case: its calls give the submission's cost on a small network
    large: Case  # the timing network, hidden like the variants

    @property
    def public(self) -> tuple[Case, ...]:
        return tuple(c for c in self.fixed if not c.hidden)


def new_seed() -> int:
    """A fresh secret seed for a batch (63 bits)."""
    return secrets.randbits(63)


def derive(seed: int, label: str) -> int:
    """A case's own seed: a one-way function of the batch seed and the case's label."""
    digest = hashlib.sha256(f"gradverify/{seed}/{label}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def cases_for(profile: Profile, settings: dict, seed: int) -> Cases:
    """The fixed cases (the classic debug network at λ = 0 and 3, then the hidden variants) and the timing pair."""
    public = [Case(title, problem) for title, problem in profile.fixed_cases(settings)]
    first = public[0].problem
    hidden = []
    for i in range(1, HIDDEN_VARIANTS + 1):
        own = derive(seed, f"hidden-{i}")
        lam = _HIDDEN_LAMBDAS[own % len(_HIDDEN_LAMBDAS)] if i > 1 else 0.0
        net = profile.network(first.network.sizes, lam, settings)
        problem = random_problem(net, m=first.m, seed=own, scale=0.5 + (own >> 8) % 100 / 100, all_classes=True)
        problem = replace(problem, origin=replace(problem.origin, note=f"hidden variant {i}"))
        hidden.append(Case(f"hidden variant {i} (the shapes of the debug network, other values)", problem, hidden=True))
    large_net = profile.network(_large_sizes(profile), 1.0, settings)
    large = random_problem(large_net, m=LARGE_M, seed=derive(seed, "large"), scale=1.0, all_classes=True)
    large = replace(large, origin=replace(large.origin, note="timing network"))
    return Cases(tuple(public + hidden), public[0], Case(f"a large network {large_net.compact}, m={LARGE_M}", large, hidden=True))


def _large_sizes(profile: Profile) -> tuple[int, ...]:
    lo, hi = profile.depth
    if lo <= 2 <= hi:
        return LARGE_SIZES
    return (LARGE_SIZES[0],) + (LARGE_SIZES[1],) * (lo - 1) + (LARGE_SIZES[-1],)
