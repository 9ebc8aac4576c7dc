"""Full mode: J as one expression over one symbol per parameter, differentiated whole.

The most independent reference and the source of readable partials (``partial_expression``):
``diff`` of the entire cost with respect to each parameter, then each partial evaluated in ball
arithmetic. For small networks (P²·m ≤ ``FULL_MODE_LIMIT``). The data (X, Y, λ and the
penalty coefficient) enter as exact rationals — a float64 converts exactly — so the expression is
exactly the cost of the given problem.
"""

from __future__ import annotations

import numpy as np
import sympy
from flint import arb

from gradverify.errors import InputError
from gradverify.spec import Problem
from gradverify.symbolic.backend import Backend
from gradverify.symbolic.balls import precision
from gradverify.symbolic.evaluation import Evaluation, Progress
from gradverify.symbolic.interpret import Conditions, evaluate
from gradverify.symbolic.reading import layer_shapes, read_penalty, scalar_names

__all__ = ["EXPRESSION_LIMIT", "build_cost", "cost_expression", "full_evaluator", "partial_expression", "relu_units"]

EXPRESSION_LIMIT = 20_000  # P·m beyond which partial_expression refuses


def build_cost(problem: Problem, be: Backend):
    """J over one symbol per scalar parameter; also the pre-activation expressions.

    Returns:
        (J, {name: symbol} in ``scalar_names`` order, {(k, i, j): a⁽ᵏ⁾ of example i, unit j}).
    """
    net = problem.network
    names = scalar_names(layer_shapes(problem))
    syms = {n: be.symbol(n) for n in names}
    sizes, depth = net.sizes, len(net.sizes) - 1
    W = {k: [[syms[f"W{k}[{j},{l}]"] for l in range(sizes[k - 1])] for j in range(sizes[k])] for k in range(1, depth + 1)}
    b = {k: [syms[f"b{k}[{j}]"] for j in range(sizes[k])] for k in range(1, depth + 1)}
    loss, a_syms, y_syms = be.loss(net.output, sizes[-1], problem.m)
    pre: dict[tuple[int, int, int], object] = {}
    terms = []
    for i in range(problem.m):
        h = [be.exact(x) for x in problem.X[i]]
        for k in range(1, depth + 1):
            a = [be.add([w * x for w, x in zip(W[k][j], h)] + [b[k][j]]) for j in range(sizes[k])]
            for j, aj in enumerate(a):
                pre[(k, i, j)] = aj
            if k < depth:
                f, z = be.activation(net.activations[k - 1])
                h = [f.xreplace({z: aj}) for aj in a]
        repl = {s: v for s, v in zip(a_syms, a)}
        repl.update({s: be.exact(v) for s, v in zip(y_syms, problem.Y[i])})
        terms.append(loss.xreplace(repl))
    penalty = read_penalty(problem)
    if penalty.arrays:
        squares = [syms[n] ** 2 for n in names if n.split("[")[0] in penalty.arrays]
        terms.append(be.exact(penalty.coefficient) * be.add(squares))
    return be.add(terms), syms, pre


def cost_expression(problem: Problem) -> tuple[sympy.Expr, dict[str, sympy.Symbol]]:
    """J of ``problem`` as an exact SymPy expression.

    Args:
        problem: the network, data and (unused here) parameter values.

    Returns:
        (J, symbols) where ``symbols`` maps every scalar name (``W1[0,2]``, ``b2[1]``…, in
        ``params.scalar_names`` order) to its SymPy symbol. J holds no Float atoms: X, Y, λ and
        1/m are exact rationals.
    """
    J, syms, _ = build_cost(problem, Backend("sympy"))
    return J, syms


def partial_expression(problem: Problem, name: str) -> sympy.Expr:
    """The exact expression of ∂J/∂θ for one parameter, by ``sympy.diff`` of the whole cost.

    Meant for small networks, reports and teaching: ``sympy.pretty(partial_expression(p, "b2[0]"))``.

    Args:
        problem: the problem (network and data; the parameter values are not substituted).
        name: a scalar name as in ``params.scalar_names``, e.g. ``"W2[1,3]"`` or ``"b1[0]"``.

    Raises:
        InputError: ``name`` is not a parameter of the network, or the network is too large
            (parameters × examples > 20,000) for a formula anyone could read.
    """
    names = scalar_names(layer_shapes(problem))
    if name not in names:
        raise InputError(f"{name!r} is not a parameter of {problem.network.compact}",
                         expected=f"a scalar name such as {names[0]!r} or {names[-1]!r}", received=repr(name),
                         fix="indices are 0-based; weights are Wk[row,col] with Wk of shape (n_k, n_k-1)")
    size = len(names) * problem.m
    if size > EXPRESSION_LIMIT:
        raise InputError(f"The cost expression of {problem.network.compact} with m = {problem.m} is too large to show",
                         expected=f"parameters × examples ≤ {EXPRESSION_LIMIT:,}", received=f"{size:,}",
                         fix="use fewer examples or a smaller network for a readable formula; exact_gradient gives the values")
    J, syms = cost_expression(problem)
    return sympy.diff(J, syms[name])


def relu_units(problem: Problem) -> list[tuple[int, int, int]]:
    """(layer k, example i, unit j) of every pre-activation that feeds a ReLU."""
    net = problem.network
    return [(k, i, j) for k, act in enumerate(net.activations, start=1) if act == "relu"
            for i in range(problem.m) for j in range(net.sizes[k])]


def full_evaluator(problem: Problem, be: Backend, progress: Progress):
    """Build J, differentiate it whole per parameter; return (run(bits, hull), steps per pass).

    ``run`` evaluates J, every partial and the ReLU pre-activations at ``bits``, sharing one memo
    of sub-expression values.
    """
    J, syms, pre = build_cost(problem, be)
    names = list(syms)
    partials = []
    for n in names:
        partials.append(J.diff(syms[n]))
        progress.step()
    relu = relu_units(problem)
    values = np.concatenate([problem.params[n].reshape(-1) for n, _ in layer_shapes(problem)])

    def run(bits: int, hull: bool) -> Evaluation:
        conditions = Conditions(hull=hull)
        with precision(bits):
            env = {syms[n]: arb(float(v)) for n, v in zip(names, values)}
            memo: dict = {}
            cost = evaluate(J, env, memo, conditions)
            grads = np.empty(len(names), dtype=object)
            for i, d in enumerate(partials):
                grads[i] = evaluate(d, env, memo, conditions)
                progress.step()
            kinks = [u for u in relu if evaluate(pre[u], env, memo, conditions).is_zero()]
        return Evaluation(cost, grads, kinks, conditions, bits)

    return run, len(names)
