"""schemathesis over /engine-rest/openapi.json against the in-process WSGI app: no input gives a 5xx.
Bounded (ALUR_FUZZ_EXAMPLES examples per operation, default 8) so it runs in CI in well under a minute."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.rest.conftest import Rest, basic

EXAMPLES = int(os.environ.get("ALUR_FUZZ_EXAMPLES", "8"))


@pytest.fixture
def fuzz_app(rest: Rest) -> Rest:
    assert rest.deploy().status_code == 200
    r = rest.post("/process-definition/key/web_flow/start", "kasubag", json={"businessKey": "FUZZ"})
    assert r.status_code == 200
    return rest


def test_openapi_document_is_served_and_valid(fuzz_app: Rest) -> None:
    doc = fuzz_app.client.get("/engine-rest/openapi.json").json
    assert doc["openapi"].startswith("3.") and "/deployment/create" in doc["paths"]
    assert "/task/{id}/complete" in doc["paths"]


def test_no_server_errors(fuzz_app: Rest) -> None:
    # schemathesis' pytest plugin (from_fixture) does not run under pytest 9: drive hypothesis directly.
    schema = schemathesis.openapi.from_wsgi("/engine-rest/openapi.json", fuzz_app.app)
    headers = basic("admin")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} -> {response.status_code}: "
                                f"{response.text[:300]}")

        run()
    assert operations >= 35
    assert not failures, "\n".join(failures[:20])
