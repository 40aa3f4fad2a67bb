"""The Airtable store's mirror against the loopback Airtable (real HTTP through
pyairtable): what the loopback server's change feed offers, then how many requests each
situation of the mirror costs and how soon a change made in Airtable reaches the app."""

from __future__ import annotations

from datetime import UTC, datetime

from pyairtable import Api
from pyairtable.formulas import GTE, IS_AFTER, LAST_MODIFIED_TIME, to_formula_str

from tests.support.airtable_server import API_KEY, BASE_ID


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
