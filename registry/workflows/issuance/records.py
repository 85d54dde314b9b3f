"""What issuance is asked for, what it plans, what it signs and what it writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from clearance.errors import StorageError
from clearance.keys import PublicKey
from registry.context import RegistryContext
from registry.signing import CredentialSpec
from registry.store.columns import load_list, new_id
from registry.store.envelope import Sealed
from registry.store.idempotency import IdempotencyKey
from registry.store.models import Credential, CredentialRecord, StatusListRow
from registry.store.statuslists import OpenStatusList
from registry.workflows.credentials import CredentialView
from registry.workflows.issuance.eligibility import Eligible

OPERATION = "issue_credential"
"""The idempotency operation of personnel issuance, single or bulk: a key works across both."""


@dataclass(frozen=True)
class IssueRequest:
    """One personnel credential asked for: from which assessment, bound to which holder key."""

    assessment_id: str
    holder_jwk: str
    idempotency_key: str = ""


@dataclass(frozen=True)
class IssuedCredential:
    """An issued credential's record and the SD-JWT for its holder."""

    credential: CredentialView
    sd_jwt: str


def idempotency_of(actor: str, request: IssueRequest, holder: PublicKey) -> IdempotencyKey:
    """The idempotency key of a personnel issuance: the same assessment for the same holder key.

    Raises:
        InvalidArgumentError: the key is too long.
    """
    values = {"assessment": request.assessment_id, "holder": holder.thumbprint}
    return IdempotencyKey.of(actor, request.idempotency_key, OPERATION, values)


@dataclass(frozen=True)
class PlannedCredential:
    """A credential about to be issued: from which inputs, to which holder, at which status index."""

    eligible: Eligible
    holder: PublicKey
    index: int
    idempotency: IdempotencyKey

    @property
    def keeps_sealed_copy(self) -> bool:
        """A sealed copy of the SD-JWT (it carries personal claims) is kept only to answer a repeat."""
        return bool(self.idempotency.key)


@dataclass(frozen=True)
class Minted:
    """A signed credential and its row, not written yet."""

    record: CredentialRecord
    sd_jwt: str

    def issued(self, status_list_uri: str, now: int) -> IssuedCredential:
        return IssuedCredential(CredentialView.of(self.record, status_list_uri, now), self.sd_jwt)


def spec(
    ctx: RegistryContext,
    planned: PlannedCredential,
    personal: dict[str, dict[str, str]],
    open_list: OpenStatusList,
    now: int,
) -> CredentialSpec:
    """What to sign for ``planned``; ``personal`` holds the disclosable claims of each person."""
    inputs = planned.eligible.inputs
    return CredentialSpec(
        issuer=ctx.config.issuer,
        subject=inputs.subject,
        holder_jwk=planned.holder.bare_jwk,
        jurisdiction=ctx.config.jurisdiction,
        level=inputs.level,
        categories=load_list(inputs.categories),
        status_uri=open_list.uri,
        status_index=planned.index,
        issued_at=now,
        expires_at=min(now + ctx.config.credential_lifetime, planned.eligible.valid_until),
        personal=personal[inputs.person_id],
    )


def mint(
    ctx: RegistryContext,
    planned: Sequence[PlannedCredential],
    specs: Sequence[CredentialSpec],
    tokens: Sequence[str],
    open_list: OpenStatusList,
    now: int,
) -> list[Minted]:
    """The rows of signed credentials (each ``specs[i]`` signed as ``tokens[i]``)."""
    kid = ctx.keys.issuing_key.kid
    minted = []
    for item, signed_spec, sd_jwt in zip(planned, specs, tokens, strict=True):
        inputs = item.eligible.inputs
        credential_id = new_id("crd")
        sealed = (
            ctx.keys.kek.seal(credential_id, sd_jwt.encode()).to_blob() if item.keeps_sealed_copy else None
        )
        record = CredentialRecord(
            id=credential_id,
            kind="personnel",
            person_id=inputs.person_id,
            organization_id=item.eligible.organization_id,
            assessment_id=inputs.assessment_id,
            node_id=None,
            jurisdiction=ctx.config.jurisdiction,
            level=inputs.level,
            categories=inputs.categories,
            state="valid",
            state_reason=None,
            status_list_id=open_list.id,
            status_index=item.index,
            issued_at=now,
            expires_at=signed_spec.expires_at,
            holder_thumbprint=item.holder.thumbprint,
            issuing_kid=kid,
            suspended_by=None,
            sealed_sd_jwt=sealed,
        )
        minted.append(Minted(record, sd_jwt))
    return minted


def sign_and_mint(
    ctx: RegistryContext,
    planned: Sequence[PlannedCredential],
    personal: dict[str, dict[str, str]],
    open_list: OpenStatusList,
    now: int,
) -> list[Minted]:
    """Sign the planned credentials (with the context's signer) and make their rows."""
    specs = [spec(ctx, item, personal, open_list, now) for item in planned]
    return mint(ctx, planned, specs, ctx.sign(specs), open_list, now)


_INSERT_CREDENTIAL = insert(cast(Table, Credential.__table__))


def insert_all(session: Session, minted: Sequence[Minted]) -> None:
    """Insert the rows in one statement; a status index already taken fails it (unique constraint).

    Raises:
        WriteConflictError: (when the transaction ends) an index was taken meanwhile.
    """
    session.connection().execute(_INSERT_CREDENTIAL, [item.record.row() for item in minted])


def earlier(ctx: RegistryContext, session: Session, credential_id: str, now: int) -> IssuedCredential:
    """A credential issued before for the same idempotency key, with its sealed SD-JWT.

    Raises:
        StorageError: the idempotency record points at a missing credential or one without a copy.
    """
    credential = session.get(Credential, credential_id)
    if credential is None:
        raise StorageError(f"idempotency record points at missing credential {credential_id}")
    if credential.sealed_sd_jwt is None:
        raise StorageError(f"credential {credential.id} has no stored copy")
    sd_jwt = ctx.keys.kek.open(credential.id, Sealed.from_blob(credential.sealed_sd_jwt)).decode()
    status_list = session.get(StatusListRow, credential.status_list_id)
    uri = status_list.uri if status_list is not None else ""
    return IssuedCredential(CredentialView.of(credential, uri, now), sd_jwt)
