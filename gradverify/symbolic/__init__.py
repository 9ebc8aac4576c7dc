"""The exact oracle: J as a SymPy/SymEngine expression, its partials by symbolic differentiation.

The data (X, Y, λ and the regularization coefficient) enter as exact rationals — a float64
converts exactly — so the expression is exactly the cost of the given problem; one symbol per
scalar parameter, named like ``params.scalar_names`` (``W2[1,3]``, ``b1[0]``). The activations
and losses come from ``symbolic.forms`` (the oracle's own definitions); every
derivative comes from the backend's ``diff``. Nothing here imports backprop or finite differences.

Two modes, both evaluated in MPFR (gmpy2; mpmath if gmpy2 is missing):

- ``"full"``: J as one expression, differentiated whole with respect to every parameter. The most
  independent reference, and the source of readable partials (``partial_expression``). For small
  networks (P²·m ≤ ``FULL_MODE_LIMIT``).
- ``"scalable"``: J as a graph of scalar sub-expressions, one per unit and example (pre-activation
  Σⱼ Wᵢⱼhⱼ + bᵢ, activation f(a), one loss per example, one penalty per unit, the sum). Each
  sub-expression is differentiated symbolically with respect to its direct inputs, and a generic
  reverse sweep (``_symgraph.Graph``) combines the local partials. No network backprop formula
  appears anywhere.

Precision, and how ``digits`` is earned: every result is computed twice, at p and p + 64 bits
(p ≈ digits·log₂10 + 32); the second pass also carries a rounding-error scale per partial (its
sums taken over absolute values, except where the inputs are exact; in scalable mode propagated
through the sweep). ``digits`` is the smaller of (a) the digits on which the two passes agree and
(b) p·log₁₀2 minus log₁₀ of the worst scale/|value|. If that falls short of the request, or a
partial cancelled to exactly 0 (on small problems), p is raised — enough to cover the measured
cancellation, at least doubled, and at once to the ceiling when a partial sits at the rounding
noise — and both passes are redone, at most three times. The ceiling, ≈ p + 1100 + log₂(scale)
bits, settles every partial for float64: resolved to ``digits``, or known to lie below 2⁻¹¹⁰⁰
(0.0 in float64) and named in ``notes`` as not resolved to full precision.

Blind spots, said plainly: cancellation inside a function's argument (forward values) is seen
only by the two-pass comparison; on large problems (P·m > 20,000) a partial that cancels to
exactly 0 (e.g. 1 − tanh²(a) of a saturated unit) is not chased; it is reported as 0 and named
in ``notes``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import sympy

from gradverify._symgraph import (
    Graph,
    Kit,
    Template,
    agreeing_digits,
    default_kit,
    evaluate,
    magnitude,
)
from gradverify.errors import InputError
from gradverify.symbolic.forms import sympy_activation, sympy_output_loss
from gradverify.params import scalar_names
from gradverify.spec import Problem

try:
    import symengine
except ImportError:  # pragma: no cover - symengine is a dependency; SymPy is the fallback
    symengine = None

__all__ = ["FULL_MODE_LIMIT", "ExactGradient", "cost_expression", "exact_gradient", "partial_expression"]

#: Full mode's work grows like P²·m (P partials of an expression of size ~P·m). It is used, and
#: allowed, while P²·m stays at or below this bound for the backend (≈ 5–10 s on one core,
#: bench/bench_symbolic.py); beyond it ``exact_gradient`` falls back to scalable mode with a note.
FULL_MODE_LIMIT = {"symengine": 8_000_000, "sympy": 25_000}
_GUARD_BITS = 32
_CHECK_BITS = 64
_MAX_RETRIES = 3
_CHASE_ZEROS_LIMIT = 20_000  # P·m up to which exact-zero partials trigger a retry
_MAX_BITS = 1 << 15
_NEGLIGIBLE_BITS = 1100  # partials whose error bound is below 2^-1100 cannot change a float64
_EXPRESSION_LIMIT = 20_000  # P·m beyond which partial_expression refuses


@dataclass(frozen=True)
class ExactGradient:
    """The oracle's answer: J and every ∂J/∂θ, rounded to float64 and at full precision.

    Attributes:
        cost: J rounded to float64.
        grads: ∂J/∂θ rounded to float64, Wb layout (``W1, b1, …``), shapes as ``problem.params``.
        cost_exact: J as an mpmath ``mpf`` carrying every computed bit.
        grads_exact: object arrays of mpmath ``mpf``, same keys and shapes as ``grads``.
        digits: significant decimal digits verified in J and every partial (two passes at
            different precisions agree, and the measured cancellation leaves this many; partials
            that cancelled to exactly 0 are excluded and named in ``notes``).
        bits: the binary precision of the reported values.
        mode: ``"full"`` or ``"scalable"``.
        backend: ``"symengine"`` or ``"sympy"`` (who differentiated).
        kinks: one message per ReLU pre-activation that is exactly 0 (derivative taken as 0).
        notes: other remarks, e.g. a fallback from full to scalable mode.
        seconds: wall-clock time of the whole computation.
        numbers: the high-precision number type, ``"gmpy2"`` (MPFR) or ``"mpmath"``.
    """

    cost: float
    grads: dict[str, np.ndarray]
    cost_exact: object
    grads_exact: dict[str, np.ndarray]
    digits: int
    bits: int
    mode: str
    backend: str
    kinks: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    numbers: str = field(default="gmpy2", repr=False)

    def flat(self) -> np.ndarray:
        """The float64 partials concatenated in the order of ``params.scalar_names``."""
        return np.concatenate([g.reshape(-1) for g in self.grads.values()])

    def __repr__(self) -> str:
        n = sum(g.size for g in self.grads.values())
        return (f"ExactGradient(cost={self.cost!r}, {n} partials, {self.digits} digits, mode={self.mode}, "
                f"backend={self.backend}, kinks={len(self.kinks)}, {self.seconds:.3g} s)")


# ---- backends --------------------------------------------------------------------------------

class _Backend:
    """Symbols, exact numbers and the conversion of ``functions``' SymPy forms, for one backend."""

    def __init__(self, name: str):
        if name == "symengine" and symengine is None:
            raise InputError("SymEngine is not installed", expected='backend "sympy" or "auto"',
                             received='backend "symengine"', fix="pip install symengine, or use the pure-SymPy backend")
        self.name = name
        self.lib = symengine if name == "symengine" else sympy
        self._cache: dict = {}

    def symbol(self, name: str):
        return self.lib.Symbol(name)

    def exact(self, x) -> object:
        """A float (or Fraction) as an exact rational of this backend."""
        q = Fraction(x)
        if self.name == "sympy":
            return sympy.Rational(q.numerator, q.denominator)
        return symengine.Integer(q.numerator) / symengine.Integer(q.denominator)

    def convert(self, expr):
        return expr if self.name == "sympy" else symengine.sympify(expr)

    def add(self, terms):
        return self.lib.Add(*terms)

    def activation(self, name: str):
        """(f(z), z): ``forms.sympy_activation`` as this backend's expression."""
        key = ("act", name)
        if key not in self._cache:
            z = sympy.Symbol("z")
            self._cache[key] = (self.convert(sympy_activation(name, z)), self.convert(z))
        return self._cache[key]

    def loss(self, output: str, K: int, m: int):
        """(ℓ(a, y), a symbols, y symbols): one example's data term, from ``functions``."""
        key = ("loss", output, K, m)
        if key not in self._cache:
            a = [sympy.Symbol(f"a{k}") for k in range(K)]
            y = [sympy.Symbol(f"y{k}") for k in range(K)]
            expr = sympy_output_loss(output, a, y, m)
            self._cache[key] = (self.convert(expr), [self.convert(s) for s in a], [self.convert(s) for s in y])
        return self._cache[key]


