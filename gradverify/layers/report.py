"""Reports of a layer check: a JSON document, and its Markdown and HTML renderings (no numerics here).

``layer_document(comp, command=…)`` turns a ``LayerComparison`` into a versioned, JSON-ready dict
(``kind == "layer"``); ``render_document(doc, fmt)`` renders it as ``"json"``, ``"md"`` or a
self-contained ``"html"`` page with one heatmap per judged source and input array (the
error/budget ratio of every entry, on a log scale; entries off marked). Everything is read from
the document, so a saved report.json can be rendered again.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import json
import math
from html import escape

import numpy as np

from gradverify._io import environment, jsonable

__all__ = ["LAYER_SCHEMA_VERSION", "layer_document", "render_document"]

LAYER_SCHEMA_VERSION = "1.0"
_PACKAGES = ("gradverify", "numpy", "sympy", "symengine", "mpmath", "python-flint", "matplotlib")


def _num(x) -> float:
    if isinstance(x, str):
        return {"Infinity": math.inf, "-Infinity": -math.inf}.get(x, math.nan)
    return math.nan if x is None else float(x)


def layer_document(comp, *, command: str, reproduce: str = "") -> dict:
    """The report document of one ``gradverify layer`` run.

    Args:
        comp: the ``LayerComparison``.
        command: the command line that produced it.
        reproduce: a command that rebuilds the case (default: ``command``).
    """
    section = jsonable(comp.to_dict(values=True))
    case = section["case"]
    return {"schema_version": LAYER_SCHEMA_VERSION, "kind": "layer", "generator": "gradverify",
            "title": f"layer {case['layer']} ({', '.join(f'{k}={v}' for k, v in case['dims'].items())})",
            "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(), "command": command,
            "reproduce": reproduce or command, "verdict": section["verdict"], "summary": section["summary"],
            "environment": environment(_PACKAGES), "comparison": section}


def render_document(doc: dict, fmt: str) -> str:
    """``doc`` as ``"json"`` (strict JSON), ``"md"`` or ``"html"``.

    Raises:
        ValueError: an unknown format or a document of another kind.
    """
    if doc.get("kind") != "layer":
        raise ValueError(f"not a layer report (kind {doc.get('kind')!r})")
    if fmt == "json":
        return json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
    if fmt == "md":
        return _markdown(doc)
    if fmt == "html":
        return _html(doc)
    raise ValueError(f"unknown format {fmt!r}; use json, md or html")


# ---- shared selections --------------------------------------------------------------------------

def _fmt(x, digits: int = 3) -> str:
    v = _num(x)
    if math.isnan(v):
        return "NaN" if x is not None else "—"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return "0" if v == 0 else f"{v:.{digits}g}"


def _worst_rows(section: dict, limit: int = 12) -> list[dict]:
    def key(row):
        return max((_num(r) if row["status"][s] != "kink" else 0.0) for s, r in row["ratio"].items()) if row["ratio"] else 0.0
    rows = sorted(section["parameters"], key=key, reverse=True)
    return rows[:limit]


def _tables(section: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(heading, header, rows) of the case, the sources, the arrays per judged source and the worst partials."""
    case = section["case"]
    out = [("Case", ["", ""], [["layer", case["layer"]], ["functions", " / ".join(case["api"])],
                               ["dimensions", ", ".join(f"{k}={v}" for k, v in case["dims"].items())],
                               ["settings", ", ".join(f"{k}={v}" for k, v in case["settings"].items() if v not in ("", None)) or "—"],
                               ["inputs", ", ".join(f"{n} {tuple(s)}" for n, s in case["inputs"].items())],
                               ["origin", case["origin"]], ["partials", str(case["n_partials"])]])]
    out.append(("Sources", ["source", "kind", "J", "detail"],
                [[n, s["kind"], _fmt(s["cost"], 12), s["detail"]] for n, s in section["sources"].items()]))
    for name, v in section["verdicts"].items():
        rows = [[a, str(s["n"]), str(s["off"]), str(s["kinks"]), s["worst"], _fmt(s["worst_ratio"])] for a, s in v["arrays"].items()]
        out.append((f"{name} against {v['referee']}: {'ok' if v['ok'] else 'FAIL'}", ["array", "entries", "off", "kinks", "worst", "worst ratio"], rows))
    judged = list(section["verdicts"])
    rows = [[r["name"], *[_fmt(r["values"][s], 12) for s in section["sources"]], *[_fmt(r["ratio"][s]) + (" off" if r["status"][s] == "off" else "")
             for s in judged]] for r in _worst_rows(section)]
    out.append(("Worst partials", ["partial", *section["sources"], *[f"{s} ratio" for s in judged]], rows))
    return out


# ---- Markdown ------------------------------------------------------------------------------------

