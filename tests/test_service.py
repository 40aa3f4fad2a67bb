import threading
from datetime import date, datetime, UTC

import pytest

from budget import audit, core
from budget.model import Actor, BadInput, Change, NotAllowed, StaleWrite
from tests.support.factories import ADMIN, STORES_AND_SIDECARS, Clock, words

# every test here runs against SQLite, Airtable (loopback, real HTTP) with its sidecar in
# a file and in PostgreSQL, and PostgreSQL
pytestmark = pytest.mark.parametrize("store_factory", STORES_AND_SIDECARS, indirect=True)


def usage(svc, cid):
    return svc.client_usage(cid).usage


def test_small_fixture_figures(small):
    a = small.client_usage("A")
    assert (a.usage, a.budget, a.status) == (80, 100, "warning")
    assert small.client_usage("B").usage == 150


def test_client_names_are_every_clients_id_and_name_in_name_order(small):
    """The narrow read of a list to choose from agrees with the whole clients, on every
    store (the ones without it fall back to the whole clients)."""
    assert small.client_names() == [(c.id, c.name) for c in small.store.clients()]
    assert [name for _, name in small.client_names()] == sorted(
        name for _, name in small.client_names())


def test_activation_refused_when_over_and_allowed_when_fits(small):
    refused = small.apply(ADMIN, Change("A", active={"a3": True}))
    assert (refused.allowed, refused.current, refused.projected, refused.over_by) == (
        False, 80, 105, 5)
    assert usage(small, "A") == 80 and not small.store.attributes(ids=["a3"])[0].active
    small.apply(ADMIN, Change("A", fields={"a3": {"Instructions": words(20)}}))  # inactive edit
    ok = small.apply(ADMIN, Change("A", active={"a3": True}))
    assert ok.allowed and ok.projected == 100
    c = small.client("A")
    assert c.token_usage == 100 and c.last_token_update == Clock()()


def test_edit_text_and_deactivate_always_allowed_when_not_raising(small):
    small.set_budget_override(ADMIN, "A", 50)  # now over budget: 80 / 50
    assert small.apply(ADMIN, Change("A", fields={"a1": {"Instructions": words(35)}})).allowed
    assert usage(small, "A") == 75
    assert not small.apply(ADMIN, Change("A", fields={"a1": {"Instructions": words(36)}})).allowed
    assert small.apply(ADMIN, Change("A", active={"a2": False})).allowed
    assert usage(small, "A") == 35


def test_bulk_activation_checked_as_one(small):
    small.apply(ADMIN, Change("A", active={"a1": False, "a2": False}))
    res = small.validate(Change("A", active={"a1": True, "a2": True, "a3": True}))
    assert (res.allowed, res.projected) == (False, 105)
    assert small.apply(ADMIN, Change("A", active={"a1": True, "a3": True})).projected == 65


def test_bad_changes_name_record_and_field(small):
    cases = [
        (Change("A", active={"b1": True}), "attribute b1: id"),
        (Change("A", fields={"a1": {"Notes": "x"}}), "attribute a1: Notes: unknown field"),
        (Change("A", fields={"a1": {"Signals": 5}}), "attribute a1: Signals: must be text"),
        (Change("A", fields={"a1": {"Examples": "x" * 100_001}}),
         "attribute a1: Examples: 100,001"),
        (Change("Z", active={"a1": True}), "client Z: id"),
    ]
    for change, message in cases:
        with pytest.raises(BadInput, match=message):
            small.apply(ADMIN, change)
    assert not any(audit.is_attribute_action(e.action) for e in small.audit())


def test_every_mutation_refused_for_viewers_and_analysts(small):
    for role in ("viewer", "analyst"):
        actor = Actor("bob", role)
        calls = [lambda a: small.apply(a, Change("A", active={"a1": False})),
                 lambda a: small.reset(a, "A"), lambda a: small.reset_all(a),
                 lambda a: small.set_service_level(a, "A", 2),
                 lambda a: small.set_budget_override(a, "A", 10),
                 lambda a: small.set_tier_limit(a, 1, 10)]
        for call in calls:
            with pytest.raises(NotAllowed):
                call(actor)
    assert small.audit() == [] and usage(small, "A") == 80


