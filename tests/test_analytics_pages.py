"""AppTest of the analytics page (figures, charts), the savings page and the batch edit page."""

import base64
import json
from datetime import datetime, timedelta, UTC

import numpy as np

from budget.model import Change
from tests.support.apptest import CHARTS, TABS, open_tab, signed_in, text_of
from tests.support.factories import ADMIN, NOW, Clock, words
from tests.support.model_server import FakeModel


SAVINGS = "app_pages/savings.py"


def charts(at) -> dict[str, dict]:
    return {c.key: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def numbers(values) -> list:
    """A trace's numbers as plotly sends them: a list, or typed bytes in base64."""
    if isinstance(values, list):
        return values
    return np.frombuffer(base64.b64decode(values["bdata"]), values["dtype"]).tolist()


def table(at, column: str):
    """The dataframe on the page with this column (AppTest does not expose their keys)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def with_history(svc) -> None:
    """A's usage 70, 75, 80 on three days (see test_analytics); B one snapshot."""
    svc.clock = Clock(NOW - timedelta(days=2))
    for n in (30, 35, 40):
        svc.apply(ADMIN, Change("A", fields={"a1": {"Instructions": words(n)}}))
        svc.clock.now += timedelta(days=1)
    svc.apply(ADMIN, Change("B", fields={"b1": {"Signals": "x"}}))


def test_top_attributes_drawn_from_the_stores_choice_not_from_every_cost(app, demo_copy,
                                                                         monkeypatch):
    """The first tab draws exactly what `top_attributes` makes of every attribute's costs,
    with and without filters, yet never has the store load every attribute's costs: it
    chooses the few that can make the list itself (one client's costs, as a client page
    loads them, would be fine)."""
    from budget import analytics, views
    from budget.stores import SQLiteStore
    from tests.support.factories import make_service
    svc = make_service(demo_copy)
    every, frame = svc.costs(), views.usage_frame(svc.usage_report(), svc.tiers())
    loaded: list[str | None] = []
    real = SQLiteStore.costs

    def recorded(self, encoding, client_id=None):
        loaded.append(client_id)
        return real(self, encoding, client_id)

    monkeypatch.setattr(SQLiteStore, "costs", recorded)
    at, drew = app(demo_copy, "app_pages/analytics.py"), []
    for tiers, statuses, n in [((), (), 20), (["Professional"], (), 20),
                               ((), ["warning", "exceeded"], 7), (["Basic"], ["ok"], 50),
                               (["Enterprise"], ["exceeded"], 5)]:
        at.multiselect(key="an_tier").set_value(list(tiers))
        at.multiselect(key="an_status").set_value(list(statuses))
        at.slider(key="an_top_n").set_value(n).run()
        assert not at.exception
        want = analytics.top_attributes(every, frame, n, tiers, statuses)
        drawn = charts(at).get("top_attributes", {"data": []})["data"]
        assert [(t["name"], t["y"], numbers(t["x"])) for t in drawn] == [
            (s, list(g["label"]), list(g["tokens"]))
            for s, g in want.groupby("status", sort=False)], (tiers, statuses, n)
        drew.append(len(want))
    assert drew == [20, 20, 7, 50, 5]
    assert None not in loaded, loaded
    professional = set(frame.loc[frame["tier"] == "Professional", "client_id"])
    assert len(svc.top_costs(20, professional)) == 21  # a tie at the cut: the label decided


def test_every_chart_has_titles_units_and_a_csv(app, demo_copy):
    from tests.support.factories import make_service
    with_history_demo = make_service(demo_copy)
    for day in range(3):  # a few snapshots so the time charts draw
        with_history_demo.clock = Clock(NOW + timedelta(days=day))
        with_history_demo.reset(ADMIN, "C0001")
    at = app(demo_copy, "app_pages/analytics.py")
    got, labels = {}, set()
    for tab, keys in TABS.items():  # each tab draws its own charts, and only those
        shown = charts(open_tab(at, tab))
        assert set(shown) == keys, tab
        got |= shown
        labels |= {b.proto.label for b in at.get("download_button")}
    assert set(got) == CHARTS
    for key, spec in got.items():
        layout = spec["layout"]
        assert layout["title"]["text"], key
        assert layout["xaxis"]["title"]["text"] and layout["yaxis"]["title"]["text"], key
        assert layout["xaxis"]["separatethousands"] and layout["yaxis"]["separatethousands"]
    # status colours are the app's palette, the same as everywhere else
    from budget.views import STATUS_COLOURS
    colours = {t["name"]: t["marker"]["color"] for t in got["headroom"]["data"]}
    assert colours and all(STATUS_COLOURS[name] == c for name, c in colours.items())
    assert {"Download top-attributes.csv", "Download headroom-forecast.csv",
            "Download usage-by-tier.csv", "Download usage-history.csv",
            "Download chars4-vs-real.csv", "Download chars4-vs-real-by-client.csv",
            "Download usage-overall.csv", "Download prompt-cost.csv"} <= labels
    # revenue per tier turns on the ROI chart
    at.number_input(key="an_rev_1").set_value(99.0).run()
    assert "roi" in charts(at) and not at.exception


def test_figures_on_the_small_set(app, small, monkeypatch):
    with_history(small)
    at = app(small.store.path, "app_pages/analytics.py")  # the first tab is open
    top = charts(at)["top_attributes"]["data"]
    assert sorted(y for t in top for y in t["y"]) == [  # the active ones
        "Industry · Alpha", "Size · Alpha", "Size · Beta"]
    assert set(table(open_tab(at, "Approaching limits"), "trend")["trend"]) == {
        "not enough history yet"}  # 2 days < 7
    monkeypatch.setenv("TOKENBUDGET_TREND_MIN_DAYS", "2")
    at = open_tab(app(small.store.path, "app_pages/analytics.py"), "Approaching limits")
    outlook = table(at, "trend").set_index("client_id")
    assert list(outlook.index) == ["A", "B"]  # headroom 20, then 50
    # 20 tokens left at 5 a day: 4 days from today (the page's now)
    when = datetime.now(UTC).date() + timedelta(days=4)
    assert outlook.loc["A", "trend"] == f"reaches budget {when:%Y-%m-%d}"
    assert outlook.loc["B", "trend"] == "not enough history yet"  # one snapshot
    open_tab(at, "chars4 vs real")
    metrics = {m.label: m.value for m in at.metric}
    # real 80 + 151 (the 'x' signal is 1 token) = 231; chars4 101 + 188 + 1 = 290
    assert metrics["Real (o200k_base)"] == "231" and metrics["chars4 estimate"] == "290"
    assert metrics["Estimate minus real"] == "+59"
    open_tab(at, "Prompt cost")
    at.number_input(key="an_leads").set_value(4000).run()  # 320,000 + 604,000 tokens
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Monthly prompt tokens"] == "924,000"
    assert metrics["Monthly prompt cost"] == "2.31 USD"  # 0.80 + 1.51 at 2.50 per million
    at.multiselect(key="an_tier").select("Basic").run()
    assert list(table(open_tab(at, "Approaching limits"), "trend")["client_id"]) == ["A"]
    assert not at.exception


def test_apply_a_saving_from_the_savings_page(app, small):
    dup = "Score leads from retail chains higher than average. " * 3
    small.apply(ADMIN, Change("A", fields={"a1": {"Instructions": dup}}))
    before = small.client_usage("A").usage
    at = app(small.store.path, SAVINGS)
    assert set(charts(at)) == {"savings"}
    assert "Download savings.csv" in [b.proto.label for b in at.get("download_button")]
    tips = [m.value for m in at.markdown if m.value.startswith("**saves")]
    assert "every fix together: 1 texts in 1 attributes" in tips[0]
    assert "duplicate" in tips[1] and tips[1].startswith(tips[0][:16])  # the same saving
    saves = int(tips[1].split("saves ")[1].split(" tokens")[0])
    assert not at.code  # a card's diff is drawn once its expander is opened
    at.session_state["sv_apply_1_changes"] = True
    at.run()
    assert "-Score leads from retail chains higher than average." in at.code[0].value
    at.button(key="sv_apply_1").click().run()
    assert not at.exception
    assert small.client_usage("A").usage == before - saves
    assert f"usage {before:,} → {before - saves:,} of 100 tokens" in at.success[0].value
    assert small.audit()[-1].action == "attribute.suggestion"


def test_model_rewrite_from_the_page(app, small, monkeypatch, model_server):  # noqa: F811
    monkeypatch.setenv("TOKENBUDGET_LLM_URL", model_server)
    monkeypatch.setenv("TOKENBUDGET_LLM_MODEL", "tiny")
    small.apply(ADMIN, Change("A", fields={"a1": {"Instructions": words(40) + "  "}}))
    FakeModel.answer = words(12)
    at = app(small.store.path, SAVINGS)
    at.selectbox(key="sv_llm_attr").select("a1").run()
    at.button(key="sv_llm_go").click().run()
    assert any("saves 29 tokens" in m.value for m in at.markdown), text_of(at)  # 41 -> 12
    at.button(key="sv_llm_apply").click().run()
    assert not at.exception
    assert small.client_usage("A").usage == 52
    assert "sv_rewrite" not in at.session_state  # applied: no longer offered


def test_no_model_configured_no_rewrite_section(app, small):
    small.apply(ADMIN, Change("A", fields={"a1": {"Instructions": words(40) + "  "}}))
    at = app(small.store.path, SAVINGS)
    assert at.button(key="sv_apply_0")  # the page has suggestions, but no model to ask
    assert not [b for b in at.button if b.key == "sv_llm_go"]


def batch_page(app, small):
    at = app(small.store.path, "app_pages/batch_edit.py")
    assert at.selectbox(key="be_group").value == "Size"  # a1 in A, b1 in B
    at.text_area(key="be_text_Size_Instructions").input(words(70)).run()
    return at


def test_batch_edit_page_applies_where_allowed_after_confirmation(app, small):
    at = batch_page(app, small)
    preview = table(at, "allowed")
    assert list(preview["allowed"]) == ["⛔ refused", "✅ fits"]
    assert preview["detail"][0] == "would use 110 of 100 tokens (10 over budget)"
    assert "1 of 2 would be saved; 1 refused." in text_of(at)
    assert at.button(key="be_apply").label == "Apply to 1 attribute"
    at.button(key="be_apply").click().run()
    # the dialog counts what the button counts: the refused copy is not in it
    assert ("Set **Instructions** of **1 attribute** in **1 client** to the new text. Each "
            "is checked against its client's budget once more as it is saved. Not included: "
            "1 refused copy, shown above.") in [m.value for m in at.markdown]
    assert small.audit() == []  # nothing before the confirmation
    at.button(key="batch_confirm").click().run()
    assert not at.exception
    results = table(at, "applied")
    assert list(results["applied"]) == ["✅ saved"]
    assert small.client_usage("A").usage == 80 and small.client_usage("B").usage == 70
    assert [e.client_id for e in small.audit()] == ["B"]


def test_batch_edit_cancel_and_target_choice(app, small):
    at = batch_page(app, small)
    at.multiselect(key="be_targets_Size").unselect("a1").run()
    assert list(table(at, "allowed")["allowed"]) == ["✅ fits"]
    at.button(key="be_apply").click().run()
    at.button(key="batch_cancel").click().run()
    assert small.audit() == [] and "confirm_batch" not in at.session_state


def test_filters_that_match_no_client(app, small):
    at = app(small.store.path, "app_pages/analytics.py")
    at.multiselect(key="an_status").select("exceeded").run()  # A warning, B ok
    assert not at.exception
    assert "0 of 2 clients match the filters." in text_of(at)
    assert "No active attribute matches the filters." in text_of(at)


def test_analyst_reviews_but_cannot_apply(app, small, monkeypatch):
    monkeypatch.setenv("TOKENBUDGET_ROLES", "ann@example.com:analyst")
    small.apply(ADMIN, Change("A", fields={"a1": {"Instructions": "Big.  Big."}}))
    at = app(small.store.path, SAVINGS, **signed_in("ann@example.com"))
    assert "Only admins can apply suggestions; you can review them." in text_of(at)
    assert at.button(key="sv_apply_0").disabled
    at.switch_page("app_pages/batch_edit.py").run()
    at.text_area(key="be_text_Size_Instructions").input(words(70)).run()
    assert at.button(key="be_apply").disabled
    assert "Only admins can apply a batch edit; you can preview it." in text_of(at)
