"""``clearance assessment`` and ``clearance appeal``: consent, the seven findings, decisions, notices, appeals."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli import records
from cli.connection import credential_option, json_option, registry_client
from cli.output import emit, table

if TYPE_CHECKING:
    from clearance.client.assessments import Decided

ITEMS = (
    "family_and_cohabitants",
    "criminal_and_disciplinary_history",
    "information_handling_violations",
    "drug_abuse",
    "mental_illness",
    "alcohol_moderation",
    "financial_situation",
)
OUTCOMES = ("no_concern", "mitigated", "concern")


@click.group("assessment")
def assessment() -> None:
    """The aptitude assessment: consent, the seven findings, decision, notice."""


def _show_assessment(a: dict[str, Any]) -> str:
    lines = [
        f"assessment {a['id']}  {records.state_word(records.enum_name('ASSESSMENT_STATE_', a.get('state', '')))}",
        f"  person       {a.get('person_id')}",
        f"  requested    {a.get('level')} {', '.join(a.get('categories', []))}",
        f"  consent      {records.when(a.get('consent_at'))}",
    ]
    if a.get("consent_by"):
        lines.append(f"  consent by   {a['consent_by']}")
    if a.get("decision"):
        lines.append(
            f"  decision     {records.enum_name('DECISION_', a['decision'])} on {records.when(a.get('decided_at'))}"
            f" by {a.get('decided_by', '-')}"
        )
        if a.get("approved_by"):
            lines.append(f"  approved by  {a['approved_by']} on {records.when(a.get('approved_at'))}")
        lines.append(f"  valid until  {records.when(a.get('valid_until'))}")
    for reason in a.get("reasons", []):
        lines.append(f"  reason       {reason}")
    findings = a.get("findings", [])
    if findings:
        lines.append("  findings:")
        lines.append(
            "\n".join(
                "    " + row
                for row in table(
                    [
                        [
                            records.enum_name("ASSESSMENT_ITEM_", f["item"]),
                            records.enum_name("FINDING_OUTCOME_", f.get("outcome", "")),
                            f.get("summary", ""),
                        ]
                        for f in findings
                    ]
                ).splitlines()
            )
        )
    return "\n".join(lines)


@assessment.command("open")
@click.argument("person_id")
@click.option("--level", required=True)
@click.option("--category", "categories", multiple=True, required=True)
@click.option("--idempotency-key", default="")
@credential_option
@json_option
def assessment_open(
    person_id: str,
    level: str,
    categories: tuple[str, ...],
    idempotency_key: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Open an assessment of a person for a level and categories."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        opened = client.assessments.open(
            person_id, level=level, categories=categories, idempotency_key=idempotency_key
        )
    emit(records.assessment(opened), json_output=json_output, human=_show_assessment)


@assessment.command("consent")
@click.argument("assessment_id")
@click.option("--evidence", required=True, help="How consent was given, e.g. 'signed form 2026-11-02'.")
@credential_option
@json_option
def assessment_consent(
    assessment_id: str,
    evidence: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Record the person's consent (nothing else can be recorded before it)."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        consented = client.assessments.record_consent(assessment_id, evidence=evidence)
    emit(records.assessment(consented), json_output=json_output, human=_show_assessment)


@assessment.command("withdraw")
@click.argument("assessment_id")
@click.option("--reason", required=True)
@credential_option
@json_option
def assessment_withdraw(
    assessment_id: str, reason: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Withdraw consent: stops the assessment, or suspends the resulting credentials."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        withdrawn = client.assessments.withdraw_consent(assessment_id, reason=reason)
    data: dict[str, Any] = {
        "assessment": records.assessment(withdrawn.assessment),
        "suspended_credentials": withdrawn.suspended_credentials,
    }
    emit(
        data,
        json_output=json_output,
        human=lambda d: (
            f"{_show_assessment(d['assessment'])}\n{d['suspended_credentials']} credential(s) suspended"
        ),
    )


@assessment.command("finding")
@click.argument("assessment_id")
@click.option("--item", type=click.Choice(ITEMS), required=True, help="One of the seven items of the law.")
@click.option("--outcome", type=click.Choice(OUTCOMES), required=True)
@click.option("--summary", required=True)
@credential_option
@json_option
def assessment_finding(
    assessment_id: str,
    item: str,
    outcome: str,
    summary: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Record the finding for one of the seven items."""
    from clearance.client.common import AssessmentItem, FindingOutcome

    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        recorded = client.assessments.record_finding(
            assessment_id, item=AssessmentItem(item), outcome=FindingOutcome(outcome), summary=summary
        )
    emit(records.assessment(recorded), json_output=json_output, human=_show_assessment)


