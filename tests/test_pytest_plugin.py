"""The pytest plugin: no spurious deadline for tests drawing from gradverify, and the reproduce command on failure.

The hook is tested on real Hypothesis tests (which settings each ends with); one run of pytest in a
subprocess, with and without the plugin (``-p gradverify.pytest_plugin``), shows the effect end to end.
"""

import os
import subprocess
import sys
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from gradverify import pytest_plugin
from gradverify import strategies as gst


class _Mark:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class _Item:
    def __init__(self, obj, marker=None):
        self.obj, self.marker, self.nodeid = obj, marker, obj.__name__

    def get_closest_marker(self, name):
        return self.marker if name == "gradverify" else None


def _deadline(test):
    return test._hypothesis_internal_use_settings.deadline


def test_tests_that_draw_from_gradverify_lose_the_default_deadline_and_no_other_test_does():
    @given(gst.problems(gst.networks(max_depth=2)).map(lambda p: p))  # wrapped, still ours
    def draws(problem): ...

    @settings(deadline=123)
    @given(gst.problems())
    def chose_its_own(problem): ...

    @given(st.integers())
    def not_ours(n): ...

    @given(st.integers())
    def marked(n): ...

    default = settings.default.deadline
    pytest_plugin.pytest_collection_modifyitems(None, [_Item(draws), _Item(chose_its_own), _Item(not_ours),
                                                       _Item(marked, _Mark(deadline=2000))])
    assert _deadline(draws) is None
    assert _deadline(chose_its_own).total_seconds() == 0.123
    assert getattr(not_ours, "_hypothesis_internal_use_settings", None) is None or _deadline(not_ours) == default
    assert _deadline(marked).total_seconds() == 2.0


# The variables by which Hypothesis (hypothesis._settings._CI_VARS, 6.1xx) recognises a CI machine.
_CI_VARIABLES = {"CI", "__TOX_ENVIRONMENT_VARIABLE_ORIGINAL_CI", "TF_BUILD", "bamboo.buildKey", "BUILDKITE",
                 "CIRCLECI", "CIRRUS_CI", "CODEBUILD_BUILD_ID", "GITHUB_ACTIONS", "GITLAB_CI", "HEROKU_TEST_RUN_ID",
                 "TEAMCITY_VERSION"}

USER_TESTS = '''
import time
from hypothesis import Phase, given, settings
from gradverify import strategies as gst

@settings(max_examples=2, database=None, phases=[Phase.generate])
@given(gst.problems(gst.networks(max_depth=2)))
def test_slow_check(problem):
    time.sleep(0.3)  # slower than Hypothesis' 200 ms deadline, like a first exact-oracle call

@settings(max_examples=5, database=None)
@given(gst.problems(gst.networks(max_depth=2)))
def test_fails(problem):
    assert problem.network.depth < 2
'''


def test_end_to_end_the_plugin_lifts_the_deadline_and_prints_the_reproduce_command(tmp_path):
    (tmp_path / "test_user.py").write_text(USER_TESTS)

    # Hypothesis loads its "ci" profile (no deadline at all) when it sees a CI variable, which would
    # make the run without the plugin pass too: the user's tests run as on a developer's machine.
    env = {key: value for key, value in os.environ.items() if key not in _CI_VARIABLES}

    def run(*extra):
        res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", *extra, "test_user.py"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
        return res.stdout + res.stderr

    start = time.monotonic()
    out = run("-p", "gradverify.pytest_plugin")
    assert "PASSED test_user.py::test_slow_check" in out and "FAILED test_user.py::test_fails" in out
    assert "gradverify: reproduce the failing case" in out
    assert any(line.startswith("gradverify verify 1-1-1") and "--init random --seed" in line for line in out.splitlines())
    without = run("-k", "slow_check")
    assert "FAILED test_user.py::test_slow_check" in without and "DeadlineExceeded" in without
    assert time.monotonic() - start < 120
