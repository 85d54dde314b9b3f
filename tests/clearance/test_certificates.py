"""The HAIP issuing profile: an issuer CA listed in the bundle, x5c chains on what the registry signs."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from clearance.bundle import TrustBundle
from clearance.certificates import (
    check_issuer_ca,
    decode_x5c,
    make_issuer_ca,
    make_issuing_certificate,
    verify_x5c,
    x5c_value,
)
from clearance.errors import MalformedError, Reason
from clearance.jws import decode_compact
from clearance.keys import SigningKey
from clearance.pkcs11 import Pkcs11Signer, generate_key_pair
from clearance.sdjwt import split
from clearance.trust import TrustStore
from cli.softhsm import ScratchToken, SoftHsm
from tests.factories import DAY, NOW, RegistryWorld, Verifier, present_credential, refused


@pytest.fixture
def world() -> RegistryWorld:
    return RegistryWorld.create(haip=True)


def test_a_haip_credential_carries_its_leaf_and_verifies_at_a_node(world: RegistryWorld) -> None:
    node = Verifier.synced(world)
    credential, holder = world.issue()
    header = decode_compact(split(credential).jwt).header

    assert header["alg"] == "ES256"
    assert decode_x5c(header["x5c"]) == world.x5c  # the leaf only: the CA is the bundle's anchor
    verified = node.verify(present_credential(credential, holder, nonce=node.challenge()))
    assert verified.issuing_kid == world.issuing.kid


def test_the_leaf_names_the_issuer_and_is_for_signatures_only(world: RegistryWorld) -> None:
    leaf = x509.load_der_x509_certificate(world.x5c[0])
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value

    assert names.get_values_for_type(x509.UniformResourceIdentifier) == [world.issuer]
    assert usage.digital_signature
    assert not usage.key_cert_sign
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    leaf.verify_directly_issued_by(x509.load_der_x509_certificate(world.ca_der))


def test_the_bundle_lists_the_ca_and_an_ed25519_bundle_is_unchanged(world: RegistryWorld) -> None:
    bundle = TrustBundle.verify(world.bundle(), world.root.public)
    assert bundle.issuer_cas == (world.ca_der,)
    plain = RegistryWorld.create()
    assert "issuer_cas" not in decode_compact(plain.bundle()).payload


def test_a_chain_to_another_ca_is_refused(world: RegistryWorld) -> None:
    node = Verifier.synced(world)
    stranger = RegistryWorld.create(haip=True)
    stranger.issuing = world.issuing
    credential, holder = world.issue(x5c=(stranger.leaf_certificate(),))
    with refused(Reason.CHAIN_UNTRUSTED):
        node.verify(present_credential(credential, holder, nonce=node.challenge()))


def test_a_leaf_for_another_key_than_the_kid_is_refused(world: RegistryWorld) -> None:
    node = Verifier.synced(world)
    credential, holder = world.issue(x5c=(world.leaf_certificate(SigningKey.generate("ES256")),))
    with refused(Reason.CERTIFICATE_KEY_MISMATCH):
        node.verify(present_credential(credential, holder, nonce=node.challenge()))


def test_an_expired_leaf_is_refused(world: RegistryWorld) -> None:
    node = Verifier.synced(world)
    old = world.leaf_certificate(not_before=NOW - 60 * DAY, not_after=NOW - DAY)
    credential, holder = world.issue(x5c=(old,))
    with refused(Reason.CERTIFICATE_EXPIRED):
        node.verify(present_credential(credential, holder, nonce=node.challenge()))


def _certificate(world: RegistryWorld, *, ca: bool, digital_signature: bool) -> bytes:
    """A leaf the CA signed with the given constraints (made with pyca directly)."""
    assert world.ca is not None
    ca_private = serialization.load_pem_private_key(world.ca.to_pem(), None)
    assert isinstance(ca_private, ec.EllipticCurvePrivateKey)
    issuer = x509.load_der_x509_certificate(world.ca_der).subject
    public = serialization.load_pem_public_key(world.issuing.public.to_pem())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    at = datetime.datetime.fromtimestamp(NOW, tz=datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd leaf")]))
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(1)
        .not_valid_before(at - datetime.timedelta(days=1))
        .not_valid_after(at + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature, False, False, False, False, ca, False, False, False),
            critical=True,
        )
    )
    return builder.sign(ca_private, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(("ca", "digital_signature"), [(True, True), (False, False)])
def test_a_leaf_with_the_wrong_key_usage_is_refused(
    world: RegistryWorld, ca: bool, digital_signature: bool
) -> None:
    leaf = _certificate(world, ca=ca, digital_signature=digital_signature)
    with refused(Reason.CERTIFICATE_USAGE):
        verify_x5c(x5c_value([leaf]), [world.ca_der], world.issuing.public, NOW)


def test_an_x5c_is_refused_when_the_bundle_lists_no_ca(world: RegistryWorld) -> None:
    with refused(Reason.CHAIN_UNTRUSTED):
        verify_x5c(x5c_value(world.x5c), [], world.issuing.public, NOW)


@pytest.mark.parametrize("value", [[], "MIIB", ["not base64!"], [""] * 5, [7]])
def test_a_malformed_x5c_is_refused(world: RegistryWorld, value: object) -> None:
    with refused(Reason.MALFORMED):
        verify_x5c(value, [world.ca_der], world.issuing.public, NOW)


def test_a_status_list_with_a_chain_to_another_ca_is_refused_and_nothing_changes(
    world: RegistryWorld,
) -> None:
    trust = TrustStore(world.root.public)
    trust.update_bundle(world.bundle(), NOW)
    good = world.status_token()
    stranger = RegistryWorld.create(haip=True)
    world.x5c = (stranger.leaf_certificate(world.issuing),)
    with refused(Reason.CHAIN_UNTRUSTED):
        trust.update_status_list(world.status_token(), NOW)
    assert trust.status_lists == {}
    assert trust.update_status_list(good, NOW).uri == world.status_uri


def test_a_bundle_refuses_an_issuer_ca_that_is_not_a_ca(world: RegistryWorld) -> None:
    with pytest.raises(MalformedError, match="issuer CA"):
        check_issuer_ca(world.x5c[0])


def test_the_ca_and_its_certificates_can_be_signed_by_a_token_key(
    softhsm: SoftHsm, token: ScratchToken
) -> None:
    uri, _ = generate_key_pair(token.key_uri("issuer-ca"), "ES256", softhsm.config)
    ca = Pkcs11Signer(str(uri), softhsm.config)
    issuing = SigningKey.generate("ES256")
    ca_der = make_issuer_ca(
        ca, jurisdiction="JP", issuer="https://registry.jp.example", not_before=NOW - DAY, not_after=NOW + DAY
    )
    leaf = make_issuing_certificate(
        ca, ca_der, issuing.public, issuer="https://registry.jp.example", not_before=NOW, not_after=NOW + DAY
    )
    verify_x5c(x5c_value([leaf]), [ca_der], issuing.public, NOW)


def test_an_ed25519_key_cannot_be_an_issuer_ca() -> None:
    with pytest.raises(MalformedError, match="P-256"):
        make_issuer_ca(
            SigningKey.generate(), jurisdiction="JP", issuer="https://x", not_before=0, not_after=1
        )
