"""A graph of scalar nodes built from template instances, and its generic reverse sweep.

A ``Template`` is an expression over formal input symbols; its local partial derivatives come
from the symbolic backend's ``diff`` of that expression. ``Graph.apply`` instantiates a template
for a batch of rows of input nodes; ``Graph.gradient`` combines the local partials by the
textbook reverse sweep (adjoint of an input += adjoint of the output × local partial) over the
ops in reverse order. Nothing here knows which template is a layer, a unit or a loss. Values are
``arb`` balls, so every adjoint comes with a rigorous enclosure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from flint import arb

from gradverify.symbolic.interpret import Conditions, evaluate

__all__ = ["Graph", "Template"]

_CHUNK = 1 << 18  # instances × inputs evaluated at once: bounds the memory of the object arrays


class Template:
    """An expression over formal input symbols; its partials come from symbolic ``diff``.

    Args:
        expr: the expression (SymPy or SymEngine, matching ``inputs``).
        inputs: the formal input symbols, in the order of a ``Graph.apply`` row.
        name: a label for messages.
    """

    def __init__(self, expr, inputs: Sequence, name: str = ""):
        self.expr, self.inputs, self.name = expr, tuple(inputs), name
        self._partials: dict[int, object] = {}

    def partial(self, j: int):
        """∂expr/∂inputs[j], by the backend's symbolic differentiation (cached)."""
        if j not in self._partials:
            self._partials[j] = self.expr.diff(self.inputs[j])
        return self._partials[j]

    def __repr__(self) -> str:
        return f"Template({self.name or self.expr}, {len(self.inputs)} inputs)"


class _Op:
    __slots__ = ("inputs", "out", "template")

    def __init__(self, template, inputs, out):
        self.template, self.inputs, self.out = template, inputs, out


class Graph:
    """Scalar nodes numbered 0..n−1: leaves with float64 values, and batched template instances."""

    def __init__(self):
        self.n = 0
        self.ops: list[_Op] = []
        self._leaf_ids: list[np.ndarray] = []
        self._leaf_values: list[np.ndarray] = []
        self._grad_flags: list[np.ndarray] = []

    def leaves(self, values, *, requires_grad: bool) -> np.ndarray:
        """New leaf nodes holding ``values`` (float64, any shape); returns their ids, same shape."""
        values = np.asarray(values, dtype=np.float64)
        ids = np.arange(self.n, self.n + values.size).reshape(values.shape)
        self.n += values.size
        self._leaf_ids.append(ids.reshape(-1))
        self._leaf_values.append(values.reshape(-1))
        self._grad_flags.append(np.full(values.size, requires_grad))
        return ids

    def apply(self, template: Template, inputs) -> np.ndarray:
        """New nodes, one per row of ``inputs`` (node ids, shape (count, len(template.inputs)))."""
        inputs = np.asarray(inputs, dtype=np.int64)
        if inputs.ndim != 2 or inputs.shape[1] != len(template.inputs):
            raise ValueError(f"{template!r} needs rows of {len(template.inputs)} input ids, got shape {inputs.shape}")
        out = np.arange(self.n, self.n + inputs.shape[0])
        self.n += inputs.shape[0]
        grad = np.concatenate(self._grad_flags + [np.zeros(0, bool)])
        self._grad_flags.append(np.full(out.size, bool(grad[inputs].any())))
        self.ops.append(_Op(template, inputs, out))
        return out

    def _requires_grad(self) -> np.ndarray:
        return np.concatenate(self._grad_flags) if self._grad_flags else np.zeros(0, bool)

    def forward(self, conditions: Conditions, progress: Callable[[], None] | None = None) -> np.ndarray:
        """Every node's value (object array of balls) at the current precision."""
        values = np.empty(self.n, dtype=object)
        for ids, vals in zip(self._leaf_ids, self._leaf_values):
            values[ids] = [arb(float(v)) for v in vals]
        for op in self.ops:
            for rows in _chunks(op):
                env = {sym: values[op.inputs[rows, j]] for j, sym in enumerate(op.template.inputs)}
                values[op.out[rows]] = evaluate(op.template.expr, env, {}, conditions)
            if progress:
                progress()
        return values

    def gradient(self, values: np.ndarray, output: int, conditions: Conditions,
                 progress: Callable[[], None] | None = None) -> np.ndarray:
        """Adjoints ∂(node ``output``)/∂(node) for every node, by one reverse sweep.

        Only inputs that depend on a ``requires_grad`` leaf receive adjoints (others stay 0).
        """
        adjoint = np.empty(self.n, dtype=object)
        adjoint[:] = [arb(0)] * self.n
        adjoint[output] = arb(1)
        needs = self._requires_grad()
        for op in reversed(self.ops):
            if needs[op.out[0]]:
                self._backward(op, values, adjoint, needs, conditions)
            if progress:
                progress()
        return adjoint

    @staticmethod
    def _backward(op: _Op, values, adjoint, needs, conditions) -> None:
        inputs = op.template.inputs
        wanted = [j for j in range(len(inputs)) if needs[op.inputs[:, j]].any()]
        for rows in _chunks(op):
            seed = adjoint[op.out[rows]]
            env = {sym: values[op.inputs[rows, j]] for j, sym in enumerate(inputs)}
            memo: dict = {}
            for j in wanted:
                local = evaluate(op.template.partial(j), env, memo, conditions)
                np.add.at(adjoint, op.inputs[rows, j], seed * local)


def _chunks(op: _Op):
    """Row slices of ``op`` holding about ``_CHUNK`` input values each."""
    count, width = op.inputs.shape
    step = max(1, _CHUNK // max(1, width))
    for start in range(0, count, step):
        yield slice(start, min(count, start + step))
