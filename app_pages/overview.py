import streamlit as st

import ui
from budget import views

st.title("Token budgets")
frame, _ = ui.usage_table()

k1, k2, k3, k4 = st.columns(4)
k1.metric("Clients", f"{len(frame):,}")
k2.metric("Active tokens in total", f"{int(frame['usage'].sum()):,}")
k3.metric("Clients in warning", f"{int((frame['status'] == 'warning').sum()):,}")
k4.metric("Clients over budget", f"{int((frame['status'] == 'exceeded').sum()):,}")

drifted = int(frame["drifted"].sum())
if drifted:
    st.info(f"{drifted:,} client(s) have a stored Token Usage that differs from their attributes "
            "(edited outside this app). A reset writes the right figure.", icon="ℹ️")

f1, f2, f3 = st.columns([2, 1, 1])
search = f1.text_input("Search clients", placeholder="Name or id", key="search")
tiers = f2.multiselect("Tier", sorted(frame["tier"].unique()), key="tier_filter")
statuses = f3.multiselect("Status", list(views.STATUS_LABELS), key="status_filter",
                          format_func=views.STATUS_LABELS.get)
shown = views.filter_usage(frame, search, tiers, statuses)
shown = shown.assign(open="client?client=" + shown["client_id"])

st.caption(f"{len(shown):,} of {len(frame):,} clients · select a row to open the client")
event = st.dataframe(
    shown,
    key="clients",
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    column_order=["client", "open", "tier", "percent_used", "usage", "budget", "remaining",
                  "status_label", "next_reset", "account_manager"],
    column_config={
        "client": st.column_config.TextColumn("Client", pinned=True),
        "open": st.column_config.LinkColumn("Page", display_text="Open"),
        "tier": "Tier",
        "percent_used": st.column_config.ProgressColumn(
            "Used", format="%.0f%%", min_value=0, max_value=100),
        "usage": st.column_config.NumberColumn("Usage (tokens)", format="localized"),
        "budget": st.column_config.NumberColumn("Budget (tokens)", format="localized"),
        "remaining": st.column_config.NumberColumn("Remaining", format="localized"),
        "status_label": "Status",
        "next_reset": st.column_config.DateColumn("Next reset", format="YYYY-MM-DD"),
        "account_manager": "Account manager",
    },
)
st.download_button("Download CSV", shown.drop(columns=["open", "status_label"]).to_csv(index=False),
                   file_name="client-usage.csv", mime="text/csv", icon="⬇️", key="csv")

if event.selection.rows:
    chosen = shown.iloc[event.selection.rows[0]]["client_id"]
    st.switch_page("app_pages/client.py", query_params={"client": chosen})
