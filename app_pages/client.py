from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import ui
from budget import audit, core, optimize, views
from budget.model import (FIELDS, Attribute, AttributeCost, BadInput, Change, FieldTokens,
                          Usage)
from budget.optimize import Suggestion
from ui.live_text import drawn, live_text, put, typed

TIPS_IN_VIEW = 5  # suggestion cards drawn before "Show more"
svc = ui.service()
me = ui.actor()
labels = ui.client_labels()
if not labels:
    st.info("No clients yet. Run `make run` (or `tokenbudget demo-data`) to load the demo data.")
    st.stop()

ids = list(labels)
wanted = st.query_params.get("client")
shown_id = wanted if wanted in labels else ids[0]
if wanted is not None and wanted not in labels:  # the URL stays as it was, so a reload agrees
    st.warning(f"No client with id {wanted!r}: showing **{labels[shown_id]}**, the first "
               "client, instead. Pick another below.", icon="🔎")
elif wanted is None:
    st.query_params["client"] = shown_id


def picked() -> None:
    """The user chose a client: the URL names it before the run, so one run draws it
    (switched from the script, the page ran twice: the selector's run, then the new
    client's), and the browser keeps the client before in its history. Setting the URL
    is all it takes, here and in a harness that starts each run afresh (AppTest), where
    st.switch_page from a callback finds no pages; in Chromium the two take the same time."""
    st.query_params["client"] = st.session_state["pick"]


# the client is in the URL: picking another opens its page as a new browser-history entry,
# so Back returns to the client before. One selector, kept from client to client and set
# to the URL's client, rather than a new one of 2,000 options for each client. Typing
# finds the clients whose name or id contains what is typed (a fuzzy match of "C00002"
# also offers C00012, and sorting 2,000 options by score on each keystroke made typing lag)
st.session_state["pick"] = client_id = shown_id
st.selectbox("Client", ids, format_func=labels.__getitem__, key="pick", on_change=picked,
             filter_mode="contains")

usage, attrs, costs = ui.client_detail(client_id)
client = usage.client
tier = svc.tiers().get(client.service_level)

st.title(client.name)
st.caption(f"{tier.name if tier else 'Level ' + str(client.service_level)} plan · "
           f"account manager {client.account_manager or '—'} · {client.email or 'no contact'}")

def figures(usage: Usage, attrs: list[Attribute], costs: Sequence[AttributeCost]
            ) -> pd.DataFrame:
    """The headline, status, attribute library and chart of the client; the library
    frame, which the editor lists."""
    client = usage.client
    ui.usage_headline(usage)
    message = views.status_message(usage)
    if usage.status == "warning":
        st.warning(message, icon="⚠️")
    elif usage.status == "exceeded":
        st.error(message, icon="⛔")
        st.link_button("Upgrade plan", svc.settings.upgrade_url, key="upgrade")
    st.markdown(f"Status {ui.status_badge(usage.status)} · next reset "
                f"**{client.budget_reset_date:%Y-%m-%d}**" if client.budget_reset_date else
                f"Status {ui.status_badge(usage.status)} · no reset date set")
    if usage.drifted:
        st.info(f"Airtable's stored Token Usage says {client.token_usage:,}; the attributes add up "
                f"to {usage.usage:,}. A reset writes the right figure.", icon="ℹ️")

    library = views.attribute_frame(attrs, costs)
    st.header("Attribute library")
    st.dataframe(
        library, key="library", hide_index=True, width="stretch",
        column_order=["name", "active", "instructions", "examples", "signals", "tokens", "share"],
        column_config={
            "name": "Attribute", "active": st.column_config.CheckboxColumn("Active"),
            "instructions": st.column_config.NumberColumn("Instructions", format="localized"),
            "examples": st.column_config.NumberColumn("Examples", format="localized"),
            "signals": st.column_config.NumberColumn("Signals", format="localized"),
            "tokens": st.column_config.NumberColumn("Tokens", format="localized"),
            "share": st.column_config.ProgressColumn("Share of usage", format="%.1f%%",
                                                     min_value=0, max_value=100),
        })
    top = library[library["active"]].head(15)
    # one trace built directly, each field's tokens in its hover (the grid above has them in
    # columns): plotly express took 35-85 ms of the server's run per client, and three
    # stacked traces with their legend 0.06 s more of the browser's drawing
    if not top.empty:
        fig = go.Figure(go.Bar(
            x=top["tokens"], y=top["name"], orientation="h",
            customdata=top[[f.lower() for f in FIELDS]],
            hovertemplate="%{y}: %{x:,} tokens<br>" + "<br>".join(
                f"{f}: %{{customdata[{i}]:,}}" for i, f in enumerate(FIELDS)) + "<extra></extra>"))
        fig.update_layout(title="Which active attributes use the most tokens",
                          height=120 + 28 * top["name"].nunique(),
                          yaxis={"categoryorder": "total ascending", "title": "Attribute"},
                          xaxis={"title": "Tokens", "tickformat": ","})
        st.plotly_chart(fig, key="top_attributes")
    return library


