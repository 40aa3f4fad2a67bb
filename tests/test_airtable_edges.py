"""The Airtable store at its edges, against the loopback Airtable over real HTTP:
duplicate ids, answers that are not Airtable's JSON, writes whose answer is lost or
whose process dies, a bad record inside a batch, and the 429 penalty under load."""

from __future__ import annotations

import pytest

from budget import cli
from budget.model import Change
from budget.service import BudgetService
from budget.settings import Settings
from budget.stores.airtable import AirtableStore
from tests.support.airtable_server import FakeAirtable, standard_base
from tests.support.api_server import AS_ADMIN, AS_VIEWER, serve
from tests.support.factories import ADMIN, Clock, airtable_config, env_for

IDS = {"AIRTABLE_CLIENT_ID_FIELD": "Client ID", "AIRTABLE_ATTRIBUTE_ID_FIELD": "Attribute ID"}
TEXT = "Score leads from the northern region by company size and recent funding. " * 4


@pytest.fixture
def base():
    server = standard_base(FakeAirtable(), id_fields=True)
    server.start()
    yield server
    server.stop()


def service(server: FakeAirtable, tmp_path, **overrides: str) -> BudgetService:
    store = AirtableStore(airtable_config(server, tmp_path / "sidecar.db", **IDS, **overrides))
    return BudgetService(store, Settings(store="airtable"), Clock())


def client_with_attribute(server: FakeAirtable, cid: str, text: str = TEXT,
                          aid: str | None = None, name: str | None = None) -> str:
    rid = server.put("Clients", {"Client ID": cid, "Client Name": name or f"Client {cid}",
                                 "Service Level": 1, "Budget Reset Date": "2026-11-01"})
    server.put("Scoring Attributes", {"Attribute ID": aid or f"{cid}-A", "Name": "Region",
                                      "Active": True, "Client": [rid], "Instructions": text})
    return rid


# duplicate ids ----------------------------------------------------------------------------
@pytest.fixture
def duplicated(base):
    """C001 twice (the copy made by duplicating a row in Airtable), C002 healthy."""
    first = client_with_attribute(base, "C001", aid="A1")
    copy = client_with_attribute(base, "C001", aid="A1-copy", name="Client C001 (copy)")
    healthy = client_with_attribute(base, "C002")
    base.reset_log()
    return first, copy, healthy


def test_a_duplicate_client_id_is_refused_for_every_read_and_write_in_the_cli(
        base, duplicated, tmp_path, monkeypatch, capsys):
    first, copy, _ = duplicated
    env_for(base, tmp_path, monkeypatch, **IDS)
    before = base.records("Clients")
    for argv in (["usage", "--client", "C001"], ["attributes", "C001"],
                 ["apply", "C001", "A1", "--set", "Signals=" + "more words " * 20],
                 ["validate", "C001", "A1", "--activate"], ["reset", "C001"],
                 ["set-tier", "C001", "2"], ["set-budget", "C001", "9000"]):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert first in err and copy in err and "'Clients'" in err and "Client ID" in err
        assert "duplicate id 'C001'" in err
    assert base.records("Clients") == before
    # the other client still works, and every listing names the duplicate
    assert cli.main(["usage"]) == 0
    out, err = capsys.readouterr()
    assert "C002" in out and "C001" not in out
    assert first in err and copy in err
    assert cli.main(["reset", "--all"]) == 0
    out, err = capsys.readouterr()
    assert "Client C002 reset" in out and first in err and copy in err
    after = {r["id"]: r["fields"] for r in base.records("Clients")}
    assert "Token Usage" not in after[first] and "Token Usage" not in after[copy]
    assert after[first]["Budget Reset Date"] == after[copy]["Budget Reset Date"] == "2026-11-01"
    assert cli.main(["--strict", "usage"]) == 2


def test_a_duplicate_client_id_is_422_in_the_api_and_the_others_answer(
        base, duplicated, tmp_path):
    first, copy, _ = duplicated
    svc = service(base, tmp_path)
    with serve(svc) as api:
        r = api.get("/api/token-usage", params={"client_id": "C001"}, headers=AS_VIEWER)
        assert r.status_code == 422 and first in r.text and copy in r.text
        r = api.post("/api/clients/C001/reset", headers=AS_ADMIN)
        assert r.status_code == 422 and "duplicate id 'C001'" in r.text
        r = api.patch("/api/attributes/A1", json={"fields": {"Signals": "x " * 50}},
                      headers=AS_ADMIN)
        assert r.status_code == 422 and first in r.text
        r = api.get("/api/token-usage", headers=AS_VIEWER)
        assert r.status_code == 200 and [u["client_id"] for u in r.json()] == ["C002"]
        assert api.post("/api/clients/C002/reset", headers=AS_ADMIN).status_code == 200


def test_apply_cannot_pass_the_budget_through_a_duplicate(base, duplicated, tmp_path):
    """The reproduction: validated against one record, summed over both."""
    svc = service(base, tmp_path)
    with pytest.raises(Exception, match="duplicate id 'C001'"):
        svc.apply(ADMIN, Change("C001", fields={"A1": {"Signals": "word " * 2500}}))
    assert {a["fields"].get("Signals") for a in base.records("Scoring Attributes")} == {None}
    assert svc.audit() == []


def test_a_duplicate_attribute_id_is_refused_and_named(base, tmp_path):
    rid = client_with_attribute(base, "C003", aid="A9")
    twin = base.put("Scoring Attributes", {"Attribute ID": "A9", "Name": "Twin",
                                           "Active": True, "Client": [rid],
                                           "Instructions": "Short."})
    (orig,) = [r["id"] for r in base.records("Scoring Attributes") if r["id"] != twin]
    svc = service(base, tmp_path)
    with pytest.raises(Exception, match="duplicate id 'A9'") as err:
        svc.apply(ADMIN, Change("C003", fields={"A9": {"Signals": "more"}}))
    assert orig in str(err.value) and twin in str(err.value)
    assert "'Scoring Attributes'" in str(err.value) and "Attribute ID" in str(err.value)
    svc.usage_report()
    assert any(orig in w and twin in w for w in svc.store_warnings)


# answers that are not Airtable's JSON -------------------------------------------------------
@pytest.mark.parametrize("answer", ["cut", "html", "shape"])
def test_a_garbled_answer_is_retried_then_a_store_error_naming_the_table(
        base, tmp_path, monkeypatch, capsys, answer):
    client_with_attribute(base, "C001")
    env_for(base, tmp_path, monkeypatch, **IDS, AIRTABLE_RETRIES="2")
    base.fail(200, answer=answer, kind="list", table="Clients", times=2)
    assert cli.main(["usage"]) == 0, capsys.readouterr().err  # retried: a GET is idempotent
    assert "C001" in capsys.readouterr().out
    base.fail(200, answer=answer, kind="list", table="Clients", times=99)
    assert cli.main(["usage"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Airtable table 'Clients'" in err, err
    assert "not Airtable's JSON" in err
    with serve(service(base, tmp_path, AIRTABLE_RETRIES="1")) as api:
        r = api.get("/api/token-usage", headers=AS_VIEWER)
        assert r.status_code == 503 and "Retry-After" in r.headers
        assert "Airtable table 'Clients'" in r.json()["message"]
