import pandas as pd
import streamlit as st

import ui
from budget import views

st.title("Audit log")
entries = ui.service().audit()
frame, _ = ui.usage_table()
names = dict(zip(frame["client_id"], frame["client"], strict=True))
log = pd.DataFrame([{"at": e.at, "actor": e.actor, "action": e.action,
                     "what": views.label(e.action),
                     "client_id": e.client_id or "",
                     "client": (f"{names.get(e.client_id, e.client_id)} ({e.client_id})"
                                if e.client_id else "—"),
                     "before": views.values_text(e.before), "after": views.values_text(e.after)}
                    for e in entries],
                   columns=["at", "actor", "action", "what", "client_id", "client", "before",
                            "after"])
if log.empty:
    st.info("No admin action has been taken yet.")
    st.stop()

f1, f2, f3 = st.columns(3)
clients = f1.multiselect("Client", sorted(c for c in log["client_id"].unique() if c),
                         key="audit_client", format_func=lambda c: names.get(c, c))
actions = f2.multiselect("Action", sorted(log["action"].unique()), key="audit_action",
                         format_func=views.label)
first, last = log["at"].min().date(), log["at"].max().date()
days = f3.date_input("Dates", (first, last), key="audit_dates")
shown = log
if clients:
    shown = shown[shown["client_id"].isin(clients)]
if actions:
    shown = shown[shown["action"].isin(actions)]
if isinstance(days, tuple) and len(days) == 2:
    shown = shown[(shown["at"].dt.date >= days[0]) & (shown["at"].dt.date <= days[1])]

st.caption(f"{len(shown):,} of {len(log):,} entries, newest first")
st.dataframe(shown.sort_values("at", ascending=False), hide_index=True, width="stretch",
             key="audit_table",
             column_order=["at", "actor", "what", "client", "before", "after"],
             column_config={"at": st.column_config.DatetimeColumn("When (UTC)",
                                                                  format="YYYY-MM-DD HH:mm:ss"),
                            "actor": "Who", "what": "What", "client": "Client",
                            "before": "Before", "after": "After"})
st.download_button("Download CSV", shown.to_csv(index=False), file_name="audit-log.csv",
                   mime="text/csv", icon="⬇️", key="audit_csv")
