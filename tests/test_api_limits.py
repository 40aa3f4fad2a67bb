"""The API's guards on request bodies, against a real uvicorn: the token is checked
before a body is read, and a body over TOKENBUDGET_MAX_BODY_BYTES is refused with 413
while it streams in, so no request can make the server hold more than the limit."""

import json

import httpx
import pytest

from budget.api import create_app
from budget.model import Attribute, Client, Tier
from budget.service import BudgetService
from tests.support.api_server import (ADMIN_TOKEN, AS_ADMIN, AS_VIEWER, TOKENS, peak_rss_mb,
                                      serve_app, serve_process)
from tests.support.factories import ADMIN, make_service, words

BIG = 64 * 2**20  # bytes: 64 MiB, far over the 1 MiB default and cheap to send
CHUNK = b"x" * 2**20


def one_client(svc: BudgetService) -> BudgetService:
    svc.load_data_set(ADMIN, [Tier(1, "Basic", 100)], [Client("A", "Alpha", 1)],
                      [Attribute("a1", "A", "Size", True, words(40), "", "")])
    return svc


def chunks(total: int = BIG):
    """A body sent as it is produced: chunked transfer, no Content-Length."""
    for _ in range(total // len(CHUNK)):
        yield CHUNK


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`make api`'s server in a process of its own, so its memory is its own."""
    tmp = tmp_path_factory.mktemp("api-limits")
    one_client(make_service(tmp / "api.db"))
    env = {"TOKENBUDGET_STORE": f"sqlite:///{tmp / 'api.db'}",
           "TOKENBUDGET_API_TOKENS": ",".join(f"{t}:{r}" for t, r in TOKENS.items())}
    with serve_process(env, str(tmp)) as (client, pid):
        yield client, pid


def big_post(client: httpx.Client, headers: dict, with_length: bool) -> httpx.Response:
    if with_length:
        headers = {**headers, "Content-Length": str(BIG), "Content-Type": "application/json"}
    else:
        headers = {**headers, "Content-Type": "application/json"}
    return client.post("/api/attributes/a1/validate-budget", content=chunks(), headers=headers)


@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize("who", ["no token", "unknown token", "valid token"])
def test_a_big_post_is_refused_without_the_server_holding_it(server, who, with_length):
    client, pid = server
    headers = {"no token": {}, "unknown token": {"Authorization": "Bearer nope"},
               "valid token": AS_VIEWER}[who]
    assert client.post("/api/attributes/a1/validate-budget", json={"active": False},
                       headers=AS_VIEWER).status_code == 200  # warm: imports, store, tokenizer
    before = peak_rss_mb(pid)
    r = big_post(client, headers, with_length)
    after = peak_rss_mb(pid)
    print(f"\n{who}, {'Content-Length' if with_length else 'chunked'}: {BIG / 2**20:.0f} MiB "
          f"POST -> {r.status_code}; server peak RSS {before:.1f} -> {after:.1f} MB")
    if who == "valid token":
        assert r.status_code == 413, r.text
        assert r.json() == {"error": "too_large", "message": "the request body is over the "
                            "limit of 1,048,576 bytes (TOKENBUDGET_MAX_BODY_BYTES)"}
    else:
        assert r.status_code == 401, r.text
        assert r.json()["error"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
    assert after - before < 16, f"the server grew by {after - before:.0f} MB"
    # the server still answers, on a new connection
    assert client.get("/api/token-usage", headers=AS_ADMIN).status_code == 200


def test_the_limit_is_a_setting_and_a_body_within_it_passes(tmp_path):
    svc = one_client(make_service(tmp_path / "s.db", names={"TOKENBUDGET_MAX_BODY_BYTES": "40"}))
    with serve_app(create_app(svc, TOKENS)) as api:
        small_body = {"active": False}
        assert len(json.dumps(small_body)) <= 40
        ok = api.post("/api/attributes/a1/validate-budget", json=small_body, headers=AS_VIEWER)
        assert ok.status_code == 200, ok.text
        big_body = {"fields": {"Instructions": "lead " * 20}}
        for content in (json.dumps(big_body).encode(), iter([json.dumps(big_body).encode()])):
            r = api.post("/api/attributes/a1/validate-budget", content=content,
                         headers={**AS_VIEWER, "Content-Type": "application/json"})
            assert r.status_code == 413, r.text
            assert r.json() == {"error": "too_large", "message": "the request body is over "
                                "the limit of 40 bytes (TOKENBUDGET_MAX_BODY_BYTES)"}
        # the token is still checked first, and a read with no body is not limited
        assert api.post("/api/attributes/a1/validate-budget", content=b"x" * 100,
                        headers={"Content-Type": "application/json"}).status_code == 401
        assert api.get("/api/token-usage", headers={
            "Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
