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
import re
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
    return _read_text(path)[0]


_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.MULTILINE)


def _read_text(path: str) -> tuple[str, str]:
    """The file's text and, when it is not UTF-8, a note saying how it was read: its coding line's
    encoding, else Latin-1 (Windows editors of the Python 2 era wrote accented comments so). A
    byte-order mark is dropped (Python 3 refuses one in a string it compiles)."""
    with open(path, "rb") as f:
        data = f.read(_MAX_SOURCE + 1)
    if len(data) > _MAX_SOURCE:
        raise LoadError(f"{os.path.basename(path)} is larger than {_MAX_SOURCE >> 20} MiB")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), ""
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
    cookie = _COOKIE.search(b"\n".join(data.splitlines()[:2]))
    for encoding in ([cookie.group(1).decode("ascii", "replace")] if cookie else []) + ["cp1252", "latin-1"]:
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        return text, (f"{os.path.basename(path)} is not UTF-8 (line {line}): read as {encoding}; "
                      "save it as UTF-8 (the course's encoding).")
    return data.decode("utf-8", errors="replace"), ""


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
    nested = _nested_sources(folder)
    if len(files) == 1 and not nested:
        return files[0], files[0]
    for group in (files, nested):  # a file of the top level first; a module of a package (cs231n/…) after
        defined = {n: _defined_names(_python_text(os.path.join(folder, n))) for n in group}
        for target in targets:
            head = target.split(".")[0]
            having = [n for n in group if head in defined[n]]
            if len(having) == 1:
                return having[0], f"{having[0]} (the file that defines {head})"
            if having:
                same = [n for n in having if os.path.splitext(os.path.basename(n))[0] == head]
                if len(same) == 1:
                    return same[0], f"{same[0]} (defines {head}, as do {', '.join(n for n in having if n != same[0])})"
                raise LoadError(f"several files define {head}: {', '.join(having)}; the instructor can pick one with --entry")
    if len(files) == 1:
        return files[0], files[0]
    defined = {n: _defined_names(_python_text(os.path.join(folder, n))) for n in [*files, *nested]}
    listing = "; ".join(f"{n}: {', '.join(sorted(d)[:8]) or 'nothing'}" for n, d in list(defined.items())[:12]) or "no Python files"
    raise LoadError(f"no file in the folder defines {' or '.join(t.split('.')[0] for t in targets)} (top-level names: {listing})")


_NESTED_DEPTH, _NESTED_FILES = 4, 200


def _nested_sources(folder: str) -> list[str]:
    """``.py`` and ``.ipynb`` files below the top level (``cs231n/classifiers/fc_net.py``), as relative
    paths; hidden folders, ``__pycache__`` and checkpoints left out, at most a few levels and files."""
    found: list[str] = []
    for here, dirs, names in os.walk(folder):
        rel = os.path.relpath(here, folder)
        depth = 0 if rel == "." else rel.count(os.sep) + 1
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")) and depth < _NESTED_DEPTH)
        if depth:
            found += [os.path.join(rel, n).replace(os.sep, "/") for n in sorted(names)
                      if n.endswith(SOURCE_SUFFIXES) and not n.startswith(".") and os.path.isfile(os.path.join(here, n))]
        if len(found) >= _NESTED_FILES:
            break
    return found[:_NESTED_FILES]


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

@dataclass
class _Prepared:
    """A module's text made Python 3: its syntax tree, the source its line numbers refer to, and what
    was done to it (for the student)."""

    tree: ast.Module
    source: str
    notes: list[str]
    python2: bool


