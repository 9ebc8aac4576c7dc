"""Discrepancy reports: the JSON document and its schema, Markdown, self-contained HTML, plots, CLI."""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from gradverify import report
from gradverify.cli import main
from gradverify.compare import compare
from gradverify.problems import debug_problem, random_problem
from gradverify.report import (SCHEMA, batch_document, comparison_document, render_html, render_markdown, suite_document,
                               validate, write_report)
from gradverify.report import plots
from gradverify.spec import parse_spec
from gradverify.suite import SuiteRecord, SuiteResult

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "reports" / "example"
CANDIDATE = ROOT / "tests" / "examples" / "buggy_bias.py"
COMMAND = "gradverify verify 2-3-2 --candidate tests/examples/buggy_bias.py:cost_and_grad"


def _buggy():
    spec = importlib.util.spec_from_file_location("buggy_bias_example", CANDIDATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return lambda p: module.cost_and_grad(p.network, p.params, p.X, p.Y)


@pytest.fixture(scope="module")
def failing():
    """A small failing comparison: the candidate's b1 is m times too large."""
    problem = debug_problem(parse_spec("2-3-2", lam=1.0), m=4)
    return compare(problem, ("exact", "backprop"), candidates={"buggy": _buggy()})


@pytest.fixture(scope="module")
def doc(failing):
    return comparison_document(failing, command=COMMAND)


@pytest.fixture(scope="module")
def html_page(doc):
    return render_html(doc)


def _suite_result(failing) -> SuiteResult:
    records = [SuiteRecord("3-2", 8, 2, "random init, seed=1, scale=1", "pass", 0.02, 0.01),
               SuiteRecord("2-3-2", 17, 4, "debug init", "fail", 3.1e13, 0.02),
               SuiteRecord("4-2", 10, 1, "random init, seed=2, scale=30", "error", float("inf"), 0.0, "ValueError: bad")]
    return SuiteResult(seed=7, examples=3, records=records, failure=failing, seconds=0.05)


# ---- the document and its schema ----------------------------------------------------------------

def test_a_verify_document_validates_against_the_schema(doc):
    assert validate(doc) == []
    assert doc["schema_version"] == report.SCHEMA_VERSION and doc["kind"] == "verify" and doc["verdict"] == "fail"
    assert doc["command"] == COMMAND
    assert doc["reproduce"].startswith("gradverify verify 2-3-2 --lambda 1 -m 4")
    assert {"python", "platform", "packages"} <= set(doc["environment"])
    assert {"numpy", "sympy", "symengine", "gradverify"} <= set(doc["environment"]["packages"])


def test_the_document_holds_every_sources_values_errors_budgets_and_status(doc, failing):
    comp = doc["comparison"]
    assert len(comp["parameters"]) == len(failing.names)
    row = next(r for r in comp["parameters"] if r["name"] == "b1[0]")
    assert set(row["values"]) == {"exact", "backprop", "buggy"}
    assert set(row["ratio"]) == set(row["abs_err"]) == set(row["budgets"]) == set(row["rel_err"]) == {"backprop", "buggy"}
    assert row["status"]["buggy"] == "off" and row["status"]["backprop"] == "ok"
    assert comp["verdicts"]["buggy"]["arrays"]["b1"]["off"] == 3
    assert any("factor" in d["message"] for d in comp["diagnoses"]["buggy"])
    assert comp["layers"][0] == {"layer": 1, "theta": "Theta1", "weights": "W1", "bias": "b1", "shape": [3, 3]}


def test_the_document_is_strict_json_even_when_a_gradient_is_nan():
    problem = debug_problem(parse_spec("2-2-1"), m=3)

    def nan_grad(p):
        return 0.0, {k: np.full_like(v, np.nan) for k, v in p.params.items()}

    d = comparison_document(compare(problem, ("exact",), candidates={"nan": nan_grad}), command="gradverify verify 2-2-1")
    text = report.dumps(d)  # allow_nan=False: raises on a bare NaN
    assert "Infinity" in text
    assert validate(json.loads(text)) == []
    assert "∞" in render_markdown(d)


def test_a_suite_document_validates_and_carries_the_smallest_failure(failing):
    d = suite_document(_suite_result(failing), command="gradverify suite --seed 7")
    assert validate(d) == [], validate(d)
    assert d["kind"] == "suite" and d["verdict"] == "fail"
    assert d["suite"]["n_failed"] == 2 and d["suite"]["records"][2]["worst_ratio"] == "Infinity"
    assert d["comparison"]["problem"]["network"] == "2-3-2"
    assert d["reproduce"].startswith("gradverify verify 2-3-2")
    md = render_markdown(d)
    assert "The smallest failing case" in md and "ValueError: bad" in md
    assert "ratio-histogram" in render_html(d)


def test_a_passing_suite_has_no_comparison():
    result = SuiteResult(seed=1, examples=1, records=[SuiteRecord("3-2", 8, 2, "debug init", "pass", 0.1, 0.01)])
    d = suite_document(result, command="gradverify suite")
    assert validate(d) == [] and d["comparison"] is None and d["verdict"] == "pass"
    assert "PASS" in render_markdown(d)


def test_a_batch_document_validates_and_keeps_the_graders_extra_keys(doc, failing):
    entries = [{"name": "alice", "verdict": "pass", "score": 10, "max_score": 10, "diagnosis": [], "feedback": "well done"},
               {"name": "bob", "verdict": "fail", "score": 4, "max_score": 10, "diagnosis": ["b1 is off by a factor m = 4."],
                "comparison": failing},
               {"name": "carol", "verdict": "fail", "score": 3.5, "max_score": 10, "diagnosis": ["x"], "comparison": doc}]
    d = batch_document(entries, command="gradverify grade subs/", title="ex4")
    assert validate(d) == [], validate(d)
    assert d["verdict"] == "fail" and d["summary"] == "1 of 3 submissions pass."
    assert d["batch"]["entries"][0]["feedback"] == "well done"
    assert d["batch"]["entries"][2]["comparison"] == doc["comparison"]
    md = render_markdown(d)
    assert "| bob | fail | 4 / 10 | b1 is off by a factor m = 4. |" in md
    assert "score-histogram" in render_html(d)


def test_a_batch_entry_without_a_score_is_refused():
    with pytest.raises(ValueError, match="score"):
        batch_document([{"name": "dave", "verdict": "pass", "max_score": 1, "diagnosis": []}], command="c", title="t")


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d.pop("verdict"), "missing required key 'verdict'"),
    (lambda d: d["comparison"].pop("parameters"), "$.comparison: missing required key 'parameters'"),
    (lambda d: d["comparison"]["problem"].__setitem__("m", "five"), "$.comparison.problem.m: expected integer"),
    (lambda d: d["comparison"]["parameters"][0]["status"].__setitem__("buggy", "bad"), "expected one of 'ok', 'off', 'kink'"),
    (lambda d: d["comparison"]["parameters"][0]["ratio"].__setitem__("buggy", "lots"), "$.comparison.parameters[0].ratio.buggy"),
    (lambda d: d.__setitem__("kind", "poem"), "$.kind: expected one of"),
    (lambda d: d.__setitem__("created", 12), "$.created: expected string"),
    (lambda d: d["comparison"]["parameters"].pop(), "rows for"),
    (lambda d: d["comparison"]["verdicts"].pop("buggy"), "differ from the judged sources"),
    (lambda d: d.pop("comparison"), "missing required key 'comparison'"),
])
def test_the_validator_rejects_broken_documents(doc, breakage, message):
    broken = copy.deepcopy(doc)
    breakage(broken)
    problems = validate(broken)
    assert any(message in p for p in problems), problems


