"""The node's decisions, as its APIs offer them: challenge, verify, authorize (logged).

:class:`Gatekeeper` is what both the local API and the peer API call. It
holds no trust logic of its own: verification is
:func:`~clearance.verify.verify_presentation` against the current snapshot of
the trust store (:class:`~node.state.TrustedState`), the sharing rule is
:func:`node.decisions.decide`, and every authorization, allowed or denied,
goes to the :class:`~node.decision_log.DecisionLog` before it is returned. The
node never calls the registry here: what it has not synced it does not trust.

Every decision reads the trust state **once** (:attr:`TrustedState.current
<node.state.TrustedState.current>`) and uses that snapshot throughout: the
recipient's facility credential, the person's credential and the sharing rule
are all judged against the same trust, so an update that lands meanwhile is
seen whole by the next decision, never half by this one.

Nonces come from two separate stores: :meth:`Gatekeeper.challenge` (the local
API, for the organization's own holders and systems) and
:meth:`Gatekeeper.peer_challenge` (the peer port, anyone who can reach it).
Each verification consumes from the store of the API it came through, so a
flood of peer challenges can never evict a nonce the organization issued.

For a sharing decision the status list must be fresh enough for the *item's*
level (the policy of its label), both for the presenter's credential and the
recipient organization's facility credential: how secret the information is,
not how cleared the person is, sets how much revocation lag is acceptable.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from clearance.errors import StorageError, VerificationError
from clearance.trust import TrustStore
from clearance.verify import (
    MemoryNonceStore,
    NonceStore,
    StalenessPolicy,
    VerifiedPresentation,
    verify_presentation,
    verify_presentations,
)
from clearance.visit import VisitAssurance, verify_visit_assurance
from node.clock import Clock
from node.decision_log import DecisionLog
from node.decisions import Decision, Label, decide
from node.facility import FacilityIdentity, recheck
from node.state import TrustedState

MAX_BATCH = 1000
"""Presentations one Verify call may carry."""
PEER_NONCE_TTL = 120
"""Seconds a peer challenge's nonce stays valid: peers are machines that answer at once."""
PEER_NONCES = 50_000
"""Unused peer nonces held at most (the oldest is forgotten first): about 10 MB."""


@dataclass(frozen=True)
class Challenge:
    nonce: str
    audience: str
    expires_at: int


@dataclass(frozen=True)
class RecipientRefused:
    """Why the recipient organization could not be established (``facility_*`` codes)."""

    code: str
    detail: str


@dataclass(frozen=True)
class VisitDecision:
    """The outcome of checking a visit assurance, and where it sits in the decision log."""

    allowed: bool
    code: str
    """``visit_allowed`` or the verification reason that refused it."""
    reasons: tuple[str, ...]
    sequence: int
    assurance: VisitAssurance | None = None
    visitor_jurisdiction: str = ""


@dataclass(frozen=True)
class LoggedDecision:
    """A decision and where it sits in the decision log."""

    decision: Decision
    sequence: int