def test_admin_actions_write_one_audit_row_each(small):
    small.set_service_level(ADMIN, "A", 2)
    small.set_budget_override(ADMIN, "A", 150)
    small.set_budget_override(ADMIN, "A", None)
    small.set_tier_limit(ADMIN, 2, 250)
    rows = small.audit()
    assert [r.action for r in rows] == ["service_level", "budget_override", "budget_override",
                                        "tier_limit"]
    assert rows[0].before == {"service_level": 1, "budget": 100}
    assert rows[0].after == {"service_level": 2, "budget": 200}
    assert rows[1].after == {"token_budget": 150, "budget": 150}
    assert rows[2].after == {"token_budget": None, "budget": 200}
    assert rows[3].before["tokens"] == 200 and rows[3].after["tokens"] == 250
    assert all(r.actor == "alice" for r in rows)


def test_bad_admin_input(small):
    for call, message in [
        (lambda: small.set_service_level(ADMIN, "A", 7), "Service Level: level 7"),
        (lambda: small.set_service_level(ADMIN, "A", "two"), "Service Level: must be a whole"),
        (lambda: small.set_budget_override(ADMIN, "A", -1), "Token Budget: must not be negative"),
        (lambda: small.set_budget_override(ADMIN, "A", 1.5), "Token Budget: must be a whole"),
        (lambda: small.set_tier_limit(ADMIN, 1, "-3"), "tier 1: Token Budget"),
    ]:
        with pytest.raises(BadInput, match=message):
            call()
    assert small.audit() == [] and small.client("A").service_level == 1


def test_reset_semantics_and_idempotence(small):
    # someone edited the stored figure directly: it has drifted
    small.store.save_client(small.client("A").__class__(**{**small.client("A").__dict__,
                                                           "token_usage": 999, "topup": 40}))
    assert small.client_usage("A").drifted
    attrs_before = small.store.attributes("A")
    first = small.reset(ADMIN, "A")
    c = small.client("A")
    assert first.changed and c.token_usage == 80 and c.topup == 0
    assert c.budget_reset_date == date(2026, 12, 1) and c.last_reset_period == date(2026, 11, 1)
    assert small.store.attributes("A") == attrs_before  # nothing deleted or deactivated
    second = small.reset(ADMIN, "A")
    assert not second.changed
    assert small.client("A").version == c.version
    assert [e.action for e in small.audit()] == ["reset"]
    assert small.audit()[0].before["token_usage"] == 999
    assert small.history("A") == [("A", Clock()(), 80, 100)]  # one snapshot, not two
    small.clock.now = datetime(2026, 12, 2, tzinfo=UTC)  # next period
    assert small.reset(ADMIN, "A").changed
    assert small.client("A").budget_reset_date == date(2027, 1, 1)


def test_stale_client_write_refused(small):
    v = small.client("A").version
    small.set_budget_override(ADMIN, "A", 120, expected_version=v)
    with pytest.raises(StaleWrite):
        small.set_budget_override(ADMIN, "A", 130, expected_version=v)
    assert small.client("A").token_budget == 120


