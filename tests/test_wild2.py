"""Grading in the wild, round 2: styles of public student code the first corpus did not have — scripts
that load absent data at import, packages (cs231n/classifiers/fc_net.py, relative imports), arguments
placed by their names (sizes as keyword defaults, keyword-only), class methods, a cost and a gradient
function written apart, gradients returned as a list or a dict, CS231n's assignment-2 nets, a BOM,
CRLF, Latin-1, tabs mixed with spaces and Python 2 division (tests/submissions/wild2, manifest.toml)."""

import ast
import contextlib
import importlib.util
import io
import json
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from gradverify.callforms import EX4_FORMS, TWO_LAYER_FORMS, Param, Signature, ex4_call, form_named, rank_forms
from gradverify.grading import loader, python2

WILD2 = Path(__file__).parent / "submissions" / "wild2"
MANIFEST = tomllib.loads((WILD2 / "manifest.toml").read_text(encoding="utf-8"))["submission"]
FOLDERS = {"ex4": "ex4", "two_layer": "two-layer-relu", "layers_api": "layers-api"}


def _sig(target: str, spec: str) -> Signature:
    """``"a, b=, *c"``: b has a default, c is keyword-only."""
    params = []
    for item in (x.strip() for x in spec.split(",")):
        kind = "keyword" if item.startswith("*") else "positional"
        name = item.lstrip("*").rstrip("=")
        params.append(Param(name, kind, item.endswith("=")))
    return Signature(target, tuple(params))


def _fresh(*names: str) -> None:
    for name in list(sys.modules):
        if name in names or name.split(".")[0] in names:
            sys.modules.pop(name, None)


# ---- the corpus itself -------------------------------------------------------------------------

def test_the_manifest_names_every_submission_of_the_corpus_once():
    on_disk = {f"{d}/{p.name}" for d in FOLDERS for p in (WILD2 / d).iterdir()
               if (p.suffix in (".py", ".ipynb") or p.is_dir()) and p.name != "__pycache__"}
    listed = [e["path"] for e in MANIFEST]
    assert len(listed) == len(set(listed)) and set(listed) == on_disk
    assert len(listed) >= 30 and {e["profile"] for e in MANIFEST} == set(FOLDERS.values())


