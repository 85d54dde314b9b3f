"""``clearance credential``: issue personnel and facility credentials; suspend, reinstate, revoke."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli import records
from cli.connection import credential_option, json_option, registry_client
from cli.output import emit, table

if TYPE_CHECKING:
    from clearance.client import RegistryClient
    from clearance.client.credentials import CredentialRecord


@click.group("credential")
def credential_group() -> None:
    """Issue personnel and facility credentials; suspend, reinstate, revoke."""


credential = credential_group


def _credential_row(c: dict[str, Any]) -> list[Any]:
    clearance = c.get("clearance", {})
    return [
        c["id"],
        c.get("kind"),
        clearance.get("level"),
        records.state_word(records.enum_name("CREDENTIAL_STATE_", c.get("state", ""))),
        records.when(c.get("expires_at")),
        c.get("state_reason", ""),
    ]


_HEADERS = ["id", "kind", "level", "state", "expires", "reason"]


def _holder_jwk(holder_key: Path | None, wallet: Path | None) -> str:
    from clearance.errors import InvalidArgumentError

    if wallet is not None:
        holder_key = wallet / "holder.jwk"
    if holder_key is None:
        raise InvalidArgumentError(
            "--holder-key", "give the holder's public key (--holder-key FILE or --wallet DIR)"
        )
    try:
        jwk = json.loads(holder_key.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidArgumentError("--holder-key", f"cannot read a JWK from {holder_key}: {exc}") from exc
    if not isinstance(jwk, dict):
        raise InvalidArgumentError("--holder-key", f"{holder_key} is not a JWK")
    return json.dumps({k: v for k, v in jwk.items() if k != "d"})


@credential_group.command("issue")
@click.argument("assessment_id")
@click.option(
    "--holder-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The holder's public JWK file.",
)
@click.option(
    "--wallet",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A wallet directory (uses its public key).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the SD-JWT here (for the holder's wallet).",
)
@click.option("--idempotency-key", default="")
@credential_option
@json_option
def credential_issue(
    assessment_id: str,
    holder_key: Path | None,
    wallet: Path | None,
    out: Path | None,
    idempotency_key: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Issue a personnel credential for a favorable assessment, bound to the holder's key."""
    from clearance.client.credentials import IssueRequest
    from clearance.keys import atomic_write

    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        issued = client.credentials.issue(
            IssueRequest(assessment_id, _holder_jwk(holder_key, wallet), idempotency_key)
        )
    if out is not None:
        atomic_write(out, issued.sd_jwt.encode(), mode=0o600)
    data: dict[str, Any] = {
        "credential": records.credential(issued.record),
        "sd_jwt": issued.sd_jwt,
        "written_to": str(out) if out else None,
    }
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            table([_credential_row(d["credential"])], _HEADERS)
            + (f"\nSD-JWT written to {d['written_to']}" if d["written_to"] else f"\n{d['sd_jwt']}")
        ),
    )


