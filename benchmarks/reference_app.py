"""The browser benchmark's reference: a minimal Streamlit page for each page of ours,
showing the same DataFrames (plain `st.dataframe`, no column configuration) and as many
plotly charts, plus the three widgets the interactions use: the client selector (every
client, labelled and searched as ours), a text area with a preview, a Save button with
a success notice. On the Client view it shows the chosen client's attribute library and
a chart of it, so choosing a client redraws a grid and a chart as ours does, and a Save
changes a figure in both (in one run, the least a save can take: the figure moves before
they are drawn). Ours / this is what the benchmark reports, since absolute times on a
shared machine say little across runs.

`streamlit run benchmarks/reference_app.py` with REFERENCE_DATA naming the pickle that
benchmarks/browser.py writes; `?view=` picks the page it stands for."""

import os
import pickle

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st


@st.cache_resource
def data() -> dict:
    """{view: {"frames": [DataFrame, ...], "charts": int}, "clients": {id: label},
    "libraries": {id: DataFrame}}"""
    with open(os.environ["REFERENCE_DATA"], "rb") as f:
        return pickle.load(f)


@st.cache_data
def figure(i: int):
    """A bar chart of 20 bars in three colours, as ours draw top lists."""
    return px.bar(x=[n * (i + 1) for n in range(20)], y=[f"bar {n}" for n in range(20)],
                  color=[("a", "b", "c")[n % 3] for n in range(20)], orientation="h",
                  title=f"Chart {i}")


TEXT = "Prefer firms that replied within a day. " * 12  # as long as a Signals text
d = data()
view = st.query_params.get("view", "overview")
labels = d["clients"]
client = st.selectbox("Client", list(labels), format_func=labels.get, key="pick",
                      filter_mode="contains")
st.title(labels[client] if view == "client" else "Reference")
if view == "client":
    library = d["libraries"].get(client, next(iter(d["libraries"].values())))
    saved = st.session_state.get("saved", 0)  # a save lowers the first row, as a trim does
    library = library.assign(tokens=[library["tokens"].iloc[0] - saved,
                                     *library["tokens"].iloc[1:]])
    st.dataframe(library, key="library", hide_index=True)
    top = library.head(15)  # one trace built directly, the quickest figure to make
    st.plotly_chart(go.Figure(go.Bar(x=top["tokens"], y=top["name"], orientation="h"),
                              layout={"title": "Tokens per attribute"}), key="library_chart")
    text = st.text_area("Signals", TEXT, key=f"text_{client}")  # a box per client, as ours
    if text != TEXT:
        st.caption(f"{len(text):,} → {len(text) + 1:,} tokens (delta +1)")
        if st.button("Save change", key="save", on_click=lambda: st.session_state.update(
                saved=saved + 1)):
            st.success("Saved", icon="✅")
else:
    for i, frame in enumerate(d[view]["frames"]):
        st.dataframe(frame, key=f"frame_{i}", hide_index=True)
    for i in range(d[view]["charts"]):
        st.plotly_chart(figure(i), key=f"chart_{i}")
