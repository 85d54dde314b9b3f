"""Sharing decisions, home and cross-border, through the gatekeeper: every decision logged with its reasons."""

from __future__ import annotations

import json

import pytest

from clearance.agreement import Agreement, Party
from clearance.errors import InvalidArgumentError
from clearance.trust import TrustStore
from clearance.verify import StalenessPolicy
from node.decisions import Label
from tests.factories import CATEGORIES, DAY, NOW, RegistryWorld, Verifier
from tests.node.conftest import DeskFactory

HOME_SECRET = Label("JP", "SECRET", "cyber-threat", ())


@pytest.fixture
def jp() -> RegistryWorld:
    return RegistryWorld.create("JP")


@pytest.fixture
def us() -> RegistryWorld:
    return RegistryWorld.create("US")


def refresh(desk_trust: TrustStore, world: RegistryWorld) -> None:
    """Push ``world``'s current list to the trust store (as a sync would)."""
    world.seq += 1
    desk_trust.update_status_list(world.status_token(), NOW)


# -- at home -------------------------------------------------------------------


def test_a_cleared_employee_of_the_node_organization_is_allowed(
    jp: RegistryWorld, desk_for: DeskFactory
) -> None:
    desk = desk_for(Verifier.synced(jp).trust, jp)
    credential, holder = jp.issue(level="SECRET")

    logged = desk.authorize(HOME_SECRET, desk.present(credential, holder))

    assert logged.decision.allowed, logged.decision.reasons
    assert logged.decision.code == "allowed"
    assert logged.sequence == 1
    reasons = " | ".join(logged.decision.reasons)
    assert "level: SECRET meets SECRET" in reasons
    assert "category: cleared for cyber-threat" in reasons
    assert "Example KK (org-a)" in reasons
    entry = desk.gatekeeper.decisions.entries()[0]
    assert entry.allowed
    assert entry.code == "allowed"
    record = json.loads(entry.record)
    assert record["label"] == HOME_SECRET.to_json()
    assert record["channel"] == "local"
    assert "Hanako" not in entry.record  # names are never logged, even when disclosed


@pytest.mark.parametrize(
    ("label", "credential_level", "codes"),
    [
        (
            Label("JP", "TOP_SECRET", "cyber-threat", ()),
            "SECRET",
            ["level_insufficient", "facility_level_insufficient"],
        ),
        (Label("JP", "SECRET", "supply-chain", ()), "SECRET", ["category_not_covered"]),
        (Label("GB", "SECRET", "cyber-threat", ("JP",)), "SECRET", ["label_untrusted"]),
        (Label("JP", "RESTRICTED", "cyber-threat", ()), "SECRET", ["label_untrusted"]),
    ],
)
def test_a_presenter_short_of_the_label_is_denied(
    jp: RegistryWorld, desk_for: DeskFactory, label: Label, credential_level: str, codes: list[str]
) -> None:
    desk = desk_for(Verifier.synced(jp).trust, jp)
    credential, holder = jp.issue(level=credential_level)

    decision = desk.authorize(label, desk.present(credential, holder)).decision

    assert not decision.allowed
    assert [r.split(":")[0] for r in decision.reasons] == codes
    assert decision.code == codes[0]


def test_the_presenter_must_disclose_an_employer_matching_the_recipient(
    jp: RegistryWorld, desk_for: DeskFactory
) -> None:
    desk = desk_for(Verifier.synced(jp).trust, jp)
    credential, holder = jp.issue()
    elsewhere, stranger = jp.issue(personal={"given_name": "Taro", "employer": "Other Corp"})

    hidden = desk.authorize(HOME_SECRET, desk.present(credential, holder, disclose=("given_name",))).decision
    wrong = desk.authorize(HOME_SECRET, desk.present(elsewhere, stranger)).decision

    assert hidden.code == "employer_not_disclosed"
    assert wrong.code == "employer_mismatch"


@pytest.mark.parametrize(("status", "code"), [(1, "revoked"), (2, "suspended")])
def test_a_revoked_or_suspended_credential_is_denied(
    jp: RegistryWorld, desk_for: DeskFactory, status: int, code: str
) -> None:
    trust = Verifier.synced(jp).trust
    desk = desk_for(trust, jp)
    credential, holder = jp.issue(index=900)
    jp.status_list.set(900, status)
    refresh(desk.gatekeeper.state.current, jp)

    decision = desk.authorize(HOME_SECRET, desk.present(credential, holder)).decision

    assert (decision.allowed, decision.code) == (False, code)


