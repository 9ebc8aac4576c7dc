"""Grading in the wild: notebooks, Python 2 files, folders of modules, and the corpus written in the
styles of public student code (tests/submissions/wild, manifest.toml says what each must get)."""

import contextlib
import importlib.util
import io
import json
import sys
import tomllib
from pathlib import Path

import pytest

from gradverify.grading import loader
from gradverify.grading.notebook import NotebookError, read_notebook
from gradverify.grading.python2 import convert_prints, find_python2

WILD = Path(__file__).parent / "submissions" / "wild"
MANIFEST = tomllib.loads((WILD / "manifest.toml").read_text(encoding="utf-8"))["submission"]


def _notebook(*cells) -> str:
    return json.dumps({"cells": [{"cell_type": kind, "metadata": {}, "source": src} for kind, src in cells],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


# ---- the corpus itself -------------------------------------------------------------------

def test_the_manifest_names_every_submission_of_the_corpus_once():
    on_disk = {f"{d}/{p.name}" for d in ("ex4", "two_layer") for p in (WILD / d).iterdir()
               if p.suffix in (".py", ".ipynb") or p.is_dir()}
    listed = [e["path"] for e in MANIFEST]
    assert len(listed) == len(set(listed)) and set(listed) == on_disk
    assert len(listed) >= 30


def test_every_style_has_a_correct_and_a_buggy_variant_with_a_named_diagnosis():
    by_path = {e["path"]: e for e in MANIFEST}
    styles = [p for p in by_path if not Path(p).name.startswith("bug_") and by_path[p]["verdict"] == "pass"]
    assert len(styles) >= 15
    for path in styles:
        bug = by_path[str(Path(path).parent / ("bug_" + Path(path).name))]
        assert bug["verdict"] == "fail" and bug["diagnosis"], path
        assert bug["layout"] == by_path[path]["layout"] and bug["form"] == by_path[path]["form"]
    layouts = {(e["layout"].get("label_base"), e["layout"].get("unroll_order")) for e in MANIFEST if e["profile"] == "ex4"
               and e.get("layout")}
    assert {(0, "C"), (1, "F"), (1, "C")} <= layouts  # mixed conventions in one class
    assert {e["layout"]["reg_scale"] for e in MANIFEST if e["profile"] == "two-layer-relu"} == {0.5, 1.0}


def test_the_buggy_variants_are_what_make_wild_writes():
    spec = importlib.util.spec_from_file_location("make_wild", WILD / "make_wild.py")
    make_wild = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_wild)
    for correct, buggy, patches in make_wild.BUGS:
        assert (WILD / buggy).read_text() == make_wild._patched((WILD / correct).read_text(), patches, buggy)
    for correct, buggy, cells, patch in make_wild.NOTEBOOK_BUGS:
        assert (WILD / correct).read_text() == make_wild.notebook(cells)
        assert (WILD / buggy).read_text() != (WILD / correct).read_text()


# ---- notebooks -----------------------------------------------------------------------------

def test_a_notebook_becomes_its_code_cells_with_ipython_lines_dropped_and_listed():
    nb = read_notebook(_notebook(
        ("markdown", "# Title"),
        ("code", ["%matplotlib inline\n", "import numpy as np\n", "!pip install scipy\n", "files = !ls\n"]),
        ("code", "def f(x):\n    %time g(x)\n    return x + 1\nnp.sum?"),
        ("code", "%%bash\necho hi\nls"),
        ("code", "%%time\ny = f(1)")))
    assert [c.number for c in nb.cells] == [2, 3, 4, 5]  # numbered as the student sees them, markdown counted
    assert [(d.cell, d.line, d.why) for d in nb.dropped] == [
        (2, 1, "magic"), (2, 3, "shell"), (2, 4, "shell"), (3, 2, "magic"), (3, 4, "help"),
        (4, 1, "cell magic"), (4, 2, "%%bash cell"), (4, 3, "%%bash cell"), (5, 1, "cell magic")]
    namespace: dict = {}
    exec(compile(nb.source, "nb", "exec"), namespace)  # the module is valid Python; blocks never left empty
    assert namespace["y"] == 2
    line = nb.source.splitlines().index("    return x + 1") + 1
    assert nb.cell_of(line) == (3, 3)  # every line of the module maps back to its cell
    assert "cell 3, line 2: %time g(x) (magic)" in [str(d) for d in nb.dropped]


@pytest.mark.parametrize("text, why", [("not json", "not valid JSON"), ('{"cells": 3}', "no list of cells"),
                                       ('{"cells": [{"cell_type": "code", "source": 5}]}', "string or a list")])
def test_what_is_not_a_notebook_is_said_plainly(text, why):
    with pytest.raises(NotebookError, match=why):
        read_notebook(text)


def test_a_notebook_runs_cell_by_cell_and_every_failure_names_its_cell(tmp_path):
    (tmp_path / "hw.ipynb").write_text(_notebook(
        ("code", "import numpy as np\nfrom cs231n.data_utils import load_CIFAR10\nSCALE = 2.0"),
        ("code", "data = np.load('cifar.npz')"),
        ("code", "def nnCostFunction(x):\n    return SCALE * np.sum(x)"),
        ("code", "while True:\n    pass"),
        ("code", "def broken(:\n    pass"),
        ("code", "def helper():\n    return 1")))
    loaded = loader.load(str(tmp_path), "hw.ipynb", "wild_nb_test", cell_seconds=0.3)
    errors = "\n".join(loaded.cell_errors)
    assert "cell 1, line 2: ModuleNotFoundError" in errors and "cell 2, line 1: FileNotFoundError" in errors
    assert "cell 4: stopped" in errors and "cell 5, line 1: SyntaxError" in errors
    assert loaded.module.nnCostFunction(__import__("numpy").ones(3)) == 6.0  # the statement after the failed import ran
    assert loaded.module.helper() == 1  # cells after the failures still ran


def test_an_error_inside_a_notebook_function_names_the_cell_in_its_traceback(tmp_path):
    import traceback

    (tmp_path / "a.ipynb").write_text(_notebook(("markdown", "x"), ("code", "def f():\n    return 1 / 0")))
    loaded = loader.load(str(tmp_path), "a.ipynb", "wild_nb_tb")
    with pytest.raises(ZeroDivisionError) as info:
        loaded.module.f()
    text = "".join(traceback.format_exception(info.value))
    assert 'File "a.ipynb, cell 2", line 2, in f' in text and "return 1 / 0" in text


# ---- Python 2 ------------------------------------------------------------------------------

PY2 = '''import sys
def f(x):
    print "x is", x
    if x: print x,
    print
    print >>sys.stderr, "to", ("stderr",
                                1)
    print("already a call"); print x  # comment
    return x
'''


def test_python2_print_statements_become_calls_that_print_the_same_thing():
    conv = convert_prints(PY2)
    assert conv.print_lines == (3, 4, 5, 6, 8)
    namespace: dict = {}
    exec(compile(conv.source, "py2", "exec"), namespace)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        namespace["f"](7)
    assert out.getvalue() == "x is 7\n7 \nalready a call\n7\n"  # Python 2's own output (softspace aside)
    assert err.getvalue() == "to ('stderr', 1)\n"
    assert len(conv.source.splitlines()) == len(PY2.splitlines())  # line numbers unchanged


def test_other_python2_syntax_is_found_with_its_line():
    found = find_python2((WILD / "ex4" / "python2_untranslatable.py").read_text())
    assert [(f.what, f.line) for f in found] == [
        ("'except X, y' form", 11), ("'raise X, y' form", 12), ("backtick repr", 12), ("exec statement", 13)]
    assert find_python2("x = 0777\ny = 10L\nif a <> b: pass\n")[0].what == "octal literal 0777"
    assert find_python2((WILD / "ex4" / "octave_loops.py").read_text()) == []  # Python 3 stays Python 3


def test_a_python2_file_loads_after_its_prints_are_rewritten_and_says_so(capsys):
    loaded = loader.load(str(WILD / "ex4"), "python2_script.py", "wild_py2_script")
    assert loaded.python2 and "Python 2" in loaded.notes[0] and "line 40, 45, 46" in loaded.notes[0]
    assert callable(loaded.module.nnCostFunction)


def test_a_python2_file_that_cannot_be_rewritten_is_a_load_error_naming_the_line():
    with pytest.raises(loader.LoadError, match=r"this file is Python 2 \('except X, y' form at line 11"):
        loader.load(str(WILD / "ex4"), "python2_untranslatable.py", "wild_py2_bad")


def test_a_python3_syntax_error_stays_a_syntax_error(tmp_path):
    (tmp_path / "s.py").write_text("def f(:\n    pass\n")
    with pytest.raises(SyntaxError):
        loader.load(str(tmp_path), "s.py", "wild_syntax")


# ---- folders --------------------------------------------------------------------------------

def test_the_file_that_defines_the_target_is_found_by_reading_not_by_name_or_running():
    entry, why = loader.find_entry(str(WILD / "ex4" / "octave_folder"), ["nnCostFunction"])
    assert entry == "nnCostFunction.py" and "defines nnCostFunction" in why  # not ex4.py, the driver that loads data


def test_a_folder_whose_target_is_in_no_file_or_in_several_says_which(tmp_path):
    (tmp_path / "a.py").write_text("def helper():\n    pass\n")
    (tmp_path / "b.ipynb").write_text(_notebook(("code", "class Net:\n    pass")))
    with pytest.raises(loader.LoadError, match=r"no file in the folder defines nnCostFunction.*a.py: helper; b.ipynb: Net"):
        loader.find_entry(str(tmp_path), ["nnCostFunction"])
    assert loader.find_entry(str(tmp_path), ["nnCostFunction", "Net.loss"])[0] == "b.ipynb"
    (tmp_path / "c.py").write_text("print 'py2'\nclass Net(object):\n    pass\n")
    with pytest.raises(loader.LoadError, match="several files define Net: b.ipynb, c.py"):
        loader.find_entry(str(tmp_path), ["Net.loss"])
    assert loader.find_entry(str(tmp_path), ["Net.loss"], entry="c.py")[0] == "c.py"


def test_describe_functions_lists_what_a_module_defines_with_signatures(tmp_path):
    (tmp_path / "m.py").write_text("import numpy as np\nfrom os.path import join\n"
                                   "def cost(theta, X, y, lmbda=0.0):\n    pass\n"
                                   "class Net:\n    def __init__(self, n):\n        pass\n    def loss(self, X, y=None, reg=0.0):\n        pass\n")
    loaded = loader.load(str(tmp_path), "m.py", "wild_describe")
    assert loader.describe_functions(loaded.module) == [
        "cost(theta, X, y, lmbda=0.0)", "Net.__init__(self, n)", "Net.loss(self, X, y=None, reg=0.0)"]


def test_the_old_course_templates_imports_work_without_the_future_package(tmp_path):
    (tmp_path / "t.py").write_text("from builtins import range\nfrom past.builtins import xrange\nN = sum(xrange(4))\n")
    assert loader.load(str(tmp_path), "t.py", "wild_past").module.N == 6
    sys.modules.pop("wild_past", None)


# ---- packages --------------------------------------------------------------------------------

def test_the_allow_list_resolves_to_installed_packages_and_their_run_time_requirements():
    from gradverify.grading.packages import resolve

    pytest.importorskip("matplotlib")
    r = resolve(["NumPy", "matplotlib", "no-such-package-here"])
    assert r.allowed == ("numpy", "matplotlib") and r.missing == ("no-such-package-here",)
    assert "pyparsing" in r.support and "numpy" not in r.support  # matplotlib needs it to import
    tops = {Path(p).name for p in r.paths}
    assert {"numpy", "matplotlib", "pyparsing"} <= tops and all(Path(p).exists() for p in r.paths)
    assert not any(name.endswith(".pth") or name == "gradverify" for name in tops)  # nothing else of the grader's


def test_an_import_outside_the_allow_list_is_named_with_the_option_that_allows_it():
    from gradverify.grading.packages import blocked_import, resolve

    pytest.importorskip("sklearn")
    only_numpy = resolve(["numpy"])
    text = blocked_import("sklearn.preprocessing", only_numpy)
    assert "sklearn (package scikit-learn)" in text and "--allow-package scikit-learn" in text and "allowed: numpy" in text
    assert blocked_import("sklearn", resolve(["numpy", "scikit_learn"])) is None  # allowed: not the reason
    assert blocked_import("my_helpers", only_numpy) is None  # not a package at all: the student's own missing file


# ---- call forms and convention detection (in-process on the corpus: our own trusted files) ----------

def _ex4_local_attempt(module, problem):
    import numpy as np

    from gradverify.callforms import FormError, ex4_args, ex4_gradient
    from gradverify.grading.detect import Attempt, measure
    from gradverify.params import Layout, unflatten

    def attempt(target, form, settings):
        try:
            value = getattr(module, target)(*[a.copy() if hasattr(a, "copy") else a for a in ex4_args(problem, settings, form)])
            grad = ex4_gradient(problem, settings, tuple(value[1:]))
            cost = float(np.asarray(value[0]).reshape(()))
        except (FormError, Exception) as exc:
            return Attempt(target, form, settings, failed=f"{type(exc).__name__}: {exc}")
        grads = unflatten(grad, problem.network, Layout("theta", settings["unroll_order"]))
        cost_ok, n_ok, n_params, cosine = measure(problem, cost, grads)
        return Attempt(target, form, settings, cost_ok=cost_ok, n_ok=n_ok, n_params=n_params, cosine=cosine)

    return attempt


def _local(path: Path, target: str):
    work, entry = (str(path), loader.find_entry(str(path), [target])[0]) if path.is_dir() else (str(path.parent), path.name)
    for name in ("sigmoid", "sigmoidGradient", "nnCostFunction"):
        sys.modules.pop(name, None)
    return loader.load(work, entry, "wild_" + path.name.replace(".", "_")).module


EX4_TARGETS = ("nnCostFunction", "backprop")


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix, as in the blog-post style
@pytest.mark.parametrize("entry", [e for e in MANIFEST if e["profile"] == "ex4" and e["verdict"] != "error"], ids=lambda e: e["path"])
def test_the_conventions_and_call_form_of_every_ex4_submission_are_detected(entry):
    import warnings

    from gradverify.callforms import EX4_FORMS, Signature, rank_forms
    from gradverify.grading.detect import detect, settings_grid
    from gradverify.profiles import get_profile

    prof = get_profile("ex4")
    default = {"label_base": 0, "unroll_order": "C", "y_form": "vector"}
    choices = {**prof.choices, "y_form": ("vector", "column", "onehot")}
    problem = prof.fixed_cases(prof.resolve({}))[0][1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = _local(WILD / entry["path"], "nnCostFunction")
    fns = {t: loader.parameters(getattr(module, t)) for t in EX4_TARGETS if hasattr(module, t)}
    grid = settings_grid(default, choices, ("y_form", "label_base", "unroll_order"), {},
                         key=lambda s: (s["y_form"], s["unroll_order"], None if s["y_form"] == "onehot" else s["label_base"]))
    options = [(t, f.name, s) for t, params in fns.items() for f in rank_forms(Signature.from_wire(t, params), EX4_FORMS)
               for s in grid]
    found = detect(options, _ex4_local_attempt(module, problem), default=default)
    assert found.form == entry["form"]
    assert {k: found.settings[k] for k in entry["layout"]} == entry["layout"], found.note(default)
    if entry["verdict"] == "pass":
        assert found.fits and found.note(default).startswith("Detected: ")
    if not found.fits:  # a bug that shows at λ = 0 already: still graded in the student's own conventions
        assert "The closest is" in found.note(default) and "graded under it" in found.note(default)


def test_forms_are_ranked_by_what_a_signature_can_take_and_what_its_names_say():
    from gradverify.callforms import EX4_FORMS, TWO_LAYER_FORMS, Param, Signature, rank_forms

    def sig(target, *names, defaults=0):
        n = len(names)
        return Signature(target, tuple(Param(x, "positional", i >= n - defaults) for i, x in enumerate(names)))

    assert [f.name for f in rank_forms(sig("f", "Theta1", "Theta2", "X", "y", "lmbda"), EX4_FORMS)] == ["thetas-data", "data-thetas"]
    assert [f.name for f in rank_forms(sig("f", "X", "Y", "t1", "t2", "Lambda"), EX4_FORMS)] == ["data-thetas", "thetas-data"]
    assert [f.name for f in rank_forms(sig("nnCostFunction", "p", "a", "b", "c", "X", "y", "l", defaults=1), EX4_FORMS)] == ["unrolled"]
    assert rank_forms(sig("f", "a", "b"), EX4_FORMS) == []  # nothing takes two arguments
    assert [f.name for f in rank_forms(sig("two_layer_net", "X", "model", "y", "reg", defaults=2), TWO_LAYER_FORMS)] == ["model", "params"]
    assert [f.name for f in rank_forms(sig("TwoLayerNet.loss", "X", "y", "reg", defaults=2), TWO_LAYER_FORMS)] == ["class"]
    assert Signature.from_wire("f", [["x", "positional", False], ["y", "sideways", False]]) is None  # hostile data refused
    assert str(Signature.from_wire("f", [["x", "positional", False], ["a", "var", False], ["k", "keyword", True]])) == "f(x, *a, k=…)"


# ---- the data contract -------------------------------------------------------------------------

def test_random_problems_can_honour_every_class_and_say_so_in_their_reproduce_command():
    import numpy as np

    from gradverify.errors import SpecError
    from gradverify.problems import random_problem
    from gradverify.reproduce import reproduce_args
    from gradverify.spec import Network

    net = Network((3, 4, 5), ("sigmoid",), "sigmoid", lam=1.0)
    for seed in range(40):
        p = random_problem(net, m=5, seed=seed, all_classes=True)
        assert sorted(set(p.labels.tolist())) == [0, 1, 2, 3, 4]
    plain = random_problem(net, m=5, seed=3)
    assert np.array_equal(plain.X, random_problem(net, m=5, seed=3, all_classes=True).X)  # only the labels differ
    assert "--all-classes" in reproduce_args(random_problem(net, m=6, seed=1, all_classes=True))
    assert "--all-classes" not in reproduce_args(plain)
    with pytest.raises(SpecError, match="m ≥ 5"):
        random_problem(net, m=4, seed=0, all_classes=True)


def test_the_printed_command_rebuilds_the_same_all_classes_problem(capsys):
    from gradverify.cli import main
    from gradverify.compare import gather
    from gradverify.problems import random_problem
    from gradverify.reproduce import reproduce_args
    from gradverify.spec import Network

    net = Network((2, 3, 4), ("sigmoid",), "sigmoid", lam=0.5)
    p = random_problem(net, m=7, seed=11, scale=2.0, all_classes=True)
    main(reproduce_args(p) + ["--sources", "backprop"])
    cost = gather(p, ("backprop",))["backprop"].cost
    assert f"cost J      {cost:.12e}" in capsys.readouterr().out  # the same labels, so the same cost


def test_generated_cases_with_all_classes_have_every_class_and_m_at_least_k():
    from hypothesis import given, settings

    from gradverify import strategies as gst

    @settings(max_examples=40, database=None)
    @given(gst.problems(gst.networks(outputs=("sigmoid", "softmax"), max_width=5), all_classes=True))
    def check(problem):
        K = max(problem.network.sizes[-1], 2)
        assert problem.m >= K and len(set(problem.labels.tolist())) == K

    check()


# ---- reproduce.py ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path, form, settings", [
    ("ex4/bug_octave_folder", "unrolled", {"label_base": 1, "unroll_order": "F", "y_form": "vector"}),
    ("ex4/bug_separate_thetas.py", "thetas", {"label_base": 0, "unroll_order": "C", "y_form": "vector"}),
    ("ex4/bug_notebook.ipynb", "unrolled", {"label_base": 0, "unroll_order": "C", "y_form": "vector"}),
    ("ex4/bug_python2_script.py", "unrolled", {"label_base": 1, "unroll_order": "F", "y_form": "vector"})])
