"""The Airtable store against the loopback Airtable (real HTTP through pyairtable):
paging, batching, pacing, retries, faults, partial writes, bad records, schema."""

from __future__ import annotations

import json
import time
import traceback

import pytest
from pyairtable import Api

from budget import cli
from budget.model import Change, Client, Tier
from budget.service import BudgetService
from budget.settings import Settings
from budget.stores.airtable import AirtableStore, PartialWrite
from budget.stores.base import StoreError
from tests.support.airtable_server import API_KEY, FakeAirtable, standard_base
from tests.support.factories import ADMIN, Clock, airtable_config, env_for

FIELDS_OF_CLIENTS = {"Client Name", "Service Level", "Token Budget", "Token Usage",
                     "Budget Reset Date", "Last Token Update", "Email", "Account Manager",
                     "Scoring Attributes"}


@pytest.fixture
def base():
    server = standard_base(FakeAirtable())
    server.start()
    yield server
    server.stop()


def fill(server: FakeAirtable, clients: int, attributes_each: int = 1) -> list[str]:
    """Puts clients (level 1, usage 0, reset date in the past) and their attributes
    straight into the fake base; returns the client record ids."""
    rids = []
    for i in range(clients):
        rid = server.put("Clients", {"Client Name": f"Client {i:03d}", "Service Level": 1,
                                     "Token Usage": 0, "Budget Reset Date": "2026-11-01",
                                     "Email": f"c{i}@example.com"})
        for j in range(attributes_each):
            server.put("Scoring Attributes", {"Name": f"Attr {j}", "Active": True,
                                              "Client": [rid],
                                              "Instructions": f"Score leads from region {i}."})
        rids.append(rid)
    server.reset_log()
    return rids


def service(server: FakeAirtable, tmp_path, **overrides) -> BudgetService:
    store = AirtableStore(airtable_config(server, tmp_path / "sidecar.db", **overrides))
    return BudgetService(store, Settings(store="airtable"), Clock())


def test_250_clients_load_in_3_list_requests_asking_only_needed_fields(base, tmp_path):
    fill(base, 250, attributes_each=0)
    svc = service(base, tmp_path)
    assert len(svc.store.clients()) == 250
    lists = [r for r in base.requests if r.table == "Clients"]
    assert [r.kind for r in lists] == ["list"] * 3
    assert set(lists[0].params["fields[]"]) == FIELDS_OF_CLIENTS


def test_resetting_25_clients_takes_3_update_requests_and_a_rerun_none(base, tmp_path):
    fill(base, 25)
    svc = service(base, tmp_path)
    results = svc.reset_all(ADMIN)
    assert all(r.changed for r in results)
    assert base.count("update", "Clients") == 3
    sizes = [len(r.body["records"]) for r in base.requests if r.kind == "update"]
    assert sizes == [10, 10, 5]
    # only the four token fields that changed were sent
    sent = base.requests[-1].body["records"][0]["fields"]
    assert set(sent) == {"Token Usage", "Last Token Update", "Budget Reset Date"}
    assert all(r["fields"]["Token Usage"] > 0 for r in base.records("Clients"))
    base.reset_log()
    assert not any(r.changed for r in svc.reset_all(ADMIN))
    assert base.count("update") == 0


def test_partial_write_reports_exactly_and_a_rerun_completes_without_doubling(base, tmp_path):
    rids = fill(base, 25)
    svc = service(base, tmp_path)
    base.fail(500, kind="update", after=1, times=99)  # the 2nd batch fails, every retry too
    with pytest.raises(PartialWrite) as err:
        svc.reset_all(ADMIN)
    e = err.value
    assert len(e.written) == 10 and len(e.not_written) == 15
    assert "Written: 10 record(s)" in str(e) and "not written: 15" in str(e)
    stored = {r["id"]: r["fields"].get("Token Usage", 0) for r in base.records("Clients")}
    written = {w.split()[1] for w in e.written}
    assert {rid for rid, u in stored.items() if u > 0} == written
    assert svc.store.last_write.complete is False
    # audit and history only for the clients whose record landed
    assert len(svc.audit()) == 10 and len(svc.history()) == 10
    base.faults.clear()
    again = svc.reset_all(ADMIN)
    assert sum(r.changed for r in again) == 15
    assert len(svc.audit()) == 25 and len(svc.history()) == 25
    assert sorted(e.client_id for e in svc.audit()) == sorted(rids)
    assert all(r["fields"]["Token Usage"] > 0 for r in base.records("Clients"))


