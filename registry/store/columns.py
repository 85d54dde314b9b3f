"""How small values are kept in columns: random row ids and JSON lists of strings."""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Iterable


def new_id(prefix: str) -> str:
    """A random, unguessable identifier such as ``org_5f3c2a9e1b7d40c8a6e2``."""
    return f"{prefix}_{secrets.token_hex(10)}"


def dump_list(values: Iterable[str]) -> str:
    """A list of strings as a column stores it (levels' categories, reasons)."""
    return json.dumps(list(values))


def load_list(text: str | None) -> tuple[str, ...]:
    """The list of strings a column holds (empty for a missing value)."""
    return _parsed_list(text or "")


@functools.lru_cache(maxsize=1024)
def _parsed_list(text: str) -> tuple[str, ...]:
    # Stored category lists repeat across rows (there are few combinations): parse each once.
    if not text:
        return ()
    value = json.loads(text)
    return tuple(str(v) for v in value) if isinstance(value, list) else ()
