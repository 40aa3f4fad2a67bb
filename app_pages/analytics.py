from datetime import timedelta

import plotly.express as px
import streamlit as st

import ui
from budget import analytics, views
from ui import COLOURS, DIRECTION_COLOURS, LABELS, SERIES, chart
from ui import csv_download as csv

# how far back the trends and the lines over time look, in days (None: all history)
RANGES: dict[str, int | None] = {"Last 7 days": 7, "Last 30 days": 30, "Last 90 days": 90,
                                 "Last year": 365, "All history": None}
svc = ui.service()
version = ui.data_version()  # cached figures last until the data changes
st.title("Analytics")
st.caption("Where the tokens go, where usage is heading and what the prompts cost; what "
           "could be saved is on the Savings page. Figures are for active attributes, counted "
           f"with **{svc.encoding}**.")
frame, _ = ui.usage_table()
if frame.empty:
    st.info("No clients yet. Run `make run` (or `tokenbudget demo-data`) to load the demo data.")
    st.stop()

f1, f2, f3 = st.columns(3)
tiers = f1.multiselect("Tier", list(frame.sort_values("service_level")["tier"].unique()),
                       key="an_tier")
statuses = f2.multiselect("Status", list(views.STATUS_LABELS), key="an_status",
                          format_func=views.STATUS_LABELS.get)
span = f3.selectbox("History", list(RANGES), index=len(RANGES) - 1, key="an_range",
                    help="The usage snapshots the trends and the lines over time are drawn from")
shown = views.filter_usage(frame, tiers=tiers, statuses=statuses)
names = dict(zip(frame["client_id"], frame["client"], strict=True))
st.caption(f"{len(shown):,} of {len(frame):,} clients match the filters.")
hover = {"status": False, "client": True, "tier": True}
order = list(frame.sort_values("service_level")["tier"].unique())
now = svc.clock()
start = None if RANGES[span] is None else now - timedelta(days=RANGES[span])

# each section is a tab of its own that runs only while it is open (on_change="rerun"),
# so a chart has the width of the page and loads on its own; the open tab is in the URL
tabs = st.tabs(["Top attributes", "Approaching limits", "By tier", "Usage over time",
                "chars4 vs real", "Prompt cost"], key="an_view", on_change="rerun",
               bind="query-params")

# 1. top attributes ------------------------------------------------------------------------
with tabs[0]:
    if tabs[0].open:
        n = st.slider("How many", 5, 50, 20, key="an_top_n")
        # the store picks the candidates: of the filtered clients only when a filter is set
        chosen = tuple(sorted(shown["client_id"])) if tiers or statuses else None
        top = analytics.top_attributes(ui.top_costs(version, n, chosen), frame, n, tiers,
                                       statuses)
        if top.empty:
            st.caption("No active attribute matches the filters.")
        else:
            fig = px.bar(top, labels=LABELS, x="tokens", y="label", color="status",
                         orientation="h", color_discrete_map=COLOURS,
                         title=f"The {len(top):,} active attributes that cost the most "
                         "tokens, all clients",
                         hover_data={**hover, "label": False, "attribute": True, "tokens": ":,",
                                     "instructions": ":,", "examples": ":,", "signals": ":,"})
            fig.update_layout(yaxis={"categoryorder": "total ascending"})
            chart(fig, "top_attributes", "Tokens per prompt", "Attribute · client",
                  160 + 24 * len(top))
            csv(top.drop(columns=["label"]), "top-attributes")

# 2. approaching limits --------------------------------------------------------------------
with tabs[1]:
    if tabs[1].open:
        history = analytics.since(ui.history(version), start)
        min_days = svc.settings.trend_min_days
        outlook = analytics.forecast(shown, history, now, min_days)
        closest = outlook.head(15)
        # bars within budget say when they reach it; over budget, the red says it already
        closest = closest.assign(note=closest["trend"].where(closest["status"] != "exceeded", ""))
        fig = px.bar(closest, labels=LABELS, x="headroom", y="client", color="status",
                     orientation="h", text="note", color_discrete_map=COLOURS,
                     title="Headroom left in the budget, least first (below zero: over budget)",
                     hover_data={**hover, "usage": ":,", "budget": ":,", "percent_used": ":d",
                                 "tokens_per_day": ":,", "trend": True, "note": False})
        fig.update_traces(textposition="outside", cliponaxis=False, textfont_size=11)
        fig.update_layout(yaxis={"categoryorder": "array",
                                 "categoryarray": closest["client"][::-1]})
        chart(fig, "headroom", "Tokens left before the budget", "Client", 160 + 26 * len(closest))
        st.caption("The date each client reaches its budget follows a straight line through "
                   "its usage snapshots in the chosen history (one is taken at every change "
                   f"and reset). A line needs at least {analytics.MIN_POINTS} snapshots "
                   f"spanning {min_days:g} days (TOKENBUDGET_TREND_MIN_DAYS); before that the "
                   "trend says **not enough history yet**, and less than "
                   f"{analytics.FLAT:,.0f} token a day of change is **no trend**.")
        st.dataframe(outlook.assign(headroom_text=outlook["headroom"].map(views.remaining_text),
                                    per_day=outlook["tokens_per_day"].map(views.count_text)),
                     key="outlook_table", hide_index=True, width="stretch",
                     column_order=["client", "trend", "percent_used", "usage", "budget",
                                   "headroom_text", "per_day", "snapshots", "tier"],
                     column_config={
                         "client": st.column_config.TextColumn("Client", pinned=True),
                         "trend": st.column_config.TextColumn("At this trend", width=190),
                         "percent_used": st.column_config.NumberColumn("% used", format="%d%%"),
                         "usage": st.column_config.NumberColumn("Usage (tokens)",
                                                                format="localized"),
                         "budget": st.column_config.NumberColumn("Budget (tokens)",
                                                                 format="localized"),
                         "headroom_text": "Headroom (tokens)",
                         "per_day": "Trend (tokens/day)", "snapshots": "Snapshots", "tier": "Tier"})
        csv(outlook, "headroom-forecast")

