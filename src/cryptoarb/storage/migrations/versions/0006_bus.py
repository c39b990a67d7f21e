"""Events the recorder applied from the bus, by identity (``run:seq``): exactly once.

Revision ID: 0006_bus
Revises: 0005_api (0002_pnl before the api branch was merged in)
Create Date: 2026-11-30

The recorder inserts an event's key here in the same transaction as the event's rows, with
ON CONFLICT DO NOTHING; an event whose key was already there (a redelivery, a republish after
a Redis restart, a replay restarted under the same run id) writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_bus"
down_revision: str | None = "0005_api"  # 0002_pnl on the bus branch alone; the lead re-chains
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bus_events",
        sa.Column("key", sa.String(96), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("applied_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_bus_events"),
    )


def downgrade() -> None:
    op.drop_table("bus_events")
