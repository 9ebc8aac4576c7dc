"""Grade many submissions: discovery, parallel workers, atomic outputs, resume after a crash.

Layout under the output folder::

    gradebook.csv                        one row per submission (rewritten after each one)
    <name>/feedback.md, feedback.json    for the student / for programs
    <name>/results.json                  Gradescope's format

A submission is done when its ``feedback.json`` exists with the same fingerprint (a hash of the
submission's files, the profile, its settings and the grading options); a rerun skips it. Every
file is written to a temporary name and renamed, so a kill at any moment leaves either the old
file or the new one — never half — and nothing is graded twice or lost.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import math
import multiprocessing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gradverify._io import write_atomic
from gradverify.errors import InputError
from gradverify.grading.feedback import feedback_markdown, gradebook_csv, gradescope_results
from gradverify.grading.grader import Check, Grade, Verdict, grade_submission
from gradverify.grading.sandbox import Limits
from gradverify.profiles import Profile, get_profile

__all__ = ["Submission", "discover", "grade_batch", "grader_error"]


@dataclass(frozen=True)
class Submission:
    name: str
    path: Path


def _python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".py" and p.is_file() and not p.name.startswith("."))


def discover(paths: list[str | Path], *, entry: str | None = None) -> list[Submission]:
    """Submissions from the command line: a .py file, a folder holding one, or a folder of them.

    With ``entry`` (a file name such as ``nnCostFunction.py``), a folder that holds that file is
    one submission of several modules, the entry importing its siblings.
    """
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_file():
            if p.suffix != ".py":
                raise InputError(f"{p} is not a Python file", expected="a .py file or a folder", received=p.name)
            found.append(p)
        elif p.is_dir():
            files, dirs = _python_files(p), sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith((".", "__")))
            if entry and (p / entry).is_file():
                found.append(p)  # one submission of several files
            elif entry and not files:
                found += [d for d in dirs if (d / entry).is_file()]  # a folder of such submissions
            elif len(files) == 1 and not dirs:
                found.append(p)  # a folder holding one submission
            else:
                found += files + [d for d in dirs if _python_files(d)]
        else:
            raise InputError(f"No such submission: {p}", fix="give .py files or folders that exist")
    if not found:
        raise InputError("No submissions found", expected="Python files, or folders holding them", received=", ".join(map(str, paths)))
    subs: list[Submission] = []
    seen: dict[str, int] = {}
    for path in found:
        base = path.stem if path.is_file() else path.name
        n = seen.get(base, 0)
        seen[base] = n + 1
        subs.append(Submission(base if n == 0 else f"{base}-{n + 1}", path))
    return subs


def _fingerprint(sub: Submission, profile: Profile, settings: dict, options: dict) -> str:
    h = hashlib.sha256()
    files = [sub.path] if sub.path.is_file() else sorted(p for p in sub.path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(sub.path.parent if sub.path.is_file() else sub.path)).encode())
        h.update(f.read_bytes())
    h.update(json.dumps([profile.name, profile.rubric, settings, options], sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _load_done(out: Path, sub: Submission, fingerprint: str) -> Grade | None:
    """The grade a previous run wrote for ``sub``, if it is still valid (a grader-error is never kept)."""
    f = out / sub.name / "feedback.json"
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
        grade = Grade.from_dict(data) if data.get("fingerprint") == fingerprint else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return None if grade is None or grade.verdict == Verdict.GRADER_ERROR else grade


def grader_error(sub: Submission, profile: Profile, fingerprint: str, incident: str) -> Grade:
    """The row of a submission gradverify itself failed on: 0 points, the incident, never the student's fault."""
    checks = [Check(name, False, 0.0, float(points), "Not graded: the grader failed on this submission (not your fault; "
                    "your instructor has the details and will grade it again).") for name, points in profile.rubric.items()]
    return Grade(sub.name, str(sub.path), profile.name, {}, Verdict.GRADER_ERROR, 0.0, float(sum(profile.rubric.values())),
                 checks, fingerprint=fingerprint, incident=incident)