def test_the_generated_files_are_what_make_wild2_writes():
    spec = importlib.util.spec_from_file_location("make_wild2", WILD2 / "make_wild2.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    for path, text, encode in make.BYTES:
        assert (WILD2 / path).read_bytes() == encode(text)
    assert (WILD2 / "ex4/bom_crlf.py").read_bytes().startswith(b"\xef\xbb\xbf# R\xc3\xa9seau") and b"\r\n" in (WILD2 / "ex4/bom_crlf.py").read_bytes()
    for path, cells in make.NOTEBOOKS:
        assert (WILD2 / path).read_text() == make.notebook(cells)
    for correct, buggy, inner, patches in make.BUGS:
        if inner is None:
            assert (WILD2 / buggy).read_text() == make._patched((WILD2 / correct).read_text(), patches, buggy)
            continue
        for src in (WILD2 / correct).rglob("*.py"):
            rel = src.relative_to(WILD2 / correct)
            want = make._patched(src.read_text(), patches, buggy) if str(rel) == inner else src.read_text()
            assert (WILD2 / buggy / rel).read_text() == want, rel


# ---- reading text as it was written ------------------------------------------------------------

def test_a_bom_crlf_file_and_a_latin1_file_are_read_and_the_encoding_is_said():
    text, note = loader._read_text(str(WILD2 / "ex4/bom_crlf.py"))
    assert text.startswith("# Réseau") and note == ""  # UTF-8 with a BOM: nothing to say
    text, note = loader._read_text(str(WILD2 / "ex4/latin1_tabs.py"))
    assert "exercício" in text and "latin1_tabs.py is not UTF-8 (line 1): read as cp1252" in note


def test_tabs_mixed_with_spaces_are_read_as_python2_read_them_and_said():
    prepared = loader._prepare("def f(n):\n    for i in range(n):\n\tn = n + i\n    return n\n", "t.py")
    namespace: dict = {}
    exec(compile(prepared.tree, "t.py", "exec"), namespace)
    assert namespace["f"](3) == 6  # the tab is 8 columns: inside the loop, as Python 2 ran it
    assert prepared.python2 and "mixes tabs and spaces in its indentation (line 3)" in prepared.notes[0]
    with pytest.raises(SyntaxError):  # a Python 3 error stays one
        loader._prepare("def f(:\n    pass\n", "s.py")


def test_python2_division_keeps_its_meaning_only_in_python2_files():
    import builtins

    builtins.__dict__.update(python2.CLASSIC_DIVISION)
    src = "n = 7\nh = n / 2\nx = np.arange(4.0)\ny = x\nx /= 2\nk = 9\nk /= 2\nf = 7.0 / 2\nfor i in xrange(1): pass\n"
    prepared = loader._prepare(src, "p.py")
    namespace = {"np": np, "xrange": range}
    exec(compile(prepared.tree, "p.py", "exec"), namespace)
    assert (namespace["h"], namespace["k"], namespace["f"]) == (3, 4, 3.5)
    assert namespace["y"] is namespace["x"] and namespace["x"].tolist() == [0.0, 0.5, 1.0, 1.5]  # in place, as before
    assert "uses xrange without defining it" in prepared.notes[0] and "4 division(s)" in prepared.notes[1]
    py3 = loader._prepare(src.replace("xrange", "range"), "q.py")
    assert not py3.python2 and not py3.notes  # a Python 3 file: / is true division
    future = loader._prepare("from __future__ import division\nprint 7 / 2\n", "r.py")
    assert python2.classic_division(future.tree) == 0


# ---- scripts, packages, paired functions --------------------------------------------------------

def test_a_script_that_loads_absent_data_at_import_still_loads_and_lists_what_it_skipped():
    _fresh("wild2_script")
    loaded = loader.load(str(WILD2 / "ex4"), "script_loadmat.py", "wild2_script")
    skipped = "\n".join(loaded.cell_errors)
    assert "line 9: FileNotFoundError" in skipped and "ex4data1.mat" in skipped
    assert "line 16: NameError: name 'weights' is not defined" in skipped
    assert callable(loaded.module.nnCostFunction) and loaded.module.input_layer_size == 400  # what did not fail ran


def test_a_missing_course_module_is_skipped_with_what_to_do_and_other_errors_still_fail_the_load(tmp_path):
    (tmp_path / "a.py").write_text("import numpy as np\nfrom cs231n.layers import softmax_loss\ndef f():\n    return 1\n")
    loaded = loader.load(str(tmp_path), "a.py", "wild2_missing")
    assert "line 2: ModuleNotFoundError: No module named 'cs231n' (not in the submission" in loaded.cell_errors[0]
    assert "submit that module's files with yours" in loaded.cell_errors[0]
    (tmp_path / "b.py").write_text("def f():\n    return 1\nraise RuntimeError('half done')\n")
    with pytest.raises(RuntimeError, match="half done"):
        loader.load(str(tmp_path), "b.py", "wild2_raise")


def test_a_module_of_a_package_is_found_below_the_top_level_and_imported_with_its_package():
    folder = WILD2 / "two_layer/assignment2"
    entry, why = loader.find_entry(str(folder), ["TwoLayerNet.loss", "two_layer_net"])
    assert entry == "cs231n/classifiers/fc_net.py" and "defines TwoLayerNet" in why
    _fresh("cs231n")
    loaded = loader.load(str(folder), entry, "fc_net")
    assert loaded.module.__name__ == "cs231n.classifiers.fc_net"  # so `from ..layers import *` works
    assert callable(loaded.module.affine_relu_forward) and "TwoLayerNet.loss" in loader.callables(loaded.module)
    _fresh("cs231n")


def test_a_folder_that_is_a_package_itself_imports_relatively_as_submission():
    folder = WILD2 / "ex4/package_folder"
    entry, _ = loader.find_entry(str(folder), ["nnCostFunction", "nn_cost_function"])
    assert entry == "nn_cost.py"
    _fresh("submission")
    loaded = loader.load(str(folder), entry, "nn_cost")
    assert loaded.module.__name__ == "submission.nn_cost" and callable(loaded.module.nn_cost_function)
    _fresh("submission")


def test_a_cost_and_a_gradient_function_with_the_same_parameters_are_paired(tmp_path):
    (tmp_path / "m.py").write_text("def costFunction(t, X, y, lam):\n    return 1.0\n"
                                   "def gradFunction(t, X, y, lam):\n    return [2.0]\n"
                                   "def gradOther(t, X):\n    return 0\n")
    loaded = loader.load(str(tmp_path), "m.py", "wild2_pair")
    assert "costFunction__and__gradFunction" in loader.callables(loaded.module)
    assert loaded.module.costFunction__and__gradFunction(0, 1, 2, 3) == (1.0, [2.0])
    assert not hasattr(loaded.module, "costFunction__and__gradOther")  # other parameters: not a pair


# ---- call forms read from the parameter names ----------------------------------------------------

def test_arguments_are_placed_by_their_names_in_any_order_with_defaults_or_keyword_only():
    first = rank_forms(_sig("nn_cost_function", "nn_params, X, y, input_layer_size=, hidden_layer_size=, num_labels=, lmbda="), EX4_FORMS)[0]
    assert first.name == "unrolled/nn_params,X,y,input_size,hidden_size,num_labels,lambda" and not first.keywords
    kw = rank_forms(_sig("nnCostFunction", "nn_params, X, y, *input_layer_size, *hidden_layer_size, *num_labels, *lambda_="), EX4_FORMS)
    assert [f.name for f in kw] == ["unrolled/nn_params,X,y,input_layer_size=input_size,hidden_layer_size=hidden_size,"
                                    "num_labels=num_labels,lambda_=lambda"]
    method = rank_forms(_sig("NeuralNetwork.cost_function", "nn_params, X, y, lambda_"), EX4_FORMS)
    assert [f.name for f in method] == ["unrolled/nn_params,X,y,lambda"]  # the sizes come from the instance
    assert rank_forms(_sig("nnCostFunction", "nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_"),
                      EX4_FORMS)[0].name == "unrolled"  # the classic signature: the classic form, nothing made up
    assert rank_forms(_sig("NN.backprop", "X, Y, lam"), EX4_FORMS) == []  # weights on self: nothing to pass them in
    assert [f.name for f in rank_forms(_sig("FullyConnectedNet.loss", "X, y="), TWO_LAYER_FORMS)] == ["class-reg"]


def test_a_form_made_from_names_travels_as_its_name_and_builds_the_same_call():
    from gradverify.profiles import get_profile

    prof = get_profile("ex4")
    name = "unrolled/nn_params,X,y,input_layer_size=input_size,lambda_=lambda"
    assert prof.resolve({"form": name})["form"] == name  # --set form=… accepts it
    problem = prof.fixed_cases(prof.resolve({}))[1][1]
    args, kwargs = ex4_call(problem, {"label_base": 1, "unroll_order": "F", "y_form": "vector"}, name)
    classic, _ = ex4_call(problem, {"label_base": 1, "unroll_order": "F", "y_form": "vector"}, "unrolled")
    assert np.array_equal(args[0], classic[0]) and np.array_equal(args[2], classic[5]) and kwargs == {"input_layer_size": 3, "lambda_": 3.0}
    for bad in ("unrolled/nn_params,os.system=X", "unrolled/bogus", "nope/X", "thetas/theta1,theta2,X,y,lambda=lambda"):
        assert form_named(EX4_FORMS, bad) is None or bad.endswith("lambda=lambda")
    assert form_named(EX4_FORMS, "unrolled/nn_params,os.system=X") is None


def test_gradients_returned_as_a_list_or_a_dict_of_the_two_matrices_are_read():
    from gradverify.profiles import ResultError, get_profile

    prof = get_profile("ex4")
    problem = prof.fixed_cases(prof.resolve({}))[0][1]
    s = {"label_base": 0, "unroll_order": "C", "y_form": "vector"}
    g1, g2 = np.arange(20.0).reshape(5, 4), np.arange(18.0).reshape(3, 6)
    _, flat = prof.read(problem, s, (1.0, np.concatenate([g1.ravel(), g2.ravel()])))
    apart = {**s, "form": "thetas-data"}  # Θ1 and Θ2 passed apart may come back apart
    for value in ((1.0, [g1, g2]), (1.0, {"Theta2": g2, "Theta1": g1}), (1.0, {"D1": g1, "D2": g2})):
        _, grads = prof.read(problem, apart, value)
        assert all(np.array_equal(grads[k], flat[k]) for k in flat)
    with pytest.raises(ResultError, match="shape"):
        prof.read(problem, apart, (1.0, [g2, g1]))
    with pytest.raises(ResultError, match="np.concatenate"):  # Θ passed unrolled must come back unrolled (an optimizer needs it)
        prof.read(problem, {**s, "form": "unrolled"}, (1.0, [g1, g2]))


def test_a_constructor_is_called_by_its_parameter_names_when_the_sizes_do_not_fit_positionally():
    sys.path.insert(0, str(Path(loader.__file__).parent))
    from gradverify.grading import _worker

    class FC:
        def __init__(self, hidden_dims, input_dim=3072, num_classes=10, reg=0.0, dtype=np.float32):
            self.dims, self.dtype = [input_dim, *hidden_dims, num_classes], dtype

    net = _worker._instance(FC, (3, 5, 2))
    assert net.dims == [3, 5, 2] and net.dtype == "float64"  # float64: float32 would drown the gradient in rounding


# ---- the corpus graded as a class, with no --set at all (the real CLI) ----------------------------------

@pytest.fixture(scope="module")
def wild2_batches(tmp_path_factory):
    from gradverify.cli import main

    out = tmp_path_factory.mktemp("wild2")
    runs = {}
    for folder, profile in FOLDERS.items():
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main(["grade", str(WILD2 / folder), "--assignment", profile, "--out", str(out / folder), "--examples", "3",
                         "--seed", "7", "--jobs", "2"])
        grades = {}
        for fb in (out / folder).glob("*/feedback.json"):
            data = json.loads(fb.read_text())
            grades[Path(data["path"]).name] = (data, fb.parent)
        runs[folder] = (code, buf.getvalue(), grades)
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e["path"])
def test_every_submission_of_the_second_corpus_gets_what_the_manifest_says(wild2_batches, entry):
    folder = entry["path"].split("/")[0]
    code, stdout, grades = wild2_batches[folder]
    assert "graded" in stdout and code == 1
    data, where = grades[Path(entry["path"]).name]
    failed = {c["name"]: c["message"] for c in data["checks"] if not c["passed"] and c["max_points"]}
    md = (where / "feedback.md").read_text()
    assert data["verdict"] == entry["verdict"], (data.get("detected"), failed)
    if entry["verdict"] == "pass":
        assert data["score"] == data["max_score"], failed
    else:
        assert data["score"] < data["max_score"]
    if "diagnosis" in entry:
        assert data["diagnosis"][0]["kind"] == entry["diagnosis"], data["diagnosis"][:2]
    if "item" in entry:
        assert [name for name in failed] == [entry["item"]], failed
    if "message" in entry:
        assert entry["message"].replace("_", "\\_").replace("(", "(") in md or entry["message"] in json.dumps(data), md[:3000]
    if "layout" in entry:
        settings = data["settings"]
        assert {k: settings[k] for k in entry["layout"]} == entry["layout"], data["detected"]
        assert settings["form"] == entry["form"] and settings["target"] == entry["target"], data["detected"]
        assert "How your code was called: Detected: " in md or entry["verdict"] != "pass"


