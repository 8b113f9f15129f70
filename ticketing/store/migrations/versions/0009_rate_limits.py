"""rate limits: the outbox by kind and time, for the daily unknown_sender replies

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 06:00:00.000000
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    # Without it every unknown_sender reply read the whole outbox (a second at 100k rows).
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_kind_recent', ['kind', 'created_at'], unique=False)


def downgrade() -> None:

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_kind_recent')
