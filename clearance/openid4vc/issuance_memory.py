"""An in-process :class:`~clearance.openid4vc.issuance.IssuanceBackend`: one lock, bounded tables.

The reference for what a store must do atomically (the registry implements the same in its
database), and what the tests and the loopback demo run. Issuance itself is a callable given
at construction.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass

from clearance.errors import ConflictError
from clearance.keys import PublicKey
from clearance.openid4vc.issuance import Grant, IssuanceEvent
from clearance.openid4vc.offers import OfferRecord, Redemption

IssueFunction = Callable[[Grant, PublicKey, int], str]
"""Issues the grant's credential to the key at a time; returns the SD-JWT."""


@dataclass
class _Offer:
    record: OfferRecord
    redeemed: bool = False


@dataclass
class _Token:
    grant: Grant
    used: bool = False


class MemoryIssuanceBackend:
    """Offers, access tokens and used nonces in memory, behind one lock.

    Used nonces are kept until they expire; at most ``max_nonces`` are held, and beyond that
    a new one is refused (never forgotten early: forgetting would let a proof be replayed).
    """

    def __init__(self, issue: IssueFunction, *, max_nonces: int = 100_000) -> None:
        self._issue = issue
        self._lock = threading.Lock()
        self._offers: dict[str, _Offer] = {}
        self._by_id: dict[str, str] = {}
        self._tokens: dict[str, _Token] = {}
        self._by_offer: dict[str, _Token] = {}
        self._nonces: dict[str, int] = {}
        self._max_nonces = max_nonces
        self.events: list[IssuanceEvent] = []

    def add_offer(self, record: OfferRecord) -> None:
        """Store a new offer.

        Raises:
            ConflictError: an offer with this code or id exists.
        """
        with self._lock:
            if record.code_digest in self._offers or record.offer_id in self._by_id:
                raise ConflictError("an offer with this code exists")
            self._offers[record.code_digest] = _Offer(record)
            self._by_id[record.offer_id] = record.code_digest

    def redeem(
        self, code_digest: str, tx_code_digest: str | None, token_digest: str, token_expires_at: int, now: int
    ) -> tuple[Redemption, str | None]:
        with self._lock:
            offer = self._offers.get(code_digest)
            if offer is None:
                return Redemption.UNKNOWN, None
            record = offer.record
            if offer.redeemed:
                return Redemption.ALREADY_REDEEMED, record.offer_id
            if now >= record.expires_at:
                return Redemption.EXPIRED, record.offer_id
            if record.tries_left <= 0:
                return Redemption.BURNT, record.offer_id
            if record.tx_code_digest is not None:
                if tx_code_digest is None:
                    return Redemption.TX_CODE_REQUIRED, record.offer_id
                if tx_code_digest != record.tx_code_digest:
                    offer.record = dataclasses.replace(record, tries_left=record.tries_left - 1)
                    if offer.record.tries_left <= 0:
                        return Redemption.BURNT, record.offer_id
                    return Redemption.WRONG_TX_CODE, record.offer_id
            offer.redeemed = True
            token = _Token(
                Grant(
                    record.offer_id,
                    record.configuration_id,
                    record.subject,
                    record.holder_thumbprint,
                    token_expires_at,
                )
            )
            self._tokens[token_digest] = self._by_offer[record.offer_id] = token
            return Redemption.REDEEMED, record.offer_id

    def live_offer(self, offer_id: str, now: int) -> OfferRecord | None:
        with self._lock:
            digest = self._by_id.get(offer_id)
            offer = self._offers.get(digest) if digest is not None else None
            if (
                offer is None
                or offer.redeemed
                or now >= offer.record.expires_at
                or offer.record.tries_left <= 0
            ):
                return None
            return offer.record

    def grant(self, token_digest: str, now: int) -> Grant | None:
        with self._lock:
            token = self._tokens.get(token_digest)
            if token is None or token.used or now >= token.grant.expires_at:
                return None
            return token.grant

    def use_nonce(self, nonce_id: str, expires_at: int, now: int) -> bool:
        with self._lock:
            for stale in [n for n, until in self._nonces.items() if until <= now]:
                del self._nonces[stale]
            if nonce_id in self._nonces or len(self._nonces) >= self._max_nonces:
                return False
            self._nonces[nonce_id] = expires_at
            return True

    def issue(self, grant: Grant, holder: PublicKey, now: int) -> str:
        with self._lock:
            token = self._by_offer.get(grant.offer_id)
            if token is None or token.used:
                raise ConflictError("this grant was already used")
            token.used = True
        try:
            return self._issue(grant, holder, now)
        except BaseException:
            with self._lock:
                token.used = False  # nothing was issued: the grant stays usable
            raise

    def audit(self, event: IssuanceEvent) -> None:
        with self._lock:
            self.events.append(event)
