"""The Airtable store's mirror against the loopback Airtable (real HTTP through
pyairtable): what the loopback server's change feed offers, then how many requests each
situation of the mirror costs and how soon a change made in Airtable reaches the app."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyairtable import Api
from pyairtable.formulas import GTE, IS_AFTER, LAST_MODIFIED_TIME, to_formula_str

from budget.model import Change, StaleWrite
from budget.service import BudgetService
from budget.settings import Settings
from budget.stores.airtable import AirtableStore
from tests.support.airtable_server import API_KEY, BASE_ID, FakeAirtable, standard_base
from tests.support.factories import ADMIN, Clock, airtable_config, env_for


def _since(server, seconds: float) -> datetime:
    return datetime.fromtimestamp(server.now() - seconds, UTC)


def test_the_loopback_base_filters_on_last_modified_time(airtable_server):
    server = airtable_server
    server.add_table("T", [("Name", "singleLineText")])
    old = server.put("T", {"Name": "old"})
    server.advance(60)
    mark = _since(server, 1)
    new = server.put("T", {"Name": "new"})
    table = Api(API_KEY, endpoint_url=server.url).table(BASE_ID, "T")
    after = to_formula_str(GTE(LAST_MODIFIED_TIME(), mark))
    assert [r["id"] for r in table.all(formula=after)] == [new]
    assert [r["id"] for r in table.all(
        formula=to_formula_str(IS_AFTER(LAST_MODIFIED_TIME(), mark)))] == [new]
    server.advance(60)
    server.edit("T", old, {"Name": "edited in Airtable"})  # behind the app's back
    assert {r["id"] for r in table.all(formula=after)} == {old, new}
    assert server.modified("T", old) > server.modified("T", new)
    server.delete("T", new)
    assert [r["fields"]["Name"] for r in table.all()] == ["edited in Airtable"]


def test_a_link_changed_moves_the_other_ends_last_modified_time(airtable_server):
    server = airtable_server
    server.add_table("Clients", [("Client Name", "singleLineText")])
    server.add_table("Attrs", [("Name", "singleLineText")])
    server.link("Attrs", "Client", "Clients", "Attrs")
    client = server.put("Clients", {"Client Name": "C"})
    server.advance(60)
    server.put("Attrs", {"Name": "a", "Client": [client]})
    assert server.modified("Clients", client) >= server.now() - 1


# the mirror: what each situation costs in requests -----------------------------------------
IDS = {"AIRTABLE_CLIENT_ID_FIELD": "Client ID", "AIRTABLE_ATTRIBUTE_ID_FIELD": "Attribute ID"}
INTERVAL = 30.0  # AIRTABLE_SYNC_INTERVAL's default
SWEEP = 3600.0  # AIRTABLE_SWEEP_INTERVAL's default


@pytest.fixture
def base(airtable_server) -> FakeAirtable:
    """The README's base with Client ID and Attribute ID fields."""
    return standard_base(airtable_server, id_fields=True)


@pytest.fixture(params=["file", "postgresql"])
def sidecar(request, tmp_path) -> str:
    """Where the mirror lives: the sidecar's SQLite file, or its PostgreSQL schema."""
    if request.param == "file":
        return str(tmp_path / "sidecar.db")
    return request.getfixturevalue("postgres_databases")()


@pytest.fixture
def open_service(base, sidecar):
    """Services on the base and the sidecar, each with a store of its own (as a new
    process has), whose clock is the base's: `base.advance` moves both."""
    opened: list[AirtableStore] = []

    def make(**overrides: str) -> BudgetService:
        store = AirtableStore(airtable_config(base, sidecar, **IDS, **overrides))
        store.mirror.clock = base.now
        opened.append(store)
        return BudgetService(store, Settings(store="airtable"), Clock())
    yield make
    for store in opened:
        store.close()