@pytest.mark.slow
def test_an_ungradable_class_says_what_it_defines_and_which_flags_name_a_function(wild2_batches):
    data, where = wild2_batches["ex4"][2]["class_state.py"]
    loads = next(c for c in data["checks"] if c["name"] == "loads")
    assert "No function in class_state.py can be called the way the 'ex4' profile accepts" in loads["message"]
    assert "--set target=NN.backprop --set form=FORM (one of unrolled, thetas, thetas-data, data-thetas)" in loads["message"]
    assert "Your file defines: NN.g(z); NN.backprop(X, Y, lam)" in loads["details"]


@pytest.mark.slow
def test_the_feedback_says_how_each_file_was_read(wild2_batches):
    ex4 = wild2_batches["ex4"][2]

    def md(name):
        return (ex4[name][1] / "feedback.md").read_text()

    assert "Skipped while loading: line 9: FileNotFoundError" in md("script_loadmat.py")
    assert "mixes tabs and spaces" in md("latin1_tabs.py") and "is not UTF-8" in md("latin1_tabs.py")
    assert "print statement(s)" in md("latin1_tabs.py") and "division(s)" in md("latin1_tabs.py")
    assert "nnCostFunction\\_\\_and\\_\\_nnGradFunction" in md("cost_and_grad_apart.py")
    assert "call form 'unrolled/nn\\_params,X,y,input\\_size,hidden\\_size,num\\_labels,lambda' of nn\\_cost\\_function" \
        in md("sizes_as_defaults.py")


