"""REST API: refresh tokens (rotation, reuse detection, logout) and early-revoked access tokens;
``users.tokens_after`` (tokens issued before it are refused: a password change).

Revision ID: 0005_api
Revises: 0002_pnl
Create Date: 2026-11-30

Written by hand and frozen, like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_api"
down_revision: str | None = "0002_pnl"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JTI = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "api_refresh_tokens",
        sa.Column("jti", JTI, nullable=False),
        sa.Column("family", JTI, nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("jti", name="pk_api_refresh_tokens"),
    )
    op.create_index("ix_api_refresh_tokens_family", "api_refresh_tokens", ["family"])
    op.create_index("ix_api_refresh_tokens_username", "api_refresh_tokens", ["username"])
    op.create_table(
        "api_revoked_access",
        sa.Column("jti", JTI, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("jti", name="pk_api_revoked_access"),
    )
    op.create_index("ix_api_revoked_access_expires_at", "api_revoked_access", ["expires_at"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("tokens_after", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("tokens_after")
    op.drop_table("api_revoked_access")
    op.drop_table("api_refresh_tokens")