def test_the_recipient_organization_facility_credential_must_be_valid(
    jp: RegistryWorld, desk_for: DeskFactory
) -> None:
    trust = Verifier.synced(jp).trust
    desk = desk_for(trust, jp)
    own_index = jp.next_index - 1  # the desk's own facility credential was the last one issued
    credential, holder = jp.issue()
    jp.status_list.set(own_index, 1)
    refresh(desk.gatekeeper.state.current, jp)

    decision = desk.authorize(HOME_SECRET, desk.present(credential, holder)).decision

    assert decision.code == "facility_revoked"


def test_an_organization_without_a_facility_credential_receives_nothing(
    jp: RegistryWorld, desk_for: DeskFactory
) -> None:
    desk = desk_for(Verifier.synced(jp).trust, jp, own_facility=False)
    credential, holder = jp.issue()

    decision = desk.authorize(HOME_SECRET, desk.present(credential, holder)).decision

    assert decision.code == "facility_missing"


def test_another_cleared_organization_can_be_the_recipient(jp: RegistryWorld, desk_for: DeskFactory) -> None:
    desk = desk_for(Verifier.synced(jp).trust, jp)
    credential, holder = jp.issue()
    low = desk.facility_of(jp, org_id="org-low", level="CONFIDENTIAL")

    allowed = desk.authorize(HOME_SECRET, desk.present(credential, holder), desk.facility_of(jp)).decision
    too_low = desk.authorize(HOME_SECRET, desk.present(credential, holder), low).decision

    assert allowed.allowed
    assert allowed.recipient == "org-b"
    assert too_low.code == "facility_level_insufficient"


def test_a_replayed_presentation_is_denied(jp: RegistryWorld, desk_for: DeskFactory) -> None:
    desk = desk_for(Verifier.synced(jp).trust, jp)
    credential, holder = jp.issue()
    presentation = desk.present(credential, holder)

    first = desk.authorize(HOME_SECRET, presentation).decision
    again = desk.authorize(HOME_SECRET, presentation).decision

    assert first.allowed
    assert again.code == "nonce_replayed"


def test_a_stale_status_list_fails_closed_for_the_item_level(
    jp: RegistryWorld, desk_for: DeskFactory
) -> None:
    policy = StalenessPolicy({"CONFIDENTIAL": 7200, "SECRET": 600, "TOP_SECRET": 60})
    desk = desk_for(Verifier.synced(jp).trust, jp, policy=policy)
    credential, holder = jp.issue(level="SECRET")
    desk.at(NOW + 601)

    secret = desk.authorize(HOME_SECRET, desk.present(credential, holder)).decision
    confidential = desk.authorize(
        Label("JP", "CONFIDENTIAL", "cyber-threat", ()), desk.present(credential, holder)
    )

    assert secret.code == "status_list_stale"
    assert "policy allows 600s" in secret.reasons[0]
    assert confidential.decision.allowed  # the item's level sets the bound, not the person's


def test_every_decision_is_logged_in_order(jp: RegistryWorld, desk_for: DeskFactory) -> None:
    desk = desk_for(Verifier.synced(jp).trust, jp)
    credential, holder = jp.issue()
    desk.authorize(HOME_SECRET, desk.present(credential, holder))
    desk.authorize(HOME_SECRET, "garbage")

    entries = desk.gatekeeper.decisions.entries()

    assert [(e.seq, e.allowed, e.code) for e in entries] == [(1, True, "allowed"), (2, False, "malformed")]
    assert desk.gatekeeper.decisions.verify().intact


def test_labels_are_checked_for_shape() -> None:
    with pytest.raises(InvalidArgumentError):
        Label.from_json({"jurisdiction": "JP", "level": "SECRET", "category": "x"})
    with pytest.raises(InvalidArgumentError):
        Label.from_json({"jurisdiction": "jp", "level": "SECRET", "category": "x", "releasable_to": []})
    with pytest.raises(InvalidArgumentError):
        Label.from_json({"jurisdiction": "JP", "level": "SECRET", "category": "x", "releasable_to": "US"})
    assert Label.from_json(HOME_SECRET.to_json()) == HOME_SECRET


# -- across borders ----------------------------------------------------------------

TO_US = Label("JP", "SECRET", "cyber-threat", ("US",))


def test_a_foreign_presenter_is_allowed_at_the_mapped_level(
    jp: RegistryWorld, us: RegistryWorld, desk_for: DeskFactory
) -> None:
    desk = desk_for(Verifier.trusting(jp, us).trust, jp)
    credential, holder = us.issue(level="SECRET")

    decision = desk.authorize(TO_US, desk.present(credential, holder), desk.facility_of(us)).decision

    assert decision.allowed, decision.reasons
    assert (decision.presenter_jurisdiction, decision.agreement_id, decision.mapped_level) == (
        "US",
        "JP-US-1",
        "SECRET",
    )
    assert "agreement JP-US-1 maps US SECRET to JP SECRET" in decision.reasons