@pytest.mark.slow
def test_pinned_settings_are_honoured_and_a_wrong_pin_costs_marks(tmp_path):
    from gradverify.cli import main

    def grade(path, *sets):
        out = tmp_path / f"o{len(list(tmp_path.iterdir()))}"
        args = ["grade", str(WILD2 / path), "--assignment", "ex4", "--out", str(out), "--examples", "3", "--seed", "7"]
        for s in sets:
            args += ["--set", s]
        with contextlib.redirect_stdout(io.StringIO()):
            main(args)
        return json.loads(next(out.glob("*/feedback.json")).read_text())

    right = grade("ex4/sizes_as_defaults.py", "label_base=1", "unroll_order=F",
                  "form=unrolled/nn_params,X,y,input_size,hidden_size,num_labels,lambda")
    assert right["verdict"] == "pass" and "(pinned)" in right["detected"]
    wrong = grade("ex4/python2_matrix.py", "unroll_order=C")
    assert wrong["verdict"] == "fail" and wrong["settings"]["unroll_order"] == "C"


# ---- a student checks their own file the way it will be graded: verify and suite --candidate ----------

@pytest.mark.parametrize("candidate, words", [
    ("wild2/ex4/sizes_as_defaults.py:nn_cost_function",
     "candidate: Detected: label_base=1, unroll_order=F, y_form=vector, call form 'unrolled/nn_params,X,y,input_size"),
    ("wild2/ex4/python2_matrix.py:costFunction", "candidate: This file is Python 2: its 1 print statement(s) (line 32)"),
    ("wild/ex4/notebook.ipynb:nnCostFunction", "candidate: Skipped while loading: cell 4, line 2: FileNotFoundError"),
    ("wild2/ex4/package_folder:nn_cost_function", "call form 'unrolled' of nn_cost_function"),
    ("wild/ex4/separate_thetas.py:nnCostFunction", "call form 'thetas' of nnCostFunction"),
    ("wild2/ex4/cost_and_grad_apart.py:nnCostFunction__and__nnGradFunction", "label_base=1, unroll_order=F"),
])
def test_verify_loads_and_detects_a_candidate_as_grade_does(capsys, candidate, words):
    from gradverify.cli import main

    path = str(WILD2.parent / candidate)
    code = main(["verify", "3-5-3/sigmoid", "-m", "5", "--lambda", "1", "--sources", "exact", "--profile", "ex4", "--candidate", path])
    out = capsys.readouterr()
    assert code == 0, out.out[-2000:]
    assert words in out.err and "cost J" in out.out


