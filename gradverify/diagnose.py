"""Bug signatures: from a candidate's gradient versus the exact one, name the bug in plain words.

Each detector tests one hypothesis about how the candidate was computed and returns a
``Finding`` with a confidence in [0, 1] when the hypothesis explains the error:

- a uniform scale factor (×m, ×1/m, ×2, ×½, ×K, −1 …), on the whole gradient or on one array
  ("b2 is off by a factor m");
- a transposed or permuted layout (C vs Fortran order, Θ with the bias column vs W/b);
- the regularization: biases regularized, regularization missing, or scaled by another
  convention (λ·θ instead of λ/m·θ …);
- a wrong activation derivative (σ′ applied to the activation, a(1 − a) on the pre-activation,
  a missing f′ …) — by recomputing the gradient such a mutant would give;
- a gradient right only up to finite-difference noise (a numerical gradient passed off as
  backprop);
- a cost that is wrong while the gradient is right, or consistent with the wrong cost;
- otherwise, where the errors are (one layer, biases only …).

The mutant engine below models *bugs*; it is not a gradient source and nothing judges a source
with it. Hypotheses use their own small pass so that the sources stay independent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gradverify.budget import cost_budget, engine_budget
from gradverify.functions import activation
from gradverify.params import Layout, flatten, unflatten
from gradverify.spec import Problem

__all__ = ["Finding", "diagnose", "distinct_digits"]


@dataclass(frozen=True)
class Finding:
    """One recognized bug signature: a kind, a plain-words message, a confidence, where."""

    kind: str
    message: str
    confidence: float
    where: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"kind": self.kind, "message": self.message, "confidence": round(self.confidence, 3), "where": list(self.where)}


def _fit(target: np.ndarray, basis: np.ndarray) -> tuple[float, float]:
    """Least-squares α with target ≈ α·basis, and the relative residual of that fit."""
    bb = float(basis @ basis)
    if bb == 0 or not np.all(np.isfinite(target)):
        return math.nan, math.inf
    alpha = float(target @ basis) / bb
    resid = float(np.linalg.norm(target - alpha * basis)) / max(float(np.linalg.norm(target)), 1e-300)
    return alpha, resid


def _explains(candidate: np.ndarray, hypothesis: np.ndarray, exact: np.ndarray) -> float:
    """Confidence that ``hypothesis`` is what the candidate computed: 1 − its error / the error."""
    err = float(np.linalg.norm(candidate - exact))
    if err == 0 or not np.all(np.isfinite(hypothesis)):
        return 0.0
    miss = float(np.linalg.norm(candidate - hypothesis))
    return max(0.0, 1.0 - miss / err) if miss < 0.05 * err else 0.0


def _name_factor(s: float, problem: Problem) -> str | None:
    """A name for a scale factor, the most telling first: −1, then m and K, then plain numbers."""
    m, K = problem.m, problem.network.sizes[-1]
    named = [(-1.0, "−1")]
    if m > 1:
        named += [(m, f"m = {m}"), (1 / m, f"1/m = 1/{m}"), (m * m, f"m² = {m * m}"), (-m, f"−m = −{m}"),
                  (2 * m, f"2m = {2 * m}"), (1 / (2 * m), f"1/(2m) = 1/{2 * m}")]
    if K > 1:
        named += [(K, f"K = {K} (the number of outputs)"), (1 / K, f"1/K = 1/{K}")]
    named += [(2.0, "2"), (0.5, "½")]
    for value, name in named:
        if abs(s - value) <= 1e-6 * abs(value):
            return name
    return None


# ---- the arrays of a problem -------------------------------------------------------------

def _arrays(problem: Problem) -> list[tuple[str, slice]]:
    out, start = [], 0
    for name, shape in problem.network.param_shapes:
        size = math.prod(shape)
        out.append((name, slice(start, start + size)))
        start += size
    return out


def _reg_grad(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """∂penalty/∂θ of the convention in force on weights, and what regularizing the biases would add."""
    net = problem.network
    c = net.reg_coefficient(problem.m) if net.lam else 0.0
    on_w = {n: (2 * c * p if n.startswith("W") else np.zeros_like(p)) for n, p in problem.params.items()}
    on_b = {n: (2 * c * p if n.startswith("b") else np.zeros_like(p)) for n, p in problem.params.items()}
    return flatten(on_w, net), flatten(on_b, net)


# ---- the mutant engine: gradients that known bugs produce ---------------------------------

def _mutant_grad(problem: Problem, derivative: str, Y: np.ndarray | None = None) -> np.ndarray | None:
    """The gradient a backprop would give with a wrong hidden-layer derivative.

    ``derivative`` names the bug: ``"f'(h)"`` (the derivative applied to the activation h
    instead of the pre-activation a, e.g. σ(h)(1 − σ(h))), ``"h-form on a"`` (the h-form
    h(1 − h) or 1 − h² evaluated on the pre-activation a), ``"none"`` (f′ forgotten), or
    ``"right"`` (the right rules, used with other targets ``Y``).
    """
    net, params, X = problem.network, problem.params, problem.X
    Y = problem.Y if Y is None else Y
    if not net.activations and derivative != "right":
        return None
    m = X.shape[0]
    sig = activation("sigmoid")

    def true_from_a(act, a):  # the true f′ written from a (the mutants below misuse it)
        return {"sigmoid": lambda: sig(a) * (1 - sig(a)), "tanh": lambda: 1 - np.tanh(a) ** 2,
                "relu": lambda: (a > 0).astype(float), "softplus": lambda: sig(a), "identity": lambda: np.ones_like(a)}[act]()

    def h_form(act, v):
        return {"sigmoid": v * (1 - v), "tanh": 1 - v * v}.get(act)

    Hs, As = [X], []
    for k, act in enumerate(net.activations, start=1):
        As.append(Hs[-1] @ params[f"W{k}"].T + params[f"b{k}"])
        Hs.append(activation(act)(As[-1]))
    L = net.depth
    A = Hs[-1] @ params[f"W{L}"].T + params[f"b{L}"]
    if net.output == "sigmoid":
        delta = (sig(A) - Y) / m
    elif net.output == "softmax":
        E = np.exp(A - A.max(axis=1, keepdims=True))
        delta = (E / E.sum(axis=1, keepdims=True) * Y.sum(axis=1, keepdims=True) - Y) / m
    else:
        delta = (A - Y) / m
    grads = {}
    for k in range(L, 0, -1):
        grads[f"W{k}"], grads[f"b{k}"] = delta.T @ Hs[k - 1], delta.sum(axis=0)
        if k > 1:
            act, a, h = net.activations[k - 2], As[k - 2], Hs[k - 1]
            if derivative == "f'(h)":
                d = true_from_a(act, h)
            elif derivative == "h-form on a":
                d = h_form(act, a)
                if d is None:
                    return None
            elif derivative == "right":
                d = true_from_a(act, a)
            else:
                d = 1.0
            delta = (delta @ params[f"W{k}"]) * d
    with np.errstate(all="ignore"):
        reg_w, reg_b = _reg_grad(problem)
        return flatten(grads, net) + reg_w + (reg_b if net.reg_bias else 0)


# ---- detectors ----------------------------------------------------------------------------

def _scale_findings(problem, c, e) -> list[Finding]:
    out = []
    s, resid = _fit(c, e)
    if math.isfinite(s) and resid < 1e-6 and abs(s - 1) > 1e-6:
        name = _name_factor(s, problem)
        if s == -1 or (name == "−1"):
            return [Finding("sign", "The gradient has the wrong sign everywhere (it is −1 × the exact one): "
                            "the update direction is reversed; check the sign of the error term (h − y, not y − h).", 1.0 - resid)]
        hint = {f"m = {problem.m}": " — the 1/m of the average is missing",
                f"1/m = 1/{problem.m}": " — it is divided by m once too often"}.get(name or "", "")
        return [Finding("scale", f"The whole gradient is off by a factor {name or f'{s:.6g}'}{hint}.", 1.0 - resid if name else 0.6)]
    # the data term scaled but the regularization right (or the reverse)
    reg_w, reg_b = _reg_grad(problem)
    reg = reg_w + (reg_b if problem.network.reg_bias else 0)
    if np.any(reg) and not out:
        data = e - reg
        s, resid = _fit(c - reg, data)
        if math.isfinite(s) and resid < 1e-6 and abs(s - 1) > 1e-6:
            name = _name_factor(s, problem)
            if name == "−1":
                out.append(Finding("sign", "The data part of the gradient has the wrong sign (−1 × the exact one) while the "
                                   "regularization part is right: check the sign of the error term (h − y, not y − h).", 1.0 - resid))
            else:
                out.append(Finding("scale", f"The data term of the gradient is off by a factor {name or f'{s:.6g}'} while the "
                                   "regularization part is right" + (" — the 1/m of the average is missing" if name and name.startswith("m =") else "") + ".",
                                   1.0 - resid if name else 0.6))
    # one array at a time: the whole array, or its data term with the regularization right
    for arr, sl in _arrays(problem):
        d = c[sl] - e[sl]
        if not np.any(np.abs(d) > 1e-12 * (np.abs(e[sl]) + 1e-300)) or not np.any(e[sl]):
            continue
        for part, (cc, ee) in (("", (c[sl], e[sl])), (" (its data term; the regularization part is right)", (c[sl] - reg[sl], e[sl] - reg[sl]))):
            s, resid = _fit(cc, ee)
            if math.isfinite(s) and resid < 1e-6 and abs(s - 1) > 1e-6:
                name = _name_factor(s, problem)
                if name == "−1":
                    out.append(Finding("sign", f"{arr} has the wrong sign (−1 × the exact {arr}){part}.", 0.95 * (1 - resid), (arr,)))
                elif name:
                    out.append(Finding("scale", f"{arr} is off by a factor {name}{part}.", 0.95 * (1 - resid), (arr,)))
                break
    return out


_LAYOUT_WORDS = {
    Layout("Wb", "C"): "W1, b1, W2, b2, … each row by row (C order)",
    Layout("Wb", "F"): "W1, b1, W2, b2, … each column by column (Fortran order) — the same numbers as each weight "
                       "gradient transposed and read back row by row (∂J/∂Wₖ is Δᵀ·H, of Wₖ's shape)",
    Layout("theta", "C"): "Θ1, Θ2, … (bias as column 0) row by row (C order)",
    Layout("theta", "F"): "Θ1, Θ2, … (bias as column 0) column by column (MATLAB's Theta(:), Fortran order)",
}


def _layout_findings(problem, c, e) -> list[Finding]:
    """The right numbers in the wrong order: written in one layout, read in another."""
    net = problem.network
    grads = unflatten(e, net)
    out = []
    for read, read_words in _LAYOUT_WORDS.items():
        for written, written_words in _LAYOUT_WORDS.items():
            if read == written:
                continue
            alt = flatten(unflatten(flatten(grads, net, written), net, read), net)
            conf = _explains(c, alt, e)
            if conf > 0.9:
                out.append(Finding("layout", f"The gradient holds the right numbers in the wrong order: it is laid out as "
                                   f"{written_words}, but read as {read_words} (how the parameters are laid out).", conf))
    out.sort(key=lambda f: -f.confidence)
    return out[:1]


def _reg_term(net, symbol: str) -> str:
    """The gradient of the penalty in the convention in use: λ/m·W for λ/(2m)·ΣW², 2λ·W for λ·ΣW², λ·W for ½λ·ΣW²."""
    return {"lambda/2m": f"λ/m·{symbol}", "lambda": f"2λ·{symbol}", "lambda/2": f"λ·{symbol}"}[net.reg]


def _array_findings(problem, c, e) -> list[Finding]:
    """One array's gradient in the wrong form, at any depth: missing (a detached layer), transposed, reordered."""
    net = problem.network
    out: list[Finding] = []
    zero = {arr for arr, sl in _arrays(problem) if not np.any(c[sl])}
    # whole layers with no gradient while the exact one has some (a zero bias alone is another bug)
    dead = [arr for arr, sl in _arrays(problem) if {f"W{arr[1:]}", f"b{arr[1:]}"} <= zero and np.any(e[sl])]
    if dead:
        alt = e.copy()
        for arr, sl in _arrays(problem):
            if arr in dead:
                alt[sl] = 0.0
        conf = _explains(c, alt, e)
        if conf > 0.9:
            layers = sorted({int(a[1:]) for a in dead})
            where = f"layer {layers[0]}" if len(layers) == 1 else f"layers {', '.join(map(str, layers))}"
            out.append(Finding("detached", f"{', '.join(dead)} get{'s' if len(dead) == 1 else ''} no gradient at all: the backward pass never "
                               f"reaches {where} (a detached or skipped layer, or δ not propagated that far down).", conf, tuple(dead)))
    shapes = dict(net.param_shapes)
    for arr, sl in _arrays(problem):
        shape = shapes[arr]
        if len(shape) != 2 or min(shape) < 2:
            continue
        exact = e[sl].reshape(shape)
        forms = {"transposed": exact.T.reshape(-1) if shape[0] == shape[1] else None,
                 "reordered": exact.reshape(-1, order="F")}
        for kind, values in forms.items():
            if values is None:
                continue
            alt = e.copy()
            alt[sl] = values
            conf = _explains(c, alt, e)
            if conf > 0.9:
                words = (f"{arr}'s gradient is transposed: it holds (∂J/∂{arr})ᵀ (e.g. Hᵀ·Δ where Δᵀ·H, of {arr}'s shape {shape}, was meant)"
                         if kind == "transposed" else
                         f"{arr}'s gradient holds the right numbers in the wrong order: written column by column (Fortran order) "
                         f"and read row by row — e.g. the transposed gradient reshaped to {shape}")
                out.append(Finding("layout", words + ". The other arrays are right.", conf, (arr,)))
                break
    return out


