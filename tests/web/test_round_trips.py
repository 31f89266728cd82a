"""Database statements per request on the pages staff open all day (the load test's cycle: inbox, task page,
completion). Each statement is a round trip on PostgreSQL and most of a request's CPU (docs/benchmarks.md):
a change that adds one to these pages should be a decision, not an accident."""

from __future__ import annotations

import re

from sqlalchemy import event

from tests.web.conftest import login
from tests.web.test_tasks import GOOD

TASK_LINK = re.compile(r'class="task-link" href="/tugas/([0-9a-f-]{36})"')


def _counting(db):  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.split()[0] not in ("BEGIN", "COMMIT", "ROLLBACK"):  # SQLite's own transaction statements
            seen.append(" ".join(statement.split())[:200])

    event.listen(db.engine, "before_cursor_execute", record)
    return seen


def test_statements_of_the_inbox_task_page_and_completion(env, app) -> None:  # type: ignore[no-untyped-def]
    for n in range(3):
        env.start(business_key=f"LAP-{n}")
    client = app.test_client()
    login(client, "kasubag")
    # Warm the per-process caches (units, definitions, specs, forms) on another task, as a running server has.
    warm = TASK_LINK.findall(client.get("/").get_data(as_text=True))
    assert client.get(f"/tugas/{warm[-1]}").status_code == 200
    seen = _counting(env.db)

    page = client.get("/").get_data(as_text=True)
    # The signed-in user with roles, substitutions and the bell; the inbox page with its rows; the bounded count.
    assert len(seen) == 3, seen
    task_id = TASK_LINK.search(page).group(1)  # type: ignore[union-attr]

    seen.clear()
    assert client.get(f"/tugas/{task_id}").status_code == 200
    # The user; the task row with its instance and the previous round's data; the documents (files, comments).
    assert len(seen) == 3, seen

    seen.clear()
    assert client.post(f"/tugas/{task_id}", data=GOOD).status_code == 302
    # The user; the task with its instance; the instance saved; the task rows read, completed and the next
    # one inserted; the audit event.
    assert len(seen) == 7, seen