def _incident(exc: BaseException) -> str:
    """What failed inside gradverify, short: the exception and the innermost frames."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)[-4:]
    where = "; ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in frames)
    return f"{type(exc).__name__}: {exc}"[:2000] + (f" (at {where})" if where else "")


def _grade_one(args: tuple) -> dict:
    """In a worker process of the pool: grade one submission and return it as a dict."""
    path, profile_name, settings, options, fingerprint = args
    entry = options.get("entry") if Path(path).is_dir() else None
    profile = get_profile(profile_name)
    options = dict(options)
    options.pop("entry", None)
    timeout = options.pop("call_timeout")
    limits = Limits(call_timeout=timeout, cpu_seconds=max(10, math.ceil(timeout)))
    try:
        return grade_submission(path, profile, settings, fingerprint=fingerprint, limits=limits, entry=entry, **options).to_dict()
    except Exception as exc:  # a failure inside gradverify: this submission's grader-error, never the batch's end
        return grader_error(Submission(Path(path).name, Path(path)), profile, fingerprint, _incident(exc)).to_dict()


def _write_outputs(out: Path, name: str, grade: Grade) -> None:
    folder = out / name
    if grade.report_doc is not None:  # the picture of the failing case, beside the feedback
        from gradverify.report import write_report

        write_report(grade.report_doc, folder / "report")
        grade.report_doc = None  # feedback.json stays small; the document is report/report.json
        if grade.failing_case is not None:
            grade.failing_case["report"] = "report/report.html"
    write_atomic(folder / "feedback.md", feedback_markdown(grade))
    write_atomic(folder / "results.json", json.dumps(gradescope_results(grade), indent=1))
    write_atomic(folder / "feedback.json", json.dumps(grade.to_dict(), indent=1, default=str))  # last: marks it done


def grade_batch(submissions: list[Submission], profile: Profile | str, settings: dict, out: str | Path, *, jobs: int = 2,
                examples: int = 20, seed: int = 0, saturating: bool = False, call_timeout: float = 10.0, report: bool = False,
                entry: str | None = None,
                progress: Callable[[int, int, Grade, bool], None] | None = None) -> list[Grade]:
    """Grade ``submissions`` into ``out``, ``jobs`` at a time, skipping those already done.

    ``progress(done, total, grade, resumed)`` is called after each submission. Returns the grades
    in the order of ``submissions``.
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("**/.*.tmp"):  # half-written temporaries of a run that was killed
        stale.unlink(missing_ok=True)
    options = {"examples": examples, "seed": seed, "saturating": saturating, "call_timeout": float(call_timeout), "report": report,
               "entry": entry}
    prints = {s.name: _fingerprint(s, prof, settings, options) for s in submissions}
    grades: dict[str, Grade] = {}
    todo = []
    for s in submissions:
        done = _load_done(out, s, prints[s.name])
        if done is not None:
            grades[s.name] = done
            if progress:
                progress(len(grades), len(submissions), done, True)
        else:
            todo.append(s)
    if todo:
        name = prof.source or prof.name  # a TOML profile travels to the workers by its path
        ctx = multiprocessing.get_context("spawn")  # the grader is threaded (sandbox I/O); fork is unsafe
        with cf.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=ctx) as pool:
            futures = {pool.submit(_grade_one, (str(s.path), name, settings, options, prints[s.name])): s for s in todo}
            for fut in cf.as_completed(futures):
                s = futures[fut]
                try:
                    grade = Grade.from_dict(fut.result())
                except Exception as exc:  # the pool's process died (killed, out of memory): ours, not the student's
                    grade = grader_error(s, prof, prints[s.name], _incident(exc))
                grade.submission = s.name
                try:
                    _write_outputs(out, s.name, grade)
                except Exception as exc:
                    grade = grader_error(s, prof, prints[s.name], "writing the outputs failed: " + _incident(exc))
                    _write_outputs(out, s.name, grade)
                grades[s.name] = grade
                write_atomic(out / "gradebook.csv", gradebook_csv(list(grades.values())))
                if progress:
                    progress(len(grades), len(submissions), grade, False)
    write_atomic(out / "gradebook.csv", gradebook_csv(list(grades.values())))
    return [grades[s.name] for s in submissions]
