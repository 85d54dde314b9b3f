"""The sharing decision: may this labelled item go to this presenter? A pure function.

:func:`decide` takes the trust store, the item's :class:`Label`, the
presenter's *verified* personnel presentation, the recipient organization's
*verified* facility presentation, and the time; it returns a
:class:`Decision` with every reason. It reads nothing else and writes
nothing (the caller logs it). Verification itself (signatures, nonce, status
freshness for the item's level) happens before, in :mod:`node.gatekeeper`; a
presentation that fails it is denied with the verification's reason.

Rules, all of which must hold to allow (every failed one is reported):

1. **The label is ours to judge.** The item's jurisdiction ``L`` is the home
   registry or a partner trusted through an agreement in force; ``level`` and
   ``category`` are ones ``L``'s bundle defines.
2. **Releasable.** The presenter's jurisdiction ``P`` (the registry that
   cleared them) is ``L`` itself or is named in ``releasable_to``.
3. **Level, through an agreement when foreign.** If ``P == L`` the presented
   level is ranked in ``L``'s ordered levels. Otherwise the agreement between
   ``P`` and ``L`` (one the home root signed: ``P`` or ``L`` must be home)
   maps it with :meth:`~clearance.agreement.Agreement.map_level`, row for
   row, never upward: a level with no row is not recognized and is denied.
   The (mapped) level must rank at or above the item's.
4. **Category.** The item's category is among the presented clearance's
   categories; when ``P != L`` it must also be one that ``L`` opens to the
   other party in the agreement (``categories[L]``). Category names are
   compared as they are written: agreements map levels, not categories.
5. **Recipient organization.** A facility credential of the organization
   that receives the item was verified (bound to a nonce of this node, not
   revoked or suspended, fresh enough for the item's level). It must be
   issued by the *same registry* as the person's credential, and must itself
   meet the item's level and category by rules 3 and 4.
6. **Person ↔ organization.** A personnel credential does not name an
   organization visibly: ``employer`` is selectively disclosable. The
   presenter must disclose it, and it must equal the facility credential's
   ``organization.name`` exactly (the registry writes the organization's name
   in both). Without it the node cannot tell that the person works for the
   cleared recipient, and denies.

Reasons name the agreement id and the mapping used for a foreign presenter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clearance.agreement import Agreement
from clearance.bundle import TrustBundle
from clearance.credentials import check_jurisdiction, check_token
from clearance.errors import InvalidArgumentError, MalformedError, VerificationError
from clearance.trust import TrustStore
from clearance.verify import VerifiedPresentation

MAX_RELEASABLE = 64


@dataclass(frozen=True, slots=True)
class Label:
    """The label on an item of designated information."""

    jurisdiction: str
    level: str
    category: str
    releasable_to: tuple[str, ...]

    def __post_init__(self) -> None:
        try:
            check_jurisdiction(self.jurisdiction, what="label jurisdiction")
            check_token(self.level, what="label level")
            check_token(self.category, what="label category")
            if not isinstance(self.releasable_to, tuple) or len(self.releasable_to) > MAX_RELEASABLE:
                raise MalformedError(f"label releasable_to must list at most {MAX_RELEASABLE} jurisdictions")
            for code in self.releasable_to:
                check_jurisdiction(code, what="label releasable_to")
        except MalformedError as exc:
            raise InvalidArgumentError("label", exc.detail) from None

    @classmethod
    def from_json(cls, obj: Any) -> Label:
        """Parse ``{jurisdiction, level, category, releasable_to}``.

        Raises:
            InvalidArgumentError: a missing, extra or ill-typed member.
        """
        members = {"jurisdiction", "level", "category", "releasable_to"}
        if not isinstance(obj, Mapping) or set(obj) != members:
            raise InvalidArgumentError(
                "label", "must be an object with exactly jurisdiction, level, category, releasable_to"
            )
        releasable = obj["releasable_to"]
        if not isinstance(releasable, list):
            raise InvalidArgumentError("label", "releasable_to must be an array of jurisdiction codes")
        return cls(obj["jurisdiction"], obj["level"], obj["category"], tuple(releasable))

    def to_json(self) -> dict[str, Any]:
        return {
            "jurisdiction": self.jurisdiction,
            "level": self.level,
            "category": self.category,
            "releasable_to": list(self.releasable_to),
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason to deny: a stable ``code`` (what callers act on) and words for people."""

    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


