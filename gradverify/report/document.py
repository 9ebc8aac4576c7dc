"""The report document: one versioned, JSON-ready dict per verify run, suite run or grading batch.

Every renderer (Markdown, HTML, plots) reads only this document, so a saved ``report.json`` can
be rendered again later (``gradverify report report.json --format html``) and another tool can
read the same facts. The layout is described by ``schema.SCHEMA`` and checked by
``schema.validate``.

Numbers are plain JSON numbers; the non-finite ones (an infinite ratio when a gradient is NaN)
are the strings ``"Infinity"``, ``"-Infinity"`` and ``"NaN"``, so the file stays strict JSON
that a browser or ``jq`` can read.

The document never holds objects: it is built from a ``Comparison`` (``comparison_document``),
a ``SuiteResult`` (``suite_document``) or a list of grading entries (``batch_document``).
Nothing here computes a gradient or an error; those come from the records.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence

from gradverify._io import environment as _environment
from gradverify._io import jsonable

__all__ = ["SCHEMA_VERSION", "comparison_document", "suite_document", "batch_document", "comparison_section",
           "attach_step_curve", "environment", "jsonable"]

SCHEMA_VERSION = "1.0"

_PACKAGES = ("gradverify", "numpy", "sympy", "symengine", "mpmath", "hypothesis", "matplotlib")


def environment() -> dict:
    """Python, platform and the versions of the packages that shape the numbers."""
    return _environment(_PACKAGES)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _layers(sizes: Sequence[int]) -> list[dict]:
    """How W/b map onto the lecture's Θ: Θk = [bk | Wk], the bias as column 0."""
    return [{"layer": k, "theta": f"Theta{k}", "weights": f"W{k}", "bias": f"b{k}", "shape": [sizes[k], 1 + sizes[k - 1]]}
            for k in range(1, len(sizes))]


def comparison_section(comp, *, probes: dict | None = None, values_file: str | None = None) -> dict:
    """The ``comparison`` part of a document: ``Comparison.to_dict()`` plus the Θ layout.

    ``comp`` is a ``gradverify.compare.Comparison`` (or already such a section, returned as is).
    Large problems list a selection of parameters (``report.values``); ``probes`` are the random
    probes of a sampled run; ``values_file`` names the ``.npz`` holding every value, if written.
    """
    if isinstance(comp, Mapping):
        return dict(comp)
    from gradverify.report.values import proportional_section

    section = jsonable(proportional_section(comp, values_file=values_file))
    if probes:
        section["probes"] = jsonable({name: p.to_dict() for name, p in probes.items()})
    section["layers"] = _layers(section["problem"]["sizes"])
    return section


def _reproduce(problem, command: str) -> str:
    """The command that rebuilds ``problem``; the given command when the problem came from a file."""
    if problem is None or not problem.origin.rebuildable:
        return command
    from gradverify.reproduce import reproduce_command

    return reproduce_command(problem)


def _header(kind: str, *, command: str, title: str, verdict: str, summary: str, reproduce: str) -> dict:
    return {"schema_version": SCHEMA_VERSION, "kind": kind, "title": title, "generator": "gradverify",
            "created": _now(), "command": command, "reproduce": reproduce, "verdict": verdict, "summary": summary,
            "environment": environment()}


def comparison_document(comp, *, command: str, probes: dict | None = None, values_file: str | None = None) -> dict:
    """The document of one ``gradverify verify`` run.

    Args:
        comp: the ``Comparison``.
        command: the command line that produced it (shown as "how to reproduce").

    Returns:
        A dict with ``kind == "verify"`` and the whole comparison under ``"comparison"``:
        every source's per-parameter values, abs/rel errors, budgets, ratios and status, the
        verdicts per parameter, array and source, the diagnosis and the notes.
    """
    section = comparison_section(comp, probes=probes, values_file=values_file)
    net = section["problem"]
    title = f"verify {net['network']} (λ = {net['lambda']:g}, m = {net['m']})"
    failed_probes = [p for p in (probes or {}).values() if not p.passed]
    verdict = "fail" if failed_probes else section["verdict"]
    summary = section["summary"] if not failed_probes or section["verdict"] == "fail" else (
        f"FAIL: {failed_probes[0].source} fails the random probes of the whole gradient ({failed_probes[0].describe()}).")
    doc = _header("verify", command=command, title=title, verdict=verdict, summary=summary,
                  reproduce=_reproduce(comp.problem, command))
    doc["comparison"] = section
    return doc