def test_verify_names_the_bug_of_a_candidate_in_its_own_conventions(capsys):
    from gradverify.cli import main

    path = str(WILD2 / "ex4/bug_class_network.py") + ":NeuralNetwork.cost_function"
    code = main(["verify", "3-5-3/sigmoid", "-m", "5", "--lambda", "1", "--sources", "exact", "--profile", "ex4", "--candidate", path])
    out = capsys.readouterr()
    assert code == 1 and "The closest is label_base=1, unroll_order=C, y_form=vector with call form 'unrolled/nn_params,X,y,lambda'" in out.err
    assert "activation" in out.out.lower()


def test_pinned_settings_are_kept_and_a_pinned_wrong_convention_fails(capsys):
    from gradverify.cli import main

    path = str(WILD2 / "ex4/python2_matrix.py") + ":costFunction"
    base = ["verify", "3-5-3/sigmoid", "-m", "5", "--lambda", "1", "--sources", "exact", "--profile", "ex4", "--candidate", path]
    assert main(base + ["--set", "unroll_order=C", "--set", "label_base=1", "--set", "y_form=vector", "--set", "form=unrolled"]) == 1
    assert "Detected" not in capsys.readouterr().err  # everything pinned: nothing detected, the pin is honoured


def test_suite_prints_a_reproduce_command_with_the_detected_form(capsys):
    from gradverify.cli import main

    path = str(WILD2 / "ex4/bug_sizes_as_defaults.py") + ":nn_cost_function"
    code = main(["suite", "--candidate", path, "--profile", "ex4", "--examples", "3", "--seed", "1"])
    out = capsys.readouterr().out
    assert code == 1 and "--set form=unrolled/nn_params,X,y,input_size,hidden_size,num_labels,lambda --set label_base=1" in out


