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
shown = views.usage_display(views.filter_usage(frame, search, tiers, statuses))

st.caption(f"{len(shown):,} of {len(frame):,} clients · click a row's box at the left to "
           "open the client")
event = st.dataframe(
    shown,
    key="clients",
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    # what a person looks for first, so it fits a laptop screen: who, how it stands,
    # how much is used and left (in view at 1024 px beside the sidebar); then the bar
    # and the details
    column_order=["client", "status_label", "figure", "remaining_text", "bar", "tier",
                  "next_reset_text", "manager"],
    column_config={
        "client": st.column_config.TextColumn("Client", pinned=True, width=150),
        "status_label": st.column_config.TextColumn("Status", width=100),
        "figure": st.column_config.TextColumn("Used / budget", width=135,
                                              help="Tokens of the active attributes / the "
                                                   "client's budget in tokens"),
        "remaining_text": st.column_config.TextColumn("Remaining (tokens)", width=120),
        "bar": st.column_config.ImageColumn("% used", width=115,
                                            help="Whole percent of the budget, rounded down"),
        "tier": st.column_config.TextColumn("Tier", width=110),
        "next_reset_text": st.column_config.TextColumn("Next reset", width=100),
        "manager": st.column_config.TextColumn("Account manager", width=150),
    },
)
st.download_button("Download CSV",
                   shown.drop(columns=["status_label", *views.DISPLAY_COLUMNS]).to_csv(
                       index=False),
                   file_name="client-usage.csv", mime="text/csv", icon="⬇️", key="csv")

if event.selection.rows:  # one click on a row opens its client, in this tab
    chosen = shown.iloc[event.selection.rows[0]]["client_id"]
    st.switch_page("app_pages/client.py", query_params={"client": chosen})
