"""sla clocks

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 16:58:34.275665
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import ticketing.store.models


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_response_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sla_policy', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('sla_clock', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column('sla_warn_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sla_due_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sla_level2_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sla_paused_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sla_stage', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('sla_next_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_incidents_sla_next_at'), ['sla_next_at'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_sla_next_at'))
        batch_op.drop_column('sla_next_at')
        batch_op.drop_column('sla_stage')
        batch_op.drop_column('sla_paused_at')
        batch_op.drop_column('sla_level2_at')
        batch_op.drop_column('sla_due_at')
        batch_op.drop_column('sla_warn_at')
        batch_op.drop_column('sla_clock')
        batch_op.drop_column('sla_policy')
        batch_op.drop_column('first_response_at')


