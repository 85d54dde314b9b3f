"""``clearance inspect``: decode any clearance artifact and, given trust material, verify it.

What is recognized and checked is described in :mod:`clearance.inspect`; this
module reads the command line and prints the report.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import click

from clearance.inspect import Report, inspect_artifact, load_trust
from cli import output

_TIME_CLAIMS = frozenset({"iat", "nbf", "exp", "at"})


def render(report: Report) -> str:
    """The report for humans: decoded fields (not the raw signed payload), checks, verdict."""
    shown = {k: v for k, v in report.fields.items() if k != "payload"}
    lines = [
        f"{output.heading('kind:')} {report.kind.replace('_', ' ')}",
        f"at: {_with_date(report.at)}",
    ]
    if shown:
        lines.append(output.key_values({k.replace("_", " "): v for k, v in _dated(shown).items()}))
    for title, checks in (("passed:", report.passed), ("not checked:", report.not_checked)):
        if checks:
            lines.append(title)
            lines.extend(f"  - {output.printable(check)}" for check in checks)
    verdict = report.verification()
    if verdict["valid"] is True:
        word = output.status_word("yes", True)
        because = verdict["detail"]
    elif verdict["valid"] is False:
        word = output.status_word("no", False)
        because = f"{verdict['reason']}: {verdict['detail']}"
    else:
        word = output.status_word("not checked", None)
        because = verdict["detail"]
    lines.append(f"{output.heading('verified:')} {word} ({output.printable(because)})")
    return "\n".join(lines)


def _with_date(value: int) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(value, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return str(value)
    return f"{value} ({moment.strftime('%Y-%m-%dT%H:%M:%SZ')})"


def _dated(data: Any) -> Any:
    """A copy of ``data`` where integer ``iat``/``nbf``/``exp`` also show their UTC date."""
    if isinstance(data, Mapping):
        return {
            k: _with_date(v) if k in _TIME_CLAIMS and type(v) is int else _dated(v) for k, v in data.items()
        }
    if isinstance(data, list):
        return [_dated(v) for v in data]
    return data


@click.command("inspect")
@click.argument("file", type=click.File("rb"))
@click.option("--json", "json_output", is_flag=True, help="Print one JSON object instead of text.")
@click.option(
    "--root",
    metavar="ROOT",
    help="Trusted root key: a JWK or PEM public key file, or its RFC 7638 thumbprint.",
)
@click.option(
    "--jwks",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Trusted issuing keys: a JWK Set file, or a trust bundle (checked under --root if given).",
)
@click.option(
    "--at",
    type=click.IntRange(min=0),
    metavar="UNIX_TIME",
    help="Check validity at this time (seconds since the epoch; default: now).",
)
def inspect(file: IO[bytes], json_output: bool, root: str | None, jwks: Path | None, at: int | None) -> None:
    """Decode and verify any clearance artifact in FILE (- for stdin).

    Recognizes credentials, presentations, status list tokens and bare status
    lists, status deltas, trust bundles, agreements, root rotations and visit
    assurances. With --root or --jwks the artifact is also verified against
    that trust.

    Exit status: 0 decoded (and verified, when trust was given); 3 refused:
    verification failed, or the artifact can never be valid (forbidden
    algorithm, malformed, oversize, ...); 2 unusable --root or --jwks.
    """
    trust = load_trust(root, jwks, int(time.time()) if at is None else at)
    report = inspect_artifact(file, trust)
    output.emit(report.to_json(), json_output=json_output, human=lambda _: render(report))
    if report.failure is not None:
        raise report.failure