def _prepare(text: str, filename: str, what: str = "This file") -> _Prepared:
    """Parse ``text``; Python 2 is made Python 3 where only form stands in the way: ``print``
    statements become calls, indentation mixing tabs and spaces is read with Python 2's 8-column
    tabs, and ``/`` keeps Python 2's meaning (floor division of two integers).

    Raises:
        LoadError: other Python 2 syntax (named with its line).
        SyntaxError: a Python 3 syntax error (the student's, reported as usual).
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    notes: list[str] = []
    conversion = tabs = None
    first: SyntaxError | None = None
    for _ in range(3):
        try:
            tree = ast.parse(text, filename)
            break
        except (SyntaxError, ValueError) as exc:
            if not isinstance(exc, SyntaxError):
                raise SyntaxError(str(exc)) from None  # a NUL byte: said as a syntax error
            first = first or exc
            if isinstance(exc, TabError) and tabs is None:
                tabs = exc.lineno or 0
                text = python2.expand_tabs(text)
                continue
            if conversion is None:
                found = python2.find_python2(text)
                blockers = [f for f in found if f.what != "print statement"]
                if blockers:
                    listed = "; ".join(str(f) for f in blockers[:3])
                    raise LoadError(f"this file is Python 2 ({listed}); the course uses Python 3: "
                                    "rewrite these lines in Python 3 syntax") from None
                if found:
                    conversion = python2.convert_prints(text)
                    text = conversion.source
                    continue
            if conversion is None and tabs is None:
                raise first from None
            raise LoadError(f"this file is Python 2, and after rewriting its Python 2 lines it still does not compile: "
                            f"{exc.msg} at line {exc.lineno}") from None
    else:  # pragma: no cover - three rewrites at most, each tried once
        raise first
    if conversion is not None:
        rows = ", ".join(map(str, conversion.print_lines[:10])) + ("…" if len(conversion.print_lines) > 10 else "")
        notes.append(f"{what} is Python 2: its {len(conversion.print_lines)} print statement(s) (line {rows}) were "
                     "rewritten as print() calls to grade it; the course uses Python 3.")
    if tabs is not None:
        notes.append(f"{what} mixes tabs and spaces in its indentation (line {tabs}), which only Python 2 allowed: "
                     "read with a tab as 8 columns, as Python 2 did. Indent with spaces only.")
    names = python2.python2_names(tree)
    if names and conversion is None:
        notes.append(f"{what} is Python 2 (it uses {', '.join(names)} without defining it): graded with Python 2's "
                     "builtins; the course uses Python 3.")
    is_py2 = conversion is not None or tabs is not None or bool(names)
    if is_py2:
        divisions = python2.classic_division(tree)
        if divisions:
            notes.append(f"{what}'s {divisions} division(s) `/` keep their Python 2 meaning (floor division when both "
                         "sides are integers); in Python 3 write `//` for that.")
    return _Prepared(tree, text, notes, is_py2)


def _remember(filename: str, text: str) -> None:
    """Make tracebacks show the source lines of code compiled from a string (notebook cells, rewrites)."""
    lines = text.splitlines(keepends=True)
    linecache.cache[filename] = (len(text), None, lines, filename)


def _new_module(name: str, path: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    return module


def _install_python2() -> None:
    install_compat(True)
    for name, fn in python2.CLASSIC_DIVISION.items():
        setattr(builtins, name, fn)


# A script's top level fails on what is not there when graded — its data files, course modules the
# student did not submit, names those would have defined: the statement is skipped (and said), the
# functions defined after it still exist. Anything else raised at import is the module's own failure.
_SCRIPT_ERRORS = (OSError, ImportError, NameError)
_QUICK = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _load_py(path: str, module: types.ModuleType, loaded: Loaded, cell_seconds: float) -> None:
    text, decoding = _read_text(path)
    prepared = _prepare(text, path)
    if decoding:
        loaded.notes.append(decoding)
    loaded.notes.extend(prepared.notes)
    if prepared.python2:
        loaded.python2 = True
        _install_python2()
    _remember(path, prepared.source)
    skipped = _run_statements(prepared.tree, path, module.__dict__, loaded.cell_errors, where="line",
                              recover=_SCRIPT_ERRORS, seconds=cell_seconds)
    own = [v for v in vars(module).values() if (inspect.isfunction(v) or inspect.isclass(v))
           and getattr(v, "__module__", None) == module.__name__]
    if skipped and not own:  # nothing of its own left to grade: the first failure is the file's failure to load
        raise skipped[0]


def _alarm(seconds: float):
    def ring(signum, frame):
        raise CellTimeout(f"it ran longer than {seconds:g} s")

    signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def _load_notebook(path: str, module: types.ModuleType, cell_seconds: float, loaded: Loaded) -> None:
    try:
        nb = notebook.read_notebook(_read(path))
    except notebook.NotebookError as exc:
        raise LoadError(f"{os.path.basename(path)}: {exc}") from None
    base = os.path.basename(path)
    if nb.dropped:
        shown = "; ".join(str(d) for d in nb.dropped[:6]) + (f"; and {len(nb.dropped) - 6} more" if len(nb.dropped) > 6 else "")
        loaded.notes.append(f"IPython lines left out (not Python): {shown}.")
    for cell in nb.cells:
        filename = f"{base}, cell {cell.number}"
        try:
            prepared = _prepare(cell.source, filename, what=f"Cell {cell.number}")
        except LoadError as exc:
            loaded.cell_errors.append(f"cell {cell.number}: {exc}")
            continue
        except SyntaxError as exc:
            loaded.cell_errors.append(f"cell {cell.number}, line {exc.lineno}: SyntaxError: {exc.msg}")
            continue
        if prepared.python2:
            loaded.python2 = True
            _install_python2()
            loaded.notes.extend(prepared.notes)
        _remember(filename, prepared.source)
        _run_statements(prepared.tree, filename, module.__dict__, loaded.cell_errors, where=f"cell {cell.number}",
                        recover=(Exception,), seconds=cell_seconds, whole=True)


def _run_statements(tree: ast.Module, filename: str, namespace: dict, errors: list[str], *, where: str,
                    recover: tuple, seconds: float, whole: bool = False) -> list[BaseException]:
    """Run a module or a cell one top-level statement at a time: a statement failing with one of
    ``recover`` is reported (``where``: "cell 4" or "line") and the rest goes on, so the functions
    defined after it still exist. ``seconds``: the allowance of the cell (``whole``) or of each
    statement that is not an import or a definition (a script's training loop is stopped, not waited for).
    Returns the exceptions recovered from."""
    skipped: list[BaseException] = []
    prefix = (lambda n: f"{where}, line {n}") if where != "line" else (lambda n: f"line {n}")
    if whole:
        _alarm(seconds)
    try:
        for stmt in tree.body:
            code = compile(ast.Module([stmt], []), filename, "exec", dont_inherit=True)
            timed = not whole and not isinstance(stmt, _QUICK)
            if timed:
                _alarm(seconds)
            try:
                exec(code, namespace)
            except CellTimeout as exc:
                if whole:
                    raise
                errors.append(f"{prefix(stmt.lineno)}: stopped, {exc} (statements that train or load data are skipped)")
            except recover as exc:
                skipped.append(exc)
                why = f"{prefix(stmt.lineno)}: {type(exc).__name__}: {str(exc)[:300]}"
                if isinstance(exc, ModuleNotFoundError):
                    why += (" (not in the submission and not an allowed package: what it provides is missing when "
                            "graded; submit that module's files with yours)")
                errors.append(why)
            finally:
                if timed:
                    signal.setitimer(signal.ITIMER_REAL, 0)
    except CellTimeout as exc:
        errors.append(f"{where}: stopped, {exc} (cells that train or load data are skipped)")
    finally:
        if whole:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return skipped


# ---- packages: a file inside a folder with __init__.py, or one that imports relatively ---------

def _relative_imports(path: str) -> bool:
    try:
        tree = ast.parse(_read(path))
    except (SyntaxError, ValueError, RecursionError, MemoryError, LoadError):
        return False
    return any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree))


def _module_name(work: str, entry: str) -> tuple[str, str | None]:
    """The dotted name ``entry`` is imported under, and the folder that must be on ``sys.path`` for
    its package (None: a plain module of ``work``). A file whose folders have ``__init__.py`` is a
    module of that package (``cs231n/classifiers/fc_net.py`` is ``cs231n.classifiers.fc_net``, its
    ``from ..layers import *`` works); a package that is the submission folder itself, or a flat
    folder whose files import each other relatively, is named ``submission``."""
    parts = entry.replace(os.sep, "/").split("/")
    stem = os.path.splitext(parts[-1])[0]
    folders = parts[:-1]
    packaged = 0  # how many of the innermost folders are packages
    for k in range(len(folders), 0, -1):
        if os.path.isfile(os.path.join(work, *folders[:k], "__init__.py")):
            packaged += 1
        else:
            break
    if packaged == len(folders) and (os.path.isfile(os.path.join(work, "__init__.py")) or
                                     (not folders and _relative_imports(os.path.join(work, entry)))):
        return ".".join(["submission", *folders, stem]), work  # the submission folder is the package
    if packaged:
        top = folders[: len(folders) - packaged]
        return ".".join([*folders[len(folders) - packaged:], stem]), os.path.join(work, *top)
    if folders:
        return stem, os.path.join(work, *folders)  # a plain module in a subfolder: its siblings importable
    return stem, None


def _package_module(name: str, root: str, loaded: Loaded) -> types.ModuleType:
    """A module named ``name`` (dotted), its parent packages imported first (``submission`` made from
    ``root`` itself when that is the package); failures of a package's ``__init__`` are noted."""
    parent, _, stem = name.rpartition(".")
    if parent == "submission" or parent.startswith("submission."):
        if "submission" not in sys.modules:
            init = os.path.join(root, "__init__.py")
            pkg = types.ModuleType("submission")
            pkg.__path__ = [root]
            pkg.__package__ = "submission"
            pkg.__file__ = init
            sys.modules["submission"] = pkg
            if os.path.isfile(init):
                try:
                    prepared = _prepare(_read(init), init, what="__init__.py")
                    _run_statements(prepared.tree, init, pkg.__dict__, loaded.cell_errors, where="__init__.py",
                                    recover=(Exception,), seconds=30.0)
                except (LoadError, SyntaxError) as exc:
                    loaded.cell_errors.append(f"__init__.py: {exc}")
    if root not in sys.path:
        sys.path.insert(0, root)
    parent_module = None
    if parent:
        try:
            parent_module = importlib.import_module(parent)
        except Exception as exc:
            loaded.cell_errors.append(f"package {parent}: {type(exc).__name__}: {str(exc)[:300]}")
    module = types.ModuleType(name)
    module.__package__ = name.rpartition(".")[0]
    sys.modules[name] = module
    if parent_module is not None:
        setattr(parent_module, name.rpartition(".")[2], module)
    return module


def load(work: str, entry: str, name: str, *, cell_seconds: float = 3.0) -> Loaded:
    """Import the submission's ``entry`` (a ``.py`` or ``.ipynb`` in ``work``, or below it: a module of
    a package) as module ``name`` (or as its dotted package name).

    Raises:
        LoadError: a Python 2 file that cannot be converted, or an unreadable notebook.
        SyntaxError: a Python 3 syntax error.
        Exception: what the student's module raises at import, other than a script's missing data
            files and modules (those are skipped and listed in ``cell_errors``).
    """
    if work not in sys.path:
        sys.path.insert(0, work)
    sys.argv = [entry]
    path = os.path.join(work, entry)
    install_compat(False)
    loaded = Loaded(types.ModuleType(name), entry)
    dotted, root = _module_name(work, entry)
    if root is None:
        module = _new_module(name, path)
    else:
        if "." not in dotted:
            if root not in sys.path:
                sys.path.insert(0, root)
            module = _new_module(dotted, path)
        else:
            module = _package_module(dotted, root, loaded)
            module.__file__ = path
    loaded.module = module
    if entry.endswith(".ipynb"):
        _load_notebook(path, module, cell_seconds, loaded)
    else:
        _load_py(path, module, loaded, cell_seconds)
    pair_cost_and_gradient(module)
    return loaded


_COST_NAME = re.compile(r"(?i).*(cost|loss|objective).*|j|f")
_GRAD_NAME = re.compile(r"(?i).*(grad|backprop|deriv|jac|fprime).*")


def pair_cost_and_gradient(module: types.ModuleType) -> list[str]:
    """For a cost function and a gradient function that take the same parameters — written for
    ``fmin_cg(cost, x0, fprime=grad)`` or ``minimize(cost, jac=grad)`` — a function of the module named
    ``"cost__and__grad"`` (an identifier: targets are) that returns ``(cost(...), grad(...))``: the form a profile reads, so the pair is
    graded together. Returns the names added."""
    functions = {k: v for k, v in list(vars(module).items())
                 if inspect.isfunction(v) and getattr(v, "__module__", None) == module.__name__ and not k.startswith("_")}
    shapes = {k: parameters(v) for k, v in functions.items()}
    added = []
    for cost, fc in functions.items():
        if not _COST_NAME.fullmatch(cost) or _GRAD_NAME.fullmatch(cost) or not shapes[cost] or len(shapes[cost]) < 3:
            continue
        for grad, fg in functions.items():
            if grad != cost and _GRAD_NAME.fullmatch(grad) and shapes[grad] == shapes[cost] and len(added) < 4:
                def both(*args, _cost=fc, _grad=fg, **kwargs):
                    return _cost(*args, **kwargs), _grad(*args, **kwargs)

                both.__module__ = module.__name__
                both.__signature__ = inspect.signature(fc)
                name = f"{cost}__and__{grad}"
                both.__name__ = both.__qualname__ = name
                setattr(module, name, both)
                added.append(name)
    return added


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
