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
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select
from sqlalchemy.orm import Session

from clearance.credentials import (
    ClearanceClaim,
    StatusReference,
    issue_facility_credential,
)
from clearance.errors import (
    ClearanceError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    StorageError,
    WorkflowError,
    WriteConflictError,
)
from clearance.keys import PublicKey
from registry.context import (
    RegistryContext,
    find_idempotent,
    loads_list,
    new_id,
    remember_idempotent,
    request_hash,
)
from registry.policy import Caller
from registry.signing import CredentialSpec, sign_all, sign_credential
from registry.store import audit, statuslists
from registry.store.batching import AuditEvent
from registry.store.envelope import Sealed
from registry.store.models import (
    Assessment,
    Credential,
    CredentialLike,
    CredentialRecord,
    Node,
    Organization,
    Person,
    StatusListRow,
)
from registry.workflows.organizations import parse_public_jwk
from registry.workflows.people import PersonalData

_RETRIES = 5


@dataclass(frozen=True)
class IssueRequest:
    assessment_id: str
    holder_jwk: str
    idempotency_key: str = ""


@dataclass(frozen=True)
class Issued:
    credential: CredentialLike
    sd_jwt: str


class _OpenList:
    """The status list new credentials go to, cached per process and recounted now and then."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._row: tuple[int, str, int] | None = None
        self._issued_since_count = 0

    def get(self, ctx: RegistryContext) -> tuple[int, str, int]:
        with self._lock:
            if self._row is None or self._issued_since_count >= 10_000:
                with ctx.db.transaction() as session:
                    self._row = self._choose(ctx, session)
                self._issued_since_count = 0
            return self._row

    @staticmethod
    def _choose(ctx: RegistryContext, session: Session) -> tuple[int, str, int]:
        config = ctx.config
        row = statuslists.open_list(session, config.status_list_uri, config.status_list_size, ctx.now())
        statuslists.refresh_fill(session, row)
        if row.allocated >= row.size * statuslists.MAX_FILL:
            row = statuslists.open_list(session, config.status_list_uri, config.status_list_size, ctx.now())
        return (row.id, row.uri, row.size)

    def count(self, n: int = 1) -> None:
        with self._lock:
            self._issued_since_count += n

    def forget(self) -> None:
        with self._lock:
            self._row = None


def _open_list(ctx: RegistryContext) -> _OpenList:
    return ctx.resource("issuance.open_list", _OpenList)


@dataclass(frozen=True)
class _Inputs:
    """What issuing from one assessment needs, read in one query."""

    assessment_id: str
    state: str
    consent_at: int | None
    withdrawn_at: int | None
    valid_until: int | None
    level: str
    categories: str
    person_id: str
    subject: str
    organization_id: str | None
    personal_data: bytes
    wrapped_key: bytes
    kek_id: str
    org_name: str | None
    facility_active: bool | None
    facility_level: str | None
    facility_categories: str | None
    facility_valid_until: int | None


_COLUMNS = (
    select(
        Assessment.id,
        Assessment.state,
        Assessment.consent_at,
        Assessment.withdrawn_at,
        Assessment.valid_until,
        Assessment.level,
        Assessment.categories,
        Person.id,
        Person.subject,
        Person.organization_id,
        Person.personal_data,
        Person.wrapped_key,
        Person.kek_id,
        Organization.name,
        Organization.facility_active,
        Organization.facility_level,
        Organization.facility_categories,
        Organization.facility_valid_until,
    )
    .join(Person, Person.id == Assessment.person_id)
    .outerjoin(Organization, Organization.id == Person.organization_id)
)
_LOAD_INPUTS = _COLUMNS.where(Assessment.id.in_(bindparam("ids", expanding=True)))
_LOAD_ONE = _COLUMNS.where(Assessment.id == bindparam("id"))
"""Built once: issuance is the registry's hottest path."""

_INSERT_CREDENTIAL = insert(cast(Table, Credential.__table__))


