"""AppTest helpers: the app from its entry file, and the text a page shows."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def run_app(page: str | None = None, **params: str) -> AppTest:
    """The app from its entry file, with query parameters, switched to `page`."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    if page:
        at.switch_page(page).run()
    return at


def text_of(at) -> str:
    return "\n".join(str(e.value) for e in (*at.markdown, *at.subheader, *at.caption,
                                            *at.warning, *at.error, *at.info, *at.title))


# the keys of the Analytics charts, one per section
CHARTS = {"top_attributes", "headroom", "by_tier", "overall_over_time", "client_over_time",
          "estimate_error", "prompt_cost", "savings"}