def _regularization_findings(problem, c, e) -> list[Finding]:
    net = problem.network
    if not net.lam:
        return []
    reg_w, reg_b = _reg_grad(problem)
    d = c - e
    out = []
    if not net.reg_bias:
        conf = _explains(c, e + reg_b, e)
        if conf > 0.9:
            out.append(Finding("regularized-bias", f"The biases are regularized: their gradient carries an extra {_reg_term(net, 'b')} "
                               "(biases are not in the penalty; skip column 0 of Θ / the b vectors).", conf,
                               tuple(n for n, _ in net.param_shapes if n.startswith("b"))))
    alpha, resid = _fit(d, reg_w)
    if math.isfinite(alpha) and resid < 1e-6 and abs(alpha) > 1e-6:
        c0 = net.reg_coefficient(problem.m)
        if abs(alpha + 1) < 1e-6:
            msg = f"The regularization term is missing from the weight gradients (add {_reg_term(net, 'W')})."
            out.append(Finding("missing-regularization", msg, 1 - resid))
        else:
            used = (alpha + 1) * 2 * c0
            m = problem.m
            words = {net.lam: "λ·θ", net.lam / m: "λ/m·θ", 2 * net.lam: "2λ·θ", net.lam / (2 * m): "λ/(2m)·θ", 2 * net.lam / m: "2λ/m·θ"}
            name = next((w for v, w in words.items() if abs(used - v) <= 1e-6 * abs(v)), f"{used:.6g}·θ")
            right = next((w for v, w in words.items() if abs(2 * c0 - v) <= 1e-6 * abs(v)), f"{2 * c0:.6g}·θ")
            out.append(Finding("regularization-scale", f"The regularization gradient is {name} instead of {right}: "
                               "check the penalty's scaling convention.", 1 - resid))
    return out


