"""Jupyter notebooks as modules: code cells kept, IPython magics and shell lines dropped and listed.

A notebook is graded as the module its code cells make, with every cell remembered: a line of the
joined module maps back to ``(cell, line in cell)``, so every error names the cell a student sees.
Lines that are IPython, not Python (``%matplotlib inline``, ``!pip install``, ``files = !ls``,
``np.sum?``, a ``%%bash`` cell) are replaced by ``pass`` at their indentation — line numbers stay
put and a block never becomes empty — and listed in ``Notebook.dropped``.

nbformat is not used: the format is a JSON object whose ``cells`` each have a ``cell_type`` and a
``source`` (a string or a list of strings), which is all this module reads; nbformat would add a
dependency (and jsonschema at run time) for validation we do not need. Standard library only: the
sandbox worker runs this file on the student's notebook inside the cage, never the grader.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

__all__ = ["Cell", "Dropped", "Notebook", "NotebookError", "read_notebook", "MAX_NOTEBOOK_BYTES"]

MAX_NOTEBOOK_BYTES = 16 << 20  # the sandbox's submission size cap; outputs (images) make notebooks big

# Cell magics whose body is Python: the magic line goes, the body stays.
_PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "python", "python3"})
_LINE_MAGIC = re.compile(r"\s*(%|!)")                       # %magic, !shell
_ASSIGNED = re.compile(r"\s*[A-Za-z_][\w, ]*=\s*(%|!)")      # files = !ls, t = %timeit -o f()
_HELP = re.compile(r"\s*[?]{1,2}\S|.*\S[?]{1,2}\s*$")        # ?np.sum, np.sum??


class NotebookError(ValueError):
    """The file is not a notebook this module can read (not JSON, no cells, too large...)."""


@dataclass(frozen=True)
class Cell:
    """One code cell: its number in the notebook (1-based, counting every cell) and its Python source."""

    number: int
    source: str
    first_line: int  # where the cell starts in ``Notebook.source`` (1-based)

    @property
    def n_lines(self) -> int:
        return self.source.count("\n") + 1


@dataclass(frozen=True)
class Dropped:
    """A line that is IPython rather than Python, replaced by ``pass``."""

    cell: int
    line: int  # within the cell, 1-based
    text: str
    why: str  # "magic", "shell", "cell magic", "help"

    def __str__(self) -> str:
        return f"cell {self.cell}, line {self.line}: {self.text.strip()[:80]} ({self.why})"


@dataclass(frozen=True)
class Notebook:
    """A notebook's code cells (after dropping IPython lines) and what was dropped."""

    cells: tuple[Cell, ...]
    dropped: tuple[Dropped, ...]

    @property
    def source(self) -> str:
        """The module: every code cell in order, each under a ``# cell N`` line."""
        parts = []
        for cell in self.cells:
            parts.append(f"# cell {cell.number}\n{cell.source}\n")
        return "".join(parts)

    def cell_of(self, line: int) -> tuple[int, int] | None:
        """``(cell number, line within the cell)`` of a line of ``source``; None for a header line."""
        for cell in self.cells:
            if cell.first_line <= line < cell.first_line + cell.n_lines:
                return cell.number, line - cell.first_line + 1
        return None


def _source_text(raw) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list) and all(isinstance(part, str) for part in raw):
        return "".join(raw)
    raise NotebookError(f"a cell's source must be a string or a list of strings, not {type(raw).__name__}")


def _drop_line(line: str) -> str | None:
    """Why ``line`` is IPython rather than Python, or None."""
    if _LINE_MAGIC.match(line):
        return "shell" if line.lstrip().startswith("!") else "magic"
    if _ASSIGNED.match(line) and not re.match(r"\s*[\w, ]*==", line):
        return "shell" if "!" in line.split("=", 1)[1][:3] else "magic"
    if _HELP.match(line) and not line.lstrip().startswith("#"):
        return "help"
    return None


def _python_of(number: int, text: str) -> tuple[str, list[Dropped]]:
    """A code cell's Python: IPython lines replaced by ``pass`` (a non-Python cell magic: the whole cell)."""
    lines = text.split("\n")
    dropped: list[Dropped] = []
    first = lines[0].strip() if lines else ""
    if first.startswith("%%"):
        magic = first[2:].split()[0] if first[2:].split() else ""
        dropped.append(Dropped(number, 1, lines[0], "cell magic"))
        if magic not in _PYTHON_CELL_MAGICS:  # %%bash, %%writefile, %%html...: nothing here is Python
            dropped += [Dropped(number, i, line, f"%%{magic} cell") for i, line in enumerate(lines[1:], 2) if line.strip()]
            return "\n".join("pass" if i == 0 else "" for i in range(len(lines))), dropped
        lines[0] = "pass"
    out = []
    for i, line in enumerate(lines, 1):
        why = None if (i == 1 and first.startswith("%%")) else _drop_line(line)
        if why:
            dropped.append(Dropped(number, i, line, why))
            line = line[: len(line) - len(line.lstrip())] + "pass"
        out.append(line)
    return "\n".join(out), dropped


def read_notebook(text: str | bytes) -> Notebook:
    """The code cells of an ``.ipynb`` file, ready to run as a module.

    Args:
        text: the file's contents.

    Returns:
        The ``Notebook``: its code cells (numbered as in the notebook, markdown cells counted) and the
        IPython lines dropped from them.

    Raises:
        NotebookError: not JSON, not a notebook (no ``cells`` list), or larger than ``MAX_NOTEBOOK_BYTES``.
    """
    if len(text) > MAX_NOTEBOOK_BYTES:
        raise NotebookError(f"the notebook is larger than {MAX_NOTEBOOK_BYTES >> 20} MiB")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise NotebookError(f"the notebook is not valid JSON ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotebookError("the file is not a Jupyter notebook (nbformat 4): it has no list of cells")
    cells: list[Cell] = []
    dropped: list[Dropped] = []
    line = 1
    for number, cell in enumerate(data["cells"], 1):
        if not isinstance(cell, dict):
            raise NotebookError(f"cell {number} is not an object")
        if cell.get("cell_type") != "code":
            continue
        source, gone = _python_of(number, _source_text(cell.get("source", "")))
        dropped += gone
        cells.append(Cell(number, source, line + 1))  # + 1: the "# cell N" header
        line += 1 + source.count("\n") + 1
    return Notebook(tuple(cells), tuple(dropped))
