"""Scalable mode: J as a graph of scalar templates, one per unit and example, and a generic sweep.

Templates, each instantiated in one batch: ``affine`` (a = Σ wₗuₗ + b), the hidden activation
f(z), one loss per example from ``forms.sympy_output_loss``, one penalty c·Σθ² per penalized unit,
and the final sum. Each template is differentiated symbolically with respect to its direct inputs
and ``graph.Graph`` combines the local partials. No network backprop formula appears anywhere.
"""

from __future__ import annotations

import numpy as np

from gradverify.spec import Problem
from gradverify.symbolic.backend import Backend
from gradverify.symbolic.balls import precision
from gradverify.symbolic.evaluation import Evaluation, Progress
from gradverify.symbolic.graph import Graph, Template
from gradverify.symbolic.interpret import Conditions
from gradverify.symbolic.reading import layer_shapes, read_penalty

__all__ = ["scalable_evaluator"]


def _affine(be: Backend, n: int, cache: dict) -> Template:
    """a = Σₗ wₗ uₗ + b: one unit of one example."""
    if n not in cache:
        w = [be.symbol(f"w{l}") for l in range(n)]
        u = [be.symbol(f"u{l}") for l in range(n)]
        bias = be.symbol("b")
        cache[n] = Template(be.add([wl * ul for wl, ul in zip(w, u)] + [bias]), w + u + [bias], f"affine{n}")
    return cache[n]


def _build(problem: Problem, be: Backend):
    """The graph, the node id of J, the pre-activation node ids per layer, the parameter node ids."""
    net, m = problem.network, problem.m
    shapes = layer_shapes(problem)
    depth = len(net.sizes) - 1
    g = Graph()
    ids = {name: g.leaves(problem.params[name], requires_grad=True) for name, _ in shapes}
    H = g.leaves(problem.X, requires_grad=False)
    Yids = g.leaves(problem.Y, requires_grad=False)
    affines: dict = {}
    pre = {}
    for k in range(1, depth + 1):
        n_in, n_out = net.sizes[k - 1], net.sizes[k]
        rows = np.concatenate([
            np.broadcast_to(ids[f"W{k}"][None, :, :], (m, n_out, n_in)),
            np.broadcast_to(H[:, None, :], (m, n_out, n_in)),
            np.broadcast_to(ids[f"b{k}"][None, :, None], (m, n_out, 1)),
        ], axis=2).reshape(m * n_out, 2 * n_in + 1)
        pre[k] = g.apply(_affine(be, n_in, affines), rows).reshape(m, n_out)
        if k < depth:
            act = net.activations[k - 1]
            f, z = be.activation(act)
            H = g.apply(Template(f, [z], act), pre[k].reshape(-1, 1)).reshape(m, n_out)
    loss, a_syms, y_syms = be.loss(net.output, net.sizes[-1], m)
    terms = [g.apply(Template(loss, list(a_syms) + list(y_syms), f"{net.output} loss"),
                     np.concatenate([pre[depth], Yids], axis=1))]
    penalty = read_penalty(problem)
    c = be.exact(penalty.coefficient)
    for k in range(1, depth + 1):
        cols = [ids[f"W{k}"]] if f"W{k}" in penalty.arrays else []
        if f"b{k}" in penalty.arrays:
            cols.append(ids[f"b{k}"][:, None])
        if cols:
            rows = np.concatenate(cols, axis=1)
            th = [be.symbol(f"t{l}") for l in range(rows.shape[1])]
            terms.append(g.apply(Template(c * be.add([t ** 2 for t in th]), th, "penalty"), rows))
    all_terms = np.concatenate(terms)
    s = [be.symbol(f"s{l}") for l in range(all_terms.size)]
    J = g.apply(Template(be.add(s), s, "sum"), all_terms[None, :])[0]
    params = np.concatenate([ids[n].reshape(-1) for n, _ in shapes])
    return g, J, pre, params


def scalable_evaluator(problem: Problem, be: Backend, progress: Progress):
    """Scalable mode's pass: return (run(bits, hull), steps per pass)."""
    g, J, pre, params = _build(problem, be)
    relu_layers = [k for k, act in enumerate(problem.network.activations, start=1) if act == "relu"]

    def run(bits: int, hull: bool) -> Evaluation:
        conditions = Conditions(hull=hull)
        with precision(bits):
            values = g.forward(conditions, progress.step)
            adjoint = g.gradient(values, J, conditions, progress.step)
        kinks = [(k, int(i), int(j)) for k in relu_layers for (i, j), v in np.ndenumerate(values[pre[k]]) if v.is_zero()]
        return Evaluation(values[J], adjoint[params], kinks, conditions, bits)

    return run, 2 * len(g.ops)