# 3. distribution by tier ------------------------------------------------------------------
with tabs[2]:
    if tabs[2].open:
        fig = px.strip(shown, labels=LABELS,
                       x="tier", y="percent_used", color="status", color_discrete_map=COLOURS,
                       category_orders={"tier": order},
                       title="Share of budget used, each dot a client",
                       hover_data={"client": True, "usage": ":,", "budget": ":,",
                                   "percent_used": ":d", "status": False})
        fig.add_hline(y=100 * svc.settings.warning, line_dash="dot", line_color=COLOURS["warning"],
                      annotation_text="warning")
        fig.add_hline(y=100, line_dash="dash", line_color=COLOURS["exceeded"],
                      annotation_text="budget")
        chart(fig, "by_tier", "Tier", "Budget used (%)")
        by_tier = analytics.tier_summary(shown) if not shown.empty else shown
        st.dataframe(by_tier, key="tier_table", hide_index=True, width="stretch",
                     column_order=["tier", "clients", "usage", "mean_percent_used",
                                   "median_percent_used", "ok", "warning", "exceeded"],
                     column_config={"tier": "Tier",
                                    "clients": st.column_config.NumberColumn("Clients",
                                                                             format="localized"),
                                    "usage": st.column_config.NumberColumn("Usage (tokens)",
                                                                           format="localized"),
                                    "mean_percent_used": st.column_config.NumberColumn(
                                        "Mean % used", format="%d%%"),
                                    "median_percent_used": st.column_config.NumberColumn(
                                        "Median % used", format="%d%%"),
                                    **{s: st.column_config.NumberColumn(views.STATUS_LABELS[s])
                                       for s in views.STATUS_LABELS}})
        csv(by_tier, "usage-by-tier")

# 4. usage over time -----------------------------------------------------------------------
with tabs[3]:
    if tabs[3].open:
        per, overall = analytics.usage_over_time(
            ui.history(version), names, dict(zip(shown["client_id"], shown["usage"], strict=True)),
            start)
        if per.empty:
            st.info("No usage history yet: a snapshot is taken at every change and every reset, "
                    "so the lines appear as soon as clients' attributes are edited or reset.")
        else:
            fig = px.line(overall, labels=LABELS, x="at", y="usage", markers=True, line_shape="hv",
                          title="All clients together (each client's last known usage, summed)",
                          hover_data={"usage": ":,", "clients": True})
            fig.update_yaxes(rangemode="tozero")  # a steady total reads as steady, not as a cliff
            chart(fig, "overall_over_time", "Time (UTC)", "Tokens", x_is_time=True)
            with_history = [c for c in shown["client_id"] if c in set(per["client_id"])]
            picked = st.multiselect("Clients", with_history, default=with_history[:5],
                                    format_func=names.get, key="an_over_time")
            lines = per[per["client_id"].isin(picked)]
            fig = px.line(lines, labels=LABELS, color_discrete_sequence=SERIES,
                          x="at", y="usage", color="client", markers=True, line_shape="hv",
                          title="Usage of the chosen clients",
                          hover_data={"usage": ":,", "budget": ":,"})
            chart(fig, "client_over_time", "Time (UTC)", "Tokens", x_is_time=True)
            csv(overall, "usage-overall")
            csv(per, "usage-history")

