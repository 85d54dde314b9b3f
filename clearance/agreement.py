"""Mutual-recognition agreements between two registries.

One payload, signed by both roots (JWS general JSON serialization, each
signature's protected header ``typ: clearance-agreement+jws``). The payload::

    {"schema": 1, "id": str, "iat": int, "nbf": int, "exp": int,
     "parties": [{"jurisdiction": "JP", "root": JWK, "issuer": str},
                 {"jurisdiction": "US", "root": JWK, "issuer": str}],
     "levels": [{"JP": "CONFIDENTIAL", "US": "CONFIDENTIAL"}, ...],
     "categories": {"JP": [...], "US": [...]}}

``levels`` is a one-to-one equivalence table: a level with no row is not
recognized, and no level may appear in two rows. ``categories[X]`` lists the
categories of information that party X opens to the other party's cleared
people. Each party names its root by its public JWK (``kid`` = RFC 7638
thumbprint), so the document verifies on its own. A proposal carries one
signature; it is in force only with both, between ``nbf`` and ``exp``.

A :class:`ThresholdAgreement` (``schema: 2``) is the same agreement between
registries whose roots are k-of-n root documents (:mod:`clearance.rootdoc`):
each party names its root document, and each side is signed by ``k`` keys of
its own set.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clearance.bundle import TrustBundle
from clearance.credentials import check_jurisdiction, check_token
from clearance.encoding import b64url_encode, canonical_json
from clearance.errors import InvalidArgumentError, MalformedError, Reason, VerificationError
from clearance.jws import MultiSignedJWS, add_signature, decode_general, sign_general
from clearance.keys import PublicKey, Signer
from clearance.rootdoc import MAX_SIGNATURES, RootDocument, verify_threshold

AGREEMENT_TYP = "clearance-agreement+jws"
SCHEMA = 1


@dataclass(frozen=True, slots=True)
class Party:
    jurisdiction: str
    root: PublicKey
    issuer: str

    def to_json(self) -> dict[str, Any]:
        return {"jurisdiction": self.jurisdiction, "root": self.root.jwk, "issuer": self.issuer}


@dataclass(frozen=True, slots=True)
class Agreement:
    """A decoded agreement. Whether it is signed and in force is checked separately."""

    id: str
    issued_at: int
    not_before: int
    expires_at: int
    parties: tuple[Party, Party]
    levels: tuple[tuple[str, str], ...]
    """Rows of the equivalence table, each ``(level of parties[0], level of parties[1])``."""
    categories: dict[str, tuple[str, ...]]
    document: MultiSignedJWS

    # -- construction --------------------------------------------------------

    @classmethod
    def propose(
        cls,
        key: Signer,
        *,
        agreement_id: str,
        parties: tuple[Party, Party],
        levels: list[tuple[str, str]],
        categories: Mapping[str, list[str]],
        issued_at: int,
        not_before: int,
        expires_at: int,
    ) -> Agreement:
        """Create an agreement signed by ``key``, the proposing party's root.

        Raises:
            MalformedError: an invalid table, parties or window; or ``key`` is not a party's root.
        """
        a, b = parties
        payload = {
            "schema": SCHEMA,
            "id": agreement_id,
            "iat": issued_at,
            "nbf": not_before,
            "exp": expires_at,
            "parties": [a.to_json(), b.to_json()],
            "levels": [{a.jurisdiction: x, b.jurisdiction: y} for x, y in levels],
            "categories": {j: list(c) for j, c in categories.items()},
        }
        cls._from_payload(payload, sign_general(payload, []))  # validate before signing
        if key.kid not in (a.root.thumbprint, b.root.thumbprint):
            raise MalformedError("the proposing key is not the root of either party")
        return cls._from_payload(payload, sign_general(payload, [(key, {"typ": AGREEMENT_TYP})]))

    def countersign(self, key: Signer) -> Agreement:
        """Add the other party's root signature.

        Raises:
            MalformedError: ``key`` is not the root of either party.
        """
        if key.kid not in (p.root.thumbprint for p in self.parties):
            raise MalformedError("the countersigning key is not the root of either party")
        return self._from_payload(
            self.document.payload, add_signature(self.document, key, {"typ": AGREEMENT_TYP})
        )

    # -- parsing -------------------------------------------------------------

    @classmethod
    def parse(cls, obj: Any) -> Agreement:
        """Decode an agreement without verifying signatures.

        Raises:
            MalformedError: wrong shape; a level mapped to two; a signature by a non-party.
            VerificationError: forbidden algorithm or wrong ``typ``.
        """
        doc = decode_general(obj, what="agreement", typ=AGREEMENT_TYP, max_signatures=2)
        return cls._from_payload(doc.payload, doc)

    @classmethod
    def _from_payload(cls, p: Mapping[str, Any], doc: MultiSignedJWS) -> Agreement:
        if p.get("schema") != SCHEMA:
            raise MalformedError("unsupported agreement schema")
        agreement_id = check_token(p.get("id"), what="agreement id")
        iat, nbf, exp = p.get("iat"), p.get("nbf"), p.get("exp")
        if type(iat) is not int or type(nbf) is not int or type(exp) is not int:
            raise MalformedError("agreement iat, nbf and exp must be integers")
        if exp <= nbf:
            raise MalformedError("agreement validity ends before it starts")
        raw_parties = p.get("parties")
        if not isinstance(raw_parties, list) or len(raw_parties) != 2:
            raise MalformedError("an agreement has exactly two parties")
        parties: list[Party] = []
        for entry in raw_parties:
            if not isinstance(entry, Mapping) or not all(
                isinstance(entry.get(k), str) for k in ("jurisdiction", "issuer")
            ):
                raise MalformedError("an agreement party needs jurisdiction, root and issuer")
            parties.append(
                Party(
                    check_jurisdiction(entry["jurisdiction"]),
                    PublicKey.from_jwk(entry.get("root")),
                    entry["issuer"],
                )
            )
        a, b = parties
        if a.jurisdiction == b.jurisdiction or a.root == b.root:
            raise MalformedError("an agreement's parties must be two different registries")
        table, categories = _parse_terms(p, a.jurisdiction, b.jurisdiction)
        roots = {a.root.thumbprint, b.root.thumbprint}
        if any(s.kid not in roots for s in doc.signatures):
            raise MalformedError("an agreement carries a signature by a key that is not a party's root")
        return cls(agreement_id, iat, nbf, exp, (a, b), table, categories, doc)

    def to_json(self) -> dict[str, Any]:
        return self.document.to_json()

    # -- checks --------------------------------------------------------------

    def party(self, jurisdiction: str) -> Party:
        for party in self.parties:
            if party.jurisdiction == jurisdiction:
                return party
        raise VerificationError(
            Reason.AGREEMENT_INVALID, f"agreement {self.id} does not include {jurisdiction}"
        )

    def counterpart(self, jurisdiction: str) -> Party:
        """The party that is not ``jurisdiction``."""
        self.party(jurisdiction)
        return self.parties[1] if self.parties[0].jurisdiction == jurisdiction else self.parties[0]

    def is_signed_by(self, jurisdiction: str) -> bool:
        """Whether a signature by ``jurisdiction``'s root is present (not yet verified)."""
        kid = self.party(jurisdiction).root.thumbprint
        return any(s.kid == kid for s in self.document.signatures)

    def verify_signatures(self) -> None:
        """Check that both parties' roots signed this payload.

        Raises:
            VerificationError: a signature is missing or does not verify (``agreement_invalid``).
        """
        for party in self.parties:
            try:
                self.document.signed_by(party.root, what="agreement")
            except VerificationError as exc:
                raise VerificationError(
                    Reason.AGREEMENT_INVALID,
                    f"agreement {self.id} is not signed by {party.jurisdiction}'s root: " + exc.detail,
                ) from exc

    def verify(self, now: int) -> None:
        """Check both signatures and that the agreement is in force at ``now``.

        Raises:
            VerificationError: ``agreement_invalid``.
        """
        self.verify_signatures()
        self.check_in_force(now)

    def check_in_force(self, now: int) -> None:
        """Raises ``agreement_invalid`` unless ``nbf <= now < exp``."""
        if now < self.not_before:
            raise VerificationError(Reason.AGREEMENT_INVALID, f"agreement {self.id} is not yet in force")
        if now >= self.expires_at:
            raise VerificationError(Reason.AGREEMENT_INVALID, f"agreement {self.id} has ended")

    def map_level(self, foreign: str, level: str, home: str) -> str | None:
        """The ``home`` level equivalent to ``foreign``'s ``level``, or None when not recognized."""
        return _map_level(self.parties, self.levels, foreign, level, home)