def fill(server: FakeAirtable, clients: int, attributes_each: int) -> dict[str, str]:
    """Clients of level 1 (3,000 tokens) and their short attributes, put straight into
    the base; returns the attribute record ids by attribute id."""
    aids = {}
    for i in range(clients):
        rid = server.put("Clients", {"Client ID": f"C{i:04d}", "Client Name": f"Client {i:04d}",
                                     "Service Level": 1, "Budget Reset Date": "2026-11-01"})
        for j in range(attributes_each):
            aid = f"C{i:04d}-A{j}"
            aids[aid] = server.put("Scoring Attributes", {
                "Attribute ID": aid, "Name": f"Attr {j}", "Active": True, "Client": [rid],
                "Instructions": f"Score leads from region {i}, segment {j}."})
    server.age(60)  # made a while before the app starts
    server.reset_log()
    return aids


def lists(server: FakeAirtable) -> tuple[int, int]:
    """List requests since the log was reset: (clients table, attributes table)."""
    return server.count("list", "Clients"), server.count("list", "Scoring Attributes")


def requests(server: FakeAirtable) -> int:
    n = len(server.requests)
    server.reset_log()
    return n


def test_first_start_with_an_empty_mirror_reads_each_table_once_at_the_floor(
        base, open_service):
    fill(base, 250, 2)
    svc = open_service()
    assert len(svc.usage_report()) == 250
    assert lists(base) == (3, 5)  # ⌈250/100⌉ and ⌈500/100⌉
    assert requests(base) == 8
    svc.usage_report()
    svc.client_usage("C0007")
    svc.attributes("C0007")
    assert requests(base) == 0  # within the interval: every read from the mirror


def test_a_page_after_an_edit_made_in_the_app_needs_no_request(base, open_service):
    fill(base, 250, 2)
    svc = open_service()
    svc.usage_report()
    base.reset_log()
    before = svc.client_usage("C0003").usage
    svc.apply(ADMIN, Change("C0003", fields={"C0003-A1": {"Signals": "Series B funding."}}))
    assert base.count("update") == 2  # the attribute, then the client's Token Usage
    write = requests(base)
    report = {u.client.id: u for u in svc.usage_report()}  # the page render after it
    assert requests(base) == 0
    assert report["C0003"].usage > before
    # the stored Token Usage field was written with the change, so Airtable shows it
    (client,) = [r for r in base.records("Clients") if r["fields"]["Client ID"] == "C0003"]
    assert client["fields"]["Token Usage"] == report["C0003"].usage
    assert write <= 6  # client and attributes read again in the lock, stale check, 2 writes


def test_idle_costs_at_most_one_request_per_table_per_sync_interval(base, open_service):
    fill(base, 250, 2)
    svc = open_service()
    svc.usage_report()
    base.reset_log()
    for _ in range(3):
        base.advance(INTERVAL)
        svc.data_version()  # what every page run asks first
        svc.usage_report()
        assert lists(base) == (1, 1)
        base.reset_log()
        base.advance(INTERVAL / 3)
        svc.data_version()
        assert requests(base) == 0  # within the interval


def test_a_new_process_with_the_mirror_present_and_nothing_changed(base, open_service):
    fill(base, 250, 2)
    open_service().usage_report()
    base.reset_log()
    assert len(open_service().usage_report()) == 250  # at once: the mirror is fresh
    assert requests(base) == 0
    base.advance(INTERVAL)
    assert len(open_service().usage_report()) == 250  # later: what changed, nothing
    assert lists(base) == (1, 1)
    assert requests(base) == 2


def test_a_new_cli_process_reads_the_mirror(base, tmp_path, monkeypatch, capsys):
    """`tokenbudget usage` in a process of its own, twice: the second asks Airtable only
    what changed."""
    fill(base, 150, 2)
    env_for(base, tmp_path, monkeypatch, **IDS, AIRTABLE_SYNC_INTERVAL="0")
    run = [sys.executable, "-m", "budget.cli", "usage"]
    source = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}  # this checkout's
    first = subprocess.run(run, capture_output=True, text=True, timeout=120, env=source)
    assert first.returncode == 0, first.stderr
    assert requests(base) == 5  # ⌈150/100⌉ + ⌈300/100⌉
    second = subprocess.run(run, capture_output=True, text=True, timeout=120, env=source)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout
    assert lists(base) == (1, 1)
    assert requests(base) == 2


