"""Run the Node.js scripts of this folder: independent implementations of the protocols we speak.

Their npm packages are installed by ``.ci/run`` (``npm ci --prefix tests/interop``), never at
test time; a machine without them fails these tests, it does not skip them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def run_node(script: str, *args: str, ca_file: Path | None = None, timeout: float = 60) -> tuple[int, Any]:
    """``(exit code, the JSON it printed)`` of ``node SCRIPT ARGS`` with ``ca_file`` trusted."""
    node = shutil.which("node")
    assert node is not None, "Node.js is required (the interoperability tests run npm libraries)"
    assert (HERE / "node_modules" / "@openid4vc").is_dir(), "run: npm ci --prefix tests/interop"
    env = {k: v for k, v in os.environ.items() if not k.startswith("NODE_")}
    if ca_file is not None:
        env["NODE_EXTRA_CA_CERTS"] = str(ca_file)
    done = subprocess.run(
        [node, "--no-deprecation", str(HERE / script), *args],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    try:
        return done.returncode, json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"{script} printed no JSON: {done.stdout[-500:]} {done.stderr[-2000:]}") from exc