def _derivative_findings(problem, c, e) -> list[Finding]:
    out = []
    words = {
        "f'(h)": "the activation's derivative was applied to the activation h = f(a) instead of the pre-activation a "
                 "(e.g. sigmoidGradient(h) = σ(h)(1 − σ(h)) where h(1 − h) or σ(a)(1 − σ(a)) was meant)",
        "h-form on a": "the derivative in its output form was applied to the pre-activation (a(1 − a) or 1 − a² "
                       "instead of h(1 − h) or 1 − h²)",
        "none": "the hidden layers' activation derivative f′ is missing from the backward pass (δ = Wᵀδ without ∘ f′(a))",
    }
    for kind, text in words.items():
        alt = _mutant_grad(problem, kind)
        if alt is None:
            continue
        conf = _explains(c, alt, e)
        if conf > 0.9:
            out.append(Finding("activation-derivative", "Wrong activation derivative: " + text + ".", conf))
    return out


def _label_findings(problem, c, e) -> list[Finding]:
    if problem.labels is None or problem.network.sizes[-1] < 2:
        return []
    out = []
    shifts: tuple[tuple[int, str], ...] = ((-1, "one class down (labels read as 1-based when they are 0-based, e.g. eye(K)[y - 1])"),
              (1, "one class up (labels read as 0-based when they are 1-based)"))
    if problem.network.sizes[-1] == 2:  # with two classes both shifts are the same swap
        shifts = ((1, "by one class: the two classes are swapped (labels read as 1-based when they are 0-based, or the reverse)"),)
    for shift, words in shifts:
        alt = _mutant_grad(problem, "right", np.roll(problem.Y, shift, axis=1))
        conf = _explains(c, alt, e) if alt is not None else 0.0
        if conf > 0.9:
            out.append(Finding("labels", f"The targets are shifted {words}: the one-hot row of label k must have its 1 in column k.", conf))
    return out


