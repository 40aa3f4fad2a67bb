"""AppTest of each admin action, its confirmation, and the audit log page."""


from tests.support.apptest import text_of
from tests.support.factories import ADMIN


def admin_page(app, small):
    return app(small.store.path, "app_pages/admin.py")


def test_reset_one_client_asks_then_resets(app, small):
    c = small.client("A")
    small.store.save_client(c.__class__(**{**c.__dict__, "token_usage": 5}))  # drifted
    at = admin_page(app, small)
    at.selectbox(key="admin_client").select("A").run()
    at.button(key="reset_one").click().run()
    dialog = "\n".join(m.value for m in at.markdown)
    assert "Reset **Alpha**?" in dialog and "80 / 100 tokens (80% used)" in dialog
    assert "stored copy: 5" in dialog
    assert small.audit() == []  # nothing happens before the confirmation
    at.button(key="reset_confirm").click().run()
    assert not at.exception
    assert small.client("A").token_usage == 80
    assert [e.action for e in small.audit()] == ["reset"]


def test_reset_cancel_changes_nothing(app, small):
    at = admin_page(app, small)
    at.button(key="reset_all").click().run()
    assert any("Reset **2 clients**" in m.value for m in at.markdown)
    at.button(key="reset_cancel").click().run()
    assert small.audit() == [] and "confirm_reset" not in at.session_state


def test_reset_all_after_confirmation(app, small):
    at = admin_page(app, small)
    at.button(key="reset_all").click().run()
    at.button(key="reset_confirm").click().run()
    assert sorted(e.client_id for e in small.audit()) == ["A", "B"]


def test_service_level_preview_and_change(app, small):
    at = admin_page(app, small)
    at.selectbox(key="admin_client").select("B").run()  # 150 tokens on level 2 (200)
    at.selectbox(key="level").select(1).run()
    assert any("budget 200 → 100; 150 / 100 tokens (150% used) — **would be over budget**"
               in c.value for c in at.caption)
    at.button(key="set_level").click().run()
    assert small.client("B").service_level == 1
    (entry,) = small.audit()
    assert (entry.action, entry.before, entry.after) == (
        "service_level", {"service_level": 2, "budget": 200}, {"service_level": 1, "budget": 100})


def test_nothing_changed_says_nothing_would_go_over(app, small):
    small.set_budget_override(ADMIN, "A", 50)  # 80 / 50: over budget already
    at = admin_page(app, small)
    at.selectbox(key="admin_client").select("A").run()
    lines = [c.value for c in at.caption if c.value.startswith(("New tier", "Override",
                                                                "Top-up"))]
    assert [line.split(":")[0] for line in lines] == ["New tier", "Override", "Top-up"]
    assert all(line.endswith(": no change yet, budget 50; 80 / 50 tokens (160% used) (over "
                             "budget already)") for line in lines), lines
    at.text_input(key="override").input("200").run()
    assert any(c.value == "Override: budget 50 → 200; 80 / 200 tokens (40% used) — back "
               "within budget" for c in at.caption)


def test_override_and_topup(app, small):
    at = admin_page(app, small)
    at.selectbox(key="admin_client").select("A").run()
    at.text_input(key="override").input("70").run()
    assert any("budget 100 → 70; 80 / 70 tokens" in c.value for c in at.caption)
    at.button(key="set_override").click().run()
    assert small.client("A").token_budget == 70
    at.text_input(key="topup").input("50").run()
    at.button(key="grant_topup").click().run()
    assert small.client_usage("A").budget == 120
    at.button(key="clear_override").click().run()
    assert small.client("A").token_budget is None
    assert [e.action for e in small.audit()] == ["budget_override", "topup", "budget_override"]
    small.reset(ADMIN, "A")  # the top-up expires at the reset
    assert small.client_usage("A").budget == 100


def test_stale_admin_write_refused_with_reload(app, small):
    at = admin_page(app, small)
    at.selectbox(key="admin_client").select("A").run()
    at.text_input(key="override").input("90").run()
    small.set_budget_override(ADMIN, "A", 95)  # another admin acts first
    at.button(key="set_override").click().run()
    assert any("changed since it was read" in e.value for e in at.error)
    assert small.client("A").token_budget == 95


def test_tier_limit_edit_previews_then_saves_and_is_audited(app, small):
    at = admin_page(app, small)
    assert not [b for b in at.button if b.key == "save_tiers"]  # nothing changed yet
    at.session_state["tiers_editor"] = {"edited_rows": {0: {"tokens": "70"}}, "added_rows": [],
                                        "deleted_rows": []}
    at.run()
    assert "**Level 1 (Basic)**: 100 → 70 tokens" in text_of(at)
    assert any("1 client(s) would go over budget: Alpha (80 / 70 tokens (114% used))" in w.value
               for w in at.warning)
    assert small.tiers()[1].tokens == 100  # nothing before Save
    at.button(key="save_tiers").click().run()
    at.button(key="tiers_confirm").click().run()  # Alpha would go over: asked first
    assert not at.exception
    assert small.tiers()[1].tokens == 70 and small.client_usage("A").status == "exceeded"
    (entry,) = small.audit()
    assert entry.action == "tier_limit" and entry.actor == "local admin"
    assert (entry.before, entry.after) == ({"level": 1, "name": "Basic", "tokens": 100},
                                           {"level": 1, "name": "Basic", "tokens": 70})


def test_audit_page_filters(app, small):
    small.set_service_level(ADMIN, "A", 2)
    small.reset(ADMIN, "B")
    small.set_tier_limit(ADMIN, 1, 120)
    at = app(small.store.path, "app_pages/audit.py")
    assert len(at.dataframe[0].value) == 3
    at.multiselect(key="audit_client").select("A").run()
    assert list(at.dataframe[0].value["action"]) == ["service_level"]
    at.multiselect(key="audit_client").unselect("A").run()
    at.multiselect(key="audit_action").select("reset").run()
    assert list(at.dataframe[0].value["client_id"]) == ["B"]
    assert not at.exception


def test_encoding_switch_previews_then_recounts(app, small):
    at = admin_page(app, small)
    at.selectbox(key="encoding").select("chars4").run()
    (preview,) = [d.value for d in at.dataframe if "status after" in d.value.columns]
    assert set(preview["client"]) == {"Alpha", "Beta"}
    assert small.encoding == "o200k_base"
    at.button(key="set_encoding").click().run()
    assert not at.exception
    assert small.encoding == "chars4" and small.client_usage("A").usage == 101
