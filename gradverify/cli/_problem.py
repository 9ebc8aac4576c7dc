"""Options shared by the commands that build a problem: spec, λ, m, init, seed, scale, --npz, candidates."""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
import zipfile
from pathlib import Path

import numpy as np

from gradverify.errors import InputError, SpecError
from gradverify.problems import debug_problem, random_problem
from gradverify.profiles import Profile, get_profile, local_candidate
from gradverify.spec import REGULARIZATIONS, Network, Origin, Problem, load_spec_file, make_problem, parse_spec

DEFAULT_SPEC = "3-5-3"


def add_problem_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", nargs="?", help='network: a compact spec such as "3-5-3" or "4-8-8-2:tanh/softmax", or a .toml/.json spec file '
                   f"(default: the lecture's debug network {DEFAULT_SPEC})")
    p.add_argument("--lambda", dest="lam", type=float, default=None, metavar="L", help="regularization strength λ (default 3 for the debug example, else 0)")
    p.add_argument("--reg", choices=list(REGULARIZATIONS), default=None, help="regularization scaling (default lambda/2m: λ/(2m)·ΣW²)")
    p.add_argument("--reg-bias", action="store_true", default=None, help="regularize the biases too")
    p.add_argument("-m", type=int, default=5, metavar="M", help="batch size (default 5)")
    p.add_argument("--init", choices=("debug", "random"), default=None, help="parameters and data: the classic debug fill (default) or seeded random")
    p.add_argument("--seed", type=int, default=0, help="random seed for --init random (default 0)")
    p.add_argument("--scale", type=float, default=1.0, help="parameter scale for --init random; 30 or more saturates units (default 1)")
    p.add_argument("--all-classes", action="store_true", help="--init random: every class occurs at least once (needs m ≥ classes)")
    p.add_argument("--npz", type=Path, metavar="FILE", help="your own parameters and data: W1, b1, … (Wk of shape (n_k, n_{k-1})), X (m, n0), and Y (m, n_L) or y (labels 0..K-1)")


def add_candidate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--candidate", metavar="FILE.py:FUNCTION", help="also check your own gradient function (trusted code, run in-process)")
    p.add_argument("--profile", default="native", help="how the candidate is called: native, ex4, layers, two-layer-relu, or a .toml profile (default native: "
                   "f(network, params, X, Y) -> (J, grads))")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE", help="profile setting, e.g. unroll_order=F (repeatable)")


def network_from_args(args) -> tuple[Network, bool]:
    """The network of the command line, and whether it is the built-in default example."""
    options = {}
    if args.reg is not None:
        options["reg"] = args.reg
    if args.reg_bias:
        options["reg_bias"] = True
    default = args.spec is None and args.npz is None
    if args.spec and (args.spec.endswith((".toml", ".json")) or Path(args.spec).is_file()):
        net = load_spec_file(args.spec)
        if options:
            net = net.with_(**options)
        if args.lam is not None:
            net = net.with_(lam=args.lam)
        return net, False
    spec = args.spec or DEFAULT_SPEC
    lam = args.lam if args.lam is not None else (3.0 if default else 0.0)
    return parse_spec(spec, lam=lam, **options), default


def _infer_network(data: dict, args) -> Network:
    L = 0
    while f"W{L + 1}" in data:
        L += 1
    if L == 0:
        raise InputError(f"{args.npz} holds no W1", expected="arrays W1, b1, W2, b2, … with Wk of shape (n_k, n_{k-1}), X, and Y or y",
                         received="keys " + ", ".join(sorted(data)), fix="save them with np.savez(file, W1=..., b1=..., X=..., y=...) or pass a SPEC")
    sizes = [np.shape(data["W1"])[1] if np.ndim(data["W1"]) == 2 else -1] + [np.shape(data[f"W{k}"])[0] for k in range(1, L + 1)]
    if sizes[0] < 0:
        raise InputError("W1 in the npz file is not a matrix", expected="shape (n1, n0)", received=f"shape {np.shape(data['W1'])}")
    return Network(tuple(sizes), (), "sigmoid", lam=args.lam or 0.0, reg=args.reg or "lambda/2m", reg_bias=bool(args.reg_bias))


def load_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise InputError(f"No such file: {path}", fix="check the --npz path") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"Cannot read {path} as an .npz file", received=str(exc), fix="save it with numpy.savez (no pickled objects)") from None


def problem_from_args(args) -> tuple[Problem, bool]:
    """Build the problem the command line describes; the flag says it is the default example."""
    if args.m < 1:
        raise InputError("-m must be at least 1", expected="a batch size ≥ 1", received=str(args.m))
    if args.npz is not None:
        data = load_npz(args.npz)
        net = network_from_args(args)[0] if args.spec else _infer_network(data, args)
        names = [n for n, _ in net.param_shapes]
        missing = [k for k in names + ["X"] if k not in data]
        if missing or ("Y" not in data and "y" not in data):
            raise InputError(f"{args.npz} is missing {', '.join(missing + ([] if ('Y' in data or 'y' in data) else ['Y or y']))}",
                             expected="keys " + ", ".join(names) + ", X, and Y (targets) or y (labels 0..K-1)",
                             received="keys " + ", ".join(sorted(data)), fix="add the missing arrays, or check the SPEC matches the file")
        params = {k: data[k] for k in names}
        return make_problem(net, params, data["X"], data.get("Y"), y=data.get("y") if "Y" not in data else None,
                            origin=Origin("npz", path=str(args.npz))), False
    net, default = network_from_args(args)
    if args.init == "random":
        if not (args.scale > 0):
            raise InputError("--scale must be positive", received=str(args.scale))
        return random_problem(net, m=args.m, seed=args.seed, scale=args.scale, all_classes=args.all_classes), False
    return debug_problem(net, m=args.m), default


def parse_settings(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise SpecError(f"Cannot read the setting {pair!r}", expected="KEY=VALUE, e.g. unroll_order=F", received=pair)
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def load_module(path: Path, what: str = "candidate") -> dict:
    """Import a trusted Python file and return its namespace."""
    if not path.is_file():
        raise InputError(f"No such {what} file: {path}", fix="give FILE.py:FUNCTION with an existing file")
    spec = importlib.util.spec_from_file_location(f"_gradverify_{what}_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise InputError(f"The {what} file {path} raised {type(exc).__name__} while importing", received=str(exc),
                         fix="run it with python to see the traceback") from None
    return vars(module)


@dataclass(frozen=True)
class Candidate:
    """A trusted candidate from --candidate FILE.py:FUNCTION, wrapped as ``fn(problem) -> (J, grads)``."""

    fn: Callable
    label: str  # the file's stem, the column name in tables
    text: str   # FILE.py:FUNCTION as given, for reproduce commands


def profile_from_args(args) -> tuple[Profile, dict]:
    """The --profile and its --set settings, validated."""
    profile = get_profile(args.profile)
    return profile, profile.resolve(parse_settings(args.settings))


def candidate_from_args(args, profile: Profile, settings: dict) -> Candidate | None:
    """The --candidate, called as ``profile`` says, or None when there is none."""
    if not getattr(args, "candidate", None):
        return None
    path_text, _, func = args.candidate.rpartition(":")
    if not path_text or not func:
        raise InputError(f"Cannot read --candidate {args.candidate!r}", expected="FILE.py:FUNCTION (or FILE.py:Class.method)",
                         received=args.candidate, fix="add the function name after a colon")
    settings = {**settings, "target": func}
    fn = local_candidate(load_module(Path(path_text)), profile, settings)
    return Candidate(fn, Path(path_text).stem, args.candidate)