# 5. chars4 against tiktoken ---------------------------------------------------------------
with tabs[4]:
    if tabs[4].open:
        per_attr, per_client = analytics.estimate_error(ui.costs(version),
                                                        ui.costs(version, "chars4"),
                                                        names)
        per_client = per_client[per_client["client_id"].isin(set(shown["client_id"]))]
        per_attr = per_attr[per_attr["client_id"].isin(set(shown["client_id"]))]
        real, est = int(per_client["tokens"].sum()), int(per_client["chars4"].sum())
        m1, m2, m3, m4 = st.columns(4)
        m1.metric(f"Real ({svc.encoding})", f"{real:,}")
        m2.metric("chars4 estimate", f"{est:,}")
        m3.metric("Estimate minus real", f"{est - real:+,}",
                  f"{100 * (est - real) / real:+.1f}%" if real else None, delta_color="off")
        m4.metric("Clients under-counted",
                  f"{(per_client['error'] < 0).sum():,} of {len(per_client):,}")
        fig = px.bar(per_client, labels=LABELS, x="error", y="client", color="direction",
                     orientation="h",
                     color_discrete_map=DIRECTION_COLOURS,
                     title="chars4 estimate minus real count per client (right of zero: the old "
                     "figure was too high)",
                     hover_data={"tokens": ":,", "chars4": ":,", "error": ":+,",
                                                  "error_percent": ":+.1f", "direction": False})
        fig.update_layout(yaxis={"categoryorder": "array", "categoryarray": per_client["client"]})
        chart(fig, "estimate_error", "Tokens (estimate − real)", "Client",
              160 + 18 * len(per_client))
        st.caption("Largest differences by attribute (all attributes, active or not):")
        st.dataframe(per_attr.head(20), key="estimate_table", hide_index=True, width="stretch",
                     column_order=["attribute", "client", "active", "tokens", "chars4", "error",
                                   "error_percent"],
                     column_config={"attribute": "Attribute", "client": "Client",
                                    "active": st.column_config.CheckboxColumn("Active"),
                                    **{c: st.column_config.NumberColumn(LABELS[c],
                                                                        format="localized")
                                       for c in ("tokens", "chars4", "error")},
                                    "error_percent": st.column_config.NumberColumn(
                                        LABELS["error_percent"], format="%+.1f%%")})
        csv(per_client, "chars4-vs-real-by-client")
        csv(per_attr, "chars4-vs-real")

# 6. prompt cost ---------------------------------------------------------------------------
with tabs[5]:
    if tabs[5].open:
        assume = svc.cost_assumptions()
        c1, c2 = st.columns(2)
        leads = c1.number_input("Scored leads per client per month", 0, 100_000_000,
                                assume.leads_per_month, 100, key="an_leads")
        price = c2.number_input(f"Price per million input tokens ({assume.currency})", 0.0, 1_000.0,
                                float(assume.price_per_mtok), 0.05, key="an_price", format="%.2f")
        revenue = {}
        for col, lvl in zip(st.columns(len(order)), sorted(svc.tiers()), strict=False):
            revenue[lvl] = col.number_input(
                f"{svc.tiers()[lvl].name}: revenue per client per month ({assume.currency})", 0.0,
                1e9, float(assume.revenue_by_level.get(lvl, 0.0)), 10.0, key=f"an_rev_{lvl}")
        st.caption("Tokens per scored lead are the client's usage (its active attributes); "
                   "the rest of the prompt is the same for everyone and left out. Leads per "
                   "month and revenue come from settings (TOKENBUDGET_LEADS_PER_MONTH, "
                   "TOKENBUDGET_PRICE_PER_MTOK, TOKENBUDGET_TIER_REVENUE) as defaults for "
                   "every client: the data has no per-client figures. Change them here to "
                   "see what-ifs.")
        cost = analytics.prompt_cost(shown, int(leads), float(price),
                                     {k: v for k, v in revenue.items() if v > 0})
        k1, k2, k3 = st.columns(3)
        k1.metric("Monthly prompt tokens", f"{int(cost['monthly_tokens'].sum()):,}")
        k2.metric("Monthly prompt cost", f"{cost['monthly_cost'].sum():,.2f} {assume.currency}")
        k3.metric("Most expensive client", f"{cost['monthly_cost'].max():,.2f} {assume.currency}"
                  if not cost.empty else "—")
        fig = px.bar(cost.head(20), labels=LABELS,
                     x="monthly_cost", y="client", color="status", orientation="h",
                     color_discrete_map=COLOURS, title="Monthly prompt cost, the 20 highest",
                     hover_data={**hover, "tokens_per_lead": ":,", "leads_per_month": ":,",
                                 "monthly_tokens": ":,", "monthly_cost": ":,.2f"})
        fig.update_layout(yaxis={"categoryorder": "total ascending"})
        chart(fig, "prompt_cost", f"Cost per month ({assume.currency})", "Client", 600)
        roi = cost.dropna(subset=["cost_percent_of_revenue"])
        if roi.empty:
            st.caption("Enter a revenue per tier above (or set TOKENBUDGET_TIER_REVENUE) to "
                       "see the cost against what each client pays.")
        else:
            roi = roi.sort_values("cost_percent_of_revenue", ascending=False).head(20)
            fig = px.bar(roi, labels=LABELS,
                         x="cost_percent_of_revenue", y="client", color="status", orientation="h",
                         color_discrete_map=COLOURS,
                         title="Prompt cost as a share of the client's revenue, the 20 highest",
                         hover_data={**hover, "monthly_cost": ":,.2f", "monthly_revenue": ":,.2f",
                                     "tokens_per_revenue_unit": ":,"})
            fig.update_layout(yaxis={"categoryorder": "total ascending"})
            chart(fig, "roi", "Prompt cost / revenue (%)", "Client", 600)
        csv(cost, "prompt-cost")