@pytest.mark.parametrize("version, message", [("2.0", "not supported"), ("1", "MAJOR.MINOR"), (1.0, "MAJOR.MINOR")])
def test_the_validator_rejects_another_schema_version(doc, version, message):
    problems = validate({**doc, "schema_version": version})
    assert len(problems) == 1 and message in problems[0]


def test_the_validator_accepts_a_later_minor_version_with_extra_keys(doc):
    assert validate({**doc, "schema_version": "1.7", "something_new": [1, 2]}) == []


@pytest.mark.parametrize("foreign", [[], "report", {"hello": "world"}, {"schema_version": "1.0"}])
def test_the_validator_says_a_foreign_document_is_not_a_report(foreign):
    problems = validate(foreign)
    assert len(problems) == 1 and ("not a gradverify report" in problems[0] or "JSON object" in problems[0])


def test_the_schema_is_valid_draft_2020_12_and_agrees_with_the_builtin_validator(doc, failing):
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed; the built-in validator is tested above")
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    jsonschema.Draft202012Validator(SCHEMA).validate(suite_document(_suite_result(failing), command="c"))
    entry = {"name": "bob", "verdict": "fail", "score": 4, "max_score": 10, "diagnosis": ["x"], "comparison": failing}
    jsonschema.Draft202012Validator(SCHEMA).validate(batch_document([entry], command="c", title="t"))
    broken = copy.deepcopy(doc)
    broken["comparison"]["problem"]["m"] = "five"
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(broken))


