"""The checks of a credential against its issuer's trust bundle, and of a key binding: one list each.

Every path that verifies a credential takes its checks from here, in this
order: the node's fast path (:func:`~clearance.verify.verify_presentation`,
which runs them as cheap predicates and the signatures last), its explaining
path (which names the first failure), and ``clearance inspect``. A check
added here is made by all three; a property test holds the first two to
refusing exactly the same inputs with the same reason.

Each check is a predicate (:attr:`Check.holds`, what the fast path runs) and
the sentence that explains a failure (:attr:`Check.explain`, run only when
it failed), under one :class:`~clearance.errors.Reason`. A check that needs
the issuer's bundle is skipped only where none was given (``inspect`` with a
bare JWK Set, which says so in its verdict); on a node a bundle is always
there.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from clearance.errors import Reason, VerificationError

if TYPE_CHECKING:  # only for annotations: the SD-JWT layer imports this module
    from clearance.bundle import IssuingKey, TrustBundle
    from clearance.credentials import CredentialClaims
    from clearance.credentialtypes import CredentialKind

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Check(Generic[S]):
    """One check over a subject ``S``: a predicate, and the words for when it fails."""

    name: str
    reason: Reason
    holds: Callable[[S], bool]
    explain: Callable[[S], str]


def first_refusal(checks: tuple[Check[S], ...], subject: S) -> VerificationError | None:
    """The refusal of the first check in ``checks`` that ``subject`` fails; None when all hold."""
    for check in checks:
        if not check.holds(subject):
            return VerificationError(check.reason, check.explain(subject))
    return None


def all_hold(checks: tuple[Check[S], ...], subject: S) -> bool:
    """Whether ``subject`` passes every check (the fast path: no words are made)."""
    for check in checks:  # noqa: SIM110 - a plain loop: no generator on the hot path
        if not check.holds(subject):
            return False
    return True


# -- a credential against its issuer's bundle -------------------------------------------


@dataclass(frozen=True, slots=True)
class CredentialCase:
    """A credential whose issuer signature is known good (or checked after), and what it is held to."""

    claims: CredentialClaims
    now: int
    leeway: int
    expected_vct: CredentialKind | None
    """The type required (a node accepts personnel credentials); None accepts any (``inspect``)."""
    bundle: TrustBundle | None
    issuing: IssuingKey | None
    """The bundle's key that signed it; None exactly when ``bundle`` is."""
    say_when: bool = False
    """Name ``now`` in validity refusals (``inspect``, which checks at a time the user chose)."""

    def at(self) -> str:
        return f" at {self.now}" if self.say_when else ""


def _bundle(case: CredentialCase) -> TrustBundle:
    assert case.bundle is not None
    return case.bundle


def _unknown_categories(case: CredentialCase) -> list[str]:
    known = _bundle(case).categories
    return sorted(c for c in set(case.claims.clearance.categories) if c not in known)


def _needs_bundle(holds: Callable[[CredentialCase], bool]) -> Callable[[CredentialCase], bool]:
    return lambda case: case.bundle is None or holds(case)


CREDENTIAL_CHECKS: tuple[Check[CredentialCase], ...] = (
    Check(
        "type",
        Reason.WRONG_TYPE,
        lambda c: c.expected_vct is None or c.claims.kind == c.expected_vct,
        lambda c: f"expected a {c.expected_vct} credential",
    ),
    Check(
        "issuer",
        Reason.UNTRUSTED_ISSUER,
        _needs_bundle(lambda c: c.claims.issuer == _bundle(c).issuer),
        lambda c: f"credential iss {c.claims.issuer[:80]!r} is not {_bundle(c).issuer!r}",
    ),
    Check(
        "key window",
        Reason.KEY_NOT_VALID_AT_ISSUANCE,
        lambda c: c.issuing is None or c.issuing.covers(c.claims.issued_at),
        lambda c: f"issuing key {c.issuing.key.thumbprint if c.issuing else ''} was not valid at iat",
    ),
    Check(
        "not before",
        Reason.NOT_YET_VALID,
        lambda c: c.now + c.leeway >= c.claims.not_before,
        lambda c: f"credential is not yet valid{c.at()}",
    ),
    Check(
        "expiry",
        Reason.EXPIRED,
        lambda c: c.now < c.claims.expires_at,
        lambda c: f"credential has expired{c.at()}",
    ),
    Check(
        "jurisdiction",
        Reason.INVALID_CLAIM,
        _needs_bundle(lambda c: c.claims.clearance.jurisdiction == _bundle(c).jurisdiction),
        lambda c: f"{_bundle(c).jurisdiction} may not clear for {c.claims.clearance.jurisdiction}",
    ),
    Check(
        "level",
        Reason.INVALID_CLAIM,
        _needs_bundle(lambda c: c.claims.clearance.level in _bundle(c).levels),
        lambda c: f"{c.claims.clearance.level!r} is not a clearance level of {_bundle(c).jurisdiction}",
    ),
    Check(
        "categories",
        Reason.INVALID_CLAIM,
        _needs_bundle(lambda c: all(x in _bundle(c).categories for x in c.claims.clearance.categories)),
        lambda c: f"categories unknown to {_bundle(c).jurisdiction}: {_unknown_categories(c)}",
    ),
)
"""What a credential must satisfy besides its signature and disclosures, in the order refusals are named."""


def check_credential(case: CredentialCase) -> None:
    """Run :data:`CREDENTIAL_CHECKS` in order.

    Raises:
        VerificationError: for the first check that fails.
    """
    refusal = first_refusal(CREDENTIAL_CHECKS, case)
    if refusal is not None:
        raise refusal


# -- a key-binding JWT's claims ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyBindingCase:
    """The claims of a key-binding JWT, the hash of what it must cover, and what it is held to."""

    claims: dict[str, Any]
    expected_sd_hash: str
    audience: str
    now: int | None = None
    """Check that ``iat`` is recent at this time; None skips it (``inspect``, which cannot know)."""
    leeway: int = 0
    max_age: int = 0


def _is_recent(case: KeyBindingCase) -> bool:
    iat = case.claims.get("iat")
    return case.now is None or (type(iat) is int and case.now - case.max_age <= iat <= case.now + case.leeway)


def _covers(case: KeyBindingCase) -> bool:
    hashed = case.claims.get("sd_hash")
    # compare_digest refuses non-ASCII text with a TypeError; such a hash cannot match anyway.
    return (
        isinstance(hashed, str) and hashed.isascii() and secrets.compare_digest(hashed, case.expected_sd_hash)
    )


KEY_BINDING_CHECKS: tuple[Check[KeyBindingCase], ...] = (
    Check(
        "claims",
        Reason.KEY_BINDING_INVALID,
        lambda k: (
            type(k.claims.get("iat")) is int
            and isinstance(k.claims.get("nonce"), str)
            and isinstance(k.claims.get("sd_hash"), str)
        ),
        lambda k: "key-binding JWT lacks iat, nonce or sd_hash",
    ),
    Check(
        "audience",
        Reason.AUDIENCE_MISMATCH,
        lambda k: k.claims.get("aud") == k.audience,
        lambda k: "key-binding JWT is for another audience",
    ),
    Check(
        "sd_hash",
        Reason.SD_HASH_MISMATCH,
        _covers,
        lambda k: "key-binding JWT does not cover these disclosures",
    ),
    Check(
        "recent",
        Reason.KEY_BINDING_INVALID,
        _is_recent,
        lambda k: "key-binding JWT is not recent",
    ),
)
"""What a key-binding JWT's claims must satisfy (its ``typ`` and signature are checked with the JWS)."""
