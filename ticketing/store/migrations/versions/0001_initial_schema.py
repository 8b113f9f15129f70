"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26 16:19:40.507543
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import ticketing.store.models


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('incident_counters',
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(length=6), nullable=False),
    sa.Column('last_value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_incident_counters'))
    )
    op.create_table('mailbox_cursors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mailbox', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('folder', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('last_uid', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mailbox_cursors')),
    sa.UniqueConstraint('mailbox', 'folder', name=op.f('uq_mailbox_cursors_mailbox_folder'))
    )
    op.create_table('producers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('npn', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('created_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_producers')),
    sa.UniqueConstraint('email', name=op.f('uq_producers_email')),
    sa.UniqueConstraint('npn', name=op.f('uq_producers_npn'))
    )
    op.create_table('incidents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=14), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('priority', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('team', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('mailbox', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('producer_id', sa.Integer(), nullable=True),
    sa.Column('merged_into_id', sa.Integer(), nullable=True),
    sa.Column('linked_from_id', sa.Integer(), nullable=True),
    sa.Column('opened_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['linked_from_id'], ['incidents.id'], name=op.f('fk_incidents_linked_from_id_incidents')),
    sa.ForeignKeyConstraint(['merged_into_id'], ['incidents.id'], name=op.f('fk_incidents_merged_into_id_incidents')),
    sa.ForeignKeyConstraint(['producer_id'], ['producers.id'], name=op.f('fk_incidents_producer_id_producers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incidents')),
    sa.UniqueConstraint('number', name=op.f('uq_incidents_number'))
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incidents_opened_at'), ['opened_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_producer_id'), ['producer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_type'), ['type'], unique=False)

    op.create_table('incident_consumers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_incident_consumers_incident_id_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_consumers')),
    sa.UniqueConstraint('incident_id', 'person_id', name=op.f('uq_incident_consumers_incident_id_person_id'))
    )
    with op.batch_alter_table('incident_consumers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_consumers_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_incident_consumers_person_id'), ['person_id'], unique=False)

    op.create_table('messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('direction', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('mailbox', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=998), nullable=True),
    sa.Column('in_reply_to', sa.Text(), nullable=True),
    sa.Column('references', sa.Text(), nullable=True),
    sa.Column('sender', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('raw_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('pii_findings', sa.JSON(), nullable=False),
    sa.Column('received_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_messages_incident_id_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_dedup', ['message_id', 'raw_sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_messages_received_at'), ['received_at'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('to_address', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=998), nullable=False),
    sa.Column('mime', sa.LargeBinary(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_outbox_incident_id_incidents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('message_id', name=op.f('uq_outbox_message_id'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_incident_id'), ['incident_id'], unique=False)

    op.create_table('attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_row_id', sa.Integer(), nullable=False),
    sa.Column('filename', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('content_type', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['message_row_id'], ['messages.id'], name=op.f('fk_attachments_message_row_id_messages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attachments'))
    )
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attachments_message_row_id'), ['message_row_id'], unique=False)

    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('message_row_id', sa.Integer(), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('created_at', ticketing.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], name=op.f('fk_audit_events_incident_id_incidents')),
    sa.ForeignKeyConstraint(['message_row_id'], ['messages.id'], name=op.f('fk_audit_events_message_row_id_messages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_incident_id'), ['incident_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_events_kind'), ['kind'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_kind'))
        batch_op.drop_index(batch_op.f('ix_audit_events_incident_id'))
        batch_op.drop_index(batch_op.f('ix_audit_events_created_at'))

    op.drop_table('audit_events')
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attachments_message_row_id'))

    op.drop_table('attachments')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_incident_id'))
        batch_op.drop_index('ix_outbox_due')

    op.drop_table('outbox')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_messages_received_at'))
        batch_op.drop_index(batch_op.f('ix_messages_incident_id'))
        batch_op.drop_index('ix_messages_dedup')

    op.drop_table('messages')
    with op.batch_alter_table('incident_consumers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_consumers_person_id'))
        batch_op.drop_index(batch_op.f('ix_incident_consumers_incident_id'))

    op.drop_table('incident_consumers')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_type'))
        batch_op.drop_index(batch_op.f('ix_incidents_status'))
        batch_op.drop_index(batch_op.f('ix_incidents_producer_id'))
        batch_op.drop_index(batch_op.f('ix_incidents_opened_at'))

    op.drop_table('incidents')
    op.drop_table('producers')
    op.drop_table('mailbox_cursors')
    op.drop_table('incident_counters')

