"""intake: dedup, screening, attachments, undeliverable

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 16:31:33.137741
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import ticketing.store.models


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('undeliverable_addresses',
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('bounces', sa.Integer(), nullable=False),
    sa.Column('first_seen', ticketing.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen', ticketing.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('address', name=op.f('pk_undeliverable_addresses'))
    )
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disposition', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False, server_default='stored'))
        batch_op.add_column(sa.Column('content', sa.LargeBinary(), nullable=True))

    # Existing rows get neutral values; dedup_key falls back to the raw hash.
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mailboxes', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('dedup_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default='normal'))
        batch_op.add_column(sa.Column('disposition', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False, server_default='recorded'))
        batch_op.add_column(sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False, server_default='smtp'))
        batch_op.add_column(sa.Column('new_text', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('size', sa.Integer(), nullable=False, server_default='0'))
    op.execute("UPDATE messages SET dedup_key = substr(raw_sha256, 1, 48) || '-' || CAST(id AS VARCHAR(15)) WHERE dedup_key IS NULL")
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.alter_column('dedup_key', existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False)
        batch_op.create_index(batch_op.f('ix_messages_kind'), ['kind'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_messages_dedup_key'), ['dedup_key'])


def downgrade() -> None:

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_messages_dedup_key'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_messages_kind'))
        batch_op.drop_column('size')
        batch_op.drop_column('new_text')
        batch_op.drop_column('source')
        batch_op.drop_column('disposition')
        batch_op.drop_column('kind')
        batch_op.drop_column('dedup_key')
        batch_op.drop_column('mailboxes')

    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_column('content')
        batch_op.drop_column('disposition')

    op.drop_table('undeliverable_addresses')

