"""Layer bug signatures: from a wrong source's partials versus the exact ones, name the bug in plain words.

Detectors, each a hypothesis about how the wrong gradient was computed, returning
``gradverify.diagnose.Finding`` records (kind, message, confidence in [0, 1], where):

- shapes: a gradient of the wrong shape, read for what it says — the transpose of the input's
  shape, the upstream gradient's shape (a sum over the batch is missing), a sum over the wrong
  axis, dx not reshaped back to x's shape;
- the layer's bug models (``layers.mutants``): "dx misses the mean term of batch-norm's
  backward", "stride ignored in dw", "pooling gradient to every element instead of the max" …;
- per array: a factor (N, 1/N, T, p, 2, −1 …), a transposed square array, gate blocks of an LSTM
  in the wrong order, an array of zeros;
- the forward output (J differs while the backward is right);
- otherwise, where the errors are.
"""

from __future__ import annotations

import math
from itertools import combinations, permutations

import numpy as np

from gradverify.compare import SourceResult, SourceVerdict
from gradverify.diagnose import Finding
from gradverify.layers.case import LayerCase
from gradverify.layers.mutants import mutants_for

__all__ = ["diagnose_layer"]


def _explains(candidate: np.ndarray, hypothesis: np.ndarray, exact: np.ndarray) -> float:
    """Confidence that ``hypothesis`` is what the candidate computed: 1 − its miss / the error."""
    err = float(np.linalg.norm(candidate - exact))
    if err == 0 or not np.all(np.isfinite(hypothesis)) or not np.all(np.isfinite(candidate)):
        return 0.0
    miss = float(np.linalg.norm(candidate - hypothesis))
    return max(0.0, 1.0 - miss / err) if miss < 0.05 * err else 0.0


def _factor_names(case: LayerCase) -> list[tuple[float, str]]:
    d, named = case.dims, [(-1.0, "−1")]
    for key, words in (("N", "the batch size N"), ("T", "the number of time steps T")):
        if d.get(key, 1) > 1:
            named += [(d[key], f"{words} = {d[key]}"), (1 / d[key], f"1/{key} = 1/{d[key]}")]
    if d.get("N", 1) > 1 and d.get("T", 1) > 1:
        nt = d["N"] * d["T"]
        named += [(nt, f"N·T = {nt}"), (1 / nt, f"1/(N·T) = 1/{nt}")]
    if "p" in case.settings and float(case.settings["p"]) != 1:
        p = float(case.settings["p"]) if case.settings.get("convention") == "keep" else 1 - float(case.settings["p"])
        named += [(p, f"the keep probability p = {p:g} (the 1/p of inverted dropout is missing)"), (1 / p, f"1/p = {1 / p:g}")]
    return named + [(2.0, "2"), (0.5, "½")]


def _fit(target: np.ndarray, basis: np.ndarray) -> tuple[float, float]:
    bb = float(basis @ basis)
    if bb == 0 or not np.all(np.isfinite(target)):
        return math.nan, math.inf
    alpha = float(target @ basis) / bb
    return alpha, float(np.linalg.norm(target - alpha * basis)) / max(float(np.linalg.norm(target)), 1e-300)


# ---- shapes -------------------------------------------------------------------------------------