@dataclass(frozen=True)
class Decision:
    """A sharing decision and why. ``code`` is ``allowed`` or the code of the first finding that denies."""

    allowed: bool
    code: str
    reasons: tuple[str, ...]
    label: Label
    presenter_jurisdiction: str = ""
    subject: str = ""
    level: str = ""
    agreement_id: str = ""
    mapped_level: str = ""
    recipient: str = ""
    """The recipient organization's id, from its facility credential."""
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def deny(cls, label: Label, code: str, detail: str, **facts: Any) -> Decision:
        return cls.refuse(label, [Finding(code, detail)], **facts)

    @classmethod
    def refuse(cls, label: Label, findings: list[Finding], **facts: Any) -> Decision:
        """A denial: its code is the first finding's, its reasons all of them (at least one)."""
        if not findings:
            raise ValueError("a denial needs at least one finding")
        return cls(False, findings[0].code, tuple(str(f) for f in findings), label, **facts)

    def to_record(self) -> dict[str, Any]:
        """What the decision log keeps: no personal data beyond the pseudonymous subject."""
        return {
            "allowed": self.allowed,
            "code": self.code,
            "reasons": list(self.reasons),
            "label": self.label.to_json(),
            "presenter_jurisdiction": self.presenter_jurisdiction,
            "subject": self.subject,
            "level": self.level,
            "agreement_id": self.agreement_id,
            "mapped_level": self.mapped_level,
            "recipient": self.recipient,
            **self.details,
        }


@dataclass(frozen=True)
class _Standing:
    """A clearance expressed in the item's jurisdiction, or why it cannot be."""

    rank: int | None
    level: str
    agreement: Agreement | None
    problems: tuple[Finding, ...]


def decide(
    trust: TrustStore,
    label: Label,
    person: VerifiedPresentation,
    recipient: VerifiedPresentation,
    now: int,
) -> Decision:
    """Decide whether ``label``'s item may be shared with ``person`` at ``recipient``.

    Args:
        trust: the node's trusted state (read only).
        label: the item's label.
        person: the presenter's verified personnel presentation.
        recipient: the receiving organization's verified facility presentation.
        now: seconds since the epoch.
    """
    presenter = person.issuer_jurisdiction
    facts: dict[str, Any] = {
        "presenter_jurisdiction": presenter,
        "subject": person.credential.subject,
        "level": person.level,
        "recipient": str((recipient.credential.organization or {}).get("id", "")),
    }
    try:
        item_bundle = _bundle_of(trust, label.jurisdiction, now)
        item_rank = item_bundle.level_rank(label.level)
    except VerificationError as exc:
        return Decision.deny(label, "label_untrusted", exc.detail, **facts)
    if label.category not in item_bundle.categories:
        return Decision.deny(
            label, "label_untrusted", f"{label.category!r} is not a category of {label.jurisdiction}", **facts
        )

    denied: list[Finding] = []
    allowed: list[str] = list(person.checks)
    releasable = {label.jurisdiction, *label.releasable_to}
    if presenter in releasable:
        allowed.append(f"releasable: the item may go to {presenter}-cleared people")
    else:
        denied.append(
            Finding(
                "not_releasable",
                f"the item is releasable to {sorted(releasable)}, not to {presenter}-cleared people",
            )
        )

    standing = _standing(trust, label, item_bundle, person, now)
    denied.extend(standing.problems)
    if standing.agreement is not None:
        facts["agreement_id"] = standing.agreement.id
        facts["mapped_level"] = standing.level
        allowed.append(
            f"agreement {standing.agreement.id} maps {presenter} {person.level} to "
            f"{label.jurisdiction} {standing.level}"
        )
    if standing.rank is not None:
        if standing.rank >= item_rank:
            allowed.append(f"level: {standing.level} meets {label.level}")
        else:
            denied.append(
                Finding("level_insufficient", f"{standing.level} is below the item's {label.level}")
            )
    if label.category in person.categories:
        allowed.append(f"category: cleared for {label.category}")
    else:
        denied.append(Finding("category_not_covered", f"the clearance does not cover {label.category}"))

    denied.extend(_recipient_problems(trust, label, item_bundle, item_rank, person, recipient, now))
    if not denied:
        organization = recipient.credential.organization or {}
        allowed.append(
            f"recipient: {organization.get('name', '')} ({organization.get('id', '')}) holds a valid "
            f"{recipient.level} facility credential and employs the presenter"
        )
        return Decision(True, "allowed", tuple(allowed), label, **facts)
    return Decision.refuse(label, denied, **facts)


