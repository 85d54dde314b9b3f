"""Offline verification of a presentation: raise with a reason, or return what was proven.

:func:`verify_presentation` checks, using only a :class:`~clearance.trust.TrustStore`
and the time it is given:

1. the credential is a compact JWS with ``typ: dc+sd-jwt`` and an allowed algorithm;
2. its ``iss`` is a registry we trust (home, or foreign through an agreement)
   whose bundle has not expired (freeze);
3. it is signed by an issuing key of that registry (``kid``) whose window
   covers the credential's ``iat``; an ``x5c`` chain, when the header carries one (HAIP
   profile), certifies that key and reaches an issuer CA of the bundle;
4. the disclosures match the signed digests, once each;
5. ``nbf`` <= now < ``exp``; the clearance is in the issuer's own levels and categories;
6. the key-binding JWT is signed by ``cnf.jwk``, recent, for our ``aud``, covers
   exactly these disclosures (``sd_hash``) and carries a nonce we issued and
   that was never used (it is consumed here);
7. the status bit, read from a status list of the same registry that is no
   older than the policy allows for the level, is 0.

Any failure raises :class:`~clearance.errors.VerificationError`; nothing
returns ``False``.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from hashlib import sha256
from typing import Protocol

from clearance.bundle import IssuingKey, TrustBundle
from clearance.certificates import verify_x5c
from clearance.checks import (
    CREDENTIAL_CHECKS,
    KEY_BINDING_CHECKS,
    CredentialCase,
    KeyBindingCase,
    all_hold,
    check_credential,
)
from clearance.credentials import PERSONNEL_VCT, SD_JWT_VC_TYP, CredentialClaims
from clearance.credentialtypes import CredentialKind
from clearance.encoding import b64url_encode
from clearance.errors import MalformedError, Reason, VerificationError
from clearance.jws import (
    MAX_TOKEN_BYTES,
    decode_compact,
    try_decode_compact,
    verify_compact,
    verify_signature,
)
from clearance.sdjwt import (
    KB_TYP,
    MAX_DISCLOSURES,
    MAX_KB_BYTES,
    MAX_PRESENTATION_BYTES,
    KeyBinding,
    check_key_binding_signature,
    resolve_claims,
    split,
    verify_key_binding,
)
from clearance.statuslist import Status
from clearance.trust import TrustStore

DEFAULT_LEEWAY = 60
"""Seconds of clock skew tolerated for ``nbf`` and the key-binding ``iat`` (never for ``exp``)."""
DEFAULT_KB_MAX_AGE = 300
"""A key-binding JWT older than this is refused even with a fresh nonce."""


class StalenessPolicy:
    """Per level, the oldest status list a decision may rest on (seconds).

    A level the policy does not name gets the strictest age it knows: an
    unknown level must not be treated more loosely than a known one.
    """

    DEFAULTS: Mapping[str, int] = {
        "TOP_SECRET": 3600,
        "SECRET": 24 * 3600,
        "CONFIDENTIAL": 7 * 24 * 3600,
    }

    def __init__(self, max_age: Mapping[str, int] | None = None) -> None:
        ages = dict(self.DEFAULTS if max_age is None else max_age)
        if not ages or any(type(v) is not int or v <= 0 for v in ages.values()):
            raise MalformedError("staleness policy ages must be positive whole seconds")
        self._ages = ages
        self._strictest = min(ages.values())

    def max_age(self, level: str) -> int:
        return self._ages.get(level, self._strictest)

    def to_json(self) -> dict[str, int]:
        return dict(self._ages)


class NonceStore(Protocol):
    """Issues single-use challenges and refuses any nonce not issued, expired or reused."""

    def issue(self, now: int) -> str: ...

    def consume(self, nonce: str, now: int) -> None:
        """Use up ``nonce``.

        Raises:
            VerificationError: ``nonce_unknown``, ``nonce_expired`` or ``nonce_replayed``.
        """


class MemoryNonceStore:
    """An in-process :class:`NonceStore`; thread-safe; bounded in time and in size.

    Nonces are kept in the order they were issued (and used nonces in the order
    they were used), so expiry drops them from the front: each nonce is pruned
    once, whatever the load. At most ``max_outstanding`` unused nonces are held:
    past that, issuing one forgets the oldest, whose presentation will then be
    refused as unknown. A flood of challenges can therefore cost a verifier
    neither unbounded memory nor time, only the oldest open challenges; and a
    forgotten nonce is never accepted (fail closed).
    """

    def __init__(
        self,
        ttl: int = DEFAULT_KB_MAX_AGE,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        max_outstanding: int = 100_000,
    ) -> None:
        if ttl <= 0 or max_outstanding <= 0:
            raise MalformedError("nonce ttl and capacity must be positive")
        self._ttl = ttl
        self._random = random_bytes
        self._max = max_outstanding
        # OrderedDict, not dict: taking the oldest from a dict's front rescans the slots
        # deleted before it, an OrderedDict's is O(1).
        self._issued: OrderedDict[str, int] = OrderedDict()
        """Unused nonce -> expiry, oldest issued first."""
        self._used: OrderedDict[str, int] = OrderedDict()
        """Used nonce -> when it may be forgotten, oldest used first."""
        self._lock = threading.Lock()

    def issue(self, now: int) -> str:
        nonce = b64url_encode(self._random(16))
        with self._lock:
            self._prune(now)
            while len(self._issued) >= self._max:
                self._issued.popitem(last=False)
            self._issued[nonce] = now + self._ttl
        return nonce

    def consume(self, nonce: str, now: int) -> None:
        with self._lock:
            expiry = self._issued.pop(nonce, None)
            if expiry is None:
                if nonce in self._used:
                    raise VerificationError(Reason.NONCE_REPLAYED, "nonce was already used")
                raise VerificationError(Reason.NONCE_UNKNOWN, "nonce was not issued by this verifier")
            self._used[nonce] = max(expiry, now)
            while len(self._used) > self._max:
                self._used.popitem(last=False)
            if now >= expiry:
                raise VerificationError(Reason.NONCE_EXPIRED, "nonce has expired")

    def __len__(self) -> int:
        """Nonces held, unused and used."""
        with self._lock:
            return len(self._issued) + len(self._used)

    def _prune(self, now: int) -> None:
        # Issue times never go backwards by more than a clock step, so the front holds the
        # oldest; stop at the first live one (a stale one behind it goes on a later call).
        for table in (self._issued, self._used):
            while table:
                if next(iter(table.values())) > now:
                    break
                table.popitem(last=False)


@dataclass(frozen=True, slots=True)
class VerifiedPresentation:
    """What a presentation proved. Produced only by :func:`verify_presentation`."""

    credential: CredentialClaims
    issuer_jurisdiction: str
    issuing_kid: str
    key_binding: KeyBinding
    status_list_uri: str
    status_list_age: int
    status_max_age: int

    @property
    def checks(self) -> tuple[str, ...]:
        """The checks passed, in words (for decision logs)."""
        return (
            f"signed by {self.issuer_jurisdiction} issuing key {self.issuing_kid}",
            f"valid until {self.credential.expires_at}",
            f"holder key bound for {self.key_binding.audience}",
            f"status valid in {self.status_list_uri} "
            f"({self.status_list_age}s old, policy {self.status_max_age}s)",
        )

    @property
    def jurisdiction(self) -> str:
        return self.credential.clearance.jurisdiction

    @property
    def level(self) -> str:
        return self.credential.clearance.level

    @property
    def categories(self) -> tuple[str, ...]:
        return self.credential.clearance.categories

    @property
    def disclosed(self) -> dict[str, object]:
        return self.credential.disclosed


def verify_presentation(
    presentation: str,
    *,
    trust: TrustStore,
    audience: str,
    nonces: NonceStore,
    now: int,
    policy: StalenessPolicy,
    status_max_age: int | None = None,
    expected_vct: CredentialKind = PERSONNEL_VCT,
    leeway: int = DEFAULT_LEEWAY,
    kb_max_age: int = DEFAULT_KB_MAX_AGE,
) -> VerifiedPresentation:
    """Verify a presentation completely, offline.

    Args:
        presentation: ``<credential>~<disclosures>~<KB-JWT>``.
        trust: the verifier's trusted state.
        audience: this verifier's identifier; the KB-JWT ``aud`` must equal it.
        nonces: where our challenges live; the presented nonce is consumed.
        now: seconds since the epoch (injected).
        policy: status list staleness per level.
        status_max_age: overrides the policy (a sharing decision uses the item's level).
        expected_vct: the credential type we accept (personnel by default); its ``vct``
            must be that type's URL under the credential's issuer.
        leeway: tolerated clock skew for ``nbf`` and KB ``iat``.
        kb_max_age: oldest acceptable KB ``iat``.

    Raises:
        VerificationError: with a :class:`~clearance.errors.Reason` for the first failed check.
    """
    checked = _check(presentation, trust, audience, now, expected_vct, leeway, kb_max_age)
    return _conclude(
        checked, trust=trust, nonces=nonces, now=now, policy=policy, status_max_age=status_max_age
    )


def verify_presentations(
    presentations: Sequence[str],
    *,
    trust: TrustStore,
    audience: str,
    nonces: NonceStore,
    now: int,
    policy: StalenessPolicy,
    executor: Executor | None = None,
    slices: int = 1,
    expected_vct: CredentialKind = PERSONNEL_VCT,
) -> list[VerifiedPresentation | VerificationError]:
    """Verify a batch: for each presentation, what :func:`verify_presentation` returns or raises.

    The outcome is exactly that of calling :func:`verify_presentation` on each in turn
    (the same checks, nonces consumed in the batch's order, so of two presentations
    bound to one nonce the first wins). Given an ``executor`` and ``slices`` > 1 (its
    thread count), checks 1 to 6, the two signatures among them, run on its threads in
    that many contiguous slices of the batch:
    pyca/cryptography releases the GIL while it verifies a signature, so a verifier
    with several cores checks a batch on all of them. Nonces and status are then
    settled here, in order, on the calling thread.
    """

    def check_slice(start: int, stop: int) -> list[Checked | VerificationError]:
        checked: list[Checked | VerificationError] = []
        for presentation in presentations[start:stop]:
            try:
                checked.append(_check(presentation, trust, audience, now, expected_vct))
            except VerificationError as exc:
                checked.append(exc)
        return checked

    count = len(presentations)
    if executor is None or slices < 2 or count < 2 * _MIN_SLICE:
        checks = check_slice(0, count)
    else:
        size = max(_MIN_SLICE, -(-count // slices))
        futures = [executor.submit(check_slice, start, start + size) for start in range(0, count, size)]
        checks = [item for future in futures for item in future.result()]
    results: list[VerifiedPresentation | VerificationError] = []
    for checked in checks:
        if isinstance(checked, VerificationError):
            results.append(checked)
            continue
        try:
            results.append(_conclude(checked, trust=trust, nonces=nonces, now=now, policy=policy))
        except VerificationError as exc:
            results.append(exc)
    return results


_MIN_SLICE = 8
"""Fewer presentations than this per thread are not worth handing to another thread."""


def _check(
    presentation: str,
    trust: TrustStore,
    audience: str,
    now: int,
    expected_vct: CredentialKind,
    leeway: int = DEFAULT_LEEWAY,
    kb_max_age: int = DEFAULT_KB_MAX_AGE,
) -> Checked:
    """Checks 1 to 6 (all but the nonce and the status), which touch no shared state.

    Raises:
        VerificationError: for the first failed check.
    """
    checked = check_fast(presentation, trust, audience, now, expected_vct, leeway, kb_max_age)
    if checked is None:
        checked = check_in_order(presentation, trust, audience, now, expected_vct, leeway, kb_max_age)
    return checked


def _conclude(
    checked: Checked,
    *,
    trust: TrustStore,
    nonces: NonceStore,
    now: int,
    policy: StalenessPolicy,
    status_max_age: int | None = None,
) -> VerifiedPresentation:
    """Check 6's nonce (consumed) and check 7, the status, after checks 1 to 6 passed.

    Raises:
        VerificationError: the nonce is not ours or used, or the status is not valid or fresh.
    """
    credential, bundle, issuing, binding = checked
    nonces.consume(binding.nonce, now)

    status_ref = credential.status
    if bundle.status_list_location(status_ref.uri) is None:
        raise VerificationError(
            Reason.UNTRUSTED_ISSUER,
            f"status list {status_ref.uri[:80]!r} is not one of {bundle.jurisdiction}'s",
        )
    status_list = trust.status_list(status_ref.uri)
    # The list held for this URI must come from the issuer's own registry: another trusted
    # registry that lists the same URI must not decide (or undo) this issuer's revocations.
    for entry in bundle.issuing_keys:
        if entry.key.thumbprint == status_list.kid:
            break
    else:
        raise VerificationError(
            Reason.UNTRUSTED_ISSUER,
            f"status list {status_ref.uri[:80]!r} is not signed by an issuing key of {bundle.jurisdiction}",
        )
    max_age = policy.max_age(credential.clearance.level) if status_max_age is None else status_max_age
    problem = status_list.freshness_problem(now, max_age)
    if problem is not None:
        raise problem
    status = status_list.status_of(status_ref.idx)
    if status != Status.VALID:
        if status == Status.REVOKED:
            raise VerificationError(Reason.REVOKED, "credential has been revoked")
        if status == Status.SUSPENDED:
            raise VerificationError(Reason.SUSPENDED, "credential is suspended")
        raise VerificationError(Reason.STATUS_UNKNOWN, f"credential has unknown status {status}")

    return VerifiedPresentation(
        credential=credential,
        issuer_jurisdiction=bundle.jurisdiction,
        issuing_kid=issuing.key.thumbprint,
        key_binding=binding,
        status_list_uri=status_ref.uri,
        status_list_age=now - status_list.issued_at,
        status_max_age=max_age,
    )


Checked = tuple[CredentialClaims, TrustBundle, IssuingKey, KeyBinding]
"""What checks 1 to 6 establish (the nonce is consumed, and the status read, after them)."""


def check_in_order(
    presentation: str,
    trust: TrustStore,
    audience: str,
    now: int,
    expected_vct: CredentialKind,
    leeway: int,
    kb_max_age: int,
) -> Checked:
    """The explaining path: checks 1 to 6 one by one, in the order of the module docstring.

    Checks 5 and 6 are the lists of :mod:`clearance.checks`.

    Raises:
        VerificationError: for the first failed check.
    """
    parts = split(presentation)
    jws = decode_compact(parts.jwt, what="credential", typ=SD_JWT_VC_TYP)
    issuer = jws.payload.get("iss")
    if not isinstance(issuer, str):
        raise VerificationError(Reason.MISSING_CLAIM, "credential lacks iss")
    bundle = trust.bundle_for_issuer(issuer, now)
    issuing = bundle.issuing_key(jws.kid)
    verify_compact(jws, issuing.key, what="credential")
    if "x5c" in jws.header:
        verify_x5c(jws.header["x5c"], bundle.issuer_cas, issuing.key, now)
    resolved = resolve_claims(jws.payload, parts.disclosures, payload_json=jws.payload_json)
    credential = CredentialClaims.from_payload(resolved)
    check_credential(CredentialCase(credential, now, leeway, expected_vct, bundle, issuing))
    binding = verify_key_binding(
        parts, credential.holder_key, audience=audience, now=now, leeway=leeway, max_age=kb_max_age
    )
    return credential, bundle, issuing, binding


def check_fast(
    presentation: str,
    trust: TrustStore,
    audience: str,
    now: int,
    expected_vct: CredentialKind,
    leeway: int,
    kb_max_age: int,
) -> Checked | None:
    """The fast path: checks 1 to 6 with both signatures last; None to have :func:`check_in_order` make them.

    The checks are those of :func:`check_in_order`, made by the same functions where
    they are not the cost (issuer, disclosures, the lists of :mod:`clearance.checks`) and
    by leaner code where they are (splitting, decoding), and the two signatures come last, back
    to back. As that changes which check would fail first, this returns None whenever one
    fails, and the caller takes :func:`check_in_order`, which names the first failure in
    the documented order. Only a signature failure is raised here: every check that
    precedes a signature in that order has passed by then, so it is the error to raise.

    Raises:
        VerificationError: a signature, or its ``alg``, does not verify.
    """
    # 1, as sdjwt.split splits.
    if type(presentation) is not str or len(presentation) > MAX_PRESENTATION_BYTES:
        return None
    serialized = presentation.strip()
    first = serialized.find("~")
    cut = serialized.rfind("~")
    kb_token = serialized[cut + 1 :]
    disclosures = serialized[first + 1 : cut].split("~") if cut > first else []
    if (
        first < 0
        or not serialized.isascii()
        or not kb_token
        or len(disclosures) > MAX_DISCLOSURES
        or "" in disclosures
    ):
        return None
    decoded = try_decode_compact(serialized[:first], SD_JWT_VC_TYP, MAX_TOKEN_BYTES)
    if decoded is None:
        return None
    alg, kid, payload, payload_json, signing_input, signature, x5c = decoded
    # 2, 3 (but the signature), 4 and 5.
    issuer = payload.get("iss")
    if type(issuer) is not str:
        return None
    try:
        bundle = trust.bundle_for_issuer(issuer, now)
        issuing = bundle.issuing_key(kid)
        claims = resolve_claims(payload, disclosures, payload_json=payload_json)
        credential = CredentialClaims.from_payload(claims)
    except VerificationError:
        return None
    if not all_hold(
        CREDENTIAL_CHECKS, CredentialCase(credential, now, leeway, expected_vct, bundle, issuing)
    ):
        return None
    # 6 but the signature, as sdjwt.verify_key_binding checks it.
    decoded = try_decode_compact(kb_token, KB_TYP, MAX_KB_BYTES)
    if decoded is None:
        return None
    kb_alg, _, kb_claims, _, kb_signing_input, kb_signature, _ = decoded
    covered = b64url_encode(sha256(serialized[: cut + 1].encode()).digest())
    if not all_hold(
        KEY_BINDING_CHECKS, KeyBindingCase(kb_claims, covered, audience, now, leeway, kb_max_age)
    ):
        return None
    # The signatures of 3 and 6.
    verify_signature(alg, signing_input, signature, issuing.key, what="credential")
    if x5c is not None:
        verify_x5c(x5c, bundle.issuer_cas, issuing.key, now)
    check_key_binding_signature(kb_alg, kb_signing_input, kb_signature, credential.holder_key)
    return credential, bundle, issuing, KeyBinding(kb_claims["iat"], kb_claims["aud"], kb_claims["nonce"])