def test_concurrent_changes_cannot_together_exceed_budget(store_factory, small):
    small.apply(ADMIN, Change("A", active={"a2": False}))  # usage 40 of 100
    small.apply(ADMIN, Change("A", fields={"a3": {"Instructions": words(50)}}))
    # a2 (40) and a3 (50): each fits alone (80 / 90), both together (130) do not
    barrier = threading.Barrier(2)
    results = {}

    def worker(aid):
        svc = store_factory.service()  # its own store and connection
        barrier.wait()
        results[aid] = svc.apply(ADMIN, Change("A", active={aid: True}))

    threads = [threading.Thread(target=worker, args=(aid,)) for aid in ("a2", "a3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.allowed for r in results.values()) == [False, True]
    final = store_factory.service().client_usage("A")
    assert final.usage <= 100 and final.usage == final.client.token_usage


def test_duplicate_ids_rejected_and_nothing_written(small):
    from budget.model import Attribute, Client, Tier
    before = small.usage_report()
    with pytest.raises(BadInput, match="client A: id: duplicate"):
        small.load_data_set(ADMIN, [Tier(1, "B", 10)],
                            [Client("A", "a", 1), Client("A", "b", 1)], [])
    with pytest.raises(BadInput, match="attribute x: Client"):
        small.load_data_set(ADMIN, [Tier(1, "B", 10)], [Client("A", "a", 1)],
                            [Attribute("x", "Q", "n", True)])
    assert small.usage_report() == before


def test_client_with_no_attributes(small):
    from budget.model import Client, Tier
    small.load_data_set(ADMIN, [Tier(1, "B", 10)], [Client("E", "Empty", 1)], [])
    u = small.client_usage("E")
    assert (u.usage, u.status, u.attributes) == (0, "ok", 0)


def test_usage_summed_by_the_store_is_the_sum_of_every_attribute_cost(store_factory, small):
    """What the store sums in one query (SQLite, PostgreSQL) is what the costs add up
    to, inactive attributes counted but not summed; while an encoding has texts not yet
    counted the store declines, and the service counts them first."""
    summed = getattr(small.store, "usage_totals", lambda encoding: {})
    assert small.usage_totals() == core.usage_by_client(small.costs()) == {
        "A": (80, 3, 2), "B": (150, 1, 1)}
    assert summed(small.encoding) in ({}, small.usage_totals())
    other = store_factory.service(encoding="chars4")
    assert summed("chars4") in ({}, None)  # nothing counted with it yet
    first = other.usage_totals()
    assert first == core.usage_by_client(other.costs()) and first["A"] == (50 + 38 + 13, 3, 2)
    assert summed("chars4") in ({}, first)  # counted and stored by the first call


def test_top_costs_chosen_by_the_store_are_those_of_every_cost(store_factory):
    """What the store chooses in one query (SQLite, PostgreSQL) is what `core.top_costs`
    keeps of every attribute's costs: active ones only, every tie at the cut, all of
    them when fewer than n, only the clients asked for. While an active attribute has
    no count for the encoding the store declines, and the service counts it first."""
    from budget.model import Attribute, Client, FieldTokens, Tier
    svc = store_factory.service()
    svc.load_data_set(ADMIN, [Tier(1, "Basic", 1_000)],
                      [Client("A", "Alpha", 1), Client("B", "Beta", 1), Client("C", "Gamma", 1)],
                      [Attribute("a1", "A", "Size", True, words(50), "", ""),
                       Attribute("a2", "A", "Industry", True, words(20), words(10), ""),
                       Attribute("a3", "A", "Intent", False, words(90), "", ""),  # inactive
                       Attribute("a4", "A", "Region", True, "", words(25), words(5)),
                       Attribute("b1", "B", "Size", True, words(30), "", ""),
                       Attribute("b2", "B", "Role", True, words(10), "", ""),
                       Attribute("c1", "C", "Size", True, words(40), "", ""),
                       Attribute("c2", "C", "Role", False, words(5), "", "")])
    chosen = getattr(svc.store, "top_costs", None)
    cases = {(3, None): ["a1", "c1", "a2", "a4", "b1"],  # 50, 40 and the three 30s at the cut
             (2, None): ["a1", "c1"],
             (50, None): ["a1", "c1", "a2", "a4", "b1", "b2"],  # fewer than n: every active one
             (2, frozenset("AB")): ["a1", "a2", "a4", "b1"],
             (5, frozenset("C")): ["c1"],
             (3, frozenset()): [],
             # thousands of ids, one with a quote: bound as one parameter, never spliced in
             (1, frozenset({"B", "x'); DROP TABLE attributes; --",
                            *(f"X{i}" for i in range(5_000))})): ["b1"]}
    for (n, ids), expected in cases.items():
        top = svc.top_costs(n, ids)
        assert [c.id for c in top] == expected, (n, ids)
        assert top == core.top_costs(svc.costs(), n, ids)
        if callable(chosen):
            assert chosen(svc.encoding, n, ids) == top
    assert svc.top_costs(0) == []
    by_field = {c.id: c.tokens for c in svc.top_costs(3, {"A"})}
    assert by_field == {"a1": FieldTokens(50, 0, 0), "a2": FieldTokens(20, 10, 0),
                        "a4": FieldTokens(0, 25, 5)}

    other = store_factory.service(encoding="chars4")
    if callable(chosen):
        assert chosen("chars4", 3, None) is None  # nothing counted with it yet
    first = other.top_costs(3)
    assert first == core.top_costs(other.costs(), 3)
    # ceil(len / 4) by field: 63, 50, then a2's 25 + 13 and b1's 38 tie at the cut
    assert [c.id for c in first] == ["a1", "c1", "a2", "b1"]
    if callable(chosen):
        assert chosen("chars4", 3, None) == first  # counted and stored by the first call
        # an edit drops the counts of other encodings: an inactive attribute's does not
        # stop the store, an active one's does, and only for the clients it is among
        svc.apply(ADMIN, Change("A", fields={"a3": {"Instructions": words(91)}}))
        assert chosen("chars4", 3, None) == first
        svc.apply(ADMIN, Change("B", fields={"b2": {"Instructions": words(11)}}))
        assert chosen("chars4", 3, None) is None
        assert chosen("chars4", 3, {"A", "C"}) == core.top_costs(
            other.costs(save=False), 3, {"A", "C"}) != []
    assert other.top_costs(3) == first  # b2 counted again, and still not among them
    if callable(chosen):
        assert chosen("chars4", 3, None) == first


def test_megabyte_text_refused_without_writing(small):
    before = small.store.attributes("A")
    with pytest.raises(BadInput, match="Instructions"):
        small.apply(ADMIN, Change("A", fields={"a1": {"Instructions": "x" * 1_000_000}}))
    assert small.store.attributes("A") == before


def test_encoding_change_recounts(store_factory, small):
    other = store_factory.service(encoding="chars4")
    # ceil(len / 4) of words(40), words(30) and words(10): 199, 149 and 49 characters
    assert other.client_usage("A").usage == 50 + 38 + 13
    assert store_factory.service().client_usage("A").usage == 80  # and back again


def test_tier_limit_preview_lists_exactly_the_clients_pushed_over(small):
    assert [u.client.id for u in small.preview_tier_limit(2, 120)] == ["B"]
    assert small.preview_tier_limit(2, 150) == []  # exactly at the budget is allowed
    assert [u.client.id for u in small.preview_tier_limit(1, 79)] == ["A"]
    small.set_budget_override(ADMIN, "A", 500)  # an override is not moved by the tier
    assert small.preview_tier_limit(1, 10) == []
    small.set_budget_override(ADMIN, "A", 50)  # already over: not "put over" by the limit
    assert small.preview_tier_limit(1, 10) == []
    assert [u.client.id for u in small.preview_tier_limit(5, 10)] == []  # a new, empty tier


def test_concurrent_admins_on_one_client_lose_nothing(small):
    """Two admins read version v; the first write lands, the second is refused."""
    v = small.client("A").version
    small.set_service_level(ADMIN, "A", 2, expected_version=v)
    with pytest.raises(StaleWrite):
        small.grant_topup(Actor("bob", "admin"), "A", 100, expected_version=v)
    c = small.client("A")
    assert (c.service_level, c.topup) == (2, 0)
    assert [e.action for e in small.audit()] == ["service_level"]


def test_encoding_change_preview_then_recount(small, store_factory):
    # under chars4 Alpha counts 101 of 100 (crosses the budget) and Beta 188 of 200
    # (crosses the warning threshold)
    changes = {now.client.id: (now.status, after.status, after.usage)
               for now, after in small.preview_encoding("chars4")}
    assert changes == {"A": ("warning", "exceeded", 101), "B": ("ok", "warning", 188)}
    assert small.encoding == "o200k_base"  # a preview changes nothing
    with pytest.raises(NotAllowed):
        small.set_encoding(Actor("v", "viewer"), "chars4")
    assert small.set_encoding(ADMIN, "chars4") == 2
    assert small.encoding == "chars4" and small.client_usage("A").usage == 101
    assert store_factory.service().encoding == "chars4"  # kept with the data
    assert small.audit()[-1].after == {"encoding": "chars4"}
    with pytest.raises(BadInput, match="encoding"):
        small.preview_encoding("gpt2")


def test_changes_applied_together_are_one_per_client(small):
    """Two changes of one client would each be checked against the usage before the
    other: refused as bad input, nothing written."""
    before = small.store.attributes("A")
    with pytest.raises(BadInput, match="client A: changes: more than one change"):
        small.apply_together(ADMIN, [Change("A", active={"a2": False}),
                                     Change("A", active={"a3": True})])
    assert small.store.attributes("A") == before and small.audit() == []