def _backend(backend: str) -> _Backend:
    if backend == "auto":
        backend = "symengine" if symengine is not None else "sympy"
    if backend not in ("symengine", "sympy"):
        raise InputError(f"Unknown symbolic backend {backend!r}", expected='"auto", "symengine" or "sympy"',
                         received=repr(backend), fix='use "auto"')
    return _Backend(backend)


def _penalty_coefficient(problem: Problem) -> Fraction:
    """c in penalty = c·Σθ², exactly (``Network.reg_coefficient`` computes it in float64)."""
    net, m = problem.network, problem.m
    lam = Fraction(net.lam)
    exact = {"lambda/2m": lam / (2 * m), "lambda": lam, "lambda/2": lam / 2}
    if net.reg not in exact:
        raise InputError(f"The oracle does not know the regularization convention {net.reg!r}",
                         expected="one of " + ", ".join(exact), received=repr(net.reg))
    c = exact[net.reg]
    if not math.isclose(float(c), net.reg_coefficient(m), rel_tol=1e-15, abs_tol=0):
        raise InputError(f"The exact penalty coefficient {c} disagrees with Network.reg_coefficient",
                         received=repr(net.reg_coefficient(m)), fix="keep symbolic._penalty_coefficient in step with spec")
    return c


# ---- full mode -------------------------------------------------------------------------------

