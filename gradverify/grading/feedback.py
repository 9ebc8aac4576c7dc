"""What a student and an instructor read: Markdown feedback, Gradescope results.json, the gradebook."""

from __future__ import annotations

import csv
import io

from gradverify.grading.grader import Grade

__all__ = ["feedback_markdown", "gradescope_results", "gradebook_csv"]


def _num(x) -> str:
    return "—" if x is None else f"{x:.10g}"


def feedback_markdown(g: Grade) -> str:
    """Feedback for the student: verdict, score, each check, the diagnosis, the failing case."""
    lines = [f"# {g.submission}: {g.verdict.upper()} — {g.score:g} / {g.max_score:g}", "",
             f"Graded with the `{g.profile}` profile" + (f" ({', '.join(f'{k}={v}' for k, v in g.settings.items() if k != 'target')})" if g.settings else "")
             + ". Every value is compared with the exact gradient, computed symbolically.",
             f"Your function was called {g.calls} times; the slowest call took {g.slowest_call * 1e3:.1f} ms.", ""]
    if g.diagnosis:
        lines += ["## What is wrong", ""]
        for d in g.diagnosis[:3]:
            lines.append(f"- {d.message} *(confidence {d.confidence:.2f})*")
        lines.append("")
    lines += ["## Checks", "", "| check | points | result |", "|---|---:|---|"]
    for c in g.checks:
        lines.append(f"| {c.title} | {c.points:g} / {c.max_points:g} | {'passed' if c.passed else 'FAILED'} |")
    lines.append("")
    for c in g.checks:
        if not c.passed:
            lines += [f"**{c.title}.** {c.message}", ""]
    f = g.failing_case
    if f:
        lines += [f"## The case to look at: {f.get('title', '')}", ""]
        if "error" in f:
            lines += [f"{f['error']}", ""]
        else:
            lines += [f"Network {f['network']}, m = {f['m']}, λ = {f['lambda']:g}. Your cost {_num(f['cost_yours'])}, "
                      f"expected {_num(f['cost_expected'])}. {f['n_off']} of {f['n_params']} partials are wrong; the worst:", "",
                      "| parameter | expected (exact) | yours | abs error |", "|---|---:|---:|---:|"]
            lines += [f"| {r['parameter']} | {r['expected']:.10g} | {r['yours']:.10g} | {r['abs_err']:.3g} |" for r in f["rows"]]
            lines += ["", f"Reproduce it: `{f['reproduce']} --candidate YOURFILE.py:FUNCTION --profile {g.profile}`", ""]
            if f.get("report"):
                lines += ["A picture of where your gradient is wrong (heatmaps per layer, bias column first): `report/report.html`.", ""]
    return "\n".join(lines)


def gradescope_results(g: Grade) -> dict:
    """Gradescope's results.json: one test per check; the submission's stdout hidden from students."""
    tests = [{"name": c.title, "score": c.points, "max_score": c.max_points, "status": "passed" if c.passed else "failed",
              "output": c.message, "visibility": "visible"} for c in g.checks]
    if g.diagnosis:
        tests.append({"name": "Diagnosis", "score": 0, "max_score": 0, "status": "failed",
                      "output": "\n".join(d.message for d in g.diagnosis[:3]), "visibility": "visible"})
    if g.stdout:
        tests.append({"name": "Your program's output", "score": 0, "max_score": 0, "output": g.stdout[-5000:], "visibility": "hidden"})
    return {"score": g.score, "max_score": g.max_score, "execution_time": round(g.seconds, 3),
            "output": f"{g.verdict.upper()}: {g.score:g} / {g.max_score:g}" + (f". {g.diagnosis[0].message}" if g.diagnosis else ""),
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


GRADEBOOK_COLUMNS = ["submission", "verdict", "score", "max_score", "diagnosis", "failed_checks", "seconds", "slowest_call_ms", "path"]


def gradebook_csv(grades: list[Grade]) -> str:
    """The class gradebook: one row per submission, sorted by name."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(GRADEBOOK_COLUMNS)
    for g in sorted(grades, key=lambda g: g.submission):
        w.writerow([g.submission, g.verdict, f"{g.score:g}", f"{g.max_score:g}", g.diagnosis[0].message if g.diagnosis else "",
                    ";".join(c.name for c in g.checks if not c.passed), f"{g.seconds:.2f}", f"{g.slowest_call * 1e3:.1f}", g.path])
    return buf.getvalue()
