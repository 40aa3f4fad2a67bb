"""AppTest of each page and interaction, on a copy of the demo data or the small set."""

import pytest

from budget.model import BadInput, Change
from tests.support.apptest import live_boxes, opens, signed_in, text_of
from tests.support.factories import ADMIN, settings_from, words

ROLES = "Vera@Example.com:viewer, ann@example.com:analyst, ada@example.com:admin"
READ_ONLY = ["app_pages/overview.py", "app_pages/client.py", "app_pages/analytics.py",
             "app_pages/audit.py"]
REVIEW = ["app_pages/savings.py", "app_pages/batch_edit.py"]
ADMIN_ONLY = ["app_pages/admin.py", "app_pages/scheduled_pass.py"]


def test_overview_kpis_and_table(app, demo_copy):
    at = app(demo_copy)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Clients"] == "40"
    table = at.dataframe[0].value
    assert len(table) == 40
    assert int(labels["Clients over budget"]) == (table["status"] == "exceeded").sum() > 0
    assert labels["Active tokens in total"] == f"{table['usage'].sum():,}"
    assert table["percent_used"].is_monotonic_decreasing  # closest to the limit first


def test_overview_filters(app, demo_copy):
    at = app(demo_copy)
    at.multiselect(key="status_filter").select("exceeded").run()
    table = at.dataframe[0].value
    assert len(table) > 0 and set(table["status"]) == {"exceeded"}
    at.multiselect(key="status_filter").unselect("exceeded").run()
    at.multiselect(key="tier_filter").select("Basic").run()
    assert set(at.dataframe[0].value["tier"]) == {"Basic"}
    at.text_input(key="search").input("initech").run()
    names = list(at.dataframe[0].value["client"])
    assert names and all("initech" in n.lower() for n in names)
    assert not at.exception


def test_deep_link_opens_client_page(app, small):
    at = app(small.store.path, client="A")
    body = text_of(at)
    assert "Token Usage: 80 / 100 tokens (80% used)" in body
    assert "Warning: Only 20 tokens remaining" in body
    assert at.title[0].value == "Alpha"


def test_exceeded_client_shows_message_and_upgrade(app, small):
    small.set_budget_override(ADMIN, "A", 60)
    at = app(small.store.path, "app_pages/client.py", client="A")
    assert "Budget exceeded. Please deactivate attributes or upgrade plan." in text_of(at)
    assert "Token Usage: 80 / 60 tokens (133% used)" in text_of(at)


def test_attribute_library_figures(app, small):
    at = app(small.store.path, "app_pages/client.py", client="A")
    lib = at.dataframe[0].value.set_index("attribute_id")
    fields = ["instructions", "examples", "signals", "tokens"]
    assert lib.loc["a2", fields].tolist() == [30, 10, 0, 40]
    assert lib.loc["a1", "share"] == 50.0 and lib.loc["a3", "share"] == 0.0


def test_toggle_refused_when_over_budget(app, small):
    at = app(small.store.path, "app_pages/client.py", client="A")
    at.selectbox(key="edit_attr").select("a3").run()
    at.toggle[0].set_value(True).run()
    assert "80 → 105 tokens (delta +25)" in text_of(at)
    assert at.button(key="save").disabled
    assert any("Cannot save" in e.value and "5 over budget" in e.value for e in at.error)
    assert not small.store.attributes(ids=["a3"])[0].active


def test_toggle_allowed_when_it_fits_and_figures_update(app, small):
    small.apply(ADMIN, Change("A", fields={"a3": {"Instructions": words(15)}}))
    at = app(small.store.path, "app_pages/client.py", client="A")
    at.selectbox(key="edit_attr").select("a3").run()
    at.toggle[0].set_value(True).run()
    assert "80 → 95 tokens (delta +15)" in text_of(at)
    assert not at.button(key="save").disabled
    at.button(key="save").click().run()
    assert not at.exception
    assert small.store.attributes(ids=["a3"])[0].active
    assert "Token Usage: 95 / 100 tokens (95% used)" in text_of(at)