def _bundle_of(trust: TrustStore, jurisdiction: str, now: int) -> TrustBundle:
    """The bundle of ``jurisdiction`` (home or a trusted partner).

    Raises:
        VerificationError: not trusted, agreement ended, or bundle expired.
    """
    home = trust.require_home(now)
    if jurisdiction == home.jurisdiction:
        return home
    return trust.foreign_trust(jurisdiction, now).bundle


def _standing(
    trust: TrustStore,
    label: Label,
    item_bundle: TrustBundle,
    clearance: VerifiedPresentation,
    now: int,
) -> _Standing:
    """``clearance``'s level in the item's jurisdiction (rule 3) and agreement category checks (rule 4)."""
    origin = clearance.issuer_jurisdiction
    if origin == label.jurisdiction:
        try:
            return _Standing(item_bundle.level_rank(clearance.level), clearance.level, None, ())
        except VerificationError as exc:
            return _Standing(None, clearance.level, None, (Finding("level_not_recognized", exc.detail),))
    home = trust.require_home(now).jurisdiction
    if home not in (origin, label.jurisdiction):
        return _Standing(
            None,
            "",
            None,
            (
                Finding(
                    "no_agreement", f"this node holds no agreement between {origin} and {label.jurisdiction}"
                ),
            ),
        )
    partner = label.jurisdiction if origin == home else origin
    try:
        agreement = trust.foreign_trust(partner, now).agreement
    except VerificationError as exc:
        return _Standing(None, "", None, (Finding("no_agreement", exc.detail),))
    problems: list[Finding] = []
    if label.category not in agreement.categories.get(label.jurisdiction, ()):
        problems.append(
            Finding(
                "category_not_in_agreement",
                f"agreement {agreement.id} does not open {label.jurisdiction} {label.category} "
                f"information to {origin}",
            )
        )
    mapped = agreement.map_level(origin, clearance.level, label.jurisdiction)
    if mapped is None:
        problems.append(
            Finding(
                "level_not_recognized",
                f"agreement {agreement.id} maps no {label.jurisdiction} level to {origin} {clearance.level}",
            )
        )
        return _Standing(None, "", agreement, tuple(problems))
    try:
        rank = item_bundle.level_rank(mapped)
    except VerificationError as exc:
        problems.append(Finding("level_not_recognized", f"agreement {agreement.id}: {exc.detail}"))
        return _Standing(None, mapped, agreement, tuple(problems))
    return _Standing(rank, mapped, agreement, tuple(problems))


def _recipient_problems(
    trust: TrustStore,
    label: Label,
    item_bundle: TrustBundle,
    item_rank: int,
    person: VerifiedPresentation,
    recipient: VerifiedPresentation,
    now: int,
) -> list[Finding]:
    """Rules 5 and 6: the recipient organization is cleared and employs the presenter."""
    problems: list[Finding] = []
    organization = recipient.credential.organization or {}
    name = organization.get("name")
    if recipient.credential.issuer != person.credential.issuer:
        problems.append(
            Finding(
                "recipient_other_registry",
                "the facility credential and the personnel credential come from different registries",
            )
        )
    employer = person.disclosed.get("employer")
    if employer is None:
        problems.append(Finding("employer_not_disclosed", "the presenter must disclose employer"))
    elif not isinstance(name, str) or employer != name:
        problems.append(
            Finding("employer_mismatch", "the presenter's employer is not the recipient organization")
        )
    standing = _standing(trust, label, item_bundle, recipient, now)
    problems.extend(Finding(f"facility_{p.code}", p.detail) for p in standing.problems)
    if standing.rank is not None and standing.rank < item_rank:
        problems.append(
            Finding(
                "facility_level_insufficient",
                f"the recipient's facility clearance ({standing.level}) is below the item's {label.level}",
            )
        )
    if label.category not in recipient.categories:
        problems.append(
            Finding(
                "facility_category_not_covered", f"the facility clearance does not cover {label.category}"
            )
        )
    return problems
