import plotly.express as px
import streamlit as st

import ui
from budget import views

st.title("Analytics")
frame, _ = ui.usage_table()
st.caption("Where the tokens go, by tier and by client.")

by_tier = frame.groupby("tier", as_index=False).agg(usage=("usage", "sum"),
                                                    clients=("client_id", "count"))
fig = px.bar(by_tier, x="tier", y="usage", text_auto=",.0f", hover_data=["clients"],
             title="Active tokens by tier", labels={"usage": "Tokens", "tier": "Tier"})
fig.update_yaxes(tickformat=",")
st.plotly_chart(fig, key="by_tier")

closest = frame.nsmallest(15, "remaining")
fig = px.bar(closest, x="percent_used", y="client", orientation="h", color="status",
             color_discrete_map=views.STATUS_COLOURS, title="Clients closest to their limit",
             labels={"percent_used": "% of budget used", "client": "Client"},
             hover_data={"usage": ":,", "budget": ":,"})
fig.update_layout(yaxis={"categoryorder": "total ascending"})
st.plotly_chart(fig, key="closest")
