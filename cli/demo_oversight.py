"""The demo's oversight body: the registry's signed statistics with their charts, and the monitor.

The monitor checks the JP registry with the oversight role's read access and
finds nothing; then an insider writes a credential straight into the
registry's database (no decision, no audit event), and the next run of the
monitor catches it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cli.demo_cast import Registry

PLANTED = "cred_planted_by_an_insider"


def oversee(registry: Registry, out: Path, work: Path, copy_of: str) -> dict[str, Any]:
    """Run the oversight body's checks of ``registry``; plant a copy of credential ``copy_of``; what they found."""
    from clearance.keys import atomic_write
    from clearance.statistics import charts
    from clearance.statistics.report import Month, StatisticsReport
    from oversight.monitor import Monitor

    client = registry.as_("oversight")
    month = Month.of(int(time.time()))
    monitor = Monitor(work / "oversight-monitor", client)
    monitor.pin(registry.root_fingerprint)
    clean = monitor.run([month])
    bundle = monitor.bundle()
    token = client.audit.monthly_report(str(month))
    report = StatisticsReport.verify(token, bundle)
    scene = charts.layout(
        charts.charts_of(report), heading=f"JP registry, statistics of {report.month} (so far)"
    )
    atomic_write(out / "statistics.jwt", (token + "\n").encode())
    atomic_write(out / "statistics.svg", charts.svg(scene).encode())
    atomic_write(out / "statistics.png", charts.png(scene))
    _plant(registry, copy_of)
    caught = monitor.run()
    return {
        "month": str(month),
        "clean": {
            "events_verified": clean.events_verified,
            "issuances_checked": clean.issuances_checked,
            "alerts": [a.kind.value for a in clean.alerts],
        },
        "planted": {
            "credential": PLANTED,
            "alerts": sorted({f"{a.kind.value} {a.concerns}" for a in caught.alerts}),
        },
    }


def _plant(registry: Registry, credential_id: str) -> None:
    """What a registry issuing outside the process does: a credential row with no decision and no audit event."""
    from sqlalchemy import text

    columns = (
        "kind, person_id, organization_id, assessment_id, node_id, jurisdiction, level, categories, state, "
        "state_reason, status_list_id, issued_at, expires_at, holder_thumbprint, issuing_kid, suspended_by"
    )
    with registry.ctx.db.engine.begin() as connection:
        connection.execute(
            text(
                f"INSERT INTO credentials (id, status_index, {columns}) "  # noqa: S608  (our own column names)
                f"SELECT :planted, (SELECT max(status_index) + 1 FROM credentials), {columns} "
                "FROM credentials WHERE id = :original"
            ),
            {"planted": PLANTED, "original": credential_id},
        )