def test_an_edit_made_in_airtable_reaches_the_reads_within_one_interval(base, open_service):
    aids = fill(base, 250, 2)
    svc = open_service()
    svc.usage_report()
    base.reset_log()
    base.advance(1)
    base.edit("Scoring Attributes", aids["C0042-A0"], {"Signals": "word " * 400})
    base.advance(INTERVAL - 2)
    assert svc.client_usage("C0042").usage < 100  # not yet due: the mirror as it was
    assert requests(base) == 0
    base.advance(1)  # one interval after the last sync
    assert svc.client_usage("C0042").usage > 400
    assert lists(base) == (1, 1)  # ≤ 2 + ⌈1/100⌉
    base.reset_log()
    for aid in list(aids)[:150]:  # 150 more changed
        base.edit("Scoring Attributes", aids[aid], {"Examples": "An example."})
    base.advance(INTERVAL)
    svc.usage_report()
    assert lists(base) == (1, 2)  # ≤ 2 + ⌈150/100⌉
    assert svc.attributes("C0001")[0].examples == "An example."


def test_refresh_syncs_at_once_and_says_when_the_mirror_matched(base, open_service):
    aids = fill(base, 20, 2)
    svc = open_service()
    svc.usage_report()
    base.reset_log()
    matched = svc.store_matched_at()
    assert matched is not None and abs(matched.timestamp() - base.now()) < 5
    base.advance(2)
    base.edit("Scoring Attributes", aids["C0005-A1"], {"Active": False})
    svc.sync_store()  # Refresh, inside the interval
    assert lists(base) == (1, 1)
    assert [a.active for a in svc.attributes("C0005")] == [True, False]
    assert svc.store_matched_at() > matched


def test_a_record_deleted_in_airtable_is_gone_within_one_sweep(base, open_service):
    aids = fill(base, 250, 2)
    svc = open_service()
    svc.usage_report()
    base.reset_log()
    base.delete("Scoring Attributes", aids["C0009-A1"])
    base.advance(INTERVAL)
    assert len(svc.attributes("C0009")) == 1  # the client's link is gone with it
    # though the attribute is still in the mirror until the sweep lists the ids
    assert len([a for a in svc.store.attributes() if a.client_id == "C0009"]) == 2
    base.reset_log()
    base.advance(SWEEP)
    assert len([a for a in svc.store.attributes() if a.client_id == "C0009"]) == 1
    # what changed, then the ids alone: ⌈N/100⌉ requests of the first field only
    sweep = [r for r in base.requests if r.table == "Scoring Attributes"]
    assert len(sweep) == 1 + 5
    assert sweep[-1].params["fields[]"] == ["Attribute ID"]
    assert len(svc.usage_report()) == 250


def test_a_client_deleted_in_airtable_is_gone_within_one_sweep(base, open_service):
    fill(base, 30, 1)
    svc = open_service()
    svc.usage_report()
    (rid,) = [r["id"] for r in base.records("Clients") if r["fields"]["Client ID"] == "C0004"]
    base.delete("Clients", rid)
    base.advance(SWEEP)
    assert "C0004" not in {u.client.id for u in svc.usage_report()}
    assert svc.store.client("C0004") is None


