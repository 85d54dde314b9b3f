"""Credential offers with a pre-authorized code (OpenID4VCI 1.0 section 4).

Staff make an offer once a decision is made; the person's wallet redeems it::

    openid-credential-offer://?credential_offer=<JSON>               by value
    openid-credential-offer://?credential_offer_uri=<https URL>      by reference

The offer names the credential issuer, the credential configuration, and the
``urn:ietf:params:oauth:grant-type:pre-authorized_code`` grant with its code and, when a
transaction code is required, how to ask for it (``tx_code``: length, input mode, a
description). The transaction code itself travels by another channel (a letter, an SMS).

What a store keeps is an :class:`OfferRecord`: digests of the code and of the transaction
code, never the codes themselves, so a read of the store can neither redeem nor serve an
offer. An offer by reference is fetched at ``{issuer}/openid4vci/offers/{secret}``: the
pre-authorized code is derived from that secret (:func:`code_for_reference`), the store finds
the offer by the secret's digest, and the issuer rebuilds the offer document from the record
and the secret the caller presented. An offer expires, is redeemed at most once, and allows a
bounded number of wrong transaction codes (after which it is burnt).
"""

from __future__ import annotations

import enum
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from clearance.encoding import b64url_encode, parse_json_object
from clearance.errors import MalformedError

PRE_AUTHORIZED_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
OFFER_SCHEME = "openid-credential-offer"
MAX_OFFER_URI = 8192
DEFAULT_OFFER_TTL = 15 * 60
DEFAULT_TX_CODE_TRIES = 5
DEFAULT_TX_CODE_LENGTH = 6

RandomBytes = Callable[[int], bytes]


def code_digest(code: str) -> str:
    """The digest a store keeps of a pre-authorized code (or an access token)."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def code_for_reference(secret: str) -> str:
    """The pre-authorized code of the offer whose by-reference URL carries ``secret``."""
    return b64url_encode(hashlib.sha256(b"clearance pre-authorized code\x00" + secret.encode()).digest())


def offer_id_for(secret: str) -> str:
    """The identifier a store keeps (and audits) for the offer whose URL carries ``secret``."""
    return hashlib.sha256(b"clearance offer id\x00" + secret.encode()).hexdigest()[:32]


def tx_code_digest(code: str, tx_code: str) -> str:
    """The digest of a transaction code, salted with the pre-authorized code it unlocks."""
    return hashlib.sha256(f"{code}\x00{tx_code}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TxCodeSpec:
    """How the wallet should ask the person for the transaction code."""

    length: int = DEFAULT_TX_CODE_LENGTH
    input_mode: str = "numeric"
    description: str = "The code in the letter from your registry"

    def to_json(self) -> dict[str, Any]:
        return {"length": self.length, "input_mode": self.input_mode, "description": self.description}


@dataclass(frozen=True, slots=True)
class CredentialOffer:
    """A credential offer object (OpenID4VCI 1.0 section 4.1.1)."""

    credential_issuer: str
    configuration_ids: tuple[str, ...]
    pre_authorized_code: str
    tx_code: TxCodeSpec | None = None

    def to_json(self) -> dict[str, Any]:
        grant: dict[str, Any] = {"pre-authorized_code": self.pre_authorized_code}
        if self.tx_code is not None:
            grant["tx_code"] = self.tx_code.to_json()
        return {
            "credential_issuer": self.credential_issuer,
            "credential_configuration_ids": list(self.configuration_ids),
            "grants": {PRE_AUTHORIZED_GRANT: grant},
        }

    @classmethod
    def from_json(cls, obj: Any) -> CredentialOffer:
        """Parse an offer object from outside.

        Raises:
            MalformedError: not an offer with a pre-authorized code grant.
        """
        if not isinstance(obj, dict):
            raise MalformedError("credential offer is not a JSON object")
        issuer, ids, grants = (
            obj.get("credential_issuer"),
            obj.get("credential_configuration_ids"),
            obj.get("grants"),
        )
        if not isinstance(issuer, str) or urlsplit(issuer).scheme != "https":
            raise MalformedError("credential offer names no https credential_issuer")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise MalformedError("credential offer names no credential_configuration_ids")
        grant = grants.get(PRE_AUTHORIZED_GRANT) if isinstance(grants, dict) else None
        if not isinstance(grant, dict) or not isinstance(grant.get("pre-authorized_code"), str):
            raise MalformedError("credential offer has no pre-authorized code grant")
        tx = grant.get("tx_code")
        spec = None
        if isinstance(tx, dict):
            length = tx.get("length")
            spec = TxCodeSpec(
                length if type(length) is int else 0,
                str(tx.get("input_mode", "numeric")),
                str(tx.get("description", ""))[:300],
            )
        return cls(issuer, tuple(ids), grant["pre-authorized_code"], spec)

    def uri(self) -> str:
        """The offer by value: ``openid-credential-offer://?credential_offer=...``."""
        text = json.dumps(self.to_json(), separators=(",", ":"))
        return f"{OFFER_SCHEME}://?credential_offer={quote(text, safe='')}"


def offer_reference_uri(offer_url: str) -> str:
    """The offer by reference: ``openid-credential-offer://?credential_offer_uri=...``."""
    return f"{OFFER_SCHEME}://?credential_offer_uri={quote(offer_url, safe='')}"