def _build_cost(problem: Problem, be: _Backend):
    """J over one symbol per scalar parameter; also the pre-activation expressions.

    Returns:
        (J, {name: symbol} in ``scalar_names`` order, {(k, i, j): a⁽ᵏ⁾ of example i, unit j}).
    """
    net = problem.network
    names = scalar_names(net)
    syms = {n: be.symbol(n) for n in names}
    W = {k: [[syms[f"W{k}[{j},{l}]"] for l in range(net.sizes[k - 1])] for j in range(net.sizes[k])] for k in range(1, net.depth + 1)}
    b = {k: [syms[f"b{k}[{j}]"] for j in range(net.sizes[k])] for k in range(1, net.depth + 1)}
    loss, a_syms, y_syms = be.loss(net.output, net.sizes[-1], problem.m)
    pre: dict[tuple[int, int, int], object] = {}
    terms = []
    for i in range(problem.m):
        h = [be.exact(x) for x in problem.X[i]]
        for k in range(1, net.depth + 1):
            a = [be.add([w * x for w, x in zip(W[k][j], h)] + [b[k][j]]) for j in range(net.sizes[k])]
            for j, aj in enumerate(a):
                pre[(k, i, j)] = aj
            if k < net.depth:
                f, z = be.activation(net.activations[k - 1])
                h = [f.xreplace({z: aj}) for aj in a]
        repl = {s: v for s, v in zip(a_syms, a)}
        repl.update({s: be.exact(v) for s, v in zip(y_syms, problem.Y[i])})
        terms.append(loss.xreplace(repl))
    if net.lam > 0:
        c = be.exact(_penalty_coefficient(problem))
        reg = [syms[n] ** 2 for n in names if net.is_regularized(n.split("[")[0])]
        terms.append(c * be.add(reg))
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
    J, syms, _ = _build_cost(problem, _Backend("sympy"))
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
    names = scalar_names(problem.network)
    if name not in names:
        raise InputError(f"{name!r} is not a parameter of {problem.network.compact}",
                         expected=f"a scalar name such as {names[0]!r} or {names[-1]!r}", received=repr(name),
                         fix="indices are 0-based; weights are Wk[row,col] with Wk of shape (n_k, n_k-1)")
    size = problem.network.n_params * problem.m
    if size > _EXPRESSION_LIMIT:
        raise InputError(f"The cost expression of {problem.network.compact} with m = {problem.m} is too large to show",
                         expected=f"parameters × examples ≤ {_EXPRESSION_LIMIT:,}", received=f"{size:,}",
                         fix="use fewer examples or a smaller network for a readable formula; exact_gradient gives the values")
    J, syms = cost_expression(problem)
    return sympy.diff(J, syms[name])


# ---- the driver ------------------------------------------------------------------------------

class _Progress:
    def __init__(self, callback, total):
        self.callback, self.total, self.done = callback, total, 0

    def step(self, n: int = 1) -> None:
        self.done += n
        if self.callback:
            self.callback(min(self.done, self.total), self.total)

    def grow(self, n: int) -> None:
        self.total += n


def _full_evaluator(problem: Problem, be: _Backend, progress: _Progress):
    """Full mode: build J, differentiate it whole per parameter; return (run(kit, bits, scales), steps per pass).

    ``run`` evaluates J, every partial (and, if ``scales``, its cancellation scale) and the ReLU
    pre-activations at ``bits``, sharing one memo of sub-expression values.
    """
    J, syms, pre = _build_cost(problem, be)
    names = list(syms)
    partials = []
    for n in names:
        partials.append(J.diff(syms[n]))
        progress.step()
    relu = _relu_units(problem)
    values = {n: float(v) for n, v in zip(names, _flat_params(problem))}

    def run(kit: Kit, bits: int, scales: bool):
        with kit.precision(bits):
            env = {syms[n]: kit.from_float(values[n]) for n in names}
            exact = frozenset(env)  # the parameters are float64 numbers, held exactly
            memo: dict = {}
            mags: dict = {}
            cost = evaluate(J, env, kit, memo)
            grads, mag = [], []
            for d in partials:
                grads.append(evaluate(d, env, kit, memo))
                if scales:
                    mag.append(magnitude(d, env, kit, memo, mags, exact))
                progress.step()
            zeros = [(k, i, j) for (k, i, j) in relu if evaluate(pre[(k, i, j)], env, kit, memo) == 0]
        return cost, grads, mag, zeros

    return run, len(names)


