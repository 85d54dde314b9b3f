"""Signing requests and detached signatures: the offline side signs only what it shows."""

from __future__ import annotations

import dataclasses
import json

import pytest

from clearance.agreement import ThresholdAgreement, ThresholdParty
from clearance.bundle import unsigned_threshold_bundle, verify_threshold_bundle
from clearance.ceremony import (
    DetachedSignature,
    Kind,
    SigningRequest,
    assemble,
    assemble_root,
    sign_request,
)
from clearance.changes import describe_payload, summarize_bundle_change, summarize_root_change
from clearance.encoding import b64url_encode, canonical_json
from clearance.errors import MalformedError, Reason
from clearance.jws import verify_signature
from clearance.keys import SigningKey
from clearance.pkcs11 import Pkcs11Signer, generate_key_pair
from clearance.rootdoc import RootDocument
from cli.softhsm import ScratchToken, SoftHsm
from tests.clearance.threshold_world import ThresholdRegistry, keys
from tests.factories import DAY, NOW, refused


def bundle_request(registry: ThresholdRegistry, version: int = 2) -> SigningRequest:
    old, new = registry.bundle(version=version - 1), registry.bundle(version=version)
    return SigningRequest.create(
        Kind.BUNDLE, unsigned_threshold_bundle(new), summarize_bundle_change(old, new), created=NOW
    )


def test_a_bundle_signed_one_official_at_a_time_assembles_and_verifies() -> None:
    registry = ThresholdRegistry.create(n=3, k=2)
    request = SigningRequest.loads(json.dumps(bundle_request(registry).to_json()))
    signatures = [
        DetachedSignature.loads(json.dumps(sign_request(request, key).to_json()))
        for key in registry.root_keys[1:]
    ]

    document = assemble(request, signatures, [registry.root])

    assert document.payload_b64 == request.payload_b64
    assert verify_threshold_bundle(document.to_json(), registry.root).version == 2


def test_a_request_altered_on_the_way_is_refused_by_both_sides() -> None:
    registry = ThresholdRegistry.create(n=1, k=1)
    request = bundle_request(registry)
    other = bundle_request(registry, version=9)
    altered = dataclasses.replace(request, payload_b64=other.payload_b64)

    with refused(Reason.PAYLOAD_MISMATCH):
        sign_request(altered, registry.root_keys[0])
    signature = sign_request(other, registry.root_keys[0])
    with refused(Reason.PAYLOAD_MISMATCH):
        assemble(altered, [dataclasses.replace(signature, sha256=request.sha256)], [registry.root])


def test_a_signature_over_another_payload_is_refused() -> None:
    registry = ThresholdRegistry.create(n=2, k=2)
    request, other = bundle_request(registry), bundle_request(registry, version=3)
    good = sign_request(request, registry.root_keys[0])
    elsewhere = sign_request(other, registry.root_keys[1])

    with refused(Reason.PAYLOAD_MISMATCH):
        assemble(request, [good, elsewhere], [registry.root])
    # The same signature relabelled with this request's hash still covers the other payload.
    with refused(Reason.PAYLOAD_MISMATCH):
        assemble(request, [good, dataclasses.replace(elsewhere, sha256=request.sha256)], [registry.root])


def test_duplicates_unknown_keys_and_fewer_than_k_are_refused() -> None:
    registry = ThresholdRegistry.create(n=3, k=2)
    request = bundle_request(registry)
    first = sign_request(request, registry.root_keys[0])

    with refused(Reason.DUPLICATE_SIGNATURE):
        assemble(request, [first, first], [registry.root])
    with refused(Reason.UNKNOWN_KEY):
        assemble(request, [first, sign_request(request, SigningKey.generate())], [registry.root])
    with refused(Reason.THRESHOLD_NOT_MET):
        assemble(request, [first], [registry.root])


def test_a_signature_made_for_another_kind_of_document_is_refused() -> None:
    registry = ThresholdRegistry.create(n=1, k=1)
    request = bundle_request(registry)
    as_root = dataclasses.replace(request, kind=Kind.ROOT)
    key = registry.root_keys[0]
    header = {"alg": key.alg, "kid": key.kid, "typ": Kind.ROOT.typ}
    protected = b64url_encode(canonical_json(header))
    wrong = DetachedSignature(
        request.sha256, protected, key.sign(f"{protected}.{request.payload_b64}".encode()), header
    )
    verify_signature(
        "EdDSA", f"{protected}.{request.payload_b64}".encode(), wrong.signature, key.public, what="x"
    )

    with refused(Reason.WRONG_TYPE):
        assemble(request, [wrong], [registry.root])
    with pytest.raises(MalformedError):
        sign_request(as_root, key)  # a bundle payload is not a root document


