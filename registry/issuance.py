"""Issuing personnel and facility credentials.

A personnel credential is issued only for a favorable, unexpired assessment
with consent in force, to a person affiliated with an organization that
holds an active facility clearance at least as high as the assessment (a
contractor cannot hold a higher clearance than its facility), bound to the
holder's public key. Its ``exp`` is the earlier of the credential lifetime
and the end of the clearance's validity. The SD-JWT handed to the holder
carries their name, birth date, nationality and employer as selectively
disclosable claims; the registry keeps a sealed copy only to answer a
repeated request with the same idempotency key.

Bulk issuance does the same checks for many requests in one transaction,
with batched reads and inserts.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clearance.credentials import (
    ClearanceClaim,
    StatusReference,
    issue_facility_credential,
    issue_personnel_credential,
)
from clearance.errors import InvalidArgumentError, NotFoundError, StorageError, WorkflowError
from clearance.keys import PublicKey
from registry import audit, statuslists
from registry.assessments import issuable
from registry.context import (
    RegistryContext,
    find_idempotent,
    loads_list,
    new_id,
    remember_idempotent,
    request_hash,
)
from registry.envelope import Sealed
from registry.models import Assessment, Credential, Node, Organization, Person
from registry.organizations import parse_public_jwk
from registry.people import unseal
from registry.policy import Caller

_RETRIES = 5


@dataclass(frozen=True)
class IssueRequest:
    assessment_id: str
    holder_jwk: str
    idempotency_key: str = ""


@dataclass(frozen=True)
class Issued:
    credential: Credential
    sd_jwt: str


class _OpenList:
    """The status list new credentials go to, cached per process and recounted now and then."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._row: tuple[int, str, int] | None = None
        self._issued_since_count = 0

    def get(self, ctx: RegistryContext, session: Session) -> tuple[int, str, int]:
        with self._lock:
            if self._row is None or self._issued_since_count >= 10_000:
                row = statuslists.open_list(
                    session, ctx.config.status_list_uri, ctx.config.status_list_size, ctx.now()
                )
                statuslists.refresh_fill(session, row)
                if row.allocated >= row.size * statuslists.MAX_FILL:
                    row = statuslists.open_list(
                        session, ctx.config.status_list_uri, ctx.config.status_list_size, ctx.now()
                    )
                self._row = (row.id, row.uri, row.size)
                self._issued_since_count = 0
            return self._row

    def count(self, n: int = 1) -> None:
        with self._lock:
            self._issued_since_count += n

    def forget(self) -> None:
        with self._lock:
            self._row = None


_open_lists: dict[int, _OpenList] = {}


def _open_list(ctx: RegistryContext) -> _OpenList:
    return _open_lists.setdefault(id(ctx), _OpenList())


def _facility_covers(
    ctx: RegistryContext, org: Organization, level: str, categories: list[str], now: int
) -> None:
    if not org.facility_active or (org.facility_valid_until or 0) <= now or org.facility_level is None:
        raise WorkflowError(f"{org.name} holds no valid facility clearance")
    levels = ctx.config.levels
    if levels.index(level) > levels.index(org.facility_level):
        raise WorkflowError(f"{org.name}'s facility clearance ({org.facility_level}) is below {level}")
    missing = sorted(set(categories) - set(loads_list(org.facility_categories)))
    if missing:
        raise WorkflowError(f"{org.name}'s facility clearance does not cover {missing}")


def _personal_claims(ctx: RegistryContext, person: Person, org: Organization) -> dict[str, str]:
    data = unseal(ctx, person)
    return {
        "given_name": data.given_name,
        "family_name": data.family_name,
        "birthdate": data.birthdate,
        "nationality": data.nationality,
        "employer": org.name,
    }


