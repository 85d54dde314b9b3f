"""``clearance oversight``: the oversight body's monitor of a registry, and its signed monthly report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.connection import credential_option, json_option, registry_client
from cli.output import emit, status_word, table

if TYPE_CHECKING:
    from clearance.statistics.report import Month, StatisticsReport

_FINGERPRINT_HELP = "The registry's root fingerprint, given out of band (pinned at the first run)."


@click.group("oversight")
def oversight() -> None:
    """The oversight body: monitor the registry's process, read its signed statistics."""


def _month(value: str, option: str = "--month") -> Month:
    from clearance.errors import MalformedError
    from clearance.statistics.report import Month

    try:
        return Month.parse(value)
    except MalformedError as exc:
        raise click.BadParameter(exc.detail, param_hint=option) from None


@oversight.command("monitor")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The monitor's own directory (its SQLite store of what it verified, and its alerts).",
)
@click.option("--root-fingerprint", default="", envvar="CLEARANCE_ROOT_FINGERPRINT", help=_FINGERPRINT_HELP)
@click.option(
    "--month",
    "months",
    multiple=True,
    help="Check the signed report of this month, YYYY-MM (repeatable; default: last month).",
)
@credential_option
@json_option
def oversight_monitor(
    directory: Path,
    root_fingerprint: str,
    months: tuple[str, ...],
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Check the registry's process; exit 3 if anything does not match.

    Checks that the audit chain still holds the head verified last time, that
    every credential comes from a favorable decision made through the process,
    that every suspension and revocation has a reason, and that the monthly
    report's figures are the chain's. Alerts go to this monitor's own store.
    """
    import time

    from clearance.errors import PolicyError
    from oversight.monitor import Monitor

    checked = [_month(m) for m in months] or [_last_month(int(time.time()))]
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        monitor = Monitor(directory, client)
        if monitor.store.get_meta("root_jwk") is None:
            if not root_fingerprint:
                raise click.UsageError("the first run pins the registry's root: give --root-fingerprint")
            monitor.pin(root_fingerprint)
        run = monitor.run(checked)
    data: dict[str, Any] = {
        "audit_head": {"sequence": run.head.seq, "hash": run.head.hash},
        "events_verified": run.events_verified,
        "issuances_checked": run.issuances_checked,
        "states_checked": run.states_checked,
        "reports_checked": run.reports_checked,
        "alerts": [{"kind": a.kind.value, "concerns": a.concerns, "detail": a.detail} for a in run.alerts],
        "new_alerts": run.new_alerts,
    }
    emit(data, json_output=json_output, human=_show_run)
    if run.alerts:
        raise PolicyError(
            "alerts", f"{len(run.alerts)} alert(s), {run.new_alerts} new; see: clearance oversight alerts"
        )


def _last_month(now: int) -> Month:
    from clearance.statistics.report import Month

    current = Month.of(now)
    return Month(current.year - 1, 12) if current.month == 1 else Month(current.year, current.month - 1)


def _show_run(d: dict[str, Any]) -> str:
    lines = [
        f"audit chain verified through event {d['audit_head']['sequence']} "
        f"({d['events_verified']} new), head {d['audit_head']['hash'][:16]}",
        f"{d['issuances_checked']} issuance(s) and {d['states_checked']} suspension(s)/revocation(s) checked; "
        f"reports checked: {', '.join(d['reports_checked']) or 'none'}",
    ]
    if not d["alerts"]:
        lines.append(status_word("no alerts", True))
    else:
        lines.append(status_word(f"{len(d['alerts'])} alert(s)", False) + f", {d['new_alerts']} new:")
        lines.append(
            table(
                [[a["kind"], a["concerns"], a["detail"]] for a in d["alerts"]],
                ["alert", "concerns", "detail"],
            )
        )
    return "\n".join(lines)


@oversight.command("alerts")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), required=True)
@json_option
def oversight_alerts(directory: Path, json_output: bool) -> None:
    """List the alerts the monitor has stored, oldest first."""
    from clearance.errors import NotFoundError
    from oversight.monitor import STORE_NAME
    from oversight.monitor_store import MonitorStore

    if not (directory / STORE_NAME).exists():
        raise NotFoundError(
            f"{directory} holds no monitor store; run: clearance oversight monitor --dir {directory}"
        )
    stored = MonitorStore(directory / STORE_NAME).alerts()
    rows = [
        {"id": a.id, "kind": a.kind, "concerns": a.concerns, "detail": a.detail, "raised_at": a.raised_at}
        for a in stored
    ]
    emit(
        {"alerts": rows},
        json_output=json_output,
        human=lambda d: (
            table(
                [[a["id"], a["kind"], a["concerns"], a["detail"]] for a in d["alerts"]],
                ["#", "alert", "concerns", "detail"],
            )
            or "no alerts"
        ),
    )


@oversight.command("report")
@click.option("--month", required=True, help="The calendar month, YYYY-MM (UTC).")
@click.option(
    "--root-fingerprint", required=True, envvar="CLEARANCE_ROOT_FINGERPRINT", help=_FINGERPRINT_HELP
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to write report-YYYY-MM.jwt, .svg and .png.",
)
@credential_option
@json_option
def oversight_report(
    month: str,
    root_fingerprint: str,
    out: Path,
    credential: Path,
    endpoint: str | None,
    insecure: bool,
    json_output: bool,
) -> None:
    """Fetch the registry's signed monthly report, verify it, print it and draw its charts."""
    import time

    from clearance.keys import atomic_write
    from clearance.statistics import charts
    from clearance.statistics.report import StatisticsReport
    from oversight.registry_trust import pin_root, trusted_bundle

    wanted = _month(month)
    with registry_client(credential, endpoint=endpoint, insecure=insecure) as client:
        root = pin_root(client.publication, root_fingerprint)
        bundle, _root = trusted_bundle(client.publication, root, int(time.time()))
        token = client.audit.monthly_report(str(wanted))
    report = StatisticsReport.verify(token, bundle)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"report-{report.month}"
    scene = charts.layout(
        charts.charts_of(report),
        heading=f"{bundle.jurisdiction} registry, {report.month}{'' if report.complete else ' (month not over)'}",
    )
    written = {
        "report": stem.with_suffix(".jwt"),
        "svg": stem.with_suffix(".svg"),
        "png": stem.with_suffix(".png"),
    }
    atomic_write(written["report"], (token + "\n").encode())
    atomic_write(written["svg"], charts.svg(scene).encode())
    atomic_write(written["png"], charts.png(scene))
    data = {
        **report.to_payload(),
        "verified": {"kid": report.kid, "bundle_version": bundle.version},
        "files": {kind: os.fspath(path) for kind, path in written.items()},
    }
    emit(data, json_output=json_output, human=lambda _d: _show_report(report, bundle.version, written))


def _show_report(report: StatisticsReport, bundle_version: int, written: dict[str, Path]) -> str:
    def cell(value: int | None) -> str:
        return "s" if value is None else str(value)

    lines = [
        f"statistics of {report.month} from {report.issuer}: signature {status_word('verified', True)} "
        f"(key {report.kid}, bundle v{bundle_version}); audit events {report.counted.first}-{report.counted.through}"
        + ("" if report.complete else "; the month is not over"),
        "",
    ]
    for name, rows in report.tables.items():
        columns = list(next(iter(rows.values())))
        lines.append(click.style(name.replace("_", " "), bold=True))
        lines.append(
            table([[row, *(cell(v) for v in cells.values())] for row, cells in rows.items()], ["", *columns])
        )
        lines.append("")
    lines.append("s: suppressed (under 10, or it would reveal a cell under 10)")
    lines.append(f"charts: {written['svg']}, {written['png']}; signed report: {written['report']}")
    return "\n".join(lines)
