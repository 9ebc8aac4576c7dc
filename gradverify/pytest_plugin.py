"""A pytest plugin for tests that use gradverify: no spurious Hypothesis deadlines, and how to reproduce.

Opt in with ``pytest_plugins = ["gradverify.pytest_plugin"]`` in a ``conftest.py`` (or a test module
at the root of the tests), or ``pytest -p gradverify.pytest_plugin``. It is not registered as an
automatic ``pytest11`` entry point on purpose: pytest would then rewrite the asserts of every module
of the gradverify distribution on import. It does two things, both only for the Hypothesis tests
that draw from ``gradverify.strategies`` (or carry ``@pytest.mark.gradverify``):

- **deadline**: Hypothesis fails a test whose example takes longer than 200 ms. A gradient check
  against the exact oracle takes longer on its first call (SymPy warms up) and on larger networks,
  so such tests get ``deadline=None`` — unless the test set a deadline of its own. The marker
  takes one explicitly: ``@pytest.mark.gradverify(deadline=2000)`` (milliseconds, or None);
- **reproduce**: every problem the strategies draw notes the command that rebuilds it
  (``gradverify verify … --init random --seed …``), so a falsifying example is printed with the
  command that shows it in full; the plugin adds those commands to the failure report.

Nothing else in a test run changes; a project without Hypothesis tests pays one hook call.
"""

from __future__ import annotations

import pytest

__all__ = ["pytest_configure", "pytest_collection_modifyitems", "pytest_runtest_makereport"]

_MARK = "gradverify"


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", f"{_MARK}(deadline=None): a Hypothesis test that checks gradients with gradverify; "
                            "its deadline (ms, or None for none; default None)")


def _draws_from_gradverify(test) -> bool:
    given = getattr(getattr(test, "hypothesis", None), "_given_kwargs", None) or {}
    return any("gradverify_" in repr(strategy) for strategy in given.values())


def _set_deadline(test, deadline) -> None:
    from hypothesis import settings

    current = getattr(test, "_hypothesis_internal_use_settings", None) or settings.default
    if current.deadline != settings.default.deadline and deadline is None:
        return  # the test chose a deadline itself: keep it
    test._hypothesis_internal_use_settings = settings(current, deadline=deadline)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        test = getattr(item, "obj", None)
        if not hasattr(test, "hypothesis"):
            continue
        marker = item.get_closest_marker(_MARK)
        if marker is None and not _draws_from_gradverify(test):
            continue
        deadline = marker.kwargs.get("deadline") if marker is not None else None
        try:
            _set_deadline(test, deadline)
        except Exception as exc:  # noqa: BLE001 - a Hypothesis that changed its internals: say so, change nothing
            item.warn(pytest.PytestWarning(f"gradverify could not set the Hypothesis deadline of {item.nodeid}: {exc}; "
                                           "add @settings(deadline=None) to the test"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    text = str(report.longrepr)
    commands = [line.split("reproduce:", 1)[1].strip() for line in text.splitlines() if "reproduce: gradverify " in line]
    if commands:
        report.sections.append(("gradverify: reproduce the failing case", "\n".join(dict.fromkeys(commands))))
