"""The HTTP API over real HTTP: uvicorn on a loopback port, a SQLite file behind it."""

import json
import logging
import sqlite3
import threading

import httpx
import pytest

from budget import cli
from budget.api import from_settings
from budget.model import Attribute, BadInput, Change, Client, Tier
from budget.service import BudgetService
from budget.settings import Settings
from tests.support.api_server import (
    ADMIN_TOKEN,
    AS_ADMIN,
    AS_VIEWER,
    TOKENS,
    VIEWER_TOKEN,
    serve,
    serve_app,
)
from tests.support.factories import ADMIN, STORES, words

VALIDATION_KEYS = {"allowed", "current", "projected", "budget", "delta", "over_by"}


@pytest.fixture
def api(small):
    with serve(small) as client:
        yield client


def dump(svc) -> list[str]:
    """Every row of every table: what "nothing written" compares."""
    with sqlite3.connect(svc.store.path) as conn:
        return list(conn.iterdump())


def state(svc) -> tuple:
    """What the stores hold that a write would change, read through the service (works
    on SQLite and Airtable alike)."""
    return ([(c.id, c.token_usage, c.version) for c in svc.store.clients()],
            [(a.id, a.active, a.version, a.instructions) for a in svc.store.attributes()],
            len(svc.audit()))


