"""How a submission becomes a module, inside the sandbox: a file, a notebook, or a folder of modules.

- a ``.py`` file is imported; if it is Python 2 and only its ``print`` statements stand in the way,
  they are rewritten as calls (``python2.convert_prints``) and the rewrite is reported; any other
  Python 2 syntax is a ``LoadError`` that says "this file is Python 2" and names the line;
- a notebook (``.ipynb``) runs cell by cell in one module namespace, the IPython lines dropped
  (``notebook.read_notebook``); a cell that fails (data files that are not there, a training loop
  over its time allowance) is reported by number and skipped, as "Run All" with errors continuing
  would — the functions the other cells define are still graded;
- a folder: the file that *defines* the target is found by reading every top-level ``.py`` and
  ``.ipynb`` (``find_entry``, never by running them or by guessing from names), then imported with
  its siblings importable.

Standard library only: the worker imports this module (copied as ``_gv_loader.py``) inside the cage.
"""

from __future__ import annotations

import ast
import builtins
import importlib.util
import inspect
import linecache
import os
import signal
import sys
import types
from dataclasses import dataclass, field

try:  # inside the sandbox: the runtime's own copies (gradverify does not exist there)
    import _gv_notebook as notebook  # type: ignore[no-redef]
    import _gv_python2 as python2  # type: ignore[no-redef]
except ImportError:  # inside gradverify
    from gradverify.grading import notebook, python2

__all__ = ["LoadError", "Loaded", "find_entry", "load", "describe_functions", "parameters", "callables",
           "install_compat", "SOURCE_SUFFIXES"]

SOURCE_SUFFIXES = (".py", ".ipynb")
_MAX_SOURCE = 16 << 20


class LoadError(Exception):
    """The submission cannot become a module; the message is written for the student."""


class CellTimeout(BaseException):
    """A notebook cell ran past its allowance (a BaseException: ``except Exception`` in the cell misses it)."""


@dataclass
class Loaded:
    """The module, and what the student should know about how it was made."""

    module: types.ModuleType
    entry: str
    notes: list[str] = field(default_factory=list)        # e.g. "3 print statements rewritten (lines 40, 45, 46)"
    cell_errors: list[str] = field(default_factory=list)  # notebooks: "cell 4: FileNotFoundError: ..."
    python2: bool = False


# ---- which file defines the target ----------------------------------------------------------

def _read(path: str) -> str:
    with open(path, "rb") as f:
        data = f.read(_MAX_SOURCE + 1)
    if len(data) > _MAX_SOURCE:
        raise LoadError(f"{os.path.basename(path)} is larger than {_MAX_SOURCE >> 20} MiB")
    return data.decode("utf-8", errors="replace")


def _python_text(path: str) -> str:
    """The Python a file holds: a notebook's code cells, or the file (print statements made calls)."""
    text = _read(path)
    if path.endswith(".ipynb"):
        try:
            text = notebook.read_notebook(text).source
        except notebook.NotebookError:
            return ""
    try:
        compile(text, path, "exec", dont_inherit=True)
    except SyntaxError:
        text = python2.convert_prints(text).source
    except (ValueError, RecursionError, MemoryError):
        return ""
    return text