def test_429_waits_out_the_penalty_then_succeeds(base, tmp_path):
    fill(base, 5)
    svc = service(base, tmp_path, AIRTABLE_RATE_LIMIT_PENALTY="0.3")
    base.fail(429, kind="list", table="Clients", times=2)
    assert len(svc.store.clients()) == 5
    tries = [r for r in base.requests if r.table == "Clients"]
    assert [r.status for r in tries] == [429, 429, 200]
    # each retry came no sooner than the configured penalty after the 429
    assert tries[1].at - tries[0].at >= 0.3 and tries[2].at - tries[1].at >= 0.3


def test_pacing_spaces_requests(base, tmp_path, monkeypatch):
    """Measured where the request leaves the store, not where the server sees it."""
    sent = []
    real = Api.request

    def timed(self, *args, **kwargs):
        sent.append(time.monotonic())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Api, "request", timed)
    fill(base, 450, attributes_each=0)
    svc = service(base, tmp_path, AIRTABLE_MIN_INTERVAL="0.1")
    start = time.monotonic()
    svc.store.clients()
    assert len(sent) == base.count() == 5
    # request k leaves no sooner than k intervals after the first could have: the
    # schedule holds however late the machine wakes a sleeper
    assert all(at - start >= k * 0.1 for k, at in enumerate(sent))


@pytest.mark.parametrize("status", [500, 503, 0])
def test_idempotent_requests_retried_on_5xx_and_dropped_connections(base, tmp_path, status):
    fill(base, 3)
    svc = service(base, tmp_path)
    base.fail(status, kind="list", table="Clients", times=2)
    assert len(svc.store.clients()) == 3
    base.fail(status, kind="update", times=1)
    assert svc.reset(ADMIN, svc.store.clients()[0].id).changed
    assert base.count("update") == 2


def test_create_is_not_retried_on_5xx(base, tmp_path):
    """A POST that failed may have been applied: repeating it could double records."""
    svc = service(base, tmp_path, AIRTABLE_ALLOW_REPLACE="1")
    base.fail(500, kind="create", times=1)
    with pytest.raises(StoreError, match="partly loaded"):
        svc.load_data_set(ADMIN, [], [Client("x", "X", 1)], [])
    assert base.count("create") == 1


def test_expired_cursor_restarts_the_listing(base, tmp_path):
    fill(base, 250, attributes_each=0)
    svc = service(base, tmp_path)
    base.expire_cursors = 1
    clients = svc.store.clients()
    assert len(clients) == len({c.id for c in clients}) == 250
    assert base.count("list", "Clients") == 2 + 3  # one page, refused cursor, then 3 pages


def test_422_field_error_names_table_and_field_and_nothing_is_saved(base, tmp_path):
    fill(base, 1)
    svc = service(base, tmp_path)
    cid = svc.store.clients()[0].id
    (attr,) = svc.attributes(cid)
    base.fail(422, kind="update", error_type="UNKNOWN_FIELD_NAME",
              message='Unknown field name: "Instructions"')
    with pytest.raises(StoreError) as err:
        svc.apply(ADMIN, Change(cid, fields={attr.id: {"Instructions": "Shorter."}}))
    text = str(err.value)
    assert "'Scoring Attributes'" in text and '"Instructions"' in text
    assert "airtable check" in text
    assert svc.attributes(cid)[0].instructions == attr.instructions
    assert svc.audit() == [] and svc.history() == []


def exposed(e: BaseException) -> str:
    """Everything an exception can show: its text, repr, arguments and whatever it
    chains to (a chained requests error would carry the Authorization header)."""
    out = []
    while e is not None:
        out += [str(e), repr(e), *map(repr, e.args), *traceback.format_exception_only(e)]
        e = e.__cause__ or e.__context__
    return "\n".join(out)