def test_reproduce_py_makes_the_graded_call_again_and_prints_the_graded_numbers(tmp_path, path, form, settings):
    import subprocess

    import numpy as np

    from gradverify.callforms import ex4_args
    from gradverify.compare import gather
    from gradverify.grading.reproducer import expected_like, reproduce_script
    from gradverify.profiles import get_profile

    prof = get_profile("ex4")
    title, problem = prof.fixed_cases(prof.resolve({}))[1]  # λ = 3
    sub = WILD / path
    entry = loader.find_entry(str(sub), ["nnCostFunction"])[0] if sub.is_dir() else sub.name
    args = ex4_args(problem, settings, form)
    module = _local(sub, "nnCostFunction")
    with contextlib.redirect_stdout(io.StringIO()):
        value = module.nnCostFunction(*[a.copy() if hasattr(a, "copy") else a for a in args])
    exact = gather(problem, ("exact",))["exact"]
    from gradverify.params import unflatten

    script = reproduce_script(name=sub.name, title=title, submission=sub, entry=entry, target="nnCostFunction",
                              how=f"form {form}", settings=settings, args=args, kwargs={}, attrs=None, init=None,
                              expected=expected_like(value, exact.cost, unflatten(exact.grad, problem.network), profile="ex4",
                                                     settings=settings, network=problem.network),
                              graded_cost=float(value[0]))
    (tmp_path / "reproduce.py").write_text(script)
    res = subprocess.run([sys.executable, str(tmp_path / "reproduce.py")], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    line = next(l for l in res.stdout.splitlines() if l.startswith("cost (J)"))
    assert f"yours {float(value[0]):.12g} " in line and f"exact {exact.cost:.12g} " in line
    worst = max(float(np.max(np.abs(np.asarray(v, float)))) for v in value[1:])
    assert "max |yours - exact|" in res.stdout and worst > 0


# ---- advisory robustness: classes absent from the batch --------------------------------------------

@pytest.mark.parametrize("path, settings, passes", [
    ("ex4/labels_present.py", {"label_base": 0, "unroll_order": "C", "y_form": "vector"}, False),
    ("ex4/pandas_dummies.py", {"label_base": 1, "unroll_order": "F", "y_form": "vector"}, True),  # categories fixed: robust
    ("ex4/octave_loops.py", {"label_base": 1, "unroll_order": "F", "y_form": "vector"}, True)])
def test_one_hot_sized_from_the_labels_present_is_named_as_the_cause_when_a_class_is_absent(path, settings, passes):
    import numpy as np

    from gradverify.callforms import ex4_args, ex4_gradient
    from gradverify.grading.detect import measure
    from gradverify.grading.robustness import classes_absent_problem, classes_absent_verdict
    from gradverify.params import Layout, unflatten
    from gradverify.profiles import get_profile

    prof = get_profile("ex4")
    problem = classes_absent_problem(prof.fixed_cases(prof.resolve({}))[0][1])
    assert problem.m == 2 and sorted(set(problem.labels.tolist())) == [1, 2]
    module = _local(WILD / path, "nnCostFunction")
    try:
        value = module.nnCostFunction(*ex4_args(problem, settings, "unrolled"))
        grads = unflatten(ex4_gradient(problem, settings, tuple(value[1:])), problem.network, Layout("theta", settings["unroll_order"]))
        cost_ok, n_ok, n_params, _ = measure(problem, float(np.asarray(value[0]).reshape(())), grads)
        ok, message = classes_absent_verdict(problem, cost_ok=cost_ok, n_ok=n_ok, n_params=n_params)
    except Exception as exc:
        ok, message = classes_absent_verdict(problem, error=f"{type(exc).__name__}: {exc}")
    assert ok == passes, message
    if not passes:
        assert "classes 1, 2 of 0..2 occur, 0 never" in message and "sized from the labels present" in message
        assert "costs no points" in message


# ---- the corpus graded as a class, with no --set at all ---------------------------------------------

@pytest.fixture(scope="module")
def wild_batches(tmp_path_factory):
    from gradverify.cli import main

    out = tmp_path_factory.mktemp("wild")
    runs = {}
    for folder, profile in (("ex4", "ex4"), ("two_layer", "two-layer-relu")):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main(["grade", str(WILD / folder), "--assignment", profile, "--out", str(out / folder), "--examples", "4",
                         "--seed", "7", "--jobs", "2"])
        grades = {}
        for fb in (out / folder).glob("*/feedback.json"):
            data = json.loads(fb.read_text())
            grades[Path(data["path"]).name] = (data, fb.parent)
        runs[folder] = (code, buf.getvalue(), grades, out / folder)
    return runs


@pytest.mark.slow
def test_every_input_gets_one_row_and_the_run_says_so(wild_batches):
    import csv

    for folder, (code, stdout, grades, out) in wild_batches.items():
        entries = [e for e in MANIFEST if e["path"].startswith(folder + "/")]
        assert sorted(grades) == sorted(Path(e["path"]).name for e in entries)
        assert f"{len(entries)} submissions given, {len(entries)} graded" in stdout
        rows = list(csv.DictReader((out / "gradebook.csv").open()))
        assert len(rows) == len(entries) and all(r["conventions"] or r["verdict"] == "error" for r in rows)
        assert code == 1  # some fail: the bugs


@pytest.mark.slow
@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e["path"])
def test_every_submission_of_the_corpus_gets_what_the_manifest_says(wild_batches, entry):
    folder = entry["path"].split("/")[0]
    data, where = wild_batches[folder][2][Path(entry["path"]).name]
    failed = {c["name"]: c["message"] for c in data["checks"] if not c["passed"] and c["max_points"]}
    assert data["verdict"] == entry["verdict"], (data["detected"], failed)
    if entry["verdict"] == "pass":
        assert data["score"] == data["max_score"], failed
    if entry["verdict"] == "fail":
        assert data["diagnosis"][0]["kind"] == entry["diagnosis"], (data["detected"], data["diagnosis"][:2])
    if entry["verdict"] == "error":
        assert entry["message"] in next(c["message"] for c in data["checks"] if c["name"] == "loads")
        return
    settings = data["settings"]
    assert {k: settings[k] for k in entry["layout"]} == entry["layout"] and settings["form"] == entry["form"], data["detected"]
    advisory = next(c for c in data["checks"] if c["name"] == "classes_absent")
    assert advisory["max_points"] == 0
    if entry.get("advisory") == "classes-absent":
        assert not advisory["passed"] and "sized from the labels present" in advisory["message"]
    md = (where / "feedback.md").read_text()
    assert "How your code was called: " in md
    if "python2" in entry["path"]:
        assert "Python 2" in md
    if entry["path"].endswith(".ipynb"):
        assert "IPython lines left out" in md and "Skipped while loading: cell" in md


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bug_octave_folder", "bug_notebook.ipynb", "bug_separate_thetas.py", "bug_python2_script.py",
                                  "bug_column_y.py", "bug_blog_backprop.py"])
def test_the_printed_reproduce_command_gives_the_graded_numbers(wild_batches, name):
    import subprocess

    data, where = wild_batches["ex4"][2][name]
    assert "`python reproduce.py`" in (where / "feedback.md").read_text()
    res = subprocess.run([sys.executable, "reproduce.py"], cwd=where, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    line = next(l for l in res.stdout.splitlines() if l.startswith("cost (J)"))
    assert f"yours {data['failing_case']['cost_yours']:.12g} " in line and f"exact {data['failing_case']['cost_expected']:.12g} " in line
