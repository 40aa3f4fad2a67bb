"""Every page on the loopback Airtable base, as on SQLite; and what the app shows when
Airtable fails: a banner naming the table, the last loaded data marked stale, a
failed write reported and never shown as saved."""

from __future__ import annotations

import time

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from budget import demo
from tests.support.airtable_server import API_KEY, FakeAirtable, standard_base
from tests.support.apptest import run_app as run
from tests.support.factories import ADMIN, env_for

PAGES = ["app_pages/overview.py", "app_pages/client.py", "app_pages/analytics.py",
         "app_pages/savings.py", "app_pages/batch_edit.py", "app_pages/admin.py",
         "app_pages/scheduled_pass.py", "app_pages/audit.py"]


@pytest.fixture
def base(tmp_path, monkeypatch):
    """The demo data set (12 clients) in a loopback base, the app pointed at it."""
    server = standard_base(FakeAirtable(), id_fields=True)
    server.start()
    env_for(server, tmp_path, monkeypatch, AIRTABLE_CLIENT_ID_FIELD="Client ID",
            AIRTABLE_ATTRIBUTE_ID_FIELD="Attribute ID", AIRTABLE_ALLOW_REPLACE="1",
            AIRTABLE_RETRIES="1")
    st.cache_data.clear()
    st.cache_resource.clear()
    import ui
    svc = ui.service()
    svc.load_data_set(ADMIN, *demo.generate(svc.counter.count_many, 12, 6, 5))
    st.cache_data.clear()
    yield server
    server.stop()
    st.cache_resource.clear()


def errors(at: AppTest) -> str:
    return "\n".join(e.value for e in at.error)


def sync_due() -> None:
    """The sync interval has passed: the next page run asks Airtable what changed."""
    import ui
    ui.service().store.mirror.clock = lambda: time.time() + 3600


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_airtable(base, page):
    at = run(page, client="C0003")
    assert not at.exception, at.exception
    assert errors(at) == ""
    import ui
    assert ui.service().store.label.startswith("Airtable: base")


def test_store_down_keeps_last_data_marked_stale(base):
    at = run()
    rows = len(at.dataframe[0].value)
    assert rows == 12
    base.fail(0, times=1000)  # the network goes down: every connection dropped
    sync_due()
    st.cache_data.clear()  # what a write (or the cache's TTL running out) does
    at.run()
    assert not at.exception
    banner = errors(at)
    assert "network failure" in banner and "it may be stale" in banner
    assert "Showing the data loaded 0 min ago" in banner
    assert len(at.dataframe[0].value) == rows  # the last loaded table, still there
    assert API_KEY not in banner


def test_unknown_table_banner_names_it(base, monkeypatch):
    monkeypatch.setenv("AIRTABLE_CLIENTS_TABLE", "Customers")
    st.cache_resource.clear()
    at = run()
    assert not at.exception
    assert "Airtable table 'Customers'" in errors(at) and "404" in errors(at)


def test_failed_write_is_reported_and_not_shown_as_saved(base):
    import ui
    active = next(a for a in ui.service().attributes("C0003") if a.active)
    at = run("app_pages/client.py", client="C0003")
    at.selectbox(key="edit_attr").select(active.id).run()
    at.toggle(key=f"active_{active.id}_{active.version}_0").set_value(False).run()
    base.fail(422, kind="update", error_type="INVALID_VALUE_FOR_COLUMN",
              message='Field "Active" cannot accept the provided value')
    assert not at.button(key="save").disabled  # deactivating is always allowed
    at.button(key="save").click().run()
    assert not at.exception
    assert "The change was not saved" in errors(at) and '"Active"' in errors(at)
    assert "nothing was written" in errors(at)
    assert not at.success
    assert next(a for a in ui.service().attributes("C0003") if a.id == active.id).active
    assert ui.service().audit("C0003") == []


def test_skipped_records_listed_once_above_the_page(base):
    base.put("Clients", {"Client Name": "Broken", "Client ID": "BAD1", "Service Level": "x"})
    at = run()
    assert not at.exception
    (box,) = [e for e in at.expander if "record(s) skipped" in e.label]
    assert "(Broken): Service Level: not a service level number: 'x'" in box.markdown[0].value
    assert len(at.dataframe[0].value) == 12  # the rest loads


