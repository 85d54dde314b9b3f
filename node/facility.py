"""The organization's facility credential as this node holds it, and other organizations' as it checks them.

At enrollment the registry issues the organization a facility credential
whose ``cnf`` is this node's key. The node uses it two ways:

* **to prove who it is** to another node: it presents the credential with
  its key, bound to the other node's nonce and audience
  (:meth:`FacilityIdentity.present`);
* **as the recipient** when the organization's own systems ask whether an
  item may be shared with one of its people: it presents the credential to
  itself (its own nonce, its own audience) and verifies that presentation
  exactly like anybody else's, so a revoked, suspended, expired or stale
  facility credential denies its own organization too.

Checking another organization's facility presentation is
:func:`~clearance.verify.verify_presentation` with ``expected_vct`` set to the
facility type. :func:`recheck` re-runs the parts of that check that can
change over time (expiry, issuing key, status) for a session opened earlier.
"""

from __future__ import annotations

from collections.abc import Callable

from clearance.credentials import FACILITY_VCT
from clearance.errors import Reason, VerificationError, WorkflowError
from clearance.keys import SigningKey
from clearance.sdjwt import present
from clearance.statuslist import Status
from clearance.trust import TrustStore
from clearance.verify import NonceStore, StalenessPolicy, VerifiedPresentation, verify_presentation
from node.clock import Clock


class FacilityIdentity:
    """This node's key and its organization's facility credential (if it has one)."""

    def __init__(
        self,
        *,
        key: SigningKey,
        credential: str | None,
        audience: str,
        trust: Callable[[], TrustStore],
        nonces: NonceStore,
        policy: StalenessPolicy,
        clock: Clock,
    ) -> None:
        self.key = key
        self.credential = credential or None
        self.audience = audience
        self._trust = trust
        self._nonces = nonces
        self._policy = policy
        self._clock = clock

    def issue_nonce(self) -> str:
        """A nonce of ours, for a peer to bind its facility presentation to."""
        return self._nonces.issue(self._clock())

    def present(self, *, audience: str, nonce: str) -> str:
        """Our facility presentation for ``audience``'s ``nonce``.

        Raises:
            WorkflowError: the organization holds no facility credential.
        """
        if self.credential is None:
            raise WorkflowError(
                "this node holds no facility credential; import one with: clearance node facility-import"
            )
        return present(self.credential, self.key, audience=audience, nonce=nonce, issued_at=self._clock())

    def verify_peer(
        self,
        presentation: str,
        *,
        trust: TrustStore | None = None,
        nonces: NonceStore | None = None,
        status_max_age: int | None = None,
    ) -> VerifiedPresentation:
        """Verify another organization's facility presentation bound to one of our nonces.

        Args:
            presentation: the facility presentation (SD-JWT+KB).
            trust: the snapshot to judge it against (a decision passes the one it rests
                on); the current one when None.
            nonces: the store its nonce came from; this identity's (the local one) when None.
            status_max_age: the oldest status list acceptable, in seconds.

        Raises:
            VerificationError: any check failed.
        """
        return verify_presentation(
            presentation,
            trust=self._trust() if trust is None else trust,
            audience=self.audience,
            nonces=self._nonces if nonces is None else nonces,
            now=self._clock(),
            policy=self._policy,
            status_max_age=status_max_age,
            expected_vct=FACILITY_VCT,
        )

    def verify_own(
        self, *, trust: TrustStore | None = None, status_max_age: int | None = None
    ) -> VerifiedPresentation:
        """Our own facility credential, checked as a presentation to ourselves (against ``trust``).

        Raises:
            VerificationError: none held (``missing_claim``), or it fails a check.
        """
        if self.credential is None:
            raise VerificationError(
                Reason.MISSING_CLAIM, "this node's organization holds no facility credential"
            )
        nonce = self._nonces.issue(self._clock())
        return self.verify_peer(
            self.present(audience=self.audience, nonce=nonce), trust=trust, status_max_age=status_max_age
        )


def recheck(trust: TrustStore, facility: VerifiedPresentation, now: int, max_age: int) -> None:
    """Check again, at ``now``, what may have changed since ``facility`` was verified.

    Raises:
        VerificationError: the issuer is no longer trusted or its key is gone, the
            credential expired, its status list is stale, or it was revoked or suspended.
    """
    credential = facility.credential
    bundle = trust.bundle_for_issuer(credential.issuer, now)
    bundle.issuing_key(facility.issuing_kid)
    if now >= credential.expires_at:
        raise VerificationError(Reason.EXPIRED, "facility credential has expired")
    status_list = trust.status_list(credential.status.uri)
    problem = status_list.freshness_problem(now, max_age)
    if problem is not None:
        raise problem
    status = status_list.status_of(credential.status.idx)
    if status == Status.REVOKED:
        raise VerificationError(Reason.REVOKED, "facility credential has been revoked")
    if status == Status.SUSPENDED:
        raise VerificationError(Reason.SUSPENDED, "facility credential is suspended")
    if status != Status.VALID:
        raise VerificationError(Reason.STATUS_UNKNOWN, f"facility credential has unknown status {status}")
