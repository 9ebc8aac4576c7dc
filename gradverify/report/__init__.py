"""Discrepancy reports: pure renderers from result records to JSON, Markdown, HTML and plots.

    from gradverify.report import comparison_document, write_report
    doc = comparison_document(comp, command="gradverify verify 3-5-3")
    write_report(doc, "reports/my-check")      # report.json, report.md, report.html

- ``document``: the versioned JSON document of a verify run, a suite run or a grading batch;
- ``schema``: its JSON Schema (``SCHEMA``) and ``validate(doc) -> list[str]``;
- ``markdown`` / ``html``: the two human renderings; ``plots``: the heatmaps and curves.

This package computes no gradient and no error: it formats what the records hold. It does not
import the gradient sources, and it writes files only through ``write_report``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gradverify._io import write_atomic as _write_atomic

from gradverify.errors import InputError
from gradverify.report.document import (SCHEMA_VERSION, attach_step_curve, batch_document, comparison_document,
                                        suite_document)
from gradverify.report.html import render_html
from gradverify.report.markdown import render_markdown
from gradverify.report.schema import SCHEMA, validate

__all__ = ["SCHEMA_VERSION", "SCHEMA", "comparison_document", "suite_document", "batch_document", "attach_step_curve",
           "validate", "render_markdown", "render_html", "render", "dumps", "write_report"]

FORMATS = ("json", "md", "html")


def dumps(doc: dict) -> str:
    """The document as strict JSON text (no NaN/Infinity literals), UTF-8, one key per line."""
    return json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def render(doc: dict, fmt: str) -> str:
    """``doc`` rendered as ``"json"``, ``"md"`` or ``"html"``; the document is validated first.

    Raises:
        InputError: the document is not a valid report, or the format is unknown.
    """
    if fmt not in FORMATS:
        raise InputError(f"Unknown report format {fmt!r}", expected="one of " + ", ".join(FORMATS), received=fmt)
    problems = validate(doc)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise InputError("Not a valid gradverify report document", expected=f"a document of schema {SCHEMA_VERSION}",
                         received="; ".join(problems[:5]) + more,
                         fix="regenerate it with gradverify verify --report, or check it with gradverify.report.validate")
    return {"json": dumps, "md": render_markdown, "html": render_html}[fmt](doc)


def write_report(doc: dict, out_dir: str | os.PathLike) -> list[Path]:
    """Validate ``doc`` and write ``report.json``, ``report.md`` and ``report.html`` into ``out_dir``.

    Every file is rendered before any is written, and each is replaced atomically.

    Returns:
        The three paths, in that order.

    Raises:
        InputError: the document is not valid (nothing is written).
    """
    texts = {f"report.{fmt}": render(doc, fmt) for fmt in FORMATS}
    out = Path(out_dir)
    return [_write_atomic(out / name, text) for name, text in texts.items()]