def test_a_candidate_path_may_be_a_notebook_or_a_folder_but_not_another_file(tmp_path):
    from gradverify.cli._args import candidate_text
    from gradverify.errors import InputError

    parse = candidate_text()
    assert parse(f"{WILD2 / 'ex4/package_folder'}:nn_cost_function")[1] == "nn_cost_function"
    assert parse(f"{WILD2.parent / 'wild/ex4/notebook.ipynb'}:nnCostFunction")[0].suffix == ".ipynb"
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises((InputError, SystemExit, Exception), match="Python source file"):
        parse(f"{tmp_path / 'a.txt'}:f")


def test_a_project_of_packages_or_relative_imports_is_one_submission_and_a_class_folder_is_not():
    from gradverify.grading.batch import discover

    def names(path):
        return [s.path.name for s in discover([WILD2 / path])]

    assert names("two_layer/assignment2") == ["assignment2"]  # only cs231n/, a package: the student's repository
    assert names("ex4/package_folder") == ["package_folder"]  # __init__.py, relative imports
    assert names("layers_api/layers_package") == ["layers_package"]
    assert len(names("ex4")) == len([e for e in MANIFEST if e["path"].startswith("ex4/")])  # a class: one row each


def test_a_file_left_with_nothing_of_its_own_by_a_failed_import_does_not_load(tmp_path):
    (tmp_path / "only.py").write_text("import definitely_not_installed\nX = 1\n")
    with pytest.raises(ModuleNotFoundError):  # the old failure, with its module name for --allow-package
        loader.load(str(tmp_path), "only.py", "wild2_only")


@pytest.mark.slow
def test_an_import_of_an_installed_package_outside_the_allow_list_names_the_option(tmp_path):
    from gradverify.grading.grader import grade_submission
    from gradverify.profiles import get_profile

    pytest.importorskip("hypothesis")
    src = (WILD2 / "ex4/keyword_only.py").read_text().replace("import numpy as np\n", "import numpy as np\nimport hypothesis\n", 1)
    (tmp_path / "uses_hypothesis.py").write_text(src)
    prof = get_profile("ex4")
    g = grade_submission(tmp_path / "uses_hypothesis.py", prof, prof.resolve({}), examples=2)
    assert g.verdict == "pass"  # the import is skipped; the function does not need it
    assert any("--allow-package hypothesis" in n for n in g.notes) and any("No module named 'hypothesis'" in n for n in g.notes)


def test_options_needing_a_convention_the_defaults_leave_out_come_after_all_others():
    """x_bias=given (X with its column of ones) is rare: those options come last, after every call form's usual
    ones, so a file with several call forms never spends its attempts budget on them first; the default leads."""
    from gradverify.grading.detect import options_for
    from gradverify.grading.loader import parameters
    from gradverify.profiles import get_profile

    def nnCostFunction(Theta1, Theta2, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_): ...

    def costFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_): ...

    options = options_for(get_profile("ex4"), {"nnCostFunction": parameters(nnCostFunction),
                                               "costFunction": parameters(costFunction)}, {})
    rare = [("x_bias" in settings) for _, _, settings in options]
    assert any(rare) and not rare[0] and rare == sorted(rare), rare
    assert {form for _, form, s in options if "x_bias" not in s} == {form for _, form, s in options if "x_bias" in s}
    assert options[0][2] == {"label_base": 0, "unroll_order": "C", "y_form": "vector"}
    pinned = options_for(get_profile("ex4"), {"costFunction": parameters(costFunction)}, {"x_bias": "given"})
    assert pinned and all(s["x_bias"] == "given" for _, _, s in pinned)
