"""The hostile inputs a node must refuse, each with its own reason and never with a crash.

Every attack arrives the way an attacker would deliver it: as a presentation to
:func:`~clearance.verify.verify_presentation`, or as trust material handed to
the node's :class:`~clearance.trust.TrustStore`. ``refused`` lets only a
:class:`~clearance.errors.VerificationError` with the expected reason through;
anything else (TypeError, RecursionError, ...) fails the test as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from clearance.agreement import AGREEMENT_TYP, Agreement, Party
from clearance.bundle import ROOT_TYP, SCHEMA, RootRotation, StatusListLocation
from clearance.credentials import SD_JWT_VC_TYP
from clearance.encoding import b64url_decode, b64url_encode, canonical_json
from clearance.errors import Reason
from clearance.jws import encode_compact, sign_general
from clearance.keys import SigningKey
from clearance.sdjwt import Disclosure, digest, make_key_binding, present, split
from clearance.statuslist import STATUS_LIST_TYP, Status
from tests.factories import (
    DAY,
    NOW,
    Holder,
    RegistryWorld,
    Verifier,
    compact_jws,
    present_credential,
    refused,
    zlib_bomb,
)


@pytest.fixture
def world() -> RegistryWorld:
    return RegistryWorld.create("JP")


@pytest.fixture
def node(world: RegistryWorld) -> Verifier:
    return Verifier.synced(world)


def payload_of(credential: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(b64url_decode(split(credential).jwt.split(".")[1]))
    return payload


def with_jwt(credential: str, jwt: str) -> str:
    """The credential with its issuer-signed JWT replaced, disclosures kept."""
    return jwt + credential[credential.index("~") :]


def bind(credential: str, holder: Holder, node: Verifier, *, issued_at: int = NOW, **options: Any) -> str:
    """What a holder would send: the credential (as it is, forged or not) bound to a fresh nonce."""
    return present_credential(
        credential, holder, nonce=node.challenge(issued_at), issued_at=issued_at, **options
    )


# -- the credential's signature -------------------------------------------------------------


def test_refuses_alg_none(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue()
    unsigned = compact_jws(
        {"alg": "none", "typ": SD_JWT_VC_TYP, "kid": world.issuing.kid}, payload_of(credential)
    )
    with refused(Reason.ALGORITHM_NOT_ALLOWED):
        node.verify(bind(with_jwt(credential, unsigned), holder, node))


def test_refuses_hs256_signed_with_the_issuing_public_key_as_hmac_secret(
    world: RegistryWorld, node: Verifier
) -> None:
    credential, holder = world.issue()
    header = b64url_encode(canonical_json({"alg": "HS256", "typ": SD_JWT_VC_TYP, "kid": world.issuing.kid}))
    body = b64url_encode(canonical_json(payload_of(credential)))
    for secret in (world.issuing.public.to_pem(), b64url_decode(world.issuing.public.jwk["x"])):
        mac = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
        forged = with_jwt(credential, f"{header}.{body}.{b64url_encode(mac)}")
        with refused(Reason.ALGORITHM_NOT_ALLOWED):
            node.verify(bind(forged, holder, node))


def test_refuses_unknown_kid(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue(key=SigningKey.generate())
    with refused(Reason.UNKNOWN_KEY):
        node.verify(bind(credential, holder, node))


def test_refuses_kid_of_an_issuing_key_whose_window_does_not_cover_iat(world: RegistryWorld) -> None:
    world.issuing_window = (NOW - 400 * DAY, NOW - 30 * DAY)  # retired a month ago
    node = Verifier.synced(world)
    credential, holder = world.issue(issued_at=NOW - DAY)
    with refused(Reason.KEY_NOT_VALID_AT_ISSUANCE):
        node.verify(bind(credential, holder, node))


def test_refuses_tampered_payload(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue(level="CONFIDENTIAL")
    header, _, signature = split(credential).jwt.split(".")
    payload = payload_of(credential)
    payload["clearance"]["level"] = "TOP_SECRET"
    forged = with_jwt(credential, f"{header}.{b64url_encode(canonical_json(payload))}.{signature}")
    with refused(Reason.BAD_SIGNATURE):
        node.verify(bind(forged, holder, node))


# -- disclosures --------------------------------------------------------------------------------


def test_refuses_tampered_disclosure(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue()
    parts = split(credential)
    genuine = Disclosure.parse(parts.disclosures[0])
    tampered = Disclosure.create(genuine.name, "Mallory", genuine.salt)
    forged = "~".join([parts.jwt, tampered.encoded, *parts.disclosures[1:]]) + "~"
    with refused(Reason.DISCLOSURE_MISMATCH):
        node.verify(bind(forged, holder, node, disclose=(genuine.name or "",)))


def test_refuses_extra_disclosure_from_another_credential(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue()
    other, _ = world.issue(personal={"given_name": "Mallory"})
    presentation = bind(credential, holder, node)
    parts = split(presentation)
    extra = split(other).disclosures[0]
    without_kb = "~".join([parts.jwt, *parts.disclosures, extra]) + "~"
    kb = make_key_binding(without_kb, holder.key, audience="node-a", nonce=node.challenge(), issued_at=NOW)
    with refused(Reason.DISCLOSURE_MISMATCH):
        node.verify(without_kb + kb)


def test_refuses_duplicated_disclosure(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue()
    parts = split(credential)
    doubled = "~".join([parts.jwt, parts.disclosures[0], parts.disclosures[0]]) + "~"
    kb = make_key_binding(doubled, holder.key, audience="node-a", nonce=node.challenge(), issued_at=NOW)
    with refused(Reason.DUPLICATE_DISCLOSURE):
        node.verify(doubled + kb)


# -- key binding and nonces -------------------------------------------------------------------


def test_refuses_wrong_sd_hash(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue()
    presentation = bind(credential, holder, node, disclose=("given_name",))
    parts = split(presentation)
    hiding_less = "~".join([parts.jwt, *split(credential).disclosures]) + "~"
    kb = make_key_binding(
        parts.jwt + "~", holder.key, audience="node-a", nonce=node.challenge(), issued_at=NOW
    )
    with refused(Reason.SD_HASH_MISMATCH):
        node.verify(hiding_less + kb)


def test_refuses_missing_key_binding(world: RegistryWorld, node: Verifier) -> None:
    credential, _ = world.issue()
    with refused(Reason.KEY_BINDING_MISSING):
        node.verify(credential)


def test_refuses_key_binding_by_someone_who_copied_the_credential(
    world: RegistryWorld, node: Verifier
) -> None:
    credential, _ = world.issue()
    thief = Holder()
    with refused(Reason.KEY_BINDING_INVALID):
        node.verify(bind(credential, thief, node))


def test_refuses_replayed_nonce(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue()
    presentation = bind(credential, holder, node)
    node.verify(presentation)
    with refused(Reason.NONCE_REPLAYED):
        node.verify(presentation)


def test_refuses_nonce_never_issued(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue()
    with refused(Reason.NONCE_UNKNOWN):
        node.verify(present_credential(credential, holder, nonce="chosen-by-the-holder"))


def test_refuses_nonce_issued_by_another_node(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue()
    other_node = Verifier.synced(world)
    with refused(Reason.NONCE_UNKNOWN):
        node.verify(present_credential(credential, holder, nonce=other_node.challenge()))


def test_refuses_wrong_audience(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue()
    with refused(Reason.AUDIENCE_MISMATCH):
        node.verify(bind(credential, holder, node, audience="node-b"))


# -- validity in time --------------------------------------------------------------------------


def test_refuses_expired_credential(world: RegistryWorld) -> None:
    credential, holder = world.issue(issued_at=NOW - 2 * DAY, lifetime=DAY)
    node = Verifier.synced(world)
    with refused(Reason.EXPIRED):
        node.verify(bind(credential, holder, node))


def test_refuses_not_yet_valid_credential(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue(issued_at=NOW + 3600)
    with refused(Reason.NOT_YET_VALID):
        node.verify(bind(credential, holder, node))


# -- status ---------------------------------------------------------------------------------------


def test_refuses_status_index_out_of_range(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue(index=world.status_list.size)
    with refused(Reason.STATUS_INDEX_OUT_OF_RANGE):
        node.verify(bind(credential, holder, node))


@pytest.mark.parametrize(
    ("status", "reason"), [(Status.REVOKED, Reason.REVOKED), (Status.SUSPENDED, Reason.SUSPENDED)]
)
def test_refuses_revoked_and_suspended_credentials(
    world: RegistryWorld, status: Status, reason: Reason
) -> None:
    credential, holder = world.issue(index=100)
    world.status_list.set(100, status)
    node = Verifier.synced(world)
    with refused(reason):
        node.verify(bind(credential, holder, node))


def test_refuses_status_list_zlib_bomb(world: RegistryWorld, node: Verifier) -> None:
    """Small on the wire, 256 MiB inflated, and signed by the genuine issuing key."""
    payload = {
        "sub": world.status_uri,
        "iat": NOW + 60,
        "exp": NOW + DAY,
        "seq": world.seq + 1,
        "status_list": {"bits": 2, "lst": b64url_encode(zlib_bomb())},
    }
    bomb = encode_compact({"typ": STATUS_LIST_TYP, "kid": world.issuing.kid}, payload, world.issuing)
    assert len(bomb) < 1024 * 1024
    with refused(Reason.TOO_LARGE):
        node.trust.update_status_list(bomb, NOW)


def test_refuses_status_list_older_than_the_one_held(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue(index=100)
    old = world.status_token(seq=world.seq)
    world.status_list.set(100, Status.REVOKED)
    node.trust.update_status_list(world.status_token(issued_at=NOW + 60, seq=world.seq + 1), NOW + 60)
    with refused(Reason.ROLLBACK):
        node.trust.update_status_list(old, NOW + 60)
    with refused(Reason.REVOKED):
        node.verify(bind(credential, holder, node, issued_at=NOW + 60), now=NOW + 60)


def test_refuses_status_list_signed_by_a_key_not_in_the_bundle(world: RegistryWorld, node: Verifier) -> None:
    world.status_list.set(7, Status.VALID)
    with refused(Reason.UNKNOWN_KEY):
        node.trust.update_status_list(world.status_token(seq=world.seq + 1, key=SigningKey.generate()), NOW)


# -- size and shape ----------------------------------------------------------------------------------


def test_refuses_oversized_presentation(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue(personal={"employer": "x" * 70_000})
    with refused(Reason.TOO_LARGE):
        node.verify(bind(credential, holder, node, disclose=("employer",)))


def test_refuses_oversized_trust_material(world: RegistryWorld, node: Verifier) -> None:
    with refused(Reason.TOO_LARGE):
        node.trust.update_bundle(world.bundle(version=2, endpoint="https://x.example/" + "a" * 600_000), NOW)
    with refused(Reason.TOO_LARGE):
        node.trust.update_status_list("e" * (5 << 20), NOW)


def test_refuses_oversized_key_binding(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue()
    kb = encode_compact({"typ": "kb+jwt"}, {"pad": "x" * 5000}, holder.key)
    with refused(Reason.TOO_LARGE):
        node.verify(credential + kb)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json at all", Reason.MALFORMED),
        (b"\xff\xfe\x00", Reason.MALFORMED),
        (b'["an", "array"]', Reason.MALFORMED),
        (b'{"iss": NaN}', Reason.MALFORMED),
        (b'{"iss": "a", "iss": "b"}', Reason.DUPLICATE_MEMBER),
    ],
    ids=["text", "not-utf8", "array", "nan", "duplicate-member"],
)
def test_refuses_credential_payload_that_is_not_a_json_object(
    world: RegistryWorld, node: Verifier, body: bytes, reason: Reason
) -> None:
    credential, holder = world.issue()
    header = {"alg": "EdDSA", "typ": SD_JWT_VC_TYP, "kid": world.issuing.kid}
    with refused(reason):
        node.verify(bind(with_jwt(credential, compact_jws(header, body, b"s" * 64)), holder, node))


NESTED = b'{"iss": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"


def test_refuses_ten_thousand_nested_arrays_in_the_credential(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue()
    forged = with_jwt(
        credential,
        compact_jws({"alg": "EdDSA", "typ": SD_JWT_VC_TYP, "kid": world.issuing.kid}, NESTED, b"s" * 64),
    )
    with refused(Reason.TOO_DEEP):
        node.verify(bind(forged, holder, node))


def test_refuses_ten_thousand_nested_arrays_signed_by_the_issuer(
    world: RegistryWorld, node: Verifier
) -> None:
    """Even the genuine issuing key cannot make the parser recurse without bound."""
    credential, holder = world.issue()
    header = b64url_encode(canonical_json({"alg": "EdDSA", "typ": SD_JWT_VC_TYP, "kid": world.issuing.kid}))
    body = b64url_encode(NESTED)
    signature = b64url_encode(world.issuing.sign(f"{header}.{body}".encode()))
    with refused(Reason.TOO_DEEP):
        node.verify(bind(with_jwt(credential, f"{header}.{body}.{signature}"), holder, node))


def test_refuses_ten_thousand_nested_arrays_in_a_disclosure(world: RegistryWorld, node: Verifier) -> None:
    credential, holder = world.issue()
    deep = b64url_encode(b'["salt", "given_name", ' + b"[" * 10_000 + b"]" * 10_000 + b"]")
    made_up = split(credential).jwt + "~" + deep + "~"
    kb = make_key_binding(made_up, holder.key, audience="node-a", nonce=node.challenge(), issued_at=NOW)
    with refused(Reason.DISCLOSURE_MISMATCH):  # matched against the digests before it is parsed
        node.verify(made_up + kb)
    deep = b64url_encode(b'["salt", "given_name", ' + b"[" * 3000 + b"]" * 3000 + b"]")  # under the 8 KiB cap
    payload = payload_of(credential)
    payload["_sd"] = sorted([*payload["_sd"], digest(deep)])
    signed = encode_compact({"typ": SD_JWT_VC_TYP, "kid": world.issuing.kid}, payload, world.issuing)
    with_deep = signed + "~" + deep + "~"
    kb = make_key_binding(with_deep, holder.key, audience="node-a", nonce=node.challenge(), issued_at=NOW)
    with refused(Reason.TOO_DEEP):  # even when the issuer signed its digest
        node.verify(with_deep + kb)


def test_refuses_nested_arrays_in_the_key_binding(world: RegistryWorld, node: Verifier) -> None:
    """A thousand levels: as deep as the key-binding JWT's size cap lets an attacker go."""
    credential, _holder = world.issue()
    kb = compact_jws(
        {"alg": "EdDSA", "typ": "kb+jwt"}, b'{"a":' + b"[" * 1000 + b"]" * 1000 + b"}", b"s" * 64
    )
    with refused(Reason.TOO_DEEP):
        node.verify(credential + kb)


