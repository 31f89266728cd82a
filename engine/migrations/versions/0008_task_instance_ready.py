"""task: partial index on the open rows of an instance, so a step's task sync does not read its whole history

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A loop's history adds rows to its instance every round; sync_tasks reads only the READY ones.
    op.create_index("ix_task_instance_ready", "task", ["instance_id"],
                    sqlite_where=sa.text("state = 'READY'"), postgresql_where=sa.text("state = 'READY'"))


def downgrade() -> None:
    op.drop_index("ix_task_instance_ready", table_name="task")
