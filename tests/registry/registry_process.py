"""A registry served by a process of its own (``registry.api.server`` as ``registry serve`` runs it).

For what only another process shows: its memory, its children, a ``kill -9``.
The process prints its port, then serves until its standard input closes.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVE = """
import sys
from pathlib import Path
from registry.api import server

running = server.start(
    server.open_context(Path(sys.argv[1])), "127.0.0.1:0", insecure=True, freshness_check=3600,
    warm_signing=sys.argv[2] == "warm",
)
print(running.port, flush=True)
sys.stdin.read()  # serve until the test closes our stdin
running.stop(grace=1)
"""


@dataclass
class RegistryProcess:
    process: subprocess.Popen[str]
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def status(self, field: str) -> int:
        """A ``/proc/PID/status`` figure in KiB (``VmRSS``, ``VmHWM``) or a count (``Threads``)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def children(self) -> list[int]:
        return children_of(self.pid)

    def stop(self) -> None:
        """Let it stop (or reap it if it was killed) and close its pipes."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


def children_of(pid: int, *, tracker: bool = True) -> list[int]:
    """Every live process whose parent is ``pid`` (without Python's resource tracker unless ``tracker``)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z" and (tracker or not _is_resource_tracker(entry)):
            found.append(int(entry.name))
    return found


def _is_resource_tracker(entry: Path) -> bool:
    try:
        return b"resource_tracker" in (entry / "cmdline").read_bytes()
    except OSError:
        return False


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def start_registry_process(directory: Path, *, warm_signing: bool = False) -> RegistryProcess:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(directory), "warm" if warm_signing else "cold"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.strip().isdigit():
        process.kill()
        raise AssertionError(f"the registry process did not start: {line!r}")
    return RegistryProcess(process, int(line))


def wait_until(
    condition: Callable[[], object], *, seconds: float = 20.0, what: str = "the condition"
) -> None:
    """Poll ``condition()`` until it holds (the test fails after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds:g} s")
        time.sleep(0.02)
