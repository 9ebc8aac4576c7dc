"""gradverify: neural-network gradients verified three independent ways, and who is wrong.

The exact oracle (SymPy-derived partials at high precision), the numpy backprop engine and finite
differences with error bars are compared per parameter against error budgets; a candidate (your
engine, a student's submission) is judged against the exact values and its bug named.

    from gradverify import compare, random_problem, parse_spec
    print(compare(random_problem(parse_spec("4-8-3:tanh/softmax", lam=1.0), m=16)).summary())

The modules, one idea each: ``spec`` (networks, problems, the compact grammar), ``params``
(layouts), ``problems`` (generators), ``symbolic`` / ``backprop`` / ``finite_diff`` (the three
sources), ``compare`` and ``diagnose`` (the judgement), ``strategies`` and ``suite`` (Hypothesis),
``profiles`` and ``grading`` (candidates and untrusted code), ``report``, ``graph``, ``cli``.

The names below are loaded on first use (PEP 562): ``import gradverify`` costs numpy only, and
SymPy, Hypothesis and matplotlib are imported by the commands that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from gradverify._version import __version__

# The functions ``compare`` and ``gradcheck`` share their names with their modules: bound eagerly, or
# importing the module would shadow the function. The modules cost numpy only.
from gradverify.compare import Comparison, assert_gradient_matches, compare
from gradverify.gradcheck import GradcheckResult, assert_gradcheck, gradcheck

# public name -> the module that defines it
_EXPORTS = {
    "Comparison": "gradverify.compare",
    "assert_gradient_matches": "gradverify.compare",
    "compare": "gradverify.compare",
    "GradcheckResult": "gradverify.gradcheck",
    "assert_gradcheck": "gradverify.gradcheck",
    "gradcheck": "gradverify.gradcheck",
    "Family": "gradverify.strategies",
    "CandidateError": "gradverify.errors",
    "GradientMismatchError": "gradverify.errors",
    "GradverifyError": "gradverify.errors",
    "InputError": "gradverify.errors",
    "InternalError": "gradverify.errors",
    "SpecError": "gradverify.errors",
    "debug_problem": "gradverify.problems",
    "random_problem": "gradverify.problems",
    "Network": "gradverify.spec",
    "Origin": "gradverify.spec",
    "Problem": "gradverify.spec",
    "make_problem": "gradverify.spec",
    "parse_spec": "gradverify.spec",
    "check_candidate": "gradverify.suite",
}

__all__ = [
    "CandidateError",
    "Comparison",
    "Family",
    "GradcheckResult",
    "GradientMismatchError",
    "GradverifyError",
    "InputError",
    "InternalError",
    "Network",
    "Origin",
    "Problem",
    "SpecError",
    "assert_gradcheck",
    "assert_gradient_matches",
    "check_candidate",
    "compare",
    "debug_problem",
    "gradcheck",
    "make_problem",
    "parse_spec",
    "random_problem",
    "__version__",
]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gradverify' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs; never executed
    from gradverify.errors import CandidateError, GradientMismatchError, GradverifyError, InputError, InternalError, SpecError
    from gradverify.problems import debug_problem, random_problem
    from gradverify.spec import Network, Origin, Problem, make_problem, parse_spec
    from gradverify.strategies import Family
    from gradverify.suite import check_candidate
