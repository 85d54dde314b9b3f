"""Issuing personnel credentials: who may get one, for how long, once per request, and that it verifies."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Connection, event

from clearance.errors import Reason
from clearance.jws import decode_compact
from clearance.keys import PublicKey, SigningKey
from clearance.sdjwt import split
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from registry.context import CredentialSigner
from registry.signing import CredentialSpec
from registry.store.batching import WriteBatcher
from tests.factories import Holder, refused
from tests.registry.conftest import (
    CATEGORIES,
    DAY,
    YEAR,
    IssuedCredential,
    Registry,
    fails_with,
    refused_naming,
)

pytestmark = pytest.mark.database


def claims_of(sd_jwt: str) -> dict[str, object]:
    return dict(decode_compact(split(sd_jwt).jwt, what="credential").payload)


def test_a_credential_is_issued_for_a_favorable_assessment_and_bound_to_the_holder(
    registry: Registry,
) -> None:
    cleared = registry.cleared_person()
    holder = Holder()

    issued = registry.issue(cleared.assessment.id, holder=holder)

    record = issued.record
    assert (record.kind, record.state) == ("personnel", common.CREDENTIAL_STATE_VALID)
    assert (record.person_id, record.organization_id) == (cleared.person.id, cleared.organization.id)
    assert (record.clearance.jurisdiction, record.clearance.level) == ("JP", "SECRET")
    assert tuple(record.clearance.categories) == CATEGORIES
    assert record.holder_key_thumbprint == holder.key.kid
    assert record.issued_at.seconds == registry.clock()
    assert record.expires_at.seconds == registry.clock() + YEAR
    claims = claims_of(issued.sd_jwt)
    assert claims["sub"] == cleared.person.subject
    assert claims["exp"] == record.expires_at.seconds
    assert claims["status"] == {"status_list": {"idx": record.status_index, "uri": record.status_list_uri}}


def test_the_issued_credential_verifies_against_what_the_registry_publishes(registry: Registry) -> None:
    issued = registry.issue(registry.cleared_person().assessment.id)
    verifier = registry.verifier()

    verified = verifier.verify(
        registry.present(issued, verifier, disclose=("given_name",)), now=registry.clock()
    )

    assert (verified.jurisdiction, verified.level, verified.categories) == ("JP", "SECRET", CATEGORIES)
    assert verified.disclosed == {"given_name": "Hanako"}, "the holder chose what to disclose"


def test_a_revoked_credential_no_longer_verifies_once_the_verifier_resyncs(registry: Registry) -> None:
    issued = registry.issue(registry.cleared_person().assessment.id)
    registry.adjudicator.credentials.RevokeCredential(
        pb.RevokeCredentialRequest(id=issued.id, reason="left service")
    )
    verifier = registry.verifier()

    with refused(Reason.REVOKED):
        verifier.verify(registry.present(issued, verifier), now=registry.clock())


def test_a_credential_never_outlives_its_clearance(registry: Registry) -> None:
    org = registry.new_organization(facility_valid_for=11 * YEAR)  # as long as the registry allows
    cleared = registry.cleared_person(organization=org)
    valid_until = cleared.assessment.valid_until.seconds
    registry.clock.advance(valid_until - registry.clock() - 30 * DAY)

    issued = registry.issue(cleared.assessment.id)

    assert issued.record.expires_at.seconds == valid_until
    assert claims_of(issued.sd_jwt)["exp"] == valid_until


def test_status_indices_are_spread_over_the_whole_list(registry: Registry) -> None:
    cleared = registry.cleared_person()

    indices = [registry.issue(cleared.assessment.id).record.status_index for _ in range(12)]

    assert len(set(indices)) == len(indices)
    assert max(indices) - min(indices) > 1000, "allocated at random, not in order of issuance"


def test_no_credential_for_an_unfavorable_assessment(registry: Registry) -> None:
    person = registry.enroll_person(registry.new_organization().id)
    decided = registry.decided_assessment(person.id, decision=common.DECISION_UNFAVORABLE)

    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.issue(decided.assessment.id),
        mentioning="not favorable",
    )
    assert registry.count("credentials") == 0


def test_no_credential_while_the_assessment_is_in_progress(registry: Registry) -> None:
    assessment = registry.consented_assessment(registry.enroll_person(registry.new_organization().id).id)

    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION, lambda: registry.issue(assessment.id), mentioning="not favorable"
    )


def test_no_credential_after_consent_was_withdrawn(registry: Registry) -> None:
    cleared = registry.cleared_person()
    registry.adjudicator.assessments.WithdrawConsent(
        pb.WithdrawConsentRequest(assessment_id=cleared.assessment.id, reason="withdrawn")
    )

    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.issue(cleared.assessment.id),
        mentioning="consent",
    )


def test_no_credential_from_an_expired_assessment(registry: Registry) -> None:
    cleared = registry.cleared_person()
    registry.clock.advance(cleared.assessment.valid_until.seconds - registry.clock())

    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.issue(cleared.assessment.id),
        mentioning="expired",
    )


def test_the_employers_facility_clearance_must_reach_the_level(registry: Registry) -> None:
    org = registry.new_organization(facility_level="CONFIDENTIAL")
    cleared = registry.cleared_person(organization=org, level="SECRET")

    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.issue(cleared.assessment.id),
        mentioning="below SECRET",
    )
    assert registry.count("credentials") == 0


def test_the_employers_facility_clearance_must_cover_the_categories(registry: Registry) -> None:
    org = registry.new_organization(categories=("cyber-threat",))
    cleared = registry.cleared_person(organization=org, categories=("cyber-threat", "supply-chain"))

    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.issue(cleared.assessment.id),
        mentioning="supply-chain",
    )


def test_no_credential_for_a_person_whose_employer_has_no_facility_clearance(registry: Registry) -> None:
    org = registry.new_organization(facility_level=None)
    cleared = registry.cleared_person(organization=org)

    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.issue(cleared.assessment.id),
        mentioning="no valid facility clearance",
    )


def test_no_credential_once_the_employers_facility_clearance_ended(registry: Registry) -> None:
    cleared = registry.cleared_person()
    registry.clock.advance(5 * YEAR)

    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.issue(cleared.assessment.id),
        mentioning="no valid facility clearance",
    )


def test_no_credential_for_a_person_without_an_employer(registry: Registry) -> None:
    cleared = registry.cleared_person()
    registry.admin.people.SetAffiliation(
        pb.SetAffiliationRequest(person_id=cleared.person.id, reason="resigned")
    )

    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.issue(cleared.assessment.id),
        mentioning="not affiliated",
    )


@pytest.mark.parametrize(
    "holder_jwk",
    [
        "",
        "{",
        json.dumps({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        json.dumps(SigningKey.generate().private_jwk()),
    ],
    ids=["empty", "not-json", "rsa", "private-key"],
)
def test_the_holder_key_must_be_a_public_ed25519_or_p256_jwk(registry: Registry, holder_jwk: str) -> None:
    cleared = registry.cleared_person()

    refused_naming(
        "holder_jwk",
        lambda: registry.adjudicator.credentials.IssueCredential(
            pb.IssueCredentialRequest(assessment_id=cleared.assessment.id, holder_jwk=holder_jwk)
        ),
    )


def test_a_p256_holder_key_is_accepted(registry: Registry) -> None:
    issued = registry.issue(
        registry.cleared_person().assessment.id, holder=Holder(SigningKey.generate("ES256"))
    )
    verifier = registry.verifier()

    verifier.verify(registry.present(issued, verifier), now=registry.clock())


def test_a_repeated_request_with_one_idempotency_key_returns_the_first_credential(registry: Registry) -> None:
    cleared = registry.cleared_person()
    holder = Holder()

    first = registry.issue(cleared.assessment.id, holder=holder, idempotency_key="batch-7/1")
    again = registry.issue(cleared.assessment.id, holder=holder, idempotency_key="batch-7/1")

    assert again.id == first.id
    assert again.sd_jwt == first.sd_jwt
    assert registry.count("credentials") == 1
    assert [e.object_id for e in registry.audit_events() if e.action == "credential.issue"] == [first.id]


class HeldFirstBatch:
    """Holds the first issuance batch at its read until ``behind`` more requests wait for the writer,
    so that they make the next batch together."""

    def __init__(self, writer: WriteBatcher, behind: int) -> None:
        self.writer = writer
        self.behind = behind
        self.entered = threading.Event()
        self.all_behind = False

    def __call__(
        self, conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if not self.entered.is_set() and statement.lstrip().upper().startswith("SELECT ASSESSMENTS.ID"):
            self.entered.set()
            deadline = time.monotonic() + 20
            while not (all_behind := self.writer.waiting >= self.behind) and time.monotonic() < deadline:
                time.sleep(0.005)  # waits for a condition, not for time to pass
            self.all_behind = all_behind


def test_impatient_retries_with_one_idempotency_key_all_get_the_one_credential(registry: Registry) -> None:
    cleared = registry.cleared_person()
    holder = Holder()
    adjudicator = registry.adjudicator
    adjudicator.staff.WhoAmI(pb.WhoAmIRequest())  # known to the registry before the rush
    held = HeldFirstBatch(registry.ctx.writer, behind=12)
    event.listen(registry.ctx.db.engine, "before_cursor_execute", held)
    try:
        with ThreadPoolExecutor(13) as pool:
            pool.submit(registry.issue, cleared.assessment.id, idempotency_key="first", by=adjudicator)
            assert held.entered.wait(10)
            retries = [
                pool.submit(
                    registry.issue, cleared.assessment.id, holder=holder, idempotency_key="k", by=adjudicator
                )
                for _ in range(12)
            ]
            ids = {retry.result().id for retry in retries}
    finally:
        event.remove(registry.ctx.db.engine, "before_cursor_execute", held)

    assert held.all_behind, "the twelve retries queued up behind the first batch"
    assert len(ids) == 1
    assert registry.count("credentials") == 2


def test_an_idempotency_key_reused_for_another_request_is_refused(registry: Registry) -> None:
    cleared = registry.cleared_person()
    registry.issue(cleared.assessment.id, idempotency_key="batch-7/1")

    fails_with(
        grpc.StatusCode.ALREADY_EXISTS,
        lambda: registry.issue(cleared.assessment.id, holder=Holder(), idempotency_key="batch-7/1"),
        mentioning="batch-7/1",
    )
    assert registry.count("credentials") == 1


def test_idempotency_keys_belong_to_the_caller(registry: Registry) -> None:
    cleared = registry.cleared_person()
    holder = Holder()

    mine = registry.issue(cleared.assessment.id, holder=holder, idempotency_key="k")
    theirs = registry.issue(cleared.assessment.id, holder=holder, idempotency_key="k", by=registry.admin)

    assert mine.id != theirs.id


def test_an_overlong_idempotency_key_is_refused(registry: Registry) -> None:
    cleared = registry.cleared_person()

    refused_naming(
        "idempotency_key", lambda: registry.issue(cleared.assessment.id, idempotency_key="k" * 129)
    )


# -- bulk and facility issuance ----------------------------------------------------------


def bulk_request(
    *assessment_ids: str, holders: list[Holder] | None = None, keys: tuple[str, ...] = ()
) -> pb.BulkIssueCredentialsRequest:
    holders = holders if holders is not None else [Holder() for _ in assessment_ids]
    keys = keys or ("",) * len(assessment_ids)
    return pb.BulkIssueCredentialsRequest(
        requests=[
            pb.IssueCredentialRequest(
                assessment_id=a, holder_jwk=json.dumps(h.key.public.jwk), idempotency_key=k
            )
            for a, h, k in zip(assessment_ids, holders, keys, strict=True)
        ]
    )


def test_bulk_issuance_issues_all_in_one_audited_step(registry: Registry) -> None:
    org = registry.new_organization()
    people = [registry.cleared_person(organization=org) for _ in range(3)]
    holders = [Holder() for _ in people]
    before = len(registry.audit_events())

    results = registry.admin.credentials.BulkIssueCredentials(
        bulk_request(*(p.assessment.id for p in people), holders=holders)
    ).results

    assert [r.credential.person_id for r in results] == [p.person.id for p in people]
    assert len({r.credential.status_index for r in results}) == 3
    [event] = registry.audit_events()[before:]
    assert event.action == "credential.bulk_issue"
    assert sorted(json.loads(event.details_json)["credentials"]) == sorted(r.credential.id for r in results)
    verifier = registry.verifier()
    for result, holder in zip(results, holders, strict=True):
        issued = IssuedCredential(result.credential, result.sd_jwt, holder)
        verifier.verify(registry.present(issued, verifier), now=registry.clock())


def test_a_retried_bulk_request_issues_nothing_twice(registry: Registry) -> None:
    org = registry.new_organization()
    assessments = [registry.cleared_person(organization=org).assessment.id for _ in range(2)]
    request = bulk_request(*assessments, keys=("hr-1", "hr-2"))
    first = registry.admin.credentials.BulkIssueCredentials(request).results
    events = len(registry.audit_events())

    again = registry.admin.credentials.BulkIssueCredentials(request).results

    assert [(r.credential.id, r.sd_jwt) for r in again] == [(r.credential.id, r.sd_jwt) for r in first]
    assert registry.count("credentials") == 2
    assert len(registry.audit_events()) == events, "a repeated request changes nothing"


def test_bulk_and_single_issuance_share_the_callers_idempotency_keys(registry: Registry) -> None:
    cleared = registry.cleared_person()
    holder = Holder()
    single = registry.issue(cleared.assessment.id, holder=holder, idempotency_key="hr-1", by=registry.admin)

    [bulk] = registry.admin.credentials.BulkIssueCredentials(
        bulk_request(cleared.assessment.id, holders=[holder], keys=("hr-1",))
    ).results

    assert bulk.credential.id == single.id
    fails_with(
        grpc.StatusCode.ALREADY_EXISTS,
        lambda: registry.admin.credentials.BulkIssueCredentials(
            bulk_request(cleared.assessment.id, keys=("hr-1",))
        ),
        mentioning="requests[0]",
    )
    assert registry.count("credentials") == 1


def test_one_idempotency_key_twice_in_a_bulk_request_issues_once(registry: Registry) -> None:
    cleared = registry.cleared_person()
    holder = Holder()

    results = registry.admin.credentials.BulkIssueCredentials(
        bulk_request(cleared.assessment.id, cleared.assessment.id, holders=[holder, holder], keys=("k", "k"))
    ).results

    assert results[0].credential.id == results[1].credential.id
    assert registry.count("credentials") == 1


def test_bulk_issuance_is_all_or_nothing_and_names_the_failing_request(registry: Registry) -> None:
    good = registry.cleared_person().assessment.id
    person = registry.enroll_person(registry.new_organization().id)
    unfavorable = registry.decided_assessment(person.id, decision=common.DECISION_UNFAVORABLE).assessment.id

    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.admin.credentials.BulkIssueCredentials(bulk_request(good, unfavorable)),
        mentioning="requests[1]",
    )
    assert registry.count("credentials") == 0


def _status_index_signed_in(sd_jwt: str) -> int:
    payload = decode_compact(split(sd_jwt).jwt, what="credential").payload
    return int(payload["status"]["status_list"]["idx"])


class SignerThatLosesAnIndex:
    """The registry's signer, except that once it has signed its first batch, another issuance takes
    one of that batch's status indices: what a concurrent issuance may do while a bulk load signs."""

    def __init__(self, registry: Registry, inner: CredentialSigner, squatter_assessment: str) -> None:
        self.registry = registry
        self.inner = inner
        self.squatter_assessment = squatter_assessment
        self.signed: list[list[int]] = []
        """The status indices of each batch signed, in order."""
        self.squatted: int | None = None
        self.squatter: IssuedCredential | None = None

    def sign(self, specs: Sequence[CredentialSpec]) -> list[str]:
        tokens = self.inner.sign(specs)
        self.signed.append([spec.status_index for spec in specs])
        if self.squatted is None:
            squatted = self.squatted = specs[1].status_index
            ctx = self.registry.ctx
            draw = ctx.random_index
            ctx.random_index = lambda _size: squatted  # the other issuance draws the index just signed
            try:
                self.squatter = self.registry.issue(self.squatter_assessment)
            finally:
                ctx.random_index = draw
        return tokens


