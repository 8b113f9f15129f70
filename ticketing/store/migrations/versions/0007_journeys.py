"""journeys: the producer's phones and agency, withheld outbound mail

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    with op.batch_alter_table('producers', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('phones', sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(sa.Column('agency', sa.String(length=200), nullable=True))

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pii_findings', sa.JSON(), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('pii_findings')

    with op.batch_alter_table('producers', schema=None) as batch_op:
        batch_op.drop_column('agency')
        batch_op.drop_column('phones')