def parse_offer_uri(uri: str) -> CredentialOffer | str:
    """The offer an offer URI carries, or the https URL it refers to.

    Raises:
        MalformedError: not an ``openid-credential-offer`` URI with exactly one of
            ``credential_offer`` and ``credential_offer_uri``.
    """
    if not isinstance(uri, str) or len(uri) > MAX_OFFER_URI:
        raise MalformedError("offer URI is missing or too long")
    parts = urlsplit(uri.strip())
    if parts.scheme not in (OFFER_SCHEME, "https"):
        raise MalformedError(f"not a {OFFER_SCHEME}:// URI")
    query = parse_qs(parts.query, strict_parsing=False)
    by_value, by_reference = query.get("credential_offer"), query.get("credential_offer_uri")
    if (by_value is None) == (by_reference is None):
        raise MalformedError("offer URI must carry exactly one of credential_offer, credential_offer_uri")
    if by_reference is not None:
        if len(by_reference) != 1 or urlsplit(by_reference[0]).scheme != "https":
            raise MalformedError("credential_offer_uri must be one https URL")
        return by_reference[0]
    assert by_value is not None
    if len(by_value) != 1:
        raise MalformedError("credential_offer given twice")
    return CredentialOffer.from_json(parse_json_object(by_value[0], what="credential offer"))


@dataclass(frozen=True, slots=True)
class OfferRecord:
    """What an issuance store keeps of an offer: digests, never the codes themselves.

    Attributes:
        offer_id: :func:`offer_id_for` the secret of the by-reference URL (not the secret).
        code_digest: :func:`code_digest` of the pre-authorized code.
        tx_code_digest: :func:`tx_code_digest` of the transaction code, or None if none is asked.
        configuration_id: the credential configuration offered.
        subject: what the backend issues for (an assessment id): opaque to the protocol.
        holder_thumbprint: the RFC 7638 thumbprint of the only holder key this offer may bind,
            when staff named one; None lets the wallet prove any key.
        expires_at: seconds since the epoch; the offer cannot be redeemed at or after it.
        tries_left: wrong transaction codes still allowed; at 0 the offer is burnt.
        tx_code_length: digits of the transaction code, None when none is asked.
    """

    offer_id: str
    code_digest: str
    tx_code_digest: str | None
    configuration_id: str
    subject: str
    holder_thumbprint: str | None
    expires_at: int
    tries_left: int
    tx_code_length: int | None

    def offer(self, credential_issuer: str, secret: str) -> CredentialOffer:
        """The offer document, rebuilt for a caller who presented the by-reference ``secret``."""
        spec = None if self.tx_code_length is None else TxCodeSpec(length=self.tx_code_length)
        return CredentialOffer(credential_issuer, (self.configuration_id,), code_for_reference(secret), spec)


@dataclass(frozen=True, slots=True)
class NewOffer:
    """A fresh offer: the record to store, the offer to hand out, the transaction code to send.

    ``secret`` goes in the by-reference URL (:meth:`reference_uri`); like the offer by value,
    it is handed to the person and kept nowhere.
    """

    record: OfferRecord
    offer: CredentialOffer
    tx_code: str | None
    secret: str

    def reference_url(self) -> str:
        """Where the offer is fetched by reference."""
        return f"{self.offer.credential_issuer.rstrip('/')}/openid4vci/offers/{self.secret}"

    def reference_uri(self) -> str:
        """The offer by reference: ``openid-credential-offer://?credential_offer_uri=...``."""
        return offer_reference_uri(self.reference_url())


def new_offer(
    *,
    credential_issuer: str,
    configuration_id: str,
    subject: str,
    now: int,
    ttl: int = DEFAULT_OFFER_TTL,
    tx_code_length: int | None = DEFAULT_TX_CODE_LENGTH,
    tx_code_tries: int = DEFAULT_TX_CODE_TRIES,
    holder_thumbprint: str | None = None,
    random_bytes: RandomBytes = secrets.token_bytes,
) -> NewOffer:
    """Make an offer with a fresh pre-authorized code (and a numeric transaction code).

    Raises:
        MalformedError: a non-positive lifetime, transaction code length or number of tries.
    """
    if ttl <= 0 or tx_code_tries <= 0 or (tx_code_length is not None and not 4 <= tx_code_length <= 12):
        raise MalformedError("offer lifetime and tries must be positive, tx code 4 to 12 digits")
    secret = b64url_encode(random_bytes(32))
    code = code_for_reference(secret)
    tx_code = None
    spec = None
    if tx_code_length is not None:
        digits = int.from_bytes(random_bytes(8), "big") % (10**tx_code_length)
        tx_code = str(digits).zfill(tx_code_length)
        spec = TxCodeSpec(length=tx_code_length)
    offer = CredentialOffer(credential_issuer, (configuration_id,), code, spec)
    record = OfferRecord(
        offer_id=offer_id_for(secret),
        code_digest=code_digest(code),
        tx_code_digest=None if tx_code is None else tx_code_digest(code, tx_code),
        configuration_id=configuration_id,
        subject=subject,
        holder_thumbprint=holder_thumbprint,
        expires_at=now + ttl,
        tries_left=tx_code_tries,
        tx_code_length=tx_code_length,
    )
    return NewOffer(record, offer, tx_code, secret)


class Redemption(enum.Enum):
    """What a store answers when asked to redeem a pre-authorized code."""

    REDEEMED = "redeemed"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    ALREADY_REDEEMED = "already_redeemed"
    WRONG_TX_CODE = "wrong_tx_code"
    TX_CODE_REQUIRED = "tx_code_required"
    """The offer asks for a transaction code and none was given (no try is spent)."""
    BURNT = "burnt"
    """Too many wrong transaction codes: the offer can no longer be redeemed."""
