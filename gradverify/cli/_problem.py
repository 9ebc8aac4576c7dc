"""Options shared by the commands that build a problem: spec, λ, m, init, seed, scale, --npz, candidates.

Every option is declared with its checker from ``_args`` (one validation layer); combinations are
checked here: options that would be silently ignored (``--seed`` without ``--init random``,
``--init``/``--seed``/``--scale``/``-m`` beside ``--npz``) are errors, and the size of the run is
checked against the machine's memory before any array is made (``guard``).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gradverify.cli._args import candidate_text, in_file, integer, number, seed
from gradverify.cli._common import warn
from gradverify.cli._npz import NpzFile, open_npz
from gradverify.errors import InputError, SpecError
from gradverify.problems import debug_problem, random_problem
from gradverify.profiles import Profile, get_profile
from gradverify.spec import REGULARIZATIONS, Network, Origin, Problem, load_spec_file, make_problem, parse_spec

DEFAULT_SPEC = "3-5-3"

Guard = Callable[[Network, int], None]


def add_problem_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", nargs="?", help='network: a compact spec such as "3-5-3" or "4-8-8-2:tanh/softmax", or a .toml/.json spec file '
                   f"(default: the lecture's debug network {DEFAULT_SPEC})")
    p.add_argument("--lambda", dest="lam", type=number("--lambda", lo=0), default=None, metavar="L",
                   help="regularization strength λ ≥ 0 (default 3 for the debug example, else 0)")
    p.add_argument("--reg", choices=list(REGULARIZATIONS), default=None, help="regularization scaling (default lambda/2m: λ/(2m)·ΣW²)")
    p.add_argument("--reg-bias", action="store_true", default=None, help="regularize the biases too")
    p.add_argument("-m", type=integer("-m", lo=1, fix="a batch holds at least one example"), default=None, metavar="M",
                   help="batch size, at least 1 (default 5; with --npz, the rows of X)")
    p.add_argument("--init", choices=("debug", "random"), default=None, help="parameters and data: the classic debug fill (default) or seeded random")
    p.add_argument("--seed", type=seed(), default=None, help="random seed for --init random, 0 to 2^32-1 (default 0)")
    p.add_argument("--scale", type=number("--scale", lo=0, lo_open=True, hi=1e6), default=None,
                   help="parameter scale for --init random, > 0; 30 or more saturates units (default 1)")
    p.add_argument("--all-classes", action="store_true", default=None,
                   help="--init random: every class occurs at least once (needs m ≥ classes)")
    p.add_argument("--npz", type=in_file("--npz", ".npz file"), metavar="FILE",
                   help="your own parameters and data: W1, b1, … (Wk of shape (n_k, n_{k-1})), X (m, n0), and Y (m, n_L) or y (labels 0..K-1)")


def add_candidate_options(p: argparse.ArgumentParser, *, timeout_help: str = "") -> None:
    p.add_argument("--candidate", type=candidate_text(), metavar="FILE.py:FUNCTION",
                   help="also check your own gradient function (trusted code, run in a separate process)")
    p.add_argument("--profile", default="native", help="how the candidate is called: native, ex4, layers, two-layer-relu, or a .toml profile (default native: "
                   "f(network, params, X, Y) -> (J, grads))")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE", help="profile setting, e.g. unroll_order=F (repeatable)")
    p.add_argument("--timeout", type=number("--timeout", lo=0, lo_open=True, hi=1e6), default=None, metavar="SECONDS",
                   help="wall-clock limit of one call of the candidate; it is stopped after it "
                   + (timeout_help or "(default 60, more for large problems)"))


# ---- the network and the problem ----------------------------------------------------------------

def _is_spec_file(text: str) -> bool:
    """A spec file: named .toml/.json, or an existing path (a compact spec like 4-8-2/softmax is neither)."""
    return text.lower().endswith((".toml", ".json")) or Path(text).exists()


def network_from_args(args) -> tuple[Network, bool]:
    """The network of the command line, and whether it is the built-in default example."""
    options = {}
    if args.reg is not None:
        options["reg"] = args.reg
    if args.reg_bias:
        options["reg_bias"] = True
    default = args.spec is None and args.npz is None
    if args.spec and _is_spec_file(args.spec):
        net = load_spec_file(args.spec)
        if options:
            net = net.with_(**options)
        if args.lam is not None:
            net = net.with_(lam=args.lam)
        return net, False
    spec = args.spec or DEFAULT_SPEC
    lam = args.lam if args.lam is not None else (3.0 if default else 0.0)
    return parse_spec(spec, lam=lam, **options), default


def _check_combinations(args) -> None:
    """Options that would be silently ignored are errors: say which, and what to do."""
    if args.npz is not None:
        clash = [f"--{name.replace('_', '-')}" for name in ("init", "seed", "scale", "all_classes") if getattr(args, name, None) is not None]
        if clash:
            raise InputError(f"--npz brings its own parameters and data, so {', '.join(clash)} would be ignored",
                             expected="--npz FILE alone, or generated parameters (--init, --seed, --scale) without --npz",
                             received=" ".join(clash) + f" with --npz {args.npz}", fix=f"drop {', '.join(clash)}")
        return
    if args.init != "random":
        clash = [f"--{name.replace('_', '-')}" for name in ("seed", "scale", "all_classes") if getattr(args, name, None) is not None]
        if clash:
            raise InputError(f"{' and '.join(clash)} appl{'y' if len(clash) > 1 else 'ies'} only to --init random",
                             expected="--init random with --seed/--scale/--all-classes", received=f"{' '.join(clash)} with --init {args.init or 'debug'}",
                             fix="add --init random (or drop " + " ".join(clash) + ")")


def problem_from_args(args, *, guard: Guard | None = None) -> tuple[Problem, bool]:
    """Build the problem the command line describes; the flag says it is the default example.

    ``guard(network, m)`` is called before any array is made (the size check).
    """
    _check_combinations(args)
    if args.npz is not None:
        return _problem_from_npz(args, guard), False
    net, default = network_from_args(args)
    m = args.m if args.m is not None else 5
    if guard is not None:
        guard(net, m)
    if args.init == "random":
        return random_problem(net, m=m, seed=args.seed or 0, scale=args.scale if args.scale is not None else 1.0,
                              all_classes=bool(getattr(args, "all_classes", None))), False
    return debug_problem(net, m=m), default


def _infer_network(npz: NpzFile, args) -> Network:
    """The lecture's sigmoid network with the sizes the arrays have (no SPEC given)."""
    L = 0
    while f"W{L + 1}" in npz.shapes:
        L += 1
    if L == 0:
        lower = [k for k in npz.shapes if k.lower() == "w1"]
        raise InputError(f"{npz.path} holds no W1", expected="arrays W1, b1, W2, b2, … with Wk of shape (n_k, n_{k-1}), X, and Y or y",
                         received="keys " + (", ".join(sorted(npz.shapes)) or "none"),
                         fix=("names are case-sensitive: rename w1 to W1" if lower else
                              "save them with np.savez(file, W1=..., b1=..., X=..., y=...) or pass a SPEC"))
    shapes = [npz.shapes[f"W{k}"] for k in range(1, L + 1)]
    if any(len(s) != 2 for s in shapes):
        bad = next(k for k, s in enumerate(shapes, 1) if len(s) != 2)
        raise InputError(f"W{bad} in {npz.path} is not a matrix", expected="shape (n_k, n_{k-1})", received=f"shape {shapes[bad - 1]}",
                         fix="save each weight matrix as a 2-D array")
    sizes = (shapes[0][1],) + tuple(s[0] for s in shapes)
    net = Network(sizes, (), "sigmoid", lam=args.lam or 0.0, reg=args.reg or "lambda/2m", reg_bias=bool(args.reg_bias))
    warn(f"no SPEC given: {npz.path} is read as the lecture's network {net.compact} (sigmoid units and outputs, cross-entropy); "
         "pass a SPEC such as 4-8-2:tanh/softmax to say otherwise")
    return net


