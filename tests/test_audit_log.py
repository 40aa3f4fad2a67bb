"""The audit log as a person reads it: one action per kind of change, only the fields
that changed, client names beside ids, filters and the export of what they show."""

from datetime import timedelta

from budget import audit
from budget.model import Change
from tests.support.factories import ADMIN, words


def test_each_kind_of_attribute_change_has_its_own_action(small):
    small.apply(ADMIN, Change("A", fields={"a1": {"Signals": "lead"}}))
    small.apply(ADMIN, Change("A", active={"a2": False}))
    small.apply(ADMIN, Change("A", active={"a2": True}))
    small.apply(ADMIN, Change("A", active={"a1": False, "a2": False}))
    small.apply(ADMIN, Change("A", active={"a1": True, "a2": True}))
    small.apply(ADMIN, Change("A", active={"a1": False, "a3": True}))
    small.apply_batch(ADMIN, [("B", "b1")], {"Examples": "one"})
    small.apply(ADMIN, Change("A", fields={"a1": {"Signals": ""}}), action="attribute.suggestion")
    assert [e.action for e in small.audit()] == [
        "attribute.edit", "attribute.deactivate", "attribute.activate",
        "attribute.bulk_deactivate", "attribute.bulk_activate", "attribute.switch",
        "attribute.batch_edit", "attribute.suggestion"]
    assert len({audit.action_label(e.action) for e in small.audit()}) == 8


def test_an_edit_records_only_the_field_it_changed(small):
    small.apply(ADMIN, Change("A", fields={"a2": {"Examples": words(12)}}))
    (entry,) = small.audit()
    assert entry.before == {"a2": {"name": "Industry", "examples": words(10)}}
    assert entry.after == {"a2": {"name": "Industry", "examples": words(12)}}
    (change,) = audit.field_changes(entry)
    assert audit.change_line(change) == f"Industry · Examples: {words(10)} → {words(12)}"


def test_a_long_text_reads_as_the_part_that_changed_and_as_a_sentence_diff(small):
    old = "Prefer firms with 50 to 500 staff. " * 10 + "Skip sole traders."
    new = "Prefer firms with 50 to 500 staff. " * 10 + "Skip sole traders and charities."
    small.apply(ADMIN, Change("A", fields={"a3": {"Instructions": old}}))  # inactive
    small.apply(ADMIN, Change("A", fields={"a3": {"Instructions": new}}))
    entry = small.audit()[-1]
    (change,) = audit.field_changes(entry)
    assert audit.change_line(change) == "Intent · Instructions: …traders. → …traders and charities."
    diff = audit.entry_diff(entry)
    assert "-Skip sole traders." in diff and "+Skip sole traders and charities." in diff


def test_older_entries_with_every_text_show_only_what_differs(small):
    from budget.model import AuditEntry
    texts = {"active": True, "instructions": "a", "examples": "b", "signals": "c"}
    entry = AuditEntry(small.clock(), "x", "attribute.update", "A", {"a1": texts},
                       {"a1": {**texts, "signals": "d"}})
    assert [audit.change_line(c) for c in audit.field_changes(entry)] == ["a1 · Signals: c → d"]


def test_page_names_clients_shows_field_diffs_and_filters(app, small):
    small.set_service_level(ADMIN, "A", 2)
    small.reset(ADMIN, "B")
    small.set_tier_limit(ADMIN, 1, 120)
    small.apply(ADMIN, Change("A", active={"a2": False}))
    at = app(small.store.path, "app_pages/audit.py")
    table = at.dataframe[0].value
    assert list(table["what"]) == ["Attribute deactivated", "Tier limit changed",
                                   "Budget reset", "Service level changed"]
    assert list(table["client"]) == ["Alpha (A)", "—", "Beta (B)", "Alpha (A)"]
    assert table["changes"][0] == "Industry · Active: yes → no"
    assert table["changes"][1] == "Tokens: 100 → 120"
    assert "Service level: 1 → 2" in table["changes"][3]
    assert not any("{" in c or "None" in c for c in table["changes"])
    at.multiselect(key="audit_client").select("A").run()
    assert list(at.dataframe[0].value["action"]) == ["attribute.deactivate", "service_level"]
    at.multiselect(key="audit_action").select("service_level").run()
    assert list(at.dataframe[0].value["action"]) == ["service_level"]
    at.multiselect(key="audit_client").unselect("A").run()
    at.multiselect(key="audit_action").unselect("service_level").run()
    at.multiselect(key="audit_actor").select(ADMIN.name).run()
    assert len(at.dataframe[0].value) == 4
    assert not at.exception


def test_filters_by_date_and_actor():
    from datetime import UTC, datetime

    from budget.model import AuditEntry
    day = datetime(2026, 11, 1, tzinfo=UTC)
    entries = [AuditEntry(day + timedelta(days=i), who, "reset", "A", {}, {})
               for i, who in enumerate(["ann", "bob", "ann"])]
    frame = audit.audit_frame(entries, {"A": "Alpha"})
    assert list(frame["actor"]) == ["ann", "bob", "ann"]  # newest first
    assert list(audit.filter_audit(frame, actors=["ann"])["at"].dt.day) == [3, 1]
    got = audit.filter_audit(frame, first=(day + timedelta(days=1)).date(),
                             last=(day + timedelta(days=1)).date())
    assert list(got["actor"]) == ["bob"]
    assert list(audit.filter_audit(frame, first=(day + timedelta(days=2)).date())["actor"]) \
        == ["ann"]
