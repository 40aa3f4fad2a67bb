import pandas as pd
import streamlit as st

import ui
from budget import views
from budget.core import format_usage
from budget.tokens import ENCODINGS

svc = ui.service()
me = ui.actor()
frame, _ = ui.usage_table()
tiers = svc.tiers()

st.title("Admin")
st.caption("Resets, service levels, budgets and tier limits; every change is in the audit "
           "log. The scheduled pass (due resets, alerts, automatic deactivation) has its "
           "own page.")


def describe_reset(ids: list[str]) -> None:
    chosen = frame[frame["client_id"].isin(ids)]
    if len(chosen) == 1:
        row = chosen.iloc[0]
        st.markdown(f"Reset **{row['client']}**?")
        st.markdown("- usage recomputed from its attributes: "
                    f"**{format_usage(row['usage'], row['budget'])}**"
                    f" (stored copy: {row['stored_usage']:,})\n"
                    f"- any temporary top-up and this period's alerts are cleared\n"
                    f"- next reset date moves to the first period boundary after now\n"
                    f"- no attribute is deleted or deactivated")
    else:
        st.markdown(f"Reset **{len(chosen)} clients** "
                    f"({int(chosen['usage'].sum()):,} tokens in use between them)? Usage is "
                    "recomputed, top-ups and alerts cleared, reset dates moved; attributes stay.")


def reset(ids: list[str]) -> None:
    results = ui.attempt(lambda: svc.reset_all(me, ids))
    if results is not None:
        changed = sum(r.changed for r in results)
        ui.after_write(results[0].message if len(results) == 1 else
                       f"Reset {changed} of {len(results)} clients "
                       f"({len(results) - changed} were already reset this period)")


st.header("All clients")
event = st.dataframe(
    frame, key="admin_clients", hide_index=True, width="stretch", on_select="rerun",
    selection_mode="multi-row",
    column_order=["client", "tier", "usage", "budget", "status_label", "stored_usage",
                  "next_reset", "account_manager"],
    column_config={"client": "Client", "tier": "Tier",
                   "usage": st.column_config.NumberColumn("Usage", format="localized"),
                   "budget": st.column_config.NumberColumn("Budget", format="localized"),
                   "status_label": "Status",
                   "stored_usage": st.column_config.NumberColumn(
                       "Stored Token Usage", format="localized",
                       help="The copy on the client record; differs when edited outside the app"),
                   "next_reset": st.column_config.DateColumn("Next reset"),
                   "account_manager": "Account manager"})
selected = list(frame.iloc[event.selection.rows]["client_id"]) if event.selection.rows else []
b1, b2 = st.columns(2)
if b1.button(f"Reset selected ({len(selected)})", disabled=not selected, key="reset_selected"):
    ui.ask("reset", selected)
if b2.button(f"Reset all ({len(frame)})", key="reset_all"):
    ui.ask("reset", list(frame["client_id"]))
ui.confirm("reset", "Confirm reset", "Reset", describe_reset, reset)

st.header("One client")
names = dict(zip(frame["client_id"], frame["client"], strict=True))
cid = st.selectbox("Client", list(names), format_func=lambda c: f"{names[c]} ({c})",
                   key="admin_client")
client = svc.client(cid)
version = ui.seen_version(f"client:{cid}", client.version)
now = svc.preview_client(cid)
st.markdown(f"{views.headline(now)} · {ui.status_badge(now.status)}")


def preview_line(label: str, after) -> None:
    crosses = " — **would be over budget**" if after.status == "exceeded" else ""
    st.caption(f"{label}: budget {now.budget:,} → {after.budget:,}; "
               f"{format_usage(after.usage, after.budget)}{crosses}")


t1, t2, t3, t4 = st.tabs(["Reset", "Service level", "Budget override", "Top-up"])
with t1:
    if st.button(f"Reset {client.name}…", key="reset_one"):
        ui.ask("reset", [cid])
        st.rerun()
with t2:
    level = st.selectbox("Service level", list(tiers), index=list(tiers).index(
        client.service_level) if client.service_level in tiers else 0,
        format_func=lambda lvl: f"{lvl} · {tiers[lvl].name} ({tiers[lvl].tokens:,})",
        key="level")
    preview_line("New tier", svc.preview_client(cid, service_level=level))
    if st.button("Change service level", disabled=level == client.service_level, key="set_level"):
        if ui.attempt(lambda: svc.set_service_level(me, cid, level, version)):
            ui.after_write(f"{client.name}: service level {level} ({tiers[level].name})")