def test_edit_preview_numbers_and_save(app, small):
    at = app(small.store.path, "app_pages/client.py", client="A")
    at.selectbox(key="edit_attr").select("a1").run()
    live_boxes(at)[0].input(words(12)).run()  # Instructions: 40 -> 12 tokens
    assert "80 → 52 tokens (delta -28)" in text_of(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Remaining after"] == "48" and metrics["Usage"] == "52"
    at.button(key="save").click().run()
    assert small.client_usage("A").usage == 52
    assert small.client("A").token_usage == 52


def test_bulk_activation_checked_as_one(app, small):
    small.apply(ADMIN, Change("A", active={"a2": False}))  # 40 used
    at = app(small.store.path, "app_pages/client.py", client="A")
    # the picker says what each one is and costs before it is picked
    assert at.multiselect(key="bulk_pick").options == [
        "Size · active · 40 tokens", "Industry · inactive · 40 tokens",
        "Intent · inactive · 25 tokens"]
    at.multiselect(key="bulk_pick").select("a2").select("a3").run()  # +40 +25 = 105
    assert "Activating these 2 together: 40 → 105 of 100 tokens" in text_of(at)
    assert at.button(key="bulk_on").disabled
    at.multiselect(key="bulk_pick").unselect("a3").run()
    assert "Activating 'Industry': 40 → 80 of 100 tokens" in text_of(at)  # not "all 1"
    assert not at.button(key="bulk_on").disabled
    at.button(key="bulk_on").click().run()
    assert small.client_usage("A").usage == 80


def test_suggestions_show_savings(app, small):
    dup = "Score leads from retail chains higher than average. " * 3
    assert small.apply(ADMIN, Change("A", fields={"a1": {"Instructions": dup}})).allowed
    at = app(small.store.path, "app_pages/client.py", client="A")
    at.toggle(key="tips_open").set_value(True).run()
    tips = [m.value for m in at.markdown if "saves" in m.value]
    assert any("duplicate" in t for t in tips)
    assert any("costly" in t and "'Size'" in t for t in tips)


def test_unknown_client_deep_link(app, small):
    at = app(small.store.path, client="NOPE")
    assert any("No client with id 'NOPE'" in e.value for e in at.error)


def test_unknown_client_on_the_client_page_falls_back_to_the_first_with_a_message(app, small):
    at = app(small.store.path, "app_pages/client.py", client="NOPE")
    assert [w.value for w in at.warning][0] == (
        "No client with id 'NOPE': showing **Alpha (A)**, the first client, instead. Pick "
        "another below.")
    assert at.title[0].value == "Alpha" and at.query_params["client"] == "NOPE"
    at.selectbox(key="pick").select("B").run()  # picking one opens it
    assert at.title[0].value == "Beta" and not at.warning and not at.exception


def test_analytics_and_admin_pages_render(app, demo_copy):
    at = app(demo_copy, "app_pages/analytics.py")
    # one tab per section, and only the open one runs: the charts themselves are in
    # tests/test_analytics_pages.py
    assert [t.label for t in at.tabs] == ["Top attributes", "Approaching limits", "By tier",
                                          "Usage over time", "chars4 vs real", "Prompt cost"]
    assert [c.key for c in at.get("plotly_chart")] == ["top_attributes"]
    assert [b.key for b in at.button] == ["refresh"]  # read-only: the sidebar's Refresh only
    at = app(demo_copy, "app_pages/admin.py")
    assert len(at.dataframe[0].value) == 40


def test_roles_from_settings():
    def roles(value: object) -> dict[str, str]:
        return settings_from({"TOKENBUDGET_ROLES": value}).roles
    assert roles(ROLES) == {"vera@example.com": "viewer", "ann@example.com": "analyst",
                            "ada@example.com": "admin"}
    assert roles({"Ada@Example.com": "admin"}) == {"ada@example.com": "admin"}
    assert roles("") == {}
    with pytest.raises(BadInput, match="ann@example.com: unknown role 'owner'"):
        roles("ann@example.com:owner")


@pytest.mark.parametrize("email, role, pages", [
    ("vera@example.com", "viewer", READ_ONLY),
    ("ann@example.com", "analyst", READ_ONLY + REVIEW),
    ("ada@example.com", "admin", READ_ONLY + REVIEW + ADMIN_ONLY),
    ("someone@else.example", "viewer", READ_ONLY),  # not in the settings: a viewer
])
def test_navigation_by_role_after_login(app, small, monkeypatch, email, role, pages):
    monkeypatch.setenv("TOKENBUDGET_ROLES", ROLES)
    at = app(small.store.path, **signed_in(email.upper() if role == "admin" else email))
    assert f"Signed in as **{email}** ({role})" in text_of(at.sidebar)
    assert [p for p in READ_ONLY + REVIEW + ADMIN_ONLY if opens(at, p)] == pages
    at.switch_page(pages[-1]).run()
    assert not at.exception


def test_nobody_signed_in_sees_only_the_login(app, small, monkeypatch):
    monkeypatch.setenv("TOKENBUDGET_ROLES", ROLES)
    at = app(small.store.path, **{**signed_in("ada@example.com"), "user": {"is_logged_in": False}})
    assert [b.key for b in at.button] == ["login"]
    assert at.title[0].value == "Token budgets"
    assert not at.dataframe and not at.sidebar.caption  # no figures, not even the store


def test_local_mode_is_the_local_admin(app, small):
    at = app(small.store.path)
    assert "you are the local **admin**" in text_of(at.sidebar)
    assert opens(at, "app_pages/scheduled_pass.py")
