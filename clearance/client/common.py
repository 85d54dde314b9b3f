"""What every registry service shares on the client side: enums, clearances, pages, times.

Enums are Python ``StrEnum`` s whose values are the protobuf names without
their prefix, lower-cased (``ORGANIZATION_KIND_COMPANY`` is
``OrganizationKind.COMPANY == "company"``); ``UNSPECIFIED`` is what an unset
field holds. Times are whole seconds since the epoch, ``None`` when the
server sent none.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from clearance.v1 import common_pb2 as common

T = TypeVar("T")
E = TypeVar("E", bound="WireEnum")


class WireEnum(enum.StrEnum):
    """An enum of the wire: each value is its protobuf name less :attr:`prefix`, lower-cased."""

    @classmethod
    def prefix(cls) -> str:
        raise NotImplementedError

    @classmethod
    def from_pb(cls: type[E], number: int, names: dict[int, str]) -> E:
        """The member for wire value ``number`` (``UNSPECIFIED`` for one this client does not know)."""
        name = names.get(number, "")
        return cls(name.removeprefix(cls.prefix()).lower()) if name else cls("unspecified")

    def wire_name(self) -> str:
        """The protobuf name of this member."""
        return f"{self.prefix()}{self.value.upper()}"


def _names(enum_type: object) -> dict[int, str]:
    values = getattr(enum_type, "DESCRIPTOR").values  # noqa: B009 - generated descriptors are untyped here
    return {v.number: v.name for v in values}


class OrganizationKind(WireEnum):
    UNSPECIFIED = "unspecified"
    GOVERNMENT = "government"
    COMPANY = "company"
    UNIVERSITY = "university"
    LABORATORY = "laboratory"

    @classmethod
    def prefix(cls) -> str:
        return "ORGANIZATION_KIND_"


class Role(WireEnum):
    UNSPECIFIED = "unspecified"
    ADMINISTRATOR = "administrator"
    ADJUDICATOR = "adjudicator"
    SECURITY_OFFICER = "security_officer"
    OVERSIGHT = "oversight"
    NODE = "node"
    INVESTIGATOR = "investigator"

    @classmethod
    def prefix(cls) -> str:
        return "ROLE_"


class AssessmentItem(WireEnum):
    """The seven items of the law an assessment covers."""

    UNSPECIFIED = "unspecified"
    FAMILY_AND_COHABITANTS = "family_and_cohabitants"
    CRIMINAL_AND_DISCIPLINARY_HISTORY = "criminal_and_disciplinary_history"
    INFORMATION_HANDLING_VIOLATIONS = "information_handling_violations"
    DRUG_ABUSE = "drug_abuse"
    MENTAL_ILLNESS = "mental_illness"
    ALCOHOL_MODERATION = "alcohol_moderation"
    FINANCIAL_SITUATION = "financial_situation"

    @classmethod
    def prefix(cls) -> str:
        return "ASSESSMENT_ITEM_"

    @classmethod
    def all(cls) -> tuple[AssessmentItem, ...]:
        """The seven items, in the law's order."""
        return tuple(item for item in cls if item is not cls.UNSPECIFIED)


class FindingOutcome(WireEnum):
    UNSPECIFIED = "unspecified"
    NO_CONCERN = "no_concern"
    MITIGATED = "mitigated"
    CONCERN = "concern"

    @classmethod
    def prefix(cls) -> str:
        return "FINDING_OUTCOME_"


class AssessmentState(WireEnum):
    UNSPECIFIED = "unspecified"
    AWAITING_CONSENT = "awaiting_consent"
    IN_PROGRESS = "in_progress"
    FAVORABLE = "favorable"
    UNFAVORABLE = "unfavorable"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    REASSESSMENT_DUE = "reassessment_due"
    AWAITING_APPROVAL = "awaiting_approval"

    @classmethod
    def prefix(cls) -> str:
        return "ASSESSMENT_STATE_"


class Decision(WireEnum):
    UNSPECIFIED = "unspecified"
    FAVORABLE = "favorable"
    UNFAVORABLE = "unfavorable"

    @classmethod
    def prefix(cls) -> str:
        return "DECISION_"


class CredentialState(WireEnum):
    UNSPECIFIED = "unspecified"
    VALID = "valid"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"

    @classmethod
    def prefix(cls) -> str:
        return "CREDENTIAL_STATE_"


class AppealState(WireEnum):
    UNSPECIFIED = "unspecified"
    OPEN = "open"
    UPHELD = "upheld"
    DISMISSED = "dismissed"

    @classmethod
    def prefix(cls) -> str:
        return "APPEAL_STATE_"


class AgreementState(WireEnum):
    UNSPECIFIED = "unspecified"
    IN_FORCE = "in_force"
    TERMINATED = "terminated"
    EXPIRED = "expired"

    @classmethod
    def prefix(cls) -> str:
        return "AGREEMENT_STATE_"


NAMES: dict[type[WireEnum], dict[int, str]] = {
    OrganizationKind: _names(common.OrganizationKind),
    Role: _names(common.Role),
    AssessmentItem: _names(common.AssessmentItem),
    FindingOutcome: _names(common.FindingOutcome),
    AssessmentState: _names(common.AssessmentState),
    Decision: _names(common.Decision),
    CredentialState: _names(common.CredentialState),
    AppealState: _names(common.AppealState),
    AgreementState: _names(common.AgreementState),
}


def from_wire(kind: type[E], number: int) -> E:
    """The member of ``kind`` that wire value ``number`` stands for."""
    return kind.from_pb(number, NAMES[kind])


@dataclass(frozen=True, slots=True)
class Clearance:
    """A clearance: the jurisdiction that grants it, its level, the categories it covers."""

    jurisdiction: str
    level: str
    categories: tuple[str, ...]

    @classmethod
    def from_pb(cls, message: common.Clearance) -> Clearance:
        return cls(message.jurisdiction, message.level, tuple(message.categories))


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; ``next_page_token`` is empty on the last."""

    items: tuple[T, ...]
    next_page_token: str = ""

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def page_request(page_size: int, page_token: str) -> common.PageRequest:
    return common.PageRequest(page_size=page_size, page_token=page_token)


def seconds_of(message: Timestamp, present: bool) -> int | None:
    """Whole seconds of a Timestamp field, None when the field is absent."""
    return int(message.seconds) if present else None


def timestamp(seconds: int) -> Timestamp:
    return Timestamp(seconds=seconds)