def _targets(npz: NpzFile, net: Network, m: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Y or y from the file; both present must agree (else an error), and then Y is used, with a warning."""
    if "Y" not in npz.shapes and "y" not in npz.shapes:
        return None, None
    Y = npz.load("Y") if "Y" in npz.shapes else None
    y = npz.load("y") if "y" in npz.shapes else None
    if Y is None or y is None:
        return Y, y
    from_labels = make_problem(net, {n: np.zeros(s) for n, s in net.param_shapes}, np.zeros((m, net.sizes[0])), y=y).Y
    if Y.shape != from_labels.shape or not np.array_equal(Y.astype(np.float64), from_labels):
        raise InputError(f"{npz.path} holds both Y and y, and they disagree", expected="one of them, or Y equal to the one-hot form of y",
                         received=f"Y of shape {Y.shape}, y of shape {y.shape} with different targets",
                         fix="keep the one you mean (np.savez without the other)")
    warn(f"{npz.path} holds both Y and y; they agree, and Y is used")
    return Y, None


def _problem_from_npz(args, guard: Guard | None) -> Problem:
    npz = open_npz(args.npz)
    net = network_from_args(args)[0] if args.spec else _infer_network(npz, args)
    names = [n for n, _ in net.param_shapes]
    have_targets = "Y" in npz.shapes or "y" in npz.shapes
    missing = [k for k in names + ["X"] if k not in npz.shapes] + ([] if have_targets else ["Y or y"])
    if missing:
        lowered = {k.lower(): k for k in npz.shapes}
        hint = [f"{lowered[k.lower()]} → {k}" for k in missing if k.lower() in lowered]
        raise InputError(f"{npz.path} is missing {', '.join(missing)}",
                         expected="keys " + ", ".join(names) + ", X, and Y (targets) or y (labels 0..K-1)",
                         received="keys " + ", ".join(sorted(npz.shapes)),
                         fix=("names are case-sensitive: rename " + ", ".join(hint)) if hint else
                         "add the missing arrays, or check the SPEC matches the file")
    extra = sorted(set(npz.shapes) - set(names) - {"X", "Y", "y"})
    if extra or npz.ignored:
        warn(f"{npz.path}: ignored " + ", ".join(extra + list(npz.ignored)) + f" (not part of {net.compact})")
    x_shape = npz.shapes["X"]
    m = x_shape[0] if len(x_shape) == 2 else 0
    if args.m is not None and args.m != m:
        raise InputError(f"-m {args.m} disagrees with {npz.path}, whose X has {m} rows", expected=f"-m {m} or no -m (the file decides)",
                         received=f"-m {args.m}", fix="drop -m; to use fewer examples, save fewer rows of X and Y/y")
    if guard is not None and m >= 1:
        guard(net, m)
    params = {k: npz.load(k) for k in names}
    Y, y = _targets(npz, net, max(m, 1))
    return make_problem(net, params, npz.load("X"), Y, y=y, origin=Origin("npz", path=str(args.npz)))


# ---- profiles and candidates --------------------------------------------------------------------

def parse_settings(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"Cannot read the setting {pair!r}", expected="KEY=VALUE, e.g. unroll_order=F", received=pair,
                            fix="write --set KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def profile_from_args(args) -> tuple[Profile, dict]:
    """The --profile and its --set settings, validated."""
    if args.profile.endswith(".toml"):
        in_file("--profile", "profile file", suffixes=(".toml",))(args.profile)  # a clear error for a missing or odd path
    profile = get_profile(args.profile)
    return profile, profile.resolve(parse_settings(args.settings))


def _import_file(path: Path) -> dict:
    """Import a candidate's file as a module (in the candidate's own process) and return its namespace."""
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # its sibling modules import as they would under `python FILE.py`
    spec = importlib.util.spec_from_file_location(f"_gradverify_candidate_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return vars(module)


def load_module(path: Path, what: str = "candidate") -> dict:
    """Import a trusted Python file in this process and return its namespace (``gradverify layer``'s way;
    ``verify`` and ``suite`` run candidates in a process of their own instead, see ``candidate_for``).

    Raises:
        InputError: no such file, or not a ``.py`` file.
        CandidateError: the file raised (or exited) while importing.
    """
    from gradverify.errors import CandidateError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"No such {what} file: {path}", expected="an existing FILE.py", received=str(path),
                         fix="give FILE.py:FUNCTION with an existing file")
    if path.suffix != ".py":
        raise InputError(f"The {what} must be a Python source file", expected="a file ending in .py", received=str(path),
                         fix="rename or copy the file to NAME.py")
    try:
        return _import_file(path)
    except BaseException as exc:  # noqa: BLE001 - SystemExit at import included: the file's failure, not ours
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise CandidateError(f"The {what} file {path} raised {type(exc).__name__} while importing", received=str(exc)[:500],
                             fix="run it with python to see the traceback") from None


def candidate_for(args, profile, settings: dict, *, timeout: float, tick=None):
    """The ``--candidate`` of ``verify`` or ``suite`` (None without one): ``file_candidate`` with what
    ``--set`` pinned."""
    if not getattr(args, "candidate", None):
        return None
    from gradverify.candidates import file_candidate

    path, target, text = args.candidate
    return file_candidate(path, target, text, profile, settings, parse_settings(args.settings), timeout=timeout, tick=tick)
