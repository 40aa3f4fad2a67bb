import pandas as pd
import streamlit as st

import ui
from budget import automation, views
from budget.core import format_usage
from budget.model import BadInput
from budget.tokens import ENCODINGS

svc = ui.service()
me = ui.actor()
frame, _ = ui.usage_table()
tiers = svc.tiers()

st.title("Admin")
is_admin = me.role == "admin"
if not is_admin:
    st.info(f"You are signed in as {me.role}: you can look, only admins change anything.",
            icon="🔒")


@st.dialog("Confirm reset")
def confirm_reset(ids: list[str]) -> None:
    chosen = frame[frame["client_id"].isin(ids)]
    if len(chosen) == 1:
        row = chosen.iloc[0]
        st.markdown(f"Reset **{row['client']}**?")
        st.markdown(f"- usage recomputed from its attributes: **{format_usage(row['usage'], row['budget'])}**"
                    f" (stored copy: {row['stored_usage']:,})\n"
                    f"- any temporary top-up and this period's alerts are cleared\n"
                    f"- next reset date moves to the first period boundary after now\n"
                    f"- no attribute is deleted or deactivated")
    else:
        st.markdown(f"Reset **{len(chosen)} clients** "
                    f"({int(chosen['usage'].sum()):,} tokens in use between them)? Usage is "
                    "recomputed, top-ups and alerts cleared, reset dates moved; attributes stay.")
    c1, c2 = st.columns(2)
    if c1.button("Reset", type="primary", key="reset_confirm"):
        del st.session_state["confirm_reset"]
        results = ui.attempt(lambda: svc.reset_all(me, ids))
        if results is not None:
            changed = sum(r.changed for r in results)
            ui.after_write(results[0].message if len(results) == 1 else
                           f"Reset {changed} of {len(results)} clients "
                           f"({len(results) - changed} were already reset this period)")
    if c2.button("Cancel", key="reset_cancel"):
        del st.session_state["confirm_reset"]
        st.rerun()


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
if is_admin:
    b1, b2 = st.columns(2)
    if b1.button(f"Reset selected ({len(selected)})", disabled=not selected, key="reset_selected"):
        st.session_state["confirm_reset"] = selected
    if b2.button(f"Reset all ({len(frame)})", key="reset_all"):
        st.session_state["confirm_reset"] = list(frame["client_id"])
if "confirm_reset" in st.session_state:
    confirm_reset(st.session_state["confirm_reset"])

st.header("One client")
names = dict(zip(frame["client_id"], frame["client"]))
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


