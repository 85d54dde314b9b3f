"""Issuing many personnel credentials in one transaction: all or nothing.

The signing, which is most of the work, happens before the write transaction:
the batch is planned and signed on every core from a read-only look at the
database, with status indices that were free then. The write transaction then
reads the same inputs again under the status list's lock: if anything the plan
rests on changed, it plans and signs again inside; an index that another
issuance took meanwhile is replaced and only its credential signed again. What
is committed is exactly what a plan made under the lock would commit, and
nothing is written before it: concurrent bulk loads sign side by side and take
turns only to write.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from clearance.errors import ConflictError, InvalidArgumentError, NotFoundError, WorkflowError
from clearance.keys import PublicKey
from registry.context import RegistryContext
from registry.policy import Caller
from registry.store import audit
from registry.store.db import retry_conflicts
from registry.store.idempotency import IdempotencyKey
from registry.store.models import StatusListRow
from registry.store.statuslists import OpenStatusList
from registry.workflows.arguments import parse_public_jwk
from registry.workflows.issuance import eligibility
from registry.workflows.issuance.allocation import free_indices, taken_indices
from registry.workflows.issuance.eligibility import IssuanceInputs, personal_claims
from registry.workflows.issuance.records import (
    IssuedCredential,
    IssueRequest,
    Minted,
    PlannedCredential,
    earlier,
    idempotency_of,
    insert_all,
    mint,
    sign_and_mint,
    spec,
)

MAX_REQUESTS = 10_000


@dataclass(frozen=True)
class Repeat:
    """A request that repeats another of the same batch (the same idempotency key)."""

    planned_position: int
    """The position in :attr:`BulkPlan.planned` of the credential both get."""


@dataclass
class BulkPlan:
    """What a bulk request will issue, as planned from one read of the database."""

    loaded: dict[str, IssuanceInputs]
    indices: list[int]
    """One status index per request, by position (repeats leave theirs unused)."""
    out: list[IssuedCredential | Repeat]
    """Per request: a credential issued before, or the planned credential it gets."""
    planned: list[PlannedCredential]
    personal: dict[str, dict[str, str]]

    def same_work_as(self, other: BulkPlan) -> bool:
        """Would both plans issue the same credentials from the same inputs?"""
        return (
            self.loaded == other.loaded
            and self.planned == other.planned
            and [_identity(item) for item in self.out] == [_identity(item) for item in other.out]
        )


def _identity(item: IssuedCredential | Repeat) -> str | int:
    return item.credential.id if isinstance(item, IssuedCredential) else item.planned_position


@dataclass(frozen=True)
class BulkRequest:
    """Every request of one bulk call, with its holder key and idempotency key parsed."""

    caller: Caller
    requests: Sequence[IssueRequest]
    holders: list[PublicKey]
    idempotency: list[IdempotencyKey]

    @classmethod
    def parse(cls, caller: Caller, requests: Sequence[IssueRequest]) -> BulkRequest:
        """Raises InvalidArgumentError for too many requests or a bad key (naming its position)."""
        if len(requests) > MAX_REQUESTS:
            raise InvalidArgumentError("requests", f"at most {MAX_REQUESTS} per call")
        holders = [
            parse_public_jwk(r.holder_jwk, f"requests[{i}].holder_jwk") for i, r in enumerate(requests)
        ]
        keys = []
        for position, (request, holder) in enumerate(zip(requests, holders, strict=True)):
            try:
                # The same idempotency keys as single issuance: a retried request returns the first's.
                keys.append(idempotency_of(caller.principal, request, holder))
            except InvalidArgumentError as exc:
                raise InvalidArgumentError(f"requests[{position}].{exc.field}", exc.detail) from exc
        return cls(caller, requests, holders, keys)

    def plan(
        self,
        ctx: RegistryContext,
        session: Session,
        open_list: OpenStatusList,
        now: int,
        *,
        draft: BulkPlan | None = None,
    ) -> BulkPlan:
        """Check every request and decide what it gets.

        A ``draft`` made earlier lends its status indices (checked again when written) and,
        when the inputs read now are the ones it read, the personal claims it decrypted.

        Raises:
            WorkflowError, NotFoundError, ConflictError: naming the request.
        """
        loaded = eligibility.load(session, {r.assessment_id for r in self.requests})
        if draft is None:
            indices = free_indices(session, open_list, len(self.requests), ctx.random_index)
            personal: dict[str, dict[str, str]] = {}
        else:
            indices = draft.indices
            personal = draft.personal if loaded == draft.loaded else {}
        claims: dict[str, dict[str, str]] = {}
        out: list[IssuedCredential | Repeat] = []
        planned: list[PlannedCredential] = []
        keyed: dict[str, tuple[str, int]] = {}
        for position, (request, holder, index, idempotency) in enumerate(
            zip(self.requests, self.holders, indices, self.idempotency, strict=True)
        ):
            key = idempotency.key
            try:
                if key in keyed:
                    if keyed[key][0] != idempotency.fingerprint:
                        raise ConflictError(f"idempotency key {key!r} names two different requests")
                    out.append(Repeat(keyed[key][1]))
                    continue
                earlier_id = idempotency.earlier(session)
                if earlier_id is not None:
                    out.append(earlier(ctx, session, earlier_id, now))
                    continue
                eligible = eligibility.check(
                    ctx.config, loaded.get(request.assessment_id), request.assessment_id, now
                )
            except (WorkflowError, NotFoundError, ConflictError) as exc:
                raise type(exc)(f"requests[{position}]: {exc}") from exc
            if eligible.person_id not in claims:
                claims[eligible.person_id] = personal.get(eligible.person_id) or personal_claims(
                    ctx.keys.kek, eligible
                )
            if key:
                keyed[key] = (idempotency.fingerprint, len(planned))
            out.append(Repeat(len(planned)))
            planned.append(PlannedCredential(eligible, holder, index, idempotency))
        return BulkPlan(loaded, indices, out, planned, claims)


def _replace_taken(
    ctx: RegistryContext,
    session: Session,
    plan: BulkPlan,
    signed: list[Minted],
    open_list: OpenStatusList,
    now: int,
) -> list[Minted]:
    """The credentials of a plan signed before the lock; an index taken since gets a free one and a new signature.

    ``plan.planned`` is updated in place with the replacement indices.
    """
    wanted = [item.index for item in plan.planned]
    taken = taken_indices(session, open_list.id, wanted)
    if not taken:
        return signed
    replacements = iter(free_indices(session, open_list, len(taken), ctx.random_index, avoid=wanted))
    lost = [position for position, item in enumerate(plan.planned) if item.index in taken]
    replaced = [dataclasses.replace(plan.planned[position], index=next(replacements)) for position in lost]
    specs = [spec(ctx, item, plan.personal, open_list, now) for item in replaced]
    fresh = list(signed)
    for position, item, minted in zip(
        lost, replaced, mint(ctx, replaced, specs, ctx.sign(specs), open_list, now), strict=True
    ):
        plan.planned[position] = item
        fresh[position] = minted
    return fresh


def bulk_issue(
    ctx: RegistryContext, caller: Caller, requests: Sequence[IssueRequest]
) -> list[IssuedCredential]:
    """Issue many credentials in one transaction: all or nothing.

    Idempotency keys work as in single issuance: a request whose key was used
    before returns that credential instead of issuing another.

    Raises:
        InvalidArgumentError: too many requests, or one is invalid (its position is named).
        WorkflowError: one request is not issuable (its position is named).
        ConflictError: a key was used for a different request (its position is named).
        WriteConflictError: the status indices were taken again and again.
    """
    if not requests:
        return []
    batch = BulkRequest.parse(caller, requests)

    def attempt() -> tuple[list[IssuedCredential], int]:
        now = ctx.now()
        open_list = ctx.open_list.get(now)  # before the transaction: it may open one of its own
        with ctx.db.transaction(readonly=True) as session:
            draft = batch.plan(ctx, session, open_list, now)
        signed = sign_and_mint(ctx, draft.planned, draft.personal, open_list, now)
        with ctx.db.transaction() as session:
            # Bulk loads of one list take turns to write: two batches holding a thousand
            # random indices each would collide on one of them most times.
            session.execute(
                select(StatusListRow.id).where(StatusListRow.id == open_list.id).with_for_update()
            )
            plan = batch.plan(ctx, session, open_list, now, draft=draft)
            if not plan.same_work_as(draft):  # something changed: sign what holds now
                signed = sign_and_mint(ctx, plan.planned, plan.personal, open_list, now)
            fresh = _replace_taken(ctx, session, plan, signed, open_list, now)
            issued = [minted.issued(open_list.uri, now) for minted in fresh]
            results = [
                issued[item.planned_position] if isinstance(item, Repeat) else item for item in plan.out
            ]
            if not fresh:
                return results, 0  # every request was a repeat: nothing changes
            for planned, credential in zip(plan.planned, issued, strict=True):
                planned.idempotency.remember(session, credential.credential.id, now)
            insert_all(session, fresh)
            audit.append(
                session,
                at=now,
                actor=caller.label,
                action="credential.bulk_issue",
                object_type="status_list",
                object_id=str(open_list.id),
                details={
                    "count": len(fresh),
                    "credentials": [item.credential.id for item in issued],
                    "personal_data_read": "to fill the credentials' disclosable claims",
                },
            )
        return results, len(fresh)

    results, count = retry_conflicts(attempt)
    if count:
        ctx.open_list.count(count)
        ctx.counters.add("credential.issue", count)
    return results
