"""Several registry processes on one port: the simplest way to use every core.

A registry process is stateless (everything lives in the database), so
``registry serve --processes N`` starts N identical children that listen on
the same address with ``SO_REUSEPORT`` (on by default in gRPC on Linux); the
kernel spreads connections across them. The parent only supervises: it
forwards SIGTERM/SIGINT, and if a child dies it stops the others and exits
non-zero, so a service manager restarts the whole set.
"""

from __future__ import annotations

import signal
import subprocess
import time
from typing import Any


def run_replicas(command: list[str], count: int, *, metrics_port: int | None = None) -> int:
    """Run ``count`` copies of ``command``; returns the exit code for the parent."""
    children = []
    for number in range(count):
        argv = list(command)
        if metrics_port is not None:
            argv += ["--metrics-port", str(metrics_port + number)]
        children.append(subprocess.Popen(argv))  # noqa: S603 - our own command line
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        codes = [child.poll() for child in children]
        if all(code is not None for code in codes):
            return 0 if stopping else 1
        if not stopping and any(code is not None for code in codes):
            stop(signal.SIGTERM, None)
        time.sleep(0.2)
