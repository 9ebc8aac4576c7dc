"""``report.md``: the verdict, the worst entries, the diagnosis, per-array summary, how to reproduce."""

from __future__ import annotations

from gradverify.report._format import array_rows, environment_text, fmt, problem_rows, value, worst_rows

__all__ = ["render_markdown"]


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _verdict_line(doc_or_section: dict) -> str:
    v, summary = doc_or_section["verdict"].upper(), doc_or_section["summary"]
    return f"**{v}** — {summary.removeprefix(v + ':').strip()}"


def comparison_markdown(section: dict, *, level: int = 2, limit: int = 12) -> list[str]:
    """The sections of one comparison, headings at ``level``."""
    h = "#" * level
    lines = [f"{h} Problem", ""]
    lines += _table(["", ""], [[k, v] for k, v in problem_rows(section["problem"])])
    lines += ["", f"{h} Sources", ""]
    ref = section["referee"]
    lines.append("The referee is the exact gradient." if ref == "exact" else
                 "No exact source: the sources are compared pairwise, so a disagreement cannot say who is wrong.")
    lines.append("")
    lines += _table(["source", "kind", "cost J", "detail"],
                    [[n, s["kind"], value(s.get("cost")) if s.get("cost") is not None else "—", s["detail"]]
                     for n, s in section["sources"].items()])
    rows, failing = worst_rows(section, limit)
    lines += ["", f"{h} {'Worst entries' if failing else 'Entries closest to their budget'}", ""]
    lines.append("ratio = |source − referee| / budget; ≤ 1 passes. Relative error: " + section["relative_error"] + ".")
    lines.append("")
    if rows:
        lines += _table(["parameter", "in Θ", "source", "value", "referee value", "abs error", "rel error", "budget", "ratio", "status"],
                        [[r["parameter"], r["theta"], r["source"], value(r["value"]), value(r["referee_value"]), fmt(r["abs_err"]),
                          fmt(r["rel_err"]), fmt(r["budget"]), fmt(r["ratio"]), r["status"]] for r in rows])
        n_off = sum(v["n_off"] for v in section["verdicts"].values())
        if failing and n_off > len(rows):
            lines.append(f"\n… and {n_off - len(rows)} more entries off (report.json has every parameter).")
    else:
        lines.append("No source was judged.")
    costs = [(n, v) for n, v in section["verdicts"].items() if v.get("cost_ok") is not None]
    if costs:
        lines += ["", "Cost: " + "; ".join(f"{n} {'ok' if v['cost_ok'] else 'OFF'} (abs error {fmt(v['cost_abs_err'])})"
                                           for n, v in costs) + "."]
    lines += ["", f"{h} Diagnosis", ""]
    diag = [(n, d) for n, ds in section["diagnoses"].items() for d in ds]
    if diag:
        lines += [f"- **{n}** (confidence {d['confidence']:.2f}): {d['message']}" for n, d in diag]
    elif section["verdict"] == "pass":
        lines.append("Nothing to diagnose: every judged source is within its budget.")
    else:
        lines.append("No bug signature recognized" + (" (a diagnosis needs the exact source)." if ref != "exact" else "."))
    lines += ["", f"{h} Per array", ""]
    lines += _table(["source", "array", "entries", "off", "kinks", "worst entry", "worst ratio"],
                    [[r["source"], r["array"], r["n"], r["off"], r["kinks"], r["worst"], fmt(r["worst_ratio"])] for r in array_rows(section)])
    if section.get("step_curve"):
        sc = section["step_curve"]
        lines += ["", f"{h} Finite differences at {sc['name']}", ""]
        best = f" the smallest error is at h = {fmt(sc['best_step'], 2)}" if sc.get("best_step") is not None else ""
        lines.append(f"The error-vs-step curve of {sc['name']} is in report.html;{best}.")
    if section["notes"]:
        lines += ["", f"{h} Notes", ""] + [f"- {n}" for n in section["notes"]]
    return lines


def cases_sentence(s: dict) -> str:
    """How many cases were tried, and why there can be more than the examples asked for."""
    shrunk = f" ({s['examples']} drawn, the rest while shrinking the failure)" if s["n_cases"] > s["examples"] else ""
    return f"{s['n_cases']} cases tried with seed {s['seed']}{shrunk} in {fmt(s['seconds'])} s; {s['n_failed']} failed."


def _suite_markdown(doc: dict) -> list[str]:
    s = doc["suite"]
    lines = ["## Cases", "", cases_sentence(s), ""]
    recs = sorted(s["records"], key=lambda r: r["verdict"] == "pass")[:15]
    lines += _table(["network", "parameters", "m", "origin", "verdict", "worst ratio"],
                    [[r["spec"], r["n_params"], r["m"], r["origin"], r["verdict"] + (f" ({r['error']})" if r["error"] else ""),
                      fmt(r["worst_ratio"])] for r in recs])
    if len(s["records"]) > len(recs):
        lines.append(f"\n… {len(s['records']) - len(recs)} more cases in report.json.")
    if s["failure_error"]:
        lines += ["", f"The smallest failing case raised: {s['failure_error']}"]
    if doc.get("comparison"):
        lines += ["", "## The smallest failing case", ""] + comparison_markdown(doc["comparison"], level=3)
    return lines


def _batch_markdown(doc: dict) -> list[str]:
    entries = doc["batch"]["entries"]
    lines = ["## Submissions", ""]
    lines += _table(["submission", "verdict", "score", "diagnosis"],
                    [[e["name"], e["verdict"], f"{fmt(e['score'])} / {fmt(e['max_score'])}", " ".join(e["diagnosis"][:2]) or "—"]
                     for e in entries])
    for e in entries:
        comp = e.get("comparison")
        if comp:
            lines += ["", f"### {e['name']}: {comp['problem']['network']}", "", _verdict_line(comp), ""]
            rows, failing = worst_rows(comp, 5)
            if failing:
                lines += _table(["parameter", "in Θ", "source", "value", "referee value", "ratio"],
                                [[r["parameter"], r["theta"], r["source"], value(r["value"]), value(r["referee_value"]), fmt(r["ratio"])]
                                 for r in rows])
    return lines


def render_markdown(doc: dict) -> str:
    """The Markdown report of a (valid) document."""
    lines = [f"# gradverify report: {doc['title']}", "", _verdict_line(doc), ""]
    if doc["kind"] == "verify":
        lines += comparison_markdown(doc["comparison"])
    elif doc["kind"] == "suite":
        lines += _suite_markdown(doc)
    else:
        lines += _batch_markdown(doc)
    lines += ["", "## Reproduce", "", "```sh", doc["command"], "```"]
    if doc["reproduce"] != doc["command"]:
        lines += ["", "This rebuilds the " + ("failing " if doc["kind"] == "suite" else "") + "problem on its own "
                  "(add your candidate with --candidate FILE.py:FUNCTION):", "", "```sh", doc["reproduce"], "```"]
    lines += ["", "## Environment", "", f"Created {doc['created']} by {doc['generator']} (report schema {doc['schema_version']}). "
              + environment_text(doc["environment"]) + "."]
    return "\n".join(lines) + "\n"
