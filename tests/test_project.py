"""The project's promises: the README's commands, CI, independence of the sources, layering, exports."""

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "gradverify"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Two commands.*?```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_the_readme_has_two_setup_commands_and_ci_runs_the_second_verbatim():
    main_cmd, test_cmd = _readme_commands()
    assert "pip install" in main_cmd and "gradverify verify" in main_cmd
    assert "pip install" in test_cmd and "pytest" in test_cmd
    assert test_cmd in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name, read from the tree itself (a split stays covered)."""
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _side_modules(prefixes: tuple[str, ...]) -> dict[str, Path]:
    return {n: p for n, p in _modules().items() if any(n == f or n.startswith(f + ".") for f in prefixes)}


# The three gradient sources, each a set of module prefixes, and what each may never import. A shared
# derivative (or a shared reading of the spec's facts) would let a shared bug agree with itself.
SIDES = {
    "symbolic": ("gradverify.symbolic", "gradverify.layers.exact"),
    "backprop": ("gradverify.backprop", "gradverify.layers.engine"),
    "finite differences": ("gradverify.finite_diff", "gradverify.forward", "gradverify.layers.forward", "gradverify.layers.numeric"),
}
# What judges, diagnoses (bug models hold hand-written derivatives) or calls the sources: no source may import it.
_LAYER_JUDGING = {"gradverify.layers.judge", "gradverify.layers.diagnose", "gradverify.layers.mutants", "gradverify.layers.candidate",
                  "gradverify.layers.suite"}
FORBIDDEN = {
    "symbolic": {"gradverify.backprop", "gradverify.finite_diff", "gradverify.forward", "gradverify.functions",
                 "gradverify.compare", "gradverify.diagnose", "gradverify.layers.engine", "gradverify.layers.forward",
                 "gradverify.layers.numeric"} | _LAYER_JUDGING,
    "backprop": {"sympy", "symengine", "mpmath", "gmpy2", "flint", "gradverify.symbolic", "gradverify.finite_diff",
                 "gradverify.forward", "gradverify.functions", "gradverify.compare", "gradverify.diagnose", "gradverify.layers.exact",
                 "gradverify.layers.forward", "gradverify.layers.numeric"} | _LAYER_JUDGING,
    "finite differences": {"sympy", "symengine", "mpmath", "flint", "gradverify.backprop", "gradverify.symbolic",
                           "gradverify.compare", "gradverify.diagnose", "gradverify.layers.exact", "gradverify.layers.engine"} | _LAYER_JUDGING,
}


@pytest.mark.parametrize("side", list(SIDES))
def test_the_three_gradient_sources_never_import_each_other(side):
    modules = _side_modules(SIDES[side])
    assert modules, f"no module of the {side} side found under {SIDES[side]}: a rename must update this table, not switch the test off"
    bad = {}
    for name, path in modules.items():
        hits = {i for i in _imports(path) if any(i == f or i.startswith(f + ".") for f in FORBIDDEN[side])}
        if hits:
            bad[name] = hits
    assert not bad, f"{side} imports {bad}: a shared derivative would let a shared bug agree with itself"


HIGHER = ("gradverify.cli", "gradverify.grading", "gradverify.report", "gradverify.suite")
LOWER = ("gradverify.errors", "gradverify.spec", "gradverify.params", "gradverify.problems", "gradverify.functions",
         "gradverify.forward", "gradverify.backprop", "gradverify.finite_diff", "gradverify.symbolic",
         "gradverify.compare", "gradverify.diagnose", "gradverify.layers")


@pytest.mark.parametrize("prefix", LOWER)
def test_lower_modules_never_import_the_cli_or_higher_layers(prefix):
    modules = _side_modules((prefix,))
    assert modules, f"{prefix} is not in the package: update LOWER instead of letting the test pass vacuously"
    for name, path in modules.items():
        assert not {i for i in _imports(path) if i.startswith(HIGHER)}, name


def test_only_the_cli_prints():
    offenders = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).as_posix()
        if rel.startswith("cli/") or rel == "grading/_worker.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{rel}:{node.lineno}")
    assert not offenders


@pytest.mark.parametrize("module", ["spec", "params", "problems", "compare", "diagnose", "strategies", "profiles", "suite", "symbolic", "finite_diff", "backprop", "errors",
                                    "layers", "layers.catalogue", "layers.case", "layers.exact", "layers.engine", "layers.forward",
                                    "layers.numeric", "layers.judge", "layers.diagnose", "layers.mutants", "layers.candidate",
                                    "layers.strategies", "layers.suite"])
def test_every_name_in_all_exists(module):
    mod = importlib.import_module(f"gradverify.{module}")
    assert mod.__all__, f"gradverify.{module} has an empty __all__"
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing


def test_the_package_ships_py_typed_and_a_console_script():
    assert (PKG / "py.typed").exists()
    text = (ROOT / "pyproject.toml").read_text()
    assert 'gradverify = "gradverify.cli:entrypoint"' in text


def test_only_strategies_import_hypothesis_at_module_level():
    offenders = []
    for path in PKG.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if any(n.split(".")[0] == "hypothesis" for n in names) and path.name != "strategies.py":
                offenders.append(path.relative_to(PKG).as_posix())
    assert not offenders


def test_the_atomic_writer_keeps_devices_and_gives_readable_files(tmp_path):
    import os
    import stat

    from gradverify._io import write_atomic
    f = write_atomic(tmp_path / "a" / "x.txt", "hello")
    assert f.read_text() == "hello" and stat.S_IMODE(os.stat(f).st_mode) & 0o044  # group/other can read
    link = tmp_path / "null"
    link.symlink_to("/dev/null")
    write_atomic(link, "gone")
    assert link.is_symlink() and os.readlink(link) == "/dev/null"  # written through, not replaced
    assert not list(tmp_path.glob("**/.*.tmp"))


def test_the_readme_python_api_example_runs():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Python API\n\n```python\n(.*?)```", text, re.S).group(1)
    head = block.split("\ndef mine")[0]  # the part that needs no user code
    namespace: dict = {}
    exec(compile(head, "README.md", "exec"), namespace)
    assert namespace["comp"].verdict == "pass"


def test_the_top_level_api_is_exactly_the_curated_list():
    import gradverify

    assert set(gradverify.__all__) == set(gradverify._EXPORTS) | {"__version__"}
    for name in gradverify.__all__:
        assert getattr(gradverify, name) is not None, name
    import types

    public = {n for n in dir(gradverify) if not n.startswith("_") and not isinstance(getattr(gradverify, n), types.ModuleType)}
    public -= {"annotations", "TYPE_CHECKING"}
    assert public == set(gradverify.__all__) - {"__version__"}
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gradverify.nope  # noqa: B018


def test_the_version_is_defined_once_and_printed_by_the_cli(capsys):
    from gradverify import __version__
    from gradverify.cli import main

    text = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in text and "gradverify._version.__version__" in text
    assert not re.search(r'^version\s*=\s*"', text, re.M)  # no second, literal definition
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"gradverify {__version__}"


@pytest.mark.parametrize("statement, heavy", [
    ("import gradverify", ("sympy", "hypothesis", "matplotlib", "symengine")),
    ("import gradverify.backprop", ("sympy", "hypothesis", "matplotlib", "symengine", "gmpy2")),
    ("import gradverify.compare", ("sympy", "hypothesis", "matplotlib", "symengine")),
    ("from gradverify.cli import build_parser; build_parser()", ("sympy", "hypothesis", "matplotlib", "symengine")),
    # a run of one subcommand registers (imports) only that one
    ("from gradverify.cli import build_parser; build_parser(['verify', '--sources', 'backprop'])",
     ("gradverify.graph", "gradverify.report", "gradverify.layers", "gradverify.grading", "gradverify.cli.grade",
      "gradverify.cli.graph", "gradverify.cli.report")),
])
def test_imports_cost_what_they_use(statement, heavy):
    import subprocess
    import sys

    code = f"{statement}\nimport sys\nprint(' '.join(sorted(m for m in {heavy!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"{statement!r} loaded {out}"


def test_every_benchmark_figure_the_readme_quotes_is_in_the_results_file():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Benchmarks", 1)[1].split("\n## ", 1)[0]
    rows = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    figures = [q for q in re.findall(r"`([^`\n]*\d[^`\n]*)`", rows) if not q.startswith(("torch.", "gradverify"))]
    assert len(figures) >= 8, figures
    results = (ROOT / "bench" / "RESULTS.md").read_text(encoding="utf-8")
    missing = [f for f in figures if f not in results]
    assert not missing, f"the README quotes {missing}, which bench/RESULTS.md does not say; quote the last run"


@pytest.mark.parametrize("output", ["sigmoid", "softmax", "identity"])
def test_every_source_knows_every_activation_and_output(output):
    """Every table (oracle, backprop, finite differences, budget, diagnosis) covers every name in spec."""
    from gradverify.compare import compare
    from gradverify.diagnose import diagnose
    from gradverify.problems import random_problem
    from gradverify.spec import ACTIVATIONS, OUTPUTS, parse_spec

    assert output in OUTPUTS and set(OUTPUTS) == {"sigmoid", "softmax", "identity"}  # a new output: add it above
    for act in ACTIVATIONS:
        problem = random_problem(parse_spec(f"3-4-2:{act}/{output}", lam=0.5), m=3, seed=1, scale=0.7)
        comp = compare(problem)
        assert comp.verdict == "pass", (act, output, comp.summary())
        from gradverify.diagnose import _mutant_grad

        right = _mutant_grad(problem, "right")  # the diagnosis's mutant engine, with the true rules
        assert right is not None and abs(right - comp.sources["exact"].grad).max() <= 1e-9 * (1 + abs(right).max()), (act, output)
        wrong = type(comp.sources["backprop"])("wrong", "float64", 2 * comp.sources["backprop"].grad, comp.sources["backprop"].budget)
        assert diagnose(problem, wrong, comp.sources["exact"]), (act, output)