def test_wrong_key_unknown_table_and_network_down_say_so_without_the_key(base, tmp_path):
    fill(base, 1)
    messages = []
    for overrides, expected in (
            ({"AIRTABLE_API_KEY": API_KEY + "x"}, "AIRTABLE_API_KEY"),
            ({"AIRTABLE_CLIENTS_TABLE": "Customers"}, "'Customers'"),
    ):
        svc = service(base, tmp_path, **overrides)
        with pytest.raises(StoreError) as err:
            svc.usage_report()
        assert expected in str(err.value)
        messages.append(exposed(err.value))
    base.forbidden_keys.add("patOTHER.token")
    with pytest.raises(StoreError, match="403") as err:
        service(base, tmp_path, AIRTABLE_API_KEY="patOTHER.token").usage_report()
    messages.append(exposed(err.value))
    base.stop()
    with pytest.raises(StoreError, match="network failure") as err:
        service(base, tmp_path, AIRTABLE_RETRIES="1").usage_report()
    messages.append(exposed(err.value))
    for m in messages:
        assert API_KEY not in m and "patOTHER.token" not in m and "secret-token" not in m


def test_bad_records_are_skipped_with_a_warning_and_the_rest_loads(base, tmp_path):
    good = base.put("Clients", {"Client Name": "Good", "Service Level": 2})
    base.put("Clients", {"Client Name": "No level"})
    base.put("Clients", {"Client Name": "Text level", "Service Level": "gold"})
    base.put("Clients", {"Client Name": "Negative", "Service Level": 1, "Token Budget": -5})
    base.put("Scoring Attributes", {"Name": "Fine", "Active": True, "Client": [good],
                                    "Instructions": "Count me."})
    base.put("Scoring Attributes", {"Name": "Orphan", "Active": True,
                                    "Instructions": "No client."})
    other = base.put("Clients", {"Client Name": "Other", "Service Level": 1})
    base.put("Scoring Attributes", {"Name": "Twice", "Active": True, "Client": [good, other],
                                    "Instructions": "Two clients."})
    svc = service(base, tmp_path)
    report = {u.client.name: u for u in svc.usage_report()}
    assert set(report) == {"Good", "Other"}
    assert report["Good"].usage == svc.counter.count("Count me.") and report["Other"].usage == 0
    warnings = "\n".join(svc.store.warnings)
    assert "(No level): Service Level: missing; record skipped" in warnings
    assert "(Text level): Service Level: not a service level number: 'gold'" in warnings
    assert "(Negative): Token Budget: negative: -5" in warnings
    assert "(Orphan): Client: linked to no client" in warnings
    assert "(Twice): Client: linked to 2 clients" in warnings


def test_formula_text_is_escaped(base, tmp_path):
    """Client ids with quotes and braces reach Airtable as data, not as formula."""
    server = standard_base(FakeAirtable(), id_fields=True)
    server.start()
    try:
        tricky = "O'Brien\" {x} \\ ) OR TRUE() ,"
        server.put("Clients", {"Client ID": tricky, "Client Name": "Tricky",
                               "Service Level": 1})
        server.put("Clients", {"Client ID": "plain", "Client Name": "Plain", "Service Level": 1})
        store = AirtableStore(airtable_config(server, tmp_path / "s.db",
                                              AIRTABLE_CLIENT_ID_FIELD="Client ID",
                                              AIRTABLE_ATTRIBUTE_ID_FIELD="Attribute ID"))
        assert store.client(tricky).name == "Tricky"
        assert store.client("nobody' OR '1'='1") is None
    finally:
        server.stop()


def test_check_and_migrate_through_the_cli(tmp_path, monkeypatch, capsys):
    server = standard_base(FakeAirtable(), token_fields=False)
    server.table("Clients").fields.append({"id": "fldWRONG000000001", "name": "Token Usage",
                                           "type": "singleLineText"})
    server.start()
    try:
        env_for(server, tmp_path, monkeypatch)
        assert cli.main(["airtable", "check"]) == 1
        out = capsys.readouterr().out
        assert "MISSING      Token Budget" in out and "migrate` adds it" in out
        assert "WRONG TYPE   Token Usage: is singleLineText" in out
        assert "ok           Instructions (multilineText)" in out
        server.table("Clients").fields.pop()  # the user deletes the mistyped field
        assert cli.main(["airtable", "migrate"]) == 0
        out = capsys.readouterr().out
        for name in ("Token Budget", "Token Usage", "Budget Reset Date", "Last Token Update"):
            assert f"created field Clients.{name}" in out
        assert "live in the local file" in out
        types = {f["name"]: f["type"] for f in server.table("Clients").fields}
        assert types["Token Usage"] == "number" and types["Last Token Update"] == "dateTime"
        fields_before = json.dumps([t.fields for t in server.tables.values()])
        assert cli.main(["airtable", "migrate"]) == 0
        assert "nothing to change" in capsys.readouterr().out
        assert json.dumps([t.fields for t in server.tables.values()]) == fields_before
    finally:
        server.stop()


