"""lifecycle: assignee, resolved_at

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 16:48:58.334907
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import ticketing.store.models


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assignee', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=True))




def downgrade() -> None:

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('assignee')