def test_validation_before_a_save_reads_the_client_from_airtable_not_the_mirror(
        base, open_service):
    """The mirror is behind (an edit made in Airtable a moment ago, the sync not due):
    the check inside the write lock still sees it, and refuses to go over the budget."""
    aids = fill(base, 5, 2)
    svc = open_service()
    svc.usage_report()
    base.edit("Scoring Attributes", aids["C0002-A0"], {"Signals": "word " * 2000})
    with pytest.raises(StaleWrite):  # built on the mirror's version of the attribute
        svc.apply(ADMIN, Change("C0002", fields={"C0002-A0": {"Examples": "more"}}),
                  {"C0002-A0": svc.attributes("C0002")[0].version})
    assert svc.validate(Change("C0002", fields={"C0002-A1": {"Signals": "word " * 1200}})
                        ).allowed  # on the mirror's figures: what the write must not trust
    result = svc.apply(ADMIN, Change("C0002", fields={"C0002-A1": {"Signals": "word " * 1200}}))
    assert not result.allowed and result.projected > result.budget
    assert base.count("update") == 0


def test_a_write_refused_as_stale_leaves_the_mirror_to_catch_up(base, open_service):
    """An edit in Airtable between the app's read and its write: refused, nothing
    written, and the next sync brings the mirror in step."""
    aids = fill(base, 5, 1)
    svc = open_service()
    svc.usage_report()
    base.reset_log()
    with pytest.raises(StaleWrite), svc.store.transaction("C0001"):
        current = svc.store.attributes("C0001")
        base.edit("Scoring Attributes", aids["C0001-A0"], {"Signals": "Changed meanwhile."})
        svc.store.save_attributes([replace(current[0], name="Renamed")], "o200k_base", {})
    assert base.count("update") == 0
    base.advance(INTERVAL)
    assert svc.attributes("C0001")[0].signals == "Changed meanwhile."


# deletions from a webhook's payloads ---------------------------------------------------------
DAY = 24 * 3600.0
HOOKED = {"AIRTABLE_WEBHOOKS": "auto"}  # the setting's default (the other tests sweep)


def test_the_loopback_base_keeps_webhook_payloads_as_airtable_does(airtable_server):
    """What pyairtable parses from the loopback webhooks: created, changed and destroyed
    records by table, pages of 50 from a cursor, refresh, expiry, and no rights."""
    server = airtable_server
    table_id = server.add_table("T", [("Name", "singleLineText")]).id
    api = Api(API_KEY, endpoint_url=server.url)
    base, table = api.base(BASE_ID), api.table(BASE_ID, "T")
    made = base.add_webhook("https://example.invalid/hook",
                            {"options": {"filters": {"dataTypes": ["tableData"]}}})
    assert made.expiration_time.timestamp() == pytest.approx(server.now() + 7 * DAY, abs=5)
    (rid,) = [r["id"] for r in table.batch_create([{"Name": "a"}])]
    table.update(rid, {"Name": "b"})
    behind = server.put("T", {"Name": "c"})
    table.delete(rid)
    server.delete("T", behind)
    (hook,) = base.webhooks()
    assert hook.id == made.id and hook.cursor_for_next_payload == 6
    payloads = list(hook.payloads(1))
    assert [p.cursor for p in payloads] == [1, 2, 3, 4, 5]
    changes = [p.changed_tables_by_id[table_id] for p in payloads]
    assert list(changes[0].created_records_by_id) == [rid]
    assert list(changes[1].changed_records_by_id) == [rid]
    assert [c.destroyed_record_ids for c in changes[3:]] == [[rid], [behind]]
    assert [p.cursor for p in hook.payloads(4)] == [4, 5]
    for _ in range(120):
        server.put("T", {"Name": "more"})
    assert len(list(hook.payloads(6))) == 120
    assert len([r for r in server.requests if r.path.endswith("/payloads")]) == 1 + 1 + 3
    server.advance(6 * DAY)
    hook.extend_expiration()
    server.advance(6 * DAY)  # 12 days after the creation: alive, thanks to the refresh
    assert len(base.webhooks()) == 1
    server.advance(2 * DAY)
    assert base.webhooks() == []
    with pytest.raises(Exception, match="404"):
        list(hook.payloads(1))
    server.webhook_rights = False
    with pytest.raises(Exception, match="403"):
        base.add_webhook("https://example.invalid/hook",
                         {"options": {"filters": {"dataTypes": ["tableData"]}}})


