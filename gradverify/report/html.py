"""``report.html``: one self-contained page — the Markdown report's content plus the plots.

No network requests: the style sheet is inline, images are base64 PNG data URIs, there is no
script and no web font. If matplotlib is missing the page says so where the plots would be.
"""

from __future__ import annotations

import base64
from html import escape

from gradverify.report import plots
from gradverify.report.markdown import cases_sentence
from gradverify.report._format import array_rows, environment_text, fmt, problem_rows, value, worst_rows

__all__ = ["render_html"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0 auto;max-width:1180px;
padding:1.2em 1.6em 3em;color:#1d2329;line-height:1.45}
h1{font-size:1.5em;margin:.2em 0 .5em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
h3{font-size:1.05em;margin-top:1.4em}
.verdict{padding:.8em 1em;border-radius:6px;font-size:1.05em;margin:.6em 0 1em}
.verdict.pass{background:#e6f4ea;border:1px solid #2e7d32}.verdict.fail{background:#fdecea;border:1px solid #c62828}
.verdict b{font-size:1.15em;margin-right:.4em}
table{border-collapse:collapse;font-size:.88em;margin:.4em 0}th,td{border:1px solid #d0d7de;padding:.25em .55em;text-align:left;
vertical-align:top}th{background:#f3f5f7}td.num{text-align:right;font-variant-numeric:tabular-nums;font-family:ui-monospace,
SFMono-Regular,Menlo,Consolas,monospace}
tr.off td{background:#fff3f2}td.status-off{color:#b71c1c;font-weight:bold}td.status-ok{color:#2e7d32}
ul.diag li{margin:.3em 0}.conf{color:#57606a;font-size:.9em}
.figs{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start;margin-bottom:14px}figure{margin:0;border:1px solid #d0d7de;border-radius:6px;
padding:6px;background:#fff}figure img{display:block;max-width:100%;height:auto}figcaption{font-size:.82em;color:#57606a;
max-width:560px;margin-top:4px}
pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.7em;overflow-x:auto;white-space:pre-wrap}
.missing{background:#fff8e1;border:1px solid #f9a825;padding:.6em;border-radius:6px}.small{color:#57606a;font-size:.85em}
"""


def _table(header: list[str], rows: list[list], *, numeric: set[int] = frozenset(), row_class=None) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = row_class(i) if row_class else ""
        cells = []
        for j, c in enumerate(row):
            klass = "num" if j in numeric else ""
            if header[j] == "status":
                klass = f"status-{c}"
            cells.append(f"<td class=\"{klass}\">{escape(str(c))}</td>" if klass else f"<td>{escape(str(c))}</td>")
        body.append(f"<tr class=\"{cls}\">" + "".join(cells) + "</tr>" if cls else "<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(fig: plots.Figure) -> str:
    data = base64.b64encode(fig.png).decode("ascii")
    return (f"<figure id=\"{escape(fig.key)}\"><img src=\"data:image/png;base64,{data}\" alt=\"{escape(fig.caption)}\" />"
            f"<figcaption>{escape(fig.caption)}</figcaption></figure>")


def _figures(figs: list) -> str:
    figs = [f for f in figs if f is not None]
    return "<div class=\"figs\">" + "".join(_figure(f) for f in figs) + "</div>" if figs else ""


def _missing_plots() -> str:
    reason = plots.missing()
    return f"<p class=\"missing\">Plots are not shown: {escape(reason)}.</p>" if reason else ""


def _verdict(obj: dict) -> str:
    v = obj["verdict"]
    summary = obj["summary"].removeprefix(v.upper() + ":").strip()
    return f"<div class=\"verdict {escape(v)}\"><b>{escape(v.upper())}</b> {escape(summary)}</div>"


def _comparison(section: dict, *, level: int = 2, limit: int = 12) -> str:
    h = f"h{level}"
    out = []
    failing_rows, failing = worst_rows(section, limit)
    # the picture first: people look before they read
    out.append(f"<{h}>Where the error is</{h}>")
    out.append("<p>Error/budget ratio of every entry in the lecture's layout Θk = [bk | Wk], the bias as column 0 "
               "(left of the black line). Green is within budget, yellow is at the budget, red is beyond it; "
               "entries off are marked ×; grey hatching marks a ReLU kink.</p>")
    reason = plots.missing()
    if reason:
        out.append(_missing_plots())
    else:
        figs = plots.heatmaps(section)
        # one row per judged source, its layers side by side; the sources that are off come first
        for source in sorted(section["verdicts"], key=lambda name: section["verdicts"][name]["n_off"] == 0):
            out.append(_figures([f for f in figs if f.group == source]))
    out.append(f"<{h}>{'Worst entries' if failing else 'Entries closest to their budget'}</{h}>")
    out.append(f"<p class=\"small\">ratio = |source − referee| / budget; ≤ 1 passes. Relative error: {escape(section['relative_error'])}.</p>")
    if failing_rows:
        out.append(_table(["parameter", "in Θ", "source", "value", "referee value", "abs error", "rel error", "budget", "ratio", "status"],
                          [[r["parameter"], r["theta"], r["source"], value(r["value"]), value(r["referee_value"]), fmt(r["abs_err"]),
                            fmt(r["rel_err"]), fmt(r["budget"]), fmt(r["ratio"]), r["status"]] for r in failing_rows],
                          numeric={3, 4, 5, 6, 7, 8}, row_class=lambda i: "off" if failing_rows[i]["status"] == "off" else ""))
        n_off = sum(v["n_off"] for v in section["verdicts"].values())
        if failing and n_off > len(failing_rows):
            out.append(f"<p class=\"small\">… and {n_off - len(failing_rows)} more entries off (report.json has every parameter).</p>")
    costs = [(n, v) for n, v in section["verdicts"].items() if v.get("cost_ok") is not None]
    if costs:
        out.append("<p>Cost: " + escape("; ".join(f"{n} {'ok' if v['cost_ok'] else 'OFF'} (abs error {fmt(v['cost_abs_err'])})"
                                                 for n, v in costs)) + ".</p>")
    out.append(f"<{h}>Diagnosis</{h}>")
    diag = [(n, d) for n, ds in section["diagnoses"].items() for d in ds]
    if diag:
        out.append("<ul class=\"diag\">" + "".join(
            f"<li><b>{escape(n)}</b>: {escape(d['message'])} <span class=\"conf\">(confidence {d['confidence']:.2f})</span></li>"
            for n, d in diag) + "</ul>")
    elif section["verdict"] == "pass":
        out.append("<p>Nothing to diagnose: every judged source is within its budget.</p>")
    else:
        out.append("<p>No bug signature recognized" + (" (a diagnosis needs the exact source)." if section["referee"] != "exact" else ".") + "</p>")
    if section.get("step_curve"):
        out.append(f"<{h}>Finite differences at {escape(section['step_curve']['name'])}</{h}>")
        out.append(_missing_plots() or _figures([plots.step_curve(section)]))
    out.append(f"<{h}>Per array</{h}>")
    out.append(_table(["source", "array", "entries", "off", "kinks", "worst entry", "worst ratio"],
                      [[r["source"], r["array"], r["n"], r["off"], r["kinks"], r["worst"], fmt(r["worst_ratio"])] for r in array_rows(section)],
                      numeric={2, 3, 4, 6}, row_class=lambda i, rows=array_rows(section): "off" if rows[i]["off"] else ""))
    out.append(f"<{h}>Problem and sources</{h}>")
    out.append(_table(["", ""], [[k, v] for k, v in problem_rows(section["problem"])]))
    out.append("<p>" + ("The referee is the exact gradient." if section["referee"] == "exact" else
                        "No exact source: the sources are compared pairwise, so a disagreement cannot say who is wrong.") + "</p>")
    out.append(_table(["source", "kind", "cost J", "detail"],
                      [[n, s["kind"], value(s.get("cost")) if s.get("cost") is not None else "—", s["detail"]]
                       for n, s in section["sources"].items()], numeric={2}))
    if section["notes"]:
        out.append(f"<{h}>Notes</{h}><ul>" + "".join(f"<li>{escape(n)}</li>" for n in section["notes"]) + "</ul>")
    return "\n".join(out)


def _suite(doc: dict) -> str:
    s = doc["suite"]
    out = ["<h2>Cases</h2>", f"<p>{escape(cases_sentence(s))}</p>"]
    out.append(_missing_plots() or _figures([plots.ratio_histogram(s["records"])]))
    recs = sorted(s["records"], key=lambda r: r["verdict"] == "pass")[:15]
    out.append(_table(["network", "parameters", "m", "origin", "verdict", "worst ratio"],
                      [[r["spec"], r["n_params"], r["m"], r["origin"], r["verdict"] + (f" ({r['error']})" if r["error"] else ""),
                        fmt(r["worst_ratio"])] for r in recs], numeric={1, 2, 5},
                      row_class=lambda i: "off" if recs[i]["verdict"] != "pass" else ""))
    if len(s["records"]) > len(recs):
        out.append(f"<p class=\"small\">… {len(s['records']) - len(recs)} more cases in report.json.</p>")
    if s["failure_error"]:
        out.append(f"<p>The smallest failing case raised: {escape(s['failure_error'])}</p>")
    if doc.get("comparison"):
        out.append("<h2>The smallest failing case</h2>" + _verdict(doc["comparison"]) + _comparison(doc["comparison"], level=3))
    return "\n".join(out)


def _batch(doc: dict) -> str:
    entries = doc["batch"]["entries"]
    out = ["<h2>Submissions</h2>", _missing_plots() or _figures([plots.score_histogram(entries)])]
    out.append(_table(["submission", "verdict", "score", "diagnosis"],
                      [[e["name"], e["verdict"], f"{fmt(e['score'])} / {fmt(e['max_score'])}", " ".join(e["diagnosis"][:2]) or "—"]
                       for e in entries], row_class=lambda i: "off" if entries[i]["verdict"] != "pass" else ""))
    for e in entries:
        comp = e.get("comparison")
        if comp:
            out.append(f"<h3>{escape(e['name'])}: {escape(comp['problem']['network'])}</h3>" + _verdict(comp))
            rows, failing = worst_rows(comp, 5)
            if failing:
                out.append(_table(["parameter", "in Θ", "source", "value", "referee value", "ratio"],
                                  [[r["parameter"], r["theta"], r["source"], value(r["value"]), value(r["referee_value"]), fmt(r["ratio"])]
                                   for r in rows], numeric={3, 4, 5}))
    return "\n".join(out)


def render_html(doc: dict) -> str:
    """The self-contained HTML report of a (valid) document."""
    body = {"verify": lambda: _comparison(doc["comparison"]), "suite": lambda: _suite(doc), "batch": lambda: _batch(doc)}[doc["kind"]]()
    repro = f"<pre>{escape(doc['command'])}</pre>"
    if doc["reproduce"] != doc["command"]:
        repro += ("<p>This rebuilds the " + ("failing " if doc["kind"] == "suite" else "") + "problem on its own "
                  "(add your candidate with <code>--candidate FILE.py:FUNCTION</code>):</p>" + f"<pre>{escape(doc['reproduce'])}</pre>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<meta name="generator" content="gradverify, report schema {escape(doc['schema_version'])}" />
<title>gradverify: {escape(doc['title'])}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>gradverify report: {escape(doc['title'])}</h1>
{_verdict(doc)}
{body}
<h2>Reproduce</h2>
{repro}
<h2>Environment</h2>
<p class="small">Created {escape(doc['created'])} by {escape(doc['generator'])} (report schema {escape(doc['schema_version'])}).
{escape(environment_text(doc['environment']))}.</p>
</body>
</html>
"""
