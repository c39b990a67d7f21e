"""schemathesis against the API's own OpenAPI schema: generated requests to every operation, as
an admin, never get a 5xx and every answer matches the schema (status, content type, body).

Bounded: a few examples per operation (the whole module runs in seconds); longer fuzzing is a
matter of raising ``EXAMPLES``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi import checks as oa_checks

from tests.api_support import (
    Api,
    add_users,
    cheap_argon2,  # noqa: F401  (autouse fixture)
    make_api,
    open_db,
    store_demo,
)

EXAMPLES = 6


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Api]:
    request.getfixturevalue("cheap_argon2")
    db, url, _ = open_db("sqlite", tmp_path_factory.mktemp("schema"))
    add_users(db)
    store_demo(db, seconds=10, seed=1)
    a = make_api(db, url, login_per_ip=100_000, login_per_user=100_000)
    with a.client:
        yield a
    db.dispose()


def _operations(api: Api) -> list[Any]:
    loaded = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    return [r.ok() for r in loaded.get_all_operations()]


CHECKS = [
    schemathesis.checks.not_a_server_error,
    oa_checks.status_code_conformance,
    oa_checks.content_type_conformance,
    oa_checks.response_schema_conformance,
    oa_checks.response_headers_conformance,
]


def test_every_operation_answers_by_its_schema(api: Api) -> None:
    headers = api.auth()
    ops = [op for op in _operations(api) if op.path != "/api/logout"]  # logout would revoke the token used
    assert len(ops) >= 20, [op.label for op in ops]
    calls: dict[str, int] = {}

    for op in ops:
        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)
            calls[case.operation.label] = calls.get(case.operation.label, 0) + 1

        check()
    assert set(calls) == {op.label for op in ops}  # every operation was called