def _build_personnel(
    ctx: RegistryContext,
    session: Session,
    request: IssueRequest,
    holder: PublicKey,
    list_row: tuple[int, str, int],
    index: int,
    now: int,
    *,
    assessment: Assessment | None = None,
    person: Person | None = None,
    org: Organization | None = None,
) -> Issued:
    assessment = assessment or issuable(session, request.assessment_id, now)
    person = person or session.get(Person, assessment.person_id)
    if person is None or person.organization_id is None:
        raise WorkflowError("the person is not affiliated with an organization")
    org = org or session.get(Organization, person.organization_id)
    if org is None:
        raise NotFoundError(f"organization {person.organization_id!r} not found")
    categories = loads_list(assessment.categories)
    _facility_covers(ctx, org, assessment.level, categories, now)
    assert assessment.valid_until is not None
    expires = min(now + ctx.config.credential_lifetime, assessment.valid_until)
    key = ctx.keys.issuing_key
    list_id, uri, _size = list_row
    credential_id = new_id("crd")
    issued = issue_personnel_credential(
        key,
        issuer=ctx.config.issuer,
        subject=person.subject,
        holder=holder,
        clearance=ClearanceClaim(ctx.config.jurisdiction, assessment.level, tuple(categories)),
        status=StatusReference(uri, index),
        issued_at=now,
        expires_at=expires,
        personal=_personal_claims(ctx, person, org),
    )
    sd_jwt = issued.serialize()
    sealed = ctx.keys.kek.seal(credential_id, sd_jwt.encode())
    credential = Credential(
        id=credential_id,
        kind="personnel",
        person_id=person.id,
        organization_id=org.id,
        assessment_id=assessment.id,
        node_id=None,
        jurisdiction=ctx.config.jurisdiction,
        level=assessment.level,
        categories=assessment.categories,
        state="valid",
        state_reason=None,
        status_list_id=list_id,
        status_index=index,
        issued_at=now,
        expires_at=expires,
        holder_thumbprint=holder.thumbprint,
        issuing_kid=key.kid,
        suspended_by=None,
        sealed_sd_jwt=sealed.to_blob(),
    )
    return Issued(credential, sd_jwt)


def _sealed_copy(ctx: RegistryContext, credential: Credential) -> str:
    if credential.sealed_sd_jwt is None:
        raise StorageError(f"credential {credential.id} has no stored copy")
    return ctx.keys.kek.open(credential.id, Sealed.from_blob(credential.sealed_sd_jwt)).decode()


def issue_credential(ctx: RegistryContext, caller: Caller, request: IssueRequest) -> Issued:
    """Issue one personnel credential (idempotent per caller and key).

    Raises:
        InvalidArgumentError: a bad holder key.
        NotFoundError: unknown assessment.
        WorkflowError: not issuable (consent, decision, expiry, facility).
        ConflictError: the idempotency key was used for another request.
    """
    holder = parse_public_jwk(request.holder_jwk, "holder_jwk")
    fingerprint = request_hash(
        "issue_credential", {"assessment": request.assessment_id, "holder": holder.thumbprint}
    )
    lists = _open_list(ctx)
    for attempt in range(_RETRIES):
        now = ctx.now()
        try:
            with ctx.db.transaction() as session:
                earlier = find_idempotent(
                    session, caller, request.idempotency_key, "issue_credential", fingerprint
                )
                if earlier is not None:
                    credential = session.get(Credential, earlier)
                    if credential is None:
                        raise StorageError(f"idempotency record points at missing credential {earlier}")
                    return Issued(credential, _sealed_copy(ctx, credential))
                list_row = lists.get(ctx, session)
                index = secrets.randbelow(list_row[2])
                issued = _build_personnel(ctx, session, request, holder, list_row, index, now)
                session.add(issued.credential)
                session.flush()  # a taken index fails here, before the audit lock
                remember_idempotent(
                    session,
                    caller,
                    request.idempotency_key,
                    "issue_credential",
                    fingerprint,
                    issued.credential.id,
                    now,
                )
                audit.append(
                    session,
                    at=now,
                    actor=caller.label,
                    action="credential.issue",
                    object_type="credential",
                    object_id=issued.credential.id,
                    details={
                        "assessment_id": request.assessment_id,
                        "status": [list_row[0], index],
                        "personal_data_read": "to fill the credential's disclosable claims",
                    },
                )
            lists.count()
            ctx.counters.add("credential.issue")
            return issued
        except StorageError as exc:
            if not isinstance(exc.__cause__, IntegrityError) or attempt == _RETRIES - 1:
                raise
            # A taken status index, or a concurrent request with the same idempotency key: retry.
    raise StorageError("could not allocate a status index")  # pragma: no cover


