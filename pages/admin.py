import streamlit as st

import ui

st.title("Admin")
frame, _ = ui.usage_table()
st.caption("Resets, tiers and limits arrive with the admin issue; the table shows every "
           "client's next reset date.")
st.dataframe(frame[["client", "tier", "usage", "budget", "next_reset", "account_manager"]],
             hide_index=True, width="stretch", key="admin_clients",
             column_config={"usage": st.column_config.NumberColumn("Usage", format="localized"),
                            "budget": st.column_config.NumberColumn("Budget", format="localized"),
                            "next_reset": st.column_config.DateColumn("Next reset")})
