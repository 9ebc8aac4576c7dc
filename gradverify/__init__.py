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
"""

from gradverify.compare import Comparison, assert_gradient_matches, compare
from gradverify.errors import GradientMismatchError, GradverifyError, InputError, SpecError
from gradverify.problems import debug_problem, random_problem
from gradverify.spec import Network, Problem, make_problem, parse_spec
from gradverify.suite import check_candidate

__version__ = "0.1.0"

__all__ = [
    "Comparison",
    "GradientMismatchError",
    "GradverifyError",
    "InputError",
    "Network",
    "Problem",
    "SpecError",
    "assert_gradient_matches",
    "check_candidate",
    "compare",
    "debug_problem",
    "make_problem",
    "parse_spec",
    "random_problem",
]