def bulk_issue(ctx: RegistryContext, caller: Caller, requests: Sequence[IssueRequest]) -> list[Issued]:
    """Issue many credentials in one transaction: all or nothing.

    Raises:
        InvalidArgumentError: too many requests, or one is invalid (its position is named).
        WorkflowError: one request is not issuable (its position is named).
    """
    if not requests:
        return []
    if len(requests) > 10_000:
        raise InvalidArgumentError("requests", "at most 10000 per call")
    holders = [parse_public_jwk(r.holder_jwk, f"requests[{i}].holder_jwk") for i, r in enumerate(requests)]
    lists = _open_list(ctx)
    for attempt in range(_RETRIES):
        now = ctx.now()
        try:
            with ctx.db.transaction() as session:
                list_row = lists.get(ctx, session)
                assessments = {
                    a.id: a
                    for a in session.execute(
                        select(Assessment).where(Assessment.id.in_({r.assessment_id for r in requests}))
                    ).scalars()
                }
                people = {
                    p.id: p
                    for p in session.execute(
                        select(Person).where(Person.id.in_({a.person_id for a in assessments.values()}))
                    ).scalars()
                }
                orgs = {
                    o.id: o
                    for o in session.execute(
                        select(Organization).where(
                            Organization.id.in_(
                                {p.organization_id for p in people.values() if p.organization_id}
                            )
                        )
                    ).scalars()
                }
                indices = _distinct_free_indices(session, list_row, len(requests))
                out: list[Issued] = []
                for position, (request, holder, index) in enumerate(
                    zip(requests, holders, indices, strict=True)
                ):
                    assessment = assessments.get(request.assessment_id)
                    try:
                        if assessment is None:
                            raise NotFoundError(f"assessment {request.assessment_id!r} not found")
                        _check_issuable(assessment, now)
                        person = people[assessment.person_id]
                        org = orgs.get(person.organization_id or "")
                        out.append(
                            _build_personnel(
                                ctx,
                                session,
                                request,
                                holder,
                                list_row,
                                index,
                                now,
                                assessment=assessment,
                                person=person,
                                org=org,
                            )
                        )
                    except (WorkflowError, NotFoundError) as exc:
                        raise type(exc)(f"requests[{position}]: {exc}") from exc
                session.add_all([issued.credential for issued in out])
                session.flush()
                audit.append(
                    session,
                    at=now,
                    actor=caller.label,
                    action="credential.bulk_issue",
                    object_type="status_list",
                    object_id=str(list_row[0]),
                    details={
                        "count": len(out),
                        "credentials": [i.credential.id for i in out],
                        "personal_data_read": "to fill the credentials' disclosable claims",
                    },
                )
            lists.count(len(out))
            ctx.counters.add("credential.issue", len(out))
            return out
        except StorageError as exc:
            if not isinstance(exc.__cause__, IntegrityError) or attempt == _RETRIES - 1:
                raise
    raise StorageError("could not allocate status indices")  # pragma: no cover


def _check_issuable(assessment: Assessment, now: int) -> None:
    from registry.assessments import State, effective_state

    if assessment.consent_at is None or assessment.withdrawn_at is not None:
        raise WorkflowError("no credential without the person's consent")
    state = effective_state(assessment, now)
    if state not in (State.FAVORABLE, State.REASSESSMENT_DUE):
        raise WorkflowError(f"assessment {assessment.id} is {state.value}, not favorable")