def preview(result) -> None:
    c1, c2, c3 = st.columns(3)
    c1.metric("Usage", f"{result.projected:,}", f"{result.delta:+,} tokens",
              delta_color="inverse", help=f"now {result.current:,}")
    c2.metric("Remaining after", views.remaining_text(result.budget - result.projected))
    c3.metric("Budget", f"{result.budget:,}")
    st.caption(f"{result.current:,} → {result.projected:,} tokens (delta {result.delta:+,}) · "
               f"after the change {core.format_usage(result.projected, result.budget)}")


def last_change(attribute_id: str) -> str:
    """Who saved the attribute last and when, from the audit log: what a user whose
    draft was overtaken needs to know before saving over it."""
    entries = [e for e in svc.audit(client_id)
               if audit.is_attribute_action(e.action) and attribute_id in e.after]
    if not entries:
        return "someone outside this app"
    e = entries[-1]
    before, after = e.before.get(attribute_id, {}), e.after[attribute_id]
    fields = [k.capitalize() for k in after if before.get(k) != after[k]]
    return (f"{e.actor} at {e.at:%Y-%m-%d %H:%M:%S} UTC"
            + (f" ({', '.join(fields)})" if fields else ""))


def draft_keys(aid: str, version: int) -> dict[str, str]:
    """The widget keys of a draft: one set per version it is based on, so a draft
    outlives the cache reload that brings someone else's newer version, and one per
    draft dropped ("Keep theirs"), so the text the browser still holds for a dropped
    draft cannot come back."""
    dropped = st.session_state.get(f"dropped_{aid}", 0)
    return {f: f"{f}_{aid}_{version}_{dropped}" for f in (*FIELDS, "active")}


def drafted_value(field: str, key: str):
    """What the user set in the draft widget `key` of `field`, None while untouched."""
    return st.session_state.get(key) if field == "active" else typed(key)


def drafted(a: Attribute, keys: dict[str, str]) -> tuple[Change, dict[str, str]]:
    """The change the draft widgets `keys` hold against `a`, and the texts it edits,
    as the browser last sent them."""
    texts = {f: typed(keys[f]) for f in FIELDS}
    edited = {f: t for f, t in texts.items() if t is not None and t != a.text(f)}
    active = st.session_state.get(keys["active"], a.active)
    return (Change(client_id, {a.id: edited} if edited else {},
                   {a.id: active} if active != a.active else {}), edited)


def saved_message(a: Attribute, change: Change, edited: dict[str, str]) -> str:
    """What a save of `change` to `a` says it did."""
    if change.active and not edited:
        return f"{'Activated' if change.active[a.id] else 'Deactivated'} '{a.name}'"
    return f"Saved '{a.name}' ({', '.join(edited) or 'Active'})"


limit = svc.settings.max_text_chars