def _map_level(
    parties: tuple[Party, Party] | tuple[ThresholdParty, ThresholdParty],
    levels: tuple[tuple[str, str], ...],
    foreign: str,
    level: str,
    home: str,
) -> str | None:
    f_side = 0 if parties[0].jurisdiction == foreign else 1
    h_side = 1 - f_side
    if parties[h_side].jurisdiction != home:
        return None
    for row in levels:
        if row[f_side] == level:
            return row[h_side]
    return None


def _parse_terms(
    p: Mapping[str, Any], a: str, b: str
) -> tuple[tuple[tuple[str, str], ...], dict[str, tuple[str, ...]]]:
    """The level-equivalence table and the categories of parties ``a`` and ``b``.

    Raises:
        MalformedError: a missing table, a row not mapping one level of each party,
            a level mapped twice, or categories not listed per party.
    """
    rows = p.get("levels")
    if not isinstance(rows, list) or not rows:
        raise MalformedError("an agreement needs a level-equivalence table")
    table: list[tuple[str, str]] = []
    for row in rows:
        if not isinstance(row, Mapping) or set(row) != {a, b}:
            raise MalformedError("each level row maps one level of each party")
        table.append((check_token(row[a], what="level"), check_token(row[b], what="level")))
    for side, jurisdiction in ((0, a), (1, b)):
        names = [row[side] for row in table]
        if len(set(names)) != len(names):
            raise MalformedError(f"the level table maps a level of {jurisdiction} to two levels")
    raw_categories = p.get("categories")
    if not isinstance(raw_categories, Mapping) or set(raw_categories) != {a, b}:
        raise MalformedError("agreement categories must list each party's categories")
    categories: dict[str, tuple[str, ...]] = {}
    for jurisdiction, values in raw_categories.items():
        if not isinstance(values, list):
            raise MalformedError("agreement categories must be arrays")
        categories[jurisdiction] = tuple(check_token(v, what="category") for v in values)
    return tuple(table), categories