def _flat_params(problem: Problem) -> np.ndarray:
    return np.concatenate([problem.params[n].reshape(-1) for n, _ in problem.network.param_shapes])


def _relu_units(problem: Problem) -> list[tuple[int, int, int]]:
    net = problem.network
    return [(k, i, j) for k, act in enumerate(net.activations, start=1) if act == "relu"
            for i in range(problem.m) for j in range(net.sizes[k])]


def _scalable_evaluator(problem: Problem, be: _Backend, progress: _Progress):
    """Scalable mode: J as a ``Graph`` of per-unit, per-example templates; return (run, steps per pass).

    Leaves: the parameters (with gradient), X and Y (without). Templates, each instantiated in one
    batch: ``affine`` (a = Σ wₗuₗ + b), the hidden activation f(z), one loss per example from
    ``forms.sympy_output_loss``, one penalty c·Σθ² per regularized unit, and the final sum.
    """
    net, m = problem.network, problem.m
    g = Graph()
    ids = {name: g.leaves(problem.params[name], requires_grad=True) for name, _ in net.param_shapes}
    H = g.leaves(problem.X, requires_grad=False)
    Yids = g.leaves(problem.Y, requires_grad=False)
    templates: dict = {}

    def affine(n):  # a = Σₗ wₗ uₗ + b, one unit of one example
        if ("affine", n) not in templates:
            w = [be.symbol(f"w{l}") for l in range(n)]
            u = [be.symbol(f"u{l}") for l in range(n)]
            bias = be.symbol("b")
            templates[("affine", n)] = Template(be.add([wl * ul for wl, ul in zip(w, u)] + [bias]), w + u + [bias], f"affine{n}")
        return templates[("affine", n)]

    pre = {}
    for k in range(1, net.depth + 1):
        n_in, n_out = net.sizes[k - 1], net.sizes[k]
        Wk, bk = ids[f"W{k}"], ids[f"b{k}"]
        rows = np.concatenate([
            np.broadcast_to(Wk[None, :, :], (m, n_out, n_in)),
            np.broadcast_to(H[:, None, :], (m, n_out, n_in)),
            np.broadcast_to(bk[None, :, None], (m, n_out, 1)),
        ], axis=2).reshape(m * n_out, 2 * n_in + 1)
        A = g.apply(affine(n_in), rows).reshape(m, n_out)
        pre[k] = A
        if k < net.depth:
            act = net.activations[k - 1]
            f, z = be.activation(act)
            H = g.apply(Template(f, [z], act), A.reshape(-1, 1)).reshape(m, n_out)
    K = net.sizes[-1]
    loss, a_syms, y_syms = be.loss(net.output, K, m)
    losses = g.apply(Template(loss, list(a_syms) + list(y_syms), f"{net.output} loss"), np.concatenate([pre[net.depth], Yids], axis=1))
    terms = [losses]
    if net.lam > 0:
        c = be.exact(_penalty_coefficient(problem))
        for k in range(1, net.depth + 1):
            cols = [ids[f"W{k}"]] if net.is_regularized(f"W{k}") else []
            if net.is_regularized(f"b{k}"):
                cols.append(ids[f"b{k}"][:, None])
            if not cols:
                continue
            rows = np.concatenate(cols, axis=1)
            th = [be.symbol(f"t{l}") for l in range(rows.shape[1])]
            terms.append(g.apply(Template(c * be.add([t ** 2 for t in th]), th, "penalty"), rows))
    all_terms = np.concatenate(terms)
    s = [be.symbol(f"s{l}") for l in range(all_terms.size)]
    J = g.apply(Template(be.add(s), s, "sum"), all_terms[None, :])[0]
    relu_layers = [k for k, act in enumerate(net.activations, start=1) if act == "relu"]
    order = [ids[n].reshape(-1) for n, _ in net.param_shapes]
    param_ids = np.concatenate(order)

    def run(kit: Kit, bits: int, scales: bool):
        with kit.precision(bits):
            values = g.forward(kit, progress.step)
            adj, scale = g.gradient(values, J, kit, progress.step, scales=scales)
        zeros = [(k, i, j) for k in relu_layers for i, j in zip(*np.nonzero(values[pre[k]] == 0))]
        return values[J], list(adj[param_ids]), list(scale[param_ids]) if scales else [], zeros

    return run, 2 * len(g.ops)