def _kept(full: tuple[int, ...], shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every way ``shape`` is ``full`` with some axes summed away (the axes kept, in order)."""
    return [axes for axes in combinations(range(len(full)), len(shape)) if tuple(full[a] for a in axes) == shape]


def _unsummed(upstream: set[tuple[int, ...]], exp: tuple[int, ...], got: tuple[int, ...]) -> str | None:
    """When ``got`` is the upstream gradient with too few axes summed away: which axes are still there."""
    squeezed = tuple(d for d in exp if d != 1)
    for full in upstream:
        for kept in _kept(full, got):
            for want in _kept(full, squeezed):
                extra = [a for a in kept if a not in want]
                if set(want) <= set(kept) and extra:
                    return ", ".join(map(str, extra))
    return None


def _shape_findings(case: LayerCase, problems) -> list[Finding]:
    upstream = {tuple(u.shape) for u in case.upstream.values()}
    out = []
    for prob in problems:
        name, exp, got = prob.array, prob.expected, prob.received
        g = f"d{name}" if name in case.layer.inputs else name
        if got is None:
            msg = f"{g} is not an array of numbers: {prob.message}."
        elif len(exp) == 2 and got == exp[::-1] and exp[0] != exp[1]:
            msg = (f"{g} has shape {got}, the transpose of {name}'s {exp}: it was computed transposed "
                   f"(e.g. dout.T @ x where x.T @ dout was meant).")
            out.append(Finding("transposed", msg, 0.95, (name,)))
            continue
        elif len(got) > len(tuple(d for d in exp if d != 1)) and (axes := _unsummed(upstream, exp, got)):
            what = "the upstream gradient's shape" if got in upstream else "the shape of dout partly summed"
            plural = "axes" if "," in axes else "axis"
            msg = f"{g} has {what} {got}: the sum over {plural} {axes} of dout is missing ({name} has shape {exp})."
            out.append(Finding("missing-batch-sum", msg, 0.95, (name,)))
            continue
        elif name in ("gamma", "beta") and math.prod(got) != math.prod(exp) and len(got) <= len(exp) + 1:
            msg = (f"{g} has shape {got} where {name} has {exp}: it was summed over the wrong axis (sum over every axis "
                   f"except the one {name} runs along).")
            out.append(Finding("wrong-axis", msg, 0.9, (name,)))
            continue
        elif name == "x" and math.prod(got) == math.prod(exp):
            msg = f"dx has shape {got}: it must be reshaped back to x's shape {exp} (dx.reshape(x.shape))."
        elif name == "x" and case.name == "conv" and got[:2] == exp[:2] and got[2:] == tuple(s + 2 * int(case.settings["pad"]) for s in exp[2:]):
            msg = f"dx still has the padding (shape {got}): crop the padded gradient, dx_pad[:, :, pad:pad + H, pad:pad + W]."
        else:
            msg = f"{g} has shape {got}, expected {exp} (the shape of {name})."
        out.append(Finding("shape", msg, 0.9, (name,)))
    return out


# ---- values -------------------------------------------------------------------------------------

def _mutant_findings(case: LayerCase, c: np.ndarray, e: np.ndarray, off: set[str]) -> list[Finding]:
    out = []
    slices = case.slices()
    for mutant in mutants_for(case.name):
        try:
            with np.errstate(all="ignore"):
                grads = mutant.grads(case)
        except (ValueError, IndexError, FloatingPointError, ZeroDivisionError):
            grads = None
        if not grads:
            continue
        arrays = [n for n in grads if n in off and n in slices and np.shape(grads[n]) == case.shapes()[n]]
        if not arrays:
            continue
        idx = np.concatenate([np.arange(slices[n].start, slices[n].stop) for n in arrays])
        hyp = np.concatenate([np.asarray(grads[n], float).reshape(-1) for n in arrays])
        conf = _explains(c[idx], hyp, e[idx])
        if conf > 0.9:
            out.append(Finding(mutant.kind, mutant.message, conf, tuple(arrays)))
    return out


def _array_findings(case: LayerCase, c: np.ndarray, e: np.ndarray, off: set[str]) -> list[Finding]:
    out = []
    named = _factor_names(case)
    for name, sl in case.slices().items():
        if name not in off:
            continue
        cc, ee, shape = c[sl], e[sl], case.shapes()[name]
        if not np.all(np.isfinite(cc)):
            continue
        g = f"d{name}"
        if not np.any(cc) and np.any(ee):
            out.append(Finding("zero", f"{g} is all zeros: it is never written (or never accumulated into).", 0.9, (name,)))
            continue
        s, resid = _fit(cc, ee)
        if math.isfinite(s) and resid < 1e-6 and abs(s - 1) > 1e-6:
            label = next((w for v, w in named if abs(s - v) <= 1e-6 * abs(v)), None)
            if label == "−1":
                out.append(Finding("sign", f"{g} has the wrong sign (−1 × the exact {g}).", 0.95 * (1 - resid), (name,)))
            else:
                out.append(Finding("scale", f"{g} is off by a factor {label or f'{s:.6g}'}.", (0.95 if label else 0.6) * (1 - resid), (name,)))
            continue
        if len(shape) == 2 and shape[0] == shape[1]:
            conf = _explains(cc, ee.reshape(shape).T.reshape(-1), ee)
            if conf > 0.9:
                out.append(Finding("transposed", f"{g} is transposed: it holds the right numbers with rows and columns swapped.", conf, (name,)))
                continue
        out += _gate_order(case, name, cc, ee)
    return out


_GATES = "ifog"


def _gate_order(case: LayerCase, name: str, c: np.ndarray, e: np.ndarray) -> list[Finding]:
    """LSTM weights and biases: the four gate blocks along 4H in another order."""
    if case.name not in ("lstm_step", "lstm") or name not in ("Wx", "Wh", "b"):
        return []
    shape = case.shapes()[name]
    H = shape[-1] // 4
    ee = e.reshape(shape)
    for order in permutations(range(4)):
        if order == (0, 1, 2, 3):
            continue
        alt = np.concatenate([ee[..., k * H:(k + 1) * H] for k in order], axis=-1).reshape(-1)
        conf = _explains(c, alt, e)
        if conf > 0.9:
            got = ", ".join(_GATES[k] for k in order)
            return [Finding("gate-order", f"d{name}'s gate blocks are in the order {got} along 4H; CS231n's order is i, f, o, g.", conf, (name,))]
    return []


def _where(case: LayerCase, v: SourceVerdict, off: set[str]) -> list[Finding]:
    if not off:
        return []
    right = [n for n in case.layer.inputs if n not in off]
    words = ", ".join(f"d{n}" for n in case.layer.inputs if n in off)
    tail = f"; {', '.join('d' + n for n in right)} {'is' if len(right) == 1 else 'are'} right" if right else ""
    return [Finding("location", f"The errors are in {words}{tail}.", 0.3, tuple(sorted(off)))]


def diagnose_layer(case: LayerCase, candidate: SourceResult, exact: SourceResult, verdict: SourceVerdict) -> list:
    """Findings for a source that failed on ``case``, most confident first.

    Args:
        case: the layer case.
        candidate: the wrong source (flat partials; NaN where an array was unusable).
        exact: the referee (ideally the exact source).
        verdict: the candidate's verdict (which entries are off).

    Returns:
        ``gradverify.diagnose.Finding`` records; the last one locates the errors when nothing explains them.
    """
    c, e = np.asarray(candidate.grad, float), np.asarray(exact.grad, float)
    off = {n for n, sl in case.slices().items() if np.any(verdict.status[sl] == "off")}
    findings = _shape_findings(case, getattr(candidate, "problems", ()))
    shaped = {n for f in findings for n in f.where}
    value_off = off - shaped
    nonfinite = [n for n in value_off if not np.all(np.isfinite(c[case.slices()[n]]))]
    for n in nonfinite:
        findings.append(Finding("non-finite", f"d{n} holds NaN or infinite values: look for an overflow (exp of a large "
                                "score without the max shift), a division by zero or log(0).", 0.9, (n,)))
    with np.errstate(all="ignore"):
        mutant = _mutant_findings(case, c, e, value_off)
        explained = {n for f in mutant for n in f.where}
        findings += mutant + _array_findings(case, c, e, value_off - explained)
    if verdict.cost_ok is False and not off and verdict.cost_abs_err is None:  # no usable forward output at all
        findings.append(Finding("forward", "The backward pass is right but the forward output could not be used: it is not "
                                "numbers of the expected shape (a loss layer returns (loss, dx) with loss a number).", 0.8,
                                tuple(case.layer.outputs)))
    elif verdict.cost_ok is False and not off:
        findings.append(Finding("forward", "The backward pass is right but the forward output is off: J = Σ dout·out computed "
                                f"from its output differs from the exact J by {verdict.cost_abs_err:.3g}.", 0.8, tuple(case.layer.outputs)))
    elif verdict.cost_ok is False:
        findings.append(Finding("forward", "The forward output is off too (J = Σ dout·out differs from the exact J).", 0.5, tuple(case.layer.outputs)))
    if not any(f.confidence > 0.5 and f.kind != "forward" for f in findings):
        findings += _where(case, verdict, off)
    findings.sort(key=lambda f: -f.confidence)
    return findings