if is_admin:
    t1, t2, t3, t4 = st.tabs(["Reset", "Service level", "Budget override", "Top-up"])
    with t1:
        if st.button(f"Reset {client.name}…", key="reset_one"):
            st.session_state["confirm_reset"] = [cid]
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
    tier_frame, key="tiers_editor", num_rows="dynamic" if is_admin else "fixed",
    disabled=not is_admin, hide_index=True,
    column_config={"level": st.column_config.NumberColumn("Level", min_value=1, step=1, required=True),
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
                      key="encoding", disabled=not is_admin,
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

# --- the scheduled pass (issue 6): run-due, email alerts, automatic deactivation --------
st.header("Scheduled pass")
try:
    policy, smtp = svc.automation_policy(), svc.smtp()
except BadInput as e:  # a wrong setting: say which, keep the rest of the page
    st.error(f"The scheduled pass cannot run: {e}", icon="⛔")
    st.stop()
st.caption(
    "`tokenbudget run-due` runs this pass from cron or a systemd timer (see the README): "
    "due resets, alerts at " + ", ".join(f"{t}%" for t in policy.thresholds)
    + " of the budget to the client's "
    + policy.recipients.replace("both", "contact and account manager") + ", "
    + (f"sent through {smtp.host}:{smtp.port} ({smtp.security})" if smtp else
       "**email is off** (SMTP_HOST is not set)")
    + ", and automatic deactivation where it is on.")


@st.cache_data(ttl=60, show_spinner="Checking what is due…")
def due_plan(store_label: str) -> automation.Plan:
    """Cached like the other figures (every write clears it): on Airtable a plan costs
    requests, and this page reruns on every click."""
    return svc.plan_due()


plan = due_plan(svc.store_label)
st.markdown("**Due now**, what the pass would do:\n"
            + "\n".join(f"- {line}" for line in plan.lines(prefix="")))
if "run_due_report" in st.session_state:
    with st.expander("What the last pass did", expanded=True):
        st.markdown("\n".join(f"- {line}" for line in st.session_state["run_due_report"]))


@st.dialog("Run the scheduled pass")
def confirm_run_due() -> None:
    st.markdown(f"Run the pass now? It will do the {len(plan.lines(prefix=''))} thing(s) "
                "listed under **Due now**; emails cannot be unsent, deactivations can be "
                "restored below.")
    c1, c2 = st.columns(2)
    if c1.button("Run", type="primary", key="run_due_confirm"):
        del st.session_state["confirm_run_due"]
        report = ui.attempt(lambda: svc.run_due(me))
        if report is not None:
            st.session_state["run_due_report"] = list(report.lines)
            ui.after_write(f"Pass done: {len(report.lines)} line(s) of report"
                           + (f", {report.failed} email(s) failed (retried next pass)"
                              if report.failed else ""))
    if c2.button("Cancel", key="run_due_cancel"):
        del st.session_state["confirm_run_due"]
        st.rerun()


if is_admin and st.button("Run the pass now…", disabled=plan.empty, key="run_due"):
    st.session_state["confirm_run_due"] = True
if st.session_state.get("confirm_run_due"):
    confirm_run_due()

st.subheader("Automatic deactivation")
st.caption("Off by default. When on, a pass switches off attributes of a client over its "
           "budget, in the chosen order, until it fits; a client within budget is never "
           "touched, and every switch-off is in the audit log with its reason.")
orders = list(automation.ORDERS)
g1, g2 = st.columns(2)
want_on = g1.toggle("On for every client", value=policy.auto_deactivate, key="auto_global",
                    disabled=not is_admin)
want_order = g2.radio("Order", orders, index=orders.index(policy.order), horizontal=True,
                      format_func=automation.ORDERS.get, key="auto_order",
                      disabled=not is_admin)
if (want_on, want_order) != (policy.auto_deactivate, policy.order):
    if ui.attempt(lambda: svc.set_auto_deactivate(me, None, want_on, want_order)) is not None:
        ui.after_write(f"Automatic deactivation {'on' if want_on else 'off'} for every client, "
                       f"{automation.ORDERS[want_order]}")
flags = svc.auto_deactivate_flags()
choices = {None: f"follow the setting for everyone ({'on' if policy.auto_deactivate else 'off'})",
           True: "on", False: "off"}
flag = st.selectbox(f"For {client.name} (chosen under One client)", list(choices),
                    index=list(choices).index(flags.get(cid)), format_func=choices.get,
                    key=f"auto_client_{cid}", disabled=not is_admin)
if flag != flags.get(cid):
    if ui.attempt(lambda: svc.set_auto_deactivate(me, cid, flag)) is not None:
        ui.after_write(f"{client.name}: automatic deactivation {choices[flag]}")

runs = svc.deactivation_runs()
if runs:
    run_frame = pd.DataFrame([{"run": d.run_id, "at": d.at,
                               "client": names.get(d.client_id, d.client_id),
                               "attribute": d.name, "tokens": d.tokens,
                               "restored": d.restored_at, "reason": d.reason} for d in runs])
    st.dataframe(run_frame, hide_index=True, key="auto_runs", column_config={
        "at": st.column_config.DatetimeColumn("When", format="YYYY-MM-DD HH:mm"),
        "tokens": st.column_config.NumberColumn("Tokens", format="localized"),
        "restored": st.column_config.DatetimeColumn("Restored", format="YYYY-MM-DD HH:mm")})
    open_runs = list(dict.fromkeys(d.run_id for d in runs if d.restored_at is None))

    @st.dialog("Restore a deactivation run")
    def confirm_restore(run_id: str) -> None:
        items = [d for d in runs if d.run_id == run_id and d.restored_at is None]
        st.markdown(f"Switch back on the {len(items)} attribute(s) run **{run_id}** switched "
                    "off: " + ", ".join(f"{d.name} ({d.tokens:,} tokens)" for d in items) + "?")
        for now_usage, after in svc.preview_restore(run_id):
            over = (" — **over budget**: the next pass switches them off again unless the "
                    "policy is off for this client or its budget is raised"
                    if after > now_usage.budget else "")
            st.markdown(f"- {now_usage.client.name}: "
                        f"{format_usage(now_usage.usage, now_usage.budget)} → "
                        f"{format_usage(after, now_usage.budget)}{over}")
        c1, c2 = st.columns(2)
        if c1.button("Restore", type="primary", key="restore_confirm"):
            del st.session_state["confirm_restore"]
            back = ui.attempt(lambda: svc.restore_run(me, run_id))
            if back is not None:
                ui.after_write(f"Restored {len(back)} attribute(s) of run {run_id}")
        if c2.button("Cancel", key="restore_cancel"):
            del st.session_state["confirm_restore"]
            st.rerun()

    if is_admin and open_runs:
        r1, r2 = st.columns([3, 1])
        chosen_run = r1.selectbox("Run to restore", open_runs, key="restore_run")
        if r2.button("Restore…", key="restore"):
            st.session_state["confirm_restore"] = chosen_run
    if "confirm_restore" in st.session_state:
        confirm_restore(st.session_state["confirm_restore"])
else:
    st.caption("No automatic deactivation has happened yet.")

st.subheader("Email alerts")
sent_list = svc.notifications()
if sent_list:
    st.dataframe(pd.DataFrame([{
        "client": names.get(n.client_id, n.client_id), "threshold": f"{n.threshold}%",
        "period": n.period, "status": "✅ sent" if n.status == "sent" else "❌ failed",
        "at": n.at, "attempts": n.attempts, "to": ", ".join(n.recipients),
        "error": n.error} for n in sent_list]), hide_index=True, key="notifications",
        column_config={"period": st.column_config.DateColumn("Period from"),
                       "at": st.column_config.DatetimeColumn("Last attempt",
                                                             format="YYYY-MM-DD HH:mm")})
else:
    st.caption("No alert has been sent or attempted yet.")