def _condition(values, scales, kit: Kit, bits: int, digits: int) -> tuple[float, float, list[int], list[int]]:
    """Classify the partials of a pass at ``bits`` by their cancellation scale.

    Returns:
        (log₂ of the largest scale/|value| among the partials that matter; log₂ of the largest
        scale; indices that cancelled to exactly 0; indices whose error bound is below 2^-1100,
        so their float64 value is settled, but whose full-precision digits are not verified).
    """
    worst, lost, negligible = kit.number(1), [], []
    largest = max([kit.number(1), *scales])
    noise_factor = kit.number(2) ** -(bits - 16)
    floor = kit.number(2) ** -_NEGLIGIBLE_BITS
    tenth = kit.number(10) ** -digits
    for i, (v, s) in enumerate(zip(values, scales)):
        noise = s * noise_factor
        if noise < floor:
            if (v == 0 and s != 0) or noise > abs(v) * tenth:
                negligible.append(i)
        elif v == 0:
            lost.append(i)
        elif s > worst * abs(v):
            worst = s / abs(v)
    return float(kit.log(worst)) / math.log(2), float(kit.log(largest)) / math.log(2), lost, negligible


def _kink_messages(problem: Problem, zeros) -> tuple[str, ...]:
    msgs = []
    for k, i, j in sorted(zeros):
        upstream = f"; and, through it, every parameter of layers 1..{k - 1}" if k > 1 else ""
        msgs.append(f"pre-activation a{k}[{j}] of example {i} is exactly 0 at a ReLU (kink): "
                    f"∂J/∂W{k}[{j},:] and ∂J/∂b{k}[{j}] use relu'(0) = 0{upstream}")
    return tuple(msgs)


