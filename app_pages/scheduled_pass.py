import pandas as pd
import streamlit as st

import ui
from budget import automation
from budget.core import format_usage

svc = ui.service()
me = ui.actor()
frame, _ = ui.usage_table()
names = dict(zip(frame["client_id"], frame["client"], strict=True))

st.title("Scheduled pass")
policy, smtp = svc.automation_policy(), svc.smtp()
st.caption(
    "`tokenbudget run-due` runs this pass from cron or a systemd timer (see the README): "
    "due resets, alerts at " + ", ".join(f"{t}%" for t in policy.thresholds)
    + " of the budget to the client's "
    + policy.recipients.replace("both", "contact and account manager") + ", "
    + (f"sent through {smtp.host}:{smtp.port} ({smtp.security})" if smtp else
       "**email is off** (SMTP_HOST is not set)")
    + ", and automatic deactivation where it is on.")

plan = ui.due_plan(ui.data_version())
st.markdown("**Due now**, what the pass would do:\n"
            + "\n".join(f"- {line}" for line in plan.lines(prefix="")))
if "run_due_report" in st.session_state:
    with st.expander("What the last pass did", expanded=True):
        st.markdown("\n".join(f"- {line}" for line in st.session_state["run_due_report"]))


def describe_run(_: object) -> None:
    st.markdown(f"Run the pass now? It will do the {len(plan.lines(prefix=''))} thing(s) "
                "listed under **Due now**; emails cannot be unsent, deactivations can be "
                "restored below.")


def run(_: object) -> None:
    report = ui.attempt(lambda: svc.run_due(me))
    if report is not None and report.skipped:  # cron's pass, or another admin's, runs
        st.info(report.lines[0], icon="ℹ️")
    elif report is not None:
        st.session_state["run_due_report"] = list(report.lines)
        ui.after_write(f"Pass done: {len(report.lines)} line(s) of report"
                       + (f", {report.failed} email(s) failed (retried next pass)"
                          if report.failed else ""))


if st.button("Run the pass now…", disabled=plan.empty, key="run_due"):
    ui.ask("run_due")
ui.confirm("run_due", "Run the scheduled pass", "Run", describe_run, run)

st.header("Automatic deactivation")
st.caption("Off by default. When on, a pass switches off attributes of a client over its "
           "budget, in the chosen order, until it fits; a client within budget is never "
           "touched, and every switch-off is in the audit log with its reason.")
orders = list(automation.ORDERS)
g1, g2 = st.columns(2)
want_on = g1.toggle("On for every client", value=policy.auto_deactivate, key="auto_global")
want_order = g2.radio("Order", orders, index=orders.index(policy.order), horizontal=True,
                      format_func=automation.ORDERS.get, key="auto_order")
if (want_on, want_order) != (policy.auto_deactivate, policy.order):
    if ui.attempt(lambda: svc.set_auto_deactivate(me, None, want_on, want_order)) is not None:
        ui.after_write(f"Automatic deactivation {'on' if want_on else 'off'} for every client, "
                       f"{automation.ORDERS[want_order]}")

flags = svc.auto_deactivate_flags()
choices = {None: f"follow the setting for everyone ({'on' if policy.auto_deactivate else 'off'})",
           True: "on", False: "off"}
c1, c2 = st.columns(2)
cid = c1.selectbox("One client", list(names), format_func=lambda c: f"{names[c]} ({c})",
                   key="pass_client")
flag = c2.selectbox(f"For {names[cid]}", list(choices), index=list(choices).index(flags.get(cid)),
                    format_func=choices.get, key=f"auto_client_{cid}")
if flag != flags.get(cid):
    if ui.attempt(lambda: svc.set_auto_deactivate(me, cid, flag)) is not None:
        ui.after_write(f"{names[cid]}: automatic deactivation {choices[flag]}")

runs = svc.deactivation_runs()
open_runs = list(dict.fromkeys(d.run_id for d in runs if d.restored_at is None))
if not runs:
    st.caption("No automatic deactivation has happened yet.")
else:
    st.dataframe(pd.DataFrame([{"run": d.run_id, "at": d.at,
                                "client": names.get(d.client_id, d.client_id),
                                "attribute": d.name, "tokens": d.tokens,
                                "restored": d.restored_at, "reason": d.reason} for d in runs]),
                 hide_index=True, key="auto_runs", column_config={
        "at": st.column_config.DatetimeColumn("When", format="YYYY-MM-DD HH:mm"),
        "tokens": st.column_config.NumberColumn("Tokens", format="localized"),
        "restored": st.column_config.DatetimeColumn("Restored", format="YYYY-MM-DD HH:mm")})


def describe_restore(run_id: str) -> None:
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


def restore(run_id: str) -> None:
    back = ui.attempt(lambda: svc.restore_run(me, run_id))
    if back is not None:
        ui.after_write(f"Restored {len(back)} attribute(s) of run {run_id}")


if open_runs:
    r1, r2 = st.columns([3, 1], vertical_alignment="bottom")
    chosen_run = r1.selectbox("Run to restore", open_runs, key="restore_run")
    if r2.button("Restore…", key="restore"):
        ui.ask("restore", chosen_run)
ui.confirm("restore", "Restore a deactivation run", "Restore", describe_restore, restore)

st.header("Email alerts")
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
