"""comfyui_servers: the ComfyUI pool's state (health, queue, last /object_info), shared by every process

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'comfyui_servers',
        sa.Column('url', sa.String(length=2048), primary_key=True),
        sa.Column('healthy', sa.Boolean(), nullable=False),
        sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('queue_running', sa.Integer(), nullable=False),
        sa.Column('queue_pending', sa.Integer(), nullable=False),
        sa.Column('node_types', sa.Integer(), nullable=False),
        sa.Column('object_info', sa.JSON(), nullable=True),
        sa.Column('object_info_at', sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table('comfyui_servers')