with t3:
    override = st.number_input("Token Budget override", min_value=0, step=500,
                               value=client.token_budget or now.budget, key="override")
    preview_line("Override", svc.preview_client(cid, token_budget=int(override)))
    c1, c2 = st.columns(2)
    if c1.button("Set override", key="set_override"):
        if ui.attempt(lambda: svc.set_budget_override(me, cid, int(override), version)):
            ui.after_write(f"{client.name}: budget {int(override):,} tokens")
    if c2.button("Clear override", disabled=client.token_budget is None, key="clear_override"):
        if ui.attempt(lambda: svc.set_budget_override(me, cid, None, version)):
            ui.after_write(f"{client.name}: budget back to its tier's limit")
with t4:
    topup = st.number_input("Temporary top-up (until the next reset)", min_value=0, step=500,
                            value=client.topup, key="topup")
    preview_line("Top-up", svc.preview_client(cid, topup=int(topup)))
    if st.button("Grant top-up", key="grant_topup"):
        if ui.attempt(lambda: svc.grant_topup(me, cid, int(topup), version)):
            ui.after_write(f"{client.name}: top-up {int(topup):,} tokens until "
                           f"{client.budget_reset_date or 'the next reset'}")

st.header("Tier limits")
tier_frame = pd.DataFrame([{"level": t.level, "name": t.name, "tokens": t.tokens}
                           for t in tiers.values()])
edited = st.data_editor(
    tier_frame, key="tiers_editor", num_rows="dynamic", hide_index=True,
    column_config={"level": st.column_config.NumberColumn("Level", min_value=1, step=1,
                                                          required=True),
                   "name": st.column_config.TextColumn("Name", required=True),
                   "tokens": st.column_config.NumberColumn("Token Budget", min_value=0, step=500,
                                                           required=True, format="localized")})
changes = [(int(r.level), str(r.name), int(r.tokens)) for r in edited.dropna().itertuples()
           if (int(r.level), str(r.name), int(r.tokens)) not in
           {(t.level, t.name, t.tokens) for t in tiers.values()}]
if changes:
    for level, name, tokens in changes:
        pushed = svc.preview_tier_limit(level, tokens)
        old = tiers.get(level)
        st.markdown(f"**Level {level} ({name})**: {old.tokens:,} → {tokens:,} tokens"
                    if old else f"**New level {level} ({name})**: {tokens:,} tokens")
        if pushed:
            st.warning(f"{len(pushed)} client(s) would go over budget: " + ", ".join(
                f"{u.client.name} ({format_usage(u.usage, u.budget)})" for u in pushed))
        else:
            st.caption("No client would go over budget.")
    if st.button("Save tier limits", type="primary", key="save_tiers"):
        saved = [ui.attempt(lambda lv=lv, n=n, t=t: svc.set_tier_limit(me, lv, t, n))
                 for lv, n, t in changes]
        if all(saved):
            ui.after_write(f"Saved {len(saved)} tier limit(s)")

st.header("Tokenizer")
encodings = list(ENCODINGS)
choice = st.selectbox("Encoding", encodings, index=encodings.index(svc.encoding),
                      key="encoding",
                      help="chars4 is the old ceil(characters / 4) estimate")
if choice != svc.encoding:
    with st.spinner("Counting every attribute with " + choice):
        moves = svc.preview_encoding(choice)
    if moves:
        st.warning(f"Under {choice}, {len(moves)} client(s) change status:")
        st.dataframe(pd.DataFrame([{
            "client": now.client.name, "now": format_usage(now.usage, now.budget),
            "status now": now.status, f"under {choice}": format_usage(after.usage, after.budget),
            "status after": after.status} for now, after in moves]),
            hide_index=True, key="encoding_preview")
    else:
        st.caption(f"No client changes status under {choice}.")
    if st.button(f"Switch to {choice} and recount", type="primary", key="set_encoding"):
        if ui.attempt(lambda: svc.set_encoding(me, choice)) is not None:
            ui.after_write(f"Now counting with {choice}; every attribute recounted")
