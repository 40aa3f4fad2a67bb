import streamlit as st

import ui
from budget import audit

st.title("Audit log")
entries = ui.service().audit()
frame, _ = ui.usage_table()
names = dict(zip(frame["client_id"], frame["client"], strict=True))
log = audit.audit_frame(entries, names)
if log.empty:
    st.info("No change has been made yet.")
    st.stop()

f1, f2, f3, f4 = st.columns(4)
clients = f1.multiselect("Client", sorted(c for c in log["client_id"].unique() if c),
                         key="audit_client", format_func=lambda c: f"{names.get(c, c)} ({c})")
actors = f2.multiselect("Who", sorted(log["actor"].unique()), key="audit_actor")
actions = f3.multiselect("What", sorted(log["action"].unique(), key=audit.action_label),
                         key="audit_action", format_func=audit.action_label)
first, last = log["at"].min().date(), log["at"].max().date()
days = f4.date_input("Dates", (first, last), key="audit_dates")
days = tuple(days) if isinstance(days, tuple | list) else (days,)  # one day picked so far
shown = audit.filter_audit(log, clients, actors, actions, *days[:2])

st.caption(f"{len(shown):,} of {len(log):,} entries, newest first. Select a row to see "
           "its changes in full.")
picked = st.dataframe(
    shown, hide_index=True, width="stretch", key="audit_table", on_select="rerun",
    selection_mode="single-row", column_order=["at", "actor", "what", "client", "changes"],
    column_config={"at": st.column_config.DatetimeColumn("When (UTC)",
                                                         format="YYYY-MM-DD HH:mm:ss"),
                   "actor": "Who", "what": "What", "client": "Client",
                   "changes": st.column_config.TextColumn("What changed (before → after)",
                                                          width="large")})
export = shown.rename(columns={"at": "when_utc", "actor": "who", "changes": "what_changed"})
st.download_button("Download CSV", export.to_csv(index=False),
                   file_name="audit-log.csv", mime="text/csv", icon="⬇️", key="audit_csv",
                   help="The entries the filters show, with the changes as in the table.")
rows = picked.selection.rows if picked is not None else []
if rows:
    row = shown.iloc[rows[0]]
    entry = entries[len(entries) - 1 - int(row.name)]  # the frame is the log newest first
    st.subheader(f"{row['what']} · {row['client']}")
    st.caption(f"by {row['actor']} at {row['at']:%Y-%m-%d %H:%M:%S} UTC")
    st.code(audit.entry_diff(entry), language="diff", wrap_lines=True)