@pytest.mark.parametrize("answer", ["cut", "html"])
def test_a_garbled_answer_keeps_last_data_marked_stale(base, answer):
    at = run()
    rows = len(at.dataframe[0].value)
    base.fail(200, answer=answer, times=1000)
    sync_due()
    st.cache_data.clear()
    at.run()
    assert not at.exception, at.exception
    banner = errors(at)
    assert "not Airtable's JSON" in banner and "it may be stale" in banner
    assert len(at.dataframe[0].value) == rows


def test_a_duplicate_client_id_is_named_above_the_page_and_its_page_refused(base):
    copy = base.put("Clients", {"Client Name": "Copy of C0003", "Client ID": "C0003",
                                "Service Level": 1})
    at = run()
    assert not at.exception
    (box,) = [e for e in at.expander if "record(s) skipped" in e.label]
    assert copy in box.markdown[0].value and "duplicate id 'C0003'" in box.markdown[0].value
    assert len(at.dataframe[0].value) == 11  # the others
    at = run("app_pages/client.py", client="C0003")  # a deep link to it
    assert not at.exception, at.exception
    assert any("No client with id 'C0003'" in w.value for w in at.warning)
    (box,) = [e for e in at.expander if "record(s) skipped" in e.label]
    assert copy in box.markdown[0].value and "duplicate id 'C0003'" in box.markdown[0].value


def shows(at: AppTest, text: str) -> bool:
    frame = at.dataframe[0].value
    return bool((frame == text).any().any())


def test_the_sidebar_says_when_the_mirror_matched_and_refresh_brings_an_airtable_edit(base):
    at = run()
    assert any(c.value.startswith("Airtable mirror last matched at ")
               for c in at.sidebar.caption)
    (rid,) = [r["id"] for r in base.records("Clients") if r["fields"]["Client ID"] == "C0003"]
    base.edit("Clients", rid, {"Client Name": "Renamed in Airtable"})
    st.cache_data.clear()
    at.run()  # within the sync interval: the mirror as it was, no request
    assert not shows(at, "Renamed in Airtable")
    base.reset_log()
    at.sidebar.button(key="refresh").click().run()
    assert not at.exception, at.exception
    assert shows(at, "Renamed in Airtable")
    assert base.count("list", "Clients") == 1 and base.count("list", "Scoring Attributes") == 1
    assert len(base.requests) == 2
    assert errors(at) == ""
    assert any(c.value.startswith("Airtable mirror last matched at ")
               for c in at.sidebar.caption)


def test_refresh_with_airtable_down_says_so_and_shows_the_mirror(base):
    at = run()
    base.fail(0, times=1000)
    at.sidebar.button(key="refresh").click().run()
    assert not at.exception, at.exception
    assert "network failure" in errors(at) and "the mirror's" in errors(at)
    assert len(at.dataframe[0].value) == 12


def test_an_edit_and_a_deletion_made_in_airtable_reach_the_dashboard_in_their_time(base):
    """Without Refresh: a rename shows one sync interval later, a deleted client is gone
    one sweep later (the page's own run, its cache keyed on the store's data version)."""
    import ui
    at = run()
    by_id = {r["fields"]["Client ID"]: r for r in base.records("Clients")}
    base.edit("Clients", by_id["C0003"]["id"], {"Client Name": "Renamed in Airtable"})
    for rid in by_id["C0005"]["fields"].get("Scoring Attributes", []):
        base.delete("Scoring Attributes", rid)
    base.delete("Clients", by_id["C0005"]["id"])
    mirror, now = ui.service().store.mirror, time.time()
    mirror.clock = lambda: now + 31  # one AIRTABLE_SYNC_INTERVAL (30 s) later
    at.run()
    assert shows(at, "Renamed in Airtable")
    assert shows(at, by_id["C0005"]["fields"]["Client Name"])  # until the sweep
    mirror.clock = lambda: now + 3601  # one AIRTABLE_SWEEP_INTERVAL (3600 s) later
    at.run()
    assert not at.exception, at.exception
    assert not shows(at, by_id["C0005"]["fields"]["Client Name"])
    assert len(at.dataframe[0].value) == 11 and errors(at) == ""