def _insert(session: Session, issued: list[Issued]) -> None:
    rows = []
    for item in issued:
        assert isinstance(item.credential, CredentialRecord)
        rows.append(item.credential.row())
    session.connection().execute(_INSERT_CREDENTIAL, rows)


def _load_inputs(session: Session | Connection, assessment_ids: set[str]) -> dict[str, _Inputs]:
    connection = session.connection() if isinstance(session, Session) else session
    if len(assessment_ids) == 1:
        (only,) = assessment_ids
        rows = connection.execute(_LOAD_ONE, {"id": only}).all()
    else:
        rows = connection.execute(_LOAD_INPUTS, {"ids": list(assessment_ids)}).all()
    return {row[0]: _Inputs(*row) for row in rows}  # type: ignore[call-arg]


def _check_inputs(ctx: RegistryContext, inputs: _Inputs | None, assessment_id: str, now: int) -> _Inputs:
    """Raises NotFoundError or WorkflowError unless a credential may be issued from ``inputs``."""
    if inputs is None:
        raise NotFoundError(f"assessment {assessment_id!r} not found")
    if inputs.consent_at is None or inputs.withdrawn_at is not None:
        raise WorkflowError("no credential without the person's consent")
    if inputs.state != "favorable" or inputs.valid_until is None:
        raise WorkflowError(f"assessment {inputs.assessment_id} is {inputs.state}, not favorable")
    if inputs.valid_until <= now:
        raise WorkflowError("the assessment has expired; a reassessment is needed")
    if inputs.organization_id is None or inputs.org_name is None:
        raise WorkflowError("the person is not affiliated with an organization")
    name = inputs.org_name
    if (
        not inputs.facility_active
        or (inputs.facility_valid_until or 0) <= now
        or inputs.facility_level is None
    ):
        raise WorkflowError(f"{name} holds no valid facility clearance")
    levels = ctx.config.levels
    if levels.index(inputs.level) > levels.index(inputs.facility_level):
        raise WorkflowError(f"{name}'s facility clearance ({inputs.facility_level}) is below {inputs.level}")
    missing = sorted(set(loads_list(inputs.categories)) - set(loads_list(inputs.facility_categories)))
    if missing:
        raise WorkflowError(f"{name}'s facility clearance does not cover {missing}")
    return inputs


def _personal_claims(ctx: RegistryContext, inputs: _Inputs) -> dict[str, str]:
    data = PersonalData.from_bytes(
        ctx.keys.kek.open(inputs.person_id, Sealed(inputs.personal_data, inputs.wrapped_key, inputs.kek_id))
    )
    return {
        "given_name": data.given_name,
        "family_name": data.family_name,
        "birthdate": data.birthdate,
        "nationality": data.nationality,
        "employer": inputs.org_name or "",
    }


def _build_personnel(
    ctx: RegistryContext,
    inputs: _Inputs,
    holder: PublicKey,
    list_row: tuple[int, str, int],
    index: int,
    now: int,
    *,
    keep_copy: bool,
    personal: dict[str, str] | None = None,
) -> Issued:
    """One credential: :func:`_build_many` with a batch of one."""
    claims = personal if personal is not None else _personal_claims(ctx, inputs)
    copy_marker = "keep" if keep_copy else ""
    planned = [(inputs, holder, index, copy_marker, "")]
    return _build_many(ctx, planned, {inputs.person_id: claims}, list_row, now)[0]


def _sealed_copy(ctx: RegistryContext, credential: CredentialLike) -> str:
    if credential.sealed_sd_jwt is None:
        raise StorageError(f"credential {credential.id} has no stored copy")
    return ctx.keys.kek.open(credential.id, Sealed.from_blob(credential.sealed_sd_jwt)).decode()


@dataclass(frozen=True)
class _Pending:
    """One single-issuance request waiting for the group-commit writer."""

    caller: Caller
    request: IssueRequest
    holder: PublicKey
    fingerprint: str
    list_row: tuple[int, str, int]


