"""outbound: envelope sender, trigger fingerprint, expiry, failure reason

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 16:34:34.654481
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import ticketing.store.models


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows written before 0003 (no code wrote any) get an empty envelope sender,
    # which the dispatcher replaces by [outbound] from_address, and their next
    # attempt as expiry; `ticketd outbox retry` gives a row a fresh period.
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mail_from', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('trigger_fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('expires_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.create_index('ix_outbox_recipient_recent', ['to_address', 'created_at'], unique=False)
    op.execute("UPDATE outbox SET expires_at = next_attempt_at WHERE expires_at IS NULL")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('expires_at', existing_type=ticketing.store.models.UTCDateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_recipient_recent')
        batch_op.drop_column('reason')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('trigger_fingerprint')
        batch_op.drop_column('mail_from')