def test_refuses_ten_thousand_nested_arrays_in_a_bundle(world: RegistryWorld, node: Verifier) -> None:
    bundle = compact_jws(
        {"alg": "EdDSA", "typ": "clearance-bundle+jwt", "kid": world.root.kid}, NESTED, b"s" * 64
    )
    with refused(Reason.TOO_DEEP):
        node.trust.update_bundle(bundle, NOW)


# -- trust material ----------------------------------------------------------------------------------


def test_refuses_a_trust_bundle_rollback(world: RegistryWorld, node: Verifier) -> None:
    node.trust.update_bundle(world.bundle(version=7), NOW)
    with refused(Reason.ROLLBACK):
        node.trust.update_bundle(world.bundle(version=6), NOW)
    assert node.trust.require_home(NOW).version == 7


def test_refuses_expired_bundle_at_update(world: RegistryWorld, node: Verifier) -> None:
    with refused(Reason.BUNDLE_EXPIRED):
        node.trust.update_bundle(world.bundle(version=2, issued_at=NOW - 2 * DAY, expires_in=DAY), NOW)


def test_refuses_expired_bundle_at_decision_time(world: RegistryWorld, node: Verifier) -> None:
    """The node stays frozen until a fresh bundle arrives, even for a credential that is fine."""
    credential, holder = world.issue()
    later = NOW + DAY
    with refused(Reason.BUNDLE_EXPIRED):
        node.verify(bind(credential, holder, node, issued_at=later), now=later)


