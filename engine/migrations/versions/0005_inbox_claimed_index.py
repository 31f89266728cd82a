"""partial index of claimed READY tasks for the inbox's "mine" arm

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CLAIMED = "state = 'READY' AND assignee IS NOT NULL"
# `state` is a column too although the WHERE fixes it: SQLite only treats a partial index as covering when every
# column the query names is in it, and without ANALYZE statistics it would otherwise prefer ix_task_inbox_cover
# (state = 'READY' and a scan of every open task) for "my" arm.


def upgrade() -> None:
    op.create_index("ix_task_claimed_ready", "task", ["assignee", "state", "due_at", "created_at", "id"],
                    sqlite_where=sa.text(CLAIMED), postgresql_where=sa.text(CLAIMED))


def downgrade() -> None:
    op.drop_index("ix_task_claimed_ready", table_name="task")
