"""What a student and an instructor read: Markdown feedback, Gradescope results.json, the gradebook.

The grader's own words are escaped for Markdown (``text.md_text``); whatever the submission
itself said — an exception, a traceback — is shown only in a fenced block under a label of ours
("What your code reported"), so it cannot pass for a heading, a table row, a link, HTML or a
verdict. Gradescope gets plain text (``output_format: text``), the gradebook cells that no
spreadsheet evaluates (``text.csv_cell``). The batch's seed goes to the gradebook only (the
instructor's file), never to a student's.
"""

from __future__ import annotations

import csv
import io

from gradverify.grading.grader import Grade
from gradverify.grading.text import clean, csv_cell, md_block, md_text

__all__ = ["feedback_markdown", "gradescope_results", "gradebook_csv", "GRADEBOOK_COLUMNS"]

_STUDENT_LABEL = "What your code reported (its own words, not the grader's):"


def _code(text: str) -> str:
    """Text for inside a code span (our own commands and names: only a backtick could break out)."""
    return clean(text, 500).replace("`", "'").replace("\n", " ")


def _num(x) -> str:
    return "—" if x is None else f"{x:.10g}"


def feedback_markdown(g: Grade) -> str:
    """Feedback for the student: verdict, score, each check, the diagnosis, the failing case."""
    lines = [f"# {md_text(g.submission)}: {g.verdict.upper()} — {g.score:g} / {g.max_score:g}", ""]
    if g.verdict == "grader-error":
        return "\n".join(lines + ["The grader could not grade this submission. This is not your fault and costs you nothing "
                                  "in the end: your instructor has the details and will grade it again.", ""])
    settings = ", ".join(f"{k}={v}" for k, v in g.settings.items() if k != "target")
    lines += [f"Graded with the `{_code(g.profile)}` profile" + (f" ({md_text(settings)})" if settings else "")
              + ". Every value is compared with the exact gradient, computed symbolically.",
              f"Your function was called {g.calls} time{'s' * (g.calls != 1)}; the slowest call took {g.slowest_call * 1e3:.1f} ms.", ""]
    if g.detected:
        lines += [f"How your code was called: {md_text(g.detected)}", ""]
    if g.notes:
        lines += ["How your file was read:", ""] + [f"- {md_text(n)}" for n in g.notes[:12]] + [""]
    if g.diagnosis:
        lines += ["## What is wrong", ""]
        lines += [f"- {md_text(d.message)} *(confidence {d.confidence:.2f})*" for d in g.diagnosis[:3]]
        lines.append("")
    lines += ["## Checks", "", "| check | points | result |", "|---|---:|---|"]
    for c in g.checks:
        lines.append(f"| {md_text(c.title)} | {c.points:g} / {c.max_points:g} | {'passed' if c.passed else 'FAILED'} |")
    lines.append("")
    for c in g.checks:
        if not c.passed:
            lines += [f"**{md_text(c.title)}.** {md_text(c.message)}", ""]
            if c.details:
                lines += [_STUDENT_LABEL, "", md_block(c.details[-4000:]), ""]
    lines += _failing_case_lines(g)
    return "\n".join(lines)


def _failing_case_lines(g: Grade) -> list[str]:
    f = g.failing_case
    if not f:
        return []
    lines = [f"## The case to look at: {md_text(f.get('title', ''))}", ""]
    if "error" in f:
        return lines + [md_text(f["error"]), ""]
    lines += [f"Network {md_text(f['network'])}, m = {f['m']}, λ = {f['lambda']:g}. Your cost {_num(f['cost_yours'])}, "
              f"expected {_num(f['cost_expected'])}. {f['n_off']} of {f['n_params']} partials are wrong; the worst:", "",
              "| parameter | expected (exact) | yours | abs error |", "|---|---:|---:|---:|"]
    lines += [f"| {md_text(r['parameter'])} | {r['expected']:.10g} | {r['yours']:.10g} | {r['abs_err']:.3g} |" for r in f["rows"]]
    if f.get("hidden"):
        lines += ["", "This case is hidden (its values are secret, so that answers learned by heart earn nothing); "
                  "the debug network and the generated cases are the ones to reproduce.", ""]
        return lines
    settings = "".join(f" --set {k}={v}" for k, v in g.settings.items() if k not in ("target", "form"))
    lines += ["", "Reproduce it: `python reproduce.py` in this folder calls your file exactly as it was graded (the call "
              "form and conventions above, your helper modules beside it) on this case and prints every value against "
              f"the exact one. Or: `{_code(f['reproduce'])} --candidate YOURFILE.py:{_code(g.settings.get('target', 'FUNCTION'))} "
              f"--profile {_code(g.profile)}{_code(settings)}`", ""]
    if f.get("report"):
        lines += ["A picture of where your gradient is wrong (heatmaps per layer, bias column first): `report/report.html`.", ""]
    return lines


def _plain(c) -> str:
    text = clean(c.message)
    if c.details:
        text += f"\n\n{_STUDENT_LABEL}\n" + "\n".join("    " + line for line in clean(c.details[-4000:]).splitlines())
    return text


def gradescope_results(g: Grade) -> dict:
    """Gradescope's results.json: one test per check, as plain text; the submission's stdout hidden from students."""
    tests = [{"name": c.title, "score": c.points, "max_score": c.max_points, "status": "passed" if c.passed else "failed",
              "output": _plain(c), "output_format": "text", "visibility": "visible"} for c in g.checks]
    if g.diagnosis:
        tests.append({"name": "Diagnosis", "score": 0, "max_score": 0, "status": "failed", "output_format": "text",
                      "output": "\n".join(clean(d.message) for d in g.diagnosis[:3]), "visibility": "visible"})
    if g.stdout:
        tests.append({"name": "Your program's output", "score": 0, "max_score": 0, "output_format": "text",
                      "output": clean(g.stdout[-5000:]), "visibility": "hidden"})
    summary = f"{g.verdict.upper()}: {g.score:g} / {g.max_score:g}" + (f". {clean(g.diagnosis[0].message)}" if g.diagnosis else "")
    return {"score": g.score, "max_score": g.max_score, "execution_time": round(g.seconds, 3), "output": summary,
            "output_format": "text", "test_output_format": "text", "visibility": "visible", "stdout_visibility": "hidden",
            "tests": tests}


GRADEBOOK_COLUMNS = ["submission", "verdict", "score", "max_score", "diagnosis", "failed_checks", "conventions", "seconds",
                     "slowest_call_ms", "path", "incident", "seed"]


def gradebook_csv(grades: list[Grade], *, seed: int | None = None) -> str:
    """The class gradebook: one row per submission, sorted by name; ``seed`` rebuilds every case of the batch."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(GRADEBOOK_COLUMNS)
    for g in sorted(grades, key=lambda g: g.submission):
        diagnosis = g.diagnosis[0].message if g.diagnosis else ""
        w.writerow([csv_cell(g.submission), str(g.verdict), f"{g.score:g}", f"{g.max_score:g}", csv_cell(diagnosis),
                    ";".join(c.name for c in g.checks if not c.passed and c.max_points),
                    csv_cell("; ".join(f"{k}={v}" for k, v in g.settings.items())), f"{g.seconds:.2f}", f"{g.slowest_call * 1e3:.1f}",
                    csv_cell(g.path), csv_cell(g.incident), "" if seed is None else str(seed)])
    return buf.getvalue()