def test_an_index_taken_while_a_bulk_load_signs_is_replaced_and_signed_again(registry: Registry) -> None:
    """A bulk load signs before it takes the list's lock; what another issuance took meanwhile is redone."""
    org = registry.new_organization()
    bulk_people = [registry.cleared_person(organization=org) for _ in range(3)]
    other = registry.cleared_person(organization=org)
    assert registry.ctx.signer is not None
    signer = SignerThatLosesAnIndex(registry, registry.ctx.signer, other.assessment.id)
    registry.ctx.signer = signer
    holders = [Holder() for _ in bulk_people]
    try:
        results = registry.admin.credentials.BulkIssueCredentials(
            bulk_request(*(p.assessment.id for p in bulk_people), holders=holders)
        ).results
    finally:
        registry.ctx.signer = signer.inner

    indices = [r.credential.status_index for r in results]
    assert signer.squatter is not None
    assert signer.squatter.record.status_index == signer.squatted
    assert signer.squatted not in indices
    assert len(set(indices)) == 3
    assert [_status_index_signed_in(r.sd_jwt) for r in results] == indices
    verifier = registry.verifier()
    for result, holder in zip(results, holders, strict=True):
        issued = IssuedCredential(result.credential, result.sd_jwt, holder)
        verifier.verify(registry.present(issued, verifier), now=registry.clock())
    assert registry.count("credentials") == 4
    drafted, *later = signer.signed
    assert later == [[signer.squatted], [indices[1]]], (
        "signed once before the lock; only the lost index again"
    )
    assert [drafted[0], drafted[2]] == [indices[0], indices[2]]