def _noise_finding(problem, c, e, budget) -> list[Finding]:
    d = np.abs(c - e)
    rel = d / np.maximum(np.abs(e), np.abs(c)).clip(min=1e-300)
    big = np.abs(e) > 1e-3 * np.max(np.abs(e)) if np.any(e) else np.zeros_like(e, bool)
    if not np.any(big):
        return []
    typical = float(np.median(rel[big]))
    if 1e-13 < typical < 1e-5 and float(np.max(rel[big])) < 1e-3 and np.mean(d > budget) > 0.2:
        return [Finding("numeric-noise", f"The gradient is right only up to finite-difference noise: its typical relative error is "
                        f"{typical:.1g}, where a float64 backprop gets ~1e-15. It looks like a numerical gradient "
                        "passed off as backprop.", min(0.95, 0.5 + 0.1 * -math.log10(typical) / 2))]
    return []


def _precision_finding(problem, cand, exact) -> list[Finding]:
    """A float32 engine: gradient and cost both within a correct single-precision engine's budget.

    Told apart from a numerical gradient by the cost: a finite-difference gradient comes with a
    float64 cost, while a float32 engine's cost is off by about the same relative amount as its
    gradient.
    """
    if cand.kind == "float32" or cand.cost is None or exact.cost is None or not math.isfinite(cand.cost):
        return []
    c, e = cand.grad, exact.grad
    within32 = np.abs(c - e) <= engine_budget(problem, "float32") + exact.budget
    cost_err = abs(cand.cost - exact.cost)
    if not within32.all() or cost_err > cost_budget(problem, "float32") + exact.cost_budget:
        return []
    if cost_err <= cost_budget(problem, "float64") + exact.cost_budget:
        return []  # a float64 cost: a numerical gradient, not a float32 engine (see _noise_finding)
    rel_cost = cost_err / max(abs(exact.cost), 1e-300)
    big = np.abs(e) > 1e-3 * np.max(np.abs(e)) if np.any(e) else np.zeros_like(e, bool)
    rel_grad = float(np.median(np.abs(c - e)[big] / np.abs(e[big]))) if big.any() else float("nan")
    return [Finding("single-precision", f"Computed in single precision (float32): the cost and the gradient are both off by "
                    f"~{max(rel_cost, 1e-30):.0e} and ~{rel_grad:.0e} relative, what a correct float32 engine gets. If that is by "
                    "design, say so (--precision float32); otherwise keep float64 throughout (look for float32 arrays or "
                    ".astype(np.float32)).", 0.9)]


