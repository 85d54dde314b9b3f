"""X.509 for the HAIP issuing profile: the registry's issuer CA, leaf certificates for issuing keys,
and the ``x5c`` chains that credentials and status list tokens carry.

HAIP 1.0 wants an issuer's key delivered as an X.509 chain (``x5c``, RFC 7515 section 4.1.6)
with ES256 signatures. Here:

* the **issuer CA** is a self-signed P-256 certificate (``cA``, path length 0, key usage
  ``keyCertSign``) of the registry. Its DER is listed in the trust bundle (``issuer_cas``), so
  the root that signs the bundle vouches for it and an offline node needs nothing new;
* each ES256 **issuing key** gets a leaf certificate from it: not a CA, key usage
  ``digitalSignature`` only, the registry's issuer URL as a URI subjectAltName (so a verifier
  can bind the credential's ``iss`` to the certificate), valid for the key's window;
* a token's ``x5c`` is ``[leaf]``: the CA is the trust anchor and is not repeated (HAIP).

:func:`verify_x5c` refuses a chain that does not reach a listed CA (``chain_untrusted``), a
leaf whose key is not the key the ``kid`` names (``certificate_key_mismatch``), a certificate
outside its validity (``certificate_expired``) and the wrong key usage or basic constraints
(``certificate_usage``).

Certificates are signed through :class:`~clearance.keys.Signer`, so the CA key may live in a
PKCS#11 token: the to-be-signed part is built by pyca/cryptography, signed by the signer, and
the certificate assembled around that signature (then checked against the CA key).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import itertools
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from clearance.errors import MalformedError, Reason, VerificationError
from clearance.keys import PublicKey, Signer

MAX_CHAIN = 4
"""The longest ``x5c`` we read: a leaf and up to three intermediates."""
MAX_CERTIFICATE_BYTES = 8192
_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
"""DER of the AlgorithmIdentifier ecdsa-with-SHA256 (RFC 5758 section 3.2)."""


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def _timestamp(seconds: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)


def _sign_with(builder: x509.CertificateBuilder, signer: Signer) -> x509.Certificate:
    """Sign ``builder`` with ``signer`` (ES256), wherever its private key lives.

    Raises:
        MalformedError: the signer is not a P-256 key.
        ClearanceError: the signer could not sign (a token error, say).
    """
    if signer.alg != "ES256":
        raise MalformedError("an issuer CA key must be a P-256 (ES256) key")
    # A throwaway key of the same type fixes the TBS's signature algorithm (ecdsa-with-SHA256);
    # the TBS does not depend on which P-256 key signs it.
    placeholder = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    tbs = placeholder.tbs_certificate_bytes
    raw = signer.sign(tbs)
    signature = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    der = _der(0x30, tbs + _ECDSA_SHA256 + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


def _public_object(key: PublicKey) -> ec.EllipticCurvePublicKey:
    loaded = serialization.load_pem_public_key(key.to_pem())
    if not isinstance(loaded, ec.EllipticCurvePublicKey):
        raise MalformedError("HAIP certificates certify P-256 keys only")
    return loaded


def make_issuer_ca(
    signer: Signer, *, jurisdiction: str, issuer: str, not_before: int, not_after: int
) -> bytes:
    """A self-signed issuer CA certificate (DER) for ``signer``'s P-256 key.

    Raises:
        MalformedError: the signer is not P-256 or the window is empty.
        ClearanceError: the signer could not sign.
    """
    if not_after <= not_before:
        raise MalformedError("issuer CA validity ends before it starts")
    public = _public_object(signer.public)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, jurisdiction),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, issuer[:64]),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{jurisdiction} clearance issuer CA"),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_timestamp(not_before))
        .not_valid_after(_timestamp(not_after))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    return _sign_with(builder, signer).public_bytes(serialization.Encoding.DER)


def make_issuing_certificate(
    ca_signer: Signer,
    ca_der: bytes,
    issuing_key: PublicKey,
    *,
    issuer: str,
    not_before: int,
    not_after: int,
) -> bytes:
    """A leaf certificate (DER) for an ES256 issuing key, signed by the issuer CA.

    Its URI subjectAltName is the registry's issuer URL.

    Raises:
        MalformedError: not P-256 keys, a CA certificate that is not ``ca_signer``'s, or
            an empty window.
        ClearanceError: the signer could not sign.
    """
    return make_leaf_certificate(
        ca_signer,
        ca_der,
        issuing_key,
        common_name=f"issuing key {issuing_key.thumbprint}",
        names=[x509.UniformResourceIdentifier(issuer)],
        not_before=not_before,
        not_after=not_after,
    )


def make_leaf_certificate(
    ca_signer: Signer,
    ca_der: bytes,
    key: PublicKey,
    *,
    common_name: str,
    names: Sequence[x509.GeneralName],
    not_before: int,
    not_after: int,
) -> bytes:
    """A leaf certificate (DER) for a P-256 signing key, signed by a CA of ours.

    Not a CA, key usage ``digitalSignature`` only, subjectAltNames ``names`` (an issuer URL;
    a verifier's DNS names), valid for the window clipped to the CA's.

    Raises:
        MalformedError: not P-256 keys, a CA certificate that is not ``ca_signer``'s, or
            an empty window.
        ClearanceError: the signer could not sign.
    """
    ca = load_certificate(ca_der)
    if PublicKey(_loaded_key(ca)) != ca_signer.public:
        raise MalformedError("the CA certificate is not the CA signer's")
    if not_after <= not_before:
        raise MalformedError("certificate validity ends before it starts")
    public = _public_object(key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    *ca.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME),
                    x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
                ]
            )
        )
        .issuer_name(ca.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(max(_timestamp(not_before), ca.not_valid_before_utc))
        .not_valid_after(min(_timestamp(not_after), ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(_loaded_key(ca)), critical=False)
    )
    return _sign_with(builder, ca_signer).public_bytes(serialization.Encoding.DER)


def _loaded_key(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise VerificationError(Reason.CERTIFICATE_USAGE, "certificate key is not a P-256 key")
    return key


def load_certificate(der: bytes) -> x509.Certificate:
    """Parse one DER certificate.

    Raises:
        MalformedError: too large or not a certificate.
    """
    if len(der) > MAX_CERTIFICATE_BYTES:
        raise MalformedError("certificate is too large", Reason.TOO_LARGE)
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise MalformedError("not a DER X.509 certificate") from exc


def x5c_value(chain: Sequence[bytes]) -> list[str]:
    """The ``x5c`` header value: standard base64 (with padding) DER, leaf first (RFC 7515 4.1.6)."""
    return [base64.b64encode(der).decode("ascii") for der in chain]


def decode_x5c(value: object, *, max_items: int = MAX_CHAIN) -> tuple[bytes, ...]:
    """The DER certificates of an ``x5c`` header value.

    Raises:
        MalformedError: not a non-empty array of base64 strings, or longer than :data:`MAX_CHAIN`.
    """
    if not isinstance(value, list) or not 1 <= len(value) <= max_items:
        raise MalformedError(f"x5c must be an array of 1 to {max_items} certificates")
    out = []
    for entry in value:
        if not isinstance(entry, str) or len(entry) > MAX_CERTIFICATE_BYTES * 2:
            raise MalformedError("x5c entries must be base64 strings")
        try:
            out.append(base64.b64decode(entry, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise MalformedError("x5c entry is not base64") from exc
    return tuple(out)


def check_issuer_ca(der: bytes) -> x509.Certificate:
    """Parse a CA certificate a bundle lists: a P-256 CA that may sign certificates.

    Raises:
        MalformedError: not such a certificate.
    """
    cert = load_certificate(der)
    try:
        _loaded_key(cert)
        _require_ca(cert)
    except VerificationError as exc:
        raise MalformedError(f"issuer CA certificate: {exc.detail}") from exc
    return cert


def _require_ca(cert: x509.Certificate) -> None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise VerificationError(Reason.CERTIFICATE_USAGE, "CA certificate lacks constraints") from exc
    if not constraints.ca or not usage.key_cert_sign:
        raise VerificationError(Reason.CERTIFICATE_USAGE, "certificate is not a CA that signs certificates")


def _require_leaf(cert: x509.Certificate) -> None:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as exc:
        raise VerificationError(Reason.CERTIFICATE_USAGE, "issuing certificate states no key usage") from exc
    if not usage.digital_signature or usage.key_cert_sign:
        raise VerificationError(
            Reason.CERTIFICATE_USAGE, "issuing certificate is not for digital signatures only"
        )
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return
    if constraints.ca:
        raise VerificationError(Reason.CERTIFICATE_USAGE, "issuing certificate is a CA certificate")


@functools.lru_cache(maxsize=256)
def _verified_chain(chain: tuple[bytes, ...], anchors: tuple[bytes, ...]) -> tuple[int, int, str]:
    """Check the signatures, names and usages of ``chain`` up to one of ``anchors``.

    Returns ``(not_before, not_after, leaf key thumbprint)``: the window in which every
    certificate of the path is valid, and the key the leaf certifies. Cached: a chain repeats
    on every token of one issuing key (a refusal raises and is not cached).

    Raises:
        MalformedError: a certificate cannot be parsed.
        VerificationError: ``chain_untrusted`` or ``certificate_usage``.
    """
    certs = [load_certificate(der) for der in chain]
    trusted = [load_certificate(der) for der in anchors]
    leaf = certs[0]
    _require_leaf(leaf)
    path = [leaf]
    for cert in certs[1:]:
        if any(cert == anchor for anchor in trusted):
            break  # an anchor sent along is not needed; the path ends at it below
        path.append(cert)
    for child, parent in itertools.pairwise(path):
        _require_ca(parent)
        _issued_by(child, parent)
    top = path[-1]
    for anchor in trusted:
        try:
            _issued_by(top, anchor)
        except VerificationError:
            continue
        _require_ca(anchor)
        path.append(anchor)
        break
    else:
        raise VerificationError(Reason.CHAIN_UNTRUSTED, "x5c chain does not reach an issuer CA of the bundle")
    not_before = max(int(c.not_valid_before_utc.timestamp()) for c in path)
    not_after = min(int(c.not_valid_after_utc.timestamp()) for c in path)
    return not_before, not_after, PublicKey(_loaded_key(leaf)).thumbprint


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> None:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise VerificationError(
            Reason.CHAIN_UNTRUSTED, "a certificate of the chain is not signed by the next"
        ) from exc


def certified_key(x5c: object, anchors: Sequence[bytes], now: int) -> tuple[PublicKey, x509.Certificate]:
    """The key an ``x5c`` chain certifies, and its leaf, if the chain reaches one of ``anchors`` at ``now``.

    Raises:
        MalformedError: the header or a certificate cannot be parsed.
        VerificationError: ``chain_untrusted``, ``certificate_expired`` or ``certificate_usage``.
    """
    chain = decode_x5c(x5c)
    if not anchors:
        raise VerificationError(Reason.CHAIN_UNTRUSTED, "no CA is trusted for an x5c chain")
    not_before, not_after, _ = _verified_chain(chain, tuple(anchors))
    if not not_before <= now <= not_after:
        raise VerificationError(Reason.CERTIFICATE_EXPIRED, "a certificate of the x5c chain is not valid now")
    leaf = load_certificate(chain[0])
    return PublicKey(_loaded_key(leaf)), leaf


def verify_x5c(x5c: object, anchors: Sequence[bytes], key: PublicKey, now: int) -> None:
    """Check a token's ``x5c`` header: it certifies ``key`` and reaches one of ``anchors`` at ``now``.

    Args:
        x5c: the header value as sent.
        anchors: DER of the CA certificates the bundle lists.
        key: the key the token's ``kid`` names in the bundle (the key that signed it).
        now: seconds since the epoch.

    Raises:
        MalformedError: the header or a certificate cannot be parsed.
        VerificationError: ``chain_untrusted``, ``certificate_key_mismatch``,
            ``certificate_expired`` or ``certificate_usage``.
    """
    chain = decode_x5c(x5c)
    if not anchors:
        raise VerificationError(Reason.CHAIN_UNTRUSTED, "the bundle lists no issuer CA for an x5c chain")
    not_before, not_after, leaf_key = _verified_chain(chain, tuple(anchors))
    if leaf_key != key.thumbprint:
        raise VerificationError(
            Reason.CERTIFICATE_KEY_MISMATCH, "x5c leaf certifies another key than the one kid names"
        )
    if not not_before <= now <= not_after:
        raise VerificationError(Reason.CERTIFICATE_EXPIRED, "a certificate of the x5c chain is not valid now")
