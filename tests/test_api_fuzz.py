"""Property-based run against the served OpenAPI document (schemathesis): whatever the
generated request, the answer is never a 5xx and always matches the document."""

import sqlite3

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.api_server import AS_ADMIN, serve
from tests.support.factories import make_service

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
EXAMPLES = 40  # per operation: the whole run takes seconds, not minutes


@pytest.fixture(scope="module")
def served(demo_db, tmp_path_factory):
    """The demo data behind a live server; yields (service, base URL)."""
    path = tmp_path_factory.mktemp("fuzz") / "demo.db"
    with sqlite3.connect(demo_db) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    svc = make_service(path)
    with serve(svc) as client:
        yield svc, str(client.base_url)


@pytest.fixture(scope="module")
def api_schema(served):
    svc, url = served
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    attribute_ids = sorted(a.id for a in svc.store.attributes())
    client_ids = sorted(c.id for c in svc.store.clients())

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        """Mostly real ids, so the generated bodies reach the budget checks."""
        real = {"attribute_id": attribute_ids, "client_id": client_ids}
        if not path_parameters:
            return st.just(path_parameters)
        return st.fixed_dictionaries({
            k: st.sampled_from(real[k]) | st.just(v) if k in real else st.just(v)
            for k, v in path_parameters.items()})

    @schema.hook
    def flatmap_body(context, body):
        """As generated, or (as often) made to reach the save: real ids for a bulk
        activation; a flag, and no random version, for a change."""
        if isinstance(body, dict) and isinstance(body.get("ids"), list):
            real = st.lists(st.sampled_from(attribute_ids), min_size=1, max_size=6)
            return st.builds(lambda ids: {**body, "ids": ids}, real) | st.just(body)
        if isinstance(body, dict) and "service_level" not in body:  # a change body
            rest = {k: v for k, v in body.items() if k != "version"}
            return st.builds(lambda on: {**rest, "active": on}, st.booleans()) | st.just(body)
        return st.just(body)

    return schema


OPERATIONS = ["GET /healthz", "GET /api/token-usage", "GET /api/attributes/{attribute_id}",
              "POST /api/attributes/{attribute_id}/validate-budget",
              "PATCH /api/attributes/{attribute_id}", "POST /api/attributes/bulk-activate",
              "POST /api/clients/{client_id}/reset", "PUT /api/clients/{client_id}/service-level"]


def test_every_operation_is_fuzzed(api_schema):
    assert sorted(r.ok().label for r in api_schema.get_all_operations()) == sorted(OPERATIONS)


# schemathesis' own pytest loader (`schemathesis.pytest.from_fixture`) needs pytest's
# pre-9.2 node internals, so each operation's strategy is driven by Hypothesis directly
@pytest.mark.parametrize("label", OPERATIONS)
def test_no_server_errors_and_responses_match_the_document(api_schema, served, label):
    operation = api_schema.find_operation_by_label(label)
    seen: list[int] = []

    @given(case=operation.as_strategy(hooks=api_schema.hooks))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call_and_validate(base_url=served[1], headers=AS_ADMIN, checks=CHECKS)
        seen.append(response.status_code)

    check()
    print(f"{label}: {len(seen)} requests, statuses {sorted(set(seen))}")
    assert 200 in seen and max(seen) < 500  # the generated requests reached the service
