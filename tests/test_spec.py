"""Network specs, the compact grammar, spec files, problem validation, layouts."""

import json
import re

import numpy as np
import pytest

from gradverify.errors import InputError, SpecError
from gradverify.params import Layout, flatten, from_theta, scalar_names, to_theta, unflatten
from gradverify.problems import debug_fill, debug_problem, random_problem
from gradverify.spec import Network, load_spec_file, make_problem, parse_spec


@pytest.mark.parametrize("text, sizes, acts, output", [
    ("3-5-3", (3, 5, 3), ("sigmoid",), "sigmoid"),
    ("4-8-8-2:tanh/softmax", (4, 8, 8, 2), ("tanh", "tanh"), "softmax"),
    ("4-8-8-2:relu,tanh", (4, 8, 8, 2), ("relu", "tanh"), "sigmoid"),
    ("10-1/identity", (10, 1), (), "identity"),
    ("10-3/mse", (10, 3), (), "identity"),
    (" 2 - 3 - 2 : softplus / ce ", (2, 3, 2), ("softplus",), "softmax"),
])
def test_compact_specs_parse_into_the_network_they_describe(text, sizes, acts, output):
    net = parse_spec(text)
    assert (net.sizes, net.activations, net.output) == (sizes, acts, output)
    assert parse_spec(net.compact) == net  # the compact form round-trips


@pytest.mark.parametrize("text, words", [
    ("3x5", "Cannot parse"), ("3", "Cannot parse"), ("3-5-3:swish", "Unknown activation 'swish'"),
    ("3-5-3/hinge", "Unknown output"), ("3-5-5-3:tanh,relu,tanh", "does not match"), ("3-1/softmax", "at least two classes"),
    ("3-0-2", "positive integer"), ("3-2:tanh", "no hidden layer"),
])
def test_bad_compact_specs_say_what_was_expected(text, words):
    with pytest.raises(SpecError, match=words) as info:
        parse_spec(text)
    assert "Expected" in str(info.value) or "Fix" in str(info.value)


def test_regularization_conventions_give_the_documented_coefficients():
    m = 5
    assert parse_spec("2-2", lam=3).reg_coefficient(m) == pytest.approx(3 / 10)
    assert parse_spec("2-2", lam=3, reg="lambda").reg_coefficient(m) == 3
    assert parse_spec("2-2", lam=3, reg="lambda/2").reg_coefficient(m) == 1.5
    with pytest.raises(SpecError, match="λ must be"):
        parse_spec("2-2", lam=-1)
    net = parse_spec("2-3-2", lam=1)
    assert net.is_regularized("W1") and not net.is_regularized("b1")
    assert net.with_(reg_bias=True).is_regularized("b1")
    assert not parse_spec("2-3-2").is_regularized("W1")


def test_spec_files_in_toml_and_json_build_the_same_network(tmp_path):
    (tmp_path / "n.toml").write_text('network = "4-6-2:tanh/softmax"\nlambda = 1.5\nregularization = "lambda"\nregularize_bias = true\n')
    (tmp_path / "n.json").write_text(json.dumps({"sizes": [4, 6, 2], "activations": "tanh", "output": "softmax",
                                                  "lambda": 1.5, "regularization": "lambda", "regularize_bias": True}))
    a, b = load_spec_file(tmp_path / "n.toml"), load_spec_file(tmp_path / "n.json")
    assert a == b == Network((4, 6, 2), ("tanh",), "softmax", 1.5, "lambda", True)
    (tmp_path / "bad.toml").write_text('network = "4-6-2"\nlamda = 1\n')
    with pytest.raises(SpecError, match="Unknown key.*lamda"):
        load_spec_file(tmp_path / "bad.toml")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_spec_file(tmp_path / "broken.json")


def test_the_debug_fill_is_matlab_column_major_sine_over_ten():
    W = debug_fill(2, 3)
    assert W[1, 0] == pytest.approx(np.sin(2) / 10) and W[0, 1] == pytest.approx(np.sin(3) / 10)
    p = debug_problem()
    assert p.m == 5 and list(p.labels) == [1, 2, 0, 1, 2]  # 1 + (i mod 3) in MATLAB's 1-based labels
    assert p.params["b1"][0] == pytest.approx(np.sin(1) / 10) and p.params["W1"][0, 0] == pytest.approx(np.sin(6) / 10)


def test_random_problems_are_reproducible_and_scale_saturates():
    net = parse_spec("6-5-3:tanh")
    a, b = random_problem(net, m=4, seed=7), random_problem(net, m=4, seed=7)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params) and np.array_equal(a.X, b.X)
    big = random_problem(net, m=4, seed=7, scale=50)
    pre = big.X @ big.params["W1"].T + big.params["b1"]
    assert np.max(np.abs(pre)) > 20  # far into tanh's flat tails


def test_make_problem_rejects_bad_data_with_a_fix():
    net = parse_spec("3-5-3")
    p = debug_problem()
    with pytest.raises(InputError, match="W1 has the wrong shape.*transpose"):
        make_problem(net, {**p.params, "W1": p.params["W1"].T}, p.X, y=p.labels)
    with pytest.raises(InputError, match="NaN or infinite"):
        make_problem(net, {**p.params, "b2": np.array([0, np.nan, 0])}, p.X, y=p.labels)
    with pytest.raises(InputError, match="Labels out of range.*subtracting 1"):
        make_problem(net, p.params, p.X, y=p.labels + 1 + (p.labels == 0) * 2)
    with pytest.raises(InputError, match="missing W2"):
        make_problem(net, {k: v for k, v in p.params.items() if k != "W2"}, p.X, y=p.labels)
    with pytest.raises(InputError, match="X has the wrong shape.*one example per column"):
        make_problem(net, p.params, p.X.T[:, :5].T.T, y=p.labels) if False else make_problem(net, p.params, p.X.T, y=p.labels[:3])
    with pytest.raises(InputError, match="exactly one of Y"):
        make_problem(net, p.params, p.X)