class _SingleIssuance:
    """Writes every pending single issuance of a batch together.

    One query reads the assessments, people and organizations of the whole
    batch, each request is checked and signed, one statement inserts every
    credential. A request refused by its checks drops out without writing;
    a taken status index fails the batch, which the writer then redoes one
    request at a time.
    """

    def __init__(self, ctx: RegistryContext) -> None:
        self._ctx = ctx

    def write_group(
        self, session: Session, payloads: list[Any]
    ) -> list[tuple[Any, list[AuditEvent]] | ClearanceError]:
        ctx = self._ctx
        now = ctx.now()
        pending: list[_Pending] = payloads
        loaded = _load_inputs(session, {p.request.assessment_id for p in pending})
        outcomes: list[tuple[Any, list[AuditEvent]] | ClearanceError | None] = [None] * len(pending)
        fresh: list[Issued] = []
        fresh_by_id: dict[str, Issued] = {}
        # Idempotency keys are written in key order (stable: of two requests with one key the
        # first still wins), so replicas writing overlapping keys lock them in one order and
        # cannot deadlock on each other's uncommitted keys.
        for position in sorted(range(len(pending)), key=lambda p: pending[p].request.idempotency_key):
            item = pending[position]
            key = item.request.idempotency_key
            try:
                earlier = find_idempotent(session, item.caller, key, "issue_credential", item.fingerprint)
                if earlier is not None:
                    # Issued earlier in this very batch: its row is inserted only at the end.
                    issued_here = fresh_by_id.get(earlier)
                    outcomes[position] = (issued_here or _earlier(ctx, session, earlier), [])
                    continue
                inputs = _check_inputs(
                    ctx, loaded.get(item.request.assessment_id), item.request.assessment_id, now
                )
            except ClearanceError as exc:
                outcomes[position] = exc
                continue
            index = secrets.randbelow(item.list_row[2])
            issued = _build_personnel(
                ctx, inputs, item.holder, item.list_row, index, now, keep_copy=bool(key)
            )
            fresh.append(issued)
            fresh_by_id[issued.credential.id] = issued
            if key:
                remember_idempotent(
                    session, item.caller, key, "issue_credential", item.fingerprint, issued.credential.id, now
                )
                session.flush()  # a later request of this batch with the same key must see it
            event: AuditEvent = (
                now,
                item.caller.label,
                "credential.issue",
                "credential",
                issued.credential.id,
                {
                    "assessment_id": item.request.assessment_id,
                    "status": [item.list_row[0], index],
                    "personal_data_read": "to fill the credential's disclosable claims",
                },
            )
            outcomes[position] = (issued, [event])
        if fresh:
            _insert(session, fresh)  # a status index already taken fails here (unique constraint)
        done = [outcome for outcome in outcomes if outcome is not None]
        assert len(done) == len(pending), "every request has an outcome"
        return done


