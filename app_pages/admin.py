import pandas as pd
import streamlit as st

import ui
from budget import views
from budget.core import brief, format_usage
from budget.model import BadInput
from budget.service import ResetResult
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
        nxt = f"{row['next_reset']:%Y-%m-%d}" if pd.notna(row["next_reset"]) else "not set"
        st.markdown(f"Reset **{row['client']}**?")
        st.markdown("- usage recomputed from its attributes: "
                    f"**{format_usage(row['usage'], row['budget'])}**"
                    f" (stored copy: {row['stored_usage']:,})\n"
                    f"- any temporary top-up and this period's alerts are cleared\n"
                    f"- the next reset date becomes the first period boundary after now: "
                    f"**{nxt}** stays if it is still ahead, a date already passed moves on\n"
                    f"- no attribute is deleted or deactivated\n\n"
                    "Afterwards this page lists exactly what changed.")
    else:
        st.markdown(f"Reset **{len(chosen)} clients** "
                    f"({int(chosen['usage'].sum()):,} tokens in use between them)? Usage is "
                    "recomputed, top-ups and alerts cleared, reset dates moved; attributes stay.")
        st.markdown(", ".join(f"**{name}**" for name in chosen["client"]))


def reset_line(r: ResetResult, name: str) -> str:
    """What one reset changed, figure by figure, or why it changed nothing."""
    nxt = f"{r.budget_reset_date:%Y-%m-%d}"
    if not r.changed:
        return (f"{name}: nothing changed. It was already reset for the period from "
                f"{r.period_start:%Y-%m-%d}: usage {r.usage:,} tokens matches the stored "
                f"copy, no top-up, and the next reset {nxt} is already the first period "
                "boundary after now")
    before = f"{r.reset_date_before:%Y-%m-%d}" if r.reset_date_before else "not set"
    return (f"{name}: usage {r.usage_before:,} → {r.usage:,} tokens"
            + (" (unchanged)" if r.usage_before == r.usage else "")
            + f"; next reset {before} → {nxt}"
            + (" (unchanged: already the first period boundary after now)"
               if before == nxt else "")
            + (f"; top-up {r.topup_before:,} → 0" if r.topup_before else "; no top-up to clear")
            + "; this period's alerts cleared")


