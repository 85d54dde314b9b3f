"""separation of duties and statistics: who recorded consent, the second adjudicator's approval,
and audit events found by time (a month's report)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consent_by", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("approved_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("approved_by", sa.String(length=40), nullable=True))
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.drop_column("approved_by")
        batch_op.drop_column("approved_at")
        batch_op.drop_column("consent_by")
