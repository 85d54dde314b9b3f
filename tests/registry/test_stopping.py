"""Stopping a registry server: nothing of it keeps running, so nothing touches the database after."""

from __future__ import annotations

import threading
import time

import pytest

from clearance.v1 import registry_pb2 as pb
from tests.registry.conftest import RegistryFactory

pytestmark = pytest.mark.database


def test_a_stopped_registry_leaves_no_background_thread_behind(make_registry: RegistryFactory) -> None:
    before = set(threading.enumerate())
    registry = make_registry()
    registry.issue(registry.cleared_person().assessment.id)  # starts the group-commit writer
    registry.admin.federation.ListAgreements(pb.ListAgreementsRequest())  # partner sync runs too

    registry.stop()

    deadline = time.monotonic() + 5
    while (left := set(threading.enumerate()) - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(thread.name for thread in left) == []
