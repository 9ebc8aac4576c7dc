"""Python 2 submissions: say so, with the line, instead of a SyntaxError traceback — and grade the math.

Old course templates (CS231n before 2017, many ports of the classic exercise) are Python 2, and a
student's file often differs from Python 3 only by its ``print`` statements. Those are output, not
mathematics: ``convert_prints`` rewrites them as ``print()`` calls so the gradient can still be
graded, and the feedback says that it was done and where. Any other Python 2 syntax (``except E, e``,
backticks, ``exec "..."``, ``0777``, ``10L``, ``ur"..."``) is a loading failure that names the first
such line. Runtime names (``xrange``, ``raw_input``…) are provided by the worker when it grades a
converted file (``PY2_BUILTINS``).

Standard library only (tokenize): the sandbox worker runs this on the student's text inside the cage.
"""

from __future__ import annotations

import ast
import copy
import io
import tokenize
from dataclasses import dataclass

__all__ = ["Python2Syntax", "Conversion", "find_python2", "convert_prints", "PY2_BUILTINS", "python2_names",
           "classic_division", "CLASSIC_DIVISION", "expand_tabs"]

# name -> the Python 3 expression a converted file gets for it (set in builtins by the worker)
PY2_BUILTINS = {"xrange": "range", "raw_input": "input", "unicode": "str", "basestring": "str", "long": "int",
                "unichr": "chr", "reduce": "functools.reduce", "intern": "sys.intern"}

_STATEMENT_START = {tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING}


@dataclass(frozen=True)
class Python2Syntax:
    """One Python 2 construct: what it is and where (1-based line)."""

    what: str
    line: int
    text: str = ""

    def __str__(self) -> str:
        return f"{self.what} at line {self.line}" + (f": {self.text.strip()[:80]}" if self.text.strip() else "")


@dataclass(frozen=True)
class Conversion:
    """A Python 2 file made Python 3: the new source and the print statements rewritten (their lines)."""

    source: str
    print_lines: tuple[int, ...]


def _tokens(source: str) -> list[tokenize.TokenInfo]:
    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            out.append(tok)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # keep what was read: an unterminated construct at the end changes nothing above it
    return out


def _significant(tokens: list[tokenize.TokenInfo]) -> list[tokenize.TokenInfo]:
    return [t for t in tokens if t.type not in (tokenize.COMMENT, tokenize.NL)]


def _print_statements(tokens: list[tokenize.TokenInfo]) -> list[tuple[int, int]]:
    """Indices (into ``tokens``) of each print statement's ``print`` and of the token that ends it."""
    found = []
    depth = 0
    prev = None
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth = max(0, depth - 1)
        starts = prev is None or prev.type in _STATEMENT_START or (
            prev.type == tokenize.OP and prev.string in (":", ";") and depth == 0)
        if tok.type == tokenize.NAME and tok.string == "print" and starts and depth == 0:
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            is_call = nxt is not None and nxt.type == tokenize.OP and nxt.string in ("(", "=", ".", ")", ",")
            if not is_call:
                end, d = i + 1, 0
                while end < len(tokens):
                    t = tokens[end]
                    if t.type == tokenize.OP and t.string in "([{":
                        d += 1
                    elif t.type == tokenize.OP and t.string in ")]}":
                        d -= 1
                    elif d == 0 and (t.type in (tokenize.NEWLINE, tokenize.ENDMARKER, tokenize.COMMENT)
                                     or (t.type == tokenize.OP and t.string == ";")):
                        break
                    end += 1
                found.append((i, end))
        if tok.type not in (tokenize.COMMENT, tokenize.NL):
            prev = tok
    return found


