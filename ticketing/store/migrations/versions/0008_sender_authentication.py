"""sender authentication: how each message's sender was vouched for, who opened an incident

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    with op.batch_alter_table('messages', schema=None) as batch_op:
        # Mail recorded before authentication existed was believed as it came.
        batch_op.add_column(
            sa.Column(
                'authentication', sa.String(length=32), nullable=False, server_default='off'
            )
        )
        batch_op.add_column(
            sa.Column(
                'authentication_results', sa.Text(), nullable=False, server_default=''
            )
        )

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opened_by', sa.String(length=254), nullable=True))
        batch_op.create_index(batch_op.f('ix_incidents_opened_by'), ['opened_by'], unique=False)


def downgrade() -> None:

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_opened_by'))
        batch_op.drop_column('opened_by')

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('authentication_results')
        batch_op.drop_column('authentication')
