"""comfyui_leases: the segments of ours each ComfyUI server holds (at most one running and one queued)

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'comfyui_leases',
        sa.Column('holder', sa.String(length=200), primary_key=True),
        sa.Column('url', sa.String(length=2048), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_comfyui_leases_url', 'comfyui_leases', ['url'])


def downgrade() -> None:
    op.drop_index('ix_comfyui_leases_url', table_name='comfyui_leases')
    op.drop_table('comfyui_leases')