# ---- Markdown ---------------------------------------------------------------------------------

def test_the_markdown_shows_verdict_worst_entries_diagnosis_and_reproduction(doc):
    md = render_markdown(doc)
    assert md.startswith("# gradverify report: verify 2-3-2")
    assert "**FAIL** — buggy is wrong at 3 of 17 parameters" in md
    assert "## Worst entries" in md and "| b1[0] | Θ1[0,0] (bias) | buggy |" in md
    assert "b1 is off by a factor m = 4" in md
    assert "| buggy | b1 (bias column of Θ1) | 3 | 3 | 0 |" in md
    assert "```sh\n" + COMMAND + "\n```" in md
    assert "report schema 1.0" in md


def test_a_passing_report_lists_the_entries_closest_to_their_budget():
    comp = compare(random_problem(parse_spec("2-2-1"), m=2, seed=3), ("exact", "backprop"))
    md = render_markdown(comparison_document(comp, command="gradverify verify 2-2-1 --init random --seed 3 -m 2"))
    assert "**PASS**" in md and "## Entries closest to their budget" in md and "Nothing to diagnose" in md


# ---- HTML and plots ----------------------------------------------------------------------------

class _Checker(HTMLParser):
    VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "source", "wbr"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.imgs, self.urls = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href", "action", "poster", "data"):
            if key in attrs:
                self.urls.append(attrs[key])
        if tag == "img":
            self.imgs.append(attrs)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def _check(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    return checker


def test_the_html_is_self_contained_and_well_formed(html_page):
    checker = _check(html_page)
    assert checker.errors == [] and checker.stack == []
    assert html_page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html_page, re.I)
    assert "@import" not in html_page and "url(" not in html_page and "<script" not in html_page
    assert all(u.startswith("data:image/png;base64,") for u in checker.urls)
    assert checker.imgs
    for img in checker.imgs:
        assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        assert img["alt"]


def test_the_html_carries_the_markdown_content(html_page):
    assert 'class="verdict fail"' in html_page
    assert "b1 is off by a factor m = 4" in html_page
    assert "Θ1[0,0] (bias)" in html_page
    assert COMMAND in html_page


def test_there_is_one_heatmap_per_layer_and_judged_source_with_the_bias_as_column_0(doc, html_page):
    figs = plots.heatmaps(doc["comparison"])
    assert [f.key for f in figs] == ["heatmap-backprop-1", "heatmap-backprop-2", "heatmap-buggy-1", "heatmap-buggy-2"]
    assert all(f.png[:8] == b"\x89PNG\r\n\x1a\n" for f in figs)
    assert "3 entries off, 3 of them in the bias column" in figs[2].caption
    for f in figs:
        assert f'id="{f.key}"' in html_page
    # the Θ layout: column 0 holds the biases, columns 1.. the weights
    status = plots.theta_grid(doc["comparison"], "buggy", "status")[1]
    assert [row[0] for row in status] == ["off"] * 3
    assert all(s == "ok" for row in status for s in row[1:])
    values = plots.theta_grid(doc["comparison"], "exact", "values")[2]
    rows = {r["name"]: r["values"]["exact"] for r in doc["comparison"]["parameters"]}
    assert values[1][0] == rows["b2[1]"] and values[1][3] == rows["W2[1,2]"]


def test_the_step_curve_is_plotted_from_the_document(doc):
    section = copy.deepcopy(doc["comparison"])
    assert plots.step_curve(section) is None
    section["step_curve"] = {"name": "b1[0]", "steps": [1e-8, 1e-6, 1e-4], "errors": [1e-8, 1e-10, 1e-9],
                             "predicted": [2e-8, 2e-10, 2e-9], "best_step": 1e-6, "reference_source": "given"}
    d = {**doc, "comparison": section}
    assert validate(d) == []
    fig = plots.step_curve(section)
    assert fig.png[:4] == b"\x89PNG"
    assert 'id="step-curve"' in render_html(d) and "Finite differences at b1[0]" in render_markdown(d)


