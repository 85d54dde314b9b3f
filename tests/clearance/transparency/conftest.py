"""Fixtures for the transparency-log tests: Go's reference implementation, built offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

GLUE = Path(__file__).parent / "tlogcheck" / "main.go"
GOPATH = Path("/usr/share/gocode")
X_MOD = GOPATH / "src" / "golang.org" / "x" / "mod" / "sumdb"


class GoTlog:
    """Runs the Go glue (golang.org/x/mod/sumdb/note and tlog) on one JSON request."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def check(self, request: Mapping[str, Any]) -> dict[str, Any]:
        result = subprocess.run(
            [str(self.binary)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        verdict = json.loads(result.stdout)
        assert isinstance(verdict, dict)
        return verdict


@pytest.fixture(scope="session")
def go_tlog(tmp_path_factory: pytest.TempPathFactory) -> GoTlog:
    """The glue program, built with Debian's Go and x/mod in GOPATH mode: nothing is downloaded."""
    go = shutil.which("go")
    if go is None or not X_MOD.is_dir():
        pytest.skip("needs golang-go and golang-golang-x-mod-dev (apt-get install; see .ci/run)")
    out = tmp_path_factory.mktemp("go") / "tlogcheck"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": str(GOPATH),
        "GOFLAGS": "",
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
        "GOCACHE": os.path.join(tempfile.gettempdir(), "clearance-go-build-cache"),
    }
    subprocess.run(
        [go, "build", "-o", str(out), str(GLUE)], env=env, check=True, timeout=300, capture_output=True
    )
    return GoTlog(out)
