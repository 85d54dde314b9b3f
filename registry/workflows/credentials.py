"""A credential as the workflows hand it out: its record, state and where its status is published."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.store.columns import load_list
from registry.store.models import CredentialLike, StatusListRow


class CredentialState(enum.StrEnum):
    VALID = "valid"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"


def effective_state(credential: CredentialLike, now: int) -> CredentialState:
    """The stored state, except that a valid credential past its ``exp`` reads as expired."""
    state = CredentialState(credential.state)
    if state is CredentialState.VALID and credential.expires_at <= now:
        return CredentialState.EXPIRED
    return state


@dataclass(frozen=True)
class CredentialView:
    """An issued credential's record (never its SD-JWT, which carries personal claims)."""

    id: str
    kind: str
    person_id: str | None
    organization_id: str | None
    jurisdiction: str
    level: str
    categories: tuple[str, ...]
    state: CredentialState
    """As of when it was read: a valid credential past its ``exp`` is expired."""
    state_reason: str | None
    status_list_uri: str
    status_index: int
    issued_at: int
    expires_at: int
    holder_thumbprint: str

    @classmethod
    def of(cls, credential: CredentialLike, status_list_uri: str, now: int) -> CredentialView:
        return cls(
            id=credential.id,
            kind=credential.kind,
            person_id=credential.person_id,
            organization_id=credential.organization_id,
            jurisdiction=credential.jurisdiction,
            level=credential.level,
            categories=load_list(credential.categories),
            state=effective_state(credential, now),
            state_reason=credential.state_reason,
            status_list_uri=status_list_uri,
            status_index=credential.status_index,
            issued_at=credential.issued_at,
            expires_at=credential.expires_at,
            holder_thumbprint=credential.holder_thumbprint,
        )


def list_uris(session: Session, list_ids: set[int]) -> dict[int, str]:
    """The URI of each status list in ``list_ids``."""
    if not list_ids:
        return {}
    rows = session.execute(select(StatusListRow.id, StatusListRow.uri).where(StatusListRow.id.in_(list_ids)))
    return {list_id: uri for list_id, uri in rows}


def views(session: Session, credentials: Sequence[CredentialLike], now: int) -> list[CredentialView]:
    """The views of ``credentials``, with the URI of each one's status list."""
    uris = list_uris(session, {c.status_list_id for c in credentials})
    return [CredentialView.of(c, uris.get(c.status_list_id, ""), now) for c in credentials]
