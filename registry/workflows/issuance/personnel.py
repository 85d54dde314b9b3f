"""Issuing one personnel credential, through the group-commit writer.

The checks, the signing, the row, the idempotency record and the audit
event all happen inside the group-commit writer
(:mod:`registry.store.batching`): under load, concurrent issuances share one
transaction, one read, one insert and one lock of the audit chain; nothing
is read outside the transaction that writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from clearance.errors import ClearanceError
from clearance.keys import PublicKey
from registry.context import RegistryContext
from registry.policy import Caller
from registry.store import audit
from registry.store.batching import Written
from registry.store.db import retry_conflicts
from registry.store.idempotency import IdempotencyKey
from registry.store.statuslists import OpenStatusList
from registry.workflows.arguments import parse_public_jwk
from registry.workflows.issuance import eligibility
from registry.workflows.issuance.eligibility import personal_claims
from registry.workflows.issuance.records import (
    IssuedCredential,
    IssueRequest,
    Minted,
    PlannedCredential,
    earlier,
    idempotency_of,
    insert_all,
    sign_and_mint,
)


@dataclass(frozen=True)
class PendingIssue:
    """One single-issuance request waiting for the group-commit writer."""

    ctx: RegistryContext
    actor: str
    """The caller's audit label."""
    assessment_id: str
    holder: PublicKey
    idempotency: IdempotencyKey
    open_list: OpenStatusList


class PersonnelWriter:
    """Writes every pending single issuance of a batch together.

    One query reads the assessments, people and organizations of the whole
    batch, each request is checked and signed, one statement inserts every
    credential. A request refused by its checks drops out without writing;
    a taken status index fails the batch, which the writer then redoes one
    request at a time.

    It keeps nothing: the batch's payloads carry their context (a batcher
    belongs to one context, so they all carry the same).
    """

    def write_group(
        self, session: Session, payloads: Sequence[PendingIssue]
    ) -> list[Written[IssuedCredential] | ClearanceError]:
        ctx = payloads[0].ctx
        assert all(p.ctx is ctx for p in payloads), "one batcher writes for one registry"
        now = ctx.now()
        loaded = eligibility.load(session, {p.assessment_id for p in payloads})
        outcomes: list[Written[IssuedCredential] | ClearanceError | None] = [None] * len(payloads)
        fresh: list[Minted] = []
        fresh_by_id: dict[str, IssuedCredential] = {}
        # Idempotency keys are written in key order (stable: of two requests with one key the
        # first still wins), so replicas writing overlapping keys lock them in one order and
        # cannot deadlock on each other's uncommitted keys.
        for position in sorted(range(len(payloads)), key=lambda p: payloads[p].idempotency.key):
            item = payloads[position]
            try:
                earlier_id = item.idempotency.earlier(session)
                if earlier_id is not None:
                    # Issued earlier in this very batch: its row is inserted only at the end.
                    repeat = fresh_by_id.get(earlier_id) or earlier(ctx, session, earlier_id, now)
                    outcomes[position] = Written(repeat)
                    continue
                eligible = eligibility.check(
                    ctx.config, loaded.get(item.assessment_id), item.assessment_id, now
                )
            except ClearanceError as exc:
                outcomes[position] = exc
                continue
            planned = PlannedCredential(
                eligible, item.holder, ctx.random_index(item.open_list.size), item.idempotency
            )
            personal = {eligible.person_id: personal_claims(ctx.keys.kek, eligible)}
            [minted] = sign_and_mint(ctx, [planned], personal, item.open_list, now)
            issued = minted.issued(item.open_list.uri, now)
            fresh.append(minted)
            fresh_by_id[issued.credential.id] = issued
            if item.idempotency.key:
                item.idempotency.remember(session, issued.credential.id, now)
                session.flush()  # a later request of this batch with the same key must see it
            entry = audit.Entry(
                at=now,
                actor=item.actor,
                action="credential.issue",
                object_type="credential",
                object_id=issued.credential.id,
                details={
                    "assessment_id": item.assessment_id,
                    "status": [item.open_list.id, planned.index],
                    "personal_data_read": "to fill the credential's disclosable claims",
                },
            )
            outcomes[position] = Written(issued, (entry,))
        if fresh:
            insert_all(session, fresh)  # a status index already taken fails here (unique constraint)
        done = [outcome for outcome in outcomes if outcome is not None]
        assert len(done) == len(payloads), "every request has an outcome"
        return done


WRITER = PersonnelWriter()
"""The one writer of single issuances: the batcher groups the jobs of one writer."""


def issue_credential(ctx: RegistryContext, caller: Caller, request: IssueRequest) -> IssuedCredential:
    """Issue one personnel credential (idempotent per caller and key).

    Raises:
        InvalidArgumentError: a bad holder key or idempotency key.
        NotFoundError: unknown assessment.
        WorkflowError: not issuable (consent, decision, expiry, facility).
        ConflictError: the idempotency key was used for another request.
        WriteConflictError: the status index was taken again and again.
    """
    holder = parse_public_jwk(request.holder_jwk, "holder_jwk")
    idempotency = idempotency_of(caller.principal, request, holder)

    def attempt() -> IssuedCredential:
        # A taken index, or a concurrent request with the same idempotency key, conflicts: run again.
        open_list = ctx.open_list.get(ctx.now())  # outside the write: it may open a transaction of its own
        pending = PendingIssue(ctx, caller.label, request.assessment_id, holder, idempotency, open_list)
        return ctx.writer.submit(WRITER, pending)

    issued = retry_conflicts(attempt)
    ctx.open_list.count()
    ctx.counters.add("credential.issue")
    return issued