def editor(attrs: list[Attribute], costs: Sequence[AttributeCost], library: pd.DataFrame
           ) -> None:
    """The editor and the bulk switch, over the attributes as read in this run (cached
    per data version): a save made elsewhere since the page was drawn is then a
    conflict here, not overwritten."""
    if not attrs:
        st.info("This client has no attributes.")
        return
    by_id = {a.id: a for a in attrs}
    ids = list(library["attribute_id"])
    state = {i: "active" if by_id[i].active else "inactive" for i in ids}
    choices = {i: f"{by_id[i].name} ({state[i]})" for i in ids}
    ui.show_current_labels("edit_attr", choices)  # a save may switch the state
    aid = st.selectbox("Attribute", ids, key="edit_attr", format_func=choices.__getitem__)
    a = by_id[aid]
    # the draft: the version the user's text is based on, and a conflict once someone
    # else saved a newer one over it
    draft_key = f"draft_{aid}"
    draft = st.session_state.setdefault(draft_key, {"base": a, "conflict": None})
    base = draft["base"]
    if base.version != a.version:
        old = draft_keys(aid, base.version)
        mine = {f: v for f, k in old.items() if (v := drafted_value(f, k)) is not None
                and v != (base.active if f == "active" else base.text(f))}
        if mine:  # keep what the user typed, on top of the new version, and say so
            draft["conflict"] = (last_change(aid), {f: a.text(f) for f in mine if f in FIELDS})
            new = draft_keys(aid, a.version)
            for f, value in mine.items():
                if f == "active":
                    st.session_state[new[f]] = value
                else:
                    put(new[f], value)
        draft["base"] = base = a
    keys = draft_keys(aid, a.version)
    st.session_state.setdefault(keys["active"], a.active)
    st.toggle("Active", key=keys["active"])  # read with the texts, by drafted()
    # the text of each box as typed (the box sends it a moment after the last
    # keystroke), previewed before the boxes are drawn, so each shows its field's
    # tokens next to its character count
    change, edited = drafted(a, keys)
    # each field's tokens now and as typed, counted by the service that saves it
    now = next(c.tokens for c in costs if c.id == aid)
    after: FieldTokens | None = now
    result, refused = None, None
    if edited or change.active:
        try:
            result, recounted = svc.preview_change(change)
            after = recounted.get(aid, now)
        except BadInput as e:  # a text over the length limit: said under its box
            refused = e
            after = None  # no count of a text that cannot be saved
    for f in FIELDS:
        if after is not None:
            note = views.field_tokens_text(now.of(f), after.of(f))
        else:  # refused: no count of the typed texts; an untouched field's still holds
            note = "" if f in edited else views.field_tokens_text(now.of(f), now.of(f))
        live_text(f, keys[f], a.text(f), limit=limit, note=note,
                  help=f"At most {limit:,} characters; a longer text is refused.")
        if refused is not None and refused.field == f:
            st.error(f"{f}: {refused.problem}. Shorten it to save; nothing was saved.",
                     icon="⛔")
    if refused is not None and refused.field not in FIELDS:
        st.error(f"{refused}. Nothing was saved.", icon="⛔")
    if draft["conflict"]:
        who, theirs = draft["conflict"]
        st.error(f"'{a.name}' was changed by someone else since you opened it: {who}. "
                 "Your text is still in the boxes; compare it with theirs below, then save "
                 "yours on purpose or keep theirs.", icon="🔄")
        with st.expander("Their version", expanded=True):
            for f, text in theirs.items():
                st.text_area(f"{f} (theirs)", text, disabled=True, height=110,
                             key=f"theirs_{f}_{aid}_{a.version}")

    def keep_theirs(aid: str = aid) -> None:
        """Drops the draft: the boxes are drawn afresh, under new keys, with theirs."""
        st.session_state[f"dropped_{aid}"] = st.session_state.get(f"dropped_{aid}", 0) + 1
        st.session_state.pop(f"draft_{aid}", None)

    if edited or change.active:
        if result is not None:
            preview(result)
            drawn("the preview")
            if not result.allowed:
                st.error(f"Cannot save: {result.reason}. Trim the text or deactivate another "
                         "attribute first.", icon="⛔")
            label, key = (("Save mine anyway", "save_anyway") if draft["conflict"]
                          else ("Save change", "save"))

            def save(a: Attribute = a, keys: dict[str, str] = keys):
                """The draft as the press found it, based on the version shown; nothing
                once someone else saved a newer one, which the editor then shows as a
                conflict to settle on purpose."""
                latest = {x.id: x.version for x in ui.client_detail(client_id)[1]}
                if latest.get(a.id) != a.version:
                    return None
                change, edited = drafted(a, keys)
                return change, {a.id: a.version}, saved_message(a, change, edited)

            c1, c2 = st.columns(2)
            c1.button(label, type="primary", disabled=not result.allowed, key=key,
                      on_click=ui.change_on_click("editor", me, save, forget=draft_key))
            if draft["conflict"]:
                c2.button("Keep theirs", key="keep_theirs", on_click=keep_theirs)
    else:
        if draft["conflict"]:
            st.session_state.pop(draft_key, None)
        st.caption("Change the toggle or a text to see its impact before saving.")
    ui.refusals("editor")

    st.subheader("Bulk activate or deactivate")
    tokens = dict(zip(library["attribute_id"], library["tokens"], strict=True))
    picks = {i: f"{by_id[i].name} · {state[i]} · {views.counted(int(tokens[i]), 'token')}"
             for i in ids}
    ui.show_current_labels("bulk_pick", picks)  # a save moves the state and the tokens
    chosen = st.multiselect("Attributes", ids, key="bulk_pick", format_func=picks.__getitem__)
    if chosen:
        on = Change(client_id, active={i: True for i in chosen})
        check = svc.validate(on)
        what = (f"'{by_id[chosen[0]].name}'" if len(chosen) == 1
                else f"these {len(chosen)} together")
        st.caption(f"Activating {what}: {check.current:,} → {check.projected:,} of "
                   f"{check.budget:,} tokens")
        if not check.allowed:
            st.error(f"Activating these together is refused: {check.reason}.", icon="⛔")

        def switch(on: bool):
            """All the attributes picked when the button is pressed, switched `on`, based
            on the versions this run drew, which the press answers (as Save is): the
            versions of the run before were a save older right after one, so a switch
            after a save was refused as changed by someone else."""
            picked = [i for i in st.session_state.get("bulk_pick", []) if i in by_id]
            if not picked:
                return None
            return (Change(client_id, active=dict.fromkeys(picked, on)),
                    {i: by_id[i].version for i in picked},
                    f"{'Activated' if on else 'Deactivated'} {len(picked)} attributes")

        b1, b2 = st.columns(2)
        b1.button("Activate selected", disabled=not check.allowed, key="bulk_on",
                  on_click=ui.change_on_click("bulk", me, lambda: switch(True)))
        b2.button("Deactivate selected", key="bulk_off",
                  on_click=ui.change_on_click("bulk", me, lambda: switch(False)))
    ui.refusals("bulk")