def test_without_matplotlib_the_html_says_what_is_missing(doc, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    page = render_html(doc)
    assert "Plots are not shown" in page and "matplotlib" in page and "<img" not in page
    assert _check(page).errors == []


# ---- writing and the command line --------------------------------------------------------------

def test_write_report_writes_json_markdown_and_html(doc, tmp_path):
    paths = write_report(doc, tmp_path / "r")
    assert [p.name for p in paths] == ["report.json", "report.md", "report.html"]
    assert json.loads(paths[0].read_text(encoding="utf-8")) == json.loads(report.dumps(doc))
    assert paths[1].read_text(encoding="utf-8") == render_markdown(doc)
    assert not list((tmp_path / "r").glob(".*.tmp"))


def test_write_report_refuses_an_invalid_document_and_writes_nothing(doc, tmp_path):
    with pytest.raises(ValueError, match="Not a valid gradverify report"):
        write_report({**doc, "schema_version": "9.0"}, tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_report_md_round_trips_through_the_command_line(doc, tmp_path, capsys):
    (tmp_path / "report.json").write_text(report.dumps(doc), encoding="utf-8")
    assert main(["report", str(tmp_path / "report.json"), "--format", "md"]) == 0
    assert capsys.readouterr().out == render_markdown(doc)
    assert main(["report", str(tmp_path), "--format", "html", "--out", str(tmp_path / "again.html")]) == 0
    assert _check((tmp_path / "again.html").read_text(encoding="utf-8")).errors == []


def test_report_schema_prints_the_json_schema(capsys):
    assert main(["report", "--schema"]) == 0
    assert json.loads(capsys.readouterr().out)["$schema"].endswith("2020-12/schema")


@pytest.mark.parametrize("content, message", [
    (None, "No such report"),
    ("{not json", "is not JSON"),
    ('{"hello": "world"}', "not a gradverify report"),
    ('{"schema_version": "2.0", "kind": "verify"}', "not supported"),
])
def test_bad_input_exits_2_with_a_message(tmp_path, capsys, content, message):
    path = tmp_path / "x.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert main(["report", str(path), "--format", "md"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradverify report: error:") and message in err


def test_verify_report_writes_a_report_with_a_step_curve(tmp_path, capsys):
    out = tmp_path / "rep"
    code = main(["verify", "2-3-2", "-m", "4", "--lambda", "1", "--sources", "exact,backprop",
                 "--candidate", f"{CANDIDATE}:cost_and_grad", "--report", str(out)])
    assert code == 1
    d = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert validate(d) == []
    assert d["comparison"]["verdicts"]["buggy_bias"]["n_off"] == 3
    if "step_curve" in d["comparison"]:  # once finite_diff.step_curve exists
        assert d["comparison"]["step_curve"]["name"].startswith("b1[")
    assert "report: " in capsys.readouterr().out


def test_the_report_writer_works_without_a_step_curve(failing, tmp_path, monkeypatch):
    from gradverify import finite_diff
    from gradverify.cli.report import write_comparison_report

    monkeypatch.delattr(finite_diff, "step_curve", raising=False)
    paths = write_comparison_report(failing, str(tmp_path / "r"), command="c")
    assert "step_curve" not in json.loads(paths[0].read_text(encoding="utf-8"))["comparison"]


def test_the_default_report_directory_is_named_after_the_spec():
    from gradverify.cli.report import default_dir

    assert default_dir("verify", "4-8-2:tanh/softmax") == Path("reports/verify-4-8-2-tanh-softmax")
    assert default_dir("verify", "3-5-3") == Path("reports/verify-3-5-3")


def test_the_public_api_is_exactly_what_all_lists():
    assert set(report.__all__) == {"SCHEMA_VERSION", "SCHEMA", "comparison_document", "suite_document", "batch_document",
                                   "attach_step_curve", "validate", "render_markdown", "render_html", "render", "dumps",
                                   "write_report"}
    assert all(hasattr(report, name) for name in report.__all__)


def test_the_report_package_imports_no_gradient_source():
    code = ("import sys, gradverify.report; "
            "bad = [m for m in ('gradverify.symbolic', 'gradverify.backprop', 'gradverify.finite_diff', 'gradverify.cli', "
            "'matplotlib') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT)}, check=True).stdout.strip()
    assert out == "[]"


# ---- the committed example ----------------------------------------------------------------------

def _strip_images(page: str) -> str:
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,…", page)


def test_the_committed_example_validates_and_re_renders_identically():
    d = json.loads((EXAMPLE / "report.json").read_text(encoding="utf-8"))
    assert validate(d) == []
    assert d["command"] == "gradverify verify --candidate tests/examples/buggy_bias.py:cost_and_grad --report reports/example"
    assert (EXAMPLE / "report.md").read_text(encoding="utf-8") == render_markdown(d)
    # images depend on the matplotlib version; everything else must match exactly
    assert _strip_images((EXAMPLE / "report.html").read_text(encoding="utf-8")) == _strip_images(render_html(d))
    assert d["comparison"]["verdicts"]["buggy_bias"]["arrays"]["b1"]["off"] == 5


# ---- in a real browser --------------------------------------------------------------------------

_PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images', imgs.length + '/' + ok);
});
</script>"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.browser
def test_the_html_loads_in_headless_chromium_with_every_image(html_page, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium installed (apt-get install chromium) to render report.html")
    page = tmp_path / "report.html"
    page.write_text(html_page.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    n = html_page.count("<img ")
    assert f'data-images="{n}/{n}"' in dom, dom[-2000:]
    assert "b1 is off by a factor m = 4" in dom
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *flags, "--hide-scrollbars", "--window-size=1280,1600", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120)
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


# ---- in proportion: a large problem's report is a summary, its values a compressed sidecar ------------

def test_a_large_problems_report_is_summarized_and_every_value_goes_to_a_compressed_sidecar(tmp_path, capsys):
    out = tmp_path / "big"
    values = tmp_path / "values.npz"
    argv = ["verify", "60-40-10", "--init", "random", "--sources", "backprop,numeric", "--report", str(out), "--values", str(values)]
    assert main(argv) == 0
    capsys.readouterr()
    doc = json.loads((out / "report.json").read_text())
    shown = doc["comparison"]["parameters_shown"]
    P = doc["comparison"]["problem"]["n_params"]
    assert P == 2850 and shown["complete"] is False and shown["rows"] == len(doc["comparison"]["parameters"]) <= 200
    assert shown["values_file"] == str(values) and set(doc["comparison"]["heatmaps"]) == {"numeric"}
    assert (out / "report.json").stat().st_size < 400_000 and not report.validate(doc)
    with np.load(values) as arrays:
        assert arrays["value/backprop"].shape == (P,) and arrays["status/numeric"].shape == (P,) and arrays["names"][0] == "W1[0,0]"
    assert "heatmap" in (out / "report.html").read_text()


def test_report_needs_a_format_or_a_file_and_never_dumps_html_on_a_terminal(doc, tmp_path, capsys):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(doc))
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Say which format" in err and "--format html|md|json" in err
    assert main(["report", str(path), "--out", str(tmp_path / "page.html")]) == 0
    assert (tmp_path / "page.html").read_text().startswith("<!DOCTYPE html>")
    assert main(["report", str(path), "--out", str(tmp_path / "page.txt")]) == 2
    assert "Cannot tell the format" in capsys.readouterr().err
    assert main(["report", str(path), "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("#")


def test_the_committed_example_is_what_the_current_code_writes(tmp_path, monkeypatch, capsys):
    """reports/example is regenerated by its command (reports/README.md), never edited: a change of wording
    or of the oracle (it said "evaluated at 35 digits" long after the oracle certified 52) must show here."""
    monkeypatch.chdir(ROOT)
    out = tmp_path / "example"
    assert main(["verify", "--candidate", "tests/examples/buggy_bias.py:cost_and_grad", "--report", str(out)]) == 1
    capsys.readouterr()

    def stable(text: str) -> list[str]:  # all but the command's folder and the creation stamp
        return [line for line in text.splitlines() if not line.startswith(("gradverify verify --candidate", "Created "))]

    committed = (EXAMPLE / "report.md").read_text(encoding="utf-8")
    assert stable((out / "report.md").read_text(encoding="utf-8")) == stable(committed), (
        "reports/example is stale: regenerate it with the command in reports/README.md")