# -- threshold agreements (k-of-n roots) ---------------------------------------

THRESHOLD_SCHEMA = 2


@dataclass(frozen=True, slots=True)
class ThresholdParty:
    """A party whose root is a k-of-n root document (named by its full payload)."""

    jurisdiction: str
    root: RootDocument
    issuer: str

    def to_json(self) -> dict[str, Any]:
        return {"jurisdiction": self.jurisdiction, "root": self.root.to_payload(), "issuer": self.issuer}


@dataclass(frozen=True, slots=True)
class ThresholdAgreement:
    """An agreement whose sides are each signed by ``k`` keys of their own root set.

    Payload ``schema: 2``: as :class:`Agreement`, but each party names its root
    by the root document's payload (so the document verifies on its own and its
    fingerprint is known), and signatures by either party's keys sit side by
    side in one general JWS. Today's verifiers refuse it (unknown schema).
    """

    id: str
    issued_at: int
    not_before: int
    expires_at: int
    parties: tuple[ThresholdParty, ThresholdParty]
    levels: tuple[tuple[str, str], ...]
    categories: dict[str, tuple[str, ...]]
    document: MultiSignedJWS

    @classmethod
    def draft(
        cls,
        *,
        agreement_id: str,
        parties: tuple[ThresholdParty, ThresholdParty],
        levels: list[tuple[str, str]],
        categories: Mapping[str, list[str]],
        issued_at: int,
        not_before: int,
        expires_at: int,
    ) -> ThresholdAgreement:
        """An unsigned agreement: what both sides' signing requests carry.

        Raises:
            MalformedError: an invalid table, parties or window.
        """
        a, b = parties
        payload = {
            "schema": THRESHOLD_SCHEMA,
            "id": agreement_id,
            "iat": issued_at,
            "nbf": not_before,
            "exp": expires_at,
            "parties": [a.to_json(), b.to_json()],
            "levels": [{a.jurisdiction: x, b.jurisdiction: y} for x, y in levels],
            "categories": {j: list(c) for j, c in categories.items()},
        }
        return cls._from_payload(payload, MultiSignedJWS(payload, b64url_encode(canonical_json(payload)), ()))

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ThresholdAgreement:
        """An unsigned agreement from its payload (what a signing request carries).

        Raises:
            MalformedError: as :meth:`parse`.
        """
        doc = MultiSignedJWS(dict(payload), b64url_encode(canonical_json(payload)), ())
        return cls._from_payload(payload, doc)

    def sign(self, signers: Sequence[Signer]) -> ThresholdAgreement:
        """Add signatures (where the keys are at hand; otherwise see :mod:`clearance.ceremony`).

        Raises:
            MalformedError: a signer is not a key of either party's root set.
        """
        doc = self.document
        for signer in signers:
            doc = add_signature(doc, signer, {"typ": AGREEMENT_TYP})
        return self._from_payload(self.document.payload, doc)

    def with_signatures(self, other: MultiSignedJWS) -> ThresholdAgreement:
        """Merge the signatures of ``other`` (the counterpart's side) into this agreement.

        Raises:
            MalformedError: ``other`` signs another payload, or a key signed both copies.
        """
        if other.payload_b64 != self.document.payload_b64:
            raise MalformedError("the counterpart signed another agreement payload")
        mine = {s.kid for s in self.document.signatures}
        if any(s.kid in mine for s in other.signatures):
            raise MalformedError("a key signed both copies of the agreement")
        merged = MultiSignedJWS(
            self.document.payload, self.document.payload_b64, (*self.document.signatures, *other.signatures)
        )
        return self._from_payload(self.document.payload, merged)

    @classmethod
    def parse(cls, obj: Any) -> ThresholdAgreement:
        """Decode without verifying signatures.

        Raises:
            MalformedError: wrong shape; a level mapped twice; a signature by a key of neither party.
            VerificationError: a forbidden algorithm or a wrong ``typ``.
        """
        doc = decode_general(obj, what="agreement", typ=AGREEMENT_TYP, max_signatures=MAX_SIGNATURES)
        return cls._from_payload(doc.payload, doc)

    @classmethod
    def _from_payload(cls, p: Mapping[str, Any], doc: MultiSignedJWS) -> ThresholdAgreement:
        if p.get("schema") != THRESHOLD_SCHEMA:
            raise MalformedError("unsupported threshold agreement schema")
        agreement_id = check_token(p.get("id"), what="agreement id")
        iat, nbf, exp = p.get("iat"), p.get("nbf"), p.get("exp")
        if type(iat) is not int or type(nbf) is not int or type(exp) is not int:
            raise MalformedError("agreement iat, nbf and exp must be integers")
        if exp <= nbf:
            raise MalformedError("agreement validity ends before it starts")
        raw_parties = p.get("parties")
        if not isinstance(raw_parties, list) or len(raw_parties) != 2:
            raise MalformedError("an agreement has exactly two parties")
        parties: list[ThresholdParty] = []
        for entry in raw_parties:
            if not isinstance(entry, Mapping) or not all(
                isinstance(entry.get(k), str) for k in ("jurisdiction", "issuer")
            ):
                raise MalformedError("an agreement party needs jurisdiction, root and issuer")
            root = RootDocument.from_payload(entry.get("root"))  # type: ignore[arg-type]  # checked there
            if root.jurisdiction != entry["jurisdiction"]:
                raise MalformedError("an agreement party's root document is for another jurisdiction")
            parties.append(ThresholdParty(root.jurisdiction, root, entry["issuer"]))
        a, b = parties
        a_kids = {k.thumbprint for k in a.root.keys}
        b_kids = {k.thumbprint for k in b.root.keys}
        if a.jurisdiction == b.jurisdiction or a_kids & b_kids:
            raise MalformedError("an agreement's parties must be two registries with separate keys")
        table, categories = _parse_terms(p, a.jurisdiction, b.jurisdiction)
        if any(s.kid not in a_kids | b_kids for s in doc.signatures):
            raise MalformedError("an agreement carries a signature by a key of neither party")
        return cls(agreement_id, iat, nbf, exp, (a, b), table, categories, doc)

    def to_json(self) -> dict[str, Any]:
        return self.document.to_json()

    def party(self, jurisdiction: str) -> ThresholdParty:
        """The party ``jurisdiction``.

        Raises:
            VerificationError: not a party (``agreement_invalid``).
        """
        for party in self.parties:
            if party.jurisdiction == jurisdiction:
                return party
        raise VerificationError(
            Reason.AGREEMENT_INVALID, f"agreement {self.id} does not include {jurisdiction}"
        )

    def counterpart(self, jurisdiction: str) -> ThresholdParty:
        """The party that is not ``jurisdiction``.

        Raises:
            VerificationError: ``jurisdiction`` is not a party (``agreement_invalid``).
        """
        self.party(jurisdiction)
        return self.parties[1] if self.parties[0].jurisdiction == jurisdiction else self.parties[0]

    def verify_side(self, jurisdiction: str) -> frozenset[str]:
        """Check that ``k`` keys of ``jurisdiction``'s root set signed; return their thumbprints.

        Raises:
            VerificationError: ``threshold_not_met``, or not a party (``agreement_invalid``).
        """
        party = self.party(jurisdiction)
        return verify_threshold(
            self.document, party.root, typ=AGREEMENT_TYP, what=f"agreement {self.id} ({jurisdiction}'s side)"
        )

    def verify(self, now: int) -> None:
        """Check both sides' signatures and that the agreement is in force at ``now``.

        Raises:
            VerificationError: ``threshold_not_met`` for a side, ``agreement_invalid`` outside its window.
        """
        for party in self.parties:
            self.verify_side(party.jurisdiction)
        if now < self.not_before:
            raise VerificationError(Reason.AGREEMENT_INVALID, f"agreement {self.id} is not yet in force")
        if now >= self.expires_at:
            raise VerificationError(Reason.AGREEMENT_INVALID, f"agreement {self.id} has ended")

    def map_level(self, foreign: str, level: str, home: str) -> str | None:
        """The ``home`` level equivalent to ``foreign``'s ``level``, or None when not recognized."""
        return _map_level(self.parties, self.levels, foreign, level, home)


