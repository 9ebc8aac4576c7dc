"""The lecture's examples, by name: an expression and the values the lecture evaluates it at."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Example", "EXAMPLES"]


@dataclass(frozen=True)
class Example:
    """A built-in example: an expression and the values the lecture evaluates it at."""

    expression: str
    values: dict[str, float] = field(default_factory=dict)
    description: str = ""


EXAMPLES: dict[str, Example] = {
    "add-mul": Example("(x + y) * z", {"x": -2.0, "y": 5.0, "z": -4.0},
                       "f(x, y, z) = (x + y) z; f = -12, gradients -4, -4, 3"),
    "sigmoid-neuron": Example("sigmoid(w0*x0 + w1*x1 + w2)",
                              {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0},
                              "a sigmoid neuron; f ≈ 0.73"),
}