def find_python2(source: str) -> list[Python2Syntax]:
    """Every Python 2 construct found in ``source`` (empty for a Python 3 file), in line order."""
    tokens = _tokens(source)
    lines = source.splitlines()

    def at(row: int, what: str) -> Python2Syntax:
        return Python2Syntax(what, row, lines[row - 1] if 0 < row <= len(lines) else "")

    found = [at(tokens[i].start[0], "print statement") for i, _ in _print_statements(tokens)]
    sig = _significant(tokens)
    for k, tok in enumerate(sig):
        nxt = sig[k + 1] if k + 1 < len(sig) else None
        prev = sig[k - 1] if k else None
        start = prev is None or prev.type in _STATEMENT_START or (prev.type == tokenize.OP and prev.string in (":", ";"))
        if tok.type == tokenize.ERRORTOKEN and tok.string == "`":
            found.append(at(tok.start[0], "backtick repr"))
        elif tok.type == tokenize.NAME and tok.string == "exec" and start and nxt is not None and nxt.type == tokenize.STRING:
            found.append(at(tok.start[0], "exec statement"))
        elif tok.type == tokenize.NAME and tok.string in ("except", "raise") and start:
            depth = 0
            for t in sig[k + 1:]:
                if t.type == tokenize.OP and t.string in "([{":
                    depth += 1
                elif t.type == tokenize.OP and t.string in ")]}":
                    depth -= 1
                elif t.type in (tokenize.NEWLINE, tokenize.ENDMARKER) or (t.type == tokenize.OP and t.string == ":" and depth == 0):
                    break
                elif t.type == tokenize.OP and t.string == "," and depth == 0:
                    found.append(at(tok.start[0], f"'{tok.string} X, y' form"))
                    break
        elif tok.type == tokenize.NUMBER and tok.string == "0" and nxt is not None and nxt.type == tokenize.NUMBER \
                and nxt.start == tok.end and nxt.string.isdigit():
            found.append(at(tok.start[0], "octal literal 0" + nxt.string))
        elif tok.type == tokenize.NUMBER and nxt is not None and nxt.type == tokenize.NAME and nxt.string in ("L", "l") \
                and nxt.start == tok.end:
            found.append(at(tok.start[0], "long literal " + tok.string + nxt.string))
        elif tok.type == tokenize.NAME and tok.string.lower() in ("ur", "ru") and nxt is not None \
                and nxt.type == tokenize.STRING and nxt.start == tok.end:
            found.append(at(tok.start[0], "ur'' string prefix"))
        elif tok.type == tokenize.OP and tok.string == "<" and nxt is not None and nxt.string == ">" and nxt.start == tok.end:
            found.append(at(tok.start[0], "'<>' operator"))
    return sorted(set(found), key=lambda f: (f.line, f.what))


def _top_level_comma(tokens: list[tokenize.TokenInfo], start: int) -> int | None:
    depth = 0
    for k in range(start, len(tokens)):
        t = tokens[k]
        if t.type == tokenize.OP and t.string in "([{":
            depth += 1
        elif t.type == tokenize.OP and t.string in ")]}":
            depth -= 1
        elif t.type == tokenize.OP and t.string == "," and depth == 0:
            return k
    return None


def _offset(lines: list[str], pos: tuple[int, int]) -> int:
    row, col = pos
    return sum(len(line) for line in lines[: row - 1]) + col