@pytest.mark.parametrize(
    "line",
    ["fine\x1b[2Jhidden", "right-to-left \u202e override", "x" * 400],
)
def test_summary_lines_that_could_hide_text_are_refused(line: str) -> None:
    registry = ThresholdRegistry.create(n=1, k=1)
    with pytest.raises(MalformedError):
        SigningRequest.create(Kind.BUNDLE, unsigned_threshold_bundle(registry.bundle()), [line], created=NOW)


def test_a_root_rotation_is_assembled_from_old_and_new_signatures() -> None:
    registry = ThresholdRegistry.create(n=3, k=2)
    v1, old_keys, new_keys = registry.root, registry.root_keys, keys(2)
    draft = RootDocument("JP", 2, 2, (old_keys[0].public, *(k.public for k in new_keys)), NOW + 1)
    request = SigningRequest.create(
        Kind.ROOT, draft.unsigned(), summarize_root_change(v1, draft), created=NOW
    )

    signatures = [sign_request(request, key) for key in (old_keys[1], old_keys[2], *new_keys)]
    v2 = assemble_root(request, signatures, v1)
    assert v2.fingerprint == draft.fingerprint
    assert v1.verify_successor(RootDocument.parse(v2.to_json())) is not None

    with refused(Reason.THRESHOLD_NOT_MET):
        assemble_root(request, [sign_request(request, key) for key in new_keys], v1)


def test_each_side_of_an_agreement_is_signed_by_k_of_its_own_set() -> None:
    jp, us = ThresholdRegistry.create("JP", n=3, k=2), ThresholdRegistry.create("US", n=1, k=1)
    draft = ThresholdAgreement.draft(
        agreement_id="JP-US-1",
        parties=(ThresholdParty("JP", jp.root, jp.issuer), ThresholdParty("US", us.root, us.issuer)),
        levels=[("SECRET", "SECRET")],
        categories={"JP": ["joint-research"], "US": ["joint-research"]},
        issued_at=NOW,
        not_before=NOW - DAY,
        expires_at=NOW + 365 * DAY,
    )
    request = SigningRequest.create(Kind.AGREEMENT, draft.document, [], created=NOW)
    ours = assemble(request, [sign_request(request, k) for k in jp.root_keys[:2]], [jp.root])
    theirs = assemble(request, [sign_request(request, us.root_keys[0])], [us.root])

    agreement = ThresholdAgreement.parse(ours.to_json()).with_signatures(theirs)
    agreement.verify(NOW)
    assert agreement.map_level("US", "SECRET", "JP") == "SECRET"
    with refused(Reason.THRESHOLD_NOT_MET):
        ThresholdAgreement.parse(ours.to_json()).verify(NOW)
    one_jp = draft.sign(jp.root_keys[:1])
    with refused(Reason.THRESHOLD_NOT_MET):
        one_jp.with_signatures(theirs).verify(NOW)
    assert ("agreement", "agreement JP-US-1 between JP and US") in describe_payload(
        "agreement", request.payload
    )


def test_the_summary_says_what_changed_in_words() -> None:
    registry = ThresholdRegistry.create(n=1, k=1)
    old = registry.bundle(version=4)
    rotated = SigningKey.generate()
    new = dataclasses.replace(
        registry.bundle(version=5),
        issuing_keys=(dataclasses.replace(old.issuing_keys[0], key=rotated.public),),
        status_lists=(),
    )

    lines = summarize_bundle_change(old, new)

    assert lines[0] == "trust bundle v5 for JP (replaces v4)"
    assert (
        f"adds issuing key {rotated.kid} (EdDSA) valid from 2026-09-20 14:13 UTC to 2027-09-21 14:13 UTC"
        in lines
    )
    assert f"removes issuing key {registry.issuing.kid}" in lines
    assert "removes status list https://registry.jp.example/statuslists/1" in lines
    assert lines[-1] == "expires 2026-09-22 14:13 UTC"


def test_a_root_key_in_a_token_signs_a_request(softhsm: SoftHsm, token: ScratchToken) -> None:
    uri, public = generate_key_pair(token.key_uri("root-1"), "ES256", softhsm.config)
    file_key = SigningKey.generate()
    root = RootDocument("JP", 1, 2, (public, file_key.public), NOW)
    signer = Pkcs11Signer(uri, softhsm.config)
    signed_root = root.sign([signer, file_key])
    signed_root.verify_self_signed()

    registry = ThresholdRegistry("JP", [file_key], [signed_root])
    request = bundle_request(registry)
    document = assemble(
        request, [sign_request(request, signer), sign_request(request, file_key)], [signed_root]
    )
    assert verify_threshold_bundle(document.to_json(), signed_root).version == 2