def propose_to_partner(
    root: Signer,
    *,
    ours: Party,
    our_levels: Sequence[str],
    partner_bundle: str,
    partner_fingerprint: str,
    levels: Sequence[tuple[str, str]],
    categories: Sequence[str],
    now: int,
    days: int,
    agreement_id: str | None = None,
) -> Agreement:
    """A proposal to the registry whose trust bundle is ``partner_bundle``, signed by our ``root``.

    The partner's bundle must be signed by the root whose fingerprint was
    given out of band; each ``(ours, theirs)`` pair of ``levels`` must name
    one of our levels and one of the partner's; both sides open
    ``categories`` to each other; the agreement is in force from ``now`` for
    ``days`` days. Its id defaults to ``OURS-THEIRS-YYYYMMDD``.

    Raises:
        VerificationError: the partner's bundle is not signed by that root (``root_mismatch``)
            or does not verify.
        InvalidArgumentError: a level neither side defines (field ``levels``), or terms
            an agreement cannot hold (field ``agreement``).
    """
    partner_root = TrustBundle.header_root(partner_bundle)
    if partner_root.thumbprint != partner_fingerprint:
        raise VerificationError(
            Reason.ROOT_MISMATCH,
            f"the partner's root is {partner_root.thumbprint}, not the fingerprint you were given",
        )
    partner = TrustBundle.verify(partner_bundle, partner_root)
    for mine, theirs in levels:
        if mine not in our_levels:
            raise InvalidArgumentError("levels", f"{mine} is not one of our levels {list(our_levels)}")
        if theirs not in partner.levels:
            raise InvalidArgumentError(
                "levels", f"{theirs} is not one of {partner.jurisdiction}'s levels {list(partner.levels)}"
            )
    day = time.strftime("%Y%m%d", time.gmtime(now))
    try:
        return Agreement.propose(
            root,
            agreement_id=agreement_id or f"{ours.jurisdiction}-{partner.jurisdiction}-{day}",
            parties=(ours, Party(partner.jurisdiction, partner_root, partner.issuer)),
            levels=list(levels),
            categories={ours.jurisdiction: list(categories), partner.jurisdiction: list(categories)},
            issued_at=now,
            not_before=now,
            expires_at=now + days * 86400,
        )
    except MalformedError as exc:
        raise InvalidArgumentError("agreement", exc.detail) from exc