def issue_credential(ctx: RegistryContext, caller: Caller, request: IssueRequest) -> Issued:
    """Issue one personnel credential (idempotent per caller and key).

    The checks, the signing, the row, the idempotency record and the audit
    event all happen inside the group-commit writer (:mod:`registry.batching`):
    under load, concurrent issuances share one transaction, one read, one
    insert and one lock of the audit chain; nothing is read outside the
    transaction that writes.

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
    writer = ctx.resource("issuance.single_writer", lambda: _SingleIssuance(ctx))
    for attempt in range(_RETRIES):
        list_row = lists.get(ctx)  # outside the write: it may open a transaction of its own
        try:
            result: Issued = ctx.writer.submit(
                group=writer, payload=_Pending(caller, request, holder, fingerprint, list_row)
            )
        except WriteConflictError:
            if attempt == _RETRIES - 1:
                raise
            continue  # a taken index or a concurrent request with the same idempotency key: retry
        lists.count()
        ctx.counters.add("credential.issue")
        return result
    raise StorageError("could not allocate a status index")  # pragma: no cover


def _earlier(ctx: RegistryContext, session: Session, credential_id: str) -> Issued:
    credential = session.get(Credential, credential_id)
    if credential is None:
        raise StorageError(f"idempotency record points at missing credential {credential_id}")
    return Issued(credential, _sealed_copy(ctx, credential))


def bulk_issue(ctx: RegistryContext, caller: Caller, requests: Sequence[IssueRequest]) -> list[Issued]:
    """Issue many credentials in one transaction: all or nothing.

    Idempotency keys work as in :func:`issue_credential`: a request whose key
    was used before returns that credential instead of issuing another.

    The signing, which is most of the work, happens before the write transaction:
    the batch is planned and signed on every core from a read-only look at the
    database, with status indices that were free then. The write transaction then
    reads the same inputs again under the status list's lock: if anything the plan
    rests on changed, it plans and signs again inside; an index that another
    issuance took meanwhile is replaced and only its credential signed again. What
    is committed is exactly what a plan made under the lock would commit, and
    nothing is written before it: concurrent bulk loads sign side by side and take
    turns only to write.

    Raises:
        InvalidArgumentError: too many requests, or one is invalid (its position is named).
        WorkflowError: one request is not issuable (its position is named).
        ConflictError: a key was used for a different request (its position is named).
    """
    if not requests:
        return []
    if len(requests) > 10_000:
        raise InvalidArgumentError("requests", "at most 10000 per call")
    holders = [parse_public_jwk(r.holder_jwk, f"requests[{i}].holder_jwk") for i, r in enumerate(requests)]
    # The same idempotency keys as single issuance: a retried request returns what the first produced.
    fingerprints = [
        request_hash("issue_credential", {"assessment": r.assessment_id, "holder": h.thumbprint})
        for r, h in zip(requests, holders, strict=True)
    ]
    batch = _Bulk(ctx, caller, requests, holders, fingerprints)
    lists = _open_list(ctx)
    for attempt in range(_RETRIES):
        now = ctx.now()
        try:
            list_row = lists.get(ctx)  # before the transaction: it may open one of its own
            with ctx.db.transaction(readonly=True) as session:
                draft = batch.plan(session, list_row, now)
            signed = _sign_plan(ctx, draft, list_row, now)
            with ctx.db.transaction() as session:
                # Bulk loads of one list take turns to write: two batches holding a thousand
                # random indices each would collide on one of them most times.
                session.execute(
                    select(StatusListRow.id).where(StatusListRow.id == list_row[0]).with_for_update()
                )
                plan = batch.plan(session, list_row, now, draft=draft)
                if not plan.same_work_as(draft):
                    signed = _sign_plan(ctx, plan, list_row, now)  # something changed: sign what holds now
                fresh = _resign_taken(ctx, session, plan, signed, list_row, now)
                for (_inputs, _holder, _index, key, fingerprint), issued in zip(
                    plan.planned, fresh, strict=True
                ):
                    if key:
                        remember_idempotent(
                            session, caller, key, "issue_credential", fingerprint, issued.credential.id, now
                        )
                results = [fresh[item] if isinstance(item, int) else item for item in plan.out]
                if not fresh:
                    return results  # every request was a repeat: nothing changes
                _insert(session, fresh)
                audit.append(
                    session,
                    at=now,
                    actor=caller.label,
                    action="credential.bulk_issue",
                    object_type="status_list",
                    object_id=str(list_row[0]),
                    details={
                        "count": len(fresh),
                        "credentials": [i.credential.id for i in fresh],
                        "personal_data_read": "to fill the credentials' disclosable claims",
                    },
                )
            lists.count(len(fresh))
            ctx.counters.add("credential.issue", len(fresh))
            return results
        except WriteConflictError:
            if attempt == _RETRIES - 1:
                raise
    raise StorageError("could not allocate status indices")  # pragma: no cover


_Planned = tuple[_Inputs, PublicKey, int, str, str]
"""``(inputs, holder, status index, idempotency key, fingerprint)`` of a credential to issue."""


@dataclass
class _BulkPlan:
    """What a bulk request will issue, as planned from one read of the database."""

    loaded: dict[str, _Inputs]
    indices: list[int]
    """One status index per request, by position (repeats leave theirs unused)."""
    out: list[Issued | int]
    """Per request: an earlier credential, or the position in ``planned`` of a fresh one."""
    planned: list[_Planned]
    personal: dict[str, dict[str, str]]

    def same_work_as(self, other: _BulkPlan) -> bool:
        """Would both plans issue the same credentials from the same inputs?"""
        return (
            self.loaded == other.loaded
            and self.planned == other.planned
            and [item if isinstance(item, int) else item.credential.id for item in self.out]
            == [item if isinstance(item, int) else item.credential.id for item in other.out]
        )


@dataclass
class _Bulk:
    ctx: RegistryContext
    caller: Caller
    requests: Sequence[IssueRequest]
    holders: list[PublicKey]
    fingerprints: list[str]

    def plan(
        self,
        session: Session,
        list_row: tuple[int, str, int],
        now: int,
        *,
        draft: _BulkPlan | None = None,
    ) -> _BulkPlan:
        """Check every request and decide what it gets.

        A ``draft`` made earlier lends its status indices (checked again when written) and,
        when the inputs read now are the ones it read, the personal claims it decrypted.

        Raises:
            WorkflowError, NotFoundError, ConflictError, InvalidArgumentError: naming the request.
        """
        ctx, requests = self.ctx, self.requests
        loaded = _load_inputs(session, {r.assessment_id for r in requests})
        if draft is None:
            indices = _distinct_free_indices(session, list_row, len(requests))
            personal: dict[str, dict[str, str]] = {}
        else:
            indices = draft.indices
            personal = draft.personal if loaded == draft.loaded else {}
        claims: dict[str, dict[str, str]] = {}
        out: list[Issued | int] = []  # an int points at the fresh credential it repeats
        planned: list[_Planned] = []
        keyed: dict[str, tuple[str, int]] = {}
        for position, (request, holder, index, fingerprint) in enumerate(
            zip(requests, self.holders, indices, self.fingerprints, strict=True)
        ):
            key = request.idempotency_key
            try:
                if key in keyed:
                    if keyed[key][0] != fingerprint:
                        raise ConflictError(f"idempotency key {key!r} names two different requests")
                    out.append(keyed[key][1])
                    continue
                earlier = find_idempotent(session, self.caller, key, "issue_credential", fingerprint)
                if earlier is not None:
                    out.append(_earlier(ctx, session, earlier))
                    continue
                inputs = _check_inputs(ctx, loaded.get(request.assessment_id), request.assessment_id, now)
            except (WorkflowError, NotFoundError, ConflictError) as exc:
                raise type(exc)(f"requests[{position}]: {exc}") from exc
            except InvalidArgumentError as exc:
                raise InvalidArgumentError(f"requests[{position}].{exc.field}", exc.detail) from exc
            if inputs.person_id not in claims:
                claims[inputs.person_id] = personal.get(inputs.person_id) or _personal_claims(ctx, inputs)
            if key:
                keyed[key] = (fingerprint, len(planned))
            out.append(len(planned))
            planned.append((inputs, holder, index, key, fingerprint))
        return _BulkPlan(loaded, indices, out, planned, claims)


def _sign_plan(
    ctx: RegistryContext, plan: _BulkPlan, list_row: tuple[int, str, int], now: int
) -> tuple[list[CredentialSpec], list[str]]:
    return _sign(ctx, plan.planned, plan.personal, list_row, now)


def _sign(
    ctx: RegistryContext,
    planned: list[_Planned],
    personal: dict[str, dict[str, str]],
    list_row: tuple[int, str, int],
    now: int,
) -> tuple[list[CredentialSpec], list[str]]:
    """The specs of the planned credentials and their signed SD-JWTs (on every core for a large batch)."""
    specs = [
        _spec(ctx, inputs, holder, index, personal, list_row, now) for inputs, holder, index, *_ in planned
    ]
    return specs, sign_all(ctx, ctx.keys.issuing_key, specs)


def _resign_taken(
    ctx: RegistryContext,
    session: Session,
    plan: _BulkPlan,
    signed: tuple[list[CredentialSpec], list[str]],
    list_row: tuple[int, str, int],
    now: int,
) -> list[Issued]:
    """The records of a plan signed before the lock; an index taken since gets a free one and a new signature.

    ``plan.planned`` is updated in place with the replacement indices.
    """
    specs, tokens = list(signed[0]), list(signed[1])
    wanted = [index for _inputs, _holder, index, *_ in plan.planned]
    taken = _taken_indices(session, list_row[0], wanted)
    if taken:
        replacements = iter(_distinct_free_indices(session, list_row, len(taken), avoid=set(wanted)))
        for position, (inputs, holder, index, key, fingerprint) in enumerate(plan.planned):
            if index in taken:
                index = next(replacements)
                plan.planned[position] = (inputs, holder, index, key, fingerprint)
                specs[position] = _spec(ctx, inputs, holder, index, plan.personal, list_row, now)
                tokens[position] = sign_credential(ctx.keys.issuing_key, specs[position])
    return _records(ctx, plan.planned, specs, tokens, list_row, now)


def _spec(
    ctx: RegistryContext,
    inputs: _Inputs,
    holder: PublicKey,
    index: int,
    personal: dict[str, dict[str, str]],
    list_row: tuple[int, str, int],
    now: int,
) -> CredentialSpec:
    assert inputs.valid_until is not None
    return CredentialSpec(
        issuer=ctx.config.issuer,
        subject=inputs.subject,
        holder_jwk=holder.bare_jwk,
        jurisdiction=ctx.config.jurisdiction,
        level=inputs.level,
        categories=tuple(loads_list(inputs.categories)),
        status_uri=list_row[1],
        status_index=index,
        issued_at=now,
        expires_at=min(now + ctx.config.credential_lifetime, inputs.valid_until),
        personal=personal[inputs.person_id],
    )


def _build_many(
    ctx: RegistryContext,
    planned: list[_Planned],
    personal: dict[str, dict[str, str]],
    list_row: tuple[int, str, int],
    now: int,
) -> list[Issued]:
    """Sign the planned credentials (on every core for a large batch) and make their rows."""
    return _records(ctx, planned, *_sign(ctx, planned, personal, list_row, now), list_row, now)


def _records(
    ctx: RegistryContext,
    planned: list[_Planned],
    specs: list[CredentialSpec],
    tokens: list[str],
    list_row: tuple[int, str, int],
    now: int,
) -> list[Issued]:
    """The credential rows of signed credentials.

    A sealed copy of the SD-JWT is kept (it carries personal claims) only when there is an
    idempotency key, to answer a repeated request with it.
    """
    key = ctx.keys.issuing_key
    built = []
    for (inputs, holder, index, idempotency_key, _fingerprint), spec, sd_jwt in zip(
        planned, specs, tokens, strict=True
    ):
        assert inputs.organization_id is not None
        credential_id = new_id("crd")
        record = CredentialRecord(
            id=credential_id,
            kind="personnel",
            person_id=inputs.person_id,
            organization_id=inputs.organization_id,
            assessment_id=inputs.assessment_id,
            node_id=None,
            jurisdiction=ctx.config.jurisdiction,
            level=inputs.level,
            categories=inputs.categories,
            state="valid",
            state_reason=None,
            status_list_id=list_row[0],
            status_index=index,
            issued_at=now,
            expires_at=spec.expires_at,
            holder_thumbprint=holder.thumbprint,
            issuing_kid=key.kid,
            suspended_by=None,
            sealed_sd_jwt=ctx.keys.kek.seal(credential_id, sd_jwt.encode()).to_blob()
            if idempotency_key
            else None,
        )
        built.append(Issued(record, sd_jwt))
    return built


def _taken_indices(session: Session, list_id: int, indices: Sequence[int]) -> set[int]:
    """Which of ``indices`` a credential of list ``list_id`` already holds."""
    taken: set[int] = set()
    for start in range(0, len(indices), 5000):
        taken |= {
            i
            for (i,) in session.execute(
                select(Credential.status_index).where(
                    Credential.status_list_id == list_id,
                    Credential.status_index.in_(list(indices[start : start + 5000])),
                )
            )
        }
    return taken


def _distinct_free_indices(
    session: Session, list_row: tuple[int, str, int], count: int, *, avoid: set[int] | None = None
) -> list[int]:
    """``count`` distinct random indices of the list that no credential holds (nor in ``avoid``)."""
    list_id, _uri, size = list_row
    chosen: set[int] = set()
    avoid = avoid or set()
    while len(chosen) < count:
        candidates = {secrets.randbelow(size) for _ in range((count - len(chosen)) * 2)} - chosen - avoid
        taken = _taken_indices(session, list_id, list(candidates))
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
        list_row = lists.get(ctx)  # before the transaction: it may open one of its own
        try:
            with ctx.db.transaction() as session:
                earlier = find_idempotent(session, caller, idempotency_key, "issue_facility", fingerprint)
                if earlier is not None:
                    credential = session.get(Credential, earlier)
                    assert credential is not None
                    return Issued(credential, _sealed_copy(ctx, credential))
                issued = _build_facility(ctx, session, organization_id, node_id, list_row, now)
                _insert(session, [issued])
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
        except WriteConflictError:
            if attempt == _RETRIES - 1:
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
    credential = CredentialRecord(
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
        state_reason=None,
        status_list_id=list_id,
        status_index=index,
        issued_at=now,
        expires_at=expires,
        holder_thumbprint=node.key_thumbprint,
        issuing_kid=key.kid,
        suspended_by=None,
        sealed_sd_jwt=sealed.to_blob(),
    )
    return Issued(credential, sd_jwt)


def enroll_node(ctx: RegistryContext, *, token: str, name: str, public_jwk: str) -> tuple[Node, str]:
    """Enroll a node and, if its organization is cleared, issue its facility credential: one transaction.

    Enrollment stands without a facility credential when the organization is
    not cleared (yet). Any other failure rolls both back and leaves the
    one-time token unused, so the operator can simply try again.

    Raises:
        AuthenticationError: unknown, used or expired token.
        InvalidArgumentError: a bad name or key.
        ConflictError: the node key is already enrolled.
        StorageError: the database failed.
    """
    from registry.policy import SYSTEM
    from registry.workflows.organizations import redeem_enrollment_token

    lists = _open_list(ctx)
    for attempt in range(_RETRIES):
        now = ctx.now()
        list_row = lists.get(ctx)  # before the transaction: it may open one of its own
        try:
            with ctx.db.transaction() as session:
                node = redeem_enrollment_token(
                    session, token=token, name=name, public_jwk=public_jwk, now=now
                )
                try:
                    issued = _build_facility(ctx, session, node.organization_id, node.id, list_row, now)
                except WorkflowError:
                    return node, ""
                _insert(session, [issued])
                audit.append(
                    session,
                    at=now,
                    actor=SYSTEM.label,
                    action="credential.issue_facility",
                    object_type="credential",
                    object_id=issued.credential.id,
                    details={"organization_id": node.organization_id, "node_id": node.id},
                )
            lists.count()
            return node, issued.sd_jwt
        except WriteConflictError:
            if attempt == _RETRIES - 1:
                raise
    raise StorageError("could not allocate a status index")  # pragma: no cover
