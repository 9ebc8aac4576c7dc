"""Batched mode: J as a short chain of layer-level templates over whole matrices, and a generic sweep.

The network is a handful of ``templates`` instances — per layer an affine map and an activation,
then the loss of every example, one penalty per penalized array, and the total — each evaluated
over whole arrays of balls by ``tensor`` (matrix products in Arb). The reverse sweep is generic:
for every op in reverse, adj(input) += the template's ``vjp`` (SymPy's derivative of the template,
contracted with the output's adjoint). Memory is proportional to the problem: the arrays of the
forward pass and their adjoints, no per-scalar expression.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy
from flint import arb

from gradverify.spec import Problem
from gradverify.symbolic import templates
from gradverify.symbolic.balls import precision
from gradverify.symbolic.evaluation import Evaluation, Progress
from gradverify.symbolic.interpret import Conditions
from gradverify.symbolic.reading import layer_shapes, read_penalty
from gradverify.symbolic.templates import K, N, Template, m, n
from gradverify.symbolic.tensor import Tensor, TensorEvaluator, elementwise

__all__ = ["BatchedGraph", "batched_evaluator"]

_THREADS = min(4, len(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else 1


@dataclass
class _Op:
    template: Template
    inputs: list[int]
    out: int
    sizes: dict


class BatchedGraph:
    """Array nodes: leaves holding float64 data, and outputs of template instances."""

    def __init__(self):
        self.ops: list[_Op] = []
        self._leaves: dict[int, Tensor] = {}
        self._requires: list[bool] = []

    def leaf(self, values: np.ndarray, *, requires_grad: bool) -> int:
        """A new leaf holding ``values`` exactly (float64 converts to a ball exactly)."""
        values = np.asarray(values, dtype=np.float64)
        axes = tuple(sympy.Symbol(f"_{a}") for a in range(values.ndim))
        self._leaves[len(self._requires)] = Tensor(axes, floats=values)
        self._requires.append(requires_grad)
        return len(self._requires) - 1

    def apply(self, template: Template, inputs: list[int], sizes: dict) -> int:
        """A new node: ``template`` applied to the nodes ``inputs``, its size symbols bound by ``sizes``."""
        self._requires.append(any(self._requires[i] for i in inputs))
        self.ops.append(_Op(template, list(inputs), len(self._requires) - 1, sizes))
        return len(self._requires) - 1

    def forward(self, conditions: Conditions, progress: Callable[[], None] | None = None) -> dict[int, Tensor]:
        """Every node's value at the current precision."""
        values: dict[int, Tensor] = dict(self._leaves)
        for op in self.ops:
            t = op.template
            env = dict(zip(t.inputs, (values[i] for i in op.inputs)))
            out_sizes = [int(s.xreplace(op.sizes)) for s in t.out_sizes]
            result = TensorEvaluator(env, op.sizes, dict(zip(t.out, out_sizes)), conditions).eval(t.expr)
            values[op.out] = _positional(result, t.out, out_sizes)
            if progress:
                progress()
        return values

    def gradient(self, values: dict[int, Tensor], output: int, conditions: Conditions,
                 progress: Callable[[], None] | None = None) -> dict[int, Tensor]:
        """Adjoints ∂(node ``output``)/∂(node) of every node that depends on a ``requires_grad`` leaf."""
        adjoint = {output: Tensor.scalar(arb(1))}
        for op in reversed(self.ops):
            if op.out in adjoint:
                self._backward(op, values, adjoint, conditions)
            if progress:
                progress()
        return adjoint

    def _backward(self, op: _Op, values, adjoint, conditions) -> None:
        t = op.template
        env = dict(zip(t.inputs, (values[i] for i in op.inputs)))
        env[sympy.IndexedBase("G") if t.out else sympy.Symbol("G")] = adjoint[op.out]
        out_ranges = {o: int(s.xreplace(op.sizes)) for o, s in zip(t.out, t.out_sizes)}
        for j, node in enumerate(op.inputs):
            if not self._requires[node]:
                continue
            vjp = t.vjp(j)
            shape = values[node].shape
            ranges = out_ranges | dict(zip(vjp.axes, shape))
            part = _positional(TensorEvaluator(env, op.sizes, ranges, conditions).eval(vjp.expr), vjp.axes, shape)
            part = part.renamed(values[node].axes)
            adjoint[node] = part if node not in adjoint else elementwise(lambda a, b: a + b, [adjoint[node], part])


def _positional(t: Tensor, axes: tuple, shape) -> Tensor:
    """``t`` over exactly ``axes`` in that order (broadcast along the axes it does not carry)."""
    if set(t.axes) == set(axes):
        return t.ordered(tuple(axes))
    extra = set(t.axes) - set(axes)
    if extra:
        raise ValueError(f"a result over {t.axes} has indices {extra} that are neither free nor summed")
    arr = np.broadcast_to(t.aligned(tuple(axes)), tuple(shape)).copy()
    return Tensor(tuple(axes), array=arr)


def _build(problem: Problem):
    """The graph, the node of J, the pre-activation node of every layer, the parameter nodes."""
    net, M = problem.network, problem.m
    shapes = layer_shapes(problem)
    g = BatchedGraph()
    ids = {name: g.leaf(problem.params[name], requires_grad=True) for name, _ in shapes}
    H = g.leaf(problem.X, requires_grad=False)
    depth = len(net.sizes) - 1
    pre = {}
    for k in range(1, depth + 1):
        fan_in, fan_out = net.sizes[k - 1], net.sizes[k]
        pre[k] = g.apply(templates.affine(), [ids[f"W{k}"], H, ids[f"b{k}"]], {m: M, n: fan_in, N: fan_out})
        if k < depth:
            H = g.apply(templates.activation(net.activations[k - 1]), [pre[k]], {m: M, N: fan_out})
    Y = g.leaf(problem.Y, requires_grad=False)
    losses = g.apply(templates.loss(net.output), [pre[depth], Y], {m: M, K: net.sizes[-1]})
    penalty = read_penalty(problem)
    terms = []
    for name, shape in shapes:
        if name in penalty.arrays:
            sizes = {N: shape[0], n: shape[1]} if len(shape) == 2 else {N: shape[0]}
            terms.append(g.apply(templates.penalty(len(shape), penalty.coefficient), [ids[name]], sizes))
    J = g.apply(templates.total(len(terms)), [losses] + terms, {m: M})
    return g, J, pre, [ids[name] for name, _ in shapes]


def batched_evaluator(problem: Problem, progress: Progress):
    """Batched mode's pass: return (run(bits, hull), steps per pass)."""
    g, J, pre, params = _build(problem)
    relu_layers = [k for k, act in enumerate(problem.network.activations, start=1) if act == "relu"]

    def run(bits: int, hull: bool) -> Evaluation:
        conditions = Conditions(hull=hull)
        with precision(bits, threads=_THREADS):
            values = g.forward(conditions, progress.step)
            adjoint = g.gradient(values, J, conditions, progress.step)
        grads = np.concatenate([adjoint[p].array().reshape(-1) for p in params])
        kinks = [(k, int(i), int(j)) for k in relu_layers for (i, j), v in np.ndenumerate(values[pre[k]].array()) if v.is_zero()]
        return Evaluation(values[J].array()[()], grads, kinks, conditions, bits)

    return run, 2 * len(g.ops)
