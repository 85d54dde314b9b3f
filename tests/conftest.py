"""Shared pytest configuration.

CI sets ``CLEARANCE_REQUIRE_ALL_TESTS=1``: then a skipped test fails the run,
so a missing database or tool cannot pass silently.
"""

from __future__ import annotations

import os

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CLEARANCE_REQUIRE_ALL_TESTS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        if reporter:
            reporter.write_line(
                f"CLEARANCE_REQUIRE_ALL_TESTS=1 and {skipped} test(s) skipped: failing the run",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
