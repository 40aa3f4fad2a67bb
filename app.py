"""Entry point: page config, the pages each role may open, the sidebar, then the page.
Pages draw; ui/ holds the Streamlit glue; budget/ computes."""

import streamlit as st

import ui
from budget.model import BadInput
from budget.stores import StoreError

st.set_page_config(page_title="Token budgets", page_icon="🪙", layout="wide")
try:
    svc = ui.service()
except BadInput as e:  # a wrong setting: name it, and run nothing on a half-read configuration
    st.title("Token budgets")
    st.error(f"The app cannot start: {e}. Fix it in the environment or "
             ".streamlit/secrets.toml, then reload.", icon="⛔")
    st.stop()
except StoreError as e:  # the store did not answer (its message names it, never a password)
    st.title("Token budgets")
    st.error(f"The app cannot start: {e}. Reload to try again.", icon="🚫")
    st.stop()
me = ui.actor()  # nobody signed in: the login screen, and nothing else runs

overview = st.Page("app_pages/overview.py", title="Overview", icon=":material/dashboard:",
                   default=True, help="Every client's usage against its budget; filter, "
                   "download, select a row to open the client.")
client = st.Page("app_pages/client.py", title="Client", icon=":material/person:",
                 url_path="client", help="One client: its headline figure, attribute "
                 "library, edits checked against the budget, and suggestions.")
analytics = st.Page("app_pages/analytics.py", title="Analytics", icon=":material/bar_chart:",
                    url_path="analytics", help="Where the tokens go, where usage is heading, "
                    "the chars4 estimate against real counts, what the prompts cost.")
audit = st.Page("app_pages/audit.py", title="Audit log", icon=":material/history:",
                url_path="audit", help="Who changed what, when, before and after.")
savings = st.Page("app_pages/savings.py", title="Savings", icon=":material/savings:",
                  url_path="savings", help="Fixes that keep a text's meaning and save "
                  "tokens, per client; admins apply them.")
batch_edit = st.Page("app_pages/batch_edit.py", title="Batch edit", icon=":material/edit_note:",
                     url_path="batch_edit", help="One template copied into several clients: "
                     "edit it once, each copy checked against its own client's budget.")
admin = st.Page("app_pages/admin.py", title="Admin", icon=":material/admin_panel_settings:",
                url_path="admin", help="Resets, service levels, budget overrides, top-ups, "
                "tier limits and the tokenizer.")
scheduled_pass = st.Page("app_pages/scheduled_pass.py", title="Scheduled pass",
                         icon=":material/schedule:", url_path="scheduled_pass",
                         help="What is due (resets, alerts, automatic deactivation), run it "
                         "now, restore a deactivation run, the email alerts sent.")

# what each role may open: viewers read; analysts also review savings and batch edits
# (admins apply them); admins also change budgets and run the scheduled pass
nav = {"Budgets": [overview, client, analytics, audit]}
if me.role in ("analyst", "admin"):
    nav["Savings"] = [savings, batch_edit]
if me.role == "admin":
    nav["Administration"] = [admin, scheduled_pass]
pg = st.navigation(nav)

ui.begin_run(every_client=pg is not client)
read_only = ui.read_only_reason()
if read_only:  # no login, reachable from elsewhere: nobody is trusted to change data
    st.warning(read_only, icon="🔒")
if pg is not client:  # the Client page draws it in the part that a save there redraws
    ui.last_write()  # what the click before this run saved

# the root URL with ?client=ID opens that client's page; an id no client has stays on the
# overview with the error, its URL untouched, rather than opening some other client
if pg is overview and "client" in st.query_params:
    wanted = st.query_params["client"]
    if wanted in set(ui.usage_table()[0]["client_id"]):
        st.switch_page(client, query_params={"client": wanted})
    st.error(f"No client with id {wanted!r}. Pick one from the table below.", icon="🔎")

with st.sidebar:
    st.caption(f"Store: **{svc.store_label}**")
    st.caption(f"Encoding: **{svc.encoding}**")
    if ui.auth_configured():
        st.caption(f"Signed in as **{me.name}** ({me.role})")
        st.button("Log out", on_click=st.logout, key="logout")
    else:
        st.caption(ui.local_mode_caption(me))
    st.caption(ui.freshness())
    mirror = ui.mirror_freshness()
    if mirror:
        st.caption(mirror)
    if st.button("Refresh", icon="🔄", key="refresh"):
        ui.refresh(sync=True)
        st.rerun()

try:
    pg.run()
except StoreError as e:  # a read the loaders could not fall back on: say what failed
    ui.banner(f"{e}. Press Refresh to try again.")
