"""What one evaluation pass of any mode returns, and the progress counter the passes share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from flint import arb

from gradverify.symbolic.interpret import Conditions

__all__ = ["Evaluation", "Progress"]


@dataclass
class Evaluation:
    """J and every ∂J/∂θ as balls, from one pass at one precision.

    Attributes:
        cost: J.
        grads: object array of balls, one per scalar parameter in ``reading.scalar_names`` order.
        kinks: (layer k, example i, unit j) of every ReLU pre-activation that is exactly 0.
        conditions: the Piecewise boundary and undecided points the pass met.
        bits: the precision of the pass.
    """

    cost: arb
    grads: np.ndarray
    kinks: list[tuple[int, int, int]] = field(default_factory=list)
    conditions: Conditions = field(default_factory=Conditions)
    bits: int = 0


class Progress:
    """Counts work steps and reports ``callback(done, total)``; the total may grow."""

    def __init__(self, callback: Callable[[int, int], None] | None, total: int = 0):
        self.callback, self.total, self.done = callback, total, 0

    def step(self, n: int = 1) -> None:
        self.done += n
        if self.callback:
            self.callback(min(self.done, self.total), self.total)

    def grow(self, n: int) -> None:
        self.total += n
