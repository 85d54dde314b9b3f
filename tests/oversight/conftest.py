"""Fixtures for the oversight agents' tests."""

from __future__ import annotations

from tests.clearance.transparency.conftest import go_tlog

__all__ = ["go_tlog"]
