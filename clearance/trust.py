"""The trusted state of a verifier: pure logic, no I/O, time passed in.

Like python-tuf's trusted metadata set, :class:`TrustStore` starts from one
pinned root and accepts new material only when it chains to what it already
trusts:

* the home **trust bundle** must be signed by the pinned root, be newer than
  (or identical to) the one held, and not be expired;
* a **root rotation** must be signed by the current and the new root;
* a **foreign bundle** is accepted only through an agreement that the home
  bundle lists, that both roots signed, that is in force, and that the
  foreign bundle lists too (so either side can end it);
* a **status list token** must be signed by an issuing key of the bundle that
  lists its URI, and be no older than the one held.

Every refusal raises :class:`~clearance.errors.VerificationError` and leaves
the store exactly as it was.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from clearance.agreement import Agreement
from clearance.bundle import RootRotation, TrustBundle
from clearance.certificates import verify_x5c
from clearance.errors import MalformedError, Reason, VerificationError
from clearance.jws import verify_compact
from clearance.keys import PublicKey
from clearance.statusdelta import parse_status_delta
from clearance.statuslist import StatusListToken, parse_status_list_token


@dataclass(frozen=True, slots=True)
class ForeignTrust:
    """A foreign registry trusted through an agreement."""

    bundle: TrustBundle
    root: PublicKey
    agreement: Agreement


@dataclass(slots=True)
class TrustStore:
    """What a verifier trusts right now. Mutated only through the ``update_*`` methods."""

    root: PublicKey
    home: TrustBundle | None = None
    foreign: dict[str, ForeignTrust] = field(default_factory=dict)
    status_lists: dict[str, StatusListToken] = field(default_factory=dict)
    agreements: dict[str, Agreement] = field(default_factory=dict)
    """Agreements of the home bundle, by counterpart jurisdiction (all signatures checked)."""
    previous_roots: list[PublicKey] = field(default_factory=list)
    """Roots rotated away from; agreements they signed stay valid until they end."""

    # -- home bundle and root ------------------------------------------------

    def update_bundle(self, token: str, now: int) -> TrustBundle:
        """Accept a new home trust bundle.

        Raises:
            VerificationError: not signed by the pinned root (``root_mismatch``),
                older than the one held (``rollback``), expired (``bundle_expired``),
                or listing an agreement that is not signed by both roots.
            MalformedError: the token cannot be parsed.
        """
        bundle = TrustBundle.verify(token, self.root)
        if self.home is not None and bundle.jurisdiction != self.home.jurisdiction:
            raise VerificationError(Reason.ROOT_MISMATCH, "bundle is for another jurisdiction")
        _check_not_older(self.home, bundle, "trust bundle")
        if bundle.expires_at <= now:
            raise VerificationError(Reason.BUNDLE_EXPIRED, f"trust bundle v{bundle.version} has expired")
        agreements = _home_agreements(bundle, [self.root, *self.previous_roots])
        self.home = bundle
        self.agreements = agreements
        # Foreign trust and status lists that the new bundle no longer supports go.
        self.foreign = {
            j: f
            for j, f in self.foreign.items()
            if j in agreements and agreements[j].document.payload_b64 == f.agreement.document.payload_b64
        }
        self.status_lists = {
            uri: token for uri, token in self.status_lists.items() if self._list_still_trusted(token)
        }
        return bundle

    def update_root(self, rotation: RootRotation) -> PublicKey:
        """Follow a root rotation endorsed by the current root.

        The bundle signed by the old root is kept until a bundle signed by the
        new root arrives; foreign trust is kept (agreements are re-checked then).

        Raises:
            VerificationError: the rotation is not signed by both roots (``rotation_invalid``).
        """
        new_root = rotation.verify_from(self.root)
        if self.home is not None and rotation.jurisdiction != self.home.jurisdiction:
            raise VerificationError(Reason.ROTATION_INVALID, "root rotation is for another jurisdiction")
        self.previous_roots.append(self.root)
        self.root = new_root
        return new_root

    def require_home(self, now: int) -> TrustBundle:
        """The home bundle, if it may still be relied on at ``now``.

        Raises:
            VerificationError: none held (``no_trusted_bundle``) or expired (``bundle_expired``).
        """
        if self.home is None:
            raise VerificationError(Reason.NO_TRUSTED_BUNDLE, "no trust bundle has been synced yet")
        if self.home.expires_at <= now:
            raise VerificationError(
                Reason.BUNDLE_EXPIRED,
                f"trust bundle v{self.home.version} expired; refusing to decide until renewed",
            )
        return self.home

    # -- foreign registries --------------------------------------------------

    def update_foreign_bundle(self, token: str, now: int) -> TrustBundle:
        """Accept a partner registry's bundle, through an agreement the home root signed.

        Raises:
            VerificationError: no agreement names this root (``untrusted_issuer``), the
                agreement is not in force or not listed by the foreign bundle
                (``agreement_invalid``), a rollback or an expired bundle.
        """
        self.require_home(now)
        claimed_root = TrustBundle.header_root(token)
        agreement = next(
            (
                a
                for a in self.agreements.values()
                if a.counterpart(self._home_jurisdiction()).root == claimed_root
            ),
            None,
        )
        if agreement is None:
            raise VerificationError(
                Reason.UNTRUSTED_ISSUER,
                "bundle is signed by a root that no agreement in force names",
            )
        agreement.check_in_force(now)
        bundle = TrustBundle.verify(token, claimed_root)
        party = agreement.counterpart(self._home_jurisdiction())
        if bundle.jurisdiction != party.jurisdiction or bundle.issuer != party.issuer:
            raise VerificationError(
                Reason.AGREEMENT_INVALID, "foreign bundle does not match the agreement's party"
            )
        if not any(_same_agreement(agreement, a) for a in bundle.agreements):
            raise VerificationError(
                Reason.AGREEMENT_TERMINATED,
                f"{bundle.jurisdiction} no longer lists agreement {agreement.id} (terminated)",
            )
        held = self.foreign.get(bundle.jurisdiction)
        _check_not_older(held.bundle if held else None, bundle, f"{bundle.jurisdiction} trust bundle")
        if bundle.expires_at <= now:
            raise VerificationError(Reason.BUNDLE_EXPIRED, f"{bundle.jurisdiction} trust bundle has expired")
        self.foreign[bundle.jurisdiction] = ForeignTrust(bundle, claimed_root, agreement)
        self.status_lists = {uri: t for uri, t in self.status_lists.items() if self._list_still_trusted(t)}
        return bundle

    def foreign_trust(self, jurisdiction: str, now: int) -> ForeignTrust:
        """The foreign registry ``jurisdiction``, if still trusted at ``now``.

        Raises:
            VerificationError: not trusted (``untrusted_issuer``), agreement ended or
                bundle expired.
        """
        self.require_home(now)
        trust = self.foreign.get(jurisdiction)
        if trust is None or jurisdiction not in self.agreements:
            raise VerificationError(Reason.UNTRUSTED_ISSUER, f"no agreement in force with {jurisdiction}")
        trust.agreement.check_in_force(now)
        if trust.bundle.expires_at <= now:
            raise VerificationError(
                Reason.BUNDLE_EXPIRED, f"{jurisdiction} trust bundle expired; refusing to decide"
            )
        return trust

    def bundle_for_issuer(self, issuer: str, now: int) -> TrustBundle:
        """The bundle (home or foreign) of the registry ``issuer``.

        Raises:
            VerificationError: an issuer we do not trust, or one whose bundle expired.
        """
        home = self.require_home(now)
        if issuer == home.issuer:
            return home
        for jurisdiction, trust in self.foreign.items():
            if trust.bundle.issuer == issuer:
                return self.foreign_trust(jurisdiction, now).bundle
        raise VerificationError(Reason.UNTRUSTED_ISSUER, f"issuer {issuer[:80]!r} is not trusted")

    # -- status lists --------------------------------------------------------

    def update_status_list(self, token: str, now: int) -> StatusListToken:
        """Accept a status list token signed by an issuing key of the registry that lists it.

        Raises:
            VerificationError: unknown list (``untrusted_issuer``), unknown or wrong key,
                bad signature, an ``x5c`` chain that does not hold (``chain_untrusted``, ...),
                expired, or older than the one held (``rollback``).
            MalformedError: the token or list cannot be parsed.
        """
        parsed = parse_status_list_token(token)
        bundle = self._bundle_listing(parsed.uri)
        if bundle is None:
            raise VerificationError(
                Reason.UNTRUSTED_ISSUER,
                f"status list {parsed.uri[:80]!r} is not in any trusted bundle",
            )
        issuing = bundle.issuing_key(parsed.kid)
        verify_compact(parsed.jws, issuing.key, what="status list token")
        if "x5c" in parsed.jws.header:
            verify_x5c(parsed.jws.header["x5c"], bundle.issuer_cas, issuing.key, now)
        location = bundle.status_list_location(parsed.uri)
        assert location is not None
        if parsed.status_list.bits != location.bits:
            raise MalformedError("status list has other bits than its bundle announces")
        held = self.status_lists.get(parsed.uri)
        if held is not None:
            if (parsed.issued_at, parsed.seq) < (held.issued_at, held.seq):
                raise VerificationError(
                    Reason.ROLLBACK, f"status list {parsed.uri} is older than the one held"
                )
            if (parsed.issued_at, parsed.seq) == (held.issued_at, held.seq):
                if parsed.jws.raw != held.jws.raw:
                    raise VerificationError(
                        Reason.ROLLBACK,
                        f"two different status lists claim the same version of {parsed.uri}",
                    )
                return held
        if parsed.expires_at is not None and parsed.expires_at <= now:
            raise VerificationError(Reason.STATUS_LIST_EXPIRED, f"status list {parsed.uri} has expired")
        self.status_lists[parsed.uri] = parsed
        return parsed

    def apply_status_delta(self, token: str, now: int) -> StatusListToken:
        """Apply a signed delta on top of the held list it names.

        Raises:
            VerificationError: no list held, or not the one the delta builds on
                (``status_list_missing``, ask for the full list), an already applied or
                older delta (``rollback``), bad signature or key, expired delta.
            MalformedError: the delta cannot be parsed or names an index outside the list.
        """
        delta = parse_status_delta(token)
        bundle = self._bundle_listing(delta.uri)
        if bundle is None:
            raise VerificationError(
                Reason.UNTRUSTED_ISSUER,
                f"status list {delta.uri[:80]!r} is not in any trusted bundle",
            )
        verify_compact(delta.jws, bundle.issuing_key(delta.kid).key, what="status delta")
        held = self.status_lists.get(delta.uri)
        if held is None:
            raise VerificationError(
                Reason.STATUS_LIST_MISSING, f"no status list held for {delta.uri}; fetch it in full"
            )
        if delta.seq <= held.seq:
            raise VerificationError(Reason.ROLLBACK, f"status delta {delta.seq} is not newer than {held.seq}")
        if delta.base_seq != held.seq:
            raise VerificationError(
                Reason.STATUS_LIST_MISSING,
                f"status delta builds on {delta.base_seq} but {held.seq} is held; fetch the full list",
            )
        if delta.issued_at < held.issued_at:
            raise VerificationError(Reason.ROLLBACK, "status delta is older than the list it updates")
        if delta.expires_at <= now:
            raise VerificationError(Reason.STATUS_LIST_EXPIRED, f"status delta for {delta.uri} has expired")
        updated = held.status_list.copy()
        for index, status in delta.updates:
            if index >= updated.size:
                raise MalformedError(f"status delta index {index} is outside the list")
            updated.set(index, status)
        new = dataclasses.replace(
            held,
            issued_at=delta.issued_at,
            expires_at=delta.expires_at,
            seq=delta.seq,
            status_list=updated,
            deltas=(*held.deltas, token),
        )
        self.status_lists[delta.uri] = new
        return new

    def status_list(self, uri: str) -> StatusListToken:
        """The held status list for ``uri``.

        Raises:
            VerificationError: none held (``status_list_missing``): fail closed.
        """
        token = self.status_lists.get(uri)
        if token is None:
            raise VerificationError(
                Reason.STATUS_LIST_MISSING, f"no status list held for {uri[:80]!r}; cannot decide"
            )
        return token

    # -- internals -----------------------------------------------------------

    def _home_jurisdiction(self) -> str:
        assert self.home is not None
        return self.home.jurisdiction

    def _bundle_listing(self, uri: str) -> TrustBundle | None:
        bundles = [self.home] if self.home else []
        bundles += [f.bundle for f in self.foreign.values()]
        for bundle in bundles:
            if bundle is not None and bundle.status_list_location(uri) is not None:
                return bundle
        return None

    def _list_still_trusted(self, token: StatusListToken) -> bool:
        bundle = self._bundle_listing(token.uri)
        if bundle is None:
            return False
        try:
            bundle.issuing_key(token.kid)
        except VerificationError:
            return False
        return True


def _check_not_older(held: TrustBundle | None, new: TrustBundle, what: str) -> None:
    if held is None:
        return
    if new.version < held.version:
        raise VerificationError(
            Reason.ROLLBACK, f"{what} v{new.version} is older than the v{held.version} held"
        )
    if new.version == held.version and new.raw != held.raw:
        raise VerificationError(Reason.ROLLBACK, f"two different {what}s claim version {new.version}")


def _home_agreements(bundle: TrustBundle, roots: list[PublicKey]) -> dict[str, Agreement]:
    """Parse and check every agreement the home bundle lists, keyed by counterpart."""
    out: dict[str, Agreement] = {}
    for raw in bundle.agreements:
        try:
            agreement = Agreement.parse(raw)
        except MalformedError as exc:
            raise VerificationError(
                Reason.AGREEMENT_INVALID, f"bundle lists a bad agreement: {exc.detail}"
            ) from exc
        if agreement.party(bundle.jurisdiction).root not in roots:
            raise VerificationError(
                Reason.AGREEMENT_INVALID, f"agreement {agreement.id} does not name our root"
            )
        agreement.verify_signatures()
        counterpart = agreement.counterpart(bundle.jurisdiction).jurisdiction
        if counterpart in out:
            raise VerificationError(
                Reason.AGREEMENT_INVALID, f"bundle lists two agreements with {counterpart}"
            )
        out[counterpart] = agreement
    return out


def _same_agreement(agreement: Agreement, raw: object) -> bool:
    try:
        other = Agreement.parse(raw)
    except (MalformedError, VerificationError):
        return False
    return other.document.payload_b64 == agreement.document.payload_b64