def webhook_requests(server: FakeAirtable) -> list[str]:
    """The webhook requests since the log was reset, as "METHOD last-path-part"."""
    return [f"{r.method} {r.path.rsplit('/', 1)[-1]}" for r in server.requests
            if r.kind == "webhook"]


def sweeps(server: FakeAirtable) -> int:
    """Listings of the ids alone (the first field only) since the log was reset."""
    return sum(1 for r in server.requests
               if r.kind == "list" and r.params.get("fields[]") in (["Client ID"],
                                                                    ["Attribute ID"]))


def mirrored(svc: BudgetService, client_id: str) -> int:
    return len([a for a in svc.store.attributes() if a.client_id == client_id])


def test_a_deletion_made_in_airtable_is_gone_after_the_next_sync_with_the_webhook(
        base, open_service):
    aids = fill(base, 250, 2)
    svc = open_service(**HOOKED)
    svc.usage_report()
    assert lists(base) == (3, 5)  # the floor, and the webhook made before the listing
    assert webhook_requests(base) == ["POST webhooks"]
    assert requests(base) == 10  # and the base's schema once: the tables' ids
    base.delete("Scoring Attributes", aids["C0009-A1"])
    (client,) = [r["id"] for r in base.records("Clients") if r["fields"]["Client ID"] == "C0012"]
    base.delete("Clients", client)
    base.advance(INTERVAL)
    svc.data_version()  # what every page run asks first
    assert mirrored(svc, "C0009") == 1  # within one sync interval
    assert "C0012" not in {u.client.id for u in svc.usage_report()}
    assert lists(base) == (1, 1) and webhook_requests(base) == ["GET payloads"]
    assert sweeps(base) == 0 and requests(base) == 3  # the payloads name both tables
    for _ in range(3):  # idle: the payloads name no table, so none is listed
        base.advance(INTERVAL)
        svc.data_version()
        svc.usage_report()
        assert lists(base) == (0, 0) and webhook_requests(base) == ["GET payloads"]
        assert requests(base) == 1
    base.advance(SWEEP)  # no sweep while the webhook is healthy
    svc.usage_report()
    assert sweeps(base) == 0 and requests(base) == 1
    # a new process reads on from the cursor the sidecar keeps: no new webhook
    base.delete("Scoring Attributes", aids["C0020-A0"])
    base.advance(INTERVAL)
    other = open_service(**HOOKED)
    assert mirrored(other, "C0020") == 1
    assert webhook_requests(base) == ["GET payloads"] and len(base.hooks) == 1
    assert len(other.usage_report()) == 249
    base.reset_log()
    base.advance(INTERVAL)  # a new process, nothing changed: the payloads alone
    assert len(open_service(**HOOKED).usage_report()) == 249
    assert webhook_requests(base) == ["GET payloads"] and requests(base) == 1
    base.edit("Scoring Attributes", aids["C0030-A0"], {"Name": "Edited in Airtable"})
    base.advance(INTERVAL)  # one record edited: the payloads, then the one table they name
    assert "Edited in Airtable" in {a.name for a in other.store.attributes("C0030")}
    assert lists(base) == (0, 1) and requests(base) == 2


def test_without_webhook_rights_the_sweep_still_finds_deletions(base, open_service):
    aids = fill(base, 250, 2)
    base.webhook_rights = False  # a token without the webhook:manage scope
    svc = open_service(**HOOKED)
    svc.usage_report()
    assert webhook_requests(base) == ["POST webhooks"]  # refused (403), remembered
    assert [r.status for r in base.requests if r.kind == "webhook"] == [403]
    assert requests(base) == 9
    base.delete("Scoring Attributes", aids["C0009-A1"])
    base.advance(INTERVAL)
    svc.usage_report()
    assert requests(base) == 2  # what changed, and not the webhook again
    assert mirrored(svc, "C0009") == 2  # until the sweep
    base.advance(SWEEP)
    svc.usage_report()
    assert mirrored(svc, "C0009") == 1
    assert sweeps(base) == 3 + 5 and lists(base) == (1 + 3, 1 + 5)
    assert webhook_requests(base) == ["POST webhooks"]  # tried again a sweep later