def _defined_names(text: str) -> set[str]:
    """Top-level names a module defines (def, class, assignment, import-as), read without running it."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def find_entry(folder: str, targets: list[str], entry: str | None = None) -> tuple[str, str]:
    """The top-level file of ``folder`` that defines one of ``targets`` (``"name"`` or ``"Class.method"``).

    Args:
        folder: the submission's folder (already copied into the sandbox).
        targets: the names the profile accepts, in order of preference.
        entry: the file the instructor pinned (``--entry``); returned as it is if it exists.

    Returns:
        ``(file name, why)``: why that file was chosen, for the feedback.

    Raises:
        LoadError: no file, or several files equally, define a target; the message lists what each defines.
    """
    files = sorted(n for n in os.listdir(folder) if n.endswith(SOURCE_SUFFIXES) and not n.startswith(".")
                   and os.path.isfile(os.path.join(folder, n)))
    if entry is not None:
        name = entry if entry.endswith(SOURCE_SUFFIXES) else entry + ".py"
        if name not in files:
            raise LoadError(f"the submission folder has no top-level {name!r} (it has {', '.join(files) or 'no Python files'})")
        return name, f"{name} (given with --entry)"
    if len(files) == 1:
        return files[0], files[0]
    defined = {n: _defined_names(_python_text(os.path.join(folder, n))) for n in files}
    for target in targets:
        head = target.split(".")[0]
        having = [n for n in files if head in defined[n]]
        if len(having) == 1:
            return having[0], f"{having[0]} (the file that defines {head})"
        if having:
            same = [n for n in having if os.path.splitext(n)[0] == head]
            if len(same) == 1:
                return same[0], f"{same[0]} (defines {head}, as do {', '.join(n for n in having if n != same[0])})"
            raise LoadError(f"several files define {head}: {', '.join(having)}; the instructor can pick one with --entry")
    listing = "; ".join(f"{n}: {', '.join(sorted(d)[:8]) or 'nothing'}" for n, d in defined.items()) or "no Python files"
    raise LoadError(f"no file in the folder defines {' or '.join(t.split('.')[0] for t in targets)} (top-level names: {listing})")


# ---- compatibility: what old templates import -----------------------------------------------

def _stub_get_ipython():
    class _Shell:  # an nbconvert-exported .py calls get_ipython().run_line_magic(...): nothing to do here
        def __getattr__(self, name):
            return lambda *args, **kwargs: None

    return _Shell()


def install_compat(python2_names: bool) -> None:
    """Provide ``past.builtins`` (the old CS231n template imports ``xrange`` from it) if it is not
    installed, ``get_ipython`` for exported notebooks, and, for a converted Python 2 file, its builtins."""
    if "past" not in sys.modules and importlib.util.find_spec("past") is None:
        past = types.ModuleType("past")
        past.__path__ = []  # a package, so ``import past.builtins`` works
        pb = types.ModuleType("past.builtins")
        import functools

        for name, expr in python2.PY2_BUILTINS.items():
            setattr(pb, name, eval(expr, {"functools": functools, "sys": sys}))  # our own fixed table
        past.builtins = pb
        sys.modules.setdefault("past", past)
        sys.modules.setdefault("past.builtins", pb)
    if not hasattr(builtins, "get_ipython"):
        builtins.get_ipython = _stub_get_ipython
    if python2_names:
        import functools

        for name, expr in python2.PY2_BUILTINS.items():
            if not hasattr(builtins, name):
                setattr(builtins, name, eval(expr, {"functools": functools, "sys": sys}))


# ---- loading -----------------------------------------------------------------------------

def _python3(text: str, filename: str) -> tuple[object, python2.Conversion | None]:
    """Compiled code of ``text``; a Python 2 file whose only obstacle is ``print`` is converted first.

    Raises:
        LoadError: other Python 2 syntax (named with its line).
        SyntaxError: a Python 3 syntax error (the student's, reported as usual).
    """
    try:
        return compile(text, filename, "exec", dont_inherit=True), None
    except SyntaxError as first:
        found = python2.find_python2(text)
        if not found:
            raise first from None
    blockers = [f for f in found if f.what != "print statement"]
    if blockers:
        listed = "; ".join(str(f) for f in blockers[:3])
        raise LoadError(f"this file is Python 2 ({listed}); the course uses Python 3: "
                        "rewrite these lines in Python 3 syntax")
    conversion = python2.convert_prints(text)
    try:
        return compile(conversion.source, filename, "exec", dont_inherit=True), conversion
    except SyntaxError as exc:
        raise LoadError(f"this file is Python 2 (print statement at line {found[0].line}), and after rewriting its "
                        f"print statements it still does not compile: {exc.msg} at line {exc.lineno}") from None


def _remember(filename: str, text: str) -> None:
    """Make tracebacks show the source lines of code compiled from a string (notebook cells, rewrites)."""
    lines = text.splitlines(keepends=True)
    linecache.cache[filename] = (len(text), None, lines, filename)


def _new_module(name: str, path: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    return module


def _load_py(path: str, name: str, loaded_notes: list[str]) -> tuple[types.ModuleType, bool]:
    text = _read(path)
    code, conversion = _python3(text, path)
    module = _new_module(name, path)
    if conversion is not None:
        _remember(path, conversion.source)
        rows = ", ".join(map(str, conversion.print_lines[:10])) + ("…" if len(conversion.print_lines) > 10 else "")
        loaded_notes.append(f"This file is Python 2: its {len(conversion.print_lines)} print statement(s) (line {rows}) were "
                            "rewritten as print() calls to grade it; the course uses Python 3.")
        install_compat(True)
    exec(code, module.__dict__)
    return module, conversion is not None


def _alarm(seconds: float):
    def ring(signum, frame):
        raise CellTimeout(f"the cell ran longer than {seconds:g} s")

    signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def _load_notebook(path: str, name: str, cell_seconds: float, loaded: Loaded) -> None:
    try:
        nb = notebook.read_notebook(_read(path))
    except notebook.NotebookError as exc:
        raise LoadError(f"{os.path.basename(path)}: {exc}") from None
    module = loaded.module = _new_module(name, path)
    base = os.path.basename(path)
    if nb.dropped:
        shown = "; ".join(str(d) for d in nb.dropped[:6]) + (f"; and {len(nb.dropped) - 6} more" if len(nb.dropped) > 6 else "")
        loaded.notes.append(f"IPython lines left out (not Python): {shown}.")
    for cell in nb.cells:
        filename = f"{base}, cell {cell.number}"
        try:
            _, conversion = _python3(cell.source, filename)
        except LoadError as exc:
            loaded.cell_errors.append(f"cell {cell.number}: {exc}")
            continue
        except SyntaxError as exc:
            loaded.cell_errors.append(f"cell {cell.number}, line {exc.lineno}: SyntaxError: {exc.msg}")
            continue
        if conversion is not None:
            loaded.python2 = True
            install_compat(True)
            loaded.notes.append(f"Cell {cell.number} is Python 2: its print statement(s) were rewritten as print() calls.")
        source = conversion.source if conversion else cell.source
        _remember(filename, source)
        _alarm(cell_seconds)
        try:
            _run_statements(source, filename, module.__dict__, cell.number, loaded.cell_errors)
        except CellTimeout as exc:
            loaded.cell_errors.append(f"cell {cell.number}: stopped, {exc} (cells that train or load data are skipped)")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)


def _run_statements(source: str, filename: str, namespace: dict, number: int, errors: list[str]) -> None:
    """Run a cell one top-level statement at a time: a failing statement (a data file that is not
    there, a missing course package) is reported and the cell goes on, so the functions it defines
    after it still exist."""
    for stmt in ast.parse(source, filename).body:
        code = compile(ast.Module([stmt], []), filename, "exec", dont_inherit=True)
        try:
            exec(code, namespace)
        except Exception as exc:
            errors.append(f"cell {number}, line {stmt.lineno}: {type(exc).__name__}: {str(exc)[:300]}")


def load(work: str, entry: str, name: str, *, cell_seconds: float = 3.0) -> Loaded:
    """Import the submission's ``entry`` (a ``.py`` or ``.ipynb`` in ``work``) as module ``name``.

    Raises:
        LoadError: a Python 2 file that cannot be converted, or an unreadable notebook.
        Exception: whatever the student's module raises while it is imported (the caller reports it).
    """
    if work not in sys.path:
        sys.path.insert(0, work)
    sys.argv = [entry]
    path = os.path.join(work, entry)
    install_compat(False)
    loaded = Loaded(types.ModuleType(name), entry)
    if entry.endswith(".ipynb"):
        _load_notebook(path, name, cell_seconds, loaded)
    else:
        loaded.module, loaded.python2 = _load_py(path, name, loaded.notes)
    return loaded


def describe_functions(module: types.ModuleType, limit: int = 20) -> list[str]:
    """``name(signature)`` of every function and method the module itself defines (not what it imports)."""
    out = []
    for key, value in list(vars(module).items()):
        if key.startswith("__") or getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(value):
            for meth, fn in list(vars(value).items()):
                if inspect.isfunction(fn) and (not meth.startswith("__") or meth == "__init__"):
                    out.append(f"{key}.{meth}{_signature(fn)}")
        elif callable(value):
            out.append(f"{key}{_signature(value)}")
        if len(out) >= limit:
            break
    return out[:limit]


def _signature(fn) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)"


_KINDS = {inspect.Parameter.POSITIONAL_ONLY: "positional", inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional",
          inspect.Parameter.VAR_POSITIONAL: "var", inspect.Parameter.KEYWORD_ONLY: "keyword",
          inspect.Parameter.VAR_KEYWORD: "varkw"}


def parameters(fn, *, method: bool = False) -> list[list] | None:
    """``[[name, kind, has_default], ...]`` of ``fn`` (``self`` left out of a method), plain data for the
    grader's ``callforms.Signature``; None when the signature cannot be read (a builtin, a C function)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if method and params and params[0].kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
        params = params[1:]
    return [[str(p.name)[:100], _KINDS[p.kind], p.default is not inspect.Parameter.empty] for p in params[:40]]


def callables(module: types.ModuleType, limit: int = 50) -> dict[str, list[list] | None]:
    """Every function and class method the module itself defines: ``{"name" or "Class.method": parameters}``."""
    out: dict[str, list[list] | None] = {}
    for key, value in list(vars(module).items()):
        if key.startswith("__") or getattr(value, "__module__", None) != module.__name__ or len(out) >= limit:
            continue
        if inspect.isclass(value):
            for meth, fn in list(vars(value).items()):
                if inspect.isfunction(fn) and not meth.startswith("__"):
                    out[f"{key}.{meth}"] = parameters(fn, method=True)
        elif inspect.isfunction(value):
            out[key] = parameters(value)
    return out
