"""Hostile federation: each refused with a clear reason, at the layer that enforces it, changing nothing.

================================================  =====================================
hostile input                                     refused by
================================================  =====================================
an agreement signed by one party only             the registry's ImportAgreement
a level table mapping one level to two            ``agreement propose``; ImportAgreement
an agreement whose validity has ended             ImportAgreement; the node's trust store
a foreign bundle signed by a root in no agreement partner sync (``PartnerSync.sync_once``)
a foreign status list older than the one held     partner sync
a foreign credential, item not releasable to it   the node's decision (``Gatekeeper``)
================================================  =====================================

The trust core's unit tests check the same rules on factory-made documents
(``tests/clearance/test_agreement.py``, ``test_trust.py``,
``tests/node/test_decisions.py``). Here the documents travel between real
registries served on loopback (each on its own database: on PostgreSQL, its
own schema): what is checked is that a registry refuses to store or publish,
that partner sync refuses to store (and so to republish to our nodes), and
that a node fed by those registries decides as the rule says.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from clearance.agreement import AGREEMENT_TYP, Agreement, Party
from clearance.encoding import b64url_encode, canonical_json
from clearance.errors import Reason, VerificationError
from clearance.jws import sign_general
from clearance.keys import SigningKey, atomic_write
from clearance.sdjwt import present
from clearance.statuslist import parse_status_list_token
from clearance.v1 import common_pb2 as common
from clearance.v1 import registry_pb2 as pb
from clearance.verify import MemoryNonceStore, StalenessPolicy, verify_presentation
from cli import exits
from node.decision_log import DecisionLog
from node.decisions import Label
from node.facility import FacilityIdentity
from node.gatekeeper import Gatekeeper
from node.state import TrustedState
from registry.publication import publisher
from registry.publication.partners import Partner, PartnerSync
from tests.cli.conftest import run_cli
from tests.factories import RegistryWorld
from tests.federation.conftest import DAY, FakeClock, LocalRegistry, agreement_between

pytestmark = pytest.mark.database

NODE = "node_kaiyo"


def refused_import(registry: LocalRegistry, document: str, *, partner: str = "127.0.0.1:9") -> str:
    """ImportAgreement must answer INVALID_ARGUMENT; returns its message."""
    with pytest.raises(grpc.RpcError) as refusal:
        registry.call(
            "FederationService",
            "ImportAgreement",
            pb.ImportAgreementRequest(document=document, partner_endpoint=partner),
        )
    assert refusal.value.code() is grpc.StatusCode.INVALID_ARGUMENT, refusal.value
    return str(refusal.value.details())


def assert_nothing_imported(registry: LocalRegistry, bundle_version: int) -> None:
    """No agreement row, no audit event for one, and no new trust bundle for our nodes."""
    assert registry.agreements() == []
    events = registry.call(
        "AuditService", "ListAuditEvents", pb.ListAuditEventsRequest(action="agreement.import")
    ).events
    assert list(events) == []
    assert registry.bundle_version() == bundle_version


@pytest.fixture
def us_root() -> SigningKey:
    """The US root, kept offline: the JP registry only ever sees what it signed."""
    return SigningKey.generate()


def us_party(root: SigningKey) -> Party:
    return Party("US", root.public, "https://registry.us.clearance.example")


# -- the registry imports only agreements in force, signed by both roots -----------------------


def test_an_agreement_signed_by_one_party_only_is_not_imported(
    jp: LocalRegistry, us_root: SigningKey
) -> None:
    version = jp.bundle_version()
    proposal = agreement_between(jp, us_party(us_root))  # signed by the JP root only
    forged = proposal.to_json()
    forged["signatures"].append(
        {**forged["signatures"][0], "protected": _protected_for(us_root)}  # US's kid, JP's signature
    )

    only_ours = refused_import(jp, json.dumps(proposal.to_json()))
    not_theirs = refused_import(jp, json.dumps(forged))

    assert "not signed by US's root" in only_ours
    assert "not signed by US's root" in not_theirs
    assert_nothing_imported(jp, version)


def _protected_for(key: SigningKey) -> str:
    return b64url_encode(canonical_json({"alg": "EdDSA", "kid": key.kid, "typ": AGREEMENT_TYP}))


def test_a_level_table_mapping_one_level_to_two_is_refused_at_propose(
    jp: LocalRegistry, tmp_path: Path, us_root: SigningKey
) -> None:
    us = RegistryWorld.create("US", now=jp.clock())
    us.root = us_root
    bundle = tmp_path / "us-bundle.jwt"
    atomic_write(bundle, us.bundle(expires_in=3650 * DAY).encode())
    proposal = tmp_path / "proposal.json"

    run = run_cli(
        [
            "agreement",
            "propose",
            "--dir",
            str(jp.ctx.config.directory),
            "--partner-bundle",
            str(bundle),
            "--partner-fingerprint",
            us_root.kid,
            "--map",
            "SECRET=SECRET",
            "--map",
            "SECRET=TOP_SECRET",
            "--category",
            "joint-research",
            "--out",
            str(proposal),
        ]
    )

    assert run.exit_code == exits.USAGE, run.stdout + run.stderr
    assert "maps a level of JP to two levels" in run.stderr
    assert not proposal.exists()


def test_a_level_table_mapping_one_level_to_two_is_refused_at_import_even_signed_by_both(
    jp: LocalRegistry, us_root: SigningKey
) -> None:
    version = jp.bundle_version()
    now = jp.clock()
    payload = {
        "schema": 1,
        "id": "JP-US-two-to-one",
        "iat": now,
        "nbf": now,
        "exp": now + 365 * DAY,
        "parties": [jp.party().to_json(), us_party(us_root).to_json()],
        "levels": [{"JP": "SECRET", "US": "SECRET"}, {"JP": "SECRET", "US": "TOP_SECRET"}],
        "categories": {"JP": ["joint-research"], "US": ["joint-research"]},
    }
    both = sign_general(payload, [(jp.root, {"typ": AGREEMENT_TYP}), (us_root, {"typ": AGREEMENT_TYP})])

    message = refused_import(jp, json.dumps(both.to_json()))

    assert "maps a level of JP to two levels" in message
    assert_nothing_imported(jp, version)


def test_an_agreement_whose_validity_has_ended_is_not_imported(
    jp: LocalRegistry, us_root: SigningKey
) -> None:
    version = jp.bundle_version()
    now = jp.clock()
    ended = agreement_between(
        jp, us_party(us_root), us_root, not_before=now - 400 * DAY, expires_at=now - DAY
    )
    ended.verify_signatures()  # a genuine agreement of both roots, only over

    message = refused_import(jp, json.dumps(ended.to_json()))

    assert "has already ended" in message
    assert_nothing_imported(jp, version)


# -- partner sync stores only what the partner's root, named in the agreement, signed -----------


def partner_of(registry: LocalRegistry, agreement: Agreement, endpoint: str) -> Partner:
    """The partner as PartnerSync follows it (what the agreement row says)."""
    return Partner(agreement.id, agreement.counterpart(registry.jurisdiction).jurisdiction, endpoint, None)


def assert_holds_nothing_from(registry: LocalRegistry, jurisdiction: str, uris: list[str]) -> None:
    """Nothing of ``jurisdiction`` stored, so nothing republished to our nodes."""
    stub = registry.publication()
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetTrustBundle(pb.GetTrustBundleRequest(jurisdiction=jurisdiction), timeout=10)
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    for uri in uris:
        with pytest.raises(grpc.RpcError) as no_list:
            stub.GetStatusList(pb.GetStatusListRequest(uri=uri), timeout=10)
        assert no_list.value.code() is grpc.StatusCode.NOT_FOUND


@pytest.fixture
def impostor(tmp_path: Path, clock: FakeClock) -> Iterator[LocalRegistry]:
    """A real registry calling itself US, whose root no agreement names.

    It is the attacker's, so it runs on a SQLite file of its own on every backend:
    what is under test is what the JP registry (on the database under test) stores.
    """
    registry = LocalRegistry.start(tmp_path / "impostor", "US", f"sqlite:///{tmp_path / 'i.sqlite3'}", clock)
    try:
        yield registry
    finally:
        registry.stop()


def test_partner_sync_refuses_a_bundle_signed_by_a_root_in_no_agreement(
    jp: LocalRegistry, impostor: LocalRegistry, us_root: SigningKey
) -> None:
    agreement = agreement_between(jp, us_party(us_root), us_root)
    jp.import_agreement(agreement, impostor)  # the partner endpoint now answers with another root
    version = jp.bundle_version()
    sync = PartnerSync(jp.ctx)

    with pytest.raises(VerificationError) as refusal:
        sync.sync_once(partner_of(jp, agreement, impostor.endpoint), impostor.publication())

    assert refusal.value.reason is Reason.UNTRUSTED_ISSUER
    assert "no agreement in force names" in refusal.value.detail
    assert_holds_nothing_from(jp, "US", [impostor.ctx.config.status_list_uri(1)])
    (row,) = jp.agreements()
    assert row.state == common.AGREEMENT_STATE_IN_FORCE  # an impostor cannot end it either
    assert not row.HasField("last_partner_sync")
    assert jp.bundle_version() == version


class ReplayingPartner:
    """The partner's PublicationService, except that it answers with status lists it published earlier.

    What a replaying man in the middle, or a mirror that fell behind, would serve:
    every document genuinely signed by the partner, only older.
    """

    def __init__(self, real: Any, earlier: dict[str, str]) -> None:
        self._real = real
        self._earlier = earlier

    def GetTrustBundle(self, request: pb.GetTrustBundleRequest, timeout: float | None = None) -> Any:  # noqa: N802
        return self._real.GetTrustBundle(request, timeout=timeout)

    def GetStatusList(self, request: pb.GetStatusListRequest, timeout: float | None = None) -> Any:  # noqa: N802
        return pb.GetStatusListResponse(token=self._earlier[request.uri])


def federate(jp: LocalRegistry, us: LocalRegistry, **terms: Any) -> tuple[Agreement, PartnerSync, Partner]:
    """An agreement of both roots imported at both registries; JP synced once from US."""
    agreement = agreement_between(jp, us, **terms)
    jp.import_agreement(agreement, us)
    us.import_agreement(agreement, jp)
    sync = PartnerSync(jp.ctx)
    partner = partner_of(jp, agreement, us.endpoint)
    sync.sync_once(partner, us.publication())
    return agreement, sync, partner


def test_partner_sync_refuses_a_status_list_older_than_the_one_held(
    jp: LocalRegistry, us: LocalRegistry, clock: FakeClock
) -> None:
    _, sync, partner = federate(jp, us)
    uri = us.ctx.config.status_list_uri(1)
    jp_public = jp.publication()
    first = jp_public.GetStatusList(pb.GetStatusListRequest(uri=uri), timeout=10).token
    clock.advance(301)
    assert publisher.ensure_fresh(us.ctx)  # US republishes its list: a newer version
    sync.sync_once(partner, us.publication())
    held = jp_public.GetStatusList(pb.GetStatusListRequest(uri=uri), timeout=10).token
    assert parse_status_list_token(held).seq > parse_status_list_token(first).seq
    version = jp.bundle_version()

    with pytest.raises(VerificationError) as refusal:
        sync.sync_once(partner, ReplayingPartner(us.publication(), {uri: first}))  # type: ignore[arg-type]

    assert refusal.value.reason is Reason.ROLLBACK
    assert uri in refusal.value.detail
    assert jp_public.GetStatusList(pb.GetStatusListRequest(uri=uri), timeout=10).token == held
    assert jp.node_trust(clock()).status_list(uri).jws.raw == parse_status_list_token(held).jws.raw
    assert jp.bundle_version() == version


# -- a node fed by the registries ---------------------------------------------------------------


def presentation(cleared: Any, *, nonce: str, at: int, disclose: tuple[str, ...] = ("employer",)) -> str:
    return present(
        cleared.sd_jwt, cleared.holder, disclose=list(disclose), audience=NODE, nonce=nonce, issued_at=at
    )


def test_a_node_refuses_foreign_presentations_once_the_agreement_has_ended(
    jp: LocalRegistry, us: LocalRegistry, clock: FakeClock
) -> None:
    ends = clock() + 3600
    federate(jp, us, expires_at=ends)
    researcher = us.cleared(us.organization("Lakeshore National Laboratory"))
    trust = jp.node_trust(clock())  # a JP node, synced while the agreement is in force
    nonces, policy = MemoryNonceStore(), StalenessPolicy()

    def verify(at: int) -> Any:
        return verify_presentation(
            presentation(researcher, nonce=nonces.issue(at), at=at),
            trust=trust,
            audience=NODE,
            nonces=nonces,
            now=at,
            policy=policy,
        )

    assert verify(ends - 1).issuer_jurisdiction == "US"
    with pytest.raises(VerificationError) as ended:
        verify(ends)

    assert ended.value.reason is Reason.AGREEMENT_INVALID
    assert "has ended" in ended.value.detail
    # Nobody terminated it, and nothing else has expired: the agreement's own end is the reason.
    assert [a.state for a in jp.agreements()] == [common.AGREEMENT_STATE_IN_FORCE]
    assert trust.require_home(ends).expires_at > ends
    assert trust.foreign["US"].bundle.expires_at > ends
    us_bundle = us.publication().GetTrustBundle(pb.GetTrustBundleRequest(), timeout=10).bundle
    with pytest.raises(VerificationError) as no_more:
        trust.update_foreign_bundle(us_bundle, ends)
    assert no_more.value.reason is Reason.AGREEMENT_INVALID


def test_a_foreign_credential_is_denied_an_item_not_releasable_to_its_jurisdiction(
    jp: LocalRegistry, us: LocalRegistry, clock: FakeClock, tmp_path: Path
) -> None:
    federate(jp, us)
    lab = us.organization("Lakeshore National Laboratory")
    researcher, facility = us.cleared(lab), us.facility(lab)
    now = clock()
    gatekeeper = jp_node(TrustedState(jp.node_trust(now)), tmp_path / "decisions.sqlite3", now)

    def authorize(releasable_to: tuple[str, ...]) -> Any:
        label = Label("JP", "SECRET", "joint-research", releasable_to)
        person = presentation(researcher, nonce=gatekeeper.challenge().nonce, at=now)
        recipient = presentation(facility, nonce=gatekeeper.challenge().nonce, at=now, disclose=())
        return gatekeeper.authorize(label, person, recipient).decision

    denied = authorize(("GB",))
    allowed = authorize(("US",))

    assert not denied.allowed
    assert denied.code == "not_releasable"
    assert denied.reasons == (
        "not_releasable: the item is releasable to ['GB', 'JP'], not to US-cleared people",
    )
    assert (denied.presenter_jurisdiction, denied.agreement_id) == ("US", "JP-US-1")
    assert allowed.allowed, allowed.reasons  # the same people, an item releasable to US
    logged = [(e.allowed, e.code) for e in gatekeeper.decisions.entries(after=0, limit=10)]
    assert logged == [(False, "not_releasable"), (True, "allowed")]
    gatekeeper.decisions.close()


def jp_node(state: TrustedState, log: Path, now: int) -> Gatekeeper:
    """A JP node's decision desk over ``state`` (its own organization is not the recipient here)."""
    nonces, policy = MemoryNonceStore(), StalenessPolicy()
    identity = FacilityIdentity(
        key=SigningKey.generate(),
        credential=None,
        audience=NODE,
        trust=lambda: state.current,
        nonces=nonces,
        policy=policy,
        clock=lambda: now,
    )
    return Gatekeeper(
        state,
        audience=NODE,
        nonces=nonces,
        nonce_ttl=300,
        policy=policy,
        clock=lambda: now,
        facility=identity,
        decisions=DecisionLog(log),
    )