def exact_gradient(problem: Problem, *, mode: str = "auto", digits: int = 30, backend: str = "auto",
                   progress: Callable[[int, int], None] | None = None) -> ExactGradient:
    """J and every ∂J/∂θ of ``problem``, exactly differentiated and evaluated to ``digits`` digits.

    Args:
        problem: the network, parameters and data.
        mode: ``"full"`` (differentiate the whole cost per parameter), ``"scalable"`` (local
            derivatives + generic reverse sweep) or ``"auto"`` (full while P²·m ≤
            ``FULL_MODE_LIMIT[backend]``). A ``"full"`` request beyond the limit falls back to
            scalable mode with a note.
        digits: significant decimal digits wanted (≥ 16); evaluation runs at ~digits·log₂10 + 32
            bits and is checked against a second pass 64 bits finer.
        backend: ``"symengine"``, ``"sympy"`` or ``"auto"`` (SymEngine if installed).
        progress: called as ``progress(done, total)`` as the work advances (total may grow if
            the precision has to be raised).

    Returns:
        An ``ExactGradient``.

    Raises:
        InputError: unknown mode/backend, ``digits`` < 16, or a problem the oracle cannot take.
    """
    start = time.perf_counter()
    if not isinstance(problem, Problem):
        raise InputError("exact_gradient needs a Problem", received=type(problem).__name__,
                         fix="build one with spec.make_problem or problems.debug_problem")
    if mode not in ("auto", "full", "scalable"):
        raise InputError(f"Unknown mode {mode!r}", expected='"auto", "full" or "scalable"', received=repr(mode))
    if not isinstance(digits, int) or isinstance(digits, bool) or not 16 <= digits <= 10_000:
        raise InputError("digits must be an integer from 16 to 10000", received=repr(digits),
                         fix="30 (the default) is far beyond float64's 16")
    be = _backend(backend)
    kit = default_kit()
    notes: list[str] = []
    P = problem.network.n_params
    work, limit = P * P * problem.m, FULL_MODE_LIMIT[be.name]
    chosen = mode
    if mode == "auto":
        chosen = "full" if work <= limit else "scalable"
    elif mode == "full" and work > limit:
        chosen = "scalable"
        notes.append(f"full mode was asked for, but {P} parameters and {problem.m} examples (P²·m = {work:,}) exceed "
                     f"FULL_MODE_LIMIT[{be.name!r}] = {limit:,} and would take too long; used scalable mode")
    tracker = _Progress(progress, 0)
    if chosen == "full":
        tracker.grow(3 * P)  # P differentiations, then two evaluation passes of P partials
        run, per_pass = _full_evaluator(problem, be, tracker)
    else:
        run, per_pass = _scalable_evaluator(problem, be, tracker)
        tracker.grow(2 * per_pass)

    target = math.ceil(digits * math.log2(10)) + _GUARD_BITS
    bits = target
    for attempt in range(_MAX_RETRIES + 1):
        cost1, grads1, _, _ = run(kit, bits, False)
        cost2, grads2, scales, zeros = run(kit, bits + _CHECK_BITS, True)
        with kit.precision(bits + _CHECK_BITS):
            cond_bits, scale_bits, lost, negligible = _condition(grads2, scales, kit, bits, digits)
            keep = sorted(set(range(len(grads2))) - set(lost) - set(negligible))
            floor = kit.number(2) ** -_NEGLIGIBLE_BITS  # J itself can be that small: a saturated, right answer
            cost_negligible = cost1 != cost2 and abs(cost1 - cost2) < floor and abs(cost2) < floor
            costs = ([], []) if cost_negligible else ([cost1], [cost2])
            agree = agreeing_digits(costs[0] + [grads1[i] for i in keep], costs[1] + [grads2[i] for i in keep], kit)
        achieved = min(agree, (bits - cond_bits) * math.log10(2))
        # exact zeros by cancellation may resolve at more bits: worth a retry while that is cheap
        chase_lost = bool(lost) and P * problem.m <= _CHASE_ZEROS_LIMIT
        if (achieved >= digits and not chase_lost) or attempt == _MAX_RETRIES or bits >= _MAX_BITS:
            break
        # Enough bits settle every partial: resolved to `digits`, or below 2^-1100 (0.0 in float64)
        # with an error bound below that too. A partial at the rounding-noise level or cancelled
        # to 0 hides how much it needs, so go there at once; else cover the measured cancellation.
        settle = target + _NEGLIGIBLE_BITS + 16 + math.ceil(scale_bits)
        if achieved < 1 or chase_lost:
            new_bits = settle
        else:
            new_bits = min(settle, max(2 * bits, target + math.ceil(cond_bits)))
        new_bits = min(new_bits, _MAX_BITS)
        if new_bits <= bits:
            break
        notes.append(f"{bits} bits gave {max(achieved, 0):.1f} reliable digits (cancellation of up to {cond_bits:.0f} "
                     f"bits{f', {len(lost)} partial(s) cancelled to exactly 0' if lost else ''}); redone at {new_bits} bits")
        bits = new_bits
        tracker.grow(2 * per_pass)
    verified = max(0, int(min(math.floor(achieved), bits * math.log10(2))))
    if verified < digits:
        notes.append(f"only {verified} digits could be verified (asked for {digits})")
    names = scalar_names(problem.network)

    def shown(indices):
        return ", ".join(names[i] for i in indices[:5]) + (f" and {len(indices) - 5} more" if len(indices) > 5 else "")
    if lost:
        notes.append(f"∂J/∂θ came out exactly 0 by cancellation for {shown(lost)}: the true value is below "
                     f"2^-{bits} of its terms' size (e.g. 1 − tanh²(a) of a saturated unit); not counted in digits")
    if cost_negligible:
        notes.append(f"J is below 2^-{_NEGLIGIBLE_BITS} (0.0 in float64) and its full-precision digits were not resolved")
    if negligible:
        notes.append(f"∂J/∂θ for {shown(negligible)} is below 2^-{_NEGLIGIBLE_BITS} (0.0 in float64, and settled "
                     "for any float64 comparison) but its full-precision digits were not resolved; not counted in digits")
    bits += _CHECK_BITS

    grads, grads_exact = {}, {}
    pos = 0
    for name, shape in problem.network.param_shapes:
        size_ = int(np.prod(shape))
        chunk = grads2[pos:pos + size_]
        pos += size_
        grads[name] = np.array([float(x) for x in chunk], dtype=np.float64).reshape(shape)
        exact = np.empty(size_, dtype=object)
        exact[:] = [kit.to_mpmath(x) for x in chunk]
        grads_exact[name] = exact.reshape(shape)
    return ExactGradient(
        cost=float(cost2), grads=grads, cost_exact=kit.to_mpmath(cost2), grads_exact=grads_exact,
        digits=verified, bits=bits, mode=chosen, backend=be.name, kinks=_kink_messages(problem, zeros),
        notes=tuple(notes), seconds=time.perf_counter() - start, numbers=kit.name,
    )