@credential_group.command("bulk-issue")
@click.argument("requests_file", type=click.File("r"))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSON lines of what was issued (0600).",
)
@click.option(
    "--batch", default=1000, show_default=True, type=click.IntRange(1, 10_000), help="Requests per call."
)
@credential_option
@json_option
def credential_bulk_issue(
    requests_file: Any,
    out: Path,
    batch: int,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Issue many credentials (loading an existing cleared population), in batches, with a progress bar.

    REQUESTS_FILE (or - for stdin) holds one JSON object per line:
    {"assessment_id": "asm_...", "holder_jwk": {...public JWK...}, "idempotency_key": "optional"}.
    Each batch is all or nothing; with idempotency keys a rerun after a failure
    returns what was already issued instead of issuing twice.
    """
    from clearance.client.credentials import IssueRequest
    from clearance.errors import InvalidArgumentError
    from clearance.keys import atomic_write
    from cli.output import progress_bar

    requests = []
    for number, line in enumerate(requests_file, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            requests.append(
                IssueRequest(
                    assessment_id=str(item["assessment_id"]),
                    holder_jwk=json.dumps(item["holder_jwk"]),
                    idempotency_key=str(item.get("idempotency_key", "")),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidArgumentError(
                f"REQUESTS_FILE line {number}", f"not a request object: {exc}"
            ) from exc
    issued: list[dict[str, Any]] = []
    started = time.monotonic()

    def write_issued() -> None:
        atomic_write(out, "".join(json.dumps(i) + "\n" for i in issued).encode(), mode=0o600)

    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        try:
            with progress_bar("issuing", len(requests)) as advance:
                for start in range(0, len(requests), batch):
                    chunk = requests[start : start + batch]
                    results = client.credentials.bulk_issue(chunk)
                    for request, result in zip(chunk, results, strict=True):
                        issued.append(
                            {
                                "assessment_id": request.assessment_id,
                                "credential_id": result.record.id,
                                "sd_jwt": result.sd_jwt,
                            }
                        )
                    advance(len(chunk))
        except BaseException:
            # The batches that went through were issued: their credentials must not be lost
            # with the one that failed (without idempotency keys a rerun cannot return them).
            if issued:
                write_issued()
                click.echo(
                    f"{len(issued)} of {len(requests)} issued before the failure; written to {out}",
                    err=True,
                )
            raise
    elapsed = time.monotonic() - started
    write_issued()
    data: dict[str, Any] = {
        "issued": len(issued),
        "seconds": round(elapsed, 2),
        "per_second": round(len(issued) / elapsed, 1) if elapsed else None,
        "written_to": str(out),
    }
    emit(
        data,
        json_output=json_output,
        human=lambda d: f"issued {d['issued']} credentials in {d['seconds']}s; written to {d['written_to']}",
    )


@credential_group.command("issue-facility")
@click.argument("organization_id")
@click.option("--node", "node_id", required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path))
@credential_option
@json_option
def credential_issue_facility(
    organization_id: str,
    node_id: str,
    out: Path | None,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Issue an organization's facility credential bound to its node's key."""
    from clearance.keys import atomic_write

    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        issued = client.credentials.issue_facility(organization_id, node_id=node_id)
    if out is not None:
        atomic_write(out, issued.sd_jwt.encode(), mode=0o600)
    data: dict[str, Any] = {"credential": records.credential(issued.record), "sd_jwt": issued.sd_jwt}
    emit(data, json_output=json_output, human=lambda d: table([_credential_row(d["credential"])], _HEADERS))


@credential_group.command("get")
@click.argument("credential_id")
@credential_option
@json_option
def credential_get(
    credential_id: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Show a credential's record and state."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        found = client.credentials.get(credential_id)
    emit(
        records.credential(found),
        json_output=json_output,
        human=lambda c: table([_credential_row(c)], _HEADERS),
    )


@credential_group.command("list")
@click.option("--person", "person_id", default="")
@click.option("--org", "organization_id", default="")
@credential_option
@json_option
def credential_list(
    person_id: str,
    organization_id: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """List credentials."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        found = client.credentials.list(person_id=person_id, organization_id=organization_id)
    rows = [records.credential(c) for c in found]
    emit(
        {"credentials": rows},
        json_output=json_output,
        human=lambda d: table([_credential_row(c) for c in d["credentials"]], _HEADERS),
    )


def _state_change(
    change: Callable[[RegistryClient], CredentialRecord],
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        changed = change(client)
    emit(
        records.credential(changed),
        json_output=json_output,
        human=lambda c: table([_credential_row(c)], _HEADERS),
    )


@credential_group.command("suspend")
@click.argument("credential_id")
@click.option("--reason", required=True)
@credential_option
@json_option
def credential_suspend(
    credential_id: str, reason: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Suspend a credential (nodes deny it as soon as the update reaches them)."""
    _state_change(
        lambda c: c.credentials.suspend(credential_id, reason=reason),
        credential,
        endpoint,
        insecure,
        json_output,
    )


@credential_group.command("reinstate")
@click.argument("credential_id")
@click.option("--reason", required=True)
@credential_option
@json_option
def credential_reinstate(
    credential_id: str, reason: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Reinstate a suspended credential (never a revoked one)."""
    _state_change(
        lambda c: c.credentials.reinstate(credential_id, reason=reason),
        credential,
        endpoint,
        insecure,
        json_output,
    )


@credential_group.command("revoke")
@click.argument("credential_id")
@click.option("--reason", required=True)
@credential_option
@json_option
def credential_revoke(
    credential_id: str, reason: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Revoke a credential for good."""
    _state_change(
        lambda c: c.credentials.revoke(credential_id, reason=reason),
        credential,
        endpoint,
        insecure,
        json_output,
    )