def test_the_webhook_is_refreshed_before_it_expires(base, open_service):
    aids = fill(base, 30, 1)
    svc = open_service(**HOOKED)
    svc.usage_report()
    (hook,) = base.hooks.values()
    made = hook.expires
    base.reset_log()
    base.advance(3 * DAY)  # less than half its life
    svc.usage_report()
    assert webhook_requests(base) == ["GET payloads"]
    base.reset_log()
    base.advance(DAY)  # four days in: more than half its life is over
    svc.usage_report()
    assert webhook_requests(base) == ["POST refresh", "GET payloads"]
    assert hook.expires == pytest.approx(made + 4 * DAY, abs=5)
    base.advance(5 * DAY)  # nine days after its creation: alive, thanks to the refresh
    base.delete("Scoring Attributes", aids["C0003-A0"])
    base.reset_log()
    base.advance(INTERVAL)
    assert mirrored(svc, "C0003") == 0
    assert sweeps(base) == 0 and "POST webhooks" not in webhook_requests(base)
    assert list(base.hooks) == [hook.id]


@pytest.mark.parametrize("loss", ["expired", "deleted"])
def test_a_lost_webhook_is_made_anew_and_one_sweep_finds_what_it_missed(
        base, open_service, loss):
    """The app was off past the webhook's expiry (the sidecar knows when it expires), or
    someone deleted it (its payloads answer 404): a new one, and one sweep of each table
    for the deletions no webhook reported; then the payloads again."""
    aids = fill(base, 250, 2)
    svc = open_service(**HOOKED)
    svc.usage_report()
    base.delete("Scoring Attributes", aids["C0009-A1"])
    if loss == "expired":
        base.advance(8 * DAY)
    else:
        base.hooks.clear()
        base.advance(INTERVAL)
    base.reset_log()
    svc.usage_report()
    assert mirrored(svc, "C0009") == 1  # nothing lost
    made = ["POST webhooks"] if loss == "expired" else ["GET payloads", "POST webhooks"]
    assert webhook_requests(base) == made
    assert sweeps(base) == 3 + 5 and lists(base) == (1 + 3, 1 + 5)
    assert len(base.hooks) == 1
    base.reset_log()
    base.delete("Scoring Attributes", aids["C0010-A0"])
    base.advance(INTERVAL)
    svc.usage_report()
    assert mirrored(svc, "C0010") == 1
    assert lists(base) == (0, 1)  # the new webhook's payloads name one table
    assert sweeps(base) == 0 and requests(base) == 2  # those payloads, and that listing


def test_a_token_that_may_not_read_the_schema_keeps_its_one_webhook(base, open_service):
    """The webhook is made, but the base's schema (the tables' ids) is refused: the
    webhook is kept and used, each table then listed at every sync as without the ids,
    and no second webhook is made a sweep later (a base allows ten)."""
    aids = fill(base, 30, 1)
    base.fail(403, kind="meta", times=1000, error_type="INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND")
    svc = open_service(**HOOKED)
    svc.usage_report()
    assert len(base.hooks) == 1
    base.delete("Scoring Attributes", aids["C0003-A0"])
    base.reset_log()
    base.advance(INTERVAL)
    svc.data_version()  # what every page run asks first: both tables due
    assert webhook_requests(base) == ["GET payloads"] and lists(base) == (1, 1)
    assert mirrored(svc, "C0003") == 0  # the webhook's payloads told it
    base.advance(SWEEP)
    svc.usage_report()
    assert len(base.hooks) == 1 and sweeps(base) == 0
