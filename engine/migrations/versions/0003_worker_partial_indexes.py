"""partial indexes for the worker's reminder and escalation sweeps

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

REMINDER = "state = 'READY' AND reminded_at IS NULL"
ESCALATION = "state = 'READY' AND escalated_at IS NULL"


def upgrade() -> None:
    op.create_index("ix_task_reminder_pending", "task", ["follow_up_at"],
                    sqlite_where=sa.text(REMINDER), postgresql_where=sa.text(REMINDER))
    op.create_index("ix_task_escalation_pending", "task", ["due_at"],
                    sqlite_where=sa.text(ESCALATION), postgresql_where=sa.text(ESCALATION))


def downgrade() -> None:
    op.drop_index("ix_task_escalation_pending", table_name="task")
    op.drop_index("ix_task_reminder_pending", table_name="task")