def forged_rotation(world: RegistryWorld, new: SigningKey, signers: list[SigningKey]) -> RootRotation:
    payload = {
        "schema": SCHEMA,
        "jurisdiction": "JP",
        "version": 2,
        "root": new.public.jwk,
        "previous": world.root.kid,
        "iat": NOW,
    }
    return RootRotation.parse(sign_general(payload, [(key, {"typ": ROOT_TYP}) for key in signers]).to_json())


def test_refuses_root_rotation_signed_only_by_the_new_key(world: RegistryWorld, node: Verifier) -> None:
    new = SigningKey.generate()
    with refused(Reason.ROTATION_INVALID):
        node.trust.update_root(forged_rotation(world, new, [new]))
    assert node.trust.root == world.root.public


def test_refuses_root_rotation_signed_by_an_unrelated_key(world: RegistryWorld, node: Verifier) -> None:
    new = SigningKey.generate()
    with refused(Reason.ROTATION_INVALID):
        node.trust.update_root(forged_rotation(world, new, [SigningKey.generate(), new]))
    assert node.trust.root == world.root.public


# -- foreign registries --------------------------------------------------------------------------------


def test_refuses_foreign_bundle_signed_by_a_root_in_no_agreement(
    world: RegistryWorld, node: Verifier
) -> None:
    stranger = RegistryWorld.create("KP")
    with refused(Reason.UNTRUSTED_ISSUER):
        node.trust.update_foreign_bundle(stranger.bundle(), NOW)
    credential, holder = stranger.issue()
    with refused(Reason.UNTRUSTED_ISSUER):
        node.verify(bind(credential, holder, node))


