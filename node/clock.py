"""The node's clock: seconds since the epoch, injected everywhere a decision reads time.

Production nodes use :func:`system_clock`. End-to-end tests of node
*processes* must age status lists without sleeping for hours, so a node may be
told to read its time from a file instead (:class:`UnsafeFileClock`). That is
a hazard (whoever can write the file decides what "now" is, and so whether a
revoked credential's list is fresh), so it is doubly opt-in: ``node.toml``
must name the file as ``unsafe_clock_file`` **and** the process must run with
``CLEARANCE_ALLOW_UNSAFE_CLOCK=1``; otherwise the configuration is refused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from clearance.errors import InvalidArgumentError, StorageError

Clock = Callable[[], int]
"""Returns seconds since the epoch."""

UNSAFE_CLOCK_ENV = "CLEARANCE_ALLOW_UNSAFE_CLOCK"


def system_clock() -> int:
    return int(time.time())


def unsafe_clock_allowed() -> bool:
    """Whether this process was started with ``CLEARANCE_ALLOW_UNSAFE_CLOCK=1``."""
    return os.environ.get(UNSAFE_CLOCK_ENV) == "1"


class UnsafeFileClock:
    """A clock whose time is the integer written in a file (for tests of node processes only).

    The file is re-read when it is replaced or its modification time or size changes, so a test
    moves time forward by rewriting it.
    """

    def __init__(self, path: Path) -> None:
        if not unsafe_clock_allowed():
            raise InvalidArgumentError(
                "unsafe_clock_file", f"refused unless the node runs with {UNSAFE_CLOCK_ENV}=1 (tests only)"
            )
        self._path = Path(path)
        self._seen: tuple[int, int, int] | None = None
        self._value = 0
        self()  # fail at start, not at the first decision

    def __call__(self) -> int:
        try:
            info = self._path.stat()
            stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
            if stamp != self._seen:
                text = self._path.read_text("ascii").strip()
                self._value = int(text)
                self._seen = stamp
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise StorageError(f"unsafe clock file {self._path} does not hold epoch seconds") from exc
        return self._value


def write_clock_file(path: Path, seconds: int) -> None:
    """Set an :class:`UnsafeFileClock` (atomically, so a reader never sees half a number)."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(f"{seconds}\n", "ascii")
    os.replace(tmp, path)
