"""How every command prints: one JSON document with ``--json``, aligned text otherwise.

Commands build plain data (dicts, lists, strings, numbers) and hand it to
:func:`emit`; with ``--json`` the data is printed as exactly one JSON
document on stdout, otherwise a function of the command's own turns it into
text. Helpers here build that text: :func:`key_values` for nested data,
:func:`table` for rows, :func:`status_word` for a coloured verdict.

Colour is added with :func:`click.style` and printed with :func:`click.echo`,
which strips it when stdout is not a terminal, so pipes and files get plain
text. JSON output is never styled. Progress goes to stderr, and only when
stderr is a terminal (:func:`progress`).

Much of what commands print comes from outside (claims in a credential).
Control characters in it could drive the user's terminal, and bidirectional
overrides could make it read differently from what it is, so data is shown
through :func:`printable` (human output) or with those characters escaped
(JSON output).

This module imports nothing beyond click and the standard library: every
command module imports it, and ``clearance --help`` must stay fast.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import click

T = TypeVar("T")

_BIDI = "\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_UNSAFE_IN_JSON = re.compile(f"[\x7f-\x9f{_BIDI}]")  # json.dumps already escapes C0 controls

MAX_ITEMS = 20
"""Entries of one list or mapping shown in human output before "... N more"."""
MAX_TEXT = 96
"""Characters of one string shown in human output before it is shortened."""


def emit(data: T, *, json_output: bool, human: Callable[[T], str] | None = None) -> None:
    """Print ``data``: as one JSON document with ``--json``, else as ``human(data)``.

    Args:
        data: plain JSON-compatible data.
        json_output: whether ``--json`` was given.
        human: renders ``data`` as text; :func:`key_values` when omitted.
    """
    if json_output:
        click.echo(to_json(data), color=False)
    else:
        click.echo(human(data) if human is not None else key_values(data))


def to_json(data: Any) -> str:
    """``data`` as indented JSON in the order it was built: non-ASCII text kept readable,
    control and bidirectional-override characters escaped as ``\\uXXXX``."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(_escape, text)


def printable(text: str) -> str:
    """``text`` safe for a terminal: control and bidirectional-override characters escaped."""
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def status_word(word: str, ok: bool | None) -> str:
    """``word`` in bold green (``ok``), red (not ``ok``) or yellow (``None``: undecided)."""
    colour = "yellow" if ok is None else "green" if ok else "red"
    return click.style(word, fg=colour, bold=True)


def heading(text: str) -> str:
    """A bold section heading."""
    return click.style(text, bold=True)


def shorten(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 24]}... ({len(text)} characters)"


def scalar(value: Any) -> str:
    """One value as text: strings bare, anything else as compact JSON; printable and shortened."""
    if isinstance(value, str):
        return shorten(printable(value))
    return shorten(printable(json.dumps(value, ensure_ascii=False, separators=(", ", ": "))))


def key_values(data: Any, *, indent: int = 0, limit: int = MAX_ITEMS) -> str:
    """Nested data as indented ``key: value`` lines (YAML-like, for humans only).

    Mappings nest by two spaces, lists of scalars are joined on one line,
    other lists become ``-`` items. Long strings, lists and mappings are
    shortened (``... N more``): ``--json`` prints everything.
    """
    return "\n".join(_lines(data, indent, limit))


def _lines(data: Any, indent: int, limit: int) -> Iterator[str]:
    pad = " " * indent
    if isinstance(data, Mapping):
        items = list(data.items())
        for key, value in items[:limit]:
            label = printable(str(key))
            if _is_nested(value):
                yield f"{pad}{label}:"
                yield from _lines(value, indent + 2, limit)
            else:
                yield f"{pad}{label}: {_inline(value, limit)}"
        if len(items) > limit:
            yield f"{pad}... {len(items) - limit} more"
    elif isinstance(data, list):
        for value in data[:limit]:
            if _is_nested(value):
                nested = list(_lines(value, indent + 2, limit))
                yield f"{pad}- {nested[0].lstrip()}" if nested else f"{pad}-"
                yield from nested[1:]
            else:
                yield f"{pad}- {_inline(value, limit)}"
        if len(data) > limit:
            yield f"{pad}... {len(data) - limit} more"
    else:
        yield pad + _inline(data, limit)


def _is_nested(value: Any) -> bool:
    """Whether ``value`` needs lines of its own (a non-empty mapping, or a list holding containers)."""
    if isinstance(value, Mapping):
        return bool(value)
    return isinstance(value, list) and any(isinstance(v, Mapping | list) for v in value)


def _inline(value: Any, limit: int) -> str:
    if isinstance(value, list):
        shown = ", ".join(scalar(v) for v in value[:limit])
        more = f", ... {len(value) - limit} more" if len(value) > limit else ""
        return f"{shown}{more}" if value else "(none)"
    if isinstance(value, Mapping):
        return "(none)"
    return scalar(value)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str] | None = None) -> str:
    """Rows as left-aligned columns, with an optional bold header row.

    String cells are printed as given and may carry styles (:func:`status_word`);
    widths are measured without them. Pass text from outside through :func:`printable`.
    """
    cells = [[c if isinstance(c, str) else scalar(c) for c in row] for row in rows]
    if headers is not None:
        cells.insert(0, [heading(h) for h in headers])
    if not cells:
        return ""
    columns = max(len(row) for row in cells)
    widths = [
        max((len(click.unstyle(row[i])) for row in cells if i < len(row)), default=0) for i in range(columns)
    ]
    lines = []
    for row in cells:
        padded = [cell + " " * (widths[i] - len(click.unstyle(cell))) for i, cell in enumerate(row)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def stderr_is_terminal() -> bool:
    """Whether stderr is an interactive terminal (progress is shown only then)."""
    return sys.stderr.isatty()


@contextlib.contextmanager
def progress(label: str, *, interval: float = 0.5) -> Iterator[None]:
    """Show ``label`` and the seconds elapsed on stderr while the block runs.

    Nothing is shown unless stderr is a terminal, so logs and pipes stay
    clean. The line is erased when the block ends.
    """
    if not stderr_is_terminal():
        yield
        return
    done = threading.Event()
    start = time.monotonic()

    def tick() -> None:
        while not done.wait(interval):
            click.echo(f"\r{label} ({time.monotonic() - start:.0f}s)", err=True, nl=False)

    click.echo(f"\r{label}", err=True, nl=False)
    ticker = threading.Thread(target=tick, name="progress", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()
        click.echo("\r\033[K", err=True, nl=False)


@contextlib.contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (only on a terminal); yields ``advance(n)``."""
    if not stderr_is_terminal():
        yield lambda _n: None
        return
    with click.progressbar(
        length=total, label=label, file=sys.stderr, show_eta=True, show_percent=True
    ) as bar:
        yield bar.update