def suite_document(result, *, command: str) -> dict:
    """The document of one suite run (``gradverify suite``): every case tried and the shrunk failure.

    ``result`` is a ``gradverify.suite.SuiteResult``. The failing case, if any, is a full
    comparison section under ``"comparison"`` (else ``None``); ``reproduce`` rebuilds it.
    """
    records = [{"spec": r.spec, "n_params": r.n_params, "m": r.m, "origin": r.origin, "verdict": r.verdict,
                "worst_ratio": r.worst_ratio, "seconds": r.seconds, "error": r.error} for r in result.records]
    failed = sum(r.verdict != "pass" for r in result.records)
    failure = result.failure
    problem = failure.problem if failure is not None else result.minimal
    if result.ok:
        summary = f"PASS: all {len(records)} random architectures agree with the exact gradient (seed {result.seed})."
    elif failure is not None:
        summary = (f"FAIL: {failed} of {len(records)} cases failed; the smallest failing case is "
                   f"{failure.problem.network.compact} with m = {failure.problem.m}: " + failure.summary().removeprefix("FAIL: "))
    else:
        summary = f"FAIL: {failed} of {len(records)} cases failed; the smallest one raised {result.failure_error}"
    doc = _header("suite", command=command, title=f"suite, seed {result.seed}: {len(records)} cases",
                  verdict="pass" if result.ok else "fail", summary=summary,
                  reproduce=_reproduce(problem, command) if problem is not None else command)
    doc["suite"] = jsonable({"seed": result.seed, "examples": result.examples, "ok": result.ok, "n_cases": len(records),
                             "n_failed": failed, "seconds": result.seconds, "failure_error": result.failure_error,
                             "records": records})
    doc["comparison"] = comparison_section(failure) if failure is not None else None
    return doc


_ENTRY_KEYS = ("name", "verdict", "score", "max_score", "diagnosis")


def batch_document(entries: list[dict], *, command: str, title: str) -> dict:
    """The document of a grading batch: one entry per submission.

    Args:
        entries: one dict per submission with at least

            - ``name`` (str): the submission (student) name;
            - ``verdict`` (str): ``"pass"``, ``"fail"``, ``"error"``, ``"timeout"`` …;
            - ``score``, ``max_score`` (numbers);
            - ``diagnosis`` (list of str): the messages shown to the student;

            and optionally ``comparison``: the worst failing case, as a ``Comparison``, a
            document from ``comparison_document`` or its ``"comparison"`` section. Any other
            JSON-ready keys (``feedback``, ``seconds`` …) are kept as they are.
        command: the command that graded the batch.
        title: a heading, e.g. the assignment name.

    Returns:
        A dict with ``kind == "batch"`` and the entries under ``"batch"["entries"]``.

    Raises:
        ValueError: an entry misses one of the required keys.
    """
    out = []
    for i, entry in enumerate(entries):
        missing = [k for k in _ENTRY_KEYS if k not in entry]
        if missing:
            raise ValueError(f"batch entry {i} ({entry.get('name', '?')!r}) misses {', '.join(missing)}; "
                             f"each entry needs {', '.join(_ENTRY_KEYS)}")
        row = {k: v for k, v in entry.items() if k != "comparison"}
        row["diagnosis"] = [str(d) for d in entry["diagnosis"]]
        comp = entry.get("comparison")
        if comp is not None:
            if isinstance(comp, Mapping) and comp.get("kind") == "verify":
                comp = comp["comparison"]
            row["comparison"] = comparison_section(comp)
        out.append(jsonable(row))
    passed = sum(e["verdict"] == "pass" for e in out)
    summary = f"{passed} of {len(out)} submissions pass."
    doc = _header("batch", command=command, title=title, verdict="pass" if passed == len(out) else "fail",
                  summary=summary, reproduce=command)
    doc["batch"] = {"entries": out}
    return doc


def attach_step_curve(doc_or_section: dict, curve, *, source: str = "finite_diff.step_curve") -> dict:
    """Put a finite-difference error-vs-step curve into a document's comparison (in place).

    ``curve`` is a ``finite_diff.StepCurve`` (or any object with ``name``, ``steps``,
    ``errors`` and optionally ``predicted``, ``reference``, ``reference_source``, ``best_step``).
    """
    section = doc_or_section["comparison"] if "comparison" in doc_or_section else doc_or_section
    data = {"name": curve.name, "steps": curve.steps, "errors": curve.errors, "source": source}
    for key in ("predicted", "estimates", "reference", "reference_source", "best_step"):
        if getattr(curve, key, None) is not None:
            data[key] = getattr(curve, key)
    section["step_curve"] = jsonable(data)
    return doc_or_section
