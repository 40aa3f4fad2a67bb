import pandas as pd
import streamlit as st

import ui
from budget import analytics, views
from budget.core import format_usage
from budget.model import FIELDS


svc = ui.service()
me = ui.actor()
st.title("Batch edit")
st.caption("Attributes copied from one template into several clients: edit the text once and "
           "apply it to the copies you choose. Each copy is checked against its own client's "
           "budget and saved as its own audited change; a refused one does not stop the others.")

groups, by_id = ui.templates(ui.data_version())
frame, _ = ui.usage_table()
clients = frame.set_index("client_id")
if not groups:
    st.info("No attribute appears in more than one client under the same or a similar name "
            "or text.")
    st.stop()

labels = {g.label: g for g in groups}
label = st.selectbox("Template", list(labels), key="be_group", format_func=lambda k: (
    f"{k} — {len(labels[k].attribute_ids):,} attributes in {labels[k].clients:,} clients"))
group = labels[label]
members = [by_id[aid] for aid in group.attribute_ids]
field = st.selectbox("Field to edit", FIELDS, key="be_field")

table = pd.DataFrame([{
    "attribute_id": a.id, "client": clients.loc[a.client_id, "client"], "attribute": a.name,
    "active": a.active, "text": a.text(field),
    "client_usage": format_usage(int(clients.loc[a.client_id, "usage"]),
                                       int(clients.loc[a.client_id, "budget"])),
    "status": views.STATUS_LABELS[clients.loc[a.client_id, "status"]]} for a in members])
st.dataframe(table, key="be_members", hide_index=True, width="stretch",
             column_config={"attribute_id": "Id", "client": "Client", "attribute": "Attribute",
                            "active": st.column_config.CheckboxColumn("Active"),
                            "text": st.column_config.TextColumn(f"{field} now", width="large"),
                            "client_usage": "Client usage", "status": "Client status"})

start = analytics.template_text(members, field)
text = st.text_area(f"New {field}", value=start, height=160, key=f"be_text_{label}_{field}",
                    help="Starts from the text most of the copies have.")
target_names = {a.id: f"{clients.loc[a.client_id, 'client']} — {a.name}" for a in members}
targets = st.multiselect("Apply to", list(group.attribute_ids), default=list(group.attribute_ids),
                         key=f"be_targets_{label}", format_func=target_names.get)
pairs = [(by_id[aid].client_id, aid) for aid in targets if by_id[aid].text(field) != text]
fields = {field: text}
if len(pairs) < len(targets):
    st.caption(f"{len(targets) - len(pairs):,} of the chosen already have this text; "
               "they are left alone.")

if pairs:
    preview = svc.preview_batch(pairs, fields)
    allowed = [r for r in preview if r.allowed]
    st.dataframe(pd.DataFrame([{
        "target": target_names[r.attribute_id], "allowed": "✅ fits" if r.allowed else "⛔ refused",
        "delta": r.validation.delta if r.validation else None, "detail": r.reason}
        for r in preview]), key="be_preview", hide_index=True, width="stretch",
        column_config={"target": "Client — attribute", "allowed": "Check",
                       "delta": st.column_config.NumberColumn("Change (tokens)", format="%+d"),
                       "detail": "Usage after / reason"})
    st.caption(f"{len(allowed):,} of {len(preview):,} would be saved; "
               f"{len(preview) - len(allowed):,} refused.")
    can_write = me.role == "admin"
    if not can_write:
        st.caption("Only admins can apply a batch edit; you can preview it.")
    # the dialog and the save act on what the button counts: the copies that fit
    if st.button(f"Apply to {views.counted(len(allowed), 'attribute')}", type="primary",
                 key="be_apply", disabled=not (allowed and can_write)):
        ui.ask("batch", [(r.client_id, r.attribute_id) for r in allowed])


def describe(chosen: list[tuple[str, str]]) -> None:
    left_out = len(pairs) - len(chosen)
    st.markdown(f"Set **{field}** of **{views.counted(len(chosen), 'attribute')}** in "
                f"**{views.counted(len({c for c, _ in chosen}), 'client')}** to the new text. "
                "Each is checked against its client's budget once more as it is saved."
                + (f" Not included: {views.counted(left_out, 'refused copy', 'refused copies')}"
                   ", shown above." if left_out else ""))


def apply(chosen: list[tuple[str, str]]) -> None:
    results = ui.attempt(lambda: svc.apply_batch(
        me, chosen, fields, {aid: by_id[aid].version for _, aid in chosen}))
    if results is not None:
        st.session_state["be_results"] = [(target_names[r.attribute_id], r.allowed, r.reason)
                                          for r in results]
        done = sum(r.allowed for r in results)
        ui.after_write(f"Applied to {done:,} of {len(results):,} attributes")


if pairs:
    ui.confirm("batch", "Apply the batch edit?", "Apply", describe, apply)

if "be_results" in st.session_state:
    st.subheader("Last batch edit")
    results = pd.DataFrame(st.session_state["be_results"], columns=["target", "applied", "detail"])
    st.dataframe(results.assign(applied=results["applied"].map({True: "✅ saved",
                                                                False: "⛔ refused"})),
                 key="be_results_table", hide_index=True, width="stretch",
                 column_config={"target": "Client — attribute", "applied": "Result",
                                "detail": "Usage after / reason"})