def convert_prints(source: str) -> Conversion:
    """``source`` with every print statement rewritten as a ``print()`` call.

    ``print x, y`` → ``print(x, y)``; ``print`` → ``print()``; a trailing comma → ``end=" "``;
    ``print >>f, x`` → ``print(x, file=f)``. Nothing else changes; line numbers stay the same.
    """
    tokens = _tokens(source)
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, int, str]] = []  # (start offset, end offset, replacement)
    rows = []
    for i, end in _print_statements(tokens):
        kw = tokens[i]
        args = [t for t in tokens[i + 1:end] if t.type not in (tokenize.NL, tokenize.COMMENT)]
        rows.append(kw.start[0])
        a = _offset(lines, kw.start)
        if not args:
            edits.append((a, _offset(lines, kw.end), "print()"))
            continue
        b = _offset(lines, args[-1].end)
        body = source[_offset(lines, args[0].start):b]
        extra = []
        if args[0].type == tokenize.OP and args[0].string == ">>" and len(args) > 1:  # print >>f, x
            comma = _top_level_comma(args, 1)
            target_end = args[comma - 1].end if comma is not None else args[-1].end
            extra.append("file=" + source[_offset(lines, args[1].start):_offset(lines, target_end)].strip())
            body = source[_offset(lines, args[comma + 1].start):b] if comma is not None and comma + 1 < len(args) else ""
        if body.rstrip().endswith(","):
            body = body.rstrip()[:-1]
            extra.append('end=" "')
        inner = ", ".join(part for part in (body.strip(), *extra) if part)
        edits.append((a, b, f"print({inner})"))
    out = source
    for a, b, new in sorted(edits, reverse=True):
        out = out[:a] + new + out[b:]
    return Conversion(out, tuple(rows))


# ---- Python 2 semantics that still compile: names, division, indentation -----------------------

def python2_names(tree: ast.Module) -> list[str]:
    """The Python 2 builtins (``xrange``…) a module uses without defining or importing them: a file
    that compiles as Python 3 but is Python 2 all the same."""
    bound: set[str] = set()
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return sorted(n for n in used - bound if n in PY2_BUILTINS)


def classic_division(tree: ast.Module) -> int:
    """Make ``/`` in ``tree`` Python 2's: floor division when both sides are integers (``n / 2`` with
    ints is 3 in Python 2, 3.5 in Python 3), true division otherwise; in place, line numbers kept.
    Nothing changes under ``from __future__ import division``. Returns how many were rewritten."""
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__" and any(a.name == "division" for a in node.names):
            return 0
    rewriter = _ClassicDivision()
    rewriter.visit(tree)
    ast.fix_missing_locations(tree)
    return rewriter.count


class _ClassicDivision(ast.NodeTransformer):
    count = 0

    def visit_BinOp(self, node: ast.BinOp):
        self.generic_visit(node)
        if not isinstance(node.op, ast.Div):
            return node
        self.count += 1
        call = ast.Call(ast.Name("__gv_classic_div__", ast.Load()), [node.left, node.right], [])
        return ast.copy_location(call, node)

    def visit_AugAssign(self, node: ast.AugAssign):
        self.generic_visit(node)
        if not isinstance(node.op, ast.Div) or not isinstance(node.target, (ast.Name, ast.Attribute, ast.Subscript)):
            return node
        self.count += 1
        read = copy.deepcopy(node.target)
        read.ctx = ast.Load()
        call = ast.copy_location(ast.Call(ast.Name("__gv_classic_idiv__", ast.Load()), [read, node.value], []), node)
        return ast.copy_location(ast.Assign([node.target], call), node)


def _ints(a, b) -> bool:
    """Both integers: Python ints (not floats), NumPy integer scalars or integer arrays."""
    def integral(x) -> bool:
        if isinstance(x, bool) or isinstance(x, int):
            return True
        kind = getattr(getattr(x, "dtype", None), "kind", None)
        return kind in ("i", "u", "b")
    return integral(a) and integral(b)


def _classic_div(a, b):
    return a // b if _ints(a, b) else a / b


def _classic_idiv(a, b):
    if _ints(a, b):
        return a // b
    a /= b  # in place for an array, as ``a /= b`` was
    return a


# the names a module rewritten by ``classic_division`` calls (the loader puts them in builtins)
CLASSIC_DIVISION = {"__gv_classic_div__": _classic_div, "__gv_classic_idiv__": _classic_idiv}


def expand_tabs(source: str) -> str:
    """Indentation with tabs read as Python 2 read it: a tab moves to the next multiple of 8."""
    out = []
    for line in source.splitlines(keepends=True):
        body = line.lstrip(" \t")
        indent = line[: len(line) - len(body)]
        out.append(indent.expandtabs(8) + body)
    return "".join(out)