def cli_json(svc, capsys, *args) -> tuple[int, object]:
    """`tokenbudget --store ... ARGS --json` in this process: (exit code, parsed stdout)."""
    capsys.readouterr()
    code = cli.main(["--store", f"sqlite:///{svc.store.path}", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def assert_bad_input(r: httpx.Response, record: str, field: str) -> dict:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "bad_input"
    assert {"record": record, "field": field} in [
        {"record": p["record"], "field": p["field"]} for p in body["problems"]], body
    assert f"{record}: {field}: " in body["message"]
    return body


# reads ---------------------------------------------------------------------------------
def test_healthz_and_openapi_document(api, small):
    assert api.get("/healthz").json() == {"status": "ok"}  # no token needed
    spec = api.get("/openapi.json").json()
    assert set(spec["paths"]) == {
        "/healthz", "/api/token-usage", "/api/attributes/{attribute_id}",
        "/api/attributes/{attribute_id}/validate-budget", "/api/attributes/bulk-activate",
        "/api/clients/{client_id}/reset", "/api/clients/{client_id}/service-level"}
    schemas = spec["components"]["schemas"]
    text = schemas["FieldTexts"]["properties"]["Instructions"]["anyOf"][0]
    assert text == {"type": "string", "maxLength": small.settings.max_text_chars}
    assert schemas["FieldTexts"]["additionalProperties"] is False
    assert set(schemas["ValidationOut"]["required"]) == VALIDATION_KEYS
    patch = spec["paths"]["/api/attributes/{attribute_id}"]["patch"]
    assert {"200", "401", "403", "409", "422"} <= set(patch["responses"])
    assert patch["security"] == [{"HTTPBearer": []}]


def test_token_usage_has_the_cli_keys_and_figures(api, small, capsys):
    every = api.get("/api/token-usage", headers=AS_VIEWER)
    assert every.status_code == 200
    assert every.json() == cli_json(small, capsys, "usage")[1]
    one = api.get("/api/token-usage", params={"client_id": "A"}, headers=AS_VIEWER).json()
    assert one == [{"client_id": "A", "name": "Alpha", "service_level": 1, "budget": 100,
                    "usage": 80, "remaining": 20, "percent_used": 80, "status": "warning",
                    "budget_reset_date": "2026-12-01"}]
    assert one == cli_json(small, capsys, "usage", "--client", "A")[1]


def test_attribute_lookup_gives_client_version_and_tokens(api):
    r = api.get("/api/attributes/a2", headers=AS_VIEWER)
    assert r.json() == {"id": "a2", "client_id": "A", "name": "Industry", "active": True,
                        "version": 0, "tokens": 40}


# auth ------------------------------------------------------------------------------------
def test_missing_or_unknown_tokens_get_401_json(api):
    for headers in ({}, {"Authorization": "Bearer nope"},
                    {"Authorization": f"Basic {ADMIN_TOKEN}"},
                    {"Authorization": f"Bearer {ADMIN_TOKEN}x"}):
        r = api.get("/api/token-usage", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"] == "unauthorized"


def test_viewer_may_read_and_validate_but_not_write(api, small):
    before = dump(small)
    assert api.post("/api/attributes/a3/validate-budget", json={"active": False},
                    headers=AS_VIEWER).status_code == 200
    writes = [("PATCH", "/api/attributes/a1", {"active": False}),
              ("PATCH", "/api/attributes/nope", {"active": False}),  # 403 before any lookup
              ("POST", "/api/attributes/bulk-activate", {"ids": ["a3"]}),
              ("POST", "/api/clients/A/reset", None),
              ("PUT", "/api/clients/A/service-level", {"service_level": 2})]
    for method, path, body in writes:
        r = api.request(method, path, json=body, headers=AS_VIEWER)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"] == "forbidden" and "viewer" in r.json()["message"]
    assert dump(small) == before


def test_tokens_and_roles_come_from_settings(small, monkeypatch, tmp_path):
    """What `make api` serves: the store and the tokens from the environment."""
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml here
    monkeypatch.setenv("TOKENBUDGET_STORE", f"sqlite:///{small.store.path}")
    monkeypatch.setenv("TOKENBUDGET_API_TOKENS", f" {ADMIN_TOKEN}:admin , a:b:c:viewer ")
    assert ADMIN_TOKEN not in repr(Settings.load())
    with serve_app(from_settings()) as api:
        assert api.get("/api/token-usage", headers=AS_ADMIN).json()[0]["client_id"] == "A"
        viewer = {"Authorization": "Bearer a:b:c"}  # the role follows the last ':'
        assert api.get("/api/token-usage", headers=viewer).status_code == 200
        assert api.post("/api/clients/A/reset", headers=viewer).status_code == 403
        assert api.post("/api/clients/A/reset", headers=AS_ADMIN).status_code == 200


def test_tokens_from_secrets_and_bad_entries_not_echoed(tmp_path, monkeypatch):
    monkeypatch.delenv("TOKENBUDGET_API_TOKENS", raising=False)
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[TOKENBUDGET_API_TOKENS]\n"tok-from-file" = "analyst"\n')
    assert Settings.load(secrets).api_tokens == {"tok-from-file": "analyst"}
    for value, problem in (("s3cr3t-x:superuser", "entry 1: the role"),
                           ("tok-ok:admin,admin:s3cr3t-x", "entry 2: the role"),
                           ("tok-ok:admin,s3cr3t-x", "entry 2: expected TOKEN:ROLE")):
        monkeypatch.setenv("TOKENBUDGET_API_TOKENS", value)
        with pytest.raises(BadInput, match=problem) as e:
            Settings.load(secrets)
        assert e.value.field == "TOKENBUDGET_API_TOKENS" and "s3cr3t" not in str(e.value)


def test_tokens_are_never_echoed_or_logged(small, caplog):
    caplog.set_level(logging.DEBUG)
    bodies = []
    with serve(small) as api:
        for token in (ADMIN_TOKEN, VIEWER_TOKEN, ADMIN_TOKEN + "x", ADMIN_TOKEN[:-1]):
            for method, path in (("GET", "/api/token-usage"), ("POST", "/api/clients/A/reset"),
                                 ("PATCH", "/api/attributes/nope")):
                r = api.request(method, path, headers={"Authorization": f"Bearer {token}"},
                                json={"active": True})
                bodies.append(r.text + str(r.headers))
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "/api/token-usage" in logged  # the access log was captured
    for token in TOKENS:
        assert token[:-1] not in logged and all(token[:-1] not in b for b in bodies)
    assert [e.actor for e in small.audit("A")][-1] == "api token 1"  # the reset, by position


# validation and saving -----------------------------------------------------------------------
def test_validate_budget_gives_the_numbers_and_writes_nothing(api, small):
    before = dump(small)
    r = api.post("/api/attributes/a3/validate-budget", json={"active": True}, headers=AS_VIEWER)
    assert r.json() == {"allowed": False, "current": 80, "projected": 105, "budget": 100,
                        "delta": 25, "over_by": 5}
    r = api.post("/api/attributes/a1/validate-budget",
                 json={"fields": {"Instructions": words(35), "Signals": None}}, headers=AS_VIEWER)
    assert r.json() == {"allowed": True, "current": 80, "projected": 75, "budget": 100,
                        "delta": -5, "over_by": 0}
    assert dump(small) == before


def test_patch_saves_only_when_allowed(api, small):
    before = dump(small)
    r = api.patch("/api/attributes/a3", json={"active": True}, headers=AS_ADMIN)
    assert r.status_code == 409
    body = r.json()
    assert body["error"] == "over_budget"
    assert {k: body[k] for k in VALIDATION_KEYS} == {
        "allowed": False, "current": 80, "projected": 105, "budget": 100, "delta": 25,
        "over_by": 5}
    assert "105 of 100 tokens (5 over budget)" in body["message"]
    assert dump(small) == before

    r = api.patch("/api/attributes/a3", json={"fields": {"Instructions": words(20)}},
                  headers=AS_ADMIN)  # editing an inactive attribute: usage unchanged
    assert r.status_code == 200 and r.json()["projected"] == 80 and r.json()["version"] == 1
    r = api.patch("/api/attributes/a3", json={"active": True, "version": 1}, headers=AS_ADMIN)
    assert r.status_code == 200, r.text
    assert (r.json()["projected"], r.json()["version"]) == (100, 2)
    assert small.client_usage("A").usage == 100 and small.client("A").token_usage == 100
    last = small.audit("A")[-1]
    assert (last.actor, last.action, last.after["a3"]["active"]) == (
        "api token 1", "attribute.activate", True)


def test_patch_with_an_old_version_is_refused_as_stale(api, small):
    api.patch("/api/attributes/a1", json={"fields": {"Examples": "x"}}, headers=AS_ADMIN)
    before = dump(small)
    r = api.patch("/api/attributes/a1", json={"active": False, "version": 0}, headers=AS_ADMIN)
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    assert "attribute a1 changed" in r.json()["message"]
    assert dump(small) == before


@pytest.mark.parametrize("store_factory", STORES, indirect=True)
def test_bulk_activate_is_all_or_nothing_across_clients(api, small):
    for aid in ("a2", "b1"):
        api.patch(f"/api/attributes/{aid}", json={"active": False}, headers=AS_ADMIN)
    small.apply(ADMIN, Change("A", fields={"a3": {"Instructions": words(45)}}))
    before = state(small)
    r = api.post("/api/attributes/bulk-activate", json={"ids": ["a3", "a2", "b1"]},
                 headers=AS_ADMIN)  # A: 40 + 40 + 45 = 125 > 100; B alone would fit
    assert r.status_code == 409 and r.json()["error"] == "over_budget"
    assert r.json()["allowed"] is False
    clients = {c["client_id"]: c for c in r.json()["clients"]}
    assert (clients["A"]["allowed"], clients["A"]["projected"], clients["A"]["over_by"]) == (
        False, 125, 25)
    assert (clients["B"]["allowed"], clients["B"]["projected"]) == (True, 150)
    assert state(small) == before  # not even B's activation was saved

    r = api.post("/api/attributes/bulk-activate", json={"ids": ["a3", "b1", "a3"]},
                 headers=AS_ADMIN)
    assert r.status_code == 200, r.text
    assert {c["client_id"]: c["projected"] for c in r.json()["clients"]} == {"A": 85, "B": 150}
    assert small.client_usage("A").usage == 85 and small.client_usage("B").usage == 150


# admin actions ------------------------------------------------------------------------------
def test_reset_and_service_level(api, small):
    r = api.post("/api/clients/A/reset", headers=AS_ADMIN)
    assert r.status_code == 200
    assert r.json()["changed"] is True and r.json()["budget_reset_date"] == "2026-12-01"
    assert api.post("/api/clients/A/reset", headers=AS_ADMIN).json()["changed"] is False

    r = api.put("/api/clients/A/service-level", json={"service_level": 2}, headers=AS_ADMIN)
    assert r.status_code == 200
    assert (r.json()["service_level"], r.json()["budget"], r.json()["status"]) == (2, 200, "ok")
    assert small.client("A").service_level == 2
    assert small.audit("A")[-1].action == "service_level"
    version = small.client("A").version
    r = api.put("/api/clients/A/service-level",
                json={"service_level": 1, "expected_version": version - 1}, headers=AS_ADMIN)
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    assert small.client("A").service_level == 2


# bad input ----------------------------------------------------------------------------------
def test_unknown_records_get_422_naming_record_and_field(api, small):
    before = dump(small)
    assert_bad_input(api.get("/api/token-usage", params={"client_id": "Z"}, headers=AS_VIEWER),
                     "client Z", "id")
    assert_bad_input(api.get("/api/attributes/zz", headers=AS_VIEWER), "attribute zz", "id")
    assert_bad_input(api.post("/api/attributes/zz/validate-budget", json={"active": True},
                              headers=AS_VIEWER), "attribute zz", "id")
    assert_bad_input(api.patch("/api/attributes/zz", json={"active": True}, headers=AS_ADMIN),
                     "attribute zz", "id")
    assert_bad_input(api.post("/api/attributes/bulk-activate", json={"ids": ["a3", "zz"]},
                              headers=AS_ADMIN), "attribute zz", "id")
    assert_bad_input(api.post("/api/clients/Z/reset", headers=AS_ADMIN), "client Z", "id")
    assert_bad_input(api.put("/api/clients/Z/service-level", json={"service_level": 2},
                             headers=AS_ADMIN), "client Z", "id")
    assert dump(small) == before


def test_bad_numbers_and_bodies_get_422(api, small):
    before = dump(small)
    for level in (-1, 0, 1.5, "2", True, None):
        assert_bad_input(api.put("/api/clients/A/service-level", json={"service_level": level},
                                 headers=AS_ADMIN), "client A", "service_level")
    body = assert_bad_input(api.put("/api/clients/A/service-level", json={"service_level": 7},
                                    headers=AS_ADMIN), "client A", "Service Level")
    assert "not in the tier table" in body["message"]
    for version in (-1, 2.5):
        assert_bad_input(api.patch("/api/attributes/a1", json={"active": False,
                                                               "version": version},
                                   headers=AS_ADMIN), "attribute a1", "version")
    assert_bad_input(api.patch("/api/attributes/a1", json={"active": "yes"}, headers=AS_ADMIN),
                     "attribute a1", "active")
    assert_bad_input(api.patch("/api/attributes/a1", json={"fields": {"Notes": "x"}},
                               headers=AS_ADMIN), "attribute a1", "fields.Notes")
    assert_bad_input(api.patch("/api/attributes/a1", json={"fields": {"Signals": 5}},
                               headers=AS_ADMIN), "attribute a1", "fields.Signals")
    assert_bad_input(api.patch("/api/attributes/a1", json={}, headers=AS_ADMIN),
                     "attribute a1", "change")
    assert_bad_input(api.patch("/api/attributes/a1", content=b"{not json",
                               headers={**AS_ADMIN, "Content-Type": "application/json"}),
                     "attribute a1", "body")
    assert_bad_input(api.post("/api/attributes/bulk-activate", json={"ids": []},
                              headers=AS_ADMIN), "request", "ids")
    assert_bad_input(api.post("/api/attributes/bulk-activate", json={"ids": ["a3", 4]},
                              headers=AS_ADMIN), "request", "ids[1]")
    assert dump(small) == before


def test_text_over_the_configured_maximum_gets_422(small):
    limited = BudgetService(small.store, small.settings.model_copy(update={"max_text_chars": 50}),
                            small.clock)
    before = dump(small)
    with serve(limited) as api:
        spec = api.get("/openapi.json").json()["components"]["schemas"]["FieldTexts"]
        assert spec["properties"]["Examples"]["anyOf"][0]["maxLength"] == 50
        body = assert_bad_input(api.patch("/api/attributes/a1", json={
            "active": True, "fields": {"Examples": "x" * 51}}, headers=AS_ADMIN),
            "attribute a1", "fields.Examples")
        assert "51 characters is over the limit of 50" in body["message"]
        r = api.post("/api/attributes/a1/validate-budget",
                     json={"fields": {"Examples": "x" * 50}}, headers=AS_VIEWER)
        assert r.status_code == 200
    assert dump(small) == before


# the same service behind every door ------------------------------------------------------------
@pytest.mark.parametrize("attribute_id, body, cli_args", [
    ("a3", {"active": True}, ["--activate"]),
    ("a2", {"active": False}, ["--deactivate"]),
    ("a1", {"fields": {"Instructions": words(55), "Signals": "lead lead"}},
     ["--set", f"Instructions={words(55)}", "--set", "Signals=lead lead"]),
    ("a3", {"active": True, "fields": {"Examples": words(3)}},
     ["--activate", "--set", f"Examples={words(3)}"]),
    ("b1", {"fields": {"Examples": "lead " * 60}}, ["--set", "Examples=" + "lead " * 60]),
])
def test_api_cli_and_service_give_identical_numbers(api, small, capsys, attribute_id, body,
                                                    cli_args):
    a = small.attributes_by_id([attribute_id])[attribute_id]
    change = Change(a.client_id, {a.id: body["fields"]} if "fields" in body else {},
                    {a.id: body["active"]} if "active" in body else {})
    by_service = small.validate(change).as_dict()
    by_api = api.post(f"/api/attributes/{attribute_id}/validate-budget", json=body,
                      headers=AS_VIEWER).json()
    code, by_cli = cli_json(small, capsys, "validate", a.client_id, attribute_id, *cli_args)
    assert by_api == by_cli == by_service
    assert code == (0 if by_service["allowed"] else 1)


def test_the_dashboard_previews_the_same_numbers(api, small, monkeypatch):
    """The client page's live preview of a change says what the API answers for it."""
    import streamlit as st

    from budget import views
    from tests.support.apptest import live_boxes, run_app, text_of

    monkeypatch.setenv("TOKENBUDGET_STORE", f"sqlite:///{small.store.path}")
    for attribute_id, body in (("a3", {"active": True}),
                               ("a1", {"fields": {"Instructions": words(12)}})):
        st.cache_data.clear()
        st.cache_resource.clear()
        at = run_app("app_pages/client.py", client="A")
        at.selectbox(key="edit_attr").select(attribute_id).run()
        if "active" in body:
            at.toggle[0].set_value(body["active"]).run()
        else:
            live_boxes(at)[0].input(body["fields"]["Instructions"]).run()
        assert not at.exception, at.exception
        by_api = api.post(f"/api/attributes/{attribute_id}/validate-budget", json=body,
                          headers=AS_VIEWER).json()
        metrics = {m.label: m.value for m in at.metric}
        assert (metrics["Usage"], metrics["Budget"], metrics["Remaining after"]) == (
            f"{by_api['projected']:,}", f"{by_api['budget']:,}",
            views.remaining_text(by_api['budget'] - by_api['projected']))  # "over by 5"
        assert (f"{by_api['current']:,} → {by_api['projected']:,} tokens "
                f"(delta {by_api['delta']:+,})") in text_of(at)


# concurrency ------------------------------------------------------------------------------------
@pytest.mark.parametrize("store_factory", STORES, indirect=True)
def test_concurrent_patches_cannot_together_exceed_the_budget(small):
    """Ten admins activate ten 20-token attributes of one 100-token client at once:
    exactly five fit, and the rest are refused with the numbers."""
    attrs = [Attribute(f"c{i}", "C", f"Signal {i}", False, words(20)) for i in range(10)]
    small.load_data_set(ADMIN, [Tier(1, "Basic", 100)], [Client("C", "Gamma", 1)], attrs)
    barrier = threading.Barrier(len(attrs))
    results: dict[str, httpx.Response] = {}

    with serve(small) as api:
        def activate(aid: str) -> None:
            barrier.wait()
            results[aid] = api.patch(f"/api/attributes/{aid}", json={"active": True},
                                     headers=AS_ADMIN)

        threads = [threading.Thread(target=activate, args=(a.id,)) for a in attrs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        usage = api.get("/api/token-usage", params={"client_id": "C"}, headers=AS_VIEWER).json()

    codes = sorted(r.status_code for r in results.values())
    assert codes == [200] * 5 + [409] * 5
    assert all(r.json()["over_by"] == 20 for r in results.values() if r.status_code == 409)
    assert usage[0]["usage"] == 100 and small.client("C").token_usage == 100
    assert sum(a.active for a in small.attributes("C")) == 5