@assessment.command("decide")
@click.argument("assessment_id")
@click.option("--favorable/--unfavorable", required=True)
@click.option(
    "--reason", "reasons", multiple=True, required=True, help="Reasons given to the person (repeatable)."
)
@credential_option
@json_option
def assessment_decide(
    assessment_id: str,
    favorable: bool,
    reasons: tuple[str, ...],
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Decide, once all seven findings are in; the notice to the person is written.

    Refused if you recorded the consent or a finding of this assessment. A Top
    Secret decision waits for a second adjudicator (``assessment approve``).
    """
    from clearance.client.common import Decision

    decision = Decision.FAVORABLE if favorable else Decision.UNFAVORABLE
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        decided = client.assessments.decide(assessment_id, decision=decision, reasons=reasons)
    _emit_decided(decided, json_output)


def _emit_decided(decided: Decided, json_output: bool) -> None:
    data: dict[str, Any] = {"assessment": records.assessment(decided.assessment)}
    if decided.notice is not None:
        data["notice"] = records.notice(decided.notice)

    def human(d: dict[str, Any]) -> str:
        shown = _show_assessment(d["assessment"])
        if "notice" in d:
            return f"{shown}\nnotice {d['notice']['id']}: {d['notice'].get('appeal_instructions', '')}"
        if d["assessment"].get("state") == "ASSESSMENT_STATE_AWAITING_APPROVAL":
            return f"{shown}\nawaiting a second adjudicator: clearance assessment approve {d['assessment']['id']}"
        return shown

    emit(data, json_output=json_output, human=human)


@assessment.command("approve")
@click.argument("assessment_id")
@click.option(
    "--approve/--send-back",
    "approve",
    required=True,
    help="Approve: the decision takes effect. Send back: the assessment is in progress again.",
)
@click.option("--comment", required=True, help="Why (kept with the assessment, never in the audit log).")
@credential_option
@json_option
def assessment_approve(
    assessment_id: str,
    approve: bool,
    comment: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """As a second adjudicator, approve a Top Secret decision or send it back (never your own)."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        decided = client.assessments.approve(assessment_id, approve=approve, comment=comment)
    _emit_decided(decided, json_output)


@assessment.command("get")
@click.argument("assessment_id")
@credential_option
@json_option
def assessment_get(
    assessment_id: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Show an assessment (what you see depends on your role)."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        found = client.assessments.get(assessment_id)
    emit(records.assessment(found), json_output=json_output, human=_show_assessment)


@assessment.command("list")
@click.option("--person", "person_id", default="")
@click.option(
    "--awaiting-approval", is_flag=True, help="Only Top Secret decisions waiting for a second adjudicator."
)
@credential_option
@json_option
def assessment_list(
    person_id: str,
    awaiting_approval: bool,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """List assessments (states and decisions only)."""
    from clearance.client.common import AssessmentState

    state = AssessmentState.AWAITING_APPROVAL if awaiting_approval else AssessmentState.UNSPECIFIED
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        rows = [records.assessment(a) for a in client.assessments.list(person_id, state=state)]
    emit(
        {"assessments": rows},
        json_output=json_output,
        human=lambda d: table(
            [
                [
                    a["id"],
                    a.get("person_id"),
                    a.get("level"),
                    records.state_word(records.enum_name("ASSESSMENT_STATE_", a.get("state", ""))),
                ]
                for a in d["assessments"]
            ],
            ["id", "person", "level", "state"],
        ),
    )


@assessment.command("notice")
@click.argument("assessment_id")
@credential_option
@json_option
def assessment_notice(
    assessment_id: str, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """Show the decision notice sent to the person."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        found = client.assessments.get_notice(assessment_id)
    emit(records.notice(found), json_output=json_output)


# -- appeal ------------------------------------------------------------------------------


@click.group("appeal")
def appeal() -> None:
    """Appeals of unfavorable decisions, resolved by the independent oversight body."""


def _show_appeal(a: dict[str, Any]) -> str:
    return table(
        [
            [
                a["id"],
                a.get("assessment_id"),
                records.state_word(records.enum_name("APPEAL_STATE_", a.get("state", ""))),
                records.when(a.get("filed_at")),
                a.get("resolution", ""),
            ]
        ],
        ["id", "assessment", "state", "filed", "resolution"],
    )


@appeal.command("file")
@click.argument("assessment_id")
@click.option("--grounds", required=True)
@credential_option
@json_option
def appeal_file(
    assessment_id: str,
    grounds: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """File an appeal of an unfavorable decision."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        filed = client.assessments.file_appeal(assessment_id, grounds=grounds)
    emit(records.appeal(filed), json_output=json_output, human=_show_appeal)


@appeal.command("resolve")
@click.argument("appeal_id")
@click.option(
    "--uphold/--dismiss", required=True, help="Uphold: set the decision aside and reopen the assessment."
)
@click.option("--resolution", required=True)
@credential_option
@json_option
def appeal_resolve(
    appeal_id: str,
    uphold: bool,
    resolution: str,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Resolve an appeal (oversight only)."""
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        resolved = client.assessments.resolve_appeal(appeal_id, uphold=uphold, resolution=resolution)
    data: dict[str, Any] = {
        "appeal": records.appeal(resolved.appeal),
        "assessment": records.assessment(resolved.assessment),
    }
    emit(
        data,
        json_output=json_output,
        human=lambda d: f"{_show_appeal(d['appeal'])}\n{_show_assessment(d['assessment'])}",
    )


@appeal.command("list")
@click.option("--open", "only_open", is_flag=True, help="Only open appeals.")
@credential_option
@json_option
def appeal_list(
    only_open: bool, credential: Path, endpoint: str | None, insecure: bool, json_output: bool
) -> None:
    """List appeals."""
    from clearance.client.common import AppealState

    state = AppealState.OPEN if only_open else AppealState.UNSPECIFIED
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        rows = [records.appeal(a) for a in client.assessments.list_appeals(state=state)]
    emit(
        {"appeals": rows},
        json_output=json_output,
        human=lambda d: "\n".join(_show_appeal(a) for a in d["appeals"]) or "no appeals",
    )