def test_refuses_agreement_signed_by_one_party_only(world: RegistryWorld) -> None:
    partner = RegistryWorld.create("US")
    proposal = Agreement.propose(
        world.root,
        agreement_id="JP-US-1",
        parties=(
            Party("JP", world.root.public, world.issuer),
            Party("US", partner.root.public, partner.issuer),
        ),
        levels=[("SECRET", "SECRET")],
        categories={"JP": ["cyber-threat"], "US": ["cyber-threat"]},
        issued_at=NOW,
        not_before=NOW,
        expires_at=NOW + DAY,
    )
    world.agreements.append(proposal.to_json())
    with refused(Reason.AGREEMENT_INVALID):
        Verifier.synced(world)


def test_refuses_level_table_that_maps_one_level_to_two(world: RegistryWorld) -> None:
    partner = RegistryWorld.create("US")
    payload = json.loads(b64url_decode(world.agree_with(partner).to_json()["payload"]))
    payload["levels"] = [{"JP": "SECRET", "US": "SECRET"}, {"JP": "SECRET", "US": "TOP_SECRET"}]
    signers = [(world.root, {"typ": AGREEMENT_TYP}), (partner.root, {"typ": AGREEMENT_TYP})]
    world.agreements.append(sign_general(payload, signers).to_json())
    with refused(Reason.AGREEMENT_INVALID) as excinfo:
        Verifier.synced(world)
    assert "two levels" in excinfo.value.detail