def test_a_foreign_presenter_is_denied_when_the_item_is_not_releasable_to_them(
    jp: RegistryWorld, us: RegistryWorld, desk_for: DeskFactory
) -> None:
    desk = desk_for(Verifier.trusting(jp, us).trust, jp)
    credential, holder = us.issue(level="SECRET")
    label = Label("JP", "SECRET", "cyber-threat", ("GB",))

    decision = desk.authorize(label, desk.present(credential, holder), desk.facility_of(us)).decision

    assert decision.code == "not_releasable"


def test_a_foreign_presenter_is_denied_above_the_mapped_level(
    jp: RegistryWorld, us: RegistryWorld, desk_for: DeskFactory
) -> None:
    desk = desk_for(Verifier.trusting(jp, us).trust, jp)
    secret, holder = us.issue(level="SECRET")
    top, top_holder = us.issue(level="TOP_SECRET")
    label = Label("JP", "TOP_SECRET", "cyber-threat", ("US",))

    above = desk.authorize(
        label, desk.present(secret, holder), desk.facility_of(us, level="TOP_SECRET")
    ).decision
    unmapped = desk.authorize(TO_US, desk.present(top, top_holder), desk.facility_of(us)).decision

    assert above.code == "level_insufficient"
    assert above.mapped_level == "SECRET"
    assert unmapped.code == "level_not_recognized"  # no row for US TOP_SECRET: never mapped, up or down
    assert "JP-US-1" in unmapped.reasons[0]


def test_a_foreign_presenter_is_denied_once_the_agreement_expired(
    jp: RegistryWorld, us: RegistryWorld, desk_for: DeskFactory
) -> None:
    trust = Verifier.trusting(jp, us, agreement_expires_in=2 * DAY, bundle_expires_in=10 * DAY).trust
    desk = desk_for(trust, jp)
    credential, holder = us.issue(level="SECRET")
    facility = desk.facility_of(us)
    desk.at(NOW + 2 * DAY)

    decision = desk.authorize(TO_US, desk.present(credential, holder), facility).decision

    assert decision.code == "agreement_invalid"


def test_the_recipient_must_be_cleared_by_the_presenter_registry(
    jp: RegistryWorld, us: RegistryWorld, desk_for: DeskFactory
) -> None:
    desk = desk_for(Verifier.trusting(jp, us).trust, jp)
    credential, holder = us.issue(level="SECRET")

    decision = desk.authorize(
        TO_US, desk.present(credential, holder)
    ).decision  # recipient: our JP organization

    assert decision.code == "recipient_other_registry"


def _agreement_trust(
    jp: RegistryWorld, us: RegistryWorld, levels: list[tuple[str, str]], jp_categories: list[str]
) -> TrustStore:
    agreement = Agreement.propose(
        jp.root,
        agreement_id="JP-US-9",
        parties=(Party("JP", jp.root.public, jp.issuer), Party("US", us.root.public, us.issuer)),
        levels=levels,
        categories={"JP": jp_categories, "US": list(CATEGORIES)},
        issued_at=NOW,
        not_before=NOW - DAY,
        expires_at=NOW + 365 * DAY,
    ).countersign(us.root)
    jp.agreements.append(agreement.to_json())
    us.agreements.append(agreement.to_json())
    trust = Verifier.synced(jp).trust
    trust.update_foreign_bundle(us.bundle(), NOW)
    trust.update_status_list(us.status_token(), NOW)
    return trust


def test_agreement_categories_and_rows_bound_what_a_foreign_presenter_may_receive(
    jp: RegistryWorld, us: RegistryWorld, desk_for: DeskFactory
) -> None:
    # JP SECRET is equivalent to US TOP_SECRET only; JP opens joint-research only.
    desk = desk_for(_agreement_trust(jp, us, [("SECRET", "TOP_SECRET")], ["joint-research"]), jp)
    top, holder = us.issue(level="TOP_SECRET")
    secret, secret_holder = us.issue(level="SECRET")
    joint = Label("JP", "SECRET", "joint-research", ("US",))
    facility = "TOP_SECRET"

    allowed = desk.authorize(joint, desk.present(top, holder), desk.facility_of(us, level=facility)).decision
    closed = desk.authorize(TO_US, desk.present(top, holder), desk.facility_of(us, level=facility)).decision
    unmapped = desk.authorize(
        joint, desk.present(secret, secret_holder), desk.facility_of(us, level=facility)
    )

    assert allowed.allowed, allowed.reasons
    assert (allowed.agreement_id, allowed.mapped_level) == ("JP-US-9", "SECRET")
    assert closed.code == "category_not_in_agreement"
    assert unmapped.decision.code == "level_not_recognized"
