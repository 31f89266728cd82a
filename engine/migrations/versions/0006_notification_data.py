"""notification.data: what a notification is about, so it is shown in the reader's language

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Older rows keep NULL: they are shown with the Indonesian text they were stored with.
    with op.batch_alter_table("notification") as batch:
        batch.add_column(sa.Column("data", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.drop_column("data")
