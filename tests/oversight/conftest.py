"""Fixtures for the oversight agents' tests."""

from __future__ import annotations

from tests.clearance.transparency.conftest import go_tlog
from tests.registry.conftest import make_registry, registry

__all__ = ["go_tlog", "make_registry", "registry"]