def test_refuses_agreement_whose_validity_has_ended(world: RegistryWorld) -> None:
    partner = RegistryWorld.create("US")
    node = Verifier.trusting(world, partner, agreement_expires_in=DAY, bundle_expires_in=10 * DAY)
    credential, holder = partner.issue()
    node.verify(bind(credential, holder, node))
    ended = NOW + DAY
    with refused(Reason.AGREEMENT_INVALID):
        node.verify(bind(credential, holder, node, issued_at=ended), now=ended)
    with refused(Reason.AGREEMENT_INVALID):
        node.trust.update_foreign_bundle(partner.bundle(version=2, issued_at=ended), ended)


def test_refuses_presentation_that_is_not_text_or_not_an_sd_jwt(node: Verifier) -> None:
    for garbage in (None, b"bytes~", "", "~", "a.b.c", "~~~~"):
        with refused(Reason.MALFORMED):
            node.verify(garbage)  # type: ignore[arg-type]


def test_refuses_a_holder_forging_a_credential_from_scratch(world: RegistryWorld, node: Verifier) -> None:
    """A self-made credential naming the registry as issuer, signed by the holder's own key."""
    holder = Holder()
    payload = payload_of(world.issue(holder)[0])
    forged = encode_compact({"typ": SD_JWT_VC_TYP, "kid": world.issuing.kid}, payload, holder.key) + "~"
    with refused(Reason.BAD_SIGNATURE):
        node.verify(present(forged, holder.key, audience="node-a", nonce=node.challenge(), issued_at=NOW))


def test_a_partner_registry_cannot_keep_the_status_list_of_another(world: RegistryWorld) -> None:
    """FR, trusted through its own agreement, lists the US status list URI as one of its own and
    signs an all-valid list for it. It must not un-revoke a credential the US revoked."""
    france, usa = RegistryWorld.create("FR"), RegistryWorld.create("US")
    squatting = (StatusListLocation(france.status_uri, 2), StatusListLocation(usa.status_uri, 2))
    for partner in (france, usa):
        agreement = world.agree_with(partner).to_json()
        world.agreements.append(agreement)
        partner.agreements.append(agreement)
    node = Verifier.synced(world)
    node.trust.update_foreign_bundle(france.bundle(status_lists=squatting), NOW)
    node.trust.update_foreign_bundle(usa.bundle(), NOW)
    credential, holder = usa.issue(index=50)
    usa.status_list.set(50, Status.REVOKED)
    france.status_uri = usa.status_uri  # France signs "the US list": every entry valid
    node.trust.update_status_list(france.status_token(seq=99), NOW)
    with refused(Reason.UNTRUSTED_ISSUER):
        node.verify(bind(credential, holder, node))