def _md_table(header, rows) -> list[str]:
    esc = lambda c: str(c).replace("|", "\\|")  # noqa: E731
    return ["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(map(esc, r)) + " |" for r in rows]


def _markdown(doc: dict) -> str:
    section = doc["comparison"]
    lines = [f"# {doc['title']}", "", f"**{doc['verdict'].upper()}** — {doc['summary'].split(': ', 1)[-1]}", ""]
    for heading, header, rows in _tables(section):
        lines += [f"## {heading}", ""] + _md_table(header, rows) + [""]
    diag = [(n, d) for n, ds in section["diagnoses"].items() for d in ds]
    if diag:
        lines += ["## Diagnosis", ""] + [f"- **{n}** ({d['kind']}, confidence {d['confidence']:.2f}): {d['message']}" for n, d in diag] + [""]
    if section["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in section["notes"]] + [""]
    lines += ["## Reproduce", "", "```bash", doc["reproduce"], "```", "",
              f"Relative error: {section['relative_error']}; ratio = |source − referee| / budget, ≤ 1 passes.", "",
              "## Environment", "", f"Python {doc['environment']['python']} on {doc['environment']['platform']}; "
              + ", ".join(f"{k} {v}" for k, v in doc["environment"]["packages"].items()), ""]
    return "\n".join(lines)


# ---- HTML ----------------------------------------------------------------------------------------

_CSS = ("body{font-family:system-ui,sans-serif;max-width:1180px;margin:0 auto;padding:1.2em 1.6em 3em;color:#1d2329;line-height:1.45}"
        "table{border-collapse:collapse;font-size:.88em;margin:.4em 0}th,td{border:1px solid #d0d7de;padding:.25em .55em;text-align:left}"
        "th{background:#f3f5f7}.verdict{padding:.8em 1em;border-radius:6px;margin:.6em 0 1em}.pass{background:#e6f4ea;border:1px solid #2e7d32}"
        ".fail{background:#fdecea;border:1px solid #c62828}figure{display:inline-block;margin:0 12px 12px 0;border:1px solid #d0d7de;"
        "border-radius:6px;padding:6px}figcaption{font-size:.82em;color:#57606a;max-width:520px}"
        "pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.7em;white-space:pre-wrap}")


def _heatmaps(section: dict) -> list[tuple[str, str]]:
    """(caption, base64 PNG) per judged source and input array: log₁₀ of the error/budget ratio."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return []
    names = [r["name"] for r in section["parameters"]]
    out = []
    for source in section["verdicts"]:
        for array, shape in section["case"]["inputs"].items():
            idx = [i for i, n in enumerate(names) if n.split("[", 1)[0] == array]
            if not idx:
                continue
            ratio = np.array([_num(section["parameters"][i]["ratio"][source]) for i in idx], dtype=float)
            off = np.array([section["parameters"][i]["status"][source] == "off" for i in idx])
            rows = shape[0] if len(shape) > 1 else 1
            grid = np.log10(np.clip(np.nan_to_num(ratio, nan=1e6, posinf=1e6), 1e-3, 1e6)).reshape(rows, -1)
            fig = Figure(figsize=(min(9.0, 2.5 + 0.35 * grid.shape[1]), min(6.0, 1.6 + 0.3 * rows)), dpi=90, layout="constrained")
            FigureCanvasAgg(fig)
            ax = fig.add_subplot()
            im = ax.imshow(grid, cmap="RdYlGn_r", vmin=-3, vmax=max(1.0, float(grid.max())), aspect="auto", interpolation="nearest")
            ys, xs = np.nonzero(off.reshape(rows, -1))
            ax.scatter(xs, ys, marker="x", s=10, color="black", linewidths=0.7)
            ax.set_title(f"{source}: d{array} {tuple(shape)}, {int(off.sum())} of {off.size} off", fontsize=9)
            fig.colorbar(im, ax=ax, shrink=0.9).set_label("log10(|error| / budget)")
            buf = io.BytesIO()
            fig.savefig(buf, format="png", metadata={"Software": None})
            caption = (f"{source}, d{array}: error/budget ratio of every entry (rows: first axis; the other axes flattened), "
                       f"{int(off.sum())} entries off (crossed).")
            out.append((caption, base64.b64encode(buf.getvalue()).decode("ascii")))
    return out


def _html(doc: dict) -> str:
    section = doc["comparison"]
    v = doc["verdict"]
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(doc['title'])}</title>"
             f"<style>{_CSS}</style></head><body><h1>{escape(doc['title'])}</h1>",
             f"<div class=\"verdict {escape(v)}\"><b>{escape(v.upper())}</b> {escape(doc['summary'].split(': ', 1)[-1])}</div>"]
    figs = _heatmaps(section)
    if figs:
        parts.append("<h2>Where</h2>" + "".join(f"<figure><img src=\"data:image/png;base64,{png}\" alt=\"{escape(c)}\"/>"
                                                 f"<figcaption>{escape(c)}</figcaption></figure>" for c, png in figs))
    else:
        parts.append("<p>Plots are not shown: matplotlib cannot be imported here.</p>")
    for heading, header, rows in _tables(section):
        head = "".join(f"<th>{escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        parts.append(f"<h2>{escape(heading)}</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    diag = [(n, d) for n, ds in section["diagnoses"].items() for d in ds]
    if diag:
        parts.append("<h2>Diagnosis</h2><ul>" + "".join(f"<li><b>{escape(n)}</b> ({escape(d['kind'])}, confidence {d['confidence']:.2f}): "
                                                         f"{escape(d['message'])}</li>" for n, d in diag) + "</ul>")
    if section["notes"]:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in section["notes"]) + "</ul>")
    parts.append(f"<h2>Reproduce</h2><pre>{escape(doc['reproduce'])}</pre></body></html>")
    return "\n".join(parts)
