"""``gradverify report``: render a saved report.json again, as Markdown or HTML.

Also the writers the other commands call: ``write_comparison_report`` (``verify --report``) and
``write_suite_report`` (``suite --report``). They add what only the CLI may compute — the
finite-difference error-vs-step curve of the worst parameter — and hand the document to the
pure renderers in ``gradverify.report``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

from gradverify.errors import InputError
from gradverify.report import SCHEMA, attach_step_curve, batch_document, comparison_document, render, suite_document, write_report

HELP = "render a saved report.json again as Markdown or HTML"


def register(sub) -> None:
    from gradverify.cli._args import out_file

    p = sub.add_parser("report", help=HELP, description=HELP + " (it is validated first). "
                       "Reports are written by gradverify verify --report [DIR]. Give --format to print to stdout, or --out FILE "
                       "(the format follows its ending). Exit code 0 = rendered, 2 = bad input.")
    p.add_argument("report", nargs="?", metavar="REPORT.json", help="a report.json (or the directory holding one)")
    p.add_argument("--format", choices=("html", "md", "json"), default=None, help="output format (required on stdout; "
                   "with --out, taken from the file's ending when not given)")
    p.add_argument("--out", metavar="FILE", type=out_file("--out", dash=False), help="write here (atomically) instead of printing to stdout")
    p.add_argument("--schema", action="store_true", help="print the report JSON Schema (draft 2020-12) and exit")
    p.set_defaults(handler=run)


_ENDINGS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".json": "json"}


def _format(args) -> str:
    """The output format: --format, or the --out file's ending; never an HTML page dumped on a terminal by default."""
    if args.format:
        return args.format
    if args.out:
        fmt = _ENDINGS.get(Path(args.out).suffix.lower())
        if fmt:
            return fmt
        raise InputError(f"Cannot tell the format of --out {args.out} from its ending", expected="a file ending in .html, .md or .json, "
                         "or --format", received=Path(args.out).suffix or "no ending", fix="add --format html|md|json")
    raise InputError("Say which format to print", expected="--format html|md|json (to stdout), or --out FILE",
                     received="neither --format nor --out",
                     fix="e.g. gradverify report REPORT.json --format md, or --out report.html (an HTML page is hundreds of kB)")


def load_document(path: str | Path) -> dict:
    """Read a report.json (or DIR/report.json) as a dict; a clear ``InputError`` when it cannot be."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"No such report: {path}", fix="give the report.json written by gradverify verify --report") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read {path}", received=str(exc)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not JSON", received=f"{exc.msg} at line {exc.lineno}, column {exc.colno}",
                         fix="give the report.json written by gradverify verify --report") from None


def run(args) -> int:
    if args.schema:
        print(json.dumps(SCHEMA, indent=1, ensure_ascii=False))
        return 0
    if not args.report:
        raise InputError("No report given", expected="gradverify report REPORT.json [--format html|md] [--out FILE]",
                         fix="pass the report.json written by gradverify verify --report")
    fmt = _format(args)
    text = render(load_document(args.report), fmt)
    if args.out:
        print(f"report: {_write(args.out, text)}")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return 0


def _write(path, text) -> Path:
    """Write a user's output file; a failure is the user's path problem (exit 2), not ours."""
    from gradverify.cli._common import write_atomic

    try:
        return write_atomic(path, text)
    except OSError as exc:
        raise InputError(f"Cannot write {path}", received=exc.strerror or str(exc), fix="choose a path you can write to") from None


# ---- writers used by the other commands ---------------------------------------------------------

def default_dir(prefix: str, spec: str) -> Path:
    """``reports/<prefix>-<spec>`` with the spec made filename-safe (``4-8-2:tanh/softmax`` → ``4-8-2-tanh-softmax``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", spec).strip("-.") or "problem"
    return Path("reports") / f"{prefix}-{safe}"


def _step_curve(comp):
    """The finite-difference error-vs-step curve of the worst judged parameter, or None.

    Skipped quietly when the finite-difference module has no ``step_curve`` (yet), when the
    problem cannot take one, or when nothing was judged.
    """
    try:
        from gradverify.finite_diff import step_curve
    except (ImportError, AttributeError):
        return None
    best, worst = -1.0, -1
    for v in comp.verdicts.values():
        if v.worst >= 0 and (r := float(v.ratio[v.worst])) > best:
            best, worst = r, v.worst
    if worst < 0:
        return None
    name = comp.names[worst]
    reference = float(comp.sources["exact"].grad[worst]) if "exact" in comp.sources else None
    try:
        return step_curve(comp.problem, name, reference=reference)
    except (ArithmeticError, ValueError, FloatingPointError, np.linalg.LinAlgError):
        return None


def _write_report(doc: dict, out_dir) -> list[Path]:
    from gradverify.cli._args import writable_dir

    out = writable_dir("--report", Path(out_dir))  # checked when parsed; again now, the folder may have changed
    try:
        return write_report(doc, out)
    except OSError as exc:
        raise InputError(f"Cannot write the report into {out}", received=exc.strerror or str(exc),
                         fix="choose a folder you can write to (the results above are complete)") from None


def write_comparison_report(comp, out_dir: str, *, command: str, probes: dict | None = None,
                            values_file: str | None = None) -> list[Path]:
    """Write report.json/.md/.html for one verify run; ``out_dir == ""`` means ``reports/verify-<spec>``."""
    doc = comparison_document(comp, command=command, probes=probes, values_file=values_file)
    curve = _step_curve(comp)
    if curve is not None:
        attach_step_curve(doc, curve)
    return _write_report(doc, out_dir or default_dir("verify", comp.problem.network.compact))


def write_suite_report(result, out_dir: str, *, command: str) -> list[Path]:
    """Write report.json/.md/.html for one suite run; ``out_dir == ""`` means ``reports/suite-seed<seed>``."""
    doc = suite_document(result, command=command)
    if result.failure is not None:
        curve = _step_curve(result.failure)
        if curve is not None:
            attach_step_curve(doc, curve)
    return _write_report(doc, out_dir or Path("reports") / f"suite-seed{result.seed}")


def write_batch_report(grades, out_dir: str, *, command: str) -> list[Path]:
    """Write the class report of a grading batch: one entry per submission, scores histogram."""
    entries = [{"name": g.submission, "verdict": g.verdict, "score": g.score, "max_score": g.max_score,
                "diagnosis": [d.message for d in g.diagnosis],
                "failed_checks": [c.name for c in g.checks if not c.passed], "seconds": round(g.seconds, 3)}
               for g in grades]
    doc = batch_document(entries, command=command, title=f"grading batch ({grades[0].profile if grades else ''})")
    return _write_report(doc, out_dir or Path("reports") / "grade")
