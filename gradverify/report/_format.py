"""Formatting shared by the Markdown and HTML renderers: numbers, the worst rows, array tables.

Only selection and ordering of what the document already holds; no error is computed here.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"^([Wb])(\d+)\[(\d+)(?:,(\d+))?\]$")


def num(x) -> float:
    """A document number as a float (``"Infinity"`` → inf, ``"NaN"`` and None → nan)."""
    if isinstance(x, str):
        return {"Infinity": float("inf"), "-Infinity": float("-inf")}.get(x, float("nan"))
    return float("nan") if x is None else float(x)


def fmt(x, digits: int = 3) -> str:
    """A short human form of a document number; ``—`` for None."""
    if x is None:
        return "—"
    if isinstance(x, str) and x not in ("Infinity", "-Infinity", "NaN"):
        return x
    v = num(x)
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "∞" if v > 0 else "−∞"
    if v == 0:
        return "0"
    return f"{v:.{digits}g}"


def value(x) -> str:
    """A gradient value with enough digits to see where two sources part."""
    v = num(x)
    return fmt(x) if v != v or v in (float("inf"), float("-inf")) or v == 0 else f"{v:.12e}"


def theta_name(name: str) -> str:
    """``b1[2]`` → ``Θ1[2,0] (bias)``; ``W1[2,0]`` → ``Θ1[2,1]``: where the entry sits in the lecture's Θ."""
    m = _NAME.match(name)
    if not m:
        return ""
    kind, k, i, j = m[1], m[2], m[3], m[4]
    return f"Θ{k}[{i},0] (bias)" if kind == "b" else f"Θ{k}[{i},{int(j) + 1}]"


def array_label(name: str) -> str:
    """``b1`` → ``b1 (bias column of Θ1)``, ``W2`` → ``W2 (Θ2 without its bias column)``."""
    if re.fullmatch(r"b\d+", name):
        return f"{name} (bias column of Θ{name[1:]})"
    if re.fullmatch(r"W\d+", name):
        return f"{name} (Θ{name[1:]} without its bias column)"
    return name


def worst_rows(section: dict, limit: int = 12) -> tuple[list[dict], bool]:
    """The (parameter, source) pairs to show first: every entry off, worst ratio first.

    Returns the rows and whether they are failures (False: nothing is off, the rows are the
    entries closest to their budget). Each row: parameter, theta, source, value, referee,
    referee_value, abs_err, rel_err, budget, ratio, status.
    """
    verdicts = section.get("verdicts", {})
    pairs = []
    for row in section.get("parameters", []):
        for source, status in row["status"].items():
            ref = verdicts.get(source, {}).get("referee", "")
            pairs.append({"parameter": row["name"], "theta": theta_name(row["name"]), "source": source,
                          "value": row["values"].get(source), "referee": ref, "referee_value": row["values"].get(ref),
                          "abs_err": row["abs_err"][source], "rel_err": row["rel_err"][source],
                          "budget": row["budgets"][source], "ratio": row["ratio"][source], "status": status})
    off = [p for p in pairs if p["status"] == "off"]
    chosen = off if off else [p for p in pairs if p["status"] not in ("kink", "unchecked")]
    chosen.sort(key=lambda p: -_sortable(num(p["ratio"])))
    return chosen[:limit], bool(off)


def _sortable(v: float) -> float:
    return float("inf") if v != v else v  # an unknown error ranks with the worst


def array_rows(section: dict) -> list[dict]:
    """Per judged source and parameter array: entries, off, kinks, worst entry and ratio."""
    rows = []
    for source, verdict in section.get("verdicts", {}).items():
        for name, a in verdict.get("arrays", {}).items():
            rows.append({"source": source, "array": array_label(name), "n": a["n"], "off": a["off"], "kinks": a["kinks"],
                         "worst": a["worst"], "worst_ratio": a["worst_ratio"]})
    return rows


def problem_rows(problem: dict) -> list[tuple[str, str]]:
    """(label, text) pairs describing the problem."""
    acts = ", ".join(problem["activations"]) or "none"
    reg = "none" if not num(problem["lambda"]) else (
        f"λ = {fmt(problem['lambda'])}, {problem['regularization']}, biases "
        + ("included" if problem["regularize_bias"] else "excluded"))
    return [("network", f"{problem['network']} (layer sizes {'-'.join(map(str, problem['sizes']))}, "
                        f"{problem['n_params']} parameters)"),
            ("hidden units", acts), ("output", problem["output"]), ("regularization", reg),
            ("batch", f"m = {problem['m']}"), ("parameters and data", problem["origin"] or "given")]


def environment_text(env: dict) -> str:
    pk = env.get("packages", {})
    return (f"Python {env.get('python', '?')} on {env.get('platform', '?')}; "
            + ", ".join(f"{k} {v}" for k, v in pk.items()))