def reset(ids: list[str]) -> None:
    results = ui.attempt(lambda: svc.reset_all(me, ids))
    if results is not None:
        names = dict(zip(frame["client_id"], frame["client"], strict=True))
        lines = [reset_line(r, names.get(r.client_id, r.client_id)) for r in results]
        st.session_state["reset_report"] = lines
        changed = sum(r.changed for r in results)
        ui.after_write(lines[0] if len(results) == 1 else
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
if report := st.session_state.get("reset_report"):
    st.success("**Last reset**\n\n" + "\n".join(f"- {line}" for line in report), icon="✅")

st.header("One client")
names = dict(zip(frame["client_id"], frame["client"], strict=True))
cid = st.selectbox("Client", list(names), format_func=lambda c: f"{names[c]} ({c})",
                   key="admin_client")
client = svc.client(cid)
version = ui.seen_version(f"client:{cid}", client.version)
now = svc.preview_client(cid)
st.markdown(f"{views.headline(now)} · {ui.status_badge(now.status)}")


def preview_line(label: str, after) -> None:
    """What the change in this tab would do; 'would be over budget' only when it is the
    change that takes the client over, never for a client over already."""
    over, was_over = after.status == "exceeded", now.status == "exceeded"
    if after.budget == now.budget:
        st.caption(f"{label}: no change yet, budget {now.budget:,}; "
                   f"{format_usage(now.usage, now.budget)}"
                   + (" (over budget already)" if was_over else ""))
        return
    note = (" — **would be over budget**" if over and not was_over
            else " — still over budget" if over else " — back within budget" if was_over
            else "")
    st.caption(f"{label}: budget {now.budget:,} → {after.budget:,}; "
               f"{format_usage(after.usage, after.budget)}{note}")


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


def tokens_field(label: str, value: int, key: str, preview: str, field: str) -> str | None:
    """A token figure typed as text and handed to the service as typed; None when the
    service refuses it (not a whole, non-negative number), said under the field: a
    number widget would clamp or truncate it and save something else."""
    typed = st.text_input(label, value=str(value), key=key,
                          help="A whole number of tokens, 0 or more, in digits")
    try:
        preview_line(preview, svc.preview_client(cid, **{field: typed}))
    except BadInput as e:
        st.error(f"{e.field}: {e.problem}. Nothing is saved until it is a whole number "
                 "of tokens, 0 or more.", icon="⛔")
        return None
    return typed


with t3:
    override = tokens_field("Token Budget override", client.token_budget or now.budget,
                            "override", "Override", "token_budget")
    c1, c2 = st.columns(2)
    if c1.button("Set override", key="set_override", disabled=override is None):
        if saved := ui.attempt(lambda: svc.set_budget_override(me, cid, override, version)):
            ui.after_write(f"{client.name}: budget {saved.token_budget:,} tokens")
    if c2.button("Clear override", disabled=client.token_budget is None, key="clear_override"):
        if ui.attempt(lambda: svc.set_budget_override(me, cid, None, version)):
            ui.after_write(f"{client.name}: budget back to its tier's limit")
with t4:
    topup = tokens_field("Temporary top-up (until the next reset)", client.topup, "topup",
                         "Top-up", "topup")
    if st.button("Grant top-up", key="grant_topup", disabled=topup is None):
        if saved := ui.attempt(lambda: svc.grant_topup(me, cid, topup, version)):
            ui.after_write(f"{client.name}: top-up {saved.topup:,} tokens until "
                           f"{client.budget_reset_date or 'the next reset'}")

st.header("Tier limits")
st.caption("Levels and budgets are whole numbers typed as digits; a value the service "
           "refuses is said next to its row and nothing is saved.")
tier_frame = pd.DataFrame([{"level": str(t.level), "name": t.name, "tokens": str(t.tokens)}
                           for t in tiers.values()])
edited = st.data_editor(
    tier_frame, key="tiers_editor", num_rows="dynamic", hide_index=True,
    column_config={"level": st.column_config.TextColumn("Level", required=True),
                   "name": st.column_config.TextColumn("Name", required=True),
                   "tokens": st.column_config.TextColumn("Token Budget", required=True)})
known = {(str(t.level), t.name, str(t.tokens)) for t in tiers.values()}
rows = [(str(r.level).strip(), str(r.name), str(r.tokens).strip())
        for r in edited.dropna().itertuples()]
changes, pushed, refused = [], {}, False
for row, (level, name, tokens) in enumerate(rows, start=1):
    if (level, name, tokens) in known:
        continue
    try:
        over = svc.preview_tier_limit(level, tokens, name)  # checks all three, as a save does
    except BadInput as e:
        st.error(f"Row {row} ({brief(name)}): {e.field}: {e.problem}. Nothing is saved "
                 "until every row has a whole number, 0 or more, and a short name.", icon="⛔")
        refused = True
        continue
    changes.append((level, name, tokens))
    old = tiers.get(int(level))
    st.markdown(f"**Level {level} ({name})**: {old.tokens:,} → {int(tokens):,} tokens"
                if old else f"**New level {level} ({name})**: {int(tokens):,} tokens")
    if over:
        pushed[level] = over
        st.warning(f"{len(over)} client(s) would go over budget: " + ", ".join(
            f"{u.client.name} ({format_usage(u.usage, u.budget)})" for u in over))
    else:
        st.caption("No client would go over budget.")


def save_tiers(changes: list[tuple[str, str, str]]) -> None:
    saved = [ui.attempt(lambda lv=lv, n=n, t=t: svc.set_tier_limit(me, lv, t, n))
             for lv, n, t in changes]
    if all(saved):
        ui.after_write(f"Saved {len(saved)} tier limit(s): " + ", ".join(
            f"level {t.level} ({t.name}) {t.tokens:,} tokens" for t in saved if t))


def describe_tiers(changes: list[tuple[str, str, str]]) -> None:
    over = [u for level, _, _ in changes for u in pushed.get(level, [])]
    st.markdown(f"These **{len(over)} client(s)** would go over budget:")
    st.markdown("\n".join(f"- **{u.client.name}**: {format_usage(u.usage, u.budget)}"
                           for u in over))
    st.markdown("Save the new limits anyway?")


if changes or refused:
    if st.button("Save tier limits", type="primary", key="save_tiers", disabled=refused):
        if pushed:
            ui.ask("tiers", changes)
        else:
            save_tiers(changes)
ui.confirm("tiers", "Clients would go over budget", "Save tier limits", describe_tiers,
           save_tiers)

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