def test_cli_fault_is_one_line_naming_the_table(base, tmp_path, monkeypatch, capsys):
    env_for(base, tmp_path, monkeypatch, AIRTABLE_ATTRIBUTES_TABLE="Attrs")
    assert cli.main(["usage"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'Attrs'" in err and "404" in err
    assert API_KEY not in err


def test_every_cli_command_works_on_airtable_as_on_sqlite(tmp_path, monkeypatch, capsys):
    """The same demo data set loaded into both stores gives the same answers."""
    server = standard_base(FakeAirtable(), id_fields=True)
    server.start()
    try:
        sqlite = ["--store", f"sqlite:///{tmp_path / 'same.db'}"]
        env_for(server, tmp_path, monkeypatch, AIRTABLE_CLIENT_ID_FIELD="Client ID",
                AIRTABLE_ATTRIBUTE_ID_FIELD="Attribute ID", AIRTABLE_ALLOW_REPLACE="1")
        outputs = {}
        for name, store in (("sqlite", sqlite), ("airtable", [])):
            def run(*argv: str, store: list[str] = store) -> str:
                assert cli.main([*store, *argv]) in (0, 1), capsys.readouterr().err
                return capsys.readouterr().out

            run("demo-data", "--clients", "6", "--attributes-per-client", "4", "--seed", "3")
            attrs = json.loads(run("attributes", "C0002", "--json"))
            aid = attrs[0]["attribute_id"]
            outputs[name] = [
                json.loads(run("usage", "--json")), attrs,
                json.loads(run("validate", "C0002", aid, "--set", "Signals=more words here",
                               "--json")),
                json.loads(run("apply", "C0002", aid, "--deactivate", "--json")),
                run("set-tier", "C0002", "3"), run("set-budget", "C0003", "4000"),
                json.loads(run("tiers", "--set", "2=6500", "--json")),
                run("reset", "C0002"),
                [{k: e[k] for k in ("action", "client_id")}
                 for e in json.loads(run("audit", "--json"))],
                json.loads(run("usage", "--client", "C0002", "--json")),
            ]
        assert outputs["sqlite"] == outputs["airtable"]
        assert outputs["airtable"][-1][0]["service_level"] == 3
    finally:
        server.stop()


def test_loading_a_data_set_clears_the_sidecar(base, tmp_path):
    svc = service(base, tmp_path, AIRTABLE_ALLOW_REPLACE="1")
    svc.load_data_set(ADMIN, [Tier(1, "Basic", 100)], [Client("x", "X", 1)], [])
    (x,) = svc.store.clients()
    svc.store.save_auto_deactivate_flag(x.id, True)
    svc.reset(ADMIN, x.id)
    assert svc.store.auto_deactivate_flags() and svc.audit() and svc.history()
    svc.load_data_set(ADMIN, [Tier(1, "Basic", 100)], [Client("y", "Y", 1)], [])
    assert svc.store.auto_deactivate_flags() == {} and svc.audit() == [] and svc.history() == []


def test_resetting_a_selection_reads_only_its_attributes(base, tmp_path):
    rids = fill(base, 250)
    svc = service(base, tmp_path)
    svc.usage_report()  # the mirror filled: the floor, read once
    base.reset_log()
    assert svc.reset_all(ADMIN, [rids[7]])[0].changed
    # the client's linked attributes re-read inside the lock (counted before it from the
    # mirror); not the 3 pages of all 250
    assert base.count("list", "Scoring Attributes") == 1
    assert base.count("update", "Clients") == 1