def _where_finding(problem, c, e, budget) -> list[Finding]:
    off = np.abs(c - e) > budget
    if not off.any():
        return []
    arrays = [arr for arr, sl in _arrays(problem) if off[sl].any()]
    layers = sorted({arr[1:] for arr in arrays})
    if len(layers) == 1 and problem.network.depth > 1:
        return [Finding("one-layer", f"The errors are confined to layer {layers[0]} ({', '.join(arrays)}); the other layers are right. "
                        "Look at that layer's δ or its gradient formula.", 0.5, tuple(arrays))]
    if all(a.startswith("b") for a in arrays):
        return [Finding("biases-only", f"Only the bias gradients are wrong ({', '.join(arrays)}): ∂J/∂b is the sum of δ over the examples.", 0.5, tuple(arrays))]
    return [Finding("located", f"Wrong entries in {', '.join(arrays)} ({int(off.sum())} of {off.size}).", 0.2, tuple(arrays))]


def _cost_findings(problem, cand, exact, self_consistent: bool | None) -> list[Finding]:
    if cand.cost is None or exact.cost is None:
        return []
    grad_ok = bool(np.all(np.abs(cand.grad - exact.grad) <= cand.budget + exact.budget))
    cost_ok = abs(cand.cost - exact.cost) <= cand.cost_budget + exact.cost_budget
    out = []
    if not cost_ok:
        net = problem.network
        penalty = 0.0
        if net.lam:
            c0 = net.reg_coefficient(problem.m)
            penalty = c0 * sum(float(np.sum(p * p)) for n, p in problem.params.items() if net.is_regularized(n))
            bias_pen = c0 * sum(float(np.sum(p * p)) for n, p in problem.params.items() if n.startswith("b"))
        what = ""
        if penalty and abs(cand.cost - (exact.cost - penalty)) < 1e-9 * abs(exact.cost):
            what = " It equals the cost without the regularization term."
        elif net.lam and not net.reg_bias and abs(cand.cost - (exact.cost + bias_pen)) < 1e-9 * abs(exact.cost):
            what = " It includes the biases in the regularization term."
        elif problem.m > 1 and abs(cand.cost - problem.m * (exact.cost - penalty) - penalty) < 1e-9 * abs(problem.m * exact.cost):
            what = f" Its data term is m = {problem.m} times too large (the 1/m is missing)."
        yours, truth = distinct_digits(cand.cost, exact.cost)
        if grad_ok:
            out.append(Finding("cost-only", f"The cost is wrong ({yours}, exact {truth}) while the gradient is right." + what, 0.9))
        elif self_consistent:
            out.append(Finding("consistent-wrong-cost", "The gradient is consistent with this submission's own cost (a finite-difference "
                               "check of its cost agrees), but the cost itself is wrong, so the classic gradient check passes "
                               f"while both are wrong ({yours} vs exact {truth})." + what, 0.9))
        else:
            out.append(Finding("cost", f"The cost is wrong too ({yours}, exact {truth})." + what, 0.6))
    elif not grad_ok:
        out.append(Finding("gradient-only", "The cost is right but the gradient is not: the bug is in the backward pass.", 0.5))
    return out


