"""Entry point: page config, sidebar and navigation. Pages draw; budget/ computes."""

from datetime import datetime, timezone

import streamlit as st

import ui
from budget.stores import StoreError

st.set_page_config(page_title="Token budgets", page_icon="🪙", layout="wide")

overview = st.Page("app_pages/overview.py", title="Overview", icon="📊", default=True)
client = st.Page("app_pages/client.py", title="Client", icon="🧾", url_path="client")
analytics = st.Page("app_pages/analytics.py", title="Analytics", icon="📈", url_path="analytics")
batch_edit = st.Page("app_pages/batch_edit.py", title="Batch edit", icon="🧩", url_path="batch_edit")
admin = st.Page("app_pages/admin.py", title="Admin", icon="🛠️", url_path="admin")
audit = st.Page("app_pages/audit.py", title="Audit log", icon="📜", url_path="audit")
pg = st.navigation([overview, client, analytics, batch_edit, admin, audit])

# the root URL with ?client=ID opens that client's page
if pg is overview and "client" in st.query_params:
    st.switch_page(client, query_params={"client": st.query_params["client"]})

ui.begin_run()

with st.sidebar:
    svc = ui.service()
    st.caption(f"Store: **{svc.store_label}**")
    st.caption(f"Encoding: **{svc.encoding}**")
    me = ui.actor()
    if ui.auth_configured():
        st.caption(f"Signed in as **{me.name}** ({me.role})")
        st.button("Log out", on_click=st.logout, key="logout")
    else:
        st.caption(f"**Local mode**: no login configured, you are the local **{me.role}**; "
                   "the server listens on 127.0.0.1 only")
    loaded = ui.loaded_at()
    minutes = max(0, int((datetime.now(timezone.utc) - loaded).total_seconds() // 60))
    st.caption(f"Data loaded {loaded:%H:%M:%S} UTC ({minutes} min ago)")
    if st.button("Refresh", icon="🔄", key="refresh"):
        ui.refresh()
        st.rerun()

try:
    pg.run()
except StoreError as e:  # a read the loaders could not fall back on: say what failed
    ui.banner(f"{e}. Press Refresh to try again.")
