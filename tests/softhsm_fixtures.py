"""Fixtures for tests that use a real SoftHSM2 token (a fresh one per test).

SoftHSM2 is required, never optional: CI installs it (``.ci/run``), and a
machine without it fails these tests instead of skipping them. A test module
imports the fixtures it uses from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clearance.pkcs11 import Pkcs11Module
from cli.softhsm import ScratchToken, SoftHsm


@pytest.fixture
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SoftHsm]:
    """A fresh SoftHSM2 token directory that this process's module reads."""
    hsm = SoftHsm(tmp_path / "softhsm")
    for name, value in hsm.environment().items():
        monkeypatch.setenv(name, value)
    yield hsm
    # Leave no session of this test's tokens for the next test to trip over.
    Pkcs11Module.load(hsm.module_path).reload()


@pytest.fixture
def token(softhsm: SoftHsm) -> ScratchToken:
    """A freshly initialized token with no keys."""
    return softhsm.init_token("clearance-test")
