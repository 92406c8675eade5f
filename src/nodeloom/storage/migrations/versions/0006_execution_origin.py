"""executions.origin: the base URL an execution was requested at (absolute links in its callbacks)

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('executions') as batch:
        batch.add_column(sa.Column('origin', sa.String(length=2048), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('executions') as batch:
        batch.drop_column('origin')