def test_concurrent_bulk_loads_share_no_status_index_and_sign_the_one_they_hold(registry: Registry) -> None:
    org = registry.new_organization()
    assessments = [registry.cleared_person(organization=org).assessment.id for _ in range(4)]

    def load(_: int) -> list[Any]:
        request = bulk_request(*(assessments * 100))
        return list(registry.admin.credentials.BulkIssueCredentials(request, timeout=60).results)

    with ThreadPoolExecutor(4) as pool:
        results = [r for batch in pool.map(load, range(8)) for r in batch]

    indices = [r.credential.status_index for r in results]
    assert len(indices) == 3200
    assert len(set(indices)) == 3200
    assert all(_status_index_signed_in(r.sd_jwt) == r.credential.status_index for r in results)
    assert registry.count("credentials") == 3200


def test_a_facility_credential_binds_the_organizations_node(registry: Registry) -> None:
    org = registry.new_organization(facility_level=None)
    node = registry.new_node(org.id)
    request = pb.IssueFacilityCredentialRequest(organization_id=org.id, node_id=node.id)
    fails_with(
        grpc.StatusCode.FAILED_PRECONDITION,
        lambda: registry.admin.credentials.IssueFacilityCredential(request),
        mentioning="no valid facility clearance",
    )
    registry.admin.organizations.GrantFacilityClearance(
        pb.GrantFacilityClearanceRequest(
            organization_id=org.id,
            level="SECRET",
            categories=["cyber-threat"],
            valid_until=Timestamp(seconds=registry.clock() + YEAR),
        )
    )

    issued = registry.admin.credentials.IssueFacilityCredential(request)

    assert (issued.credential.kind, issued.credential.organization_id) == ("facility", org.id)
    assert issued.credential.holder_key_thumbprint == node.key.kid
    cnf = claims_of(issued.sd_jwt)["cnf"]
    assert isinstance(cnf, dict)
    assert PublicKey.from_jwk(cnf["jwk"]) == node.key.public


def test_a_facility_credential_binds_only_a_node_of_that_organization(registry: Registry) -> None:
    org, other = registry.new_organization(), registry.new_organization()
    stranger = registry.new_node(other.id)

    fails_with(
        grpc.StatusCode.NOT_FOUND,
        lambda: registry.admin.credentials.IssueFacilityCredential(
            pb.IssueFacilityCredentialRequest(organization_id=org.id, node_id=stranger.id)
        ),
    )