def distinct_digits(a: float, b: float) -> tuple[str, str]:
    """Two values printed with the fewest digits (10 to 17) that show they differ."""
    for digits in range(10, 18):
        x, y = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if x != y:
            break
    return x, y


def _cost_right(cand, exact) -> bool:
    """True when the cost is right to float64 accuracy, or not given (a numerical gradient keeps a float64 cost)."""
    if cand.cost is None or exact.cost is None:
        return True
    return math.isfinite(cand.cost) and abs(cand.cost - exact.cost) <= cand.cost_budget + exact.cost_budget


def diagnose(problem: Problem, candidate, exact, *, self_consistent: bool | None = None) -> list[Finding]:
    """Name the bug(s) in ``candidate`` (a ``compare.SourceResult``) against ``exact``.

    Args:
        problem: the problem both were computed on.
        candidate, exact: ``SourceResult`` records (flat gradients in canonical order).
        self_consistent: whether the candidate's gradient agrees with finite differences of its
            own cost (known when grading), to tell "consistent with a wrong cost" apart.

    Returns:
        Findings, most confident first; the last ones locate the error when nothing explains it.
    """
    c, e = np.asarray(candidate.grad, float), np.asarray(exact.grad, float)
    budget = candidate.budget + exact.budget
    findings: list[Finding] = []
    if not np.all(np.isfinite(c)):
        bad = int(np.count_nonzero(~np.isfinite(c)))
        findings.append(Finding("non-finite", f"The gradient holds {bad} NaN or infinite value(s): look for log(0), 0/0 or an overflow "
                                "(compute the cross-entropy through log-sigmoid, not log(σ(a))).", 0.9))
    elif np.any(np.abs(c - e) > budget):
        with np.errstate(all="ignore"):
            for detector in (_scale_findings, _layout_findings, _array_findings, _regularization_findings, _derivative_findings,
                             _label_findings):
                findings += detector(problem, c, e)
            if not findings:
                findings += _precision_finding(problem, candidate, exact)
            if not findings and _cost_right(candidate, exact):
                findings += _noise_finding(problem, c, e, budget)
            findings += _where_finding(problem, c, e, budget)
    findings += _cost_findings(problem, candidate, exact, self_consistent)
    findings.sort(key=lambda f: -f.confidence)
    return findings
