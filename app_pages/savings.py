import pandas as pd
import plotly.express as px
import streamlit as st

import ui
from budget import views
from budget.llm import RewriteFailed
from budget.model import FIELDS, BadInput
from ui import COLOURS, LABELS

svc = ui.service()
me = ui.actor()
can_write = me.role == "admin"
st.title("Savings that keep the meaning")
st.caption("Collapsing whitespace, dropping repeated or near-identical sentences and "
           "examples, and keeping a sentence copied across a client's attributes in the "
           "first one only. The figure is measured on the result of all fixes together; "
           "single fixes overlap, and the list is measured again after each one.")
frame, _ = ui.usage_table()
if frame.empty:
    st.info("No clients yet. Run `make run` (or `tokenbudget demo-data`) to load the demo data.")
    st.stop()

f1, f2 = st.columns(2)
tiers = f1.multiselect("Tier", list(frame.sort_values("service_level")["tier"].unique()),
                       key="sv_tier")
statuses = f2.multiselect("Status", list(views.STATUS_LABELS), key="sv_status",
                          format_func=views.STATUS_LABELS.get)
shown = views.filter_usage(frame, tiers=tiers, statuses=statuses)
names = dict(zip(frame["client_id"], frame["client"], strict=True))

tips, versions = ui.savings(ui.data_version())
visible = set(shown["client_id"])
table = pd.DataFrame([{"client_id": cid, "client": names.get(cid, cid), "kind": t.kind,
                       "attribute": t.attribute, "field": t.field_name, "saves": t.saves,
                       "suggestion": t.message} for cid, t in tips if cid in visible],
                     columns=["client_id", "client", "kind", "attribute", "field", "saves",
                              "suggestion"])
if table.empty:
    st.info("Nothing to suggest: no active attribute repeats itself or another.")
    st.stop()

together = table[table["kind"] == "all"].join(
    shown.set_index("client_id")[["usage", "status"]], on="client_id")
together = together.assign(percent_saved=(100.0 * together["saves"]
                                          / together["usage"]).round(1))
fig = px.bar(together.nlargest(20, "saves"), labels=LABELS,
             x="saves", y="client", color="status", orientation="h",
             color_discrete_map=COLOURS,
             title="Tokens saved by applying every fix, the 20 clients with most to gain",
             hover_data={"saves": ":,", "usage": ":,", "percent_saved": ":.1f",
                         "status": False})
fig.update_layout(yaxis={"categoryorder": "total ascending"})
ui.chart(fig, "savings", "Tokens saved per prompt", "Client", 600)
ui.csv_download(table, "savings")

st.header("Apply a saving")
pick = st.selectbox("Client", list(dict.fromkeys(table["client_id"])), key="sv_client",
                    format_func=lambda cid: f"{names[cid]} ({cid})")
if not can_write:
    st.caption("Only admins can apply suggestions; you can review them.")
for i, tip in enumerate([t for cid, t in tips if cid == pick][:15]):
    ui.suggestion_card(tip, f"sv_apply_{i}", disabled=not can_write, apply=lambda tip=tip: (
        ui.apply_change(me, tip.change(pick), {aid: versions[aid] for aid in tip.edits},
                        f"Saved {tip.saves:,} tokens for {names[pick]}",
                        action="attribute.suggestion")))

if svc.llm_config() is not None:
    st.subheader("Rewrite with a language model")
    st.caption("Optional: sends one text to the configured endpoint and shows the answer "
               "as a suggestion; nothing is saved until you apply it.")
    attrs = [a for a in svc.attributes(pick) if a.active]
    r1, r2 = st.columns(2)
    aid = r1.selectbox("Attribute", [a.id for a in attrs], key="sv_llm_attr",
                       format_func={a.id: a.name for a in attrs}.get)
    fld = r2.selectbox("Field", FIELDS, key="sv_llm_field")
    if st.button("Ask the model", key="sv_llm_go"):
        try:
            st.session_state["sv_rewrite"] = (pick, aid, fld,
                                              svc.rewrite_suggestion(pick, aid, fld))
        except (RewriteFailed, BadInput) as e:
            st.error(f"No rewrite: {e}", icon="⛔")
    *asked, got = st.session_state.get("sv_rewrite", (None, None, None, None))
    if asked == [pick, aid, fld] and got is None:
        st.caption("The model's version saves no tokens; nothing to apply.")
    elif asked == [pick, aid, fld]:
        ui.suggestion_card(got, "sv_llm_apply", disabled=not can_write, apply=lambda: (
            ui.apply_change(me, got.change(pick), {aid: versions[aid]}, "Rewrite saved",
                            forget="sv_rewrite", action="attribute.suggestion")))
