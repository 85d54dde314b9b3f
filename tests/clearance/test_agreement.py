"""Mutual-recognition agreements: one payload, both roots' signatures, a one-to-one level table."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clearance.agreement import AGREEMENT_TYP, Agreement, Party
from clearance.encoding import b64url_decode, parse_json
from clearance.errors import Reason
from clearance.jws import sign_general
from clearance.keys import SigningKey
from tests.factories import CATEGORIES, DAY, NOW, RegistryWorld, refused


def worlds() -> tuple[RegistryWorld, RegistryWorld]:
    return RegistryWorld.create("JP"), RegistryWorld.create("US")


def signed_payload(
    jp: RegistryWorld, us: RegistryWorld, signers: list[SigningKey], **changes: Any
) -> dict[str, Any]:
    """An agreement document as both roots would sign it, with ``changes`` to its payload."""
    payload = json.loads(b64url_decode(jp.agree_with(us).to_json()["payload"]))
    payload.update(changes)
    return sign_general(payload, [(key, {"typ": AGREEMENT_TYP}) for key in signers]).to_json()


def test_agreement_signed_by_both_roots_is_in_force_within_its_window() -> None:
    jp, us = worlds()
    agreement = Agreement.parse(jp.agree_with(us).to_json())
    agreement.verify(NOW)
    assert [p.jurisdiction for p in agreement.parties] == ["JP", "US"]
    assert agreement.is_signed_by("JP")
    assert agreement.is_signed_by("US")
    assert agreement.categories == {"JP": CATEGORIES, "US": CATEGORIES}
    assert agreement.counterpart("JP").root == us.root.public


def test_agreement_payload_names_parties_by_their_root_jwk() -> None:
    jp, us = worlds()
    payload = parse_json(b64url_decode(jp.agree_with(us).to_json()["payload"]))
    assert [p["root"]["kid"] for p in payload["parties"]] == [jp.root.kid, us.root.kid]
    assert payload["levels"] == [
        {"JP": "CONFIDENTIAL", "US": "CONFIDENTIAL"},
        {"JP": "SECRET", "US": "SECRET"},
    ]


def test_levels_map_in_both_directions_and_unlisted_levels_are_not_recognized() -> None:
    jp, us = worlds()
    agreement = jp.agree_with(us, levels=[("CONFIDENTIAL", "SECRET"), ("SECRET", "TOP_SECRET")])
    assert agreement.map_level("US", "TOP_SECRET", "JP") == "SECRET"
    assert agreement.map_level("JP", "CONFIDENTIAL", "US") == "SECRET"
    assert agreement.map_level("US", "CONFIDENTIAL", "JP") is None
    assert agreement.map_level("US", "SECRET", "FR") is None


def test_a_proposal_signed_by_one_party_only_is_not_in_force() -> None:
    jp, us = worlds()
    proposal = Agreement.propose(
        jp.root,
        agreement_id="JP-US-1",
        parties=(Party("JP", jp.root.public, jp.issuer), Party("US", us.root.public, us.issuer)),
        levels=[("SECRET", "SECRET")],
        categories={"JP": ["cyber-threat"], "US": ["cyber-threat"]},
        issued_at=NOW,
        not_before=NOW,
        expires_at=NOW + DAY,
    )
    parsed = Agreement.parse(proposal.to_json())
    assert parsed.is_signed_by("JP")
    assert not parsed.is_signed_by("US")
    with refused(Reason.AGREEMENT_INVALID):
        parsed.verify(NOW)
    parsed.countersign(us.root).verify(NOW)


def test_a_signature_that_does_not_verify_is_refused() -> None:
    jp, us = worlds()
    obj = jp.agree_with(us).to_json()
    obj["signatures"][1]["signature"] = obj["signatures"][0]["signature"]
    with refused(Reason.AGREEMENT_INVALID):
        Agreement.parse(obj).verify_signatures()


def test_an_agreement_outside_its_window_is_not_in_force() -> None:
    jp, us = worlds()
    agreement = jp.agree_with(us, expires_in=DAY)
    with refused(Reason.AGREEMENT_INVALID) as ended:
        agreement.verify(NOW + DAY)
    assert "ended" in ended.value.detail
    with refused(Reason.AGREEMENT_INVALID) as early:
        agreement.verify(NOW - 2 * DAY)
    assert "not yet" in early.value.detail


def test_a_level_table_mapping_one_level_to_two_cannot_be_proposed() -> None:
    jp, us = worlds()
    with refused(Reason.MALFORMED):
        jp.agree_with(us, levels=[("SECRET", "SECRET"), ("SECRET", "TOP_SECRET")])


def test_a_signed_level_table_mapping_one_level_to_two_is_refused() -> None:
    jp, us = worlds()
    doubled = [{"JP": "SECRET", "US": "SECRET"}, {"JP": "CONFIDENTIAL", "US": "SECRET"}]
    with refused(Reason.MALFORMED) as excinfo:
        Agreement.parse(signed_payload(jp, us, [jp.root, us.root], levels=doubled))
    assert "US" in excinfo.value.detail


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"schema": 2}, id="unknown-schema"),
        pytest.param({"id": "has space"}, id="bad-id"),
        pytest.param({"exp": NOW - 2 * DAY}, id="ends-before-it-starts"),
        pytest.param({"nbf": "now"}, id="nbf-as-text"),
        pytest.param({"levels": []}, id="empty-level-table"),
        pytest.param({"levels": [{"JP": "SECRET"}]}, id="row-for-one-party"),
        pytest.param({"levels": [{"JP": "SECRET", "FR": "SECRET"}]}, id="row-for-a-stranger"),
        pytest.param({"categories": {"JP": ["cyber-threat"]}}, id="categories-for-one-party"),
        pytest.param({"categories": {"JP": "cyber-threat", "US": []}}, id="categories-not-an-array"),
        pytest.param({"parties": []}, id="no-parties"),
    ],
)
def test_an_agreement_with_a_bad_field_is_malformed(changes: dict[str, Any]) -> None:
    jp, us = worlds()
    with refused(Reason.MALFORMED):
        Agreement.parse(signed_payload(jp, us, [jp.root, us.root], **changes))


def test_an_agreement_between_a_registry_and_itself_is_malformed() -> None:
    jp, _ = worlds()
    with refused(Reason.MALFORMED):
        jp.agree_with(jp)


def test_a_signature_by_a_key_that_is_no_party_root_is_malformed() -> None:
    jp, us = worlds()
    with refused(Reason.MALFORMED):
        Agreement.parse(signed_payload(jp, us, [jp.root, SigningKey.generate()]))


def test_only_a_party_root_can_propose_or_countersign() -> None:
    jp, us = worlds()
    outsider = SigningKey.generate()
    with refused(Reason.MALFORMED):
        Agreement.propose(
            outsider,
            agreement_id="JP-US-1",
            parties=(Party("JP", jp.root.public, jp.issuer), Party("US", us.root.public, us.issuer)),
            levels=[("SECRET", "SECRET")],
            categories={"JP": [], "US": []},
            issued_at=NOW,
            not_before=NOW,
            expires_at=NOW + DAY,
        )
    with refused(Reason.MALFORMED):
        jp.agree_with(us).countersign(outsider)


def test_an_agreement_with_another_typ_is_refused() -> None:
    jp, us = worlds()
    payload = json.loads(b64url_decode(jp.agree_with(us).to_json()["payload"]))
    obj = sign_general(payload, [(jp.root, {"typ": "JWT"}), (us.root, {"typ": "JWT"})]).to_json()
    with refused(Reason.WRONG_TYPE):
        Agreement.parse(obj)


def test_party_lookup_for_a_stranger_is_refused() -> None:
    jp, us = worlds()
    with refused(Reason.AGREEMENT_INVALID):
        jp.agree_with(us).party("FR")
