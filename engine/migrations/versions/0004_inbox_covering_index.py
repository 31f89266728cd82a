"""covering index for the inbox (replaces ix_task_inbox)

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = ["state", "unit_id", "candidate_role", "assignee", "due_at", "created_at", "id"]


def upgrade() -> None:
    op.create_index("ix_task_inbox_cover", "task", COLUMNS)
    op.drop_index("ix_task_inbox", table_name="task")


def downgrade() -> None:
    op.create_index("ix_task_inbox", "task", ["state", "unit_id", "candidate_role"])
    op.drop_index("ix_task_inbox_cover", table_name="task")