def test_the_problem_copies_its_inputs():
    p = debug_problem()
    W = p.params["W1"].copy()
    q = make_problem(p.network, {k: v for k, v in p.params.items()}, p.X, y=p.labels)
    q.params["W1"][0, 0] += 1
    assert p.params["W1"][0, 0] == W[0, 0]


@pytest.mark.parametrize("layout", [Layout("Wb", "C"), Layout("Wb", "F"), Layout("theta", "C"), Layout("theta", "F")])
def test_every_layout_round_trips_and_names_every_scalar(layout):
    p = random_problem(parse_spec("3-4-2"), seed=1)
    vec = flatten(p.params, p.network, layout)
    back = unflatten(vec, p.network, layout)
    assert all(np.array_equal(back[k], p.params[k]) for k in p.params)
    names = scalar_names(p.network, layout)
    assert len(names) == len(set(names)) == vec.size == p.network.n_params
    # the name says where the number lives
    name = names[7]
    arr, idx = name[:-1].split("[")
    arrays = to_theta(p.params) if layout.kind == "theta" else p.params
    assert arrays[arr][tuple(int(i) for i in idx.split(","))] == vec[7]


def test_theta_keeps_the_bias_as_column_zero():
    p = debug_problem()
    th = to_theta(p.params)
    assert th["Theta1"].shape == (5, 4) and np.array_equal(th["Theta1"][:, 0], p.params["b1"])
    assert scalar_names(p.network, Layout("theta"))[:2] == ["Theta1[0,0]", "Theta1[0,1]"]
    assert all(np.array_equal(from_theta(th)[k], p.params[k]) for k in p.params)
    with pytest.raises(InputError, match="wrong size"):
        unflatten(np.zeros(37), p.network)


# ---- spec files are checked against their types: never a truthy string, never True as 1 -------------

@pytest.mark.parametrize("text, words", [
    ('network = "3-5-3"\nregularize_bias = "false"\n', "regularize_bias"),
    ('network = "3-5-3"\nlambda = "3"\n', "'lambda'"),
    ('network = "3-5-3"\nlambda = true\n', "True (a boolean)"),
    ('sizes = [3, "5", 3]\n', "positive integer"),
    ('sizes = [3, 5.0, 3]\n', "positive integer"),
    ('sizes = "3-5-3"\n', "'sizes'"),
    ('network = 353\n', "'network'"),
    ('network = "3-5-3"\nactivations = [1]\n', "activations must be a name or a list of names"),
    ('network = "3-5-3"\nregularization = 2\n', "'regularization'"),
])
def test_a_spec_file_value_of_the_wrong_type_is_an_error(text, words, tmp_path):
    (tmp_path / "n.toml").write_text(text)
    with pytest.raises(SpecError, match=re.escape(words)):
        load_spec_file(tmp_path / "n.toml")


@pytest.mark.parametrize("kwargs, words", [
    (dict(lam=True), "λ must be a finite number"), (dict(lam="3"), "λ must be"), (dict(reg_bias="false"), "true or false"),
    (dict(reg_bias=1), "true or false"), (dict(reg=3), "Unknown regularization"),
])
def test_the_network_itself_refuses_values_that_would_be_silently_converted(kwargs, words):
    with pytest.raises(SpecError, match=re.escape(words)):
        parse_spec("3-5-3", **kwargs)


@pytest.mark.parametrize("bad, words", [
    (lambda a: a + 1e-3j, "holds complex numbers"), (lambda a: a.astype(str), "not an array of numbers"),
    (lambda a: a.astype(object), "not an array of numbers"),
])
def test_make_problem_refuses_complex_text_and_objects_instead_of_converting_them(bad, words):
    p = debug_problem()
    with pytest.raises(InputError, match=words):
        make_problem(p.network, {**p.params, "W1": bad(p.params["W1"])}, p.X, y=p.labels)


def test_a_spec_file_with_another_ending_or_a_folder_is_refused(tmp_path):
    (tmp_path / "n.yaml").write_text("network: 3-5-3\n")
    with pytest.raises(SpecError, match="unknown format"):
        load_spec_file(tmp_path / "n.yaml")
    with pytest.raises(SpecError, match="is a folder"):
        load_spec_file(tmp_path)
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SpecError, match="not valid JSON"):
        load_spec_file(tmp_path / "deep.json")


@pytest.mark.parametrize("text, words", [
    ('base = "ex4"\n[settings]\nlabel_base = "1"\n', "settings.label_base"),
    ('base = "ex4"\nmax_width = "5"\n', "max_width"),
    ('base = "ex4"\n[rubric]\ncost = true\n', "rubric.cost"),
    ('base = 4\n', "base"),
])
def test_a_profile_file_value_of_the_wrong_type_is_an_error(text, words, tmp_path):
    from gradverify.profiles import load_profile

    (tmp_path / "p.toml").write_text(text)
    with pytest.raises(SpecError, match=re.escape(words)):
        load_profile(tmp_path / "p.toml")
