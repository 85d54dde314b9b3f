"""Registry records as the commands print them, and the small display helpers they share.

The commands print records in protobuf's JSON mapping (field names as in the
proto, defaults left out, enums by their full names, 64-bit integers as
strings, times as RFC 3339): that is the output users and scripts know. This
module builds that shape from the typed client's domain objects, so no command
touches a protobuf message.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click

from cli.output import status_word

if TYPE_CHECKING:
    from clearance.client.assessments import Appeal, Assessment, Notice
    from clearance.client.audit import AuditChainReport, AuditEvent
    from clearance.client.common import Clearance, WireEnum
    from clearance.client.credentials import CredentialRecord
    from clearance.client.federation import AgreementRecord
    from clearance.client.organizations import Node, Organization
    from clearance.client.personnel import Person, PersonalData
    from clearance.client.staff import Identity, Staff

Record = dict[str, Any]


def _fields(pairs: Iterable[tuple[str, Any]]) -> Record:
    """The pairs whose value is not a default (``""``, ``0``, ``False``, ``None``, ``[]``)."""
    return {k: v for k, v in pairs if v is not None and v != "" and v is not False and v != 0 and v != []}


def _time(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _enum(member: WireEnum) -> str:
    return "" if member.value == "unspecified" else member.wire_name()


def _int64(value: int) -> str | None:
    return str(value) if value else None


def _clearance(c: Clearance) -> Record:
    return _fields((("jurisdiction", c.jurisdiction), ("level", c.level), ("categories", list(c.categories))))


def organization(o: Organization) -> Record:
    facility = None
    if o.facility_clearance is not None:
        f = o.facility_clearance
        facility = _fields(
            (
                ("clearance", _clearance(f.clearance)),
                ("valid_until", _time(f.valid_until)),
                ("active", f.active),
            )
        )
    return _fields(
        (
            ("id", o.id),
            ("name", o.name),
            ("kind", _enum(o.kind)),
            ("country", o.country),
            ("facility_clearance", facility),
            ("created_at", _time(o.created_at)),
        )
    )


def node(n: Node) -> Record:
    return _fields(
        (
            ("id", n.id),
            ("organization_id", n.organization_id),
            ("name", n.name),
            ("key_thumbprint", n.key_thumbprint),
            ("enrolled_at", _time(n.enrolled_at)),
        )
    )


def staff(s: Staff) -> Record:
    return _fields(
        (
            ("id", s.id),
            ("name", s.name),
            ("role", _enum(s.role)),
            ("organization_id", s.organization_id),
            ("key_thumbprint", s.key_thumbprint),
            ("disabled", s.disabled),
        )
    )


def identity(i: Identity) -> Record:
    return _fields(
        (
            ("principal", i.principal),
            ("role", _enum(i.role)),
            ("organization_id", i.organization_id),
            ("jurisdiction", i.jurisdiction),
        )
    )


def person(p: Person) -> Record:
    return _fields(
        (
            ("id", p.id),
            ("subject", p.subject),
            ("organization_id", p.organization_id),
            ("enrolled_at", _time(p.enrolled_at)),
        )
    )


def personal_data(d: PersonalData) -> Record:
    family = [
        _fields(
            (
                ("relation", m.relation),
                ("name", m.name),
                ("nationality", m.nationality),
                ("cohabitant", m.cohabitant),
            )
        )
        for m in d.family
    ]
    return _fields(
        (
            ("given_name", d.given_name),
            ("family_name", d.family_name),
            ("birthdate", d.birthdate),
            ("nationality", d.nationality),
            ("family", family),
        )
    )


def assessment(a: Assessment) -> Record:
    findings = [
        _fields(
            (
                ("item", _enum(f.item)),
                ("outcome", _enum(f.outcome)),
                ("summary", f.summary),
                ("recorded_at", _time(f.recorded_at)),
                ("recorded_by", f.recorded_by),
            )
        )
        for f in a.findings
    ]
    return _fields(
        (
            ("id", a.id),
            ("person_id", a.person_id),
            ("state", _enum(a.state)),
            ("level", a.level),
            ("categories", list(a.categories)),
            ("consent_at", _time(a.consent_at)),
            ("findings", findings),
            ("decision", _enum(a.decision)),
            ("reasons", list(a.reasons)),
            ("decided_at", _time(a.decided_at)),
            ("valid_until", _time(a.valid_until)),
            ("opened_at", _time(a.opened_at)),
            ("consent_by", a.consent_by),
            ("decided_by", a.decided_by),
            ("approved_by", a.approved_by),
            ("approved_at", _time(a.approved_at)),
        )
    )


def notice(n: Notice) -> Record:
    return _fields(
        (
            ("id", n.id),
            ("assessment_id", n.assessment_id),
            ("decision", _enum(n.decision)),
            ("reasons", list(n.reasons)),
            ("appeal_instructions", n.appeal_instructions),
            ("appeal_deadline", _time(n.appeal_deadline)),
            ("issued_at", _time(n.issued_at)),
        )
    )


def appeal(a: Appeal) -> Record:
    return _fields(
        (
            ("id", a.id),
            ("assessment_id", a.assessment_id),
            ("state", _enum(a.state)),
            ("grounds", a.grounds),
            ("resolution", a.resolution),
            ("filed_at", _time(a.filed_at)),
            ("resolved_at", _time(a.resolved_at)),
            ("resolved_by", a.resolved_by),
        )
    )


def credential(c: CredentialRecord) -> Record:
    return _fields(
        (
            ("id", c.id),
            ("person_id", c.person_id),
            ("organization_id", c.organization_id),
            ("kind", c.kind),
            ("state", _enum(c.state)),
            ("clearance", _clearance(c.clearance)),
            ("status_list_uri", c.status_list_uri),
            ("status_index", _int64(c.status_index)),
            ("issued_at", _time(c.issued_at)),
            ("expires_at", _time(c.expires_at)),
            ("state_reason", c.state_reason),
            ("holder_key_thumbprint", c.holder_key_thumbprint),
        )
    )


def agreement(a: AgreementRecord) -> Record:
    """An agreement record without its document, the state as a bare word (``in_force``)."""
    state = "" if a.state.value == "unspecified" else a.state.value
    data = _fields(
        (
            ("id", a.id),
            ("partner_jurisdiction", a.partner_jurisdiction),
            ("partner_endpoint", a.partner_endpoint),
            ("state", state),
            ("last_partner_sync", _time(a.last_partner_sync)),
            ("partner_problem", a.partner_problem),
        )
    )
    data.setdefault("state", state)
    return data


def audit_event(e: AuditEvent) -> Record:
    return _fields(
        (
            ("sequence", _int64(e.sequence)),
            ("at", _time(e.at)),
            ("actor", e.actor),
            ("action", e.action),
            ("object_type", e.object_type),
            ("object_id", e.object_id),
            ("details_json", e.details_json),
            ("hash", e.hash),
            ("previous_hash", e.previous_hash),
        )
    )


def audit_chain(r: AuditChainReport) -> Record:
    return _fields(
        (
            ("intact", r.intact),
            ("events_checked", _int64(r.events_checked)),
            ("broken_at", _int64(r.broken_at)),
            ("problem", r.problem),
            ("head_hash", r.head_hash),
        )
    )


# -- display helpers shared by the registry's command groups -----------------------------


def enum_name(prefix: str, value: str) -> str:
    return value.removeprefix(prefix).lower() if value else ""


def date_option(value: str, option: str) -> int:
    """A ``YYYY-MM-DD`` option as the Unix time of that day's start (UTC).

    Raises:
        click.BadParameter: not such a date.
    """
    try:
        parsed = datetime.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("must be a date YYYY-MM-DD", param_hint=option) from None
    return int(datetime.datetime(parsed.year, parsed.month, parsed.day, tzinfo=datetime.UTC).timestamp())


def when(seconds: Any) -> str:
    if not seconds:
        return "-"
    if isinstance(seconds, str):  # RFC 3339, as records carry times
        return seconds.replace("T", " ").replace("Z", " UTC")
    return datetime.datetime.fromtimestamp(int(seconds), datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def state_word(state: str) -> str:
    good = {"valid", "favorable", "serving", "in_force", "upheld", "intact"}
    bad = {"revoked", "unfavorable", "expired", "withdrawn", "terminated", "dismissed", "suspended"}
    return status_word(state, True if state in good else False if state in bad else None)