class Gatekeeper:
    """Verifies presentations and decides on sharing, offline, logging every decision."""

    def __init__(
        self,
        state: TrustedState,
        *,
        audience: str,
        nonces: NonceStore,
        nonce_ttl: int,
        policy: StalenessPolicy,
        clock: Clock,
        facility: FacilityIdentity,
        decisions: DecisionLog,
        host: tuple[str, str] = ("", ""),
        verify_threads: int = 1,
        peer_nonces: NonceStore | None = None,
    ) -> None:
        self.state = state
        self.audience = audience
        self.nonces = nonces
        """The local API's nonces (the organization's own holders and systems)."""
        self.peer_nonces: NonceStore = (
            peer_nonces
            if peer_nonces is not None
            else MemoryNonceStore(ttl=min(nonce_ttl, PEER_NONCE_TTL), max_outstanding=PEER_NONCES)
        )
        """The peer port's nonces: a store of their own, so the peer port cannot evict ``nonces``."""
        self.nonce_ttl = nonce_ttl
        self.policy = policy
        self.clock = clock
        self.facility = facility
        self.decisions = decisions
        self.host = host
        """This organization as a visit host: (jurisdiction, organization id)."""
        self.verify_threads = verify_threads
        self._executor = (
            ThreadPoolExecutor(verify_threads, thread_name_prefix="verify") if verify_threads > 1 else None
        )

    def close(self) -> None:
        """Stop the verification threads (a call in progress finishes first)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def challenge(self) -> Challenge:
        """A single-use nonce from the local store, for a holder to bind a presentation to."""
        now = self.clock()
        return Challenge(self.nonces.issue(now), self.audience, now + self.nonce_ttl)

    def peer_challenge(self) -> Challenge:
        """A single-use nonce from the peer store, for a peer node (or a person it sends) to bind to."""
        now = self.clock()
        return Challenge(
            self.peer_nonces.issue(now), self.audience, now + min(self.nonce_ttl, PEER_NONCE_TTL)
        )

    def verify_many(self, presentations: Sequence[str]) -> list[VerifiedPresentation | VerificationError]:
        """Verify personnel presentations; each result is what it proved or why it was refused.

        Status lists must be fresh enough for each credential's own level. Checks 1 to 6
        of each run on the gatekeeper's verification threads, the batch cut into one slice
        per thread (see :func:`~clearance.verify.verify_presentations`).
        """
        return verify_presentations(
            presentations,
            trust=self.state.current,
            audience=self.audience,
            nonces=self.nonces,
            now=self.clock(),
            policy=self.policy,
            executor=self._executor,
            slices=self.verify_threads,
        )

    def _verify(
        self,
        presentation: str,
        trust: TrustStore,
        now: int,
        status_max_age: int | None = None,
        *,
        nonces: NonceStore | None = None,
    ) -> VerifiedPresentation:
        return verify_presentation(
            presentation,
            trust=trust,
            audience=self.audience,
            nonces=self.nonces if nonces is None else nonces,
            now=now,
            policy=self.policy,
            status_max_age=status_max_age,
        )

    def authorize(self, label: Label, presentation: str, facility_presentation: str = "") -> LoggedDecision:
        """Decide whether ``label``'s item may go to the presenter, and log it.

        ``facility_presentation`` is the recipient organization's facility
        presentation bound to one of our nonces; empty means the recipient is
        this node's own organization.

        Raises:
            StorageError: the decision could not be logged (so it is not given).
        """
        now = self.clock()
        trust = self.state.current  # the one snapshot this decision rests on
        max_age = self.policy.max_age(label.level)
        recipient: VerifiedPresentation | RecipientRefused
        try:
            if facility_presentation:
                recipient = self.facility.verify_peer(
                    facility_presentation, trust=trust, status_max_age=max_age
                )
            elif self.facility.credential is None:
                recipient = RecipientRefused(
                    "facility_missing", "this node's organization holds no facility credential"
                )
            else:
                recipient = self.facility.verify_own(trust=trust, status_max_age=max_age)
        except VerificationError as exc:
            recipient = RecipientRefused(f"facility_{exc.reason.value}", exc.detail)
        decision = self._decide(label, presentation, recipient, now, max_age, trust, self.nonces)
        return self._log(decision, now, channel="local")

    def authorize_for_peer(
        self, label: Label, presentation: str, recipient: VerifiedPresentation
    ) -> LoggedDecision:
        """Decide for a person of a peer organization whose facility was verified at session start.

        Raises:
            StorageError: the decision could not be logged.
        """
        now = self.clock()
        trust = self.state.current  # the one snapshot this decision rests on
        max_age = self.policy.max_age(label.level)
        current: VerifiedPresentation | RecipientRefused = recipient
        try:
            recheck(trust, recipient, now, max_age)
        except VerificationError as exc:
            current = RecipientRefused(f"facility_{exc.reason.value}", exc.detail)
        organization = recipient.credential.organization or {}
        decision = self._decide(label, presentation, current, now, max_age, trust, self.peer_nonces)
        return self._log(decision, now, channel=f"peer:{organization.get('id', '')}")

    def verify_visit(self, assurance: str, presentation: str) -> VisitDecision:
        """Check a visit assurance for this organization together with the visitor's presentation.

        The presentation must verify (bound to one of our nonces); the assurance
        must come from the visitor's own registry (home, or foreign through an
        agreement), name this organization as host, be inside its window, and
        name the same pseudonym and holder key. Logged like any decision.

        Raises:
            StorageError: the decision could not be logged (so it is not given).
        """
        now = self.clock()
        trust = self.state.current
        reasons: list[str]
        allowed, checked, jurisdiction = False, None, ""
        try:
            person = self._verify(presentation, trust, now)
            jurisdiction = person.issuer_jurisdiction
            bundle = trust.bundle_for_issuer(person.credential.issuer, now)
            checked = verify_visit_assurance(
                assurance,
                bundle,
                host_jurisdiction=self.host[0],
                host_organization=self.host[1],
                subject=person.credential.subject,
                holder_thumbprint=person.credential.holder_key.thumbprint,
                now=now,
            )
            allowed = True
            reasons = [
                *person.checks,
                f"visit assurance {checked.assurance_id} from {jurisdiction} for programme {checked.programme} "
                f"({checked.kind.value}), {checked.not_before} to {checked.expires_at}",
            ]
            code = "visit_allowed"
        except VerificationError as exc:
            code, reasons = exc.reason.value, [f"{exc.reason.value}: {exc.detail}"]
        record = {
            "kind": "visit",
            "allowed": allowed,
            "code": code,
            "reasons": reasons,
            "presenter_jurisdiction": jurisdiction,
            "assurance": checked.assurance_id if checked else "",
            "programme": checked.programme if checked else "",
            "node": self.audience,
        }
        try:
            sequence = self.decisions.append(at=now, allowed=allowed, code=code, record=record)
        except StorageError as exc:
            raise StorageError(f"decision not given: it could not be logged ({exc})") from exc
        return VisitDecision(allowed, code, tuple(reasons), sequence, checked, jurisdiction)

    def _decide(
        self,
        label: Label,
        presentation: str,
        recipient: VerifiedPresentation | RecipientRefused,
        now: int,
        max_age: int,
        trust: TrustStore,
        nonces: NonceStore,
    ) -> Decision:
        try:
            person = self._verify(presentation, trust, now, max_age, nonces=nonces)
        except VerificationError as exc:
            return Decision.deny(label, exc.reason.value, exc.detail)
        if isinstance(recipient, RecipientRefused):
            return Decision.deny(
                label,
                recipient.code,
                recipient.detail,
                presenter_jurisdiction=person.issuer_jurisdiction,
                subject=person.credential.subject,
                level=person.level,
            )
        return decide(trust, label, person, recipient, now)

    def _log(self, decision: Decision, now: int, *, channel: str) -> LoggedDecision:
        record = {**decision.to_record(), "channel": channel, "node": self.audience}
        try:
            sequence = self.decisions.append(
                at=now, allowed=decision.allowed, code=decision.code, record=record
            )
        except StorageError as exc:
            raise StorageError(f"decision not given: it could not be logged ({exc})") from exc
        return LoggedDecision(decision, sequence)