def _distinct_free_indices(session: Session, list_row: tuple[int, str, int], count: int) -> list[int]:
    list_id, _uri, size = list_row
    chosen: set[int] = set()
    while len(chosen) < count:
        candidates = {secrets.randbelow(size) for _ in range((count - len(chosen)) * 2)} - chosen
        taken = set()
        for start in range(0, len(candidates), 5000):
            batch = list(candidates)[start : start + 5000]
            taken |= {
                i
                for (i,) in session.execute(
                    select(Credential.status_index).where(
                        Credential.status_list_id == list_id, Credential.status_index.in_(batch)
                    )
                )
            }
        chosen |= set(list(candidates - taken)[: count - len(chosen)])
    return list(chosen)


def issue_facility(
    ctx: RegistryContext, caller: Caller, *, organization_id: str, node_id: str, idempotency_key: str = ""
) -> Issued:
    """Issue an organization's facility credential bound to its node's key."""
    fingerprint = request_hash("issue_facility", {"org": organization_id, "node": node_id})
    lists = _open_list(ctx)
    for attempt in range(_RETRIES):
        now = ctx.now()
        try:
            with ctx.db.transaction() as session:
                earlier = find_idempotent(session, caller, idempotency_key, "issue_facility", fingerprint)
                if earlier is not None:
                    credential = session.get(Credential, earlier)
                    assert credential is not None
                    return Issued(credential, _sealed_copy(ctx, credential))
                issued = _build_facility(ctx, session, organization_id, node_id, lists.get(ctx, session), now)
                session.add(issued.credential)
                session.flush()
                remember_idempotent(
                    session, caller, idempotency_key, "issue_facility", fingerprint, issued.credential.id, now
                )
                audit.append(
                    session,
                    at=now,
                    actor=caller.label,
                    action="credential.issue_facility",
                    object_type="credential",
                    object_id=issued.credential.id,
                    details={"organization_id": organization_id, "node_id": node_id},
                )
            lists.count()
            return issued
        except StorageError as exc:
            if not isinstance(exc.__cause__, IntegrityError) or attempt == _RETRIES - 1:
                raise
    raise StorageError("could not allocate a status index")  # pragma: no cover


def _build_facility(
    ctx: RegistryContext,
    session: Session,
    organization_id: str,
    node_id: str,
    list_row: tuple[int, str, int],
    now: int,
) -> Issued:
    org = session.get(Organization, organization_id) if organization_id else None
    if org is None:
        raise NotFoundError(f"organization {organization_id!r} not found")
    node = session.get(Node, node_id) if node_id else None
    if node is None or node.organization_id != org.id:
        raise NotFoundError(f"node {node_id!r} of {org.name} not found")
    if not org.facility_active or org.facility_level is None or (org.facility_valid_until or 0) <= now:
        raise WorkflowError(f"{org.name} holds no valid facility clearance")
    key = ctx.keys.issuing_key
    list_id, uri, size = list_row
    index = secrets.randbelow(size)
    categories = loads_list(org.facility_categories)
    expires = min(now + ctx.config.credential_lifetime, org.facility_valid_until or now)
    credential_id = new_id("crd")
    issued = issue_facility_credential(
        key,
        issuer=ctx.config.issuer,
        subject=f"org_{org.id}",
        node_key=PublicKey.from_jwk(json.loads(node.public_jwk)),
        organization={"id": org.id, "name": org.name, "kind": org.kind, "country": org.country},
        clearance=ClearanceClaim(ctx.config.jurisdiction, org.facility_level, tuple(categories)),
        status=StatusReference(uri, index),
        issued_at=now,
        expires_at=expires,
    )
    sd_jwt = issued.serialize()
    sealed = ctx.keys.kek.seal(credential_id, sd_jwt.encode())
    credential = Credential(
        id=credential_id,
        kind="facility",
        person_id=None,
        organization_id=org.id,
        assessment_id=None,
        node_id=node.id,
        jurisdiction=ctx.config.jurisdiction,
        level=org.facility_level,
        categories=org.facility_categories or "[]",
        state="valid",
        status_list_id=list_id,
        status_index=index,
        issued_at=now,
        expires_at=expires,
        holder_thumbprint=node.key_thumbprint,
        issuing_kid=key.kid,
        sealed_sd_jwt=sealed.to_blob(),
    )
    return Issued(credential, sd_jwt)
