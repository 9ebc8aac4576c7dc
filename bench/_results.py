"""bench/RESULTS.md is shared: each benchmark owns one section between its own markers.

``<!-- NAME:begin -->`` … ``<!-- NAME:end -->`` (older sections spell them ``NAME: begin``); a
run replaces its section in place and leaves every other script's section as it is, or appends
the section when the file has none yet. ``bench/run.py`` keeps the sections when it rewrites the
file's head.
"""

from __future__ import annotations

import re
from pathlib import Path


def marked(name: str) -> re.Pattern[str]:
    """The pattern of section ``name``, markers included, in either spelling."""
    return re.compile(rf"<!-- ?{re.escape(name)}: ?begin ?-->.*?<!-- ?{re.escape(name)}: ?end ?-->", re.DOTALL)


def write_section(path: Path, name: str, block: str) -> None:
    """Put ``block`` (the section with its markers) in place of section ``name`` of ``path``, or append it."""
    block = block.strip("\n")
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = marked(name)
    text = pattern.sub(lambda _: block, text, count=1) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
