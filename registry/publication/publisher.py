"""Publishing trust material: trust bundles, status lists, and the watch stream.

**Bundles** are built from the database (issuing keys, status lists,
agreements in force) and signed by the root key; each has a new ``version``.
:func:`ensure_fresh` republishes one before the current one nears expiry,
and keeps status lists fresh by publishing an empty delta when nothing has
changed for a while (a node refuses to decide on a stale list).

**The hub** that serves ``Watch`` streams lives in
:mod:`registry.publication.hub` (:class:`PublicationHub`, re-exported here).
"""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clearance.bundle import IssuingKey, StatusListLocation, TrustBundle
from clearance.errors import NotFoundError, StorageError
from clearance.keys import PublicKey
from registry.context import RegistryContext
from registry.publication.hub import Held as Held
from registry.publication.hub import PublicationHub as PublicationHub
from registry.store import audit, statuslists
from registry.store.models import (
    AgreementRow,
    ForeignDocument,
    IssuingKeyRow,
    RootRotationRow,
    StatusChange,
    StatusListRow,
    TrustBundleRow,
)


def current_bundle(session: Session) -> TrustBundleRow | None:
    return session.execute(
        select(TrustBundleRow).order_by(TrustBundleRow.version.desc()).limit(1)
    ).scalar_one_or_none()


def register_issuing_key(session: Session, key: PublicKey, *, not_before: int, not_after: int) -> None:
    if session.get(IssuingKeyRow, key.thumbprint) is None:
        session.add(
            IssuingKeyRow(
                kid=key.thumbprint,
                public_jwk=json.dumps(key.jwk),
                not_before=not_before,
                not_after=not_after,
                active=True,
            )
        )
        session.flush()


def publish_bundle(ctx: RegistryContext, session: Session, *, now: int, reason: str) -> TrustBundleRow:
    """Sign and store a new bundle version describing the registry as it is now.

    Raises:
        StorageError: the root key is not on this machine (it was moved offline).
    """
    root = ctx.keys.root
    if root is None:
        raise StorageError(
            "the root key is offline: sign the next bundle with `clearance registry sign-bundle`"
        )
    previous = current_bundle(session)
    version = 1 if previous is None else previous.version + 1
    keys = tuple(
        IssuingKey(PublicKey.from_jwk(json.loads(row.public_jwk)), row.not_before, row.not_after)
        for row in session.execute(
            select(IssuingKeyRow).where(IssuingKeyRow.active.is_(True)).order_by(IssuingKeyRow.not_before)
        ).scalars()
    )
    lists = tuple(StatusListLocation(row.uri, row.bits) for row in statuslists.lists(session))
    agreements = tuple(
        json.loads(row.document)
        for row in session.execute(
            select(AgreementRow).where(AgreementRow.state == "in_force").order_by(AgreementRow.id)
        ).scalars()
    )
    bundle = TrustBundle(
        issuer=ctx.config.issuer,
        jurisdiction=ctx.config.jurisdiction,
        version=version,
        issued_at=now,
        expires_at=now + ctx.config.bundle_lifetime,
        root=root.kid,
        issuing_keys=keys,
        levels=ctx.config.levels,
        categories=ctx.config.categories,
        status_lists=lists,
        agreements=agreements,
        endpoint=ctx.config.endpoint or None,
    )
    row = TrustBundleRow(
        version=version, token=bundle.sign(root), issued_at=now, expires_at=bundle.expires_at
    )
    session.add(row)
    session.flush()
    audit.append(
        session,
        at=now,
        actor="system",
        action="bundle.publish",
        object_type="trust_bundle",
        object_id=str(version),
        details={"reason": reason, "expires_at": bundle.expires_at, "agreements": len(agreements)},
    )
    return row


def ensure_fresh(ctx: RegistryContext) -> bool:
    """Republish what is about to go stale. Returns whether anything was published.

    Several replicas may renew the same document at once (all of them starting
    after a pause, say): the one that loses the race tries again and finds
    nothing left to do.

    Raises:
        StorageError: the database failed.
    """
    attempts = 3
    while True:
        attempts -= 1
        try:
            return _renew(ctx)
        except StorageError as exc:
            if attempts == 0 or not isinstance(exc.__cause__, IntegrityError):
                raise


def _renew(ctx: RegistryContext) -> bool:
    now = ctx.now()
    published = False
    with ctx.db.transaction() as session:
        bundle = current_bundle(session)
        lists = statuslists.lists(session)
        listed = set()
        if bundle is not None:
            listed = {loc.uri for loc in TrustBundle.parse(bundle.token)[0].status_lists}
        if ctx.keys.root is not None and (
            bundle is None
            or bundle.expires_at - now < ctx.config.bundle_lifetime // 2
            or any(row.uri not in listed for row in lists)
        ):
            publish_bundle(ctx, session, now=now, reason="renewal" if bundle else "first bundle")
            published = True
        for row in lists:
            if now - row.published_at >= ctx.config.status_freshness_interval:
                statuslists.set_statuses(
                    session,
                    row.id,
                    [],
                    key=ctx.keys.issuing_key,
                    now=now,
                    lifetime=ctx.config.status_list_lifetime,
                )
                published = True
    if published:
        ctx.changed()
    return published


def status_list_token(ctx: RegistryContext, uri: str) -> str:
    """The current full Status List Token for ``uri`` (home or a partner's, republished).

    Raises:
        NotFoundError: no such list.
    """
    now = ctx.now()
    with ctx.db.transaction() as session:
        row = session.execute(select(StatusListRow).where(StatusListRow.uri == uri)).scalar_one_or_none()
        if row is not None:
            return statuslists.full_token(
                session,
                row.id,
                key=ctx.keys.issuing_key,
                now=now,
                lifetime=ctx.config.status_list_lifetime,
                ttl=300,
            ).token
        foreign = session.get(ForeignDocument, uri)
        if foreign is not None and foreign.kind == "status_list":
            return foreign.token
    raise NotFoundError(f"no status list {uri!r}")


def bundle_token(ctx: RegistryContext, jurisdiction: str = "") -> str:
    with ctx.db.transaction() as session:
        if jurisdiction and jurisdiction != ctx.config.jurisdiction:
            foreign = session.get(ForeignDocument, f"bundle:{jurisdiction}")
            if foreign is None:
                raise NotFoundError(f"no trust bundle held for {jurisdiction}")
            return foreign.token
        row = current_bundle(session)
        if row is None:
            raise NotFoundError("no trust bundle has been published yet")
        return row.token


def root_history(ctx: RegistryContext) -> list[str]:
    with ctx.db.transaction() as session:
        return [
            r.document
            for r in session.execute(select(RootRotationRow).order_by(RootRotationRow.version)).scalars()
        ]


def latest_change(session: Session, list_id: int) -> StatusChange | None:
    return session.execute(
        select(StatusChange).where(StatusChange.list_id == list_id).order_by(StatusChange.seq.desc()).limit(1)
    ).scalar_one_or_none()