@st.fragment
def suggestions(attrs: list[Attribute], seen: dict[str, int]) -> None:
    """The suggestion cards, the largest savings first, looked for and drawn only while
    their switch is on (it stays on from client to client once turned on):
    looking took a third of a choice's server run and its cards a tenth of the
    browser's drawing, on every client a user opened to read or edit. Five cards are
    in view and up to seven more on request. The switch, a card's diff or the rest
    rerun them alone (an Apply is a write, which reruns the whole page)."""
    st.header("Suggestions for reducing usage")
    if not st.toggle("Look for repeated sentences, extra whitespace and sentences copied "
                     "across attributes", key="tips_open"):
        return
    tips = optimize.suggest(attrs, svc.counter.count_many)[:12]
    if not tips:
        st.caption("Nothing to suggest: no active attribute repeats itself.")
    rest = len(tips) - TIPS_IN_VIEW
    if rest > 0 and not st.toggle(f"Show {rest} more suggestion{'s' * (rest > 1)}",
                                  key="tips_more"):
        tips = tips[:TIPS_IN_VIEW]
    for i, tip in enumerate(tips):
        def apply(tip: Suggestion = tip) -> None:
            ui.apply_change(me, tip.change(client_id), {aid: seen[aid] for aid in tip.edits},
                            f"Applied: {tip.message}", action="attribute.suggestion")
        ui.suggestion_card(tip, f"tip_{i}", apply)


@st.fragment
def client_body() -> None:
    """All that a save on this page moves, in one fragment with the editor whose Save
    and bulk buttons are in it: a press reruns this part alone, and that one run draws
    the saved figures (see ui.change_on_click). Drawn by the page's run, Save took
    two runs in the browser, the fragment's and then the page's with its sidebar and
    selector. Typing reruns it too; its grid and chart go out unchanged."""
    usage, attrs, costs = ui.client_detail(client_id)
    ui.last_write()
    library = figures(usage, attrs, costs)
    st.header("Edit an attribute")
    editor(attrs, costs, library)
    # an Apply is handled in the next run's body, so it is based on this run's versions
    suggestions(attrs, {a.id: ui.seen_version(f"attribute:{a.id}", a.version) for a in attrs})


client_body()
ui.load_tokenizer_ahead()  # after the page is drawn: the editor's first preview needs it
