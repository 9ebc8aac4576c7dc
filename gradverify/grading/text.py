"""Student text on its way into files: made valid, then escaped for where it goes.

Anything a submission produced — an exception message, a traceback, printed output, a file or
folder name — is hostile text. Before it reaches a file it is

1. ``clean``: valid UTF-8 (a lone surrogate becomes U+FFFD), no control characters but newline
   and tab, no bidirectional overrides (which make text read differently than it is), cut to a
   length;
2. escaped for the file it enters: ``md_text`` (inline Markdown: no HTML, no links, no heading,
   list or table structure), ``md_block`` (a fenced block whose fence the text cannot close),
   ``csv_cell`` (one line, no spreadsheet formula), ``one_line`` (a terminal table cell).

In feedback the student's own text always sits in a fenced block under a label of ours, so a
message can never pass itself off as the grader's words.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["clean", "md_text", "md_block", "csv_cell", "one_line", "non_ascii_note"]

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_MD_INLINE = re.compile(r"([\\`*_\[\]|~])")
_MD_LINE_START = re.compile(r"^(\s*)([#+\-=>]|\d+[.)])", re.MULTILINE)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def clean(text: object, limit: int = 20_000) -> str:
    """``text`` as valid, printable UTF-8 of at most ``limit`` characters (None gives "")."""
    if text is None:
        return ""
    out = text if isinstance(text, str) else str(text)
    # Lone surrogates (from undecodable bytes, or put there on purpose) cannot be encoded.
    out = out.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    out = _CONTROL.sub("\ufffd", out)
    if len(out) > limit:
        out = out[:limit] + f"\n[... {len(out) - limit} characters cut]"
    return out


def md_text(text: object) -> str:
    """Clean text that reads the same in Markdown: no HTML, links, emphasis, code or line structure."""
    out = clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = _MD_INLINE.sub(r"\\\1", out)
    return _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2), out)


def md_block(text: object, *, info: str = "text") -> str:
    """Clean text in a fenced code block it cannot close (the fence is longer than any run of backticks in it)."""
    body = clean(text)
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{body.rstrip()}\n{fence}"


def csv_cell(text: object, limit: int = 2_000) -> str:
    """Clean text for a CSV cell on one line that no spreadsheet evaluates (a leading ``= + - @`` is quoted away).

    Line breaks become " / ": a quoted multi-line cell is valid CSV, but a file name holding
    "\\n# PASS 100/100" would then forge a line for anyone reading the gradebook line by line
    (``grep``, ``wc -l``, a diff): one submission, one line.
    """
    out = " / ".join(line.strip() for line in clean(text, limit).split("\n") if line.strip())
    return "'" + out if out.startswith(_FORMULA_START) else out


def one_line(text: object, limit: int = 120) -> str:
    """Clean text on one line, for a terminal table."""
    out = " ".join(clean(text, limit * 4).split())
    return out if len(out) <= limit else out[: limit - 1] + "…"


def non_ascii_note(name: str) -> str:
    """What in a name is not ASCII, spelled out ("" when all of it is): ``nnCostFunсtion`` with a Cyrillic
    "с" reads like the expected name and is not it (a name copied from a PDF or a chat)."""
    odd = [c for c in dict.fromkeys(name) if ord(c) > 127][:3]
    if not odd:
        return ""
    return " (not plain ASCII: " + ", ".join(f"'{c}' is U+{ord(c):04X} {unicodedata.name(c, '?')}" for c in odd) + ")"
